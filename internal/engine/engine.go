// Package engine runs a sync: it picks the streams, works out each stream's window from the
// start date, bookmark, attribution window and history limit, reads the streams concurrently,
// batches their records and hands each batch to the destination together with the bookmark
// that batch justifies. It never moves a bookmark past data that is not written.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/source"
	"github.com/crmsync/crmsync/internal/state"
)

// DefaultBatchSize is how many rows a destination transaction carries unless told otherwise:
// enough to amortise a commit, few enough that the batches in flight stay well inside the
// memory budget for wide rows.
const DefaultBatchSize = 2000

// DefaultBatchBytes bounds a batch by the memory its records hold (record.Size) as well as by
// count: 2,000 Close leads with their contacts hold several times what 2,000 tasks do, and a
// stream holds up to three batches at once (filling, queued, being written).
const DefaultBatchBytes = 3 << 20 // 58 MB live heap at most in the 400k Close bench (119 MB with counts alone)

// DefaultMemoryBudget bounds the bytes of records (record.Size) held at once by all the
// streams of a sync together — pending, queued and being written. One stream holds at most
// three batches (9 MiB at DefaultBatchBytes); many at once held more than the soft memory limit
// keeps compact: every Close table at once, each read in 8 windows, peaked at 203 MB of RSS
// with 40 MiB, 187 MB with 16 MiB (and 154 instead of 163 MB for Close's two big tables).
const DefaultMemoryBudget = 16 << 20

// Options tune a sync.
type Options struct {
	// StartDate is the earliest data of a table's first sync. A table synced before keeps the
	// start date it was first read from; zero is allowed when every table has been synced.
	StartDate time.Time
	// FullRefresh reads every table again from StartDate as on a first sync (a backfill after
	// an earlier start date, or a re-read); rows are upserted, so nothing is duplicated.
	FullRefresh bool
	Streams     []string // empty: all
	BatchSize   int      // rows per destination transaction; zero: DefaultBatchSize
	BatchBytes  int      // a batch is also cut when its records hold this many bytes; zero: DefaultBatchBytes
	// MemoryBudget bounds the bytes of records held by all streams at once; zero:
	// DefaultMemoryBudget. A stream that would pass it commits what it holds and waits for
	// writes to free memory.
	MemoryBudget int
	Concurrency  int // streams read at once; zero: 4
	// Windows is how many time windows a large first read of a server-filtered stream is
	// split into and read in parallel; zero: 8. SplitAbove is the smallest window span that
	// is split; zero: 7 days (incremental syncs stay one request per table).
	Windows    int
	SplitAbove time.Duration
	// FlushInterval bounds how long read rows wait before they are committed; zero: 5s.
	FlushInterval time.Duration
	// CommitGrace is how long the rows already read may take to commit once the sync is
	// cancelled, before their writes are abandoned; zero: 1 minute.
	CommitGrace time.Duration
	// Deletes is what a record deleted in the source does to its row; zero: DeletesSoft.
	Deletes DeleteMode
	// ReconcileEvery is how often a catalog.DeletesBySweep stream sweeps its ids (counted
	// from the last sweep, per table); zero: on every sync.
	ReconcileEvery time.Duration
	Now            func() time.Time // zero: time.Now
	Logger         *slog.Logger     // zero: discard
	// Progress, when set, is called after every commit with the stream's running row count.
	Progress func(StreamProgress)
	// Started, when set, is called as a stream begins to be read; Finished with its final
	// report (also for a stream cancelled before its turn). Both may be called concurrently.
	Started  func(stream string)
	Finished func(StreamReport)
}

// StreamProgress is how far a stream's read has come, as of its last commit.
type StreamProgress struct {
	Stream string
	Rows   int64 // rows written so far
	// Expected is the number of records the API announced for the read (Copper's X-PW-TOTAL,
	// Close's total_results), 0 when it announces none. An estimate: Rows may pass it.
	Expected int64
}

// StreamReport says what happened to one stream.
type StreamReport struct {
	Stream   string
	Method   catalog.Method
	Rows     int64
	From, To time.Time // window read (zero for full-table streams)
	Bookmark time.Time // saved bookmark after the sync
	Duration time.Duration
	// RateLimitWait is the time the stream's requests were held back by rate limits, summed
	// over its requests (parallel slices add up).
	RateLimitWait time.Duration
	// Deletes says how deletions in the source were captured.
	Deletes DeletesReport
	// Unparsed counts the values of stored rows that did not fit their timestamp, date or
	// custom-field column (record.Unfit, or text that does not parse):
	// the column kept its type, the row holds NULL there and the raw value in
	// destination.UnparsedColumn. Skipped counts the records that were not stored because
	// they lack a primary key value. Each comes with a note naming a sample.
	Unparsed, Skipped int64
	Notes             []string
	Err               error
}

// Report says what happened in one sync.
type Report struct {
	Source    string
	StartedAt time.Time
	Duration  time.Duration
	Streams   []StreamReport
	Requests  source.RequestStats
}

// Failed lists the streams that did not finish.
func (r Report) Failed() []StreamReport {
	var out []StreamReport
	for _, s := range r.Streams {
		if s.Err != nil {
			out = append(out, s)
		}
	}
	return out
}

// Stream returns the named stream's report (zero when the stream was not synced).
func (r Report) Stream(name string) StreamReport {
	for _, s := range r.Streams {
		if s.Stream == name {
			return s
		}
	}
	return StreamReport{}
}

// Rows is the total number of rows written.
func (r Report) Rows() int64 {
	var n int64
	for _, s := range r.Streams {
		n += s.Rows
	}
	return n
}

