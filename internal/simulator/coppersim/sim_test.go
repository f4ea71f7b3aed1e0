package coppersim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAuth(t *testing.T) {
	c := newTestClient(t, smallConfig())
	good := c.hdr.Clone()
	cases := []struct {
		name   string
		header string
		value  string // "" deletes the header
	}{
		{"missing token", "X-PW-AccessToken", ""},
		{"wrong token", "X-PW-AccessToken", "nope"},
		{"missing application", "X-PW-Application", ""},
		{"wrong application", "X-PW-Application", "developer"},
		{"missing email", "X-PW-UserEmail", ""},
		{"wrong email", "X-PW-UserEmail", "someone@else.example"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.hdr = good.Clone()
			if tc.value == "" {
				c.hdr.Del(tc.header)
			} else {
				c.hdr.Set(tc.header, tc.value)
			}
			for _, req := range [][2]string{{"GET", "/users/me"}, {"GET", "/account"}, {"POST", "/people/search"}} {
				r := c.do(req[0], req[1], nil).must(t, 401)
				var body struct {
					Success bool
					Status  int
					Message string
				}
				if err := json.Unmarshal(r.body, &body); err != nil || body.Success || body.Status != 401 || body.Message == "" {
					t.Fatalf("%s: bad 401 body %s", req[1], r.body)
				}
			}
		})
	}
	c.hdr = good
	me := c.do("GET", "/users/me", nil).must(t, 200)
	var user map[string]any
	if err := json.Unmarshal(me.body, &user); err != nil || user["email"] != c.srv.cfg.UserEmail {
		t.Fatalf("users/me = %s", me.body)
	}
	acct := c.do("GET", "/account", nil).must(t, 200)
	if !bytes.Contains(acct.body, []byte(`"setting_enable_leads":true`)) {
		t.Fatalf("account = %s", acct.body)
	}
}

func TestPagingAndTotal(t *testing.T) {
	cfg := smallConfig()
	cfg.People = 450
	c := newTestClient(t, cfg)
	seen := map[int64]bool{}
	for page, want := range []int{200, 200, 50, 0} {
		rows, total := c.search("people", map[string]any{"page_number": page + 1, "page_size": 200, "sort_by": "date_created"})
		if len(rows) != want || total != 450 {
			t.Fatalf("page %d: %d rows, total %d; want %d, 450", page+1, len(rows), total, want)
		}
		for _, id := range ids(rows) {
			if seen[id] {
				t.Fatalf("duplicate id %d", id)
			}
			seen[id] = true
		}
	}
	if len(seen) != c.srv.Count("people") {
		t.Fatalf("paged %d ids, Count %d", len(seen), c.srv.Count("people"))
	}
	if rows, _ := c.search("people", nil); len(rows) != DefaultPageSize {
		t.Fatalf("default page size: %d rows", len(rows))
	}
	for _, body := range []map[string]any{
		{"page_size": 201}, {"page_size": 0}, {"page_size": -5}, {"page_number": 0},
		{"page_size": "abc"}, {"sort_direction": "up"},
	} {
		c.do("POST", "/people/search", body).must(t, 422)
	}
	c.do("POST", "/people/search", "{not json").must(t, 400)
	// Query-string paging (one real client sends it there).
	r := c.do("POST", "/people/search?page_size=7", map[string]any{}).must(t, 200)
	if n := len(r.rows(t)); n != 7 {
		t.Fatalf("query page_size: %d rows", n)
	}
}

func TestUnknownKeys(t *testing.T) {
	c := newTestClient(t, smallConfig())
	cases := []struct {
		entity string
		body   map[string]any
	}{
		{"people", map[string]any{"foo": 1}},
		{"people", map[string]any{"tags": []string{"vip"}}},
		{"companies", map[string]any{"include_converted_leads": true}},
		{"activities", map[string]any{"minimum_modified_date": 1}},
		{"activities", map[string]any{"ids": []int{1}}},
		{"users", map[string]any{"sort_by": "name"}},
	}
	for _, tc := range cases {
		r := c.do("POST", "/"+tc.entity+"/search", tc.body).must(t, 422)
		if !bytes.Contains(r.body, []byte(`"success":false`)) {
			t.Fatalf("%v: body %s", tc.body, r.body)
		}
	}
}

