package closecrm

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/crmsync/crmsync/internal/record"
	"github.com/crmsync/crmsync/internal/source"
)

// keyset describes a listing sorted ascending by a timestamp key that accepts a "key >= lower"
// filter. Reading it keyset-style instead of with a growing _skip has two effects:
//   - _skip only counts records that share the current key, so the per-resource _skip cap
//     (250,000) never limits how many records a table can hold;
//   - a record that changes while we page (and leaves the listing) can only shift records that
//     share its key, not the whole rest of the listing. A small overlap, deduplicated by id,
//     covers that case, so nothing is skipped for good.
type keyset struct {
	path  string
	limit int
	// query returns the filters for records with key >= lower (with sort and upper bound).
	query func(lower time.Time) url.Values
	// key returns a record's key at the API's filter precision.
	key       func(record.Record) (time.Time, error)
	precision time.Duration
	// checkpoint: the key is the stream's cursor, so advancing it justifies a bookmark.
	checkpoint bool
}

// overlap is how many already-read records of the current key each page re-reads.
const overlap = 10

func (s *Source) readKeyset(ctx context.Context, k keyset, from time.Time, out source.Emitter) error {
	lower := from.Truncate(k.precision)
	seen := map[string]bool{} // ids read with key == lower
	stalled := 0
	for {
		skip := len(seen)
		if stalled == 0 {
			skip = max(0, skip-overlap)
		}
		q := k.query(lower)
		q.Set("_skip", fmt.Sprint(skip))
		q.Set("_limit", fmt.Sprint(k.limit))
		p, err := s.list(ctx, k.path, q)
		if err != nil {
			return fmt.Errorf("%w (paging from %s, skip %d)", err, lower.Format(time.RFC3339Nano), skip)
		}
		fresh := 0
		for _, rec := range *p.Data {
			key, err := k.key(rec)
			if err != nil {
				return fmt.Errorf("%s: record %v: %w", k.path, rec["id"], err)
			}
			id := fmt.Sprint(rec["id"])
			switch {
			case key.After(lower):
				lower = key
				seen = map[string]bool{}
				if k.checkpoint {
					// Ascending order: everything before the new key has been handed over.
					if err := out.Checkpoint(ctx, lower); err != nil {
						return err
					}
				}
			case key.Equal(lower) && seen[id]:
				continue // part of the overlap
			}
			if key.Equal(lower) {
				seen[id] = true
			}
			fresh++
			if err := out.Record(ctx, rec); err != nil {
				return err
			}
		}
		if !p.HasMore || len(*p.Data) == 0 {
			return nil
		}
		if fresh == 0 {
			// Only overlap came back: the key's records moved. Read past them without overlap;
			// if that makes no progress either, the listing is not behaving as documented.
			stalled++
			if stalled > 2 {
				return fmt.Errorf("%s: paging made no progress at %s (the API keeps returning records already read)", k.path, lower.Format(time.RFC3339Nano))
			}
			continue
		}
		stalled = 0
	}
}
