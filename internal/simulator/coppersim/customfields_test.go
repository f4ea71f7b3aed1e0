package coppersim

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"
)

// customTables maps each available_on kind to its search path and Snapshot table.
var customTables = []struct{ kind, path string }{
	{"person", "people"}, {"company", "companies"}, {"lead", "leads"},
	{"opportunity", "opportunities"}, {"project", "projects"}, {"task", "tasks"},
}

// served fetches every record of an entity through the search endpoint (converted leads
// included, as a replica reads them), keyed by id.
func (c *testClient) served(path string) map[int64]map[string]any {
	c.t.Helper()
	body := map[string]any{}
	if path == "leads" {
		body["include_converted_leads"] = true
	}
	out := map[int64]map[string]any{}
	for _, r := range c.searchAll(path, body) {
		out[num(r["id"])] = r
	}
	return out
}

func (c *testClient) definitions() []map[string]any {
	c.t.Helper()
	return c.do("GET", "/custom_field_definitions", nil).must(c.t, 200).rows(c.t)
}

func defByID(defs []map[string]any, id int64) map[string]any {
	for _, d := range defs {
		if num(d["id"]) == id {
			return d
		}
	}
	return nil
}

func cfEntries(rec map[string]any) []any { return rec["custom_fields"].([]any) }

func entryID(x any) int64 { return num(x.(map[string]any)["custom_field_definition_id"]) }

func entryValue(rec map[string]any, id int64) (any, bool) {
	for _, x := range cfEntries(rec) {
		if entryID(x) == id {
			return x.(map[string]any)["value"], true
		}
	}
	return nil, false
}

// withoutCustom is a record minus custom_fields: what no custom field edit may touch.
func withoutCustom(rec map[string]any) map[string]any {
	out := make(map[string]any, len(rec))
	for k, v := range rec {
		if k != "custom_fields" {
			out[k] = v
		}
	}
	return out
}

func unset(dataType string) any {
	if dataType == "MultiSelect" {
		return []any{}
	}
	return nil
}

