package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/destination/memory"
	"github.com/crmsync/crmsync/internal/record"
	"github.com/crmsync/crmsync/internal/source"
	"github.com/crmsync/crmsync/internal/state"
)

// These tests run the engine against the in-memory destination, with sources that fail,
// stop early or block where a test says, and check the rule the engine exists for: a saved
// bookmark never passes a row that is not stored.

var (
	syncStart = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	dataStart = syncStart.AddDate(0, 0, -30)
)

// hour is the cursor of the i-th record of a listing: an hour apart, all before the sync.
func hour(i int) time.Time { return dataStart.Add(time.Duration(i) * time.Hour) }

func records(n int) []record.Record {
	out := make([]record.Record, n)
	for i := range out {
		out[i] = item(i, hour(i))
	}
	return out
}

func cursorOf(r record.Record) time.Time {
	t, err := time.Parse(time.RFC3339Nano, r["updated"].(string))
	if err != nil {
		panic(err)
	}
	return t
}

// listing emits the records of the window in cursor order the way a keyset read does: before
// the first record of each page of page records, a checkpoint at that record's cursor. With
// stop >= 0 it returns err after stop records, first claiming the next cursor when
// checkpointAtStop (the claim is true: every record before it was handed over).
type listing struct {
	recs             []record.Record
	page             int
	stop             int
	checkpointAtStop bool
	err              error
}

func (l listing) read(ctx context.Context, _ catalog.Stream, w source.Window, out source.Emitter) error {
	n := 0
	for _, rec := range l.recs {
		c := cursorOf(rec)
		if c.Before(w.From) || (w.Bounded() && !c.Before(w.To)) {
			continue
		}
		if n == l.stop {
			if l.checkpointAtStop {
				if err := out.Checkpoint(ctx, c); err != nil {
					return err
				}
			}
			return l.err
		}
		if n > 0 && n%l.page == 0 {
			if err := out.Checkpoint(ctx, c); err != nil {
				return err
			}
		}
		if err := out.Record(ctx, rec); err != nil {
			return err
		}
		n++
	}
	if n == l.stop {
		return l.err
	}
	return nil
}

func testOptions(now time.Time) Options {
	return Options{StartDate: dataStart, Now: func() time.Time { return now }}
}

func savedState(t *testing.T, dst destination.Destination, stream string) state.Stream {
	t.Helper()
	st, err := dst.State(context.Background(), "scripted")
	if err != nil {
		t.Fatal(err)
	}
	return st[stream]
}

// storedIDs lists the ids in a stream's table, sorted.
func storedIDs(t *testing.T, dst *memory.Destination, s catalog.Stream) []string {
	t.Helper()
	rows, err := dst.Rows(context.Background(), destination.Table{Source: "scripted", Stream: s})
	if err != nil {
		return nil // no table yet
	}
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r["id"].(string)
	}
	slices.Sort(ids)
	return ids
}

func idsOf(recs []record.Record) []string {
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r["id"].(string)
	}
	slices.Sort(ids)
	return ids
}

// checkBookmarkBehindData fails the test when a record whose cursor is before the saved
// bookmark is not stored: a later sync would start after it and never read it.
func checkBookmarkBehindData(t *testing.T, dst *memory.Destination, s catalog.Stream, all []record.Record) {
	t.Helper()
	bm := savedState(t, dst, s.Name).Bookmark
	stored := map[string]bool{}
	for _, id := range storedIDs(t, dst, s) {
		stored[id] = true
	}
	for _, r := range all {
		if cursorOf(r).Before(bm) && !stored[r["id"].(string)] {
			t.Fatalf("bookmark %s passes %s (cursor %s), which is not stored", bm.Format(time.RFC3339), r["id"], r["updated"])
		}
	}
}

