package apiclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/fakeclock"
)

// epoch is where the tests' fake clocks start.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newFakeClock() *fakeclock.Clock { return fakeclock.New(epoch) }

// gaps is how long n intervals at rate requests/s last.
func gaps(n int, rate float64) time.Duration {
	return time.Duration(float64(n) / rate * float64(time.Second))
}

// TestPacingLearnsEachGroup: each endpoint group is paced by the limit its own answers
// announce, just under it, whatever the window's form.
func TestPacingLearnsEachGroup(t *testing.T) {
	tests := []struct {
		name   string
		header string
		n      int
		want   time.Duration // the fake time n requests take
	}{
		{"200 per second", "limit=200, remaining=199, reset=1", 101, gaps(100, 190)},
		{"5 per second", "limit=5, remaining=4, reset=1", 20, gaps(19, 4.75)},
		{"fractional reset", "limit=10, remaining=9, reset=0.4", 20, gaps(19, 9.5)},
		{"keys in another order and spacing", "reset=1,limit=5 , remaining=4", 20, gaps(19, 4.75)},
		{"600 per minute, counting down", "limit=600, remaining=500, reset=60", 51, gaps(50, 9.5)},
		{"older X-Rate-Limit headers", "", 11, gaps(10, 19)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.header != "" {
					w.Header().Set("RateLimit", tt.header)
				} else {
					w.Header().Set("X-Rate-Limit-Limit", "20")
					w.Header().Set("X-Rate-Limit-Remaining", "19")
					w.Header().Set("X-Rate-Limit-Reset", "1")
				}
				w.Write([]byte(`{"data": []}`))
			}))
			defer srv.Close()
			clock := newFakeClock()
			c, _ := New(Config{BaseURL: srv.URL, LearnLimits: true, GroupRate: 1, Clock: clock})
			t0 := clock.Now()
			for range tt.n {
				if err := c.Do(context.Background(), Request{Method: "GET", Path: "/a/"}, decodeData); err != nil {
					t.Fatal(err)
				}
			}
			got := clock.Since(t0)
			if got < tt.want*95/100 || got > tt.want*105/100 {
				t.Fatalf("%d requests took %s of paced time, want about %s", tt.n, got, tt.want)
			}
		})
	}
}

// TestGroupsArePacedApart: a slow group does not hold back a fast one, and a closed group does
// not close another.
func TestGroupsArePacedApart(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow/":
			w.Header().Set("RateLimit", "limit=1, remaining=0, reset=30")
		default:
			w.Header().Set("RateLimit", "limit=100, remaining=99, reset=1")
		}
		w.Write([]byte(`{"data": []}`))
	}))
	defer srv.Close()
	clock := newFakeClock()
	c, _ := New(Config{BaseURL: srv.URL, LearnLimits: true, Clock: clock})
	ctx := context.Background()
	if err := c.Do(ctx, Request{Method: "GET", Path: "/slow/"}, decodeData); err != nil {
		t.Fatal(err)
	}
	t0 := clock.Now()
	for range 10 {
		if err := c.Do(ctx, Request{Method: "GET", Path: "/fast/"}, decodeData); err != nil {
			t.Fatal(err)
		}
	}
	if el := clock.Since(t0); el > time.Second {
		t.Fatalf("the fast group waited %s behind the slow group's closed window", el)
	}
	t0 = clock.Now()
	if err := c.Do(ctx, Request{Method: "GET", Path: "/slow/"}, decodeData); err != nil {
		t.Fatal(err)
	}
	if el := clock.Since(t0); el < 29*time.Second {
		t.Fatalf("the slow group's second request waited %s; its answer said remaining=0, reset=30", el)
	}
}

// TestRemainingCountsRequestsInFlight: an answer saying 2 remain while 3 other requests are
// out closes the group until the reset.
func TestRemainingCountsRequestsInFlight(t *testing.T) {
	clock := newFakeClock()
	p := newPacer(clock, true, 0)
	ctx := context.Background()
	for range 4 {
		if _, err := p.acquire(ctx); err != nil {
			t.Fatal(err)
		}
		if p.probe != nil { // answer the probe so the others may go
			p.done(outcome{answered: true, hasLimit: true, budget: budget{limit: 100, remaining: 50, reset: time.Second}})
			p.inflight++ // keep it counted as out for the test
		}
	}
	p.done(outcome{answered: true, hasLimit: true, budget: budget{limit: 100, remaining: 2, reset: 3 * time.Second}})
	t0 := clock.Now()
	if _, err := p.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if el := clock.Since(t0); el < 3*time.Second {
		t.Fatalf("sent after %s with 2 remaining and 3 in flight; want to wait for the 3 s reset", el)
	}
}

