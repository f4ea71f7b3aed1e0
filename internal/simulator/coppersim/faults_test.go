package coppersim

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/fakeclock"
)

func TestRateLimit(t *testing.T) {
	clock := fakeclock.New(testEpoch.Add(time.Hour))
	cfg := smallConfig()
	cfg.RateLimit = 3 // 3/s averaged over 10 s: 30 requests per rolling window
	cfg.RateWindow = 10 * time.Second
	cfg.Now = clock.Now
	c := newTestClient(t, cfg)

	for i := 0; i < 30; i++ {
		c.do("GET", "/users/me", nil).must(t, 200)
		clock.Advance(100 * time.Millisecond)
	}
	// The window still holds all 30 (the oldest is 3 s old).
	r := c.do("GET", "/users/me", nil).must(t, 429)
	if string(r.body) != `{"success":false,"status":429,"message":"Rate limit exceeded"}` {
		t.Fatalf("429 body %s", r.body)
	}
	for k := range r.header {
		lk := strings.ToLower(k)
		if lk == "retry-after" || strings.Contains(lk, "ratelimit") || strings.Contains(lk, "rate-limit") {
			t.Fatalf("429 carries header %s", k)
		}
	}
	// Rejected requests do not extend the block: once the oldest accepted
	// request leaves the window, one more is allowed, then 429 again.
	clock.Advance(7 * time.Second) // oldest accepted is now 10 s old
	c.do("GET", "/users/me", nil).must(t, 200)
	c.do("GET", "/users/me", nil).must(t, 429)
	clock.Advance(10 * time.Second)
	for i := 0; i < 30; i++ {
		c.do("POST", "/people/search", nil).must(t, 200)
	}
	c.do("POST", "/people/search", nil).must(t, 429)
	st := c.srv.Stats()
	if st.ByStatus[429] != 3 || st.ByStatus[200] != 61 {
		t.Fatalf("stats %v", st.ByStatus)
	}
	// 401 comes before the limiter: bad credentials never see 429.
	c.hdr.Set("X-PW-AccessToken", "wrong")
	c.do("GET", "/users/me", nil).must(t, 401)
}

// symptom classifies what a client sees.
func symptom(r result) string {
	switch {
	case r.status == 0:
		return "reset"
	case r.err != nil:
		return "truncate"
	case r.status == 429 && r.header.Get("Retry-After") != "":
		return "429"
	case r.status == 429:
		return "429_nohint"
	case r.status >= 500:
		return "5xx"
	case r.status == 200 && !json.Valid(r.body):
		return "bad_json"
	case r.status == 200:
		return "ok"
	}
	return "other"
}

