package closesim

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/fakeclock"
	"github.com/crmsync/crmsync/internal/simulator/simfault/simfaulttest"
)

// step is one request of a scripted exchange: advance the clock, GET path,
// and check what came back ("" = not checked).
type step struct {
	advance    time.Duration
	path       string
	code       int
	rateLimit  string
	retryAfter string
}

func runSteps(t *testing.T, m *sim, clk *fakeclock.Clock, steps []step) {
	t.Helper()
	for i, st := range steps {
		clk.Advance(st.advance)
		r := m.get(st.path)
		if r.err != nil {
			t.Fatalf("step %d %s: %v", i, st.path, r.err)
		}
		if r.code != st.code {
			t.Fatalf("step %d %s: status %d, want %d (%s)", i, st.path, r.code, st.code, r.body)
		}
		if st.rateLimit != "" && r.hdr.Get("RateLimit") != st.rateLimit {
			t.Fatalf("step %d %s: RateLimit %q, want %q", i, st.path, r.hdr.Get("RateLimit"), st.rateLimit)
		}
		if st.retryAfter != "" && r.hdr.Get("Retry-After") != st.retryAfter {
			t.Fatalf("step %d %s: Retry-After %q, want %q", i, st.path, r.hdr.Get("Retry-After"), st.retryAfter)
		}
	}
}

const (
	pLead = "/api/v1/lead/?_limit=1"
	pAct  = "/api/v1/activity/?_limit=1"
	pTask = "/api/v1/task/?_limit=1"
	pMe   = "/api/v1/me/"
)