// searchTables are the six entities with created/modified filters.
var searchTables = []string{"people", "companies", "leads", "opportunities", "projects", "tasks"}

func TestDateFiltersInclusive(t *testing.T) {
	cfg := smallConfig()
	c := newTestClient(t, cfg)
	for _, table := range searchTables {
		t.Run(table, func(t *testing.T) {
			snap := c.srv.Snapshot(table)
			for _, field := range []string{"date_modified", "date_created"} {
				// A window [lo, hi] whose bounds are actual record values.
				vals := make([]int64, len(snap))
				for i, r := range snap {
					vals[i] = num(r[field])
				}
				slices.Sort(vals)
				lo, hi := vals[len(vals)/4], vals[len(vals)/2]
				var want []int64
				for _, r := range snap {
					if v := num(r[field]); v >= lo && v <= hi {
						want = append(want, num(r["id"]))
					}
				}
				prefix := strings.TrimSuffix(field, "d")[5:] // "modifie" / "create"
				body := map[string]any{"minimum_" + prefix + "d_date": lo, "maximum_" + prefix + "d_date": hi,
					"sort_by": "date_modified", "include_converted_leads": true}
				if table != "leads" {
					delete(body, "include_converted_leads")
				}
				got := c.searchAll(table, body)
				gotIDs := ids(got)
				slices.Sort(gotIDs)
				slices.Sort(want)
				if !slices.Equal(gotIDs, want) {
					t.Fatalf("%s in [%d,%d]: got %d ids, want %d", field, lo, hi, len(gotIDs), len(want))
				}
				// sorted by date_modified asc, ties by id
				for i := 1; i < len(got); i++ {
					a, b := got[i-1], got[i]
					if num(a["date_modified"]) > num(b["date_modified"]) ||
						(num(a["date_modified"]) == num(b["date_modified"]) && num(a["id"]) > num(b["id"])) {
						t.Fatalf("not sorted at %d", i)
					}
				}
			}
		})
	}
}

func TestSortOrders(t *testing.T) {
	c := newTestClient(t, smallConfig())
	for e := entity(0); e < numEntities; e++ {
		for name := range sortFields[e] {
			for _, dir := range []string{"asc", "desc"} {
				body := map[string]any{"sort_by": name, "sort_direction": dir, "page_size": 200}
				if e == entLeads {
					body["include_converted_leads"] = true
				}
				all := c.searchAll(entities[e].path, body)
				if len(all) != c.srv.Count(entities[e].table) {
					t.Fatalf("%s sort_by %s %s: %d rows, want %d", entities[e].path, name, dir, len(all), c.srv.Count(entities[e].table))
				}
			}
		}
		if sortFields[e] != nil {
			c.do("POST", "/"+entities[e].path+"/search", map[string]any{"sort_by": "id"}).must(t, 422)
		}
	}
	// Visible fields really are sorted, both directions, with nulls first asc.
	checks := []struct{ entity, sortBy, field string }{
		{"people", "first_name", "first_name"}, {"people", "last_name", "last_name"},
		{"companies", "name", "name"}, {"opportunities", "name", "name"},
		{"tasks", "due_date", "due_date"}, {"companies", "date_created", "date_created"},
	}
	for _, ck := range checks {
		for _, desc := range []bool{false, true} {
			dir := map[bool]string{false: "asc", true: "desc"}[desc]
			rows := c.searchAll(ck.entity, map[string]any{"sort_by": ck.sortBy, "sort_direction": dir})
			for i := 1; i < len(rows); i++ {
				a, b := rows[i-1][ck.field], rows[i][ck.field]
				if desc {
					a, b = b, a
				}
				if cmpJSON(a, b) > 0 {
					t.Fatalf("%s by %s %s: %v before %v", ck.entity, ck.sortBy, dir, rows[i-1][ck.field], rows[i][ck.field])
				}
			}
		}
	}
	// Default sorts: people first_name, companies date_modified.
	p, _ := c.search("people", map[string]any{"page_size": 200})
	for i := 1; i < len(p); i++ {
		if cmpJSON(p[i-1]["first_name"], p[i]["first_name"]) > 0 {
			t.Fatal("people default sort is not first_name")
		}
	}
	co, _ := c.search("companies", map[string]any{"page_size": 200})
	for i := 1; i < len(co); i++ {
		if num(co[i-1]["date_modified"]) > num(co[i]["date_modified"]) {
			t.Fatal("companies default sort is not date_modified")
		}
	}
}

