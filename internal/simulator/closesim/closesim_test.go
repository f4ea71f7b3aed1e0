package closesim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/simulator/simfault/simfaulttest"
)

var testEpoch = time.Date(2024, 6, 5, 0, 0, 0, 0, time.UTC)

const testKey = "api_test.secret"

func smallConfig() Config {
	return Config{
		Seed: 7, APIKey: testKey, Epoch: testEpoch,
		Leads: 300, Activities: 900, Tasks: 400, Users: 12, CustomFields: 30, Events: 400,
		Now: func() time.Time { return testEpoch },
	}
}

type sim struct {
	t  testing.TB
	s  *Server
	ts *httptest.Server
	c  *http.Client
}

func newSim(t testing.TB, cfg Config) *sim {
	t.Helper()
	s, err := New(cfg)
	ts := simfaulttest.Serve(t, s, err)
	c := &http.Client{
		Timeout:       5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &sim{t: t, s: s, ts: ts, c: c}
}

type resp struct {
	code int
	hdr  http.Header
	body []byte
	err  error
}

func (m *sim) do(method, path, key string) resp {
	m.t.Helper()
	req, err := http.NewRequest(method, m.ts.URL+path, nil)
	if err != nil {
		m.t.Fatal(err)
	}
	if key != "" {
		req.SetBasicAuth(key, "")
	}
	r, err := m.c.Do(req)
	if err != nil {
		return resp{err: err}
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	return resp{code: r.StatusCode, hdr: r.Header, body: b, err: err}
}

func (m *sim) get(path string) resp { m.t.Helper(); return m.do("GET", path, testKey) }

// page GETs path and decodes a JSON object, failing on non-200.
func (m *sim) page(path string) map[string]any {
	m.t.Helper()
	r := m.get(path)
	if r.err != nil || r.code != 200 {
		m.t.Fatalf("GET %s: %v %d %s", path, r.err, r.code, r.body)
	}
	var v map[string]any
	if err := json.Unmarshal(r.body, &v); err != nil {
		m.t.Fatalf("GET %s: bad JSON: %v", path, err)
	}
	return v
}

func records(v map[string]any) []map[string]any {
	var out []map[string]any
	for _, x := range v["data"].([]any) {
		out = append(out, x.(map[string]any))
	}
	return out
}

// walk pages through an offset listing and returns every record.
func (m *sim) walk(path string, limit int) []map[string]any {
	m.t.Helper()
	var all []map[string]any
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	for skip := 0; ; {
		v := m.page(fmt.Sprintf("%s%s_skip=%d&_limit=%d", path, sep, skip, limit))
		recs := records(v)
		if len(recs) > limit {
			m.t.Fatalf("%s: page of %d > limit %d", path, len(recs), limit)
		}
		all = append(all, recs...)
		skip += len(recs)
		if v["has_more"] != true {
			return all
		}
		if len(recs) == 0 {
			m.t.Fatalf("%s: has_more with an empty page", path)
		}
	}
}

// walkEvents follows cursor_next and returns every event.
func (m *sim) walkEvents(query string) []map[string]any {
	m.t.Helper()
	return m.walkEventsFrom(query, "")
}

func (m *sim) walkEventsFrom(query, cursor string) []map[string]any {
	m.t.Helper()
	var all []map[string]any
	path := "/api/v1/event/?" + query
	if cursor != "" {
		path += "&_cursor=" + url.QueryEscape(cursor)
	}
	for pages := 0; ; pages++ {
		if pages > 10000 {
			m.t.Fatal("cursor walk does not end")
		}
		v := m.page(path)
		if _, ok := v["has_more"]; ok {
			m.t.Fatal("event log responses have no has_more")
		}
		if v["cursor_previous"] != nil {
			m.t.Fatalf("cursor_previous = %v", v["cursor_previous"])
		}
		all = append(all, records(v)...)
		next, _ := v["cursor_next"].(string)
		if next == "" {
			return all
		}
		path = "/api/v1/event/?" + query + "&_cursor=" + url.QueryEscape(next)
	}
}

func ids(recs []map[string]any) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r["id"].(string)
	}
	return out
}

func ts(t testing.TB, v any) time.Time {
	t.Helper()
	s, _ := v.(string)
	tm, ok := parseTime(s)
	if !ok {
		t.Fatalf("bad timestamp %v", v)
	}
	return tm
}

func TestNewValidation(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{APIKey: "k", Leads: -1},
		{APIKey: "k", Faults: Faults{Rate5xx: 0.7, Rate429: 0.6}},
		{APIKey: "k", RateLimit: -1},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
	s, err := New(Config{APIKey: "k", Leads: 3})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Epoch(), time.Now().UTC().Truncate(24*time.Hour); !got.Equal(want) {
		t.Errorf("default epoch %v, want %v", got, want)
	}
}

func TestAuth(t *testing.T) {
	m := newSim(t, smallConfig())
	cases := []struct {
		name string
		key  string
		hdr  string
		want int
	}{
		{"missing", "", "", 401},
		{"wrong key", "nope", "", 401},
		{"bearer", "", "Bearer " + testKey, 401},
		{"garbage basic", "", "Basic !!!", 401},
		{"ok", testKey, "", 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", m.ts.URL+"/api/v1/me/", nil)
			if c.key != "" {
				req.SetBasicAuth(c.key, "")
			}
			if c.hdr != "" {
				req.Header.Set("Authorization", c.hdr)
			}
			r, err := m.c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Body.Close()
			var body map[string]any
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if r.StatusCode != c.want {
				t.Fatalf("status %d, want %d", r.StatusCode, c.want)
			}
			if c.want == 401 {
				if _, ok := body["error"].(string); !ok {
					t.Errorf("401 body %v has no error string", body)
				}
			} else if !strings.HasPrefix(body["id"].(string), "user_") {
				t.Errorf("/me/ = %v", body)
			}
		})
	}
}

