package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/destination/memory"
	"github.com/crmsync/crmsync/internal/destination/sqlite"
	"github.com/crmsync/crmsync/internal/fakeclock"
	"github.com/crmsync/crmsync/internal/record"
	"github.com/crmsync/crmsync/internal/source"
	"github.com/crmsync/crmsync/internal/state"
)

// scriptedSource serves one incremental stream, "items", from a script: each Read calls emit
// with the window it was given. With streams set it serves those instead, each Read calling
// read with its stream.
type scriptedSource struct {
	version int
	emit    func(ctx context.Context, w source.Window, out source.Emitter) error
	streams []catalog.Stream
	read    func(ctx context.Context, s catalog.Stream, w source.Window, out source.Emitter) error

	mu      sync.Mutex
	windows []source.Window
}

// itemsStream is the stream scripted sources serve by default: rows keyed by "id" with the
// cursor "updated".
func itemsStream(name string, m catalog.Method) catalog.Stream {
	s := catalog.Stream{Name: name, PrimaryKey: []string{"id"}, Method: m, Columns: catalog.Cols("id:str", "updated:ts")}
	if m != catalog.FullTable {
		s.CursorField = "updated"
	}
	return s
}

func (s *scriptedSource) Catalog() catalog.Catalog {
	streams := s.streams
	if streams == nil {
		streams = []catalog.Stream{itemsStream("items", catalog.Incremental)}
	}
	return catalog.Catalog{Source: "scripted", SchemaVersion: s.version, Streams: streams}
}

func (s *scriptedSource) Check(context.Context) error { return nil }

func (s *scriptedSource) Read(ctx context.Context, st catalog.Stream, w source.Window, out source.Emitter) error {
	s.mu.Lock()
	s.windows = append(s.windows, w)
	s.mu.Unlock()
	if s.read != nil {
		return s.read(ctx, st, w, out)
	}
	return s.emit(ctx, w, out)
}

// reads returns the windows read so far.
func (s *scriptedSource) reads() []source.Window {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]source.Window(nil), s.windows...)
}

func (s *scriptedSource) Stats() source.RequestStats { return source.RequestStats{} }

func item(i int, updated time.Time) record.Record {
	return record.Record{"id": fmt.Sprintf("item_%d", i), "updated": updated.Format(time.RFC3339Nano)}
}

// writeSignal is the real SQLite destination, telling when a batch is committed.
type writeSignal struct {
	destination.Destination
	written chan int
}

func (d writeSignal) Write(ctx context.Context, b destination.Batch, st state.Stream) error {
	err := d.Destination.Write(ctx, b, st)
	if err == nil {
		d.written <- len(b.Rows)
	}
	return err
}

func openSQLite(t *testing.T) destination.Destination {
	t.Helper()
	d, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "engine.db"), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// TestFlushIntervalCommitsWithoutCheckpoints: a stream that never checkpoints (newest-first
