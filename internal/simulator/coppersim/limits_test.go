package coppersim

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/fakeclock"
	"github.com/crmsync/crmsync/internal/simulator/simfault/simfaulttest"
)

const rate429Body = `{"success":false,"status":429,"message":"Rate limit exceeded"}`

func headerless(t *testing.T, r result) {
	t.Helper()
	if string(r.body) != rate429Body {
		t.Fatalf("429 body %s", r.body)
	}
	for k := range r.header {
		lk := strings.ToLower(k)
		if lk == "retry-after" || strings.Contains(lk, "ratelimit") || strings.Contains(lk, "rate-limit") {
			t.Fatalf("429 carries header %s", k)
		}
	}
}

// TestRateLimitPerMinute: Copper's documented 180 per rolling minute.
func TestRateLimitPerMinute(t *testing.T) {
	cases := []struct {
		name   string
		limit  float64
		window time.Duration
		n      int // requests a window admits
	}{
		{"180 per 60 s", CopperRateLimit, time.Minute, 180},
		{"36 per 6 s (2019 burst)", 6, 6 * time.Second, 36},
		{"0.3/s over 10 s", 0.3, 10 * time.Second, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clock := fakeclock.New(testEpoch.Add(time.Hour))
			cfg := smallConfig()
			cfg.RateLimit, cfg.RateWindow, cfg.Now = c.limit, c.window, clock.Now
			cl := newTestClient(t, cfg)
			step := c.window / time.Duration(2*c.n) // all n within half a window
			first := clock.Now()
			for i := 0; i < c.n; i++ {
				path := []string{"/users/me", "/account"}[i%2] // one limit for every endpoint
				cl.do("GET", path, nil).must(t, 200)
				clock.Advance(step)
			}
			headerless(t, cl.do("POST", "/people/search", nil).must(t, 429))
			// Just before the first request leaves the window: still full.
			clock.Set(first.Add(c.window - time.Nanosecond))
			cl.do("GET", "/users/me", nil).must(t, 429)
			// As it leaves, exactly one slot frees up.
			clock.Set(first.Add(c.window))
			cl.do("GET", "/users/me", nil).must(t, 200)
			cl.do("GET", "/users/me", nil).must(t, 429)
			st := cl.srv.Stats()
			if st.RateLimited != 3 || st.ByStatus[429] != 3 || st.ByStatus[200] != int64(c.n+1) {
				t.Fatalf("stats: rate limited %d, by status %v", st.RateLimited, st.ByStatus)
			}
		})
	}
}

func TestStorms(t *testing.T) {
	cases := []struct {
		name   string
		faults Faults
		codes  []int // requests 1..n; an unauthenticated one before each is not counted
	}{
		{"every 3rd 429", Faults{Every429: 3}, []int{200, 200, 429, 200, 200, 429, 200}},
		{"every 2nd 502", Faults{Every5xx: 2}, []int{200, 502, 200, 502}},
		{"429 wins a tie", Faults{Every429: 2, Every5xx: 3}, []int{200, 429, 502, 429, 200, 429, 200}},
		{"slow faults do not shift the count", Faults{Every5xx: 3, RateSlow: 1, SlowDelay: time.Microsecond}, []int{200, 200, 502}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clock := fakeclock.New(testEpoch.Add(time.Hour))
			cfg := smallConfig()
			cfg.Faults, cfg.Now = c.faults, clock.Now
			cfg.RateLimit, cfg.RateWindow = 1, time.Hour // 3600 per hour: storms leave the window alone
			cl := newTestClient(t, cfg)
			var want429, want502 int64
			for i, code := range c.codes {
				bad := newRequestHeaders(cl)
				bad.Set("X-PW-AccessToken", "nope")
				cl.doWith(bad, "GET", "/account").must(t, 401)
				var r result
				if i%2 == 0 {
					r = cl.do("POST", "/people/search", map[string]any{"page_size": 2})
				} else {
					r = cl.do("GET", "/users/me", nil)
				}
				r.must(t, code)
				switch code {
				case 429:
					want429++
					headerless(t, r)
				case 502:
					want502++
					if !bytes.Contains(r.body, []byte("<h1>502 Bad Gateway</h1>")) || r.header.Get("Content-Type") != "text/html" {
						t.Fatalf("502: %s %q", r.body, r.header.Get("Content-Type"))
					}
				}
			}
			st := cl.srv.Stats()
			if st.Faults["storm_429"] != want429 || st.Faults["storm_5xx"] != want502 || st.RateLimited != 0 {
				t.Fatalf("stats %v, rate limited %d", st.Faults, st.RateLimited)
			}
			// SetFaults restarts the count.
			if err := cl.srv.SetFaults(c.faults); err != nil {
				t.Fatal(err)
			}
			cl.do("GET", "/account", nil).must(t, c.codes[0])
		})
	}
}

