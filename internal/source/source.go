// Package source defines what a CRM source provides to the engine. Each CRM lives in a
// sub-package (close, copper) that declares its streams as data and writes only the paging
// code that is really different.
package source

import (
	"context"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/customfield"
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

// Meter is what one stream's read tells the engine as it goes: its requests, the time they
// spent waiting for rate limits, and how many records the API says the read will return. The
// engine puts one in the context of each stream's read (and of its deletion pass, to report
// that pass's cost apart); the API client and the readers add to it.
type Meter struct {
	requests atomic.Int64
	waitNS   atomic.Int64
	expected atomic.Int64
}

// AddRequest counts one request sent.
func (m *Meter) AddRequest() {
	if m != nil {
		m.requests.Add(1)
	}
}

// Requests is the number of requests counted so far.
func (m *Meter) Requests() int64 {
	if m == nil {
		return 0
	}
	return m.requests.Load()
}

// AddWait records a wait.
func (m *Meter) AddWait(d time.Duration) {
	if m != nil && d > 0 {
		m.waitNS.Add(int64(d))
	}
}

// Waited is the time recorded so far.
func (m *Meter) Waited() time.Duration {
	if m == nil {
		return 0
	}
	return time.Duration(m.waitNS.Load())
}

// Expect adds the number of records the API announces for one listing of the read (Copper's
// X-PW-TOTAL, Close's total_results, on its first page). A read split into parallel windows
// announces once per window.
func (m *Meter) Expect(n int64) {
	if m != nil && n > 0 {
		m.expected.Add(n)
	}
}

// Expected is the sum announced so far: 0 when the API announces none. It is an estimate
// (Copper documents its total as an upper bound, and records change while a read pages).
func (m *Meter) Expected() int64 {
	if m == nil {
		return 0
	}
	return m.expected.Load()
}

type meterKey struct{}

// WithMeter returns a context whose requests and readers report to m.
func WithMeter(ctx context.Context, m *Meter) context.Context {
	return context.WithValue(ctx, meterKey{}, m)
}

// MeterFrom returns the context's meter, or nil (whose methods do nothing).
func MeterFrom(ctx context.Context) *Meter {
	m, _ := ctx.Value(meterKey{}).(*Meter)
	return m
}

// CustomFields is implemented by sources whose accounts define fields of their own. The
// engine reads the definitions once per sync and stores each field in a named, typed column
// (see package customfield).
type CustomFields interface {
	// CustomFields returns the account's definitions of the fields that apply to the given
	// streams (others may come too). A source reads each definition list once and serves its
	// definitions tables from the same answers.
	CustomFields(ctx context.Context, streams []string) ([]customfield.Field, error)
	customfield.Values
}

// syncCache holds what a source reads once per sync (custom field definitions, which both the
// engine's plan and a definitions table need). It lives in the sync's context, so a source
// reused for another sync reads again.
type syncCache struct {
	mu   sync.Mutex
	vals map[string]any
}

type syncCacheKey struct{}

// WithSyncCache returns a context whose reads share one OncePerSync cache: the engine gives
// every sync its own.
func WithSyncCache(ctx context.Context) context.Context {
	return context.WithValue(ctx, syncCacheKey{}, &syncCache{vals: map[string]any{}})
}

// RecordsOncePerSync is OncePerSync for records, each call handed copies: the engine may
// change the records it is given, and the next caller must see them as the API sent them.
func RecordsOncePerSync(ctx context.Context, key string, load func() ([]record.Record, error)) ([]record.Record, error) {
	recs, err := OncePerSync(ctx, key, load)
	if err != nil {
		return nil, err
	}
	out := make([]record.Record, len(recs))
	for i, r := range recs {
		out[i] = maps.Clone(r)
	}
	return out, nil
}

// OncePerSync returns what load returns, calling it once per sync and key (again after an
// error); without a sync's cache in ctx it calls load every time.
func OncePerSync[T any](ctx context.Context, key string, load func() (T, error)) (T, error) {
	c, _ := ctx.Value(syncCacheKey{}).(*syncCache)
	if c == nil {
		return load()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.vals[key]; ok {
		return v.(T), nil
	}
	v, err := load()
	if err == nil {
		c.vals[key] = v
	}
	return v, err
}
