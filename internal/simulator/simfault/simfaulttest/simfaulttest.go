// Package simfaulttest holds the checks and helpers both simulators' tests share.
package simfaulttest

import (
	"bytes"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/simulator/simfault"
)

// Serve serves a simulator New just built (failing the test on New's error) until the test
// ends.
func Serve(t testing.TB, sim http.Handler, err error) *httptest.Server {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(sim)
	t.Cleanup(ts.Close)
	return ts
}

// CheckStalled sends req and checks the answer was stalled the way a stall fault stalls it —
// the headers held back (headers) or sent at once with the body held back — for at least
// stall, and then arrived whole: status 200, the body want, a true Content-Length. It returns
// the answer's headers for further checks.
func CheckStalled(t testing.TB, c *http.Client, req *http.Request, stall time.Duration, headers bool, want []byte) http.Header {
	t.Helper()
	t0 := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	gotHeaders := time.Since(t0)
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	total := time.Since(t0)
	if err != nil || resp.StatusCode != 200 || !bytes.Equal(got, want) {
		t.Fatalf("stalled response: %v %d %d bytes", err, resp.StatusCode, len(got))
	}
	if resp.ContentLength != int64(len(got)) {
		t.Errorf("Content-Length %d, body %d", resp.ContentLength, len(got))
	}
	if headers && gotHeaders < stall {
		t.Errorf("headers after %v, want ≥ %v", gotHeaders, stall)
	}
	if !headers && (gotHeaders >= stall || total < stall) {
		t.Errorf("headers after %v, body after %v; want headers at once, body after ≥ %v", gotHeaders, total, stall)
	}
	return resp.Header
}

// Policy describes one simulator for CheckFaultPolicy.
type Policy struct {
	New  func(simfault.Faults) error                   // builds a simulator with these faults
	Sim  interface{ SetFaults(simfault.Faults) error } // a running one
	Get  func() int                                    // one request to Sim; its status
	Bad  []simfault.Faults                             // refused by this simulator besides the settings every simulator refuses
	Good []simfault.Faults                             // accepted
}

// CheckFaultPolicy checks the one policy for fault settings: a setting out of range (and
// each of p.Bad) is an error from New and from SetFaults — no panic, nothing clamped — and a
// refused SetFaults leaves the previous faults in effect; p.Good are accepted.
func CheckFaultPolicy(t *testing.T, p Policy) {
	t.Helper()
	bad := append([]simfault.Faults{
		{Rate429: -0.1},
		{RateStall: math.NaN()},
		{RateStallHeaders: 1.5},
		{Rate429: 0.5, RateStall: 0.3, RateStallHeaders: 0.3},
		{RateSlow: 2},
		{MutateBetweenPages: -1},
		{MutateBetweenPages: 2},
		{Every429: -1},
		{Every5xx: -2},
		{StallFor: -time.Second},
		{SlowDelay: -time.Second},
	}, p.Bad...)
	for _, f := range bad {
		if err := p.New(f); err == nil {
			t.Errorf("New accepted %+v", f)
		}
	}
	if err := p.Sim.SetFaults(simfault.Faults{Every5xx: 1}); err != nil {
		t.Fatal(err)
	}
	for _, f := range bad {
		if err := p.Sim.SetFaults(f); err == nil {
			t.Errorf("SetFaults accepted %+v", f)
		}
	}
	if code := p.Get(); code != http.StatusBadGateway {
		t.Errorf("after refused SetFaults: %d, want the 502 storm still in effect", code)
	}
	for _, f := range p.Good {
		if err := p.Sim.SetFaults(f); err != nil {
			t.Errorf("SetFaults refused %+v: %v", f, err)
		}
	}
}

// DiscardWriter is a minimal ResponseWriter, so benchmarks measure the simulator, not a
// recorder.
type DiscardWriter struct {
	H    http.Header
	Code int
	N    int // body bytes written
}

func (w *DiscardWriter) Header() http.Header {
	if w.H == nil {
		w.H = http.Header{}
	}
	return w.H
}
func (w *DiscardWriter) WriteHeader(code int)        { w.Code = code }
func (w *DiscardWriter) Write(b []byte) (int, error) { w.N += len(b); return len(b), nil }

// HeapInUse is the live heap after two collections, for dataset-size tests.
func HeapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
