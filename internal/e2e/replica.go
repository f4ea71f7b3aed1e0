package e2e

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, to read PostgreSQL replicas

	"github.com/crmsync/crmsync/internal/destination/postgres/pgtest"
	_ "github.com/crmsync/crmsync/internal/destination/sqlite" // registers the "sqlite" driver
)

// Destinations are the destinations end-to-end tests write to, each a fresh one per call: a
// SQLite file in a temporary directory and a new PostgreSQL database. Values are --dest strings.
func Destinations() map[string]func(t *testing.T) string {
	return map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "crm.db") },
		"postgres": func(t *testing.T) string { return pgtest.NewDatabase(t) },
	}
}

// OpenReplica opens, for reading, the destination named by a --dest string; schema is the
// PostgreSQL schema the tables are in (SQLite: tables without prefix).
func OpenReplica(t testing.TB, dest, schema string) Replica {
	t.Helper()
	if path, ok := strings.CutPrefix(dest, "sqlite:"); ok {
		// Read-write, though only read: after a crash the file may hold a hot journal, which
		// only a writable connection rolls back (as crmsync's next run would) — a read-only one
		// cannot read the file at all. mode=rw never creates a missing file.
		db, err := sql.Open("sqlite", "file:"+path+"?mode=rw")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		r := SQLiteReplica(db)
		r.file = path
		return r
	}
	db, err := sql.Open("pgx", dest)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return Replica{DB: db, Ref: func(table string) string { return fmt.Sprintf("%q.%q", schema, table) },
		existsQuery: fmt.Sprintf(`SELECT count(*) > 0 FROM information_schema.tables WHERE table_schema = '%s' AND table_name = $1`, schema)}
}
