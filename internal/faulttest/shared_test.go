package faulttest

import (
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/destination/dsn"
	"github.com/crmsync/crmsync/internal/e2e"
	"github.com/crmsync/crmsync/internal/source/closecrm"
	"github.com/crmsync/crmsync/internal/source/copper"
)

// TestSharedDestination syncs into destinations that hold other tables, as issue 12 found
// them: an application's database with its own users table (SQLite without --schema,
// PostgreSQL with --schema public), and one file (or schema) two sources share. crmsync must
// refuse, naming the tables and --schema, before it changes anything.
func TestSharedDestination(t *testing.T) {
	for name, newDest := range e2e.Destinations() {
		t.Run(name+"/application table", func(t *testing.T) {
			dest := newDest(t)
			dst := e2e.OpenDest(t, dest, "public")
			r := e2e.OpenReplica(t, dest, "public")
			if _, err := r.DB.Exec(`CREATE TABLE ` + r.Ref("users") + ` (id INTEGER PRIMARY KEY, name TEXT NOT NULL)`); err != nil {
				t.Fatal(err)
			}
			if _, err := r.DB.Exec(`INSERT INTO ` + r.Ref("users") + ` (id, name) VALUES (1, 'app user')`); err != nil {
				t.Fatal(err)
			}
			before := describe(t, r.DB, dest, r.Ref("users"))
			tablesBefore := tableNames(t, r.DB, dest, "public")

			a := e2e.NewAccount(t, closecrm.Descriptor, e2e.Options{})
			_, err := a.Run(t, dst)
			refused(t, err, "users")
			if after := describe(t, r.DB, dest, r.Ref("users")); after != before {
				t.Errorf("the application's users table changed:\nbefore: %s\n after: %s", before, after)
			}
			if after := tableNames(t, r.DB, dest, "public"); !slices.Equal(after, tablesBefore) {
				t.Errorf("tables before the refused sync %v, after %v", tablesBefore, after)
			}
		})
		t.Run(name+"/two sources", func(t *testing.T) {
			dest := newDest(t)
			dst := e2e.OpenDest(t, dest, "crm")
			r := e2e.OpenReplica(t, dest, "crm")
			e2e.NewAccount(t, closecrm.Descriptor, e2e.Options{}).Sync(t, dst)
			tablesBefore := tableNames(t, r.DB, dest, "crm")
			_, err := e2e.NewAccount(t, copper.Descriptor, e2e.Options{}).Run(t, dst)
			refused(t, err, "leads", "opportunities", "tasks", "users") // the tables both sources have
			if after := tableNames(t, r.DB, dest, "crm"); !slices.Equal(after, tablesBefore) {
				t.Errorf("the refused sync changed the tables: before %v, after %v", tablesBefore, after)
			}
		})
	}
}

// refused checks that err refuses the sync over exactly the named tables and says how out.
func refused(t *testing.T, err error, tables ...string) {
	t.Helper()
	var ce *destination.ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("sync = %v, want a refusal (*destination.ConflictError)", err)
	}
	var got []string
	for _, c := range ce.Conflicts {
		got = append(got, c.Table[strings.LastIndex(c.Table, ".")+1:])
	}
	slices.Sort(got)
	if !slices.Equal(got, tables) || !strings.Contains(err.Error(), "--schema") {
		t.Errorf("refused %v, want %v, with the way out (--schema): %v", got, tables, err)
	}
}

// describe is the users table's columns with types and nullability, and its row count.
func describe(t *testing.T, db *sql.DB, dest, ref string) string {
	t.Helper()
	q := `SELECT group_concat(name || ' ' || type || ' ' || "notnull" || ' ' || pk, ', ') FROM pragma_table_info('users')`
	if dsn.IsPostgres(dest) {
		q = `SELECT string_agg(column_name || ' ' || data_type || ' ' || is_nullable, ', ' ORDER BY ordinal_position)
			FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'users'`
	}
	var cols string
	if err := db.QueryRow(q).Scan(&cols); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM ` + ref).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s; %d rows", cols, n)
}

// tableNames lists the tables of the destination (PostgreSQL: of schema).
func tableNames(t *testing.T, db *sql.DB, dest, schema string) []string {
	t.Helper()
	q, args := `SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`, []any{}
	if dsn.IsPostgres(dest) {
		q, args = `SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1`, []any{schema}
	}
	rows, err := db.Query(q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}
