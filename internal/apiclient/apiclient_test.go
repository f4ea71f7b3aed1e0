package apiclient

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"golang.org/x/sync/errgroup"
)

// scripted answers the i-th request with steps[i] (the last step repeats).
func scripted(t *testing.T, steps ...func(w http.ResponseWriter)) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		if i >= len(steps) {
			i = len(steps) - 1
		}
		steps[i](w)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func status(code int, header map[string]string, body string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(code)
		w.Write([]byte(body))
	}
}

var ok = status(200, nil, `{"data": [1, 2]}`)

// chunked answers 200 with body sent in two flushed parts: no Content-Length, as a server that
// streams its answer sends it (the simulators always announce the length).
func chunked(body string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.WriteHeader(200)
		w.Write([]byte(body[:len(body)/2]))
		w.(http.Flusher).Flush()
		w.Write([]byte(body[len(body)/2:]))
	}
}

// gzipped answers 200 with body compressed: the transport decompresses it and the length it
// announces is unknown.
func gzipped(body string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Encoding", "gzip")
		w.WriteHeader(200)
		zw := gzip.NewWriter(w)
		zw.Write([]byte(body))
		zw.Close()
	}
}

func decodeData(r Response) error {
	var v struct {
		Data *[]int `json:"data"`
	}
	if err := json.Unmarshal(r.Body, &v); err != nil {
		return err
	}
	if v.Data == nil {
		return errors.New("no data")
	}
	return nil
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name         string
		steps        []func(http.ResponseWriter)
		wantRequests int64
		wantErr      string
		minWait      time.Duration
	}{
		{"ok", []func(http.ResponseWriter){ok}, 1, "", 0},
		{"chunked, no length", []func(http.ResponseWriter){chunked(`{"data": [1, 2]}`)}, 1, "", 0},
		{"gzip, no length", []func(http.ResponseWriter){gzipped(`{"data": [1, 2]}`)}, 1, "", 0},
		{"429 RateLimit header", []func(http.ResponseWriter){status(429, map[string]string{"RateLimit": "limit=10, remaining=0, reset=0.3"}, ""), ok}, 2, "", 250 * time.Millisecond},
		{"429 Retry-After", []func(http.ResponseWriter){status(429, map[string]string{"Retry-After": "1"}, ""), ok}, 2, "", 900 * time.Millisecond},
		{"429 body error.rate_reset", []func(http.ResponseWriter){status(429, nil, `{"error": {"rate_reset": 0.3}}`), ok}, 2, "", 250 * time.Millisecond},
		{"429 body top-level rate_reset", []func(http.ResponseWriter){status(429, nil, `{"rate_reset": 0.3}`), ok}, 2, "", 250 * time.Millisecond},
		{"429 no hint", []func(http.ResponseWriter){status(429, nil, ""), status(429, nil, ""), ok}, 3, "", 0},
		{"5xx then ok", []func(http.ResponseWriter){status(502, nil, "<html>bad gateway</html>"), status(503, nil, ""), ok}, 3, "", 0},
		{"truncated JSON", []func(http.ResponseWriter){status(200, nil, `{"data": [1, 2`), ok}, 2, "", 0},
		{"HTML with 200", []func(http.ResponseWriter){status(200, nil, `<html>maintenance</html>`), ok}, 2, "", 0},
		{"empty 200", []func(http.ResponseWriter){status(200, nil, ``), ok}, 2, "", 0},
		{"no data key", []func(http.ResponseWriter){status(200, nil, `{}`), ok}, 2, "", 0},
		{"401 stops", []func(http.ResponseWriter){status(401, nil, `{"error": "bad key"}`), ok}, 1, "check the key setting", 0},
		{"403 stops", []func(http.ResponseWriter){status(403, nil, `Forbidden`), ok}, 1, "refused access", 0},
		{"400 stops with message", []func(http.ResponseWriter){status(400, nil, `{"error": "max_skip = 250000"}`), ok}, 1, "max_skip = 250000", 0},
		{"always 500 gives up", []func(http.ResponseWriter){status(500, nil, "")}, 4, "giving up after 4 failed attempts", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, n := scripted(t, tt.steps...)
			c, err := New(Config{BaseURL: srv.URL, MaxAttempts: 4, BaseBackoff: time.Millisecond, AuthHint: "check the key setting"})
			if err != nil {
				t.Fatal(err)
			}
			t0 := time.Now()
			err = c.Do(context.Background(), Request{Method: "GET", Path: "/x/"}, decodeData)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Do: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Do error = %v, want one containing %q", err, tt.wantErr)
			}
			if got := n.Load(); got != tt.wantRequests {
				t.Fatalf("requests = %d, want %d", got, tt.wantRequests)
			}
			if el := time.Since(t0); el < tt.minWait {
				t.Fatalf("retried after %s, want at least the hinted %s", el, tt.minWait)
			}
		})
	}
}

func TestAuthErrorIsTyped(t *testing.T) {
	srv, _ := scripted(t, status(401, nil, ""))
	c, _ := New(Config{BaseURL: srv.URL})
	err := c.Do(context.Background(), Request{Method: "GET", Path: "/me/"}, decodeData)
	var ae *AuthError
	if !errors.As(err, &ae) || ae.Status != 401 {
		t.Fatalf("want *AuthError 401, got %T %v", err, err)
	}
}