func TestRouting(t *testing.T) {
	m := newSim(t, smallConfig())
	cases := []struct {
		method, path string
		want         int
		loc          string
	}{
		{"GET", "/api/v1/lead?_limit=1", 301, "/api/v1/lead/?_limit=1"},
		{"GET", "/api/v1/custom_field/lead", 301, "/api/v1/custom_field/lead/"},
		{"GET", "/api/v1/nothing/", 404, ""},
		{"GET", "/api/v1/nothing", 404, ""},
		{"GET", "/elsewhere/", 404, ""},
		{"POST", "/api/v1/lead/", 405, ""},
		{"GET", "/api/v1/custom_fields/lead/", 200, ""},
		{"GET", "/api/v1/activity/call/", 200, ""},
		{"GET", "/api/v1/activity/status_change/lead/", 200, ""},
		{"GET", "/api/v1/custom_field/custom_object_type/", 200, ""},
	}
	for _, c := range cases {
		r := m.do(c.method, c.path, testKey)
		if r.code != c.want {
			t.Errorf("%s %s = %d, want %d (%s)", c.method, c.path, r.code, c.want, r.body)
		}
		if c.loc != "" && r.hdr.Get("Location") != c.loc {
			t.Errorf("%s: Location %q, want %q", c.path, r.hdr.Get("Location"), c.loc)
		}
		if c.want != 200 && !json.Valid(r.body) {
			t.Errorf("%s: error body is not JSON: %s", c.path, r.body)
		}
	}
	for _, call := range records(m.page("/api/v1/activity/call/?_limit=100")) {
		if call["_type"] != "Call" {
			t.Fatalf("/activity/call/ returned %v", call["_type"])
		}
	}
}

// Every listing, walked page by page, returns exactly the Snapshot.
func TestListingsMatchSnapshot(t *testing.T) {
	m := newSim(t, smallConfig())
	cases := []struct {
		stream, path string
		limit        int
	}{
		{"leads", "/api/v1/lead/", 37},
		{"activities", "/api/v1/activity/", 100},
		{"tasks", "/api/v1/task/?_type=all", 64},
		{"users", "/api/v1/user/", 5},
	}
	for _, c := range cases {
		got := m.walk(c.path, c.limit)
		want := m.s.Snapshot(c.stream)
		if len(got) != m.s.Count(c.stream) || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: walk (%d) differs from Snapshot (%d)", c.stream, len(got), len(want))
		}
		if !slices.IsSorted(ids(got)) {
			t.Errorf("%s: default order is not by id", c.stream)
		}
	}
	var cfs []map[string]any
	for _, g := range cfGroups {
		recs := m.walk("/api/v1/custom_field/"+g.path+"/", 1000)
		if len(recs) == 0 {
			t.Errorf("no %s custom fields", g.path)
		}
		for _, r := range recs {
			if _, ok := r["object_type"]; ok {
				t.Fatal("custom field records must not carry object_type")
			}
		}
		cfs = append(cfs, recs...)
	}
	sort.Slice(cfs, func(i, j int) bool { return cfs[i]["id"].(string) < cfs[j]["id"].(string) })
	if !reflect.DeepEqual(cfs, m.s.Snapshot("custom_fields")) {
		t.Error("custom fields over all endpoints differ from Snapshot")
	}
	if ev := m.walkEvents("_limit=50"); !reflect.DeepEqual(ev, m.s.Snapshot("event_log")) || len(ev) != 400 {
		t.Errorf("event walk (%d) differs from Snapshot", len(ev))
	}
}

func TestPaging(t *testing.T) {
	m := newSim(t, smallConfig())
	v := m.page("/api/v1/lead/?_limit=200")
	if len(records(v)) != 200 || v["has_more"] != true || v["total_results"] != float64(300) {
		t.Fatalf("first page: %d records, has_more=%v total=%v", len(records(v)), v["has_more"], v["total_results"])
	}
	v = m.page("/api/v1/lead/?_skip=200&_limit=200")
	if len(records(v)) != 100 || v["has_more"] != false {
		t.Fatalf("last page: %d records, has_more=%v", len(records(v)), v["has_more"])
	}
	v = m.page("/api/v1/lead/?_skip=300")
	if len(records(v)) != 0 || v["has_more"] != false {
		t.Fatal("page past the end")
	}
	if n := len(records(m.page("/api/v1/activity/"))); n != 100 {
		t.Fatalf("default _limit gave %d", n)
	}
	if _, ok := m.page("/api/v1/activity/")["total_results"]; ok {
		t.Error("activities carry no total_results")
	}
}

func TestCaps(t *testing.T) {
	cfg := smallConfig()
	cfg.MaxSkip = 250
	m := newSim(t, cfg)
	skipMsg := "The skip you set is larger than the maximum skip for this resource (max_skip = 250). Please refine your search query."
	cases := []struct {
		path string
		want int
		msg  string
	}{
		{"/api/v1/lead/?_limit=200", 200, ""},
		{"/api/v1/lead/?_limit=201", 400, "less than or equal to 200"},
		{"/api/v1/activity/?_limit=100", 200, ""},
		{"/api/v1/activity/?_limit=101", 400, "less than or equal to 100"},
		{"/api/v1/task/?_limit=1000", 200, ""},
		{"/api/v1/task/?_limit=1001", 400, "less than or equal to 1000"},
		{"/api/v1/user/?_limit=1001", 400, ""},
		{"/api/v1/custom_field/lead/?_limit=1001", 400, ""},
		{"/api/v1/event/?_limit=51", 400, ""},
		{"/api/v1/event/?_skip=0", 400, "_cursor"},
		{"/api/v1/lead/?_limit=-1", 400, ""},
		{"/api/v1/lead/?_skip=abc", 400, ""},
		{"/api/v1/lead/?_skip=250", 200, ""},
		{"/api/v1/lead/?_skip=251", 400, skipMsg},
		{"/api/v1/activity/?_skip=251", 400, skipMsg},
		{"/api/v1/task/?_skip=100000", 400, skipMsg},
		{"/api/v1/user/?_skip=100000", 200, ""}, // no cap on small lists
		{"/api/v1/contact/?_limit=100", 200, ""},
		{"/api/v1/contact/?_limit=101", 400, "less than or equal to 100"},
		{"/api/v1/contact/?_skip=251", 400, skipMsg},
		{"/api/v1/opportunity/?_limit=250", 200, ""},
		{"/api/v1/opportunity/?_limit=251", 400, "less than or equal to 250"},
		{"/api/v1/opportunity/?_skip=251", 400, skipMsg},
		{"/api/v1/opportunity/?_order_by=name", 400, "_order_by"},
	}
	for _, c := range cases {
		r := m.get(c.path)
		if r.code != c.want {
			t.Errorf("%s = %d, want %d: %s", c.path, r.code, c.want, r.body)
			continue
		}
		if c.want == 400 {
			var body struct{ Error string }
			if err := json.Unmarshal(r.body, &body); err != nil || body.Error == "" {
				t.Errorf("%s: 400 body %s", c.path, r.body)
			}
			if !strings.Contains(body.Error, c.msg) {
				t.Errorf("%s: error %q lacks %q", c.path, body.Error, c.msg)
			}
		}
	}
}

