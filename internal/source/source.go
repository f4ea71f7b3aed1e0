// Package source defines what a CRM source provides to the engine. Each CRM lives in a
// sub-package (close, copper) that declares its streams as data and writes only the paging
// code that is really different.
package source

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/record"
)

// Window is the range of cursor values one read asks the API for: From inclusive, To
// exclusive. A zero To means no upper bound: a sync reads everything changed up to the moment
// each page is served, so a change made just before the sync started is in it whatever the
// API's clock and timestamp precision. (The engine keeps bookmarks behind the sync's start, so
// a row changed during the sync is read again next time.) The parallel slices of a large first
// read are bounded above, all but the last.
type Window struct {
	From time.Time
	To   time.Time
}

// Bounded says whether the window has an upper bound.
func (w Window) Bounded() bool { return !w.To.IsZero() }

// Emitter receives what a stream read produces.
type Emitter interface {
	// Record hands over one record.
	Record(ctx context.Context, r record.Record) error
	// Checkpoint declares that every record of the window whose cursor is before c has been
	// handed over, so a later sync may resume from c (inclusive). Sources call it only where
	// their read order makes the claim true (ascending cursor order, or a finished window).
	Checkpoint(ctx context.Context, c time.Time) error
}

// Source is one CRM account.
type Source interface {
	// Catalog lists the source's streams.
	Catalog() catalog.Catalog
	// Check verifies the credentials with one cheap call.
	Check(ctx context.Context) error
	// Read pages through one stream and emits its records. FullTable streams ignore w.
	Read(ctx context.Context, s catalog.Stream, w Window, out Emitter) error
	// Stats reports the HTTP work done so far.
	Stats() RequestStats
}

// RequestStats counts the HTTP work of a source's client.
type RequestStats struct {
	Requests    int64 // every attempt sent
	Retries     int64 // attempts that were retries of a failed one
	RateLimited int64 // 429 answers (and 503s with Retry-After)
	// RateLimitWait is the time requests spent held back by rate limits (pacing and
	// closed windows), summed over requests: concurrent waits add up.
	RateLimitWait time.Duration
}

// Unavailable is returned by Read when the account does not offer a stream at all (Copper
// answers 403 on lead statuses while Leads are disabled). The engine keeps the table as it
// was, reports the reason, and does not count the stream as failed.
type Unavailable struct{ Reason string }

func (u *Unavailable) Error() string { return "not available on this account: " + u.Reason }

// Clock is implemented by sources that can tell how far the API's clock is from this
// machine's. Bookmarks are instants of the API's clock; when it runs behind, a row changed
// just after the sync began carries a time before the sync start, so the engine keeps the
// bookmark that much earlier.
type Clock interface {
	// ClockOffset is the API's clock minus the local clock, and whether it is known yet.
	ClockOffset() (time.Duration, bool)
}

// WaitMeter sums the time the requests of one stream spent waiting for rate limits. The engine
// puts one in the context of each stream's read; the API client adds to it.
type WaitMeter struct{ ns atomic.Int64 }

// Add records a wait.
func (m *WaitMeter) Add(d time.Duration) {
	if m != nil && d > 0 {
		m.ns.Add(int64(d))
	}
}

// Total is the time recorded so far.
func (m *WaitMeter) Total() time.Duration {
	if m == nil {
		return 0
	}
	return time.Duration(m.ns.Load())
}

type waitMeterKey struct{}

// WithWaitMeter returns a context whose requests report their rate-limit waits to m.
func WithWaitMeter(ctx context.Context, m *WaitMeter) context.Context {
	return context.WithValue(ctx, waitMeterKey{}, m)
}

// WaitMeterFrom returns the context's meter, or nil (whose Add does nothing).
func WaitMeterFrom(ctx context.Context) *WaitMeter {
	m, _ := ctx.Value(waitMeterKey{}).(*WaitMeter)
	return m
}