// TestFailureKeepsTheBookmarkBehindTheData: when the source or the destination fails part-way,
// the rows read before are committed with the last bookmark the source justified, never a
// later one, and a rerun resumes from that bookmark and completes the table.
func TestFailureKeepsTheBookmarkBehindTheData(t *testing.T) {
	all := records(20)
	errSource := errors.New("the API went away")
	tests := []struct {
		name       string
		l          listing
		batchSize  int
		failAt     int // the destination's first failing batch; zero: none
		wantErr    error
		wantRows   int
		wantMark   time.Time // saved bookmark after the failed sync
		wantResume time.Time // where the rerun reads from
	}{
		{"source fails before its first checkpoint", listing{page: 5, stop: 3, err: errSource}, 100, 0, errSource, 3, time.Time{}, dataStart},
		{"source fails mid-page: the bookmark stays at the page's start", listing{page: 5, stop: 12, err: errSource}, 100, 0, errSource, 12, hour(10), hour(10)},
		{"checkpoint then error: the bookmark is the checkpoint", listing{page: 5, stop: 12, checkpointAtStop: true, err: errSource}, 100, 0, errSource, 12, hour(12), hour(12)},
		// Batches of 4 close at records 3, 7 and 11, after the checkpoints at 5 and 10.
		{"source fails after batches were committed", listing{page: 5, stop: 14, err: errSource}, 4, 0, errSource, 14, hour(10), hour(10)},
		{"destination fails at the first batch", listing{page: 5, stop: -1}, 4, 1, memory.ErrInjected, 0, time.Time{}, dataStart},
		{"destination fails at the third batch", listing{page: 5, stop: -1}, 4, 3, memory.ErrInjected, 8, hour(5), hour(5)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.l.recs = all
			dst := memory.New(memory.Options{FailAt: tt.failAt})
			src := &scriptedSource{version: 1, read: tt.l.read}
			opts := testOptions(syncStart)
			opts.BatchSize = tt.batchSize
			rep, err := Run(context.Background(), src, dst, opts)
			s := src.Catalog().Streams[0]
			if !errors.Is(err, ErrStreamsFailed) || !errors.Is(rep.Streams[0].Err, tt.wantErr) {
				t.Fatalf("Run = %v, stream error %v; want the stream failed with %v", err, rep.Streams[0].Err, tt.wantErr)
			}
			if got, want := storedIDs(t, dst, s), idsOf(all[:tt.wantRows]); !slices.Equal(got, want) {
				t.Fatalf("stored %v, want the %d records read before the failure", got, tt.wantRows)
			}
			if got := savedState(t, dst, s.Name).Bookmark; !got.Equal(tt.wantMark) {
				t.Fatalf("saved bookmark %s, want %s", got, tt.wantMark)
			}
			if !rep.Streams[0].Bookmark.Equal(tt.wantMark) || rep.Streams[0].Rows != int64(tt.wantRows) {
				t.Fatalf("report says %d rows, bookmark %s; want %d, %s", rep.Streams[0].Rows, rep.Streams[0].Bookmark, tt.wantRows, tt.wantMark)
			}
			checkBookmarkBehindData(t, dst, s, all)

			dst.SetOptions(memory.Options{})
			again := &scriptedSource{version: 1, read: listing{recs: all, page: 5, stop: -1}.read}
			later := syncStart.Add(time.Hour)
			opts.Now = func() time.Time { return later }
			if _, err := Run(context.Background(), again, dst, opts); err != nil {
				t.Fatal(err)
			}
			if w := again.reads(); len(w) != 1 || !w[0].From.Equal(tt.wantResume) {
				t.Fatalf("the rerun read %v, want from %s", w, tt.wantResume)
			}
			if got := storedIDs(t, dst, s); !slices.Equal(got, idsOf(all)) {
				t.Fatalf("after the rerun %d rows are stored, want all %d", len(got), len(all))
			}
			if got := savedState(t, dst, s.Name).Bookmark; !got.Equal(later) {
				t.Fatalf("bookmark after the rerun %s, want its sync start %s", got, later)
			}
		})
	}
}

// TestWindowEnd: a read that returns nil claims its whole window (source.Emitter: a finished
// window justifies its end), so the bookmark moves to the sync's start, less the stream's
// settle time, even when the source stopped before its newest record; only an error keeps
// the bookmark at the last checkpoint. Checkpoints are clamped to the sync start.
func TestWindowEnd(t *testing.T) {
	all := records(10)
	errStop := errors.New("stopped")
	tests := []struct {
		name   string
		settle time.Duration
		l      listing
		read   func(ctx context.Context, s catalog.Stream, w source.Window, out source.Emitter) error
		want   time.Time
	}{
		{name: "nil after part of the window: the bookmark is the sync start", l: listing{page: 2, stop: 3}, want: syncStart},
		{name: "nil with a settle time: the sync start less the settle time", settle: 5 * time.Minute, l: listing{page: 2, stop: 3}, want: syncStart.Add(-5 * time.Minute)},
		{name: "an error after part of the window: the last checkpoint", l: listing{page: 2, stop: 3, err: errStop}, want: hour(2)},
		{name: "an empty window: the sync start", l: listing{page: 2, stop: 0}, want: syncStart},
		{name: "a checkpoint past the sync start is clamped to it", read: func(ctx context.Context, _ catalog.Stream, _ source.Window, out source.Emitter) error {
			if err := out.Record(ctx, all[0]); err != nil {
				return err
			}
			if err := out.Checkpoint(ctx, syncStart.Add(48*time.Hour)); err != nil {
				return err
			}
			return errStop
		}, want: syncStart},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.l.recs = all
			read := tt.read
			if read == nil {
				read = tt.l.read
			}
			s := itemsStream("items", catalog.Incremental)
			s.Settle = tt.settle
			dst := memory.New(memory.Options{})
			src := &scriptedSource{version: 1, streams: []catalog.Stream{s}, read: read}
			rep, _ := Run(context.Background(), src, dst, testOptions(syncStart))
			if got := savedState(t, dst, s.Name).Bookmark; !got.Equal(tt.want) {
				t.Fatalf("bookmark %s, want %s (stream error: %v)", got, tt.want, rep.Streams[0].Err)
			}
		})
	}
}

