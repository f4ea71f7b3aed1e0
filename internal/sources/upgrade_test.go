package sources

import (
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/connector"
	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/destination/dsn"
	"github.com/crmsync/crmsync/internal/destination/postgres/pgtest"
	"github.com/crmsync/crmsync/internal/e2e"
	"github.com/crmsync/crmsync/internal/record"
)

// The fixtures are replicas written by the release before typed dates and declared fields
// (commit e6dc3d6): its demo, both sources, into SQLite (tables prefixed close_, copper_) and
// into PostgreSQL (schemas close, copper), then thinned to a few rows per big table and
// dumped (Python's sqlite3 iterdump; pg_dump --inserts --schema=close --schema=copper):
//
//	crmsync-old demo --close-activities 40 --close-tasks 40 --copper-opportunities 30 … --dest …
//
// They hold close_date as M/D/YYYY text, Close task days as text, activities_search
// old_value/new_value as text (objects' JSON text and plain strings), win_probability as
// BIGINT in opportunities, pinned_at as a text drift column, and none of the fields declared since.
const fixtureRelease = "e6dc3d6"

// TestUpgradeFromPreviousRelease: a replica written by the previous release is upgraded in
// place by the next sync, in both destinations: every declared column exists with its declared
// type (added, widened, or converted from text), converted values are what the engine makes of
// the API's values (days, instants, JSON documents; the task day's text kept beside it), a
// query ordering and filtering by close_date works, and a full sync then writes into it.
func TestUpgradeFromPreviousRelease(t *testing.T) {
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			dest, db, ref := loadFixture(t, kind)
			old := readOld(t, db, ref)

			for _, d := range All() {
				dst, _, err := dsn.Open(context.Background(), dest, d.Name, "")
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range d.Catalog().Streams {
					declared := append(slices.Clone(s.Columns), destination.MetadataColumns...)
					got, err := dst.Prepare(context.Background(), destination.Table{Source: d.Name, Stream: s}, declared)
					if err != nil {
						t.Fatalf("%s.%s: %v", d.Name, s.Name, err)
					}
					for _, c := range declared {
						if i := catalog.IndexOf(got, c.Name); i < 0 || got[i].Type != c.Type {
							t.Errorf("%s.%s.%s: after the upgrade %v, want a %s column", d.Name, s.Name, c.Name, got[max(i, 0)], c.Type)
						}
					}
				}
				dst.Close()
			}
			checkConverted(t, db, ref, old)
			checkDateQueries(t, db, ref)

			// The next syncs write into the upgraded tables (a full refresh: the simulated
			// account is another one than the fixture's).
			for _, d := range All() {
				sizes := map[string]int{}
				for _, s := range d.Simulator.Sizes {
					sizes[s.Table] = min(s.Default, 60)
				}
				a := e2e.NewAccount(t, d, e2e.Options{SimConfig: connector.SimConfig{Sizes: sizes}})
				dst, _, err := dsn.Open(context.Background(), dest, d.Name, "")
				if err != nil {
					t.Fatal(err)
				}
				opts := a.Options()
				opts.FullRefresh = true
				rep := e2e.SyncWith(t, a.Source(t), dst, opts)
				dst.Close()
				// The account's ids overlap the fixture's, whose versions may be newer: rows are
				// counted, not compared (TestAcceptance compares).
				for _, s := range rep.Streams {
					if s.Rows == 0 || s.Unparsed > 0 {
						t.Errorf("%s.%s: %d rows written, %d values did not parse", d.Name, s.Stream, s.Rows, s.Unparsed)
					}
				}
			}
			checkDateQueries(t, db, ref)
		})
	}
}

