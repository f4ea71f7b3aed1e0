// Package source defines what a CRM source provides to the engine. Each CRM lives in a
// sub-package (close, copper) that declares its streams as data and writes only the paging
// code that is really different.
package source

import (
	"context"
	"time"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/record"
)

// Window is the range of cursor values one sync reads for a stream: From inclusive, To
// exclusive. To is the sync's start time, so no row changed during the sync is half-read
// and the bookmark never passes the moment the sync began.
type Window struct {
	From time.Time
	To   time.Time
}

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
	RateLimited int64 // 429 answers
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