// ErrStreamsFailed is returned (wrapped) when at least one stream failed; the others committed.
var ErrStreamsFailed = errors.New("some streams failed")

// Run syncs the selected streams of src into dst.
func Run(ctx context.Context, src source.Source, dst destination.Destination, opts Options) (Report, error) {
	opts = withDefaults(opts)
	cat := src.Catalog()
	streams, err := cat.Select(opts.Streams)
	if err != nil {
		return Report{}, err
	}
	ctx = source.WithSyncCache(ctx) // what a source reads once per sync, it reads again next sync
	release, err := dst.Lock(ctx, cat.Source)
	if err != nil {
		return Report{}, fmt.Errorf("lock %s: %w", cat.Source, err)
	}
	defer release()
	// Every table is checked before any is written: a sync into a destination whose tables
	// belong to another source or program changes nothing rather than half of them.
	tables := make([]destination.Table, len(streams))
	for i, s := range streams {
		tables[i] = destination.Table{Source: cat.Source, Stream: s}
	}
	if err := dst.Claim(ctx, tables); err != nil {
		return Report{}, err
	}

	saved, err := dst.State(ctx, cat.Source)
	if err != nil {
		return Report{}, err
	}
	// Bookmarks are instants of the API's clock. When the source can tell how far that clock
	// is from ours, one cheap call learns it (and fails fast on bad credentials), and windows
	// and bookmarks use the API's time: a row the API stamps with its own earlier time after
	// the sync began is then still after the bookmark.
	apiOffset := time.Duration(0)
	if clock, ok := src.(source.Clock); ok {
		if err := src.Check(ctx); err != nil {
			return Report{}, err
		}
		if off, known := clock.ClockOffset(); known {
			apiOffset = off
			if off > time.Minute || off < -time.Minute {
				opts.Logger.Warn("the API's clock differs from this machine's; bookmarks follow the API's clock", "offset", off.Round(time.Second))
			}
		}
	}
	started := opts.Now().UTC()
	apiNow := started.Add(apiOffset)
	rep := Report{Source: cat.Source, StartedAt: started, Streams: make([]StreamReport, len(streams))}
	bookmarked := map[string]bool{}
	for name, st := range saved {
		bookmarked[name] = !st.Bookmark.IsZero()
	}
	custom, err := planCustomFields(ctx, src, dst, cat.Source, streams, bookmarked, started)
	if err != nil {
		return rep, err
	}

	budget := semaphore.NewWeighted(int64(opts.MemoryBudget))
	// A failed stream is reported, not returned: the group must not cancel the other streams,
	// whose tables commit on their own.
	var g errgroup.Group
	g.SetLimit(opts.Concurrency)
	for i, s := range streams {
		g.Go(func() error {
			if err := ctx.Err(); err != nil { // cancelled while waiting for its turn
				rep.Streams[i] = StreamReport{Stream: s.Name, Method: s.Method, Err: err}
				if opts.Finished != nil {
					opts.Finished(rep.Streams[i])
				}
				return nil
			}
			if opts.Started != nil {
				opts.Started(s.Name)
			}
			r := streamRun{src: src, dst: dst, opts: opts, cat: cat, stream: s, prev: saved[s.Name], started: started, apiNow: apiNow,
				custom: custom.tables[s.Name], refill: custom.refill[s.Name], customStore: custom.store, budget: budget}
			rep.Streams[i] = r.run(ctx)
			if opts.Finished != nil {
				opts.Finished(rep.Streams[i])
			}
			return nil
		})
	}
	g.Wait()
	rep.Duration = opts.Now().Sub(started)
	rep.Requests = src.Stats()
	if failed := rep.Failed(); len(failed) > 0 {
		names := make([]string, len(failed))
		for i, f := range failed {
			names[i] = f.Stream
		}
		sort.Strings(names)
		return rep, fmt.Errorf("%w: %v", ErrStreamsFailed, names)
	}
	return rep, nil
}

func withDefaults(o Options) Options {
	if o.BatchBytes <= 0 {
		o.BatchBytes = DefaultBatchBytes
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.MemoryBudget <= 0 {
		o.MemoryBudget = DefaultMemoryBudget
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Windows <= 0 {
		o.Windows = 8
	}
	if o.SplitAbove <= 0 {
		o.SplitAbove = 7 * 24 * time.Hour
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 5 * time.Second
	}
	if o.CommitGrace <= 0 {
		o.CommitGrace = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Deletes == "" {
		o.Deletes = DeletesSoft
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Window computes the range a stream covers: from = max(start date, bookmark − lookback,
// now − max history), to = the sync's start (the read itself is not bounded above; see
// source.Window). It also says when the history limit clipped it.
func Window(s catalog.Stream, startDate, bookmark, now time.Time) (w source.Window, clipped bool) {
	from := startDate
	if !bookmark.IsZero() {
		if b := bookmark.Add(-s.Lookback); b.After(from) {
			from = b
		}
	}
	if s.MaxHistory > 0 {
		if limit := now.Add(-s.MaxHistory); limit.After(from) {
			from = limit
			clipped = true
		}
	}
	return source.Window{From: from.UTC(), To: now.UTC()}, clipped
}

// flushState is the state a batch commits: the newest justified bookmark, never older than
// the saved one (rows before a saved bookmark were already durable), never past the sync start.
func flushState(prev state.Stream, checkpoint, limit time.Time, schemaVersion int, started, startDate time.Time) state.Stream {
	b := prev.Bookmark
	if checkpoint.After(limit) {
		checkpoint = limit
	}
	if checkpoint.After(b) {
		b = checkpoint
	}
	return state.Stream{Bookmark: b, SchemaVersion: schemaVersion, LastSyncAt: started, StartDate: startDate}
}
