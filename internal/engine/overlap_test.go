package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/destination/memory"
	"github.com/crmsync/crmsync/internal/record"
	"github.com/crmsync/crmsync/internal/source"
)

// TestOverlappingSlicesHandOverOneCopy: slices of a split read that each read into the next
// one's first minute, as Close's lead search does, hand over each record once when the later
// slice read it first; a record changed between the two readings (another cursor) is handed
// over twice, as two versions; and when the earlier slice gets there first both copies go to
// the destination, which keeps one row. The report counts what was handed over.
func TestOverlappingSlicesHandOverOneCopy(t *testing.T) {
	const n = 4
	step := syncStart.Sub(dataStart) / n
	sliceStart := func(i int) time.Time { return dataStart.Add(time.Duration(i) * step) }
	rec := func(id string, at time.Time) record.Record {
		return record.Record{"id": id, "updated": at.Format(time.RFC3339Nano)}
	}
	// Each slice's own records: one in its middle, two in its first minute.
	own := func(i int) []record.Record {
		s := sliceStart(i)
		return []record.Record{rec(fmt.Sprintf("head%d_a", i), s.Add(10*time.Second)),
			rec(fmt.Sprintf("head%d_b", i), s.Add(50*time.Second)), rec(fmt.Sprintf("mid%d", i), s.Add(step/2))}
	}
	for _, tc := range []struct {
		name           string
		earlierWaits   bool // the earlier slice reads the overlap after the later one read its head
		changed        bool // head1_b changed between the readings
		wantHandedOver int64
	}{
		{"later slice first", true, false, 3 * n},
		{"a record changed between the readings", true, true, 3*n + 1},
		{"earlier slice first", false, false, 3*n + 2*(n-1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			headRead, overlapRead := make([]chan struct{}, n), make([]chan struct{}, n)
			for i := range n {
				headRead[i], overlapRead[i] = make(chan struct{}), make(chan struct{})
			}
			s := itemsStream("items", catalog.Incremental)
			s.ServerFiltered = true
			src := &scriptedSource{version: 1, streams: []catalog.Stream{s}, read: func(ctx context.Context, _ catalog.Stream, w source.Window, out source.Emitter) error {
				i := int(w.From.Sub(dataStart) / step)
				mine := own(i)
				for j, r := range mine {
					if err := out.Record(ctx, r); err != nil {
						return err
					}
					if j == 1 {
						close(headRead[i])
					}
				}
				defer close(overlapRead[i])
				if i == n-1 {
					return nil
				}
				// The overlap: the next slice's first minute, read again.
				if tc.earlierWaits {
					<-headRead[i+1]
				}
				for _, r := range own(i + 1)[:2] {
					if tc.changed && i == 0 && r["id"] == "head1_b" {
						r = rec("head1_b", sliceStart(1).Add(55*time.Second))
					}
					if err := out.Record(ctx, r); err != nil {
						return err
					}
				}
				return nil
			}}
			dst := memory.New(memory.Options{})
			opts := testOptions(syncStart)
			opts.Windows, opts.SplitAbove = n, time.Hour
			if !tc.earlierWaits {
				// The later slices wait for the earlier one's overlap before reading.
				inner := src.read
				src.read = func(ctx context.Context, s catalog.Stream, w source.Window, out source.Emitter) error {
					if i := int(w.From.Sub(dataStart) / step); i > 0 {
						<-overlapRead[i-1]
					}
					return inner(ctx, s, w, out)
				}
			}
			rep, err := Run(context.Background(), src, dst, opts)
			if err != nil || rep.Streams[0].Err != nil {
				t.Fatalf("sync: %v, %v", err, rep.Streams[0].Err)
			}
			if got := rep.Streams[0].Rows; got != tc.wantHandedOver {
				t.Errorf("%d rows handed over; want %d", got, tc.wantHandedOver)
			}
			var want []string
			for i := range n {
				for _, r := range own(i) {
					want = append(want, r["id"].(string))
				}
			}
			slices.Sort(want)
			if got := storedIDs(t, dst, s); !slices.Equal(got, want) {
				t.Errorf("stored %v; want %v", got, want)
			}
		})
	}
}