// listings) still commits its rows once the flush interval has passed, before its read ends.
func TestFlushIntervalCommitsWithoutCheckpoints(t *testing.T) {
	clock := fakeclock.New(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	dst := writeSignal{openSQLite(t), make(chan int, 10)}
	src := &scriptedSource{version: 1, emit: func(ctx context.Context, w source.Window, out source.Emitter) error {
		for i := range 3 {
			if err := out.Record(ctx, item(i, clock.Now().Add(-time.Hour))); err != nil {
				return err
			}
		}
		clock.Advance(10 * time.Second)
		if err := out.Record(ctx, item(3, clock.Now().Add(-time.Hour))); err != nil {
			return err
		}
		select {
		case n := <-dst.written:
			if n != 4 {
				return fmt.Errorf("the interval flush committed %d rows, want 4", n)
			}
			return nil
		case <-time.After(5 * time.Second):
			return errors.New("rows read 10 s ago (the flush interval is 5 s) were not committed while the read went on")
		}
	}}
	rep, err := Run(context.Background(), src, dst, Options{StartDate: clock.Now().AddDate(0, -1, 0), Now: clock.Now, FlushInterval: 5 * time.Second})
	if err != nil {
		t.Fatalf("%v: %v", err, rep.Streams[0].Err)
	}
}

// TestBatchesAreCutByBytes: a batch is committed once its records hold BatchBytes, however
// few they are, and once it has BatchSize records, however small they are.
func TestBatchesAreCutByBytes(t *testing.T) {
	for _, tt := range []struct {
		name        string
		pad         int // bytes of padding per record
		size, bytes int
		want        []int
	}{
		{"by bytes", 10_000, 1000, 35_000, []int{4, 4, 2}},
		{"by count", 10, 4, 1 << 20, []int{4, 4, 2}},
		{"neither", 10, 1000, 1 << 20, []int{10}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dst := writeSignal{openSQLite(t), make(chan int, 20)}
			at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			src := &scriptedSource{version: 1, streams: []catalog.Stream{{Name: "items", PrimaryKey: []string{"id"}, Method: catalog.Incremental,
				CursorField: "updated", Columns: catalog.Cols("id:str", "updated:ts", "pad:str")}},
				read: func(ctx context.Context, _ catalog.Stream, _ source.Window, out source.Emitter) error {
					for i := range 10 {
						r := item(i, at)
						r["pad"] = strings.Repeat("x", tt.pad)
						if err := out.Record(ctx, r); err != nil {
							return err
						}
					}
					return nil
				}}
			if _, err := Run(context.Background(), src, dst, Options{StartDate: at.AddDate(0, -1, 0), BatchSize: tt.size, BatchBytes: tt.bytes}); err != nil {
				t.Fatal(err)
			}
			close(dst.written)
			var got []int
			for n := range dst.written {
				got = append(got, n)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("batches of %v rows, want %v", got, tt.want)
			}
		})
	}
}

// TestSchemaVersion: a table written with an older schema version is read again from the start
// date (and the report says so); one written by a newer crmsync is refused.
func TestSchemaVersion(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name              string
		written, current  int
		wantFrom          time.Time // the second sync's window start
		wantErr, wantNote string
	}{
		{"same version: incremental", 2, 2, now, "", ""},
		{"older: read again from the start date", 1, 2, start, "", "schema version 1 → 2"},
		{"newer: refused", 3, 2, time.Time{}, "written by a newer crmsync (schema version 3; this one writes 2)", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := openSQLite(t)
			emit := func(ctx context.Context, w source.Window, out source.Emitter) error {
				return out.Record(ctx, item(1, start.Add(time.Hour)))
			}
			first := &scriptedSource{version: tt.written, emit: emit}
			opts := Options{StartDate: start, Now: func() time.Time { return now }}
			if _, err := Run(context.Background(), first, dst, opts); err != nil {
				t.Fatal(err)
			}
			second := &scriptedSource{version: tt.current, emit: emit}
			opts.Now = func() time.Time { return now.Add(time.Hour) }
			rep, err := Run(context.Background(), second, dst, opts)
			sr := rep.Streams[0]
			if tt.wantErr != "" {
				if err == nil || sr.Err == nil || !strings.Contains(sr.Err.Error(), tt.wantErr) {
					t.Fatalf("want the stream refused with %q, got %v / %v", tt.wantErr, err, sr.Err)
				}
				if len(second.windows) > 0 {
					t.Fatal("a refused stream was read")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(second.windows) != 1 || !second.windows[0].From.Equal(tt.wantFrom) {
				t.Fatalf("second sync read %v, want from %s", second.windows, tt.wantFrom)
			}
			if tt.wantNote != "" && !strings.Contains(strings.Join(sr.Notes, "; "), tt.wantNote) {
				t.Fatalf("notes %q, want one saying %q", sr.Notes, tt.wantNote)
			}
			saved, err := dst.State(context.Background(), "scripted")
			if err != nil {
				t.Fatal(err)
			}
			if v := saved["items"].SchemaVersion; v != tt.current {
				t.Fatalf("saved schema version %d, want %d", v, tt.current)
			}
		})
	}
}

