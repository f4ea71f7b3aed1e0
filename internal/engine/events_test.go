package engine

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/destination/memory"
	"github.com/crmsync/crmsync/internal/source"
)

// TestStartedAndFinished: Options.Started is called as each stream begins, before any of its
// progress, and Options.Finished with its final report — also for a stream cancelled before
// its turn, which never starts.
func TestStartedAndFinished(t *testing.T) {
	streams := []catalog.Stream{itemsStream("a", catalog.Incremental), itemsStream("b", catalog.Incremental)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src := &scriptedSource{version: 1, streams: streams, read: func(ctx context.Context, s catalog.Stream, w source.Window, out source.Emitter) error {
		defer cancel() // b waits for its turn (one stream at a time) and finds the sync cancelled
		return out.Record(ctx, item(1, hour(1)))
	}}
	var mu sync.Mutex
	var events []string
	log := func(e string) { mu.Lock(); events = append(events, e); mu.Unlock() }
	opts := testOptions(syncStart)
	opts.Concurrency = 1
	opts.Started = func(stream string) { log("start " + stream) }
	opts.Progress = func(p StreamProgress) { log("rows " + p.Stream) }
	finished := map[string]StreamReport{}
	opts.Finished = func(r StreamReport) { log("finish " + r.Stream); mu.Lock(); finished[r.Stream] = r; mu.Unlock() }
	Run(ctx, src, memory.New(memory.Options{}), opts)
	if want := []string{"start a", "rows a", "finish a", "finish b"}; !slices.Equal(events, want) {
		t.Fatalf("events %v, want %v", events, want)
	}
	if finished["a"].Rows != 1 || finished["a"].Err != nil || !errors.Is(finished["b"].Err, context.Canceled) {
		t.Fatalf("finished reports: %+v", finished)
	}
}
