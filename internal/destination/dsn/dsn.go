// Package dsn opens a destination named the way users name it on the command line:
// "sqlite:PATH" (or a path ending in .db or .sqlite) or a postgres:// URL. The command, the
// bench and the end-to-end tests open destinations through it.
package dsn

import (
	"context"
	"fmt"
	"strings"

	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/destination/postgres"
	"github.com/crmsync/crmsync/internal/destination/sqlite"
)

// Default is the destination when none is named.
const Default = "sqlite:crmsync.db"

// UnknownError says dest names no destination crmsync can write to, and why.
type UnknownError struct{ Dest, Why string }

func (e *UnknownError) Error() string {
	why := e.Why
	if why == "" {
		why = "use sqlite:PATH or postgres://user@host:5432/db"
	}
	return fmt.Sprintf("dest: %q is not a destination; %s", e.Dest, why)
}

// IsPostgres reports whether dest names a PostgreSQL database.
func IsPostgres(dest string) bool {
	return strings.HasPrefix(dest, "postgres://") || strings.HasPrefix(dest, "postgresql://")
}

// SQLitePath returns the file a SQLite dest names, and whether dest names one.
func SQLitePath(dest string) (string, bool) {
	if path, ok := strings.CutPrefix(dest, "sqlite:"); ok {
		return strings.TrimPrefix(path, "//"), true
	}
	if !IsPostgres(dest) && (strings.HasSuffix(dest, ".db") || strings.HasSuffix(dest, ".sqlite")) {
		return dest, true
	}
	return "", false
}

// Open opens the destination dest names (Default when empty). schema is the PostgreSQL schema
// (empty: sourceName, so each source gets its own tables) or the SQLite table prefix (empty:
// none). The returned name, for logs and the report, never holds a password.
func Open(ctx context.Context, dest, schema, sourceName string) (destination.Destination, string, error) {
	if dest == "" {
		dest = Default
	}
	if path, ok := SQLitePath(dest); ok {
		switch {
		case path == "":
			return nil, "", &UnknownError{Dest: dest, Why: "give the SQLite file's path, e.g. sqlite:crm.db"}
		case path == ":memory:" || strings.HasPrefix(path, "file:"):
			// An in-memory database keeps nothing, and a file: URI would be taken as a file name.
			return nil, "", &UnknownError{Dest: dest, Why: "give the path of a SQLite file (an in-memory database keeps nothing; a file: URI is not a path)"}
		}
		d, err := sqlite.Open(ctx, path, schema)
		if err != nil {
			return nil, "", err // a nil *Destination must not become a non-nil interface
		}
		return d, "sqlite:" + path, nil
	}
	if !IsPostgres(dest) {
		return nil, "", &UnknownError{Dest: dest}
	}
	if schema == "" {
		schema = sourceName
	}
	name := postgres.Redact(dest)
	d, err := postgres.Open(ctx, dest, schema)
	if err != nil {
		return nil, name, err
	}
	return d, name, nil
}
