package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/destination/memory"
	"github.com/crmsync/crmsync/internal/record"
	"github.com/crmsync/crmsync/internal/source"
)

// deletingSource is an account of one stream whose records can be deleted: it reads them,
// announces deletions in a feed (DeletionFeed) unless the feed has lapsed, and lists ids
// (Sweeper).
type deletingSource struct {
	stream catalog.Stream
	mu     sync.Mutex
	live   map[string]time.Time // id → updated
	feed   []string             // ids deleted, in order
	lapsed bool
	// sweepFails makes the next sweep fail after listing the ids.
	sweepFails bool
	sweeps     int
}

func newDeletingSource(how catalog.Deletes, ids ...string) *deletingSource {
	s := itemsStream("items", catalog.Incremental)
	s.Deletes = how
	src := &deletingSource{stream: s, live: map[string]time.Time{}}
	for _, id := range ids {
		src.live[id] = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return src
}

func (s *deletingSource) Catalog() catalog.Catalog {
	return catalog.Catalog{Source: "deleting", SchemaVersion: 1, Streams: []catalog.Stream{s.stream}}
}
func (s *deletingSource) Check(context.Context) error { return nil }
func (s *deletingSource) Stats() source.RequestStats  { return source.RequestStats{} }

func (s *deletingSource) records(from time.Time) []record.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []record.Record
	for id, u := range s.live {
		if !u.Before(from) {
			out = append(out, record.Record{"id": id, "updated": u.Format(time.RFC3339Nano)})
		}
	}
	return out
}

func (s *deletingSource) Read(ctx context.Context, _ catalog.Stream, w source.Window, out source.Emitter) error {
	for _, rec := range s.records(w.From) {
		if err := out.Record(ctx, rec); err != nil {
			return err
		}
	}
	return nil
}

func (s *deletingSource) ReadDeletions(ctx context.Context, _ catalog.Stream, w source.Window, out source.DeletionEmitter) (time.Time, error) {
	s.mu.Lock()
	feed, lapsed := slices.Clone(s.feed), s.lapsed
	s.feed = nil
	s.mu.Unlock()
	if lapsed {
		return time.Time{}, source.ErrFeedLapsed
	}
	for _, id := range feed {
		if err := out.Deleted(ctx, id); err != nil {
			return time.Time{}, err
		}
	}
	return w.To, nil
}

func (s *deletingSource) Sweep(ctx context.Context, _ catalog.Stream, out source.Emitter) error {
	s.mu.Lock()
	s.sweeps++
	fail := s.sweepFails
	s.sweepFails = false
	s.mu.Unlock()
	for _, rec := range s.records(time.Time{}) {
		if err := out.Record(ctx, record.Record{"id": rec["id"]}); err != nil {
			return err
		}
	}
	if fail { // after every id: only the end of the listing is missing
		return errors.New("connection reset")
	}
	return nil
}

// delete removes ids from the account and announces them in the feed.
func (s *deletingSource) delete(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		delete(s.live, id)
		s.feed = append(s.feed, id)
	}
}

func (s *deletingSource) put(id string, updated time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.live[id] = updated
}

