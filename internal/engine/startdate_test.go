package engine

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/destination/memory"
	"github.com/crmsync/crmsync/internal/fakeclock"
	"github.com/crmsync/crmsync/internal/source"
)

// TestStartDateKept: a table keeps the start date it was first read from, so later syncs need
// none; an earlier one given later is not read silently (the report says how to backfill) and
// --full-refresh reads from it; a table never synced needs one.
func TestStartDateKept(t *testing.T) {
	clock := fakeclock.New(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	first := clock.Now().AddDate(0, -1, 0)
	earlier := first.AddDate(0, -6, 0)
	src := &scriptedSource{version: 1, emit: func(ctx context.Context, w source.Window, out source.Emitter) error {
		return out.Record(ctx, item(1, clock.Now().Add(-time.Hour)))
	}}
	dst := memory.New(memory.Options{})
	run := func(start time.Time, full bool) Report {
		t.Helper()
		clock.Advance(time.Hour)
		rep, _ := Run(context.Background(), src, dst, Options{StartDate: start, FullRefresh: full, Now: clock.Now})
		return rep
	}
	saved := func() time.Time {
		st, err := dst.State(context.Background(), "scripted")
		if err != nil {
			t.Fatal(err)
		}
		return st["items"].StartDate
	}
	tests := []struct {
		name      string
		start     time.Time
		full      bool
		wantFrom  func() time.Time // the window's start: nil = from the bookmark
		wantErr   string
		wantNote  string
		wantSaved time.Time
	}{
		{name: "first sync without a start date", wantErr: "start_date: missing"},
		{name: "first sync", start: first, wantFrom: func() time.Time { return first }, wantSaved: first},
		{name: "later sync without a start date", wantSaved: first},
		{name: "an earlier start date is not a silent backfill", start: earlier, wantNote: "--full-refresh", wantSaved: first},
		{name: "full refresh from the earlier date", start: earlier, full: true, wantFrom: func() time.Time { return earlier }, wantSaved: earlier},
	}
	for _, tt := range tests {
		before := len(src.reads())
		rep := run(tt.start, tt.full)
		s := rep.Stream("items")
		if tt.wantErr != "" {
			if s.Err == nil || !strings.Contains(s.Err.Error(), tt.wantErr) {
				t.Fatalf("%s: error %v, want %q", tt.name, s.Err, tt.wantErr)
			}
			continue
		}
		if s.Err != nil {
			t.Fatalf("%s: %v", tt.name, s.Err)
		}
		reads := src.reads()[before:]
		if len(reads) == 0 {
			t.Fatalf("%s: nothing read", tt.name)
		}
		if tt.wantFrom != nil && !reads[0].From.Equal(tt.wantFrom()) {
			t.Errorf("%s: read from %s, want %s", tt.name, reads[0].From, tt.wantFrom())
		}
		if tt.wantFrom == nil && reads[0].From.Before(first) {
			t.Errorf("%s: read from %s, before the table's start date %s", tt.name, reads[0].From, first)
		}
		if note := strings.Join(s.Notes, "; "); !strings.Contains(note, tt.wantNote) {
			t.Errorf("%s: notes %q, want one containing %q", tt.name, note, tt.wantNote)
		}
		if got := saved(); !got.Equal(tt.wantSaved) {
			t.Errorf("%s: saved start date %s, want %s", tt.name, got, tt.wantSaved)
		}
	}
}