func TestLeadQuery(t *testing.T) {
	cfg := smallConfig()
	cfg.SameTimestamp = 15
	m := newSim(t, cfg)
	all := m.s.Snapshot("leads")
	minute := func(tm time.Time) time.Time { return tm.Truncate(time.Minute) }
	// Pick a boundary inside the data, with seconds, to exercise minute truncation.
	mid := ts(t, all[len(all)/2]["date_updated"])
	bound := mid.Format("2006-01-02T15:04:05")
	boundMin := minute(mid)
	cases := []struct {
		name  string
		query string
		keep  func(upd, crt time.Time) bool
		field string // sort field ("" = by id)
		desc  bool
	}{
		{"all", "", func(_, _ time.Time) bool { return true }, "", false},
		{"gte sort", `date_updated>="` + bound + `" sort:date_updated`, func(u, _ time.Time) bool { return !minute(u).Before(boundMin) }, "date_updated", false},
		{"gt", `date_updated>"` + bound + `"`, func(u, _ time.Time) bool { return minute(u).After(boundMin) }, "", false},
		{"lt desc", `date_updated<"` + bound + `" sort:-date_updated`, func(u, _ time.Time) bool { return minute(u).Before(boundMin) }, "date_updated", true},
		{"lte", `date_updated<=` + bound, func(u, _ time.Time) bool { return !minute(u).After(boundMin) }, "", false},
		{"spaced + created", `sort:created date_created > "2023-01-01T00:00" date_created <= "2024-01-01T00:00"`, func(_, c time.Time) bool {
			return minute(c).After(time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)) && !minute(c).After(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
		}, "date_created", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := m.walk("/api/v1/lead/?query="+url.QueryEscape(c.query), 50)
			var want []string
			for _, r := range all {
				if c.keep(ts(t, r["date_updated"]), ts(t, r["date_created"])) {
					want = append(want, r["id"].(string))
				}
			}
			if !reflect.DeepEqual(sorted(ids(got)), want) {
				t.Fatalf("got %d leads, want %d", len(got), len(want))
			}
			if c.field == "" {
				if !slices.IsSorted(ids(got)) {
					t.Error("not in id order")
				}
				return
			}
			for i := 1; i < len(got); i++ {
				a, b := ts(t, got[i-1][c.field]), ts(t, got[i][c.field])
				if (!c.desc && b.Before(a)) || (c.desc && a.Before(b)) {
					t.Fatalf("not sorted by %s desc=%v at %d", c.field, c.desc, i)
				}
			}
		})
	}
	for _, bad := range []string{`name:"x"`, `date_updated=="2024-01-01"`, `date_updated>="yesterday"`, `sort:name`, `date_updated>="2024`} {
		if r := m.get("/api/v1/lead/?query=" + url.QueryEscape(bad)); r.code != 400 {
			t.Errorf("query %q = %d, want 400", bad, r.code)
		}
	}
	// The shared timestamp: 15 leads with one exact date_updated.
	same := m.s.SameTimestamp()
	q := fmt.Sprintf(`date_updated>="%s" date_updated<"%s"`, same.Format("2006-01-02T15:04"), same.Add(time.Minute).Format("2006-01-02T15:04"))
	n := 0
	for _, r := range m.walk("/api/v1/lead/?query="+url.QueryEscape(q), 200) {
		if ts(t, r["date_updated"]).Equal(same) {
			n++
		}
	}
	if n != 15 {
		t.Errorf("%d leads share the timestamp, want 15", n)
	}
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

func TestActivityFilters(t *testing.T) {
	m := newSim(t, smallConfig())
	all := m.s.Snapshot("activities")
	lo := time.Date(2023, 3, 1, 12, 30, 0, 0, time.UTC)
	hi := time.Date(2024, 1, 15, 0, 0, 0, 0, time.UTC)
	between := func(r map[string]any) bool {
		c := ts(t, r["date_created"])
		return c.After(lo) && c.Before(hi)
	}
	cases := []struct {
		name, query string
		keep        func(map[string]any) bool
		order       int // 0 id, 1 asc, -1 desc
	}{
		{"naive", "date_created__gt=2023-03-01T12:30:00&date_created__lt=2024-01-15T00:00:00", between, 0},
		{"zulu asc", "date_created__gt=2023-03-01T12:30:00Z&date_created__lt=2024-01-15T00:00:00Z&_order_by=date_created", between, 1},
		{"offset desc", "date_created__gt=2023-03-01T14:30:00%2B02:00&date_created__lt=2024-01-15T00:00:00.000000%2B00:00&_order_by=-date_created", between, -1},
		{"gte fraction", "date_created__gte=2023-03-01T12:30:00.000001&_order_by=date_created", func(r map[string]any) bool { return ts(t, r["date_created"]).After(lo) }, 1},
		{"date only lte", "date_created__lte=2023-03-01", func(r map[string]any) bool {
			return !ts(t, r["date_created"]).After(time.Date(2023, 3, 1, 0, 0, 0, 0, time.UTC))
		}, 0},
		// Traps: no date_updated filter (silently ignored); _type alone is ignored.
		{"date_updated ignored", "date_updated__gte=2024-06-01", func(map[string]any) bool { return true }, 0},
		{"_type without lead_id ignored", "_type=Call", func(map[string]any) bool { return true }, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := m.walk("/api/v1/activity/?"+c.query, 100)
			var want []string
			for _, r := range all {
				if c.keep(r) {
					want = append(want, r["id"].(string))
				}
			}
			if !reflect.DeepEqual(sorted(ids(got)), want) {
				t.Fatalf("got %d, want %d", len(got), len(want))
			}
			switch c.order {
			case 0:
				if !slices.IsSorted(ids(got)) {
					t.Error("default order is not by id")
				}
			default:
				for i := 1; i < len(got); i++ {
					a, b := ts(t, got[i-1]["date_created"]), ts(t, got[i]["date_created"])
					if (c.order == 1 && b.Before(a)) || (c.order == -1 && a.Before(b)) {
						t.Fatalf("order broken at %d", i)
					}
				}
			}
		})
	}
	// lead_id (+ _type) filter.
	lead := all[0]["lead_id"].(string)
	typ := all[0]["_type"].(string)
	got := m.walk("/api/v1/activity/?lead_id="+lead+"&_type="+typ, 100)
	if len(got) == 0 {
		t.Fatal("lead_id filter found nothing")
	}
	for _, r := range got {
		if r["lead_id"] != lead || r["_type"] != typ {
			t.Fatalf("lead_id/_type filter leaked %v %v", r["lead_id"], r["_type"])
		}
	}
	for _, bad := range []string{"date_created__gt=yesterday", "_order_by=date_updated", "_order_by=-activity_at", "date_created__gt=2024-01-01T00:00:00%2000:00"} {
		if r := m.get("/api/v1/activity/?" + bad); r.code != 400 {
			t.Errorf("%s = %d, want 400", bad, r.code)
		}
	}
}