// TestReadsAreUnboundedAbove: the source is asked for everything from the window start on (a
// change made just before the sync, stamped at or after the sync's start by a coarse or
// skewed API clock, is still read), while the bookmark stops at the sync's start.
func TestReadsAreUnboundedAbove(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	dst := openSQLite(t)
	src := &scriptedSource{version: 1, emit: func(ctx context.Context, w source.Window, out source.Emitter) error {
		if err := out.Record(ctx, item(1, now.Add(500*time.Millisecond))); err != nil {
			return err
		}
		return out.Checkpoint(ctx, now.Add(time.Second))
	}}
	rep, err := Run(context.Background(), src, dst, Options{StartDate: now.AddDate(0, 0, -1), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if w := src.windows[0]; w.Bounded() {
		t.Fatalf("read window %v has an upper bound", w)
	}
	if b := rep.Streams[0].Bookmark; b.After(now) {
		t.Fatalf("bookmark %s is past the sync start %s", b, now)
	}
	if rep.Streams[0].Rows != 1 {
		t.Fatalf("rows = %d, want 1", rep.Streams[0].Rows)
	}
	// Synced again within the same second: the bookmark is at the sync start, yet a change
	// stamped then may not have been read (the start is known to a second), so read again.
	if _, err := Run(context.Background(), src, dst, Options{StartDate: now.AddDate(0, 0, -1), Now: func() time.Time { return now }}); err != nil {
		t.Fatal(err)
	}
	if len(src.windows) != 2 {
		t.Fatalf("a sync whose bookmark is at its own start did not read (%d reads)", len(src.windows))
	}
}

// countingWrites counts the rows written, as each Write returns.
type countingWrites struct {
	destination.Destination
	written *atomic.Int64
}

func (d countingWrites) Write(ctx context.Context, b destination.Batch, st state.Stream) error {
	err := d.Destination.Write(ctx, b, st)
	if err == nil {
		d.written.Add(int64(len(b.Rows)))
	}
	return err
}

// TestMemoryBudgetBoundsEveryStreamTogether: many streams reading at once hold no more record
// bytes than the budget between them (batches far bigger than it), and none waits forever for
// memory another holds: every row is written.
func TestMemoryBudgetBoundsEveryStreamTogether(t *testing.T) {
	const streams, perStream, pad, budget = 8, 200, 10_000, 100_000
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var emitted, written, mostHeld atomic.Int64
	var list []catalog.Stream
	for i := range streams {
		s := itemsStream(fmt.Sprintf("s%d", i), catalog.Incremental)
		s.Columns = catalog.Cols("id:str", "updated:ts", "pad:str")
		list = append(list, s)
	}
	src := &scriptedSource{version: 1, streams: list, read: func(ctx context.Context, _ catalog.Stream, _ source.Window, out source.Emitter) error {
		for i := range perStream {
			r := item(i, at)
			r["pad"] = strings.Repeat("x", pad)
			if err := out.Record(ctx, r); err != nil {
				return err
			}
			held := emitted.Add(1) - written.Load()
			for m := mostHeld.Load(); held > m && !mostHeld.CompareAndSwap(m, held); m = mostHeld.Load() {
			}
		}
		return nil
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dst := countingWrites{memory.New(memory.Options{}), &written}
	rep, err := Run(ctx, src, dst, Options{StartDate: at.AddDate(0, -1, 0), Concurrency: streams, BatchBytes: 10 << 20, MemoryBudget: budget})
	if err != nil {
		t.Fatalf("%v (a stream waiting for memory forever ends at the timeout)", err)
	}
	if rep.Rows() != streams*perStream {
		t.Errorf("%d rows written, want %d", rep.Rows(), streams*perStream)
	}
	if most, limit := mostHeld.Load(), int64(budget/pad); most > limit {
		t.Errorf("up to %d records of %d bytes held at once: more than the %d-byte budget", most, pad, budget)
	}
}