// cmpJSON orders decoded JSON scalars like the server: null first.
func cmpJSON(a, b any) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	switch x := a.(type) {
	case float64:
		y := b.(float64)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	case string:
		return strings.Compare(x, b.(string))
	}
	return 0
}

func TestSameTimestampPaging(t *testing.T) {
	cfg := smallConfig()
	cfg.SameTimestamp = 53
	c := newTestClient(t, cfg)
	ts := c.srv.sameTimestampValue()
	seen := map[int64]bool{}
	for page := 1; ; page++ {
		rows, total := c.search("people", map[string]any{"sort_by": "date_modified", "page_size": 10, "page_number": page,
			"minimum_modified_date": ts, "maximum_modified_date": ts})
		if total != 53 {
			t.Fatalf("total %d, want 53", total)
		}
		for _, r := range rows {
			if num(r["date_modified"]) != ts || seen[num(r["id"])] {
				t.Fatalf("bad row %v", r["id"])
			}
			seen[num(r["id"])] = true
		}
		if len(rows) < 10 {
			break
		}
	}
	if len(seen) != 53 {
		t.Fatalf("saw %d", len(seen))
	}
}

func TestIncludeConvertedLeads(t *testing.T) {
	c := newTestClient(t, smallConfig())
	all := c.srv.Count("leads")
	_, hidden := c.search("leads", map[string]any{})
	_, shown := c.search("leads", map[string]any{"include_converted_leads": true})
	if shown != all || hidden >= all || hidden == 0 {
		t.Fatalf("default total %d, with converted %d, count %d", hidden, shown, all)
	}
	for _, r := range c.searchAll("leads", nil) {
		if r["converted_at"] != nil {
			t.Fatalf("converted lead %v in default search", r["id"])
		}
	}
	conv := 0
	for _, r := range c.searchAll("leads", map[string]any{"include_converted_leads": true}) {
		if r["converted_at"] != nil {
			conv++
			if r["converted_contact_id"] == nil {
				t.Fatal("converted lead without contact")
			}
		}
	}
	if conv != all-hidden {
		t.Fatalf("%d converted, want %d", conv, all-hidden)
	}
	// status filter
	rows := c.searchAll("leads", map[string]any{"status_ids": []int{280101}, "include_converted_leads": true})
	for _, r := range rows {
		if num(r["status_id"]) != 280101 {
			t.Fatal("status_ids filter")
		}
	}
}

func TestMaxResultsCeiling(t *testing.T) {
	cfg := smallConfig()
	cfg.MaxResults = 100
	c := newTestClient(t, cfg)
	for page, want := range []int{30, 30, 30, 10, 0, 0} {
		rows, total := c.search("people", map[string]any{"page_size": 30, "page_number": page + 1, "sort_by": "date_modified"})
		if len(rows) != want || total != cfg.People {
			t.Fatalf("page %d: %d rows total %d, want %d rows total %d", page+1, len(rows), total, want, cfg.People)
		}
	}
	// Splitting the created window into parts under the ceiling reaches everything.
	seen := map[int64]bool{}
	span := (c.srv.end - c.srv.start) / 4
	for q := int64(0); q < 4; q++ {
		lo, hi := c.srv.start+q*span, c.srv.start+(q+1)*span-1
		if q == 3 {
			hi = c.srv.end
		}
		part := c.searchAll("people", map[string]any{"sort_by": "date_created", "minimum_created_date": lo, "maximum_created_date": hi})
		if len(part) >= 100 {
			t.Fatalf("quarter %d has %d rows", q, len(part))
		}
		for _, id := range ids(part) {
			seen[id] = true
		}
	}
	if len(seen) != cfg.People {
		t.Fatalf("split windows reached %d of %d", len(seen), cfg.People)
	}
}

