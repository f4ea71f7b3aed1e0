package apiclient

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// syncBuffer is a log sink safe for the client's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRetriesAreLogged: every retry is logged at info with its reason and wait, every request
// at debug with method, path, status and duration, and no log line carries a secret (sent in a
// header, echoed back by the server, or in the query).
func TestRetriesAreLogged(t *testing.T) {
	const secret = "api_LOGSECRET.0123456789"
	tests := []struct {
		name     string
		steps    []func(http.ResponseWriter)
		wantInfo []string // in the info lines, in order
	}{
		{"429 with Retry-After", []func(http.ResponseWriter){status(429, map[string]string{"Retry-After": "1"}, ""), ok},
			[]string{`msg="rate limited: waiting before sending again"`, "status=429", "wait=1s"}},
		{"429 with a reset header", []func(http.ResponseWriter){status(429, map[string]string{"RateLimit": "limit=10, remaining=0, reset=0.3"}, ""), ok},
			[]string{`msg="rate limited: waiting before sending again"`, "wait=300ms"}},
		{"503", []func(http.ResponseWriter){status(503, nil, "key "+secret), ok},
			[]string{`msg="retrying after a failed attempt"`, "attempt=2", "max_attempts=4", "wait=", `reason="GET /x/: HTTP 503"`}},
		{"500 twice", []func(http.ResponseWriter){status(500, nil, ""), status(500, nil, ""), ok},
			[]string{"retrying", "attempt=2", "reason=", "retrying", "attempt=3"}},
		{"truncated body", []func(http.ResponseWriter){status(200, nil, `{"data": [1,`), ok},
			[]string{"retrying", "unreadable response"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, n := scripted(t, tt.steps...)
			var logs syncBuffer
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			c, err := New(Config{BaseURL: srv.URL, MaxAttempts: 4, BaseBackoff: time.Millisecond, Secrets: []string{secret}, Logger: log,
				Authorize: func(r *http.Request) { r.Header.Set("X-Key", secret) }})
			if err != nil {
				t.Fatal(err)
			}
			err = c.Do(context.Background(), Request{Method: "GET", Path: "/x/", Query: url.Values{"token": {secret}, "_skip": {"0"}}}, decodeData)
			if err != nil {
				t.Fatal(err)
			}
			out := logs.String()
			if strings.Contains(out, secret) || strings.Contains(out, url.QueryEscape(secret)) {
				t.Fatalf("a secret reached the log:\n%s", out)
			}
			var info []string
			debug := 0
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				switch {
				case strings.Contains(line, "level=INFO"):
					info = append(info, line)
				case strings.Contains(line, "level=DEBUG") && strings.Contains(line, "msg=request") && strings.Contains(line, "method=GET") &&
					strings.Contains(line, "path=/x/") && strings.Contains(line, "status=") && strings.Contains(line, "duration="):
					debug++
				}
			}
			if int64(debug) != n.Load() {
				t.Errorf("%d debug lines for %d requests:\n%s", debug, n.Load(), out)
			}
			rest := strings.Join(info, "\n")
			for _, want := range tt.wantInfo {
				i := strings.Index(rest, want)
				if i < 0 {
					t.Fatalf("info log lacks %q (in order):\n%s", want, strings.Join(info, "\n"))
				}
				rest = rest[i+len(want):]
			}
		})
	}
}

// TestBadHeaderIsNotRetried: a credential that cannot go into a header (a key pasted with its
// line break) fails at once, naming the setting to fix, without a request or a retry.
func TestBadHeaderIsNotRetried(t *testing.T) {
	for _, key := range []string{"api_key123456\n", "api_key\r\n123456", "api_\x00key123456", "api_key\x7f123456"} {
		t.Run(strings.ToValidUTF8(url.QueryEscape(key), "?"), func(t *testing.T) {
			srv, n := scripted(t, ok)
			c, _ := New(Config{BaseURL: srv.URL, BaseBackoff: 100 * time.Millisecond, Secrets: []string{key},
				AuthHint: "check the API key (--api-key)", Authorize: func(r *http.Request) { r.Header.Set("Authorization", "Basic "+key) }})
			t0 := time.Now()
			err := c.Do(context.Background(), Request{Method: "GET", Path: "/me/"}, decodeData)
			if err == nil || !strings.Contains(err.Error(), "--api-key") || !strings.Contains(err.Error(), "Authorization") {
				t.Fatalf("err = %v; want one naming the header and the setting", err)
			}
			if el := time.Since(t0); el > 50*time.Millisecond || n.Load() != 0 || c.Stats().Retries != 0 {
				t.Fatalf("%d requests, %d retries, %s: want none, at once", n.Load(), c.Stats().Retries, el)
			}
		})
	}
}