func TestTaskTypeTrap(t *testing.T) {
	m := newSim(t, smallConfig())
	all := m.s.Snapshot("tasks")
	nLead := 0
	for _, r := range all {
		if r["_type"] == "lead" {
			nLead++
		}
	}
	def := m.walk("/api/v1/task/", 1000)
	if len(def) != nLead || nLead == len(all) {
		t.Fatalf("without _type: %d tasks, want the %d lead tasks of %d", len(def), nLead, len(all))
	}
	if got := m.walk("/api/v1/task/?_type=all", 1000); len(got) != len(all) {
		t.Fatalf("_type=all: %d, want %d", len(got), len(all))
	}
	for _, r := range m.walk("/api/v1/task/?_type=email_followup", 1000) {
		if r["_type"] != "email_followup" || !strings.HasPrefix(r["id"].(string), "noti_") {
			t.Fatalf("_type=email_followup returned %v %v", r["_type"], r["id"])
		}
	}
	// date_updated filter + allowed orders.
	since := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	got := m.walk("/api/v1/task/?_type=all&date_updated__gte=2024-01-01&_order_by=-date_created", 100)
	want := 0
	for _, r := range all {
		if !ts(t, r["date_updated"]).Before(since) {
			want++
		}
	}
	if len(got) != want {
		t.Fatalf("date_updated__gte: %d, want %d", len(got), want)
	}
	for i := 1; i < len(got); i++ {
		if ts(t, got[i]["date_created"]).After(ts(t, got[i-1]["date_created"])) {
			t.Fatal("-date_created order broken")
		}
	}
	dates := m.walk("/api/v1/task/?_type=all&_order_by=date", 1000)
	for i := 1; i < len(dates); i++ {
		if ts(t, dates[i]["date"]).Before(ts(t, dates[i-1]["date"])) {
			t.Fatalf("date order broken at %d", i)
		}
	}
	for _, bad := range []string{"_order_by=date_updated", "_order_by=-date_updated", "_type=nope"} {
		if r := m.get("/api/v1/task/?" + bad); r.code != 400 {
			t.Errorf("%s = %d, want 400", bad, r.code)
		}
	}
}

func TestUsersOrder(t *testing.T) {
	m := newSim(t, smallConfig())
	got := m.walk("/api/v1/user/?_order_by=last_name,first_name", 1000)
	if len(got) != 12 {
		t.Fatalf("%d users", len(got))
	}
	for i := 1; i < len(got); i++ {
		a := got[i-1]["last_name"].(string) + "\x00" + got[i-1]["first_name"].(string)
		b := got[i]["last_name"].(string) + "\x00" + got[i]["first_name"].(string)
		if b < a {
			t.Fatal("users not ordered by last_name, first_name")
		}
	}
	if r := m.get("/api/v1/user/?_order_by=email"); r.code != 400 {
		t.Errorf("bad _order_by = %d", r.code)
	}
}

func TestEventLog(t *testing.T) {
	cfg := smallConfig()
	now := testEpoch
	var mu sync.Mutex
	cfg.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	m := newSim(t, cfg)

	evs := m.walkEvents("_limit=50")
	if len(evs) != 400 {
		t.Fatalf("%d events, want 400", len(evs))
	}
	seen := map[string]bool{}
	for i, e := range evs {
		if seen[e["id"].(string)] {
			t.Fatalf("duplicate event %v", e["id"])
		}
		seen[e["id"].(string)] = true
		du := e["date_updated"].(string)
		if strings.Contains(du, "+") || strings.HasSuffix(du, "Z") {
			t.Fatalf("event timestamps are served without offset: %s", du)
		}
		if i > 0 && ts(t, du).After(ts(t, evs[i-1]["date_updated"])) {
			t.Fatalf("events not newest first at %d", i)
		}
		if d := ts(t, du); !d.Before(testEpoch) || d.Before(testEpoch.Add(-30*24*time.Hour)) {
			t.Fatalf("event %s outside the 30 days before Epoch", du)
		}
	}

	// Window filter + page size.
	from := testEpoch.Add(-10 * 24 * time.Hour)
	q := "date_updated__gte=" + from.Format("2006-01-02T15:04:05") + "&_limit=7"
	win := m.walkEvents(q)
	want := 0
	for _, e := range evs {
		if !ts(t, e["date_updated"]).Before(from) {
			want++
		}
	}
	if len(win) != want || want == 0 {
		t.Fatalf("window: %d events, want %d", len(win), want)
	}

	// Filters and allowed combinations.
	dels := m.walkEvents("object_type=lead&action=deleted")
	for _, e := range dels {
		if e["object_type"] != "lead" || e["action"] != "deleted" || e["data"] != nil {
			t.Fatalf("filter leaked %v %v", e["object_type"], e["action"])
		}
	}
	lead := evs[0]["lead_id"]
	if lead != nil {
		for _, e := range m.walkEvents("lead_id=" + lead.(string)) {
			if e["lead_id"] != lead {
				t.Fatal("lead_id filter leaked")
			}
		}
	}
	for _, bad := range []string{"object_type=lead", "action=deleted", "_cursor=xyz", "date_updated__gte=soon"} {
		if r := m.get("/api/v1/event/?" + bad); r.code != 400 {
			t.Errorf("%s = %d, want 400", bad, r.code)
		}
	}

	// Retention: 10 days later, events older than now-30d are gone.
	mu.Lock()
	now = testEpoch.Add(10 * 24 * time.Hour)
	mu.Unlock()
	kept := m.walkEvents("_limit=50")
	cut := now.Add(-30 * 24 * time.Hour)
	wantKept := 0
	for _, e := range evs {
		if !ts(t, e["date_updated"]).Before(cut) {
			wantKept++
		}
	}
	if len(kept) != wantKept || wantKept == len(evs) || m.s.Count("event_log") != wantKept {
		t.Fatalf("retention kept %d (Count %d), want %d of %d", len(kept), m.s.Count("event_log"), wantKept, len(evs))
	}
}

