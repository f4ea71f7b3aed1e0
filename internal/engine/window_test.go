package engine

import (
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/state"
)

func TestWindow(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	cdc := catalog.Stream{Name: "leads", Method: catalog.Incremental}
	acts := catalog.Stream{Name: "activities", Method: catalog.AppendOnly, Lookback: 24 * time.Hour}
	events := catalog.Stream{Name: "event_log", Method: catalog.Incremental, MaxHistory: 30 * 24 * time.Hour}
	bm := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		s        catalog.Stream
		bookmark time.Time
		from     time.Time
		clipped  bool
	}{
		{"first sync from start date", cdc, time.Time{}, start, false},
		{"later sync from bookmark", cdc, bm, bm, false},
		{"attribution window", acts, bm, bm.Add(-24 * time.Hour), false},
		{"attribution window never before start", acts, start.Add(time.Hour), start, false},
		{"history limit clips start date", events, time.Time{}, now.Add(-30 * 24 * time.Hour), true},
		{"bookmark inside history", events, bm, bm, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, clipped := Window(tt.s, start, tt.bookmark, now)
			if !w.From.Equal(tt.from) || !w.To.Equal(now) || clipped != tt.clipped {
				t.Fatalf("Window = [%s, %s) clipped=%v; want from %s clipped=%v", w.From, w.To, clipped, tt.from, tt.clipped)
			}
		})
	}
}

func TestFlushStateNeverPassesLimitOrRegresses(t *testing.T) {
	started := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	prev := state.Stream{Bookmark: started.Add(-time.Hour)}
	tests := []struct {
		name       string
		checkpoint time.Time
		want       time.Time
	}{
		{"advances", started.Add(-time.Minute), started.Add(-time.Minute)},
		{"future-dated record is clamped to the sync start", started.Add(48 * time.Hour), started},
		{"older checkpoint keeps the saved bookmark", started.Add(-2 * time.Hour), prev.Bookmark},
		{"no checkpoint keeps the saved bookmark", time.Time{}, prev.Bookmark},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := flushState(prev, tt.checkpoint, started, 1, started, time.Time{})
			if !got.Bookmark.Equal(tt.want) {
				t.Fatalf("bookmark = %s, want %s", got.Bookmark, tt.want)
			}
		})
	}
}

func TestSplitReadBookmarkCoversOnlyTheFinishedPrefix(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	win := func(i int, progress time.Duration, done bool) windowProgress {
		from := t0.Add(time.Duration(i) * 10 * day)
		return windowProgress{from: from, to: from.Add(10 * day), progress: from.Add(progress), done: done}
	}
	tests := []struct {
		name    string
		windows []windowProgress
		want    time.Time
	}{
		{"nothing read", []windowProgress{win(0, 0, false), win(1, 0, false)}, t0},
		{"first slice in progress", []windowProgress{win(0, 3*day, false), win(1, 9*day, false)}, t0.Add(3 * day)},
		{"a later slice done does not count while an earlier one runs", []windowProgress{win(0, day, false), win(1, 0, true)}, t0.Add(day)},
		{"first done, second in progress", []windowProgress{win(0, 0, true), win(1, 2*day, false)}, t0.Add(12 * day)},
		{"all done: up to the sync start", []windowProgress{win(0, 0, true), win(1, 0, true)}, t0.Add(20 * day)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &streamRun{windows: tt.windows, apiNow: t0.Add(20 * day)}
			if got := r.windowsCheckpoint(); !got.Equal(tt.want) {
				t.Fatalf("bookmark %s, want %s", got, tt.want)
			}
		})
	}
}
