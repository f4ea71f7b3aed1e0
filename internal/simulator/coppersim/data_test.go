package coppersim

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
	"unicode/utf8"
)

func TestDeterminism(t *testing.T) {
	cfg := smallConfig()
	cfg.FutureDated, cfg.SameTimestamp = 3, 10
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := New(cfg)
	for _, table := range Tables() {
		ja, _ := json.Marshal(a.Snapshot(table))
		jb, _ := json.Marshal(b.Snapshot(table))
		if !bytes.Equal(ja, jb) {
			t.Fatalf("%s differs between two servers with the same config", table)
		}
	}
	// Same mutations, same results.
	at := testEpoch.Add(time.Minute)
	for _, s := range []*Server{a, b} {
		s.UpdateRecords("people", 5, at)
		s.DeleteRecords("companies", 4, at)
		s.AddRecords("activities_search", 3, at)
	}
	for _, table := range []string{"people", "companies", "activities_search", "tags"} {
		ja, _ := json.Marshal(a.Snapshot(table))
		jb, _ := json.Marshal(b.Snapshot(table))
		if !bytes.Equal(ja, jb) {
			t.Fatalf("%s differs after identical mutations", table)
		}
	}
	cfg.Seed++
	c, _ := New(cfg)
	ja, _ := json.Marshal(a.Snapshot("people"))
	jc, _ := json.Marshal(c.Snapshot("people"))
	if bytes.Equal(ja, jc) {
		t.Fatal("a different seed gave the same people")
	}
}

func TestTimestampsAndCounts(t *testing.T) {
	cfg := smallConfig()
	cfg.FutureDated = 5
	cfg.Span = 90 * 24 * time.Hour
	s, _ := New(cfg)
	lo, hi := testEpoch.Add(-cfg.Span).Unix(), testEpoch.Unix()
	sizes := map[string]int{"people": cfg.People, "companies": cfg.Companies, "leads": cfg.Leads,
		"opportunities": cfg.Opportunities, "projects": cfg.Projects, "tasks": cfg.Tasks,
		"activities_search": cfg.Activities, "users": cfg.Users}
	for table, n := range sizes {
		rows := s.Snapshot(table)
		if len(rows) != n || s.Count(table) != n {
			t.Fatalf("%s: %d rows, Count %d, want %d", table, len(rows), s.Count(table), n)
		}
		future := 0
		for _, r := range rows {
			for _, f := range []string{"date_created", "date_modified", "activity_date"} {
				v, ok := r[f]
				if !ok {
					continue
				}
				ts := num(v)
				if ts >= hi && f != "date_created" {
					future++
					continue
				}
				if ts < lo || ts >= hi {
					t.Fatalf("%s %v: %s=%d outside [%d,%d)", table, r["id"], f, ts, lo, hi)
				}
			}
			if table != "activities_search" && table != "users" && num(r["date_modified"]) < num(r["date_created"]) {
				t.Fatalf("%s %v modified before created", table, r["id"])
			}
		}
		want := 0
		switch table {
		case "people":
			want = 5
		case "activities_search":
			want = 10 // activity_date and date_modified of 5 records
		}
		if future != want {
			t.Fatalf("%s: %d future-dated values, want %d", table, future, want)
		}
	}
	if n := len(s.Snapshot("users")); n != 5 {
		t.Fatalf("users %d", n)
	}
}