// A cursor walk is keyset-based: events created mid-walk never shift it.
func TestEventCursorStableUnderMutation(t *testing.T) {
	m := newSim(t, smallConfig())
	v := m.page("/api/v1/event/?_limit=50")
	first := ids(records(v))
	m.s.UpdateRecords("leads", 20, testEpoch.Add(-time.Hour))
	rest := m.walkEventsFrom("_limit=50", v["cursor_next"].(string))
	got := append(first, ids(rest)...)
	if len(got) != 400 || len(sorted(got)) != len(slices.Compact(sorted(got))) {
		t.Fatalf("walk across mutation: %d events", len(got))
	}
}

func TestRateLimit(t *testing.T) {
	cfg := smallConfig()
	now := testEpoch
	var mu sync.Mutex
	cfg.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	cfg.RateLimit = 2
	m := newSim(t, cfg)
	for i, want := range []string{"limit=2, remaining=1, reset=1", "limit=2, remaining=0, reset=1"} {
		r := m.get("/api/v1/lead/?_limit=1")
		if r.code != 200 || r.hdr.Get("RateLimit") != want {
			t.Fatalf("request %d: %d %q, want %q", i, r.code, r.hdr.Get("RateLimit"), want)
		}
	}
	r := m.get("/api/v1/lead/?_limit=1")
	if r.code != 429 {
		t.Fatalf("third request: %d", r.code)
	}
	if r.hdr.Get("Retry-After") != "1" || !strings.HasPrefix(r.hdr.Get("RateLimit"), "limit=2, remaining=0, reset=") {
		t.Errorf("429 headers: RateLimit=%q Retry-After=%q", r.hdr.Get("RateLimit"), r.hdr.Get("Retry-After"))
	}
	var body struct {
		Error struct {
			RateReset float64 `json:"rate_reset"`
			Message   string
		}
	}
	if err := json.Unmarshal(r.body, &body); err != nil || body.Error.RateReset <= 0 || body.Error.RateReset > 1 || body.Error.Message == "" {
		t.Errorf("429 body %s", r.body)
	}
	// Another endpoint group has its own bucket.
	if r := m.get("/api/v1/activity/?_limit=1"); r.code != 200 {
		t.Errorf("other group limited: %d", r.code)
	}
	mu.Lock()
	now = now.Add(600 * time.Millisecond)
	mu.Unlock()
	if r := m.get("/api/v1/lead/?_limit=1"); r.code != 200 {
		t.Errorf("after refill: %d", r.code)
	}
	if st := m.s.Stats(); st.RateLimited != 1 || st.ByStatus[429] != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestFaultRates(t *testing.T) {
	const n = 400
	const rate = 0.25
	cases := []struct {
		kind string
		set  func(*Faults)
		// check reports whether the response shows this fault.
		check func(r resp) bool
	}{
		{"429", func(f *Faults) { f.Rate429 = rate }, func(r resp) bool {
			return r.code == 429 && r.hdr.Get("Retry-After") != "" && r.hdr.Get("RateLimit") != "" && bytes.Contains(r.body, []byte("rate_reset"))
		}},
		{"429_nohint", func(f *Faults) { f.Rate429NoHint = rate }, func(r resp) bool {
			return r.code == 429 && r.hdr.Get("Retry-After") == "" && r.hdr.Get("RateLimit") == "" && !bytes.Contains(r.body, []byte("rate_reset"))
		}},
		{"5xx", func(f *Faults) { f.Rate5xx = rate }, func(r resp) bool { return r.code >= 500 }},
		{"truncate", func(f *Faults) { f.RateTruncate = rate }, func(r resp) bool { return r.code == 200 && len(r.body) > 0 && !json.Valid(r.body) }},
		{"bad_json", func(f *Faults) { f.RateBadJSON = rate }, func(r resp) bool { return r.code == 200 && !json.Valid(r.body) }},
		{"reset", func(f *Faults) { f.RateReset = rate }, func(r resp) bool { return r.err != nil }},
		{"slow", func(f *Faults) { f.RateSlow = rate; f.SlowDelay = time.Millisecond }, nil},
		{"503_retry_after", func(f *Faults) { f.Rate503RetryAfter = rate; f.RetryAfter = 2500 * time.Millisecond }, func(r resp) bool {
			return r.code == 503 && r.hdr.Get("Retry-After") == "3" && json.Valid(r.body)
		}},
		{"stall", func(f *Faults) { f.RateStall = rate; f.StallFor = time.Millisecond }, nil},
		{"stall_headers", func(f *Faults) { f.RateStallHeaders = rate; f.StallFor = time.Millisecond }, nil},
	}
	m := newSim(t, smallConfig())
	// No keep-alive: Go's transport silently retries a GET whose reused
	// connection was closed, which would hide the reset faults.
	m.c.Transport = &http.Transport{DisableKeepAlives: true}
	for _, c := range cases {
		t.Run(c.kind, func(t *testing.T) {
			var f Faults
			f.Seed = 3
			c.set(&f)
			if err := m.s.SetFaults(f); err != nil {
				t.Fatal(err)
			}
			m.s.ResetStats()
			hits := 0
			for i := 0; i < n; i++ {
				r := m.get("/api/v1/user/?_limit=3")
				switch {
				case c.check != nil && c.check(r):
					hits++
				case r.err != nil || r.code != 200 || !json.Valid(r.body):
					// Faults without a check (slow, stalls) end in a normal answer.
					t.Fatalf("unexpected response: %v %d %.80s", r.err, r.code, r.body)
				}
			}
			st := m.s.Stats()
			injected := st.Faults[c.kind]
			if c.check != nil && int64(hits) != injected {
				t.Errorf("observed %d faults, stats say %d", hits, injected)
			}
			if p := float64(injected) / n; p < rate-0.08 || p > rate+0.08 {
				t.Errorf("rate %.3f, want ≈ %.2f", p, rate)
			}
			if st.Requests != n {
				t.Errorf("stats count %d requests", st.Requests)
			}
		})
	}
	m.s.SetFaults(Faults{})
}

func TestMutateBetweenPages(t *testing.T) {
	m := newSim(t, smallConfig())
	m.s.SetFaults(Faults{Seed: 1, MutateBetweenPages: 1})
	before := m.s.Snapshot("leads")
	got := m.walk("/api/v1/lead/?query="+url.QueryEscape("sort:date_updated"), 20)
	after := m.s.Snapshot("leads")
	if st := m.s.Stats(); st.Faults["mutate"] < 10 {
		t.Fatalf("mutations: %v", st.Faults)
	}
	if reflect.DeepEqual(before, after) {
		t.Fatal("data did not change")
	}
	// The first listing of a stream never mutates; later ones do.
	if n := len(got); n == len(after) && reflect.DeepEqual(sorted(ids(got)), ids(after)) {
		t.Log("walk happened to see a consistent set (possible but unlikely)")
	}
}

func TestMutations(t *testing.T) {
	m := newSim(t, smallConfig())
	// After Epoch, so that no seeded record or event is newer.
	at := testEpoch.Add(2 * time.Hour).Add(123456 * time.Microsecond)
	atQ := at.Format("2006-01-02T15:04")

	upd := m.s.UpdateRecords("leads", 5, at)
	if len(upd) != 5 {
		t.Fatalf("updated %d", len(upd))
	}
	snap := byID(m.s.Snapshot("leads"))
	for _, id := range upd {
		if got := ts(t, snap[id]["date_updated"]); !got.Equal(at) {
			t.Fatalf("%s date_updated %v, want %v", id, got, at)
		}
	}
	got := m.walk("/api/v1/lead/?query="+url.QueryEscape(`date_updated>="`+atQ+`" sort:date_updated`), 200)
	if !reflect.DeepEqual(sorted(ids(got)), sorted(upd)) {
		t.Fatalf("incremental query found %v, want %v", ids(got), upd)
	}
	evUpd := m.walkEvents("object_type=lead&action=updated&date_updated__gte=" + at.Format(time.RFC3339Nano))
	if !reflect.DeepEqual(sorted(objectIDs(evUpd)), sorted(upd)) {
		t.Fatalf("updated events %v, want %v", objectIDs(evUpd), upd)
	}
	for _, e := range evUpd {
		if e["data"].(map[string]any)["date_updated"] == nil || len(e["changed_fields"].([]any)) == 0 {
			t.Fatalf("update event lacks data/changed_fields: %v", e)
		}
	}

	// Activities: date_updated moves, date_created does not.
	before := byID(m.s.Snapshot("activities"))
	au := m.s.UpdateRecords("activities", 3, at)
	after := byID(m.s.Snapshot("activities"))
	for _, id := range au {
		if after[id]["date_created"] != before[id]["date_created"] || !ts(t, after[id]["date_updated"]).Equal(at) {
			t.Fatalf("activity update: %v → %v", before[id], after[id])
		}
		if reflect.DeepEqual(stripDates(before[id]), stripDates(after[id])) {
			t.Fatalf("activity %s: update changed no field", id)
		}
	}

	// Deletes: gone from Snapshot and listings, "deleted" events emitted.
	del := m.s.DeleteRecords("leads", 4, at)
	if m.s.Count("leads") != 296 {
		t.Fatalf("Count after delete = %d", m.s.Count("leads"))
	}
	live := byID(m.walk("/api/v1/lead/", 200))
	for _, id := range del {
		if _, ok := live[id]; ok {
			t.Fatalf("deleted %s still listed", id)
		}
		if r := m.get("/api/v1/lead/" + id + "/"); r.code != 404 {
			t.Fatalf("GET deleted lead: %d", r.code)
		}
	}
	evDel := m.walkEvents("object_type=lead&action=deleted&date_updated__gte=" + at.Format("2006-01-02T15:04:05"))
	if !reflect.DeepEqual(sorted(objectIDs(evDel)), sorted(del)) {
		t.Fatalf("deleted events %v, want %v", objectIDs(evDel), del)
	}

	// Adds: tasks of random types; only _type=all sees all of them.
	add := m.s.AddRecords("tasks", 6, at)
	all := byID(m.walk("/api/v1/task/?_type=all&date_updated__gte="+url.QueryEscape(at.Format(time.RFC3339Nano)), 1000))
	for _, id := range add {
		r, ok := all[id]
		if !ok || !ts(t, r["date_created"]).Equal(at) {
			t.Fatalf("added task %s missing or wrong: %v", id, r)
		}
	}
	addA := m.s.AddRecords("activities", 2, at)
	got = m.walk("/api/v1/activity/?date_created__gte="+url.QueryEscape(at.Format(time.RFC3339Nano)), 100)
	if !reflect.DeepEqual(sorted(ids(got)), sorted(addA)) {
		t.Fatalf("added activities %v, listed %v", addA, ids(got))
	}
	if r := m.get("/api/v1/activity/" + addA[0] + "/"); r.code != 200 {
		t.Fatalf("GET added activity: %d", r.code)
	}
	for _, st := range []string{"users", "custom_fields"} {
		if len(m.s.UpdateRecords(st, 1, at)) != 1 || len(m.s.AddRecords(st, 1, at)) != 1 || len(m.s.DeleteRecords(st, 1, at)) != 1 {
			t.Fatalf("%s mutations", st)
		}
	}
	if m.s.UpdateRecords("event_log", 1, at) != nil || m.s.AddRecords("nope", 1, at) != nil {
		t.Fatal("mutating event_log / unknown stream must be a no-op")
	}
	// Listings still agree with Snapshot after all of it.
	if !reflect.DeepEqual(m.walk("/api/v1/lead/", 200), m.s.Snapshot("leads")) {
		t.Fatal("listing differs from Snapshot after mutations")
	}
}

func byID(recs []map[string]any) map[string]map[string]any {
	m := map[string]map[string]any{}
	for _, r := range recs {
		m[r["id"].(string)] = r
	}
	return m
}

func objectIDs(evs []map[string]any) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e["object_id"].(string))
	}
	return out
}