// deletedRows returns "id@minutes since t0" for marked rows and "id" for live ones, sorted.
func deletedRows(t *testing.T, dst *memory.Destination, st catalog.Stream, t0 time.Time) []string {
	t.Helper()
	rows, err := dst.Rows(context.Background(), destination.Table{Source: "deleting", Stream: st})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rows {
		s := fmt.Sprint(r["id"])
		if at, ok := r[destination.DeletedAtColumn].(time.Time); ok {
			s += fmt.Sprintf("@%d", int(at.Sub(t0).Minutes()))
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// TestDeletes: deletions reach the table through the feed, or an id sweep when the feed
// lapsed or on the sweep's cadence; a record that comes back is live; hard deletes remove.
func TestDeletes(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	type step struct {
		after  time.Duration // since t0
		change func(*deletingSource)
		want   []string // rows after the sync: id, or id@minute marked
		how    string
		marked int64
	}
	tests := []struct {
		name   string
		how    catalog.Deletes
		mode   DeleteMode
		every  time.Duration
		steps  []step
		sweeps int
	}{
		{"event log", catalog.DeletesByEvents, "", 0, []step{
			{0, nil, []string{"a", "b", "c"}, "first sync", 0},
			{time.Hour, func(s *deletingSource) { s.delete("b") }, []string{"a", "b@60", "c"}, "event log", 1},
			{2 * time.Hour, func(s *deletingSource) { s.delete("c") }, []string{"a", "b@60", "c@120"}, "event log", 1},
		}, 0},
		{"the feed lapsed: a sweep stands in", catalog.DeletesByEvents, "", 0, []step{
			{0, nil, []string{"a", "b", "c"}, "first sync", 0},
			{time.Hour, func(s *deletingSource) { s.delete("b"); s.feed, s.lapsed = nil, true }, []string{"a", "b@60", "c"}, "id sweep", 1},
		}, 1},
		{"sweeps on their cadence", catalog.DeletesBySweep, "", 24 * time.Hour, []step{
			{0, nil, []string{"a", "b", "c"}, "first sync", 0},
			{time.Hour, func(s *deletingSource) { s.delete("b") }, []string{"a", "b", "c"}, "not due", 0},
			{25 * time.Hour, nil, []string{"a", "b@1500", "c"}, "id sweep", 1},
			{26 * time.Hour, func(s *deletingSource) { s.delete("a") }, []string{"a", "b@1500", "c"}, "not due", 0},
		}, 1},
		{"sweeps on every sync with a zero cadence", catalog.DeletesBySweep, "", 0, []step{
			{0, nil, []string{"a", "b", "c"}, "first sync", 0},
			{time.Hour, func(s *deletingSource) { s.delete("b") }, []string{"a", "b@60", "c"}, "id sweep", 1},
			{2 * time.Hour, nil, []string{"a", "b@60", "c"}, "id sweep", 0},
		}, 2},
		{"a zero cadence sweeps even when the last check reads later than this sync's start", catalog.DeletesBySweep, "", 0, []step{
			{0, nil, []string{"a", "b", "c"}, "first sync", 0},
			{time.Hour, func(s *deletingSource) { s.delete("b") }, []string{"a", "b@60", "c"}, "id sweep", 1},
			{time.Hour - time.Second, func(s *deletingSource) { s.delete("c") }, []string{"a", "b@60", "c@59"}, "id sweep", 1},
		}, 2},
		{"an interrupted sweep marks nothing, the next one all", catalog.DeletesBySweep, "", 0, []step{
			{0, nil, []string{"a", "b", "c"}, "first sync", 0},
			{time.Hour, func(s *deletingSource) { s.delete("b", "c"); s.sweepFails = true }, []string{"a", "b", "c"}, "id sweep", 0},
			{2 * time.Hour, nil, []string{"a", "b@120", "c@120"}, "id sweep", 2},
		}, 2},
		{"a record that comes back is live again", catalog.DeletesByEvents, "", 0, []step{
			{0, nil, []string{"a", "b", "c"}, "first sync", 0},
			{time.Hour, func(s *deletingSource) { s.delete("b") }, []string{"a", "b@60", "c"}, "event log", 1},
			{2 * time.Hour, func(s *deletingSource) { s.put("b", t0.Add(90*time.Minute)) }, []string{"a", "b", "c"}, "event log", 0},
		}, 0},
		{"deleted and re-created before one sync", catalog.DeletesByEvents, "", 0, []step{
			{0, nil, []string{"a", "b", "c"}, "first sync", 0},
			{time.Hour, func(s *deletingSource) { s.delete("b"); s.put("b", t0.Add(30*time.Minute)) }, []string{"a", "b", "c"}, "event log", 0},
		}, 0},
		{"hard deletes remove the rows", catalog.DeletesByEvents, DeletesHard, 0, []step{
			{0, nil, []string{"a", "b", "c"}, "first sync", 0},
			{time.Hour, func(s *deletingSource) { s.delete("b") }, []string{"a", "c"}, "event log", 1},
		}, 0},
		{"off", catalog.DeletesByEvents, DeletesOff, 0, []step{
			{0, nil, []string{"a", "b", "c"}, "", 0},
			{time.Hour, func(s *deletingSource) { s.delete("b") }, []string{"a", "b", "c"}, "", 0},
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newDeletingSource(tt.how, "a", "b", "c")
			dst := memory.New(memory.Options{})
			for i, st := range tt.steps {
				if st.change != nil {
					st.change(src)
				}
				now := t0.Add(st.after)
				opts := Options{StartDate: t0.AddDate(-1, 0, 0), Now: func() time.Time { return now }, Deletes: tt.mode, ReconcileEvery: tt.every}
				rep, err := Run(context.Background(), src, dst, opts)
				if i == 1 && strings.Contains(tt.name, "interrupted") {
					if err == nil {
						t.Fatalf("sync %d: the failed sweep did not fail the stream", i)
					}
				} else if err != nil {
					t.Fatalf("sync %d: %v", i, err)
				}
				got := rep.Stream("items").Deletes
				if got.How != st.how || got.Marked != st.marked {
					t.Errorf("sync %d: deletes = %+v, want how %q, %d marked", i, got, st.how, st.marked)
				}
				if rows := deletedRows(t, dst, src.stream, t0); !slices.Equal(rows, st.want) {
					t.Errorf("sync %d: rows %v, want %v", i, rows, st.want)
				}
			}
			if src.sweeps != tt.sweeps {
				t.Errorf("%d sweeps, want %d", src.sweeps, tt.sweeps)
			}
		})
	}
}