func repeat(n int, s step) []step {
	out := make([]step, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func TestGroupRateLimits(t *testing.T) {
	// 12:00:00.653 UTC: 0.347 s left in the current second.
	start := testEpoch.Add(12*time.Hour + 653*time.Millisecond)
	cases := []struct {
		name  string
		cfg   func(*Config)
		steps []step
		// per-group genuine 429s expected at the end
		limited map[string]int64
	}{
		{"group limit, others unlimited", func(c *Config) {
			c.GroupRateLimits = map[string]float64{"GET /lead/": 2}
		}, []step{
			{0, pLead, 200, "limit=2, remaining=1, reset=1", ""},
			{0, pLead, 200, "limit=2, remaining=0, reset=1", ""},
			{0, pLead, 429, "limit=2, remaining=0, reset=1", "1"},
			{0, pAct, 200, "limit=1000, remaining=1000, reset=0", ""},
			{0, "/api/v1/lead/" + "lead_nope/", 404, "limit=1000, remaining=1000, reset=0", ""}, // GET /lead/{id}/ is its own group
			{500 * time.Millisecond, pLead, 200, "limit=2, remaining=0, reset=1", ""},
		}, map[string]int64{"GET /lead/": 1}},
		{"group override beats RateLimit", func(c *Config) {
			c.RateLimit = 5
			c.GroupRateLimits = map[string]float64{"GET /activity/": 1, "GET /me/": 0}
		}, append([]step{
			{0, pLead, 200, "limit=5, remaining=4, reset=1", ""},
			{0, pAct, 200, "limit=1, remaining=0, reset=1", ""},
			{0, pAct, 429, "limit=1, remaining=0, reset=1", "1"},
			{0, pTask, 200, "limit=5, remaining=4, reset=1", ""},
		}, repeat(8, step{0, pMe, 200, "limit=1000, remaining=1000, reset=0", ""})...),
			map[string]int64{"GET /activity/": 1}},
		{"fixed window", func(c *Config) {
			c.RateLimit = 2
			c.RateWindow = 10 * time.Second // 20 per window; windows start at :00, :10, …
		}, append(append([]step{
			{0, pLead, 200, "limit=20, remaining=19, reset=10", ""}, // 9.347 s left → 10
		}, repeat(19, step{0, pLead, 200, "", ""})...),
			step{0, pLead, 429, "limit=20, remaining=0, reset=10", "10"},
			step{0, pAct, 200, "limit=20, remaining=19, reset=10", ""},
			step{9 * time.Second, pLead, 429, "limit=20, remaining=0, reset=1", "1"}, // 0.347 s left
			step{347 * time.Millisecond, pLead, 200, "limit=20, remaining=19, reset=10", ""},
		), map[string]int64{"GET /lead/": 2}},
		{"fixed window, fractional reset", func(c *Config) {
			c.RateLimit = 3
			c.RateWindow = time.Second
			c.FractionalReset = true
		}, []step{
			{0, pLead, 200, "limit=3, remaining=2, reset=0.347", ""},
			{0, pLead, 200, "limit=3, remaining=1, reset=0.347", ""},
			{100 * time.Millisecond, pLead, 200, "limit=3, remaining=0, reset=0.247", ""},
			{0, pLead, 429, "limit=3, remaining=0, reset=0.247", "1"},
			{247 * time.Millisecond, pLead, 200, "limit=3, remaining=2, reset=1.000", ""},
		}, map[string]int64{"GET /lead/": 1}},
		{"token bucket, fractional reset", func(c *Config) {
			c.GroupRateLimits = map[string]float64{"GET /task/": 4}
			c.FractionalReset = true
		}, []step{
			{0, pTask, 200, "limit=4, remaining=3, reset=0.250", ""},
			{0, pTask, 200, "limit=4, remaining=2, reset=0.500", ""},
			{0, pTask, 200, "limit=4, remaining=1, reset=0.750", ""},
			{0, pTask, 200, "limit=4, remaining=0, reset=1.000", ""},
			{0, pTask, 429, "limit=4, remaining=0, reset=0.250", "1"},
			{250 * time.Millisecond, pTask, 200, "limit=4, remaining=0, reset=1.000", ""},
		}, map[string]int64{"GET /task/": 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk := fakeclock.New(start)
			cfg := smallConfig()
			cfg.Now = clk.Now
			c.cfg(&cfg)
			m := newSim(t, cfg)
			runSteps(t, m, clk, c.steps)
			st := m.s.Stats()
			var sum int64
			for _, v := range st.RateLimitedByGroup {
				sum += v
			}
			if !equalCounts(st.RateLimitedByGroup, c.limited) || st.RateLimited != sum {
				t.Errorf("RateLimited %d, by group %v; want %v", st.RateLimited, st.RateLimitedByGroup, c.limited)
			}
			var n int64
			for _, v := range st.ByGroup {
				n += v
			}
			if n != int64(len(c.steps)) {
				t.Errorf("ByGroup %v counts %d requests, want %d", st.ByGroup, n, len(c.steps))
			}
		})
	}
}

func equalCounts(a, b map[string]int64) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}

func TestGroupKeys(t *testing.T) {
	keys := GroupKeys()
	for _, k := range []string{"GET /me/", "GET /lead/", "GET /lead/{id}/", "GET /activity/", "GET /activity/email/",
		"GET /activity/status_change/lead/", "GET /task/", "GET /user/", "GET /event/", "GET /custom_field/lead/", "HEAD /lead/"} {
		if !slices.Contains(keys, k) {
			t.Errorf("GroupKeys lacks %q", k)
		}
	}
	for _, bad := range []map[string]float64{{"GET /leads/": 1}, {"/lead/": 1}, {"POST /lead/": 1}, {"GET /lead/": -1}, {"GET /lead/": math.NaN()}} {
		cfg := smallConfig()
		cfg.GroupRateLimits = bad
		if _, err := New(cfg); err == nil {
			t.Errorf("GroupRateLimits %v accepted", bad)
		}
	}
	// Every key is what the server counts for a request to it.
	clk := fakeclock.New(testEpoch)
	cfg := smallConfig()
	cfg.Now = clk.Now
	m := newSim(t, cfg)
	for path, key := range map[string]string{
		pLead: "GET /lead/", pAct: "GET /activity/", "/api/v1/activity/email/": "GET /activity/email/",
		"/api/v1/custom_field/lead/": "GET /custom_field/lead/", pMe: "GET /me/", "/api/v1/event/": "GET /event/",
	} {
		m.s.ResetStats()
		m.get(path)
		if st := m.s.Stats(); st.ByGroup[key] != 1 || len(st.ByGroup) != 1 || !slices.Contains(keys, key) {
			t.Errorf("%s: ByGroup %v, want %q", path, st.ByGroup, key)
		}
	}
}

// TestResetWindows: every way the server announces a wait closes the group
// until then; requests inside are 429 (EnforceResets) and counted.
func TestResetWindows(t *testing.T) {
	start := testEpoch.Add(6 * time.Hour)
	cases := []struct {
		name    string
		cfg     func(*Config)
		trigger []step // the last one announces the wait
		inside  step   // a request before the wait is over
		after   step   // the first request at the end of the wait
	}{
		{"genuine token bucket", func(c *Config) { c.GroupRateLimits = map[string]float64{"GET /lead/": 2} },
			[]step{{0, pLead, 200, "", ""}, {0, pLead, 200, "", ""}, {0, pLead, 429, "limit=2, remaining=0, reset=1", "1"}},
			step{400 * time.Millisecond, pLead, 429, "limit=2, remaining=0, reset=1", "1"},
			step{100 * time.Millisecond, pLead, 200, "", ""}},
		{"genuine fixed window, fractional", func(c *Config) { c.RateLimit = 1; c.RateWindow = 2 * time.Second; c.FractionalReset = true },
			[]step{{0, pLead, 200, "", ""}, {0, pLead, 200, "limit=2, remaining=0, reset=2.000", ""}, {0, pLead, 429, "limit=2, remaining=0, reset=2.000", "2"}},
			step{1500 * time.Millisecond, pLead, 429, "limit=2, remaining=0, reset=0.500", "1"},
			step{500 * time.Millisecond, pLead, 200, "limit=2, remaining=1, reset=2.000", ""}},
		{"fault 429", func(c *Config) { c.Faults = Faults{Seed: 1, Rate429: 1} },
			[]step{{0, pLead, 429, "limit=1000, remaining=0, reset=1", "1"}},
			step{300 * time.Millisecond, pLead, 429, "limit=1000, remaining=0, reset=1", "1"},
			step{700 * time.Millisecond, pLead, 200, "", ""}},
		{"storm 429", func(c *Config) { c.Faults = Faults{Every429: 2, StormReset: 3 * time.Second}; c.FractionalReset = true },
			[]step{{0, pLead, 200, "", ""}, {0, pLead, 429, "limit=1000, remaining=0, reset=3.000", "3"}},
			step{1250 * time.Millisecond, pLead, 429, "limit=1000, remaining=0, reset=1.750", "2"},
			step{1750 * time.Millisecond, pLead, 200, "", ""}},
		{"503 Retry-After", func(c *Config) { c.Faults = Faults{Seed: 2, Rate503RetryAfter: 1, RetryAfter: 5 * time.Second} },
			[]step{{0, pLead, 503, "", "5"}},
			step{2 * time.Second, pLead, 429, "limit=1000, remaining=0, reset=3", "3"},
			step{3 * time.Second, pLead, 200, "", ""}},
	}
	for _, c := range cases {
		for _, enforce := range []bool{true, false} {
			name := c.name
			if !enforce {
				name += " (counted only)"
			}
			t.Run(name, func(t *testing.T) {
				clk := fakeclock.New(start)
				cfg := smallConfig()
				cfg.Now = clk.Now
				cfg.EnforceResets = enforce
				c.cfg(&cfg)
				m := newSim(t, cfg)
				runSteps(t, m, clk, c.trigger)
				if err := m.s.SetFaults(Faults{}); err != nil { // no more faults: what follows is the window alone
					t.Fatal(err)
				}
				inside := c.inside
				if !enforce {
					// Served as if nothing were closed (the limiter may still refuse).
					inside.rateLimit, inside.retryAfter = "", ""
					if inside.code == 429 && !strings.Contains(c.name, "genuine") {
						inside.code = 200
					}
				}
				runSteps(t, m, clk, []step{inside, {0, pAct, 200, "", ""}, c.after})
				st := m.s.Stats()
				if st.InsideReset != 1 || st.InsideResetByGroup["GET /lead/"] != 1 || len(st.InsideResetByGroup) != 1 {
					t.Errorf("InsideReset %d, by group %v", st.InsideReset, st.InsideResetByGroup)
				}
			})
		}
	}
}

func TestStorms(t *testing.T) {
	cases := []struct {
		name   string
		faults Faults
		frac   bool
		// codes of requests 1..n (a 401 before each is not counted)
		codes []int
		rl429 string // RateLimit of the storm 429s
		ra429 string
	}{
		{"every 3rd 429", Faults{Every429: 3}, false,
			[]int{200, 200, 429, 200, 200, 429, 200, 200, 429}, "limit=1000, remaining=0, reset=1", "1"},
		{"every 4th 502", Faults{Every5xx: 4}, false,
			[]int{200, 200, 200, 502, 200, 200, 200, 502}, "", ""},
		{"429 wins a tie", Faults{Every429: 2, Every5xx: 3, StormReset: 1500 * time.Millisecond}, false,
			[]int{200, 429, 502, 429, 200, 429, 200, 429, 502, 429}, "limit=1000, remaining=0, reset=2", "2"},
		{"fractional storm reset", Faults{Every429: 1, StormReset: 1500 * time.Millisecond}, true,
			[]int{429, 429}, "limit=1000, remaining=0, reset=1.500", "2"},
	}
	paths := []string{pLead, pAct, pTask, pMe}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := smallConfig()
			cfg.FractionalReset = c.frac
			cfg.Faults = c.faults
			m := newSim(t, cfg)
			want429, want5xx := 0, 0
			for i, code := range c.codes {
				if r := m.do("GET", pLead, "wrong-key"); r.code != 401 {
					t.Fatalf("unauthenticated: %d", r.code)
				}
				r := m.get(paths[i%len(paths)]) // the count spans all groups
				if r.code != code {
					t.Fatalf("request %d: %d, want %d", i+1, r.code, code)
				}
				switch code {
				case 429:
					want429++
					var body struct {
						Error struct {
							RateReset float64 `json:"rate_reset"`
						}
					}
					if r.hdr.Get("RateLimit") != c.rl429 || r.hdr.Get("Retry-After") != c.ra429 ||
						json.Unmarshal(r.body, &body) != nil || body.Error.RateReset <= 0 {
						t.Fatalf("storm 429: RateLimit %q Retry-After %q body %s", r.hdr.Get("RateLimit"), r.hdr.Get("Retry-After"), r.body)
					}
				case 502:
					want5xx++
					if !bytes.HasPrefix(r.body, []byte("<html>")) || !strings.HasPrefix(r.hdr.Get("Content-Type"), "text/html") {
						t.Fatalf("storm 502 body %q", r.body)
					}
				}
			}
			st := m.s.Stats()
			if st.Faults["storm_429"] != int64(want429) || st.Faults["storm_5xx"] != int64(want5xx) || st.RateLimited != 0 {
				t.Errorf("stats: faults %v, rate limited %d", st.Faults, st.RateLimited)
			}
			// SetFaults restarts the count.
			if err := m.s.SetFaults(c.faults); err != nil {
				t.Fatal(err)
			}
			if r := m.get(pLead); r.code != c.codes[0] {
				t.Errorf("after SetFaults: %d, want %d", r.code, c.codes[0])
			}
		})
	}
}