// TestSliceHeads: a head remembers its slice's first two minutes of cursor, read as the engine
// reads cursors (ISO text, or Copper's unix seconds), by copies of the texts; the slice before
// drops only a record with the same key and cursor text; a cursor that is no instant ends the
// head.
func TestSliceHeads(t *testing.T) {
	s := catalog.Stream{Name: "items", PrimaryKey: []string{"id"}, CursorField: "updated"}
	// The engine's keys: keyString over the key column's type.
	keyOf := func(typ catalog.Type) func(record.Record) (string, bool) {
		r := &streamRun{stream: s, keyTypes: []catalog.Type{typ}}
		return r.recordKey
	}
	for _, tc := range []struct {
		name       string
		keyType    catalog.Type
		head, tail []record.Record // read by slice 1, then by slice 0
		dropped    []bool          // for each of tail
	}{
		{"ISO cursors", catalog.String,
			[]record.Record{{"id": "a", "updated": "2026-01-01T00:00:10Z"}, {"id": "b", "updated": "2026-01-01T00:01:50Z"}, {"id": "c", "updated": "2026-01-01T00:02:30Z"}},
			[]record.Record{{"id": "a", "updated": "2026-01-01T00:00:10Z"}, {"id": "b", "updated": "2026-01-01T00:01:51Z"}, {"id": "c", "updated": "2026-01-01T00:02:30Z"}},
			[]bool{true, false, false}}, // b: another version; c: past the head
		{"unix seconds", catalog.Integer,
			[]record.Record{{"id": json.Number("1"), "updated": json.Number("1767225610")}, {"id": json.Number("2"), "updated": json.Number("1767225900")}},
			[]record.Record{{"id": json.Number("1"), "updated": json.Number("1767225610")}, {"id": json.Number("2"), "updated": json.Number("1767225900")}},
			[]bool{true, false}},
		{"a cursor that is no instant", catalog.String,
			[]record.Record{{"id": "a", "updated": "soon"}, {"id": "b", "updated": "2026-01-01T00:00:10Z"}},
			[]record.Record{{"id": "b", "updated": "2026-01-01T00:00:10Z"}},
			[]bool{false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newSliceHeads(s, 2, keyOf(tc.keyType))
			for _, r := range tc.head {
				if h.repeated(1, r) {
					t.Fatalf("slice 1 dropped %v", r)
				}
			}
			for i, r := range tc.tail {
				if got := h.repeated(0, r); got != tc.dropped[i] {
					t.Errorf("slice 0, %v: dropped %v; want %v", r, got, tc.dropped[i])
				}
			}
		})
	}
	// The texts remembered are copies: a decoded text shares the bytes of its whole page.
	page := []byte(`a2026-01-01T00:00:10Z`)
	h := newSliceHeads(s, 2, keyOf(catalog.String))
	h.repeated(1, record.Record{"id": unsafe.String(&page[0], 1), "updated": unsafe.String(&page[1], 20)})
	if len(h.heads[1].seen) != 1 {
		t.Fatalf("the head holds %d cursors; want 1", len(h.heads[1].seen))
	}
	for cursor, keys := range h.heads[1].seen {
		for _, k := range append(keys, cursor) {
			if p := unsafe.StringData(k); p == &page[0] || p == &page[1] {
				t.Errorf("the head holds the page's bytes (%q)", k)
			}
		}
	}
	if newSliceHeads(catalog.Stream{PrimaryKey: []string{"a", "b"}, CursorField: "updated"}, 2, nil) != nil || newSliceHeads(s, 1, nil) != nil {
		t.Error("heads for a composite key or an unsplit read")
	}
}
