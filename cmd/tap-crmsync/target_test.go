package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/e2e"
	"github.com/crmsync/crmsync/internal/record"
	"github.com/crmsync/crmsync/internal/sources"
)

// target is a minimal Singer target: it upserts records by their stream's key, keeps a full
// table's records of a version apart until ACTIVATE_VERSION makes that version the table.
type target struct {
	schemas map[string]map[string]any
	keys    map[string][]string
	tables  map[string]map[string]map[string]any // stream → key → record
	staged  map[string]map[int64]map[string]map[string]any
}

func newTarget() *target {
	return &target{schemas: map[string]map[string]any{}, keys: map[string][]string{},
		tables: map[string]map[string]map[string]any{}, staged: map[string]map[int64]map[string]map[string]any{}}
}

func (tg *target) load(t *testing.T, stdout string) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var m message
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		switch m.Type {
		case "SCHEMA":
			tg.schemas[m.Stream] = m.Schema["properties"].(map[string]any)
			tg.keys[m.Stream] = m.KeyProperties
		case "RECORD":
			dest := tg.tables[m.Stream]
			if m.Version != 0 {
				if tg.staged[m.Stream] == nil {
					tg.staged[m.Stream] = map[int64]map[string]map[string]any{}
				}
				if tg.staged[m.Stream][m.Version] == nil {
					tg.staged[m.Stream][m.Version] = map[string]map[string]any{}
				}
				dest = tg.staged[m.Stream][m.Version]
			} else if dest == nil {
				dest = map[string]map[string]any{}
				tg.tables[m.Stream] = dest
			}
			dest[tg.rowKey(m.Stream, m.Record)] = m.Record
		case "ACTIVATE_VERSION":
			tg.tables[m.Stream] = tg.staged[m.Stream][m.Version]
			if tg.tables[m.Stream] == nil {
				tg.tables[m.Stream] = map[string]map[string]any{}
			}
		}
	}
}

// rowKey is a row's key values, normalised (instants in one form).
func (tg *target) rowKey(stream string, rec map[string]any) string {
	var parts []string
	for _, k := range tg.keys[stream] {
		parts = append(parts, tg.norm(stream, k, rec[k]))
	}
	return strings.Join(parts, "|")
}

// norm renders a value of a field in one form whether it comes from a Singer record or a
// SQLite column: instants as RFC 3339 UTC, days as YYYY-MM-DD, JSON canonically, booleans and
// numbers as text.
func (tg *target) norm(stream, field string, v any) string {
	if b, ok := v.([]byte); ok {
		v = string(b)
	}
	if v == nil {
		return "<null>"
	}
	fs, _ := tg.schemas[stream][field].(map[string]any)
	types := schemaTypes(fs["type"])
	switch {
	case fs["format"] == "date-time":
		if tm, err := record.ParseTime(v); err == nil {
			return tm.UTC().Format(time.RFC3339Nano)
		}
	case fs["format"] == "date":
		if tm, err := record.ParseDate(v); err == nil {
			return tm.Format(record.DateLayout)
		}
	case slices.Contains(types, "object") || slices.Contains(types, "array"):
		if s, ok := v.(string); ok {
			var x any
			if json.Unmarshal([]byte(s), &x) == nil {
				v = x
			}
		}
		out, _ := json.Marshal(v)
		return string(out)
	case slices.Contains(types, "boolean"):
		switch x := v.(type) {
		case int64:
			return fmt.Sprint(x != 0)
		}
	case slices.Contains(types, "number") || slices.Contains(types, "integer"):
		var f float64
		switch x := v.(type) {
		case float64:
			f = x
		case int64:
			f = float64(x)
		default:
			return fmt.Sprint(v)
		}
		if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return fmt.Sprint(int64(f))
		}
		return fmt.Sprint(f)
	}
	return fmt.Sprint(v)
}

// TestTargetMatchesSQLite pipes the tap's output into a minimal target and checks it holds
// the rows a `crmsync sync` of the same account into SQLite holds, field by field.
func TestTargetMatchesSQLite(t *testing.T) {
	for _, d := range sources.All() {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			acct := newAccount(t, d, nil)
			_, _, r := syncAll(t, acct)
			tg := newTarget()
			tg.load(t, r.stdout)

			dst, path := e2e.OpenSQLite(t)
			acct.Sync(t, dst)
			db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			for _, s := range d.Catalog().Streams {
				got := tg.tables[s.Name]
				rows, err := db.Query(fmt.Sprintf(`SELECT * FROM %q`, s.Name))
				if err != nil {
					t.Fatal(err)
				}
				cols, _ := rows.Columns()
				n, diffs := 0, 0
				for rows.Next() {
					vals := make([]any, len(cols))
					ptrs := make([]any, len(cols))
					for i := range vals {
						ptrs[i] = &vals[i]
					}
					if err := rows.Scan(ptrs...); err != nil {
						t.Fatal(err)
					}
					want := map[string]any{}
					for i, c := range cols {
						want[c] = vals[i]
					}
					n++
					key := tg.rowKey(s.Name, want)
					rec, ok := got[key]
					if !ok {
						if diffs++; diffs <= 3 {
							t.Errorf("%s %s: in SQLite, not in the target", s.Name, key)
						}
						continue
					}
					for _, c := range cols {
						if c == destination.ExtractedAtColumn {
							continue // when each sync started
						}
						if a, b := tg.norm(s.Name, c, want[c]), tg.norm(s.Name, c, rec[c]); a != b {
							if diffs++; diffs <= 3 {
								t.Errorf("%s %s.%s: SQLite %s, target %s", s.Name, key, c, a, b)
							}
						}
					}
				}
				rows.Close()
				t.Logf("%s: %d rows of %d columns compared", s.Name, n, len(cols))
				if n != len(got) || n == 0 {
					t.Errorf("%s: %d rows in SQLite, %d in the target", s.Name, n, len(got))
				}
			}
		})
	}
}

// schemaTypes is a JSON Schema "type": one name or a list of them.
func schemaTypes(t any) []string {
	switch x := t.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, fmt.Sprint(e))
		}
		return out
	}
	return nil
}
