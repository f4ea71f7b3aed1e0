// Package simfault is the machinery both API simulators (closesim, coppersim) share: the
// one Faults setting with its one validation (Model.Check) and its PRNG and decisions
// (Injector), the one Stats with its Counter, the one rate Limiter, deterministic storm
// counting, stalled and reset responses, the simulated Date header and reset formatting; and
// Simulator, the method set a harness drives either simulator through. The JSON both write
// records with is in the sibling package jsonenc.
package simfault

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// DefaultStallFor is how long a stall lasts when Faults.StallFor is zero:
// longer than the usual 30 s client timeouts, so only a client that gives
// up (or has no timeout and waits) gets past it.
const DefaultStallFor = 40 * time.Second

// Hit is what the storm counter decides for one request.
type Hit int

const (
	HitNone       Hit = iota
	HitTooMany        // Every429 matched
	HitBadGateway     // Every5xx matched (and Every429 did not)
)

// Storm counts requests for the Every429/Every5xx storms. The count is
// 1-based and shared by all endpoints, so N=3 hits requests 3, 6, 9, ….
type Storm struct{ n atomic.Int64 }

// Reset restarts the count (SetFaults calls it, so a storm switched on at
// runtime starts at request 1).
func (s *Storm) Reset() { s.n.Store(0) }

// Next counts one request. When both storms hit the same request, 429 wins.
func (s *Storm) Next(every429, every5xx int) Hit {
	n := s.n.Add(1)
	switch {
	case every429 > 0 && n%int64(every429) == 0:
		return HitTooMany
	case every5xx > 0 && n%int64(every5xx) == 0:
		return HitBadGateway
	}
	return HitNone
}

// SetDate sets the Date header from the simulator's clock; net/http only
// adds its own (real-time) Date when the handler has not set one.
func SetDate(h http.Header, now time.Time) {
	h.Set("Date", now.UTC().Format(http.TimeFormat))
}

// WindowLimit is the number of requests a window of w admits at rate per
// second (at least 1). The epsilon keeps 0.3×10s at 3, not 2.
func WindowLimit(rate float64, w time.Duration) int {
	return max(1, int(math.Floor(rate*w.Seconds()+1e-9)))
}

// CeilSeconds rounds a wait up to whole seconds (never below 1 for a
// positive wait): a client that waits the printed value is never early.
func CeilSeconds(sec float64) int {
	if sec <= 0 {
		return 0
	}
	return max(1, int(math.Ceil(sec-1e-9)))
}

// CeilMillis rounds a wait up to whole milliseconds.
func CeilMillis(sec float64) float64 {
	if sec <= 0 {
		return 0
	}
	return math.Ceil(sec*1000-1e-6) / 1000
}

// FormatReset prints a reset value: rounded-up integer seconds, or with
// millisecond decimals ("0.347") when fractional.
func FormatReset(sec float64, fractional bool) string {
	if fractional {
		return strconv.FormatFloat(CeilMillis(sec), 'f', 3, 64)
	}
	return strconv.Itoa(CeilSeconds(sec))
}

// Seconds converts a float number of seconds to a Duration.
func Seconds(sec float64) time.Duration { return time.Duration(sec * float64(time.Second)) }

// prepare reads a request body that is still unread into memory: net/http
// only notices a client hanging up (cancelling the context) once the body
// has been consumed, and a stall must end when the client goes away.
func prepare(r *http.Request) {
	if r.Body == nil || r.Body == http.NoBody {
		return
	}
	b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	r.Body = io.NopCloser(bytes.NewReader(b))
}

// Wait blocks for d or until the client goes away; it reports whether the
// client is still there. A stall of the response headers is Wait followed
// by the normal response.
func Wait(r *http.Request, d time.Duration) bool {
	prepare(r)
	return Sleep(r.Context(), d)
}

// Sleep waits d, or until ctx is done; it reports whether the wait ran out (the client is
// still there).
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// ResetConn drops the connection without (the rest of) a response.
func ResetConn(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			_ = c.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// Simulator is the method set both simulators have, for a harness that drives either.
type Simulator interface {
	http.Handler
	// Snapshot returns the rows a correct replica of table holds now, decoded from the JSON
	// as served.
	Snapshot(table string) []map[string]any
	SetFaults(f Faults) error
	Stats() Stats
	// AddRecords and UpdateRecords add or change n records of table at `at` and return
	// their ids as the API's paths spell them.
	AddRecords(table string, n int, at time.Time) []string
	UpdateRecords(table string, n int, at time.Time) []string
	// Epoch is the data anchor in effect: generated timestamps lie before it.
	Epoch() time.Time
}

// WriteStalled sends status, the headers already set on w plus the full
// Content-Length, and the first half of body; flushes; then sends nothing
// for d or until the client goes away, and then the rest (a write to a
// departed client simply fails). A client sees headers promptly and a body
// read that hangs.
func WriteStalled(w http.ResponseWriter, r *http.Request, code int, body []byte, d time.Duration) {
	prepare(r)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	half := len(body) / 2
	_, _ = w.Write(body[:half])
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	Sleep(r.Context(), d)
	_, _ = w.Write(body[half:])
}

// Serve serves a simulator on addr (127.0.0.1:0: a free loopback port) until stop is called,
// and returns its base URL. stop gives answers in flight two seconds to finish.
func Serve(h http.Handler, addr string) (base string, stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	stop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			srv.Close()
		}
	}
	return "http://" + ln.Addr().String(), stop, nil
}