func TestActivities(t *testing.T) {
	cfg := smallConfig()
	cfg.FutureDated = 4
	c := newTestClient(t, cfg)
	all := c.searchAll("activities", map[string]any{"sort_by": "activity_date", "sort_direction": "asc"})
	if len(all) != cfg.Activities {
		t.Fatalf("%d activities", len(all))
	}
	types := map[string]int{}
	future, earlierMod := 0, 0
	for i, r := range all {
		if i > 0 {
			a, b := all[i-1], r
			if num(a["activity_date"]) < num(b["activity_date"]) ||
				(num(a["activity_date"]) == num(b["activity_date"]) && num(a["id"]) < num(b["id"])) {
				t.Fatalf("not newest first at %d", i)
			}
		}
		if num(r["id"]) <= math.MaxInt32 {
			t.Fatalf("activity id %d not above 2^31", num(r["id"]))
		}
		typ := r["type"].(map[string]any)
		types[fmt.Sprintf("%s/%d", typ["category"], num(typ["id"]))]++
		if typ["category"] == "system" && (r["old_value"] == nil || r["new_value"] == nil || typ["name"] == nil) {
			t.Fatalf("system activity without values: %v", r)
		}
		if num(r["activity_date"]) >= c.srv.end {
			future++
		}
		if num(r["date_modified"]) < num(r["date_created"]) {
			earlierMod++
		}
	}
	for _, k := range []string{"user/0", "system/1", "system/3", "user/771001"} {
		if types[k] == 0 {
			t.Fatalf("no activity of type %s: %v", k, types)
		}
	}
	if future != 4 || earlierMod == 0 {
		t.Fatalf("future %d (want 4), date_modified<date_created %d", future, earlierMod)
	}
	// activity date window, inclusive
	lo, hi := num(all[400]["activity_date"]), num(all[100]["activity_date"])
	win := c.searchAll("activities", map[string]any{"minimum_activity_date": lo, "maximum_activity_date": hi})
	want := 0
	for _, r := range all {
		if d := num(r["activity_date"]); d >= lo && d <= hi {
			want++
		}
	}
	if len(win) != want || want < 300 {
		t.Fatalf("window: %d, want %d", len(win), want)
	}
	// parent filter
	parent := all[7]["parent"].(map[string]any)
	pr := c.searchAll("activities", map[string]any{"parent": map[string]any{"id": num(parent["id"]), "type": parent["type"]}})
	if len(pr) == 0 {
		t.Fatal("parent filter found nothing")
	}
	for _, r := range pr {
		p := r["parent"].(map[string]any)
		if num(p["id"]) != num(parent["id"]) || p["type"] != parent["type"] {
			t.Fatalf("parent filter returned %v", p)
		}
	}
	// activity_types filter
	st := c.searchAll("activities", map[string]any{"activity_types": []map[string]any{{"id": 3, "category": "system"}}})
	if len(st) != types["system/3"] {
		t.Fatalf("activity_types: %d, want %d", len(st), types["system/3"])
	}
}