func newRequestHeaders(c *testClient) http.Header { return c.hdr.Clone() }

func (c *testClient) doWith(h http.Header, method, path string) result {
	saved := c.hdr
	c.hdr = h
	defer func() { c.hdr = saved }()
	return c.do(method, path, nil)
}

func TestStalls(t *testing.T) {
	const stall = 400 * time.Millisecond
	cases := []struct {
		name    string
		faults  Faults
		headers bool
		kind    string
	}{
		{"body", Faults{RateStall: 1, StallFor: stall}, false, "stall"},
		{"headers", Faults{RateStallHeaders: 1, StallFor: stall}, true, "stall_headers"},
	}
	body := `{"page_size":5,"sort_by":"date_modified"}`
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl := newTestClient(t, smallConfig())
			want := cl.do("POST", "/people/search", body).must(t, 200)
			if err := cl.srv.SetFaults(c.faults); err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest("POST", cl.base+"/people/search", strings.NewReader(body))
			req.Header = cl.hdr.Clone()
			h := simfaulttest.CheckStalled(t, cl.hc, req, stall, c.headers, want.body)
			if h.Get("X-PW-TOTAL") != want.header.Get("X-PW-TOTAL") {
				t.Errorf("X-PW-TOTAL %q after a stall, want %q", h.Get("X-PW-TOTAL"), want.header.Get("X-PW-TOTAL"))
			}
			if st := cl.srv.Stats(); st.Faults[c.kind] != 1 {
				t.Errorf("faults %v", st.Faults)
			}
		})
		t.Run(c.name+", client gives up", func(t *testing.T) {
			cfg := smallConfig()
			cfg.Faults = c.faults
			cfg.Faults.StallFor = time.Hour // ends only because the client leaves
			s, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			ts := httptest.NewServer(s)
			cl := &testClient{t: t, srv: s, base: ts.URL + "/developer_api/v1", hc: &http.Client{Timeout: 200 * time.Millisecond}, hdr: http.Header{}}
			cl.hdr.Set("X-PW-AccessToken", s.cfg.APIKey)
			cl.hdr.Set("X-PW-Application", "developer_api")
			cl.hdr.Set("X-PW-UserEmail", s.cfg.UserEmail)
			// POST with a body the server has not read yet when it stalls.
			if r := cl.do("POST", "/people/search", body); r.err == nil {
				t.Fatalf("stall of an hour answered: %d", r.status)
			}
			// Close waits for running handlers: it returns only if the
			// stall ended when the client left.
			closed := make(chan struct{})
			go func() { ts.Close(); close(closed) }()
			select {
			case <-closed:
			case <-time.After(5 * time.Second):
				t.Fatal("handler still stalled after the client left")
			}
			if st := s.Stats(); st.Faults[c.kind] != 1 || (c.headers && len(st.ByStatus) != 0) {
				t.Fatalf("stats %v %v", st.Faults, st.ByStatus)
			}
		})
	}
}

func TestDateHeader(t *testing.T) {
	clock := fakeclock.New(time.Date(2030, 7, 8, 9, 10, 11, 12, time.FixedZone("Y", -7200)))
	cfg := smallConfig()
	cfg.Now = clock.Now
	cfg.Faults = Faults{Every429: 2}
	cl := newTestClient(t, cfg)
	bad := newRequestHeaders(cl)
	bad.Del("X-PW-UserEmail")
	for i, c := range []struct {
		h    http.Header
		path string
		code int
	}{{nil, "/account", 200}, {nil, "/account", 429}, {bad, "/account", 401}, {nil, "/nope", 404}} {
		clock.Advance(time.Duration(i) * 90 * time.Minute)
		var r result
		if c.h != nil {
			r = cl.doWith(c.h, "GET", c.path)
		} else {
			r = cl.do("GET", c.path, nil)
		}
		r.must(t, c.code)
		if want := clock.Now().UTC().Format(http.TimeFormat); r.header.Get("Date") != want {
			t.Errorf("%s: Date %q, want %q", c.path, r.header.Get("Date"), want)
		}
	}
}

func TestFaultSettingsPolicy(t *testing.T) {
	cl := newTestClient(t, smallConfig())
	simfaulttest.CheckFaultPolicy(t, simfaulttest.Policy{
		New: func(f Faults) error {
			_, err := New(Config{Faults: f})
			return err
		},
		Sim: cl.srv,
		Get: func() int { return cl.do("GET", "/account", nil).status },
		// What Copper cannot show is refused, not ignored.
		Bad: []Faults{{Rate503RetryAfter: 0.1}, {RetryAfter: time.Second}, {StormReset: time.Second}, {Every429: 3, StormReset: 2 * time.Second}},
		// RateSlow is drawn apart in coppersim: it does not count towards the sum.
		Good: []Faults{{Rate429: 0.5, RateStall: 0.25, RateStallHeaders: 0.25, RateSlow: 1}},
	})
}
