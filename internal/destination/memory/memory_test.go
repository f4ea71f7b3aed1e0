package memory

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/destination/destinationtest"
	"github.com/crmsync/crmsync/internal/state"
)

// TestContract runs the suite every destination passes: the memory destination is only worth
// using in engine tests if it behaves like the real ones.
func TestContract(t *testing.T) {
	destinationtest.Run(t, func(t *testing.T) destination.Destination {
		d := New(Options{})
		t.Cleanup(func() { d.Close() })
		return foreignable{d}
	})
}

// foreignable adds destinationtest.Foreigner to a Destination.
type foreignable struct{ *Destination }

func (d foreignable) CreateForeign(ctx context.Context, t destination.Table) error {
	d.AddForeignTable(t.Stream.Name)
	return nil
}

func (d foreignable) DescribeForeign(ctx context.Context, t destination.Table) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	tb := d.tables[t.Stream.Name]
	return fmt.Sprintf("source %q columns %v rows %v", tb.source, tb.cols, tb.rows), nil
}

func TestFaults(t *testing.T) {
	tb := destination.Table{Source: "src", Stream: catalog.Stream{Name: "items", PrimaryKey: []string{"id"}, Method: catalog.Incremental}}
	cols := []catalog.Column{{Name: "id", Type: catalog.String}}
	batch := func(id string) destination.Batch {
		return destination.Batch{Table: tb, Columns: cols, Rows: [][]any{{id}}}
	}
	bm := func(h int) state.Stream { return state.Stream{Bookmark: time.Date(2026, 1, 1, h, 0, 0, 0, time.UTC)} }

	tests := []struct {
		name     string
		opts     Options
		wantErr  []error // per write: nil, ErrInjected or context.Canceled
		wantRows int64
	}{
		{"no faults", Options{}, []error{nil, nil, nil}, 3},
		{"fail from the second batch on", Options{FailAt: 2}, []error{nil, ErrInjected, ErrInjected}, 1},
		{"hang from the third batch on", Options{HangAt: 3}, []error{nil, nil, context.Canceled}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := New(tt.opts)
			if _, err := d.Prepare(t.Context(), tb, cols); err != nil {
				t.Fatal(err)
			}
			var lastOK int
			for i, want := range tt.wantErr {
				ctx, cancel := context.WithCancel(t.Context())
				if want == context.Canceled {
					// The write must be waiting before the cancel, or this proves nothing.
					go func() { <-d.Hanging(); cancel() }()
				}
				err := d.Write(ctx, batch(string(rune('a'+i))), bm(i+1))
				cancel()
				if !errors.Is(err, want) || (want == nil) != (err == nil) {
					t.Fatalf("write %d: %v, want %v", i+1, err, want)
				}
				if err == nil {
					lastOK = i + 1
				}
			}
			if n, _ := d.Count(t.Context(), tb); n != tt.wantRows {
				t.Errorf("%d rows stored, want %d", n, tt.wantRows)
			}
			st, err := d.State(t.Context(), "src")
			if err != nil {
				t.Fatal(err)
			}
			if got := st["items"].Bookmark; !got.Equal(bm(lastOK).Bookmark) {
				t.Errorf("bookmark %s, want the last successful write's %s", got, bm(lastOK).Bookmark)
			}
		})
	}
}

func TestClosed(t *testing.T) {
	d := New(Options{})
	d.Close()
	if _, err := d.State(t.Context(), "src"); !errors.Is(err, ErrClosed) {
		t.Fatalf("State after Close: %v, want ErrClosed", err)
	}
}
