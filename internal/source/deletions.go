package source

import (
	"context"
	"errors"
	"time"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/record"
)

// DeletionEmitter receives what a deletion read produces.
type DeletionEmitter interface {
	// Deleted reports a record deleted in the source, by its primary key values.
	Deleted(ctx context.Context, key ...any) error
	// Record hands over a record read again because the API announced a late edit of it
	// (an edit the stream's own read would not see); it is stored like any other record.
	Record(ctx context.Context, r record.Record) error
}

// DeletionFeed is implemented by sources whose API announces deletions
// (catalog.DeletesByEvents).
type DeletionFeed interface {
	// ReadDeletions reports the records of s deleted since w.From, up to the newest
	// announcement, and hands over those the feed announces as edited where the stream's read
	// would miss the edit. It returns the instant up to which every deletion has been
	// reported (a feed may publish late), or ErrFeedLapsed when the feed no longer reaches
	// back to w.From (w.To is the sync's start in the API's clock).
	ReadDeletions(ctx context.Context, s catalog.Stream, w Window, out DeletionEmitter) (through time.Time, err error)
}

// ErrFeedLapsed says a change feed does not reach back far enough: an id sweep must stand in.
var ErrFeedLapsed = errors.New("the change feed no longer reaches back to the last check")

// Sweeper is implemented by sources that can list every record of a stream the API still
// has: an id sweep (catalog.DeletesBySweep, and the fallback of DeletesByEvents).
type Sweeper interface {
	// Sweep emits every record of s the API has, each carrying at least its primary key, as
	// cheaply as the API allows (only the ids where it can select fields). Records created or
	// deleted while it pages may be emitted or not; every other record is emitted.
	Sweep(ctx context.Context, s catalog.Stream, out Emitter) error
}