// TestSplitReadBookmarkStopsAtTheFailedSlice: a big first read is split into slices read at
// once; when one fails the others are cancelled, and the bookmark covers the finished slices
// before it and the failed slice's own progress, not the slices after it. (In a synctest
// bubble, so a slice left waiting for a cancel that never comes fails at once.)
func TestSplitReadBookmarkStopsAtTheFailedSlice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const slices = 4
		step := syncStart.Sub(dataStart) / slices
		sliceStart := func(i int) time.Time { return dataStart.Add(time.Duration(i) * step) }
		errSlice := errors.New("slice 1 failed")
		progress := sliceStart(1).Add(time.Hour)
		s := itemsStream("items", catalog.Incremental)
		s.ServerFiltered = true
		var notCancelled atomic.Int32
		src := &scriptedSource{version: 1, streams: []catalog.Stream{s}, read: func(ctx context.Context, _ catalog.Stream, w source.Window, out source.Emitter) error {
			switch {
			case w.From.Equal(sliceStart(0)):
				return out.Record(ctx, item(0, w.From)) // finished
			case w.From.Equal(sliceStart(1)):
				if err := out.Record(ctx, item(1, w.From)); err != nil {
					return err
				}
				if err := out.Checkpoint(ctx, progress); err != nil {
					return err
				}
				return errSlice
			}
			// The later slices only end when the failure cancels them.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Hour):
				notCancelled.Add(1)
				return nil
			}
		}}
		dst := memory.New(memory.Options{})
		opts := testOptions(syncStart)
		opts.Windows, opts.SplitAbove = slices, time.Hour
		rep, _ := Run(context.Background(), src, dst, opts)
		if err := rep.Streams[0].Err; !errors.Is(err, errSlice) {
			t.Fatalf("stream error %v, want the failed slice's", err)
		}
		if n := notCancelled.Load(); n > 0 {
			t.Fatalf("%d slices went on after another one failed", n)
		}
		var froms []time.Time
		for i, w := range src.reads() {
			froms = append(froms, w.From)
			if w.Bounded() != !w.From.Equal(sliceStart(slices-1)) {
				t.Errorf("read %d %v: only the last slice is unbounded", i, w)
			}
		}
		slicesSort(froms)
		for i := range slices {
			if i >= len(froms) || !froms[i].Equal(sliceStart(i)) {
				t.Fatalf("slices read from %v, want %d slices from %s, %s apart", froms, slices, dataStart, step)
			}
		}
		if got := savedState(t, dst, s.Name).Bookmark; !got.Equal(progress) {
			t.Fatalf("bookmark %s, want slice 1's progress %s", got, progress)
		}
		if got := storedIDs(t, dst, s); len(got) != 2 {
			t.Fatalf("stored %v, want the two records read", got)
		}
	})
}

func slicesSort(ts []time.Time) { slices.SortFunc(ts, time.Time.Compare) }

// slowWrites delays every batch write by d, ignoring cancellation, like a busy database.
type slowWrites struct {
	*memory.Destination
	d time.Duration
}

func (s slowWrites) Write(ctx context.Context, b destination.Batch, st state.Stream) error {
	time.Sleep(s.d)
	return s.Destination.Write(ctx, b, st)
}