// TestCustomFieldEditor checks each editor method against /custom_field_definitions and every
// record of the six kinds, served through search: renames leave records byte-identical, a delete
// removes exactly its entries, an add appends one unset entry on the kinds it is available on,
// and no edit moves a date_modified or any other value. Snapshot agrees with what is served.
func TestCustomFieldEditor(t *testing.T) {
	at := testEpoch // after every record's date_modified: an added field is unset everywhere
	tests := []struct {
		name    string
		setup   func(t *testing.T, s *Server) // before the "before" reads
		edit    func(s *Server) (string, error)
		defs    func(t *testing.T, before, after []map[string]any, id int64) // the served list
		gone    int64                                                        // deleted definition
		addedOn []string                                                     // kinds an added definition is on
		addType string
	}{
		{
			name: "rename",
			edit: func(s *Server) (string, error) {
				return "710011", s.RenameCustomField("710011", "Sales Region 🌍", at)
			},
			defs: func(t *testing.T, before, after []map[string]any, id int64) {
				want := defByID(before, id)
				want["name"] = "Sales Region 🌍"
				if !reflect.DeepEqual(after, before) { // before edited in place to the expectation
					t.Fatalf("definitions after rename: %v", after)
				}
				if d := defByID(after, id); d["canonical_name"] != "region" {
					t.Fatalf("canonical_name changed: %v", d)
				}
			},
		},
		{
			name: "rename dropdown option",
			edit: func(s *Server) (string, error) {
				return "710011", s.RenameCustomFieldOption("710011", "EMEA", "Europe", at)
			},
			defs: func(t *testing.T, before, after []map[string]any, id int64) {
				opts := defByID(before, id)["options"].([]any)
				opts[0].(map[string]any)["name"] = "Europe"
				if !reflect.DeepEqual(after, before) {
					t.Fatalf("definitions after option rename: %v", defByID(after, id))
				}
				if o := defByID(after, id)["options"].([]any)[0].(map[string]any); num(o["id"]) != 904001 || num(o["rank"]) != 0 {
					t.Fatalf("option id or rank changed: %v", o)
				}
			},
		},
		{
			name: "rename multiselect option",
			edit: func(s *Server) (string, error) {
				return "710010", s.RenameCustomFieldOption("710010", "日本旅行", "Japan trip", at)
			},
			defs: func(t *testing.T, before, after []map[string]any, id int64) {
				opts := defByID(before, id)["options"].([]any)
				opts[3].(map[string]any)["name"] = "Japan trip"
				if !reflect.DeepEqual(after, before) {
					t.Fatalf("definitions after option rename: %v", defByID(after, id))
				}
			},
		},
		{
			name: "delete first definition",
			edit: func(s *Server) (string, error) { return "710001", s.DeleteCustomField("710001", at) },
			defs: func(t *testing.T, before, after []map[string]any, id int64) {
				if len(after) != len(before)-1 || defByID(after, id) != nil || !reflect.DeepEqual(after, before[1:]) {
					t.Fatalf("definitions after delete: %v", after)
				}
			},
			gone: 710001,
		},
		{
			name: "delete connect",
			edit: func(s *Server) (string, error) { return "710012", s.DeleteCustomField("710012", at) },
			defs: func(t *testing.T, before, after []map[string]any, id int64) {
				if len(after) != len(before)-1 || defByID(after, id) != nil {
					t.Fatalf("definitions after delete: %v", after)
				}
			},
			gone: 710012,
		},
		{
			// Added fields draw from their own streams: deleting one leaves a later one's values.
			name: "delete an added field",
			setup: func(t *testing.T, s *Server) {
				mid := testEpoch.Add(-300 * 24 * time.Hour)
				for _, f := range []CustomField{{Name: "First", Type: "String", On: []string{"person", "lead"}},
					{Name: "Second", Type: "Float", On: []string{"person", "lead"}}} {
					if _, err := s.AddCustomField(f, mid); err != nil {
						t.Fatal(err)
					}
				}
			},
			edit: func(s *Server) (string, error) { return "710014", s.DeleteCustomField("710014", at) },
			defs: func(t *testing.T, before, after []map[string]any, id int64) {
				if len(after) != len(before)-1 || defByID(after, id) != nil || defByID(after, 710015) == nil {
					t.Fatalf("definitions after delete: %v", after)
				}
			},
			gone: 710014,
		},
		{
			name: "add dropdown",
			edit: func(s *Server) (string, error) {
				return s.AddCustomField(CustomField{Name: "Deal Region", Type: "Dropdown", On: []string{"lead", "opportunity"},
					Choices: []string{"North", "South", "Ünter"}}, at)
			},
			defs: func(t *testing.T, before, after []map[string]any, id int64) {
				if !reflect.DeepEqual(after[:len(before)], before) || len(after) != len(before)+1 {
					t.Fatalf("add changed the other definitions or did not append: %d → %d", len(before), len(after))
				}
				for _, d := range before {
					if num(d["id"]) >= id {
						t.Fatalf("new id %d not above %v", id, d["id"])
					}
				}
				want := `{"available_on":["lead","opportunity"],"canonical_name":"deal_region","data_type":"Dropdown","id":710014,` +
					`"is_filterable":true,"name":"Deal Region","options":[{"id":904004,"name":"North","rank":0},` +
					`{"id":904005,"name":"South","rank":1},{"id":904006,"name":"Ünter","rank":2}]}`
				if got, _ := json.Marshal(after[len(before)]); string(got) != want {
					t.Fatalf("added definition\n got %s\nwant %s", got, want)
				}
			},
			addedOn: []string{"lead", "opportunity"},
			addType: "Dropdown",
		},
		{
			name: "add multiselect",
			edit: func(s *Server) (string, error) {
				return s.AddCustomField(CustomField{Name: "Skills", Type: "MultiSelect", On: []string{"task", "person", "company"},
					Choices: []string{"Go", "SQL"}}, at)
			},
			defs: func(t *testing.T, before, after []map[string]any, id int64) {
				d := after[len(after)-1]
				if num(d["id"]) != id || d["data_type"] != "MultiSelect" || len(d["options"].([]any)) != 2 {
					t.Fatalf("added definition %v", d)
				}
			},
			addedOn: []string{"task", "person", "company"},
			addType: "MultiSelect",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestClient(t, smallConfig())
			if tc.setup != nil {
				tc.setup(t, c.srv)
			}
			defsBefore := c.definitions()
			before := map[string]map[int64]map[string]any{}
			for _, ct := range customTables {
				before[ct.path] = c.served(ct.path)
			}
			sid, err := tc.edit(c.srv)
			if err != nil {
				t.Fatal(err)
			}
			id, err := strconv.ParseInt(sid, 10, 64)
			if err != nil {
				t.Fatalf("id %q: %v", sid, err)
			}
			defsAfter := c.definitions()
			if snap, _ := json.Marshal(c.srv.Snapshot("custom_field_definitions")); !bytes.Equal(snap, mustJSON(t, defsAfter)) ||
				c.srv.Count("custom_field_definitions") != len(defsAfter) {
				t.Fatal("Snapshot/Count of custom_field_definitions disagree with GET")
			}
			tc.defs(t, defsBefore, defsAfter, id)
			for _, ct := range customTables {
				after := c.served(ct.path)
				if len(after) != len(before[ct.path]) {
					t.Fatalf("%s: %d records, was %d", ct.path, len(after), len(before[ct.path]))
				}
				added := slices.Contains(tc.addedOn, ct.kind)
				for rid, b := range before[ct.path] {
					a := after[rid]
					if !reflect.DeepEqual(withoutCustom(a), withoutCustom(b)) {
						t.Fatalf("%s %d: a field other than custom_fields changed (date_modified %v → %v)",
							ct.path, rid, b["date_modified"], a["date_modified"])
					}
					want := slices.DeleteFunc(slices.Clone(cfEntries(b)), func(x any) bool { return entryID(x) == tc.gone })
					if added {
						want = append(want, map[string]any{"custom_field_definition_id": float64(id), "value": unset(tc.addType)})
					}
					if got := cfEntries(a); !reflect.DeepEqual(got, want) {
						t.Fatalf("%s %d: custom_fields\n got %v\nwant %v", ct.path, rid, got, want)
					}
				}
				// Snapshot is what a correct replica holds: the records as now served.
				snap := c.srv.Snapshot(ct.path)
				if len(snap) != len(after) {
					t.Fatalf("%s: Snapshot has %d rows, search %d", ct.path, len(snap), len(after))
				}
				for _, r := range snap {
					if !reflect.DeepEqual(r, after[num(r["id"])]) {
						t.Fatalf("%s %v: Snapshot differs from search", ct.path, r["id"])
					}
				}
			}
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fitValue reports whether v is a well-typed non-null value of the data type; options are the
// definition's option ids.
func fitValue(dataType string, v any, options []int64) bool {
	switch dataType {
	case "String", "Text", "URL":
		_, ok := v.(string)
		return ok
	case "Checkbox":
		_, ok := v.(bool)
		return ok
	case "Dropdown":
		f, ok := v.(float64)
		return ok && slices.Contains(options, int64(f))
	case "MultiSelect":
		l, ok := v.([]any)
		if !ok || len(l) == 0 {
			return false
		}
		for _, x := range l {
			if f, ok := x.(float64); !ok || !slices.Contains(options, int64(f)) {
				return false
			}
		}
		return true
	case "Connect":
		l, ok := v.([]any)
		return ok && len(l) >= 1 && len(l) <= 2
	default: // Date, Float, Percentage, Currency
		f, ok := v.(float64)
		return ok && f == math.Trunc(f*4)/4
	}
}

func optionIDs(def map[string]any) []int64 {
	var out []int64
	if opts, ok := def["options"].([]any); ok {
		for _, o := range opts {
			out = append(out, num(o.(map[string]any)["id"]))
		}
	}
	return out
}

// TestAddedCustomFieldValuesFollowAt: an added field has values only on record versions whose
// date_modified is at or after the add, for every data type: all unset when added after every
// record, then carried by records updated or created since, which an incremental search finds.
func TestAddedCustomFieldValuesFollowAt(t *testing.T) {
	types := []struct {
		typ     string
		choices []string
	}{
		{"String", nil}, {"Text", nil}, {"URL", nil}, {"Dropdown", []string{"a", "b", "c"}},
		{"MultiSelect", []string{"x", "y"}}, {"Date", nil}, {"Checkbox", nil}, {"Float", nil},
		{"Percentage", nil}, {"Currency", nil}, {"Connect", nil},
	}
	for _, tt := range types {
		t.Run(tt.typ, func(t *testing.T) {
			cfg := smallConfig()
			cfg.ConnectValues = true
			c := newTestClient(t, cfg)
			mid := testEpoch.Add(-200 * 24 * time.Hour) // part of the records were modified since
			sid, err := c.srv.AddCustomField(CustomField{Name: "New " + tt.typ, Type: tt.typ, On: []string{"person", "task"}, Choices: tt.choices}, mid)
			if err != nil {
				t.Fatal(err)
			}
			id, _ := strconv.ParseInt(sid, 10, 64)
			def := defByID(c.definitions(), id)
			if def == nil || def["data_type"] != tt.typ {
				t.Fatalf("definition %s not listed: %v", sid, def)
			}
			opts := optionIDs(def)
			var set, newer int
			check := func(rec map[string]any, since int64) {
				v, ok := entryValue(rec, id)
				if !ok {
					t.Fatalf("record %v does not list %d", rec["id"], id)
				}
				if num(rec["date_modified"]) < since {
					if !reflect.DeepEqual(v, unset(tt.typ)) {
						t.Fatalf("record %v modified %v before the add carries %v", rec["id"], rec["date_modified"], v)
					}
					return
				}
				newer++
				if reflect.DeepEqual(v, unset(tt.typ)) {
					return
				}
				set++
				if !fitValue(tt.typ, v, opts) {
					t.Fatalf("record %v: %s value %#v", rec["id"], tt.typ, v)
				}
			}
			for _, path := range []string{"people", "tasks"} {
				for _, rec := range c.served(path) {
					check(rec, mid.Unix())
				}
			}
			if newer < 100 || math.Abs(float64(set)/float64(newer)-0.55) > 0.1 {
				t.Fatalf("%d of %d records modified since the add carry a value, want ~55%%", set, newer)
			}
			// A later add: nothing carries it until records are updated or created.
			later := testEpoch.Add(time.Hour)
			sid2, err := c.srv.AddCustomField(CustomField{Name: "Later", Type: tt.typ, On: []string{"person"}, Choices: tt.choices}, later)
			if err != nil {
				t.Fatal(err)
			}
			id2, _ := strconv.ParseInt(sid2, 10, 64)
			if id2 <= id {
				t.Fatalf("second id %d not above %d", id2, id)
			}
			bump := later.Add(time.Minute)
			touched := append(c.srv.UpdateRecords("people", 60, bump), c.srv.AddRecords("people", 20, bump)...)
			rows := c.searchAll("people", map[string]any{"sort_by": "date_modified", "minimum_modified_date": later.Unix()})
			if got := idStrings(ids(rows)); !sameSet(got, touched) {
				t.Fatalf("incremental search after the add: %d records, want the %d touched", len(got), len(touched))
			}
			id, opts, set, newer = id2, optionIDs(defByID(c.definitions(), id2)), 0, 0
			for _, rec := range c.served("people") {
				check(rec, later.Unix())
			}
			if newer != len(touched) || set == 0 || set == newer {
				t.Fatalf("%d of %d touched people carry the later field", set, newer)
			}
		})
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestCustomFieldEditorErrors(t *testing.T) {
	s, err := New(smallConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteCustomField("710005", testEpoch); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func() error
	}{
		{"rename unknown id", func() error { return s.RenameCustomField("710999", "x", testEpoch) }},
		{"rename non-decimal id", func() error { return s.RenameCustomField("cf_710001", "x", testEpoch) }},
		{"rename deleted", func() error { return s.RenameCustomField("710005", "x", testEpoch) }},
		{"rename to empty", func() error { return s.RenameCustomField("710001", "", testEpoch) }},
		{"delete unknown", func() error { return s.DeleteCustomField("1", testEpoch) }},
		{"delete twice", func() error { return s.DeleteCustomField("710005", testEpoch) }},
		{"option of unknown id", func() error { return s.RenameCustomFieldOption("710999", "Gold", "x", testEpoch) }},
		{"unknown option label", func() error { return s.RenameCustomFieldOption("710001", "Platinum", "x", testEpoch) }},
		{"option label is case-sensitive", func() error { return s.RenameCustomFieldOption("710001", "gold", "x", testEpoch) }},
		{"option of a non-choice field", func() error { return s.RenameCustomFieldOption("710004", "Gold", "x", testEpoch) }},
		{"option to a taken label", func() error { return s.RenameCustomFieldOption("710001", "Gold", "Silver", testEpoch) }},
		{"option to empty", func() error { return s.RenameCustomFieldOption("710001", "Gold", "", testEpoch) }},
		{"add unknown type", func() error { return add(s, CustomField{Name: "x", Type: "text", On: []string{"person"}}) }},
		{"add without name", func() error { return add(s, CustomField{Type: "String", On: []string{"person"}}) }},
		{"add on nothing", func() error { return add(s, CustomField{Name: "x", Type: "String"}) }},
		{"add on unknown kind", func() error { return add(s, CustomField{Name: "x", Type: "String", On: []string{"contact"}}) }},
		{"add on a kind twice", func() error { return add(s, CustomField{Name: "x", Type: "String", On: []string{"task", "task"}}) }},
		{"add dropdown without choices", func() error { return add(s, CustomField{Name: "x", Type: "Dropdown", On: []string{"task"}}) }},
		{"add string with choices", func() error {
			return add(s, CustomField{Name: "x", Type: "String", On: []string{"task"}, Choices: []string{"a"}})
		}},
		{"add repeated choice", func() error {
			return add(s, CustomField{Name: "x", Type: "MultiSelect", On: []string{"task"}, Choices: []string{"a", "a"}})
		}},
		{"add Close's Multi", func() error {
			return add(s, CustomField{Name: "x", Type: "Dropdown", On: []string{"task"}, Choices: []string{"a"}, Multi: true})
		}},
	}
	defs := s.Snapshot("custom_field_definitions")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); err == nil {
				t.Fatal("no error")
			}
		})
	}
	if got := s.Snapshot("custom_field_definitions"); !reflect.DeepEqual(got, defs) {
		t.Fatal("a refused edit changed the definitions")
	}
}

func add(s *Server, f CustomField) error {
	_, err := s.AddCustomField(f, testEpoch)
	return err
}

// pairRecords calls fn with each custom field entry of the same record on two servers built
// from one seed, after checking everything else agrees; types maps definition ids to data_type.
func pairRecords(t *testing.T, a, b *Server, fn func(dataType string, va, vb any)) {
	t.Helper()
	types := map[int64]string{}
	for _, d := range a.Snapshot("custom_field_definitions") {
		types[num(d["id"])] = d["data_type"].(string)
	}
	for _, ct := range customTables {
		ra, rb := a.Snapshot(ct.path), b.Snapshot(ct.path)
		if len(ra) != len(rb) {
			t.Fatalf("%s: %d vs %d records", ct.path, len(ra), len(rb))
		}
		for i := range ra {
			if !reflect.DeepEqual(withoutCustom(ra[i]), withoutCustom(rb[i])) {
				t.Fatalf("%s %v: fields other than custom_fields differ", ct.path, ra[i]["id"])
			}
			ea, eb := cfEntries(ra[i]), cfEntries(rb[i])
			if len(ea) != len(eb) {
				t.Fatalf("%s %v: %d vs %d custom fields", ct.path, ra[i]["id"], len(ea), len(eb))
			}
			for j := range ea {
				id := entryID(ea[j])
				if entryID(eb[j]) != id {
					t.Fatalf("%s %v: entry %d is %d vs %d", ct.path, ra[i]["id"], j, id, entryID(eb[j]))
				}
				fn(types[id], ea[j].(map[string]any)["value"], eb[j].(map[string]any)["value"])
			}
		}
	}
}

func TestUnfitCustomValues(t *testing.T) {
	clean, _ := New(smallConfig())
	allOptions := map[int64]bool{}
	for _, d := range clean.Snapshot("custom_field_definitions") {
		for _, o := range optionIDs(d) {
			allOptions[o] = true
		}
	}
	if allOptions[unfitOptionID] {
		t.Fatal("the unfit option id is a real option")
	}
	wrong := map[string][]any{
		"Float": {"n/a", "TBD"}, "Percentage": {"n/a", "TBD"}, "Currency": {"n/a", "TBD"},
		"Date": {"31/31/2024", "soon"}, "Checkbox": {"yes"}, "Dropdown": {float64(unfitOptionID)},
	}
	for _, frac := range []float64{0.25, 1} {
		t.Run(strconv.FormatFloat(frac, 'f', -1, 64), func(t *testing.T) {
			cfg := smallConfig()
			cfg.UnfitCustomValues = frac
			unfit, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			var candidates, spoiled int
			seen := map[any]bool{}
			pairRecords(t, clean, unfit, func(dataType string, cv, uv any) {
				bad, unfittable := wrong[dataType]
				if unfittable && cv != nil {
					candidates++
				}
				if reflect.DeepEqual(cv, uv) {
					return
				}
				if !unfittable || cv == nil || !slices.Contains(bad, uv) {
					t.Fatalf("%s value %#v became %#v", dataType, cv, uv)
				}
				seen[uv] = true
				spoiled++
			})
			got := float64(spoiled) / float64(candidates)
			if candidates < 1000 || math.Abs(got-frac) > 0.04 {
				t.Fatalf("%d of %d values unfit (%.3f), want ~%v", spoiled, candidates, got, frac)
			}
			if len(seen) != 6 { // every wrong value shows up
				t.Fatalf("wrong values seen: %v", seen)
			}
		})
	}
	for _, bad := range []float64{-0.1, 1.5, math.NaN()} {
		cfg := smallConfig()
		cfg.UnfitCustomValues = bad
		if _, err := New(cfg); err == nil {
			t.Fatalf("UnfitCustomValues %v accepted", bad)
		}
	}
}

func TestConnectValues(t *testing.T) {
	clean, _ := New(smallConfig())
	cfg := smallConfig()
	cfg.ConnectValues = true
	s, _ := New(cfg)
	var n, set, pairs int
	pairRecords(t, clean, s, func(dataType string, cv, v any) {
		if dataType != "Connect" {
			if !reflect.DeepEqual(cv, v) {
				t.Fatalf("ConnectValues changed a %s value", dataType)
			}
			return
		}
		if cv != nil {
			t.Fatalf("Connect value %v without ConnectValues", cv)
		}
		n++
		if v == nil {
			return
		}
		set++
		l, ok := v.([]any)
		if !ok || len(l) < 1 || len(l) > 2 || (len(l) == 2 && l[0] == l[1]) {
			t.Fatalf("Connect value %#v", v)
		}
		for _, x := range l {
			if s.slotOf(entCompanies, num(x)) < 0 {
				t.Fatalf("Connect value %v: %v is no company", v, x)
			}
		}
		if len(l) == 2 {
			pairs++
		}
	})
	if n != 350 || math.Abs(float64(set)/float64(n)-0.55) > 0.08 || pairs == 0 || pairs == set {
		t.Fatalf("%d of %d Connect values set (%d pairs)", set, n, pairs)
	}
}

func TestCustomDatesAsText(t *testing.T) {
	clean, _ := New(smallConfig())
	cfg := smallConfig()
	cfg.CustomDatesAsText = true
	s, _ := New(cfg)
	dates := 0
	pairRecords(t, clean, s, func(dataType string, cv, v any) {
		if dataType != "Date" || cv == nil {
			if !reflect.DeepEqual(cv, v) {
				t.Fatalf("CustomDatesAsText changed a %s value %v to %v", dataType, cv, v)
			}
			return
		}
		dates++
		want := time.Unix(num(cv), 0).UTC().Format("1/2/2006")
		if v != want {
			t.Fatalf("Date %v served as %#v, want %q", cv, v, want)
		}
	})
	if dates < 100 {
		t.Fatalf("only %d Date values", dates)
	}
}

// editAll applies one of each edit.
func editAll(t *testing.T, s *Server) {
	t.Helper()
	if _, err := s.AddCustomField(CustomField{Name: "Tier 2", Type: "Dropdown", On: []string{"person", "company"},
		Choices: []string{"A", "B"}}, testEpoch.Add(-100*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		s.RenameCustomField("710004", "Headline", testEpoch),
		s.RenameCustomFieldOption("710001", "Gold", "Platinum", testEpoch),
		s.DeleteCustomField("710002", testEpoch),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestCustomFieldsPerServer: editing one server changes neither another live server nor the
// defaults a new one starts from.
func TestCustomFieldsPerServer(t *testing.T) {
	a, _ := New(smallConfig())
	b, _ := New(smallConfig())
	tables := []string{"custom_field_definitions", "people", "companies", "opportunities"}
	snap := func(s *Server) []byte {
		var out []byte
		for _, table := range tables {
			s.EachRow(table, func(raw []byte) { out = append(out, raw...) })
		}
		return out
	}
	want := snap(b)
	editAll(t, a)
	if bytes.Equal(snap(a), want) {
		t.Fatal("edits changed nothing")
	}
	if !bytes.Equal(snap(b), want) {
		t.Fatal("editing one server changed another")
	}
	c, _ := New(smallConfig())
	if !bytes.Equal(snap(c), want) {
		t.Fatal("editing one server changed the defaults of a new one")
	}
}

func TestCustomFieldEditsDeterministic(t *testing.T) {
	cfg := smallConfig()
	cfg.UnfitCustomValues, cfg.ConnectValues = 0.1, true
	var out [2][]byte
	for i := range out {
		s, _ := New(cfg)
		editAll(t, s)
		s.UpdateRecords("people", 30, testEpoch.Add(time.Hour))
		s.AddRecords("companies", 10, testEpoch.Add(time.Hour))
		for _, table := range Tables() {
			s.EachRow(table, func(raw []byte) { out[i] = append(out[i], raw...) })
		}
	}
	if !bytes.Equal(out[0], out[1]) {
		t.Fatal("the same seed and edits gave different bytes")
	}
}

// TestSetSmallListCustomFieldDefinitions: an override replaces only what is served and stays
// in effect through edits; records keep following the server's definitions.
func TestSetSmallListCustomFieldDefinitions(t *testing.T) {
	c := newTestClient(t, smallConfig())
	override := []map[string]any{{"id": 1, "name": "Only", "canonical_name": nil, "data_type": "String",
		"available_on": []string{"person"}, "is_filterable": false}}
	people := c.served("people")
	c.srv.SetSmallList("custom_field_definitions", override)
	served := c.definitions()
	if len(served) != 1 || served[0]["name"] != "Only" || c.srv.Count("custom_field_definitions") != 1 {
		t.Fatalf("override not served: %v", served)
	}
	if !reflect.DeepEqual(c.served("people"), people) {
		t.Fatal("overriding the served definitions changed records")
	}
	if err := c.srv.DeleteCustomField("710004", testEpoch); err != nil {
		t.Fatal(err)
	}
	if got := c.definitions(); !reflect.DeepEqual(got, served) {
		t.Fatalf("an edit replaced the override: %v", got)
	}
	for _, rec := range c.served("people") {
		if _, ok := entryValue(rec, 710004); ok {
			t.Fatal("deleted definition still on a record")
		}
	}
}