func stripDates(r map[string]any) map[string]any {
	c := map[string]any{}
	for k, v := range r {
		if k != "date_updated" && k != "updated_by" && k != "updated_by_name" {
			c[k] = v
		}
	}
	return c
}

func TestDeterminism(t *testing.T) {
	cfg := smallConfig()
	cfg.FutureDated, cfg.SameTimestamp = 3, 5
	a, b := newSim(t, cfg), newSim(t, cfg)
	cfg.Seed++
	c := newSim(t, cfg)
	paths := []string{
		"/api/v1/lead/?_limit=200", "/api/v1/activity/?_skip=100&_order_by=date_created",
		"/api/v1/task/?_type=all&_limit=1000", "/api/v1/user/", "/api/v1/custom_field/lead/",
		"/api/v1/event/?_limit=50", "/api/v1/me/",
	}
	for _, p := range paths {
		ra, rb, rc := a.get(p), b.get(p), c.get(p)
		if ra.code != 200 || !bytes.Equal(ra.body, rb.body) {
			t.Errorf("%s: same config gave different bytes", p)
		}
		if bytes.Equal(ra.body, rc.body) {
			t.Errorf("%s: different seed gave identical bytes", p)
		}
	}
	// Mutations are deterministic too.
	at := testEpoch.Add(-time.Hour)
	if !reflect.DeepEqual(a.s.UpdateRecords("leads", 7, at), b.s.UpdateRecords("leads", 7, at)) ||
		!reflect.DeepEqual(a.s.DeleteRecords("tasks", 3, at), b.s.DeleteRecords("tasks", 3, at)) {
		t.Error("mutations differ between identical servers")
	}
	if !reflect.DeepEqual(a.s.Snapshot("event_log"), b.s.Snapshot("event_log")) {
		t.Error("event logs differ after identical mutations")
	}
}