// TestRateLimitsDoNotSpendRetries: a long 429 storm with hints ends in success although it is
// longer than the retry budget; the waits are bounded by time instead.
func TestRateLimitsDoNotSpendRetries(t *testing.T) {
	tests := []struct {
		name    string
		limited func(http.ResponseWriter)
	}{
		{"429 with reset", status(429, map[string]string{"RateLimit": "limit=10, remaining=0, reset=2"}, "")},
		{"429 with Retry-After", status(429, map[string]string{"Retry-After": "2"}, "")},
		{"503 with Retry-After", status(503, map[string]string{"Retry-After": "2"}, "")},
		{"429 without hint", status(429, nil, `{"success": false, "status": 429, "message": "Rate limit exceeded"}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			steps := make([]func(http.ResponseWriter), 0, 21)
			for range 20 {
				steps = append(steps, tt.limited)
			}
			srv, n := scripted(t, append(steps, ok)...)
			clock := newFakeClock()
			c, _ := New(Config{BaseURL: srv.URL, MaxAttempts: 3, Clock: clock})
			if err := c.Do(context.Background(), Request{Method: "GET", Path: "/x/"}, decodeData); err != nil {
				t.Fatalf("20 rate-limited answers then success, with 3 attempts for failures: %v", err)
			}
			if n.Load() != 21 {
				t.Fatalf("requests = %d, want 21", n.Load())
			}
			if got := c.Stats().RateLimited; got != 20 {
				t.Fatalf("RateLimited = %d, want 20", got)
			}
		})
	}
}

func TestRateLimitTimeout(t *testing.T) {
	srv, _ := scripted(t, status(429, map[string]string{"Retry-After": "5"}, ""))
	clock := newFakeClock()
	c, _ := New(Config{BaseURL: srv.URL, Clock: clock, RateLimitTimeout: time.Minute})
	err := c.Do(context.Background(), Request{Method: "GET", Path: "/task/"}, decodeData)
	if err == nil || !strings.Contains(err.Error(), "still rate limited after 1m0s") || !strings.Contains(err.Error(), "--rate-limit-timeout") {
		t.Fatalf("want an error naming the bound and its setting, got %v", err)
	}
	if el := clock.Since(epoch); el < time.Minute || el > 2*time.Minute {
		t.Fatalf("gave up after %s of rate limiting, want about a minute", el)
	}
}

// TestClosedWindowHoldsEveryRequest: concurrent readers of one group send nothing inside a
// window a 429 announced (the server counts requests arriving inside it), and the storm ends
// with every request answered.
func TestClosedWindowHoldsEveryRequest(t *testing.T) {
	var mu sync.Mutex
	var closedUntil time.Time
	var count, inside int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		count++
		now := time.Now()
		if now.Before(closedUntil) {
			inside++
		}
		storm := count%3 == 0
		if storm {
			closedUntil = now.Add(200 * time.Millisecond)
		}
		mu.Unlock()
		if storm {
			w.Header().Set("RateLimit", "limit=100, remaining=0, reset=0.2")
			w.WriteHeader(429)
			return
		}
		w.Header().Set("RateLimit", "limit=1000, remaining=999, reset=1")
		w.Write([]byte(`{"data": []}`))
	}))
	defer srv.Close()
	c, _ := New(Config{BaseURL: srv.URL, LearnLimits: true, MaxAttempts: 2})
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 6 {
		wg.Go(func() {
			for range 4 {
				if err := c.Do(context.Background(), Request{Method: "GET", Path: "/activity/"}, decodeData); err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d requests failed under a storm that clears", failed.Load())
	}
	// Requests already on the wire when a 429 is sent cannot be recalled; with six readers at
	// most five can be, per 429. Anything beyond that was sent after the client knew.
	storms := count / 3
	if inside > storms*5 || inside > count/4 {
		t.Fatalf("%d of %d requests arrived inside announced windows (%d 429s)", inside, count, storms)
	}
	t.Logf("%d requests, %d 429s, %d inside a window", count, storms, inside)
}

// TestNoHintBackoffIsShort: Copper's header-less 429 on every third request must not stall the
// account for a whole rolling minute each time.
func TestNoHintBackoffIsShort(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%3 == 0 {
			w.WriteHeader(429)
			return
		}
		w.Write([]byte(`{"data": []}`))
	}))
	defer srv.Close()
	clock := newFakeClock()
	c, _ := New(Config{BaseURL: srv.URL, GroupRate: 2.95, Group: func(Request) string { return "account" }, Clock: clock})
	t0 := clock.Now()
	for i := range 30 {
		if err := c.Do(context.Background(), Request{Method: "POST", Path: fmt.Sprintf("/t%d/search", i%5)}, decodeData); err != nil {
			t.Fatal(err)
		}
	}
	// 45 requests at 2.95/s is 15 s; each of the 15 429s may add up to 0.5 s.
	if el := clock.Since(t0); el > 25*time.Second {
		t.Fatalf("30 requests with every third a 429 took %s", el)
	}
}

// TestStalledAnswersAreAbandoned: an answer that stops sending bytes (before or inside the
// body) is abandoned after the stall timeout and retried.
func TestStalledAnswersAreAbandoned(t *testing.T) {
	for _, where := range []string{"headers", "body"} {
		t.Run(where, func(t *testing.T) {
			var n atomic.Int64
			release := make(chan struct{})
			defer close(release)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if n.Add(1) > 1 {
					w.Write([]byte(`{"data": [1]}`))
					return
				}
				if where == "body" {
					w.Header().Set("Content-Length", "13")
					w.Write([]byte(`{"data": `))
					w.(http.Flusher).Flush()
				}
				select {
				case <-release:
				case <-r.Context().Done():
				}
			}))
			defer srv.Close()
			c, _ := New(Config{BaseURL: srv.URL, StallTimeout: 200 * time.Millisecond, BaseBackoff: time.Millisecond})
			t0 := time.Now()
			if err := c.Do(context.Background(), Request{Method: "GET", Path: "/x/"}, decodeData); err != nil {
				t.Fatal(err)
			}
			if el := time.Since(t0); el > 3*time.Second {
				t.Fatalf("took %s; the stalled answer should have been abandoned after 200ms", el)
			}
			if n.Load() != 2 {
				t.Fatalf("requests = %d, want 2", n.Load())
			}
		})
	}
}

// TestSlowButSteadyAnswerIsKept: bytes that keep coming, slowly but above the minimum rate, are
// not a stall.
func TestSlowButSteadyAnswerIsKept(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := `{"data": [1, 2, 3]}`
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		for i := range len(body) {
			w.Write([]byte{body[i]})
			w.(http.Flusher).Flush()
			time.Sleep(30 * time.Millisecond)
		}
	}))
	defer srv.Close()
	c, _ := New(Config{BaseURL: srv.URL, StallTimeout: 150 * time.Millisecond, MaxAttempts: 1, MinBodyRate: 10})
	if err := c.Do(context.Background(), Request{Method: "GET", Path: "/x/"}, decodeData); err != nil {
		t.Fatalf("a slow steady answer (~600ms, a byte every 30ms) was abandoned: %v", err)
	}
}

// TestRedirects: credentials never follow a redirect to another host, and a POST never becomes
// a GET; a same-host redirect of a GET (Close's missing slash) is followed.
func TestRedirects(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-PW-AccessToken") != "" {
			t.Errorf("the access token reached another host")
		}
		w.Write([]byte(`{"data": []}`))
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/elsewhere/":
			http.Redirect(w, r, other.URL+"/x/", http.StatusFound)
		case "/moved":
			http.Redirect(w, r, "/moved/", http.StatusMovedPermanently)
		case "/moved/":
			if r.Method != http.MethodGet {
				t.Errorf("redirect target got %s", r.Method)
			}
			w.Write([]byte(`{"data": []}`))
		}
	}))
	defer srv.Close()
	c, _ := New(Config{BaseURL: srv.URL, Authorize: func(r *http.Request) { r.Header.Set("X-PW-AccessToken", "secret-token") }})
	ctx := context.Background()
	var se *StatusError
	err := c.Do(ctx, Request{Method: "GET", Path: "/elsewhere/"}, decodeData)
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "refusing to follow a redirect") {
		t.Fatalf("cross-host redirect: %v", err)
	}
	err = c.Do(ctx, Request{Method: "POST", Path: "/moved", Body: map[string]any{"page_size": 200}}, decodeData)
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "turns POST into GET") {
		t.Fatalf("POST redirected as GET: %v", err)
	}
	if err := c.Do(ctx, Request{Method: "GET", Path: "/moved"}, decodeData); err != nil {
		t.Fatalf("same-host GET redirect: %v", err)
	}
}