// TestTricklingAnswerIsAbandoned: an answer whose bytes keep coming, but far below the minimum
// rate, is abandoned and retried instead of being waited on for as long as it trickles.
func TestTricklingAnswerIsAbandoned(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) > 1 {
			w.Write([]byte(`{"data": [1]}`))
			return
		}
		w.Write([]byte(`{"data": [`))
		for { // a byte every 20ms, for ever
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
			w.Write([]byte(" "))
		}
	}))
	defer srv.Close()
	var logs syncBuffer
	c, _ := New(Config{BaseURL: srv.URL, StallTimeout: 200 * time.Millisecond, MinBodyRate: 1000, BaseBackoff: time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	t0 := time.Now()
	if err := c.Do(ctx, Request{Method: "GET", Path: "/x/"}, decodeData); err != nil {
		t.Fatalf("after %s: %v", time.Since(t0), err)
	}
	if el := time.Since(t0); el > 2*time.Second || n.Load() != 2 {
		t.Fatalf("%d requests in %s; want the trickle abandoned after ~200ms and one retry", n.Load(), el)
	}
	if !strings.Contains(logs.String(), "trickles") {
		t.Fatalf("the retry's reason does not say the answer trickled:\n%s", logs.String())
	}
}

// TestWaitingIsReported: while a request waits for a rate limit or before a retry, Waiting
// says what for and how long is left (the progress line shows it).
func TestWaitingIsReported(t *testing.T) {
	tests := []struct {
		name string
		step func(http.ResponseWriter)
		want string
	}{
		{"rate limit", status(429, map[string]string{"Retry-After": "2"}, ""), "rate limit, GET /lead/"},
		{"retry", status(503, map[string]string{"X": "y"}, ""), "retry of GET /lead/ after HTTP 503"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := scripted(t, tt.step, ok)
			c, _ := New(Config{BaseURL: srv.URL, BaseBackoff: 2 * time.Second})
			if reason, left := c.Waiting(); left != 0 {
				t.Fatalf("waiting before any request: %q %s", reason, left)
			}
			done := make(chan error, 1)
			go func() { done <- c.Do(context.Background(), Request{Method: "GET", Path: "/lead/"}, decodeData) }()
			deadline := time.Now().Add(time.Second)
			for {
				reason, left := c.Waiting()
				if left > 0 {
					if reason != tt.want || left > 2*time.Second {
						t.Fatalf("Waiting = %q, %s; want %q, under 2s", reason, left, tt.want)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("Waiting never reported the wait")
				}
				time.Sleep(5 * time.Millisecond)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if _, left := c.Waiting(); left != 0 {
				t.Fatalf("still waiting %s after the request", left)
			}
		})
	}
}

// TestHTTPSToPlainHTTPFailsAtOnce: an https base URL on a plain-HTTP port is one clear error,
// not retries until the attempts run out.
func TestHTTPSToPlainHTTPFailsAtOnce(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{}`)) }))
	defer srv.Close()
	c, err := New(Config{BaseURL: strings.Replace(srv.URL, "http://", "https://", 1), MaxAttempts: 5, BaseBackoff: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	err = c.Do(context.Background(), Request{Method: http.MethodGet, Path: "/me/"}, func(Response) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "plain HTTP") || !strings.Contains(err.Error(), "--base-url") {
		t.Fatalf("Do = %v; want an error naming the scheme and --base-url", err)
	}
	if st := c.Stats(); st.Requests != 1 || time.Since(t0) > 900*time.Millisecond {
		t.Fatalf("%d requests in %s; want one, at once", st.Requests, time.Since(t0))
	}
}