func TestFaultRates(t *testing.T) {
	const n = 600
	const rate = 0.25
	cases := []struct {
		kind string
		set  func(f *Faults)
	}{
		{"429", func(f *Faults) { f.Rate429 = rate }},
		{"429_nohint", func(f *Faults) { f.Rate429NoHint = rate }},
		{"5xx", func(f *Faults) { f.Rate5xx = rate }},
		{"truncate", func(f *Faults) { f.RateTruncate = rate }},
		{"bad_json", func(f *Faults) { f.RateBadJSON = rate }},
		{"reset", func(f *Faults) { f.RateReset = rate }},
	}
	for _, tc := range cases {
		t.Run(tc.kind, func(t *testing.T) {
			c := newTestClient(t, smallConfig())
			var f Faults
			f.Seed = 7
			tc.set(&f)
			c.srv.SetFaults(f)
			seen := map[string]int{}
			codes := map[int]bool{}
			for i := 0; i < n; i++ {
				// POST: Go's transport does not silently retry it after a reset.
				r := c.do("POST", "/users/search", map[string]any{"page_size": 3})
				seen[symptom(r)]++
				codes[r.status] = true
			}
			got := float64(seen[tc.kind]) / n
			if math.Abs(got-rate) > 0.06 || seen[tc.kind]+seen["ok"] != n {
				t.Fatalf("symptoms %v (rate %.3f, want %.2f)", seen, got, rate)
			}
			if c.srv.Stats().Faults[tc.kind] != int64(seen[tc.kind]) {
				t.Fatalf("Stats.Faults %v, client saw %v", c.srv.Stats().Faults, seen)
			}
			if tc.kind == "5xx" && !(codes[500] && codes[502] && codes[503] && codes[504]) {
				t.Fatalf("5xx codes %v", codes)
			}
		})
	}

	t.Run("bad_json variants", func(t *testing.T) {
		c := newTestClient(t, smallConfig())
		c.srv.SetFaults(Faults{Seed: 3, RateBadJSON: 1})
		var empty, html, broken int
		for i := 0; i < 60; i++ {
			r := c.do("POST", "/users/search", nil).must(t, 200)
			switch {
			case len(r.body) == 0:
				empty++
			case bytes.HasPrefix(r.body, []byte("<!DOCTYPE html>")):
				html++
			default:
				broken++
			}
		}
		if empty == 0 || html == 0 || broken == 0 {
			t.Fatalf("variants empty %d html %d broken %d", empty, html, broken)
		}
	})

	t.Run("slow", func(t *testing.T) {
		c := newTestClient(t, smallConfig())
		c.srv.SetFaults(Faults{Seed: 5, RateSlow: 0.3, SlowDelay: 20 * time.Millisecond})
		slow := 0
		for i := 0; i < 60; i++ {
			start := time.Now()
			c.do("GET", "/users/me", nil).must(t, 200)
			if time.Since(start) >= 20*time.Millisecond {
				slow++
			}
		}
		// A slow request always takes the delay; allow a little slack for a
		// loaded machine making an ordinary request that slow.
		if got := int(c.srv.Stats().Faults["slow"]); slow < got || slow > got+3 || got < 8 || got > 30 {
			t.Fatalf("slow: stats %d, measured %d of 60", got, slow)
		}
	})

	t.Run("mutate between pages", func(t *testing.T) {
		clock := fakeclock.New(testEpoch.Add(2 * time.Hour))
		cfg := smallConfig()
		cfg.Now = clock.Now
		cfg.Faults = Faults{Seed: 9, MutateBetweenPages: 1}
		c := newTestClient(t, cfg)
		before := c.srv.Count("people")
		pages := 0
		for page := 1; ; page++ {
			rows, _ := c.search("people", map[string]any{"page_number": page, "page_size": 50, "sort_by": "date_created"})
			pages++
			if len(rows) < 50 {
				break
			}
		}
		st := c.srv.Stats()
		if st.Faults["mutate"] != int64(pages-1) {
			t.Fatalf("mutations %d, later pages %d", st.Faults["mutate"], pages-1)
		}
		if c.srv.Count("people") != before { // one insert and one delete each time
			t.Fatalf("count %d, want %d", c.srv.Count("people"), before)
		}
		_, changed := c.search("people", map[string]any{"minimum_modified_date": clock.Now().Unix(), "sort_by": "date_modified"})
		if changed < pages-1 {
			t.Fatalf("only %d records modified at the mutation time", changed)
		}
		// The first search of an entity since SetFaults never mutates; any later one may,
		// page 1 too: a keyset walk re-anchors its filter and never asks for page 2.
		if err := c.srv.SetFaults(cfg.Faults); err != nil {
			t.Fatal(err)
		}
		c.srv.ResetStats()
		c.search("people", map[string]any{"page_number": 1})
		if c.srv.Stats().Faults["mutate"] != 0 {
			t.Fatal("the first search mutated")
		}
		c.search("people", map[string]any{"page_number": 1, "minimum_modified_date": 1})
		if c.srv.Stats().Faults["mutate"] != 1 {
			t.Fatal("a re-anchored first page did not mutate")
		}
	})
}

// Fault settings: TestFaultSettingsPolicy.
func TestConfigValidation(t *testing.T) {
	for _, cfg := range []Config{{People: -1}, {RateLimit: -1}, {RateLimit: math.NaN()}, {RateWindow: -time.Second}, {Latency: -1}, {Span: -1}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New accepted %+v", cfg)
		}
	}
}

func TestLatency(t *testing.T) {
	cfg := smallConfig()
	cfg.Latency = 15 * time.Millisecond
	c := newTestClient(t, cfg)
	start := time.Now()
	c.do("GET", "/account", nil).must(t, http.StatusOK)
	if time.Since(start) < 15*time.Millisecond {
		t.Fatal("latency not applied")
	}
}

// Epoch is the anchor the data was generated against: Config.Epoch, or the start of today.
func TestEpoch(t *testing.T) {
	c := newTestClient(t, smallConfig())
	if got := c.srv.Epoch(); !got.Equal(testEpoch) || got.Location() != time.UTC {
		t.Errorf("Epoch %v, want %v", got, testEpoch)
	}
	for _, r := range c.srv.Snapshot("people") {
		if num(r["date_modified"]) >= testEpoch.Unix() {
			t.Fatalf("person %v modified at or after Epoch", r["id"])
		}
	}
	s, err := New(Config{People: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Epoch(), time.Now().UTC().Truncate(24*time.Hour); !got.Equal(want) {
		t.Errorf("zero Config.Epoch: Epoch %v, want %v", got, want)
	}
}