// TestCancelWithWritesInFlight: once a sync is cancelled, the rows already read get
// CommitGrace to commit. A write that hangs is then abandoned: Run returns, no goroutine is
// left, and nothing past what was written before it is committed. A write that is slow but
// done within the grace commits. (In a synctest bubble: the grace passes on a fake clock.)
func TestCancelWithWritesInFlight(t *testing.T) {
	const grace = time.Minute
	tests := []struct {
		name        string
		method      catalog.Method
		before      int // records synced by an earlier, healthy sync
		hangAt      int
		slow        time.Duration
		wantRows    int
		wantMark    time.Time
		wantElapsed time.Duration // from the cancel to Run's return
	}{
		{name: "incremental, the first batch hangs", method: catalog.Incremental, hangAt: 1, wantElapsed: grace},
		// Batches of 2 with checkpoints every 2 records: batch 2 carries the checkpoint at 2.
		{name: "incremental, the third batch hangs", method: catalog.Incremental, hangAt: 3, wantRows: 4, wantMark: hour(2), wantElapsed: grace},
		// Its writes see the sync's own context: nothing to wait for.
		{name: "full table, the second batch hangs: the old rows stay", method: catalog.FullTable, before: 3, hangAt: 2, wantRows: 3},
		{name: "incremental, slow writes finish within the grace", method: catalog.Incremental, slow: 20 * time.Second, wantRows: 4, wantMark: hour(2), wantElapsed: 40 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := itemsStream("items", tt.method)
				mem := memory.New(memory.Options{})
				opts := testOptions(syncStart)
				opts.BatchSize = 2
				if tt.before > 0 {
					first := &scriptedSource{version: 1, streams: []catalog.Stream{s}, read: listing{recs: records(tt.before), page: 2, stop: -1}.read}
					if _, err := Run(context.Background(), first, mem, opts); err != nil {
						t.Fatal(err)
					}
				}
				mem.SetOptions(memory.Options{HangAt: tt.hangAt})
				var dst destination.Destination = mem
				recs := records(1000) // more than a hung writer lets through
				if tt.slow > 0 {
					dst = slowWrites{mem, tt.slow}
					recs = records(4) // two batches, then the read waits for the cancel
				}
				src := &scriptedSource{version: 1, streams: []catalog.Stream{s}, read: func(ctx context.Context, s catalog.Stream, w source.Window, out source.Emitter) error {
					if err := (listing{recs: recs, page: 2, stop: -1}).read(ctx, s, w, out); err != nil {
						return err
					}
					<-ctx.Done()
					return ctx.Err()
				}}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				type result struct {
					rep Report
					err error
				}
				done := make(chan result, 1)
				go func() {
					rep, err := Run(ctx, src, dst, opts)
					done <- result{rep, err}
				}()
				synctest.Wait() // the writer hangs or sleeps; the reader waits for it or the cancel
				cancelled := time.Now()
				cancel()
				var res result
				select {
				case res = <-done:
				case <-time.After(time.Hour):
					t.Fatal("Run did not return within an hour of the cancel")
				}
				if elapsed := time.Since(cancelled); elapsed != tt.wantElapsed {
					t.Errorf("Run returned %s after the cancel, want %s", elapsed, tt.wantElapsed)
				}
				if err := res.rep.Streams[0].Err; !errors.Is(err, context.Canceled) {
					t.Fatalf("stream error %v, want context.Canceled", err)
				}
				if got := storedIDs(t, mem, s); len(got) != tt.wantRows {
					t.Fatalf("stored %d rows, want %d", len(got), tt.wantRows)
				}
				if got := savedState(t, mem, s.Name).Bookmark; !got.Equal(tt.wantMark) {
					t.Fatalf("bookmark %s, want %s", got, tt.wantMark)
				}
			})
			goleak.VerifyNone(t)
		})
	}
}

