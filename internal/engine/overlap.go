package engine

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/record"
)

// The slices of a split read may overlap where they meet: a source whose filters are coarser
// than the slices' bounds reads past each end rather than risk a gap (Close's lead search is
// at minute precision and its bounds' readings are not documented, so each slice reads into
// the next one's first minute). A record in that overlap is read by both slices. Stored
// twice, it cost a first sync a failed index build and a deduplication pass over the whole
// table (the SQLite destination's load), and it was counted twice in the report.
//
// sliceHeads drops the second copy where it can tell it is one: each slice but the first
// remembers the records of its first overlapWidth of cursor (its head), by key and cursor
// text, and the slice before it drops a record it reads with the same key and the same
// cursor text — the same version, already handed over. Nothing is assumed about where the
// overlap lies (a source's time zone may shift its bounds): a head starts at the first
// record its slice reads. When the earlier slice gets to the record first, both copies
// are handed over as before, and the destination keeps one.
type sliceHeads struct {
	key, cursor string
	mu          sync.Mutex
	heads       []sliceHead // by slice; the first slice's is unused
}

type sliceHead struct {
	first time.Time // the cursor of the slice's first record; zero before it
	done  bool      // past the head, or full
	seen  map[string]string
}

// overlapWidth is how much cursor time a head spans: the overlap, a minute, with room to spare.
const overlapWidth = 2 * time.Minute

// maxHeadRecords bounds what a head remembers (an account that changed many records in one
// minute); past it the slice's duplicates go to the destination.
const maxHeadRecords = 4096

// newSliceHeads returns the heads of n slices of a stream, or nil when its records cannot be
// compared so (no single key field or no cursor).
func newSliceHeads(s catalog.Stream, n int) *sliceHeads {
	if len(s.PrimaryKey) != 1 || s.CursorField == "" || n < 2 {
		return nil
	}
	return &sliceHeads{key: s.PrimaryKey[0], cursor: s.CursorField, heads: make([]sliceHead, n)}
}

// repeated reports whether slice i's record rec is a copy the next slice handed over already;
// otherwise a record of a slice's head is remembered.
func (h *sliceHeads) repeated(i int, rec record.Record) bool {
	key, cursor := text(rec[h.key]), text(rec[h.cursor])
	if key == "" || cursor == "" {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if i+1 < len(h.heads) {
		if c, ok := h.heads[i+1].seen[key]; ok && c == cursor {
			return true
		}
	}
	if head := &h.heads[i]; i > 0 && !head.done {
		t, err := record.ParseTime(cursor)
		switch {
		case err != nil:
		case head.first.IsZero():
			head.first = t
			head.seen = map[string]string{}
			fallthrough
		case t.Sub(head.first) <= overlapWidth && len(head.seen) < maxHeadRecords:
			head.seen[key] = cursor
		default:
			head.done = true // seen stays: the slice before looks in it as it reaches its end
		}
	}
	return false
}

// text is a key or cursor value as text: strings and numbers as they came, anything else none.
func text(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return string(x)
	}
	return ""
}
