// Package simfaulttest holds the checks both simulators' tests make of their shared faults.
package simfaulttest

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"
)

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