func TestDatasetShape(t *testing.T) {
	cfg := smallConfig()
	cfg.FutureDated = 4
	m := newSim(t, cfg)
	future := 0
	for _, r := range m.s.Snapshot("leads") {
		if ts(t, r["date_updated"]).After(testEpoch) {
			future++
		}
	}
	if future != 4 {
		t.Errorf("%d future-dated leads, want 4", future)
	}
	var blob bytes.Buffer
	types := map[string]bool{}
	noFraction := 0
	for _, st := range []string{"leads", "activities", "tasks", "users", "custom_fields", "event_log"} {
		for _, r := range m.s.Snapshot(st) {
			if tp, ok := r["_type"].(string); ok && st == "activities" {
				types[tp] = true
			}
			if d, _ := r["date_created"].(string); !strings.Contains(d, ".") {
				noFraction++
			}
			if st != "event_log" && st != "custom_fields" && st != "users" {
				c := ts(t, r["date_created"])
				if c.Before(testEpoch.Add(-2*365*24*time.Hour)) || (!c.Before(testEpoch) && st != "activities") {
					t.Fatalf("%s date_created %v outside [Epoch-Span, Epoch)", st, c)
				}
			}
			b, _ := json.Marshal(r)
			blob.Write(b)
		}
	}
	if len(types) != len(actTypes) {
		t.Errorf("activity types seen: %v", types)
	}
	if noFraction == 0 {
		t.Error("no timestamps without fraction")
	}
	s := blob.String()
	for _, want := range []string{"ö", "é", "田中", "🚀", "null", "[]", `\"`, `\n`} {
		if !strings.Contains(s, want) {
			t.Errorf("dataset lacks %q", want)
		}
	}
}

func TestFieldsAndGetOne(t *testing.T) {
	m := newSim(t, smallConfig())
	for _, r := range records(m.page("/api/v1/lead/?_fields=id,date_updated&_limit=20")) {
		if len(r) != 2 || r["id"] == nil || r["date_updated"] == nil {
			t.Fatalf("_fields=id,date_updated gave %v", r)
		}
	}
	names := map[string]bool{}
	for _, g := range cfGroups {
		for _, r := range records(m.page("/api/v1/custom_field/" + g.path + "/")) {
			if names[r["name"].(string)] {
				t.Fatalf("duplicate custom field name %v", r["name"])
			}
			names[r["name"].(string)] = true
		}
	}
	for _, r := range records(m.page("/api/v1/lead/?_fields=id,custom&_limit=50")) {
		for k := range r {
			if k != "id" && k != "custom" && !strings.HasPrefix(k, "custom.cf_") {
				t.Fatalf("_fields=id,custom gave key %q", k)
			}
		}
	}
	// A projection agrees with the full record.
	full := m.s.Snapshot("activities")[:100]
	proj := records(m.page("/api/v1/activity/?_fields=id,note,_type,date_created"))
	for i, p := range proj {
		for k, v := range p {
			if !reflect.DeepEqual(full[i][k], v) {
				t.Fatalf("projection %s differs: %v vs %v", k, v, full[i][k])
			}
		}
	}
	for _, c := range []struct{ stream, path string }{
		{"leads", "/api/v1/lead/%s/"}, {"activities", "/api/v1/activity/%s/"}, {"tasks", "/api/v1/task/%s/"},
		{"users", "/api/v1/user/%s/"}, {"event_log", "/api/v1/event/%s/"},
	} {
		want := m.s.Snapshot(c.stream)[3]
		got := m.page(fmt.Sprintf(c.path, want["id"]))
		if !reflect.DeepEqual(got, want) {
			t.Errorf("GET one %s differs from Snapshot", c.stream)
		}
	}
	if r := m.get("/api/v1/lead/lead_doesnotexist/"); r.code != 404 {
		t.Errorf("missing lead: %d", r.code)
	}
}

func TestConcurrentUse(t *testing.T) {
	m := newSim(t, smallConfig())
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				r := m.get(fmt.Sprintf("/api/v1/activity/?_skip=%d&_order_by=date_created", i*10))
				if r.code != 200 || !json.Valid(r.body) {
					t.Errorf("concurrent GET: %d", r.code)
					return
				}
			}
		}()
	}
	for i := 0; i < 20; i++ {
		at := testEpoch.Add(-time.Duration(i) * time.Minute)
		m.s.UpdateRecords("activities", 3, at)
		m.s.AddRecords("activities", 1, at)
		m.s.DeleteRecords("activities", 1, at)
		m.s.SetFaults(Faults{Seed: int64(i)})
		_ = m.s.Stats()
	}
	wg.Wait()
	if m.s.Count("activities") != 900 {
		t.Fatalf("count %d", m.s.Count("activities"))
	}
}