// TestUnavailableStreamIsSkipped: a stream the account does not offer is reported with the
// reason and not counted as failed; its table and state stay as they were, and the other
// streams sync.
func TestUnavailableStreamIsSkipped(t *testing.T) {
	for _, m := range []catalog.Method{catalog.Incremental, catalog.FullTable} {
		t.Run(string(m), func(t *testing.T) {
			gone, fine := itemsStream("gone", m), itemsStream("fine", catalog.Incremental)
			streams := []catalog.Stream{gone, fine}
			recs := records(3)
			dst := memory.New(memory.Options{})
			first := &scriptedSource{version: 1, streams: streams, read: listing{recs: recs, page: 2, stop: -1}.read}
			if _, err := Run(context.Background(), first, dst, testOptions(syncStart)); err != nil {
				t.Fatal(err)
			}
			before := savedState(t, dst, gone.Name)

			later := syncStart.Add(time.Hour)
			second := &scriptedSource{version: 1, streams: streams, read: func(ctx context.Context, s catalog.Stream, w source.Window, out source.Emitter) error {
				if s.Name == gone.Name {
					return &source.Unavailable{Reason: "leads are disabled"}
				}
				return out.Record(ctx, item(99, later.Add(-time.Minute)))
			}}
			rep, err := Run(context.Background(), second, dst, testOptions(later))
			if err != nil {
				t.Fatalf("Run = %v, want no failure for an unavailable stream", err)
			}
			g := rep.Streams[0]
			if g.Err != nil || !strings.Contains(strings.Join(g.Notes, "; "), "skipped: not available on this account: leads are disabled") {
				t.Fatalf("report of the unavailable stream: err %v, notes %q", g.Err, g.Notes)
			}
			if got := storedIDs(t, dst, gone); !slices.Equal(got, idsOf(recs)) {
				t.Fatalf("the unavailable stream's table now holds %v, want it as it was", got)
			}
			if after := savedState(t, dst, gone.Name); after != before {
				t.Fatalf("the unavailable stream's state changed from %+v to %+v", before, after)
			}
			if got := storedIDs(t, dst, fine); len(got) != len(recs)+1 {
				t.Fatalf("the other stream holds %d rows, want %d", len(got), len(recs)+1)
			}
		})
	}
}

// TestFailedStreamDoesNotStopTheOthers: a stream that fails is reported while the others run
// to the end and commit; the streams after it are not cancelled.
func TestFailedStreamDoesNotStopTheOthers(t *testing.T) {
	streams := []catalog.Stream{itemsStream("broken", catalog.Incremental), itemsStream("a", catalog.Incremental), itemsStream("b", catalog.FullTable)}
	errBroken := errors.New("broken stream")
	src := &scriptedSource{version: 1, streams: streams, read: func(ctx context.Context, s catalog.Stream, w source.Window, out source.Emitter) error {
		if s.Name == "broken" {
			return errBroken
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s was cancelled because another stream failed: %w", s.Name, err)
		}
		return out.Record(ctx, item(1, hour(1)))
	}}
	dst := memory.New(memory.Options{})
	opts := testOptions(syncStart)
	opts.Concurrency = 1 // the others start only after the failure
	rep, err := Run(context.Background(), src, dst, opts)
	if !errors.Is(err, ErrStreamsFailed) || !strings.Contains(err.Error(), "[broken]") {
		t.Fatalf("Run = %v, want only broken named as failed", err)
	}
	for _, sr := range rep.Streams[1:] {
		if sr.Err != nil || sr.Rows != 1 {
			t.Errorf("stream %s: %d rows, error %v; want 1 row", sr.Stream, sr.Rows, sr.Err)
		}
	}
}

// TestConcurrencyLimit: exactly Options.Concurrency streams are read at once while that many
// are left. (In a synctest bubble: synctest.Wait says when the engine can start no more.)
func TestConcurrencyLimit(t *testing.T) {
	for _, tt := range []struct{ streams, limit int }{{5, 1}, {5, 2}, {6, 3}, {2, 4}} {
		t.Run(fmt.Sprintf("%d streams, %d at once", tt.streams, tt.limit), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var streams []catalog.Stream
				for i := range tt.streams {
					streams = append(streams, itemsStream(fmt.Sprintf("s%d", i), catalog.Incremental))
				}
				var inFlight atomic.Int32
				release := make(chan struct{})
				src := &scriptedSource{version: 1, streams: streams, read: func(ctx context.Context, s catalog.Stream, w source.Window, out source.Emitter) error {
					inFlight.Add(1)
					<-release
					inFlight.Add(-1)
					return out.Record(ctx, item(1, hour(1)))
				}}
				opts := testOptions(syncStart)
				opts.Concurrency = tt.limit
				dst := memory.New(memory.Options{})
				done := make(chan error, 1)
				go func() {
					_, err := Run(context.Background(), src, dst, opts)
					done <- err
				}()
				for finished := range tt.streams {
					synctest.Wait()
					if n, want := inFlight.Load(), min(tt.limit, tt.streams-finished); n != int32(want) {
						t.Errorf("after %d reads finished, %d streams are being read, want %d (limit %d)", finished, n, want, tt.limit)
						break
					}
					release <- struct{}{}
				}
				close(release) // after a failure, lets the reads still waiting end
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				for _, s := range streams {
					if got := storedIDs(t, dst, s); len(got) != 1 {
						t.Errorf("%s holds %v, want its one row", s.Name, got)
					}
				}
			})
		})
	}
}