func TestSecretsNeverInErrors(t *testing.T) {
	const secret = "api_SECRETSECRET.key"
	// The server echoes what it received, as a careless proxy might.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(400)
		w.Write([]byte(`{"error": "bad request with key ` + r.Header.Get("X-Key") + `"}`))
	}))
	defer srv.Close()
	c, _ := New(Config{BaseURL: srv.URL, Secrets: []string{secret},
		Authorize: func(r *http.Request) { r.Header.Set("X-Key", secret) }})
	err := c.Do(context.Background(), Request{Method: "GET", Path: "/x/"}, decodeData)
	if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "[REDACTED]") {
		t.Fatalf("error must be redacted: %v", err)
	}
}

func TestPacing(t *testing.T) {
	srv, n := scripted(t, ok)
	c, _ := New(Config{BaseURL: srv.URL, GroupRate: 20})
	t0 := time.Now()
	for range 11 {
		if err := c.Do(context.Background(), Request{Method: "GET", Path: "/x/"}, decodeData); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(t0); el < 450*time.Millisecond {
		t.Fatalf("11 requests at 20/s took %s, want ≥ 500ms", el)
	}
	if n.Load() != 11 {
		t.Fatalf("requests = %d", n.Load())
	}
}

func TestRemainingZeroPauses(t *testing.T) {
	srv, _ := scripted(t, status(200, map[string]string{"RateLimit": "limit=10, remaining=0, reset=0.4"}, `{"data": []}`), ok)
	c, _ := New(Config{BaseURL: srv.URL})
	c.Do(context.Background(), Request{Method: "GET", Path: "/x/"}, decodeData)
	t0 := time.Now()
	c.Do(context.Background(), Request{Method: "GET", Path: "/x/"}, decodeData)
	if el := time.Since(t0); el < 350*time.Millisecond {
		t.Fatalf("second request sent after %s; the server said the budget resets in 400ms", el)
	}
}

func TestCancelStopsRetrying(t *testing.T) {
	srv, _ := scripted(t, status(503, map[string]string{"Retry-After": "30"}, ""))
	c, _ := New(Config{BaseURL: srv.URL})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := c.Do(ctx, Request{Method: "GET", Path: "/x/"}, decodeData)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want deadline exceeded, got %v", err)
	}
}

func TestBadBaseURL(t *testing.T) {
	for _, u := range []string{"", "api.close.com", "://x"} {
		if _, err := New(Config{BaseURL: u}); err == nil {
			t.Errorf("New(%q) accepted a base URL without scheme and host", u)
		}
	}
}

func TestUnreachableHostFailsFast(t *testing.T) {
	for _, base := range []string{"http://127.0.0.1:1", "http://no-such-host.invalid"} {
		c, _ := New(Config{BaseURL: base, BaseBackoff: 10 * time.Millisecond})
		t0 := time.Now()
		err := c.Do(context.Background(), Request{Method: "GET", Path: "/x/"}, decodeData)
		if err == nil || !strings.Contains(err.Error(), "cannot reach the API") {
			t.Fatalf("%s: %v", base, err)
		}
		if el := time.Since(t0); el > 10*time.Second {
			t.Fatalf("%s: took %s to give up", base, el)
		}
	}
}

func TestResponseSizeIsBounded(t *testing.T) {
	srv, _ := scripted(t, status(200, nil, `{"data": [`+strings.Repeat(`1,`, 1<<20)+`1]}`))
	c, _ := New(Config{BaseURL: srv.URL, MaxResponseBytes: 1 << 20})
	err := c.Do(context.Background(), Request{Method: "GET", Path: "/x/"}, decodeData)
	var se *StatusError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("a 2 MB answer with a 1 MB bound: %v", err)
	}
}

// TestReadBody: the body is read whole whatever length the server announced (true, short,
// long, none), and cut at the limit.
func TestReadBody(t *testing.T) {
	body := strings.Repeat("x", 5000)
	for _, tt := range []struct {
		name      string
		announced int64
		limit     int64
		want      int
	}{
		{"true length", 5000, 1 << 20, 5000},
		{"short length", 100, 1 << 20, 5000},
		{"long length", 9000, 1 << 20, 5000},
		{"no length", -1, 1 << 20, 5000},
		{"over the limit", 5000, 4001, 4001},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readBody(iotest.OneByteReader(strings.NewReader(body)), tt.announced, tt.limit)
			if err != nil || len(got) != tt.want || string(got) != body[:tt.want] {
				t.Errorf("read %d bytes, %v; want %d", len(got), err, tt.want)
			}
		})
	}
}

// TestParallelRequestsReuseConnections: requests made in parallel, as the slices of a split
// read make them, go over as many connections as run at once, kept between requests: the
// transport's default of 2 idle connections per host dialled again (against a real API, a TLS
// handshake) for most of the requests of every round.
func TestParallelRequestsReuseConnections(t *testing.T) {
	const parallel, rounds = 8, 20
	var dials atomic.Int64
	var mu sync.Mutex
	arrived, release := 0, make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		// Every request of a round is in flight before any is answered.
		mu.Lock()
		wait := release
		if arrived++; arrived == parallel {
			arrived = 0
			close(release)
			release = make(chan struct{})
		}
		mu.Unlock()
		<-wait
		ok(w)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dials.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c, err := New(Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	var g errgroup.Group
	for range parallel {
		g.Go(func() error {
			for range rounds {
				if err := c.Do(t.Context(), Request{Method: "GET", Path: "/x/"}, decodeData); err != nil {
					return err
				}
				time.Sleep(time.Millisecond) // the answer is decoded and its records handed over
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if n := dials.Load(); n > 2*parallel {
		t.Errorf("%d connections for %d rounds of %d requests at once; want at most %d", n, rounds, parallel, 2*parallel)
	}
}