func TestGetLists(t *testing.T) {
	c := newTestClient(t, smallConfig())
	for _, name := range []string{"contact_types", "custom_field_definitions", "customer_sources", "lead_statuses",
		"loss_reasons", "pipeline_stages", "pipelines", "tags", "custom_activity_types"} {
		r := c.do("GET", "/"+name, nil).must(t, 200)
		if rows := r.rows(t); len(rows) == 0 {
			t.Fatalf("%s empty", name)
		}
		if r.header.Get("X-PW-TOTAL") != "" {
			t.Fatalf("%s: lists are unpaginated, no X-PW-TOTAL", name)
		}
	}
	var at map[string][]map[string]any
	if err := json.Unmarshal(c.do("GET", "/activity_types", nil).must(t, 200).body, &at); err != nil || len(at["user"]) == 0 || len(at["system"]) == 0 {
		t.Fatalf("activity_types: %v", err)
	}
	tags := c.do("GET", "/tags", nil).must(t, 200).rows(t)
	for i := 1; i < len(tags); i++ {
		if tags[i-1]["name"].(string) >= tags[i]["name"].(string) {
			t.Fatal("tags not sorted by name")
		}
	}
	if _, ok := tags[0]["count_people"]; !ok {
		t.Fatalf("tag shape: %v", tags[0])
	}
	stages := c.do("GET", "/pipeline_stages/pipeline/612002", nil).must(t, 200).rows(t)
	if len(stages) != 3 || num(stages[0]["pipeline_id"]) != 612002 {
		t.Fatalf("stages of 612002: %v", stages)
	}
	c.do("GET", "/pipeline_stages/pipeline/999", nil).must(t, 404)
	c.do("POST", "/pipeline_stages/search", map[string]any{}).must(t, 404)
	c.do("GET", "/nothing_here", nil).must(t, 404)
	c.do("GET", "/people/12", nil).must(t, 404)
	pipes := c.do("GET", "/pipelines", nil).must(t, 200).rows(t)
	if _, ok := pipes[0]["stages"].([]any); !ok {
		t.Fatal("pipelines without nested stages")
	}
	// Snapshot agrees with what is served.
	if got := c.srv.Snapshot("pipeline_stages"); len(got) != 10 {
		t.Fatalf("pipeline_stages snapshot %d", len(got))
	}
	if acct := c.srv.Snapshot("account"); len(acct) != 1 || num(acct[0]["id"]) != accountID {
		t.Fatalf("account snapshot %v", acct)
	}

	off := false
	cfg := smallConfig()
	cfg.LeadsEnabled = &off
	c2 := newTestClient(t, cfg)
	c2.do("GET", "/lead_statuses", nil).must(t, 403)
	if len(c2.srv.Snapshot("lead_statuses")) != 0 || c2.srv.Count("lead_statuses") != 0 {
		t.Fatal("lead_statuses ground truth should be empty while leads are disabled")
	}
	if r := c2.do("GET", "/account", nil).must(t, 200); !bytes.Contains(r.body, []byte(`"setting_enable_leads":false`)) {
		t.Fatalf("account: %s", r.body)
	}
}

func TestSingleFetchAndMutations(t *testing.T) {
	c := newTestClient(t, smallConfig())
	s := c.srv
	at := testEpoch.Add(time.Hour)
	for _, table := range append(slices.Clone(searchTables), "activities_search", "users") {
		t.Run(table, func(t *testing.T) {
			e, _ := entityByTable(table)
			path := "/" + entities[e].path
			before := s.Count(table)

			up := int64s(t, s.UpdateRecords(table, 3, at))
			if len(up) != 3 {
				t.Fatalf("updated %v", up)
			}
			snap := map[int64]map[string]any{}
			for _, r := range s.Snapshot(table) {
				snap[num(r["id"])] = r
			}
			for _, id := range up {
				r := c.do("GET", fmt.Sprintf("%s/%d", path, id), nil).must(t, 200)
				var m map[string]any
				_ = json.Unmarshal(r.body, &m)
				if fmt.Sprint(m) != fmt.Sprint(snap[id]) {
					t.Fatalf("GET %d differs from snapshot", id)
				}
				if e != entUsers {
					if num(m["date_modified"]) != at.Unix() || !strings.Contains(fmt.Sprint(m["details"]), "(rev 1)") {
						t.Fatalf("update not visible: %v %v", m["date_modified"], m["details"])
					}
				}
			}
			added := int64s(t, s.AddRecords(table, 2, at))
			if s.Count(table) != before+2 || len(added) != 2 || added[1] <= added[0] {
				t.Fatalf("add: %v", added)
			}
			for _, r := range s.Snapshot(table) {
				if id := num(r["id"]); id > added[0] && id != added[1] {
					t.Fatalf("new id %d is not above existing id %d", added[0], id)
				}
			}
			del := int64s(t, s.DeleteRecords(table, 1, at))
			if s.Count(table) != before+1 {
				t.Fatalf("count %d, want %d", s.Count(table), before+1)
			}
			r := c.do("GET", fmt.Sprintf("%s/%d", path, del[0]), nil)
			if e == entActivities {
				r.must(t, 200)
				if string(r.body) != fmt.Sprintf(`{"id":%d,"is_deleted":true}`, del[0]) {
					t.Fatalf("stub %s", r.body)
				}
			} else {
				r.must(t, 404)
			}
			// Search sees the changes.
			var body map[string]any
			switch e {
			case entActivities:
				body = map[string]any{"minimum_activity_date": at.Unix()}
			case entUsers:
				body = map[string]any{}
			default:
				body = map[string]any{"minimum_modified_date": at.Unix(), "sort_by": "date_modified"}
				if e == entLeads {
					body["include_converted_leads"] = true
				}
			}
			got := ids(c.searchAll(entities[e].path, body))
			for _, id := range append(slices.Clone(up), added...) {
				if id != del[0] && !slices.Contains(got, id) {
					t.Fatalf("id %d missing from search", id)
				}
			}
			if slices.Contains(got, del[0]) {
				t.Fatal("deleted record in search")
			}
		})
	}
}

