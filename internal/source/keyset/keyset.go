// Package keyset reads a listing sorted by a timestamp key that accepts a bound filter on that
// key, re-anchoring the bound at the last key read instead of paging with an ever-growing
// offset. Both CRMs page by offset (Close `_skip`, Copper `page_number`), and offsets have two
// flaws this removes:
//   - a per-listing cap (Close: _skip ≤ 250,000; Copper: 100,000 results) stops offset paging
//     short of the end of a big table; here the offset only counts records sharing one key;
//   - a record that changes while pages are read leaves the listing and shifts every later
//     record back by one, so one of them is never read. Here only records sharing the anchor key
//     can shift, and a small overlap, deduplicated by id, covers that; when more shift than the
//     overlap covers, the key is read again from its start.
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
	// Total is how many records the API says the query matches (0 when it does not say). Only
	// the first page's is used: it counts the whole read; later queries are re-anchored.
	Total int64
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
	// Endpoint names the listing in errors ("GET /lead/").
	Endpoint string
}

// overlap is how many already-read records of the anchor key each page re-reads.
const overlap = 10

// maxRestarts bounds how often one key is read again from its start because its records
// moved while it was read (see Read).
const maxRestarts = 10

// Read walks the listing from anchor to its end, emitting every record once.
//
// Within one key, pages are found by offset. A page asked for with the overlap must begin
// with a record read at the anchor: if it does not, more records read have left the key
// (changed or deleted) than the overlap covers, and as many unread ones moved up before the
// offset. The key is then read again from its start, so none of them is skipped.
func Read(ctx context.Context, l Listing, anchor time.Time, out source.Emitter) error {
	// handed holds the ids handed over whose key is the anchor, so a re-read is not emitted
	// twice. present holds those met at the anchor since the key was last read from its start:
	// its size is where the next page starts. The two differ only after a restart.
	handed, present := map[string]bool{}, map[string]bool{}
	unkeyed := map[string]bool{} // ids handed over whose key does not parse
	stalled, restarts := 0, 0
	for first := true; ; first = false {
		skip := len(present)
		if stalled == 0 {
			skip = max(0, skip-overlap)
		}
		p, err := l.Fetch(ctx, anchor, skip)
		if err != nil {
			return fmt.Errorf("%w (paging from %s, skip %d)", err, anchor.Format(time.RFC3339Nano), skip)
		}
		if first {
			source.MeterFrom(ctx).Expect(p.Total)
		}
		if stalled == 0 && skip > 0 {
			landed, err := startsAt(l, p, anchor, present)
			if err != nil {
				return err
			}
			if !landed {
				if restarts++; restarts > maxRestarts {
					return fmt.Errorf("%s: paging made no progress at %s (its records keep moving while read)", l.Endpoint, anchor.Format(time.RFC3339Nano))
				}
				present = map[string]bool{}
				continue
			}
		}
		fresh := 0
		for _, rec := range p.Records {
			id := idText(rec["id"])
			key, err := l.Key(rec)
			if err != nil {
				// A key that does not parse cannot place the walk, and must not stop it: the
				// record is handed over once (the engine keeps the raw value) and paging goes on.
				if !unkeyed[id] {
					unkeyed[id] = true
					fresh++
					if err := out.Record(ctx, rec); err != nil {
						return err
					}
				}
				continue
			}
			beyond, behind := key.After(anchor), key.Before(anchor)
			if l.Descending {
				beyond, behind = key.Before(anchor) || anchor.IsZero(), key.After(anchor) && !anchor.IsZero()
			}
			switch {
			case behind:
				// Outside the bound asked for: the walk passed this key, so the record was
				// handed over then (an API that ignores the bound serves it again and again).
				continue
			case beyond:
				anchor = key
				handed, present = emptied(handed), emptied(present)
				restarts = 0
				if l.Checkpoint {
					// Ascending order: everything before the new anchor has been handed over.
					if err := out.Checkpoint(ctx, anchor); err != nil {
						return err
					}
				}
			case key.Equal(anchor) && handed[id]:
				present[id] = true
				continue // part of the overlap
			}
			if key.Equal(anchor) {
				handed[id], present[id] = true, true
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
				return fmt.Errorf("%s: paging made no progress at %s (the API keeps returning records already read)", l.Endpoint, anchor.Format(time.RFC3339Nano))
			}
			continue
		}
		stalled = 0
	}
}

// idText is a record's id as text; most ids are text already.
func idText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

// emptied returns m without entries: m itself, cleared, while it is small (an ascending walk
// moves its anchor at nearly every record, and a new map apiece was most of what paging
// allocated), or a new map, so that a key shared by many records does not leave a big map
// to clear at every later move.
func emptied(m map[string]bool) map[string]bool {
	if len(m) > 64 {
		return map[string]bool{}
	}
	clear(m)
	return m
}

// startsAt says whether page p begins with a record met at the anchor since the key was last
// read from its start, as a page asked for with the overlap does while the key's records stay.
func startsAt(l Listing, p Page, anchor time.Time, present map[string]bool) (bool, error) {
	if len(p.Records) == 0 {
		return false, nil
	}
	first := p.Records[0]
	key, err := l.Key(first)
	if err != nil {
		return false, fmt.Errorf("record %v: %w", first["id"], err)
	}
	return key.Equal(anchor) && present[fmt.Sprint(first["id"])], nil
}
