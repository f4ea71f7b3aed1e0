package sources

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/connector"
	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/e2e"
)

// accountField says whether a field belongs to one account rather than to the API: Close's
// custom fields (custom.cf_<id>) are named by the account's own definitions, so they can only
// arrive as drift columns.
func accountField(name string) bool { return strings.HasPrefix(name, "custom.") }

// TestSimulatedFieldsDeclared: every field a simulator serves, in any record of any table —
// after the account has changed as the demo changes it — is a declared column, so a table's
// shape never depends on the records seen so far.
func TestSimulatedFieldsDeclared(t *testing.T) {
	for _, d := range All() {
		t.Run(d.Name, func(t *testing.T) {
			sizes := map[string]int{}
			for _, s := range d.Simulator.Sizes {
				sizes[s.Table] = min(s.Default, 2000)
			}
			sim, err := d.NewSimulator(connector.SimConfig{Seed: 11, Sizes: sizes})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				at := time.Now().Add(time.Duration(i) * time.Minute)
				sim.UpdateRecords(d.Simulator.Updated, 40, at)
				sim.AddRecords(d.Simulator.Added, 40, at)
			}
			for _, s := range d.Catalog().Streams {
				var recs []map[string]any
				recs = append(recs, sim.Snapshot(s.Name)...)
				if len(recs) == 0 {
					t.Errorf("%s: the simulator serves no records", s.Name)
				}
				assertDeclared(t, s, "the simulator", recs)
			}
		})
	}
}

// TestReferenceFieldsDeclared: every field of the reference's example records of the real
// APIs (../shared/reference/<source>/<table>.json) is a declared column.
func TestReferenceFieldsDeclared(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "shared", "reference")
	if _, err := os.Stat(dir); err != nil {
		dir = "/work/shared/reference"
		if _, err := os.Stat(dir); err != nil {
			t.Skip("the API reference (shared/reference) is not beside the repository")
		}
	}
	for _, d := range All() {
		for _, s := range d.Catalog().Streams {
			raw, err := os.ReadFile(filepath.Join(dir, d.Name, s.Name+".json"))
			if err == nil {
				assertDeclared(t, s, "the reference example", exampleRecords(t, raw))
				continue
			}
			// Objects the reference shows only embedded in another table's examples (Close
			// contacts and opportunities inside leads) are checked there.
			embedded := embeddedExamples(t, filepath.Join(dir, d.Name), s.Name)
			if len(embedded) == 0 {
				t.Errorf("%s.%s: no example records: %v", d.Name, s.Name, err)
				continue
			}
			assertDeclared(t, s, "the reference's embedded examples", embedded)
		}
	}
}

// embeddedExamples collects the objects held in a field named like the table (an array of
// objects) in every example record of the source's other tables.
func embeddedExamples(t *testing.T, dir, table string) []map[string]any {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range exampleRecords(t, raw) {
			list, _ := r[table].([]any)
			for _, v := range list {
				if m, ok := v.(map[string]any); ok {
					out = append(out, m)
				}
			}
		}
	}
	return out
}

// exampleRecords reads an example file: a list of records, one record, or a page {"data": […]}.
func exampleRecords(t *testing.T, raw []byte) []map[string]any {
	t.Helper()
	var list []map[string]any
	if json.Unmarshal(raw, &list) == nil {
		return list
	}
	var one map[string]any
	if err := json.Unmarshal(raw, &one); err != nil {
		t.Fatal(err)
	}
	page, ok := one["data"].([]any)
	if !ok {
		return []map[string]any{one}
	}
	for _, r := range page {
		if m, ok := r.(map[string]any); ok {
			list = append(list, m)
		}
	}
	return list
}

func assertDeclared(t *testing.T, s catalog.Stream, from string, recs []map[string]any) {
	t.Helper()
	var missing []string
	for _, r := range recs {
		for k := range r {
			if _, ok := s.Column(k); !ok && !accountField(k) && !slices.Contains(missing, k) {
				missing = append(missing, k)
			}
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("%s: fields of %s that are not declared columns: %s", s.Name, from, strings.Join(missing, ", "))
	}
}

// TestEmptyAccountHasEveryColumn: the first sync of an account without records creates every
// table with every declared column and type, and a column of each custom field it defines, so queries naming any documented field work
// before a value has arrived; and discover's JSON Schema lists exactly those columns.
func TestEmptyAccountHasEveryColumn(t *testing.T) {
	for _, d := range All() {
		t.Run(d.Name, func(t *testing.T) {
			sizes := map[string]int{}
			for _, s := range d.Simulator.Sizes {
				sizes[s.Table] = 0
			}
			l := e2e.NewLocal(t, d, e2e.Options{SimConfig: connector.SimConfig{Sizes: sizes}})
			l.Sync()
			for _, s := range d.Catalog().Streams {
				got, err := l.Dst.Prepare(context.Background(), destination.Table{Source: d.Name, Stream: s}, nil)
				if err != nil {
					t.Fatal(err)
				}
				want := append(slices.Clone(s.Columns), destination.MetadataColumns...)
				// And a column of each custom field the account defines for the table.
				ms, err := l.Dst.CustomFields(context.Background(), d.Name)
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range ms {
					if m.Stream == s.Name {
						want = append(want, catalog.Column{Name: m.Column, Type: m.ColumnType})
					}
				}
				if len(got) != len(want) {
					t.Errorf("%s: %d columns, want the %d declared", s.Name, len(got), len(want))
				}
				names := make([]string, len(s.Columns))
				for i, c := range want {
					if j := catalog.IndexOf(got, c.Name); j < 0 || got[j].Type != c.Type {
						t.Errorf("%s.%s: want a %s column", s.Name, c.Name, c.Type)
					}
					if i < len(names) {
						names[i] = fmt.Sprintf("%q", c.Name)
					}
				}
				if _, err := l.Dst.DB().Exec(fmt.Sprintf("SELECT %s FROM %q", strings.Join(names, ", "), s.Name)); err != nil {
					t.Errorf("%s: selecting every declared column: %v", s.Name, err)
				}
				props := s.JSONSchema()["properties"].(map[string]any)
				if len(props) != len(s.Columns) {
					t.Errorf("%s: the JSON Schema has %d properties, want the %d columns", s.Name, len(props), len(s.Columns))
				}
			}
		})
	}
}