// Lazily built sort orders are maintained through mutations, not rebuilt:
// they must equal a fresh build afterwards.
func TestLazyOrdersMaintained(t *testing.T) {
	c := newTestClient(t, smallConfig())
	s := c.srv
	names := []string{"first_name", "email", "city", "title"}
	for _, n := range names {
		c.search("people", map[string]any{"sort_by": n})
	}
	c.search("users", nil)
	at := testEpoch.Add(time.Hour)
	s.UpdateRecords("people", 30, at)
	s.AddRecords("people", 7, at.Add(-1000*time.Hour))
	s.DeleteRecords("people", 9, at)
	s.AddRecords("users", 2, at)
	s.DeleteRecords("users", 1, at)
	for _, tc := range []struct {
		e    entity
		name string
	}{{entPeople, "first_name"}, {entPeople, "email"}, {entPeople, "city"}, {entPeople, "title"}, {entUsers, "id"}} {
		tb := s.tabs[tc.e]
		kept := slices.Clone(tb.sorted[tc.name])
		delete(tb.sorted, tc.name)
		f := idOrder
		if tc.name != "id" {
			f = sortFields[tc.e][tc.name]
		}
		fresh := s.order(tb, tc.name, f)
		if !slices.Equal(kept, fresh) {
			t.Fatalf("%s order drifted after mutations", tc.name)
		}
	}
	// And the maintained date indexes match a rebuild.
	tb := s.tabs[entPeople]
	if !slices.Equal(tb.byMod, tb.buildIdx(keyMod)) || !slices.Equal(tb.byCreated, tb.buildIdx(keyCreated)) {
		t.Fatal("date indexes drifted")
	}
}

func TestEachRowMatchesSnapshot(t *testing.T) {
	s, _ := New(smallConfig())
	for _, table := range Tables() {
		snap := s.Snapshot(table)
		i := 0
		s.EachRow(table, func(raw []byte) {
			var m map[string]any
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(m) != fmt.Sprint(snap[i]) {
				t.Fatalf("%s row %d differs", table, i)
			}
			i++
		})
		if i != len(snap) || i != s.Count(table) {
			t.Fatalf("%s: EachRow %d rows, Snapshot %d, Count %d", table, i, len(snap), s.Count(table))
		}
	}
}

