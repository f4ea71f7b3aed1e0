package engine

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
// remembers the records of its first overlapWidth of cursor (its head), by cursor text and key,
// and the slice before it drops a record it reads with the same cursor text and the same key
// (keyString's encoding) — the same version, already handed over. Nothing is assumed about
// where the overlap lies (a source's time zone may shift its bounds): a head starts at the
// first record its slice reads. When the earlier slice gets to the record first, both copies
// are handed over as before, and the destination keeps one.
type sliceHeads struct {
	cursor string
	key    func(record.Record) (string, bool)
	heads  []sliceHead // by slice; the first slice's is unused
}

type sliceHead struct {
	mu    sync.Mutex
	first time.Time   // the cursor of the slice's first record; zero before it
	done  atomic.Bool // past the head, or full: nothing more is remembered
	size  atomic.Int64
	// seen holds the head's keys by cursor text: a record of the slice before is keyed only
	// when its cursor is there, which few are. Guarded by mu.
	seen map[string][]string
}

// overlapWidth is how much cursor time a head spans: the overlap, a minute, with room to spare.
const overlapWidth = 2 * time.Minute

// maxHeadRecords bounds what a head remembers (an account that changed many records in one
// minute); past it the slice's duplicates go to the destination.
const maxHeadRecords = 4096

// newSliceHeads returns the heads of n slices of a stream whose records key gives the key of,
// or nil when its records cannot be compared so (no single key field or no cursor).
func newSliceHeads(s catalog.Stream, n int, key func(record.Record) (string, bool)) *sliceHeads {
	if len(s.PrimaryKey) != 1 || s.CursorField == "" || n < 2 {
		return nil
	}
	h := &sliceHeads{cursor: s.CursorField, key: key, heads: make([]sliceHead, n)}
	h.heads[0].done.Store(true)
	return h
}

// repeated reports whether slice i's record rec is a copy the next slice handed over already;
// otherwise a record of a slice's head is remembered. Slices call it concurrently.
func (h *sliceHeads) repeated(i int, rec record.Record) bool {
	next := i+1 < len(h.heads) && h.heads[i+1].size.Load() > 0
	head := &h.heads[i]
	if !next && head.done.Load() {
		return false // most records: nothing to look in, nothing to remember
	}
	at := rec[h.cursor]
	cursor := cursorText(at)
	if cursor == "" {
		return false
	}
	if next && h.heads[i+1].holds(rec, cursor, h.key) {
		return true
	}
	if !head.done.Load() {
		head.remember(rec, at, cursor, h.key)
	}
	return false
}

// holds reports whether the head has a record with rec's cursor text and key, keying rec only
// when its cursor is there.
func (head *sliceHead) holds(rec record.Record, cursor string, key func(record.Record) (string, bool)) bool {
	head.mu.Lock()
	defer head.mu.Unlock()
	keys := head.seen[cursor]
	if len(keys) == 0 {
		return false
	}
	k, ok := key(rec)
	return ok && slices.Contains(keys, k)
}

// remember adds a record of the slice's head, or ends the head when the record is past it or
// its cursor is no instant.
func (head *sliceHead) remember(rec record.Record, at any, cursor string, key func(record.Record) (string, bool)) {
	t, err := record.ParseTime(at) // as the engine reads cursors: Copper's are unix seconds
	if err != nil {
		head.done.Store(true)
		return
	}
	k, ok := key(rec)
	head.mu.Lock()
	defer head.mu.Unlock()
	if head.first.IsZero() {
		head.first = t
		head.seen = map[string][]string{}
	}
	if t.Sub(head.first) > overlapWidth || int(head.size.Load()) >= maxHeadRecords {
		head.done.Store(true) // seen stays: the slice before looks in it as it reaches its end
		return
	}
	if !ok {
		return
	}
	// A copy: a decoded text shares the bytes of its whole page, which it would keep.
	cursor = strings.Clone(cursor)
	head.seen[cursor] = append(head.seen[cursor], k)
	head.size.Add(1)
}

// cursorText is a cursor value as text: strings and numbers as they came, anything else none.
func cursorText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return string(x)
	}
	return ""
}