func TestStalls(t *testing.T) {
	const stall = 400 * time.Millisecond
	cases := []struct {
		name    string
		faults  Faults
		headers bool // the headers themselves are held back
		kind    string
	}{
		{"body", Faults{RateStall: 1, StallFor: stall}, false, "stall"},
		{"headers", Faults{RateStallHeaders: 1, StallFor: stall}, true, "stall_headers"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := newSim(t, smallConfig())
			want := m.get(pLead)
			if err := m.s.SetFaults(c.faults); err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest("GET", m.ts.URL+pLead, nil)
			req.SetBasicAuth(testKey, "")
			simfaulttest.CheckStalled(t, m.c, req, stall, c.headers, want.body)
			if st := m.s.Stats(); st.Faults[c.kind] != 1 {
				t.Errorf("faults %v", st.Faults)
			}
		})
		t.Run(c.name+", client gives up", func(t *testing.T) {
			m := newSim(t, smallConfig())
			f := c.faults
			f.StallFor = time.Hour // ends only because the client leaves
			if err := m.s.SetFaults(f); err != nil {
				t.Fatal(err)
			}
			m.c.Timeout = 200 * time.Millisecond
			if r := m.get(pLead); r.err == nil {
				t.Fatalf("stall of an hour answered: %d", r.code)
			}
			deadline := time.Now().Add(5 * time.Second)
			for m.s.Stats().Requests == 0 { // counted when the handler returns
				if time.Now().After(deadline) {
					t.Fatal("handler still stalled after the client left")
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

func TestQueryExactMinute(t *testing.T) {
	base := testEpoch.Add(24*time.Hour + 12*time.Hour + 34*time.Minute) // after every seeded lead
	offsets := []time.Duration{-time.Millisecond, 0, 500 * time.Millisecond, 5 * time.Second, 59*time.Second + 999*time.Millisecond, time.Minute}
	// keep[i] for each offset, truncated vs exact
	cases := []struct {
		op           string
		trunc, exact []bool
	}{
		{"<=", []bool{true, true, true, true, true, false}, []bool{true, true, false, false, false, false}},
		{"<", []bool{true, false, false, false, false, false}, []bool{true, false, false, false, false, false}},
		{">=", []bool{false, true, true, true, true, true}, []bool{false, true, true, true, true, true}},
		{">", []bool{false, false, false, false, false, true}, []bool{false, false, true, true, true, true}},
	}
	for _, exact := range []bool{false, true} {
		cfg := smallConfig()
		cfg.QueryExactMinute = exact
		m := newSim(t, cfg)
		var added []string
		for _, off := range offsets {
			added = append(added, m.s.AddRecords("leads", 1, base.Add(off))...)
		}
		for _, c := range cases {
			t.Run(c.op+map[bool]string{false: " truncated", true: " exact"}[exact], func(t *testing.T) {
				// the seconds in the value are ignored in both modes
				q := `date_updated` + c.op + `"` + base.Add(17*time.Second).Format("2006-01-02T15:04:05") + `"`
				got := ids(m.walk("/api/v1/lead/?query="+url.QueryEscape(q), 200))
				want := c.trunc
				if exact {
					want = c.exact
				}
				for i, id := range added {
					if slices.Contains(got, id) != want[i] {
						t.Errorf("%s: lead at %+v: included %v, want %v", q, offsets[i], !want[i], want[i])
					}
				}
			})
		}
	}
}

// TestQueryZone: the lead query reads a date-time without a zone in Config.QueryZone, unless
// the request's X-TZ-Offset header names another; a value with a zone is read as it says.
func TestQueryZone(t *testing.T) {
	base := testEpoch.Add(24*time.Hour + 12*time.Hour + 34*time.Minute) // after every seeded lead
	cfg := smallConfig()
	cfg.QueryZone = -5 * time.Hour // the account's wall clock is UTC-5
	m := newSim(t, cfg)
	lead := m.s.AddRecords("leads", 1, base)[0]
	for _, tc := range []struct {
		value, header string
		code          int
		found         bool
	}{
		{base.Format("2006-01-02T15:04"), "", 200, false},                    // 12:34 UTC-5 is 17:34 UTC: after the lead
		{base.Add(-5 * time.Hour).Format("2006-01-02T15:04"), "", 200, true}, // 07:34 UTC-5 is the lead's minute
		{base.Format("2006-01-02T15:04"), "0", 200, true},
		{base.Format("2006-01-02T15:04"), "-5", 200, false},
		{base.Format("2006-01-02T15:04") + "+00:00", "", 200, true},
		{base.Format("2006-01-02T15:04"), "east", 400, false},
	} {
		q := url.QueryEscape(`date_updated>="` + tc.value + `" sort:date_updated`)
		req, err := http.NewRequest("GET", m.ts.URL+"/api/v1/lead/?_limit=200&query="+q, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth(testKey, "")
		if tc.header != "" {
			req.Header.Set("X-TZ-Offset", tc.header)
		}
		r, err := m.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Data []map[string]any `json:"data"`
		}
		err = json.NewDecoder(r.Body).Decode(&page)
		r.Body.Close()
		if r.StatusCode != tc.code || tc.code == 200 && err != nil {
			t.Fatalf("%s, X-TZ-Offset %q: %d (%v); want %d", tc.value, tc.header, r.StatusCode, err, tc.code)
		}
		if found := slices.Contains(ids(page.Data), lead); found != tc.found {
			t.Errorf("%s, X-TZ-Offset %q: lead found %v; want %v", tc.value, tc.header, found, tc.found)
		}
	}
}

func TestDateHeader(t *testing.T) {
	clk := fakeclock.New(time.Date(2031, 2, 3, 4, 5, 6, 700, time.FixedZone("X", 3600)))
	cfg := smallConfig()
	cfg.Now = clk.Now
	cfg.Faults = Faults{Every5xx: 2}
	m := newSim(t, cfg)
	for i, c := range []struct {
		path, key string
		code      int
	}{{pLead, testKey, 200}, {pLead, testKey, 502}, {pLead, "bad", 401}, {"/api/v1/nope/", testKey, 404}, {"/api/v1/lead", testKey, 301}} {
		clk.Advance(time.Duration(i) * time.Hour)
		r := m.do("GET", c.path, c.key)
		if r.code != c.code {
			t.Fatalf("%s: %d, want %d", c.path, r.code, c.code)
		}
		if want := clk.Now().UTC().Format(http.TimeFormat); r.hdr.Get("Date") != want {
			t.Errorf("%s: Date %q, want %q", c.path, r.hdr.Get("Date"), want)
		}
	}
}

func TestFaultSettingsPolicy(t *testing.T) {
	m := newSim(t, smallConfig())
	simfaulttest.CheckFaultPolicy(t, simfaulttest.Policy{
		New: func(f Faults) error {
			cfg := smallConfig()
			cfg.Faults = f
			_, err := New(cfg)
			return err
		},
		Sim: m.s,
		Get: func() int { return m.get(pLead).code },
		Bad: []Faults{
			{Rate503RetryAfter: 1.5},
			{Rate503RetryAfter: 0.6, RateSlow: 0.5}, // RateSlow is one of Close's exclusive rates
			{StormReset: -time.Second},
			{RetryAfter: -time.Second},
		},
		Good: []Faults{{Rate429: 0.2, Rate503RetryAfter: 0.2, RateStall: 0.2, RateStallHeaders: 0.2, RateSlow: 0.2, MutateBetweenPages: 1,
			RetryAfter: time.Second, StormReset: time.Second}},
	})
}