func TestEmptyAndOddConfigs(t *testing.T) {
	paths := []string{"/api/v1/me/", "/api/v1/lead/", "/api/v1/activity/", "/api/v1/task/?_type=all", "/api/v1/user/",
		"/api/v1/custom_field/shared/", "/api/v1/event/", "/api/v1/lead/?query=sort%3A-date_created"}
	for name, cfg := range map[string]Config{
		"empty":       {APIKey: "k", Epoch: testEpoch},
		"events only": {APIKey: "k", Epoch: testEpoch, Events: 30},
		"no users":    {APIKey: "k", Epoch: testEpoch, Leads: 5, Activities: 20, Tasks: 5, CustomFields: 8, Events: 10},
		"tiny span":   {APIKey: "k", Epoch: testEpoch, Span: time.Minute, Leads: 50, Activities: 50, Tasks: 50, Users: 2, Events: 20, SameTimestamp: 60, FutureDated: 60},
	} {
		t.Run(name, func(t *testing.T) {
			s, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range paths {
				w := httptest.NewRecorder()
				req := httptest.NewRequest("GET", p, nil)
				req.SetBasicAuth("k", "")
				s.ServeHTTP(w, req)
				if w.Code != 200 || !json.Valid(w.Body.Bytes()) {
					t.Fatalf("%s: %d %.200s", p, w.Code, w.Body.String())
				}
			}
			for _, st := range streamNames {
				if got := len(s.Snapshot(st)); got != s.Count(st) {
					t.Fatalf("%s: Snapshot %d != Count %d", st, got, s.Count(st))
				}
			}
		})
	}
}

// TestDeletionsAndMerges: deleting a lead deletes its activities and tasks with an event for
// each; a merge moves the merged-away lead's activities and tasks (updated events), updates
// the destination lead and announces the merge on it (with a deleted event for the source
// lead only when configured); id__in re-reads activities by id.
func TestDeletionsAndMerges(t *testing.T) {
	for _, alsoDeleted := range []bool{false, true} {
		t.Run(fmt.Sprintf("MergeEmitsDeleted=%v", alsoDeleted), func(t *testing.T) {
			cfg := smallConfig()
			cfg.MergeEmitsDeleted = alsoDeleted
			m := newSim(t, cfg)
			at := testEpoch.Add(time.Hour)
			since := "&date_updated__gte=" + url.QueryEscape(at.Format(time.RFC3339Nano))
			childrenOf := func(lead string) (acts, tasks []string) {
				for _, a := range m.s.Snapshot("activities") {
					if a["lead_id"] == lead {
						acts = append(acts, a["id"].(string))
					}
				}
				for _, k := range m.s.Snapshot("tasks") {
					if k["lead_id"] == lead {
						tasks = append(tasks, k["id"].(string))
					}
				}
				return acts, tasks
			}
			before := m.s.Count("activities") + m.s.Count("tasks")
			del := m.s.DeleteRecords("leads", 30, at)
			for _, l := range del {
				a, k := childrenOf(l)
				if len(a)+len(k) > 0 {
					t.Fatalf("lead %s deleted, its activities %v and tasks %v remain", l, a, k)
				}
			}
			var got []string
			for _, e := range m.walkEvents("action=deleted&object_type=lead" + since) {
				got = append(got, e["object_id"].(string))
			}
			if !reflect.DeepEqual(sorted(got), sorted(del)) {
				t.Fatalf("lead deleted events %v, want %v", got, del)
			}
			removed := before - m.s.Count("activities") - m.s.Count("tasks")
			var childEvents int
			for _, typ := range append(append([]string{}, actObjectTypes()...), taskObjectTypes()...) {
				childEvents += len(m.walkEvents("object_type=" + typ + "&action=deleted" + since))
			}
			if removed == 0 || childEvents != removed {
				t.Fatalf("%d activities and tasks deleted with their leads, %d deleted events for them", removed, childEvents)
			}

			at2 := at.Add(time.Hour)
			since2 := "&date_updated__gte=" + url.QueryEscape(at2.Format(time.RFC3339Nano))
			gone := m.s.MergeLeads(3, at2)
			if len(gone) != 3 {
				t.Fatalf("merged away %v", gone)
			}
			live := byID(m.s.Snapshot("leads"))
			merged := m.walkEvents("object_type=lead&action=merged" + since2)
			if len(merged) != 3 {
				t.Fatalf("%d merged events, want 3", len(merged))
			}
			var sources []string
			for _, e := range merged {
				meta := e["meta"].(map[string]any)
				src, dst := meta["merge_source_lead_id"].(string), meta["merge_destination_lead_id"].(string)
				if e["object_id"] != dst || live[dst] == nil || live[src] != nil {
					t.Fatalf("merge event %v: destination must be live and the object, the source gone", e)
				}
				sources = append(sources, src)
			}
			if !reflect.DeepEqual(sorted(sources), sorted(gone)) {
				t.Fatalf("merge sources %v, want %v", sources, gone)
			}
			if n := len(m.walkEvents("object_type=lead&action=deleted" + since2)); (n == 3) != alsoDeleted || (n != 0 && n != 3) {
				t.Fatalf("%d deleted events for merged-away leads (MergeEmitsDeleted=%v)", n, alsoDeleted)
			}
			for _, src := range gone {
				if a, k := childrenOf(src); len(a)+len(k) > 0 {
					t.Fatalf("merged-away lead %s still has activities %v, tasks %v", src, a, k)
				}
			}

			// id__in: live ones only, by date_created.
			some := ids(m.s.Snapshot("activities"))[:3]
			got = ids(records(m.page("/api/v1/activity/?id__in=" + strings.Join(append(slices.Clone(some), "acti_missing"), ","))))
			if !reflect.DeepEqual(sorted(got), sorted(some)) {
				t.Fatalf("id__in=%v listed %v", some, got)
			}
		})
	}
}

func actObjectTypes() []string {
	var out []string
	for _, a := range actTypes {
		out = append(out, a.objType)
	}
	return out
}

func taskObjectTypes() []string {
	var out []string
	for _, k := range taskTypes {
		out = append(out, "task."+k.name)
	}
	return out
}

// TestChunkedAnswers: with Config.ChunkedAnswers an answer announces no length and comes in
// chunks, its body the same as with the length announced.
func TestChunkedAnswers(t *testing.T) {
	const path = "/api/v1/lead/?_limit=100"
	announced := newSim(t, smallConfig()).get(path)
	cfg := smallConfig()
	cfg.ChunkedAnswers = true
	chunked := newSim(t, cfg).get(path)
	if announced.code != 200 || announced.hdr.Get("Content-Length") == "" {
		t.Fatalf("default answer: status %d, Content-Length %q; want 200 and a length", announced.code, announced.hdr.Get("Content-Length"))
	}
	if chunked.code != 200 || chunked.hdr.Get("Content-Length") != "" || !bytes.Equal(chunked.body, announced.body) {
		t.Fatalf("chunked answer: status %d, Content-Length %q, same body %v; want 200, no length, the same body",
			chunked.code, chunked.hdr.Get("Content-Length"), bytes.Equal(chunked.body, announced.body))
	}
}