func TestCustomFieldsAndText(t *testing.T) {
	s, _ := New(smallConfig())
	types := map[int64]string{}
	for _, d := range s.cf.defs {
		types[d.ID] = d.DataType
	}
	nonASCII := 0
	for e := entity(0); e < numEntities; e++ {
		table := entities[e].table
		for _, r := range s.Snapshot(table) {
			raw, _ := json.Marshal(r)
			if !utf8.Valid(raw) {
				t.Fatalf("%s: invalid UTF-8", table)
			}
			if !bytes.Equal(raw, bytes.ToValidUTF8(raw, nil)) || bytes.ContainsAny(raw, "é日🚀ö") {
				nonASCII++
			}
			if e == entActivities || e == entUsers {
				continue
			}
			cfs := r["custom_fields"].([]any)
			defs := s.cf.byEntity[e]
			if len(cfs) != len(defs) {
				t.Fatalf("%s: %d custom fields, want %d", table, len(cfs), len(defs))
			}
			for i, x := range cfs {
				cf := x.(map[string]any)
				id := num(cf["custom_field_definition_id"])
				if id != defs[i].ID {
					t.Fatalf("%s: custom field %d is %d, want %d", table, i, id, defs[i].ID)
				}
				v := cf["value"]
				ok := true
				switch types[id] {
				case "MultiSelect":
					_, ok = v.([]any)
				case "Connect":
					ok = v == nil
				case "String", "Text", "URL":
					_, ok = v.(string)
				case "Checkbox":
					_, ok = v.(bool)
				default: // Dropdown, Date, Float, Percentage, Currency
					_, ok = v.(float64)
				}
				if !ok && !(v == nil && types[id] != "MultiSelect") {
					t.Fatalf("%s: custom field %d (%s) has value %#v", table, id, types[id], v)
				}
			}
		}
	}
	if nonASCII == 0 {
		t.Fatal("no unicode text generated")
	}
}

// TestShapesMatchReference compares key sets with the reference examples
// when the shared reference folder is available.
func TestShapesMatchReference(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "..", "shared", "reference", "copper")
	if _, err := os.Stat(dir); err != nil {
		dir = "/work/shared/reference/copper"
		if _, err := os.Stat(dir); err != nil {
			t.Skip("reference examples not available")
		}
	}
	s, _ := New(smallConfig())
	for _, table := range Tables() {
		raw, err := os.ReadFile(filepath.Join(dir, table+".json"))
		if err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		var ref []map[string]any
		if table == "account" {
			var one map[string]any
			_ = json.Unmarshal(raw, &one)
			ref = []map[string]any{one}
		} else if err := json.Unmarshal(raw, &ref); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		got := s.Snapshot(table)
		if len(got) == 0 {
			t.Fatalf("%s: empty", table)
		}
		// Keys every reference row has must be served; nothing beyond the
		// union of reference keys may be (optional keys: options, currency).
		union, common := map[string]bool{}, map[string]int{}
		for _, r := range ref {
			for k := range r {
				union[k] = true
				common[k]++
			}
		}
		for _, r := range got {
			for k := range r {
				if !union[k] {
					t.Fatalf("%s: unexpected key %q", table, k)
				}
			}
			for k, n := range common {
				if _, ok := r[k]; n == len(ref) && !ok {
					t.Fatalf("%s: missing key %q in %v", table, k, keysOf(r))
				}
			}
		}
	}
}

func keysOf(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestSetSmallList(t *testing.T) {
	c := newTestClient(t, smallConfig())
	tags := c.srv.Snapshot("tags")
	c.srv.SetSmallList("tags", tags[1:])
	got := c.do("GET", "/tags", nil).must(t, 200).rows(t)
	if len(got) != len(tags)-1 || c.srv.Count("tags") != len(tags)-1 || got[0]["name"] != tags[1]["name"] {
		t.Fatalf("tags after removal: %d", len(got))
	}
	c.srv.SetSmallList("loss_reasons", []map[string]any{{"id": 1, "name": "Only"}})
	if r := c.do("GET", "/loss_reasons", nil).must(t, 200); string(r.body) != `[{"id":1,"name":"Only"}]` {
		t.Fatalf("loss_reasons %s", r.body)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("SetSmallList(people) did not panic")
		}
	}()
	c.srv.SetSmallList("people", nil)
}

func TestTagCountsFollowMutations(t *testing.T) {
	s, _ := New(smallConfig())
	sum := func() float64 {
		var n float64
		for _, r := range s.Snapshot("tags") {
			n += r["count_people"].(float64)
		}
		return n
	}
	var want float64
	for _, p := range s.Snapshot("people") {
		want += float64(len(p["tags"].([]any)))
	}
	if got := sum(); got != want {
		t.Fatalf("count_people sum %v, tags on people %v", got, want)
	}
	s.DeleteRecords("people", 100, testEpoch)
	want = 0
	for _, p := range s.Snapshot("people") {
		want += float64(len(p["tags"].([]any)))
	}
	if got := sum(); got != want {
		t.Fatalf("after delete: %v vs %v", got, want)
	}
}