// TestConcurrentUse runs searches, single fetches, lists and mutations at
// once; run with -race.
func TestConcurrentUse(t *testing.T) {
	cfg := smallConfig()
	cfg.Faults = Faults{Seed: 1, MutateBetweenPages: 0.2}
	c := newTestClient(t, cfg)
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	for w := 0; w < 4; w++ {
		wg.Go(func() {
			sorts := []string{"first_name", "date_modified", "email", "date_created"}
			for i := 0; i < 15; i++ {
				r := c.do("POST", "/people/search", map[string]any{"page_number": i%3 + 1, "page_size": 50, "sort_by": sorts[(w+i)%4]})
				if r.err != nil || r.status != 200 {
					errs <- fmt.Sprintf("search: %v %d", r.err, r.status)
				}
				c.do("POST", "/leads/search", map[string]any{"page_number": i%2 + 1})
				c.do("POST", "/activities/search", map[string]any{"page_number": i%2 + 1})
				c.do("GET", "/tags", nil)
			}
		})
	}
	wg.Go(func() {
		for i := 0; i < 20; i++ {
			at := testEpoch.Add(time.Duration(i) * time.Minute)
			c.srv.UpdateRecords("people", 3, at)
			c.srv.AddRecords("leads", 1, at)
			c.srv.DeleteRecords("activities_search", 1, at)
			_ = c.srv.Count("people")
		}
	})
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

func TestIDsFilterAndBackdating(t *testing.T) {
	c := newTestClient(t, smallConfig())
	all := ids(c.searchAll("companies", nil))
	want := []int64{all[5], all[17], all[100]}
	rows, total := c.search("companies", map[string]any{"ids": append(slices.Clone(want), 12345), "sort_by": "date_created"})
	got := ids(rows)
	slices.Sort(got)
	slices.Sort(want)
	if total != 3 || !slices.Equal(got, want) {
		t.Fatalf("ids filter: %v total %d, want %v", got, total, want)
	}
	if _, total := c.search("companies", map[string]any{"ids": []int{}}); total != len(all) {
		t.Fatalf("empty ids list filtered: %d", total)
	}

	created, dated := testEpoch.Add(time.Hour), testEpoch.Add(-20*24*time.Hour)
	added := c.srv.AddBackdatedActivities(2, created, dated)
	recent := ids(c.searchAll("activities", map[string]any{"minimum_activity_date": testEpoch.Add(-24 * time.Hour).Unix()}))
	old := ids(c.searchAll("activities", map[string]any{"minimum_activity_date": dated.Unix(), "maximum_activity_date": dated.Unix()}))
	for _, id := range added {
		if slices.Contains(recent, id) || !slices.Contains(old, id) {
			t.Fatalf("back-dated activity %d: in recent window %v, in its own day %v", id, slices.Contains(recent, id), slices.Contains(old, id))
		}
		var m map[string]any
		_ = json.Unmarshal(c.do("GET", fmt.Sprintf("/activities/%d", id), nil).must(t, 200).body, &m)
		if num(m["date_created"]) != created.Unix() || num(m["activity_date"]) != dated.Unix() || num(m["date_modified"]) != dated.Unix() {
			t.Fatalf("back-dated activity %v", m)
		}
	}
}

// TestDeletedActivitiesInSearch: with the option, a deleted activity stays in activity search
// as its stub, where it was; without it, it vanishes.
func TestDeletedActivitiesInSearch(t *testing.T) {
	for _, stubs := range []bool{false, true} {
		t.Run(fmt.Sprint(stubs), func(t *testing.T) {
			cfg := smallConfig()
			cfg.DeletedActivitiesInSearch = stubs
			c := newTestClient(t, cfg)
			before := c.searchAll("activities", map[string]any{})
			del := int64s(t, c.srv.DeleteRecords("activities", 3, testEpoch))
			after := c.searchAll("activities", map[string]any{})
			var found int
			for _, r := range after {
				if slices.Contains(del, num(r["id"])) {
					found++
					if r["is_deleted"] != true || len(r) != 2 {
						t.Errorf("deleted activity in search: %v, want its stub", r)
					}
				}
			}
			if stubs && (found != 3 || len(after) != len(before)) || !stubs && (found != 0 || len(after) != len(before)-3) {
				t.Errorf("stubs=%v: %d of %d results, %d stubs of the 3 deleted", stubs, len(after), len(before), found)
			}
		})
	}
}