// loadFixture restores the previous release's replica into a new destination and returns it
// (a --dest string), a connection to read it and how to name its tables in SQL.
func loadFixture(t *testing.T, kind string) (dest string, db *sql.DB, ref func(source, table string) string) {
	t.Helper()
	dump := readGzip(t, fmt.Sprintf("testdata/release-%s-%s.sql.gz", fixtureRelease, kind))
	if kind == "sqlite" {
		dest = e2e.Destinations()["sqlite"](t)
		if err := os.WriteFile(strings.TrimPrefix(dest, "sqlite:"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		db = e2e.OpenReplica(t, dest, "").DB
		if _, err := db.Exec(dump); err != nil {
			t.Fatalf("load the fixture: %v", err)
		}
		return dest, db, func(source, table string) string { return fmt.Sprintf("%q", source+"_"+table) }
	}
	dest = pgtest.NewDatabase(t)
	conn, err := pgx.Connect(context.Background(), dest)
	if err != nil {
		t.Fatal(err)
	}
	// The simple protocol runs the whole dump; it sets the session's search_path, so the
	// connection is not reused.
	if _, err := conn.Exec(context.Background(), dump, pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatalf("load the fixture: %v", err)
	}
	conn.Close(context.Background())
	return dest, e2e.OpenReplica(t, dest, "").DB, func(source, table string) string { return fmt.Sprintf("%q.%q", source, table) }
}

func readGzip(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// oldValues are the text values the previous release stored, by table, column and row id.
type oldValues map[string]map[string]string

// converted names the columns whose text the upgrade converts, with the column that keeps the
// text after it ("" for none).
var converted = []struct{ source, table, column, raw string }{
	{"copper", "opportunities", "close_date", ""},
	{"copper", "activities_search", "old_value", ""},
	{"copper", "activities_search", "new_value", ""},
	{"close", "tasks", "date", "date_raw"},
	{"close", "tasks", "due_date", "due_date_raw"},
	{"close", "activities", "pinned_at", ""},
	{"close", "activities", "opportunity_date_won", ""},
}

func readOld(t *testing.T, db *sql.DB, ref func(source, table string) string) oldValues {
	t.Helper()
	old := oldValues{}
	for _, c := range converted {
		key := c.source + "." + c.table + "." + c.column
		old[key] = textByID(t, db, fmt.Sprintf("SELECT CAST(id AS TEXT), %q FROM %s WHERE %q IS NOT NULL", c.column, ref(c.source, c.table), c.column))
		if len(old[key]) == 0 {
			t.Fatalf("the fixture has no %s values", key)
		}
	}
	return old
}

func textByID(t *testing.T, db *sql.DB, query string) map[string]string {
	t.Helper()
	rows, err := db.Query(query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id string
		var v sql.NullString
		if err := rows.Scan(&id, &v); err != nil {
			t.Fatal(err)
		}
		if v.Valid {
			out[id] = v.String
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// instantsByID reads a timestamp column: time.Time from PostgreSQL, the stored text from SQLite.
func instantsByID(t *testing.T, db *sql.DB, query string) map[string]time.Time {
	t.Helper()
	rows, err := db.Query(query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var id string
		var v any
		if err := rows.Scan(&id, &v); err != nil {
			t.Fatal(err)
		}
		switch x := v.(type) {
		case time.Time:
			out[id] = x
		case string:
			if out[id], err = record.ParseISOTime(x); err != nil {
				t.Fatalf("%s: %v", id, err)
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkConverted compares each converted value with what the engine makes of the old text.
func checkConverted(t *testing.T, db *sql.DB, ref func(source, table string) string, old oldValues) {
	t.Helper()
	for _, c := range converted {
		key := c.source + "." + c.table + "." + c.column
		typ := catalog.String
		for _, d := range All() {
			if s, ok := d.Catalog().Stream(c.table); ok && d.Name == c.source {
				col, _ := s.Column(c.column)
				typ = col.Type
			}
		}
		now := textByID(t, db, fmt.Sprintf("SELECT CAST(id AS TEXT), CAST(%q AS TEXT) FROM %s", c.column, ref(c.source, c.table)))
		var instants map[string]time.Time
		if typ == catalog.Timestamp {
			instants = instantsByID(t, db, fmt.Sprintf("SELECT CAST(id AS TEXT), %q FROM %s", c.column, ref(c.source, c.table)))
		}
		var raw map[string]string
		if c.raw != "" {
			raw = textByID(t, db, fmt.Sprintf("SELECT CAST(id AS TEXT), %q FROM %s", c.raw, ref(c.source, c.table)))
		}
		for id, text := range old[key] {
			got := now[id]
			switch typ {
			case catalog.Date:
				want, err := record.ParseDate(text)
				if err != nil || got != want.Format(record.DateLayout) {
					t.Errorf("%s %s: %q became %q, want %s (%v)", key, id, text, got, want.Format(record.DateLayout), err)
				}
			case catalog.Timestamp:
				want, err := record.ParseTime(text)
				if err != nil || !instants[id].Equal(want) {
					t.Errorf("%s %s: %q became %v, want %s", key, id, text, instants[id], want)
				}
			case catalog.JSON:
				var gv, wv any
				if err := json.Unmarshal([]byte(got), &gv); err != nil {
					t.Errorf("%s %s: %q is not JSON", key, id, got)
				}
				_ = json.Unmarshal([]byte(record.JSONFromText(text)), &wv)
				if !reflect.DeepEqual(gv, wv) {
					t.Errorf("%s %s: %q became %s, want %s", key, id, text, got, record.JSONFromText(text))
				}
			default:
				t.Fatalf("%s: declared %s, not a converted type", key, typ)
			}
			if c.raw != "" && raw[id] != text {
				t.Errorf("%s %s: %s = %q, want the old text %q", key, id, c.raw, raw[id], text)
			}
		}
	}
}

// checkDateQueries orders and filters opportunities by close_date in SQL and compares with
// the days themselves: a date column sorts and compares as days in both databases.
func checkDateQueries(t *testing.T, db *sql.DB, ref func(source, table string) string) {
	t.Helper()
	days := textByID(t, db, fmt.Sprintf(`SELECT CAST(id AS TEXT), CAST(close_date AS TEXT) FROM %s`, ref("copper", "opportunities")))
	rows, err := db.Query(fmt.Sprintf(`SELECT CAST(id AS TEXT) FROM %s WHERE close_date IS NOT NULL ORDER BY close_date, id`, ref("copper", "opportunities")))
	if err != nil {
		t.Fatal(err)
	}
	var ordered []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ordered = append(ordered, days[id])
	}
	rows.Close()
	if len(ordered) < 2 || !slices.IsSorted(ordered) {
		t.Errorf("ORDER BY close_date gave days out of order: %v", ordered)
	}
	pivot := ordered[len(ordered)/2]
	var n int
	if err := db.QueryRow(fmt.Sprintf(`SELECT count(*) FROM %s WHERE close_date >= '%s'`, ref("copper", "opportunities"), pivot)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, d := range ordered {
		if d >= pivot {
			want++
		}
	}
	if n != want {
		t.Errorf("close_date >= '%s' counted %d rows, want %d", pivot, n, want)
	}
}
