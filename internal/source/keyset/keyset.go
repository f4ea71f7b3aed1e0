// Package keyset reads a listing sorted by a timestamp key that accepts a bound filter on that
// key, re-anchoring the bound at the last key read instead of paging with an ever-growing
// offset. Both CRMs page by offset (Close `_skip`, Copper `page_number`), and offsets have two
// flaws this removes:
//   - a per-listing cap (Close: _skip ≤ 250,000; Copper: 100,000 results) stops offset paging
//     short of the end of a big table; here the offset only counts records sharing one key;
//   - a record that changes while pages are read leaves the listing and shifts every later
//     record back by one, so one of them is never read. Here only records sharing the anchor key
//     can shift, and a small overlap, deduplicated by id, covers that.
package keyset

import (
	"context"
	"fmt"
	"time"

	"github.com/crmsync/crmsync/internal/record"
	"github.com/crmsync/crmsync/internal/source"
)

// Page is one answer of a listing.
type Page struct {
	Records []record.Record
	More    bool // another page may follow
}

// Listing describes one sorted, filterable listing.
type Listing struct {
	// Fetch returns records whose key is at or after anchor (at or before, when Descending),
	// skipping the first skip of them. It may start earlier than skip (page-number APIs round
	// down to a page boundary); records already read are recognised by id and dropped.
	// A zero anchor means no bound.
	Fetch func(ctx context.Context, anchor time.Time, skip int) (Page, error)
	// Key returns a record's key at the precision of the API's filter.
	Key func(record.Record) (time.Time, error)
	// Descending: the listing is sorted newest first and Fetch bounds the key from above.
	Descending bool
	// Checkpoint: the key is the stream's cursor and the listing ascends, so moving past a key
	// justifies a bookmark at it.
	Checkpoint bool
}

// overlap is how many already-read records of the anchor key each page re-reads.
const overlap = 10

// Read walks the listing from anchor to its end, emitting every record once.
func Read(ctx context.Context, l Listing, anchor time.Time, out source.Emitter) error {
	seen := map[string]bool{} // ids read whose key equals the anchor
	stalled := 0
	for {
		skip := len(seen)
		if stalled == 0 {
			skip = max(0, skip-overlap)
		}
		p, err := l.Fetch(ctx, anchor, skip)
		if err != nil {
			return fmt.Errorf("%w (paging from %s, skip %d)", err, anchor.Format(time.RFC3339Nano), skip)
		}
		fresh := 0
		for _, rec := range p.Records {
			key, err := l.Key(rec)
			if err != nil {
				return fmt.Errorf("record %v: %w", rec["id"], err)
			}
			id := fmt.Sprint(rec["id"])
			beyond := key.After(anchor)
			if l.Descending {
				beyond = key.Before(anchor) || anchor.IsZero()
			}
			switch {
			case beyond:
				anchor = key
				seen = map[string]bool{}
				if l.Checkpoint {
					// Ascending order: everything before the new anchor has been handed over.
					if err := out.Checkpoint(ctx, anchor); err != nil {
						return err
					}
				}
			case key.Equal(anchor) && seen[id]:
				continue // part of the overlap
			}
			if key.Equal(anchor) {
				seen[id] = true
			}
			fresh++
			if err := out.Record(ctx, rec); err != nil {
				return err
			}
		}
		if !p.More || len(p.Records) == 0 {
			return nil
		}
		if fresh == 0 {
			// Only overlap came back: the anchor's records moved. Read past them without
			// overlap; if that makes no progress either, the listing misbehaves.
			stalled++
			if stalled > 2 {
				return fmt.Errorf("paging made no progress at %s (the API keeps returning records already read)", anchor.Format(time.RFC3339Nano))
			}
			continue
		}
		stalled = 0
	}
}
