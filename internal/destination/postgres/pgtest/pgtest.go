// Package pgtest gives each test a fresh PostgreSQL database on a real server.
//
// The server is CRMSYNC_TEST_POSTGRES (a URL or keyword/value string), else whatever the PG*
// environment variables name, else postgres://postgres@127.0.0.1:5432/postgres. When no server
// answers, tests are skipped with a message — unless CI is set or CRMSYNC_REQUIRE_POSTGRES=1,
// where a missing server fails them: a CI run must never pass by skipping.
// scripts/ensure-postgres.sh starts a throwaway server when none is running.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/crmsync/crmsync/internal/destination/postgres"
)

// Environment variables read by this package.
const (
	EnvURL     = "CRMSYNC_TEST_POSTGRES"
	EnvRequire = "CRMSYNC_REQUIRE_POSTGRES"
	DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres"
)

// ServerConnString is the connection string of the server tests use ("" means: the PG*
// variables alone).
func ServerConnString() string {
	if s := os.Getenv(EnvURL); s != "" {
		return s
	}
	for _, k := range []string{"PGHOST", "PGHOSTADDR", "PGPORT", "PGUSER", "PGDATABASE", "PGSERVICE"} {
		if os.Getenv(k) != "" {
			return ""
		}
	}
	return DefaultURL
}

// Required reports whether a missing server must fail the tests instead of skipping them.
func Required() bool {
	if os.Getenv(EnvRequire) == "1" {
		return true
	}
	ci := strings.ToLower(os.Getenv("CI"))
	return ci != "" && ci != "0" && ci != "false"
}

// NewDatabase creates an empty database crmsync_test_<random>, drops it when the test and its
// subtests are done, and returns a connection string for it.
func NewDatabase(t testing.TB) string {
	t.Helper()
	base := ServerConnString()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		where := postgres.Redact(base)
		if where == "" {
			where = "the server named by the PG* variables"
		}
		if Required() {
			t.Fatalf("PostgreSQL is required here (CI or %s=1) but %s does not answer: %v", EnvRequire, where, err)
		}
		t.Skipf("skipping: no PostgreSQL at %s (%v); set %s or run scripts/ensure-postgres.sh", where, err, EnvURL)
	}
	defer conn.Close(context.Background())
	name := "crmsync_test_" + randomHex(6)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop test database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		// FORCE ends sessions a failed test left open (PostgreSQL 13+).
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	return withDatabase(base, name)
}

// withDatabase points a connection string at another database.
func withDatabase(connString, db string) string {
	if strings.HasPrefix(connString, "postgres://") || strings.HasPrefix(connString, "postgresql://") {
		if u, err := url.Parse(connString); err == nil {
			u.Path = "/" + db
			q := u.Query()
			if q.Has("dbname") {
				q.Set("dbname", db)
				u.RawQuery = q.Encode()
			}
			return u.String()
		}
	}
	// Keyword/value (or empty: the PG* variables): a later keyword wins.
	return strings.TrimSpace(connString + " dbname=" + db)
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("pgtest: random: %v", err))
	}
	return hex.EncodeToString(b)
}
