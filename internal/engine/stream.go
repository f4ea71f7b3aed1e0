package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/record"
	"github.com/crmsync/crmsync/internal/source"
	"github.com/crmsync/crmsync/internal/state"
)

// streamRun syncs one stream. It is the source's Emitter: records pile up in a batch that is
// flushed when full, when FlushInterval has passed, and at the end.
type streamRun struct {
	src     source.Source
	dst     destination.Destination
	opts    Options
	cat     catalog.Catalog
	stream  catalog.Stream
	prev    state.Stream
	started time.Time // local clock: LastSyncAt, _crmsync_extracted_at
	apiNow  time.Time // the sync start in the API's clock: window end, bookmark limit

	table   destination.Table
	cols    []catalog.Column
	colIdx  map[string]int
	pending []record.Record
	// checkpoint is the newest bookmark the source has justified; it is committed with the
	// next flush, after the records emitted before it.
	checkpoint time.Time
	limit      time.Time // bookmarks never pass this: sync start − settle time
	lastFlush  time.Time
	queued     time.Time // bookmark of the last queued batch
	// mu guards pending, checkpoint, windows, lastFlush and queued: the slices of a split
	// read emit concurrently.
	mu      sync.Mutex
	windows []windowProgress
	replace destination.Replacement

	// The writer goroutine owns cols, colIdx, rows and saved while it runs.
	jobs       chan job
	writerDone chan struct{}
	writeErr   atomic.Pointer[error]
	rows       int64
	saved      state.Stream
}

func (r *streamRun) run(ctx context.Context) StreamReport {
	s := r.stream
	t0 := r.opts.Now()
	rep := StreamReport{Stream: s.Name, Method: s.Method}
	log := r.opts.Logger.With("stream", s.Name)
	if err := r.checkSchemaVersion(&rep); err != nil {
		rep.Err = err
		log.Error("stream refused", "err", err)
		return rep
	}
	meter := &source.WaitMeter{}
	ctx = source.WithWaitMeter(ctx, meter)
	r.table = destination.Table{Source: r.cat.Source, Stream: s}
	r.limit = r.apiNow.Add(-s.Settle)
	r.saved = r.prev
	r.queued = r.prev.Bookmark
	r.lastFlush = r.opts.Now()

	var w source.Window
	if s.Method != catalog.FullTable {
		var clipped bool
		w, clipped = Window(s, r.opts.StartDate, r.prev.Bookmark, r.apiNow)
		rep.From, rep.To = w.From, w.To
		if clipped {
			note := fmt.Sprintf("the API keeps only %d days of history: reading from %s instead of the start date or bookmark", int(s.MaxHistory.Hours()/24), w.From.Format(time.RFC3339))
			rep.Notes = append(rep.Notes, note)
			log.Info("history limit clips the window", "from", w.From)
		}
	}

	err := r.read(ctx, w)
	var unavailable *source.Unavailable
	if errors.As(err, &unavailable) {
		rep.Notes = append(rep.Notes, "skipped: "+unavailable.Error())
		log.Warn("stream skipped", "reason", unavailable.Reason)
		err = nil
	}
	rep.Rows = r.rows
	rep.Bookmark = r.saved.Bookmark
	rep.Duration = r.opts.Now().Sub(t0)
	rep.RateLimitWait = meter.Total()
	if err != nil {
		rep.Err = err
		log.Error("stream failed", "rows", r.rows, "err", err)
	} else {
		log.Info("stream done", "rows", r.rows, "duration", rep.Duration.Round(time.Millisecond))
	}
	return rep
}

func (r *streamRun) read(ctx context.Context, w source.Window) error {
	s := r.stream
	declared := append(append([]catalog.Column{}, s.Columns...), destination.MetadataColumns...)
	cols, err := r.dst.Prepare(ctx, r.table, declared)
	if err != nil {
		return err
	}
	r.setColumns(cols)

	if s.Method == catalog.FullTable {
		if r.replace, err = r.dst.Replace(ctx, r.table); err != nil {
			return err
		}
		r.startWriter(ctx)
		err := r.src.Read(ctx, s, w, r)
		if err == nil {
			err = r.flush(ctx)
		}
		if werr := r.stopWriter(); err == nil {
			err = werr
		}
		if err != nil {
			r.replace.Abort(context.WithoutCancel(ctx))
			return err
		}
		r.saved = state.Stream{SchemaVersion: r.cat.SchemaVersion, LastSyncAt: r.started}
		return r.replace.Commit(ctx, r.saved)
	}

	// Even a bookmark at (or, after a clock change, past) the sync's start is read from: the
	// start is only known to a second or two of the API's clock, and the read is unbounded.
	// Rows read before a failure are real; they are committed with the last bookmark they
	// justify. Those writes must survive the cancellation that may have caused the failure.
	writeCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	r.startWriter(writeCtx)
	var readErr error
	if s.ServerFiltered && r.opts.Windows > 1 && w.To.Sub(w.From) > r.opts.SplitAbove {
		readErr = r.readWindows(ctx, w)
	} else {
		// No upper bound: whatever changed before the sync started is read, however the
		// API rounds its clock; the bookmark still stops at the sync start.
		readErr = r.src.Read(ctx, s, source.Window{From: w.From}, r)
	}
	if readErr == nil {
		// The whole window was read: every row before its end is handed over.
		r.mu.Lock()
		r.checkpoint = w.To
		r.mu.Unlock()
	}
	// The last flush waits too: with the writer stuck, queueing the last batch blocks.
	committed := make(chan error, 1)
	go func() {
		flushErr := r.flush(writeCtx)
		if err := r.stopWriter(); err != nil {
			flushErr = err
		}
		committed <- flushErr
	}()
	writeErr := r.awaitCommit(ctx, committed, cancel)
	switch {
	case readErr != nil && writeErr != nil && !errors.Is(readErr, writeErr):
		return fmt.Errorf("%w (and committing the rows read before it failed: %v)", readErr, writeErr)
	case readErr != nil:
		return readErr
	}
	return writeErr
}

// awaitCommit waits for the rows already read to be committed. Once the sync is cancelled
// they get Options.CommitGrace more; then the writes are cancelled (the destination hangs):
// the rows in flight are given up, never the bookmark rule. Until a cancel it waits as long
// as the writes take, as the read does: a slow write is not a hung one.
func (r *streamRun) awaitCommit(ctx context.Context, committed <-chan error, cancelWrites func()) error {
	select {
	case err := <-committed:
		return err
	case <-ctx.Done():
	}
	grace := time.NewTimer(r.opts.CommitGrace)
	defer grace.Stop()
	select {
	case err := <-committed:
		return err
	case <-grace.C:
		cancelWrites()
		return <-committed
	}
}

// job is one batch on its way to the destination, with the state it justifies.
type job struct {
	records []record.Record
	state   state.Stream
}

// startWriter runs the conversion and destination writes of the stream in their own
// goroutine, so the next pages are fetched and decoded while a batch is being written.
func (r *streamRun) startWriter(ctx context.Context) {
	r.jobs = make(chan job, 1)
	r.writerDone = make(chan struct{})
	go func() {
		defer close(r.writerDone)
		for j := range r.jobs {
			if r.writeErr.Load() != nil {
				continue // drain: after a failure nothing more may be committed
			}
			if err := r.write(ctx, j); err != nil {
				r.writeErr.Store(&err)
			}
		}
	}()
}

// stopWriter waits for every queued batch and returns the first write error.
func (r *streamRun) stopWriter() error {
	close(r.jobs)
	<-r.writerDone
	if p := r.writeErr.Load(); p != nil {
		return *p
	}
	return nil
}

// readWindows splits the window into equal time slices read in parallel. Each slice reports
// its own progress; the bookmark only covers the contiguous prefix of the window that is
// completely handed over: finished slices, then the progress of the first unfinished one.
func (r *streamRun) readWindows(ctx context.Context, w source.Window) error {
	n := r.opts.Windows
	step := w.To.Sub(w.From) / time.Duration(n)
	r.mu.Lock()
	r.windows = make([]windowProgress, n)
	for i := range r.windows {
		from := w.From.Add(time.Duration(i) * step)
		to := from.Add(step)
		if i == n-1 {
			to = time.Time{} // the last slice is unbounded, like an unsplit read
		}
		r.windows[i] = windowProgress{from: from, to: to, progress: from}
	}
	r.mu.Unlock()
	// Every slice at once; one that fails fails the stream, so the group cancels the others.
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(n)
	for i := range n {
		g.Go(func() error {
			win := r.windows[i]
			err := r.src.Read(ctx, r.stream, source.Window{From: win.from, To: win.to}, windowEmitter{r: r, i: i})
			if err == nil {
				r.mu.Lock()
				r.windows[i].done = true
				r.checkpoint = r.windowsCheckpoint()
				r.mu.Unlock()
			}
			return err
		})
	}
	return g.Wait()
}

// windowProgress is how far one slice of a split read has come.
type windowProgress struct {
	from, to, progress time.Time
	done               bool
}

// windowsCheckpoint is the bookmark the slices justify together. Caller holds r.mu.
func (r *streamRun) windowsCheckpoint() time.Time {
	for _, w := range r.windows {
		if !w.done {
			return w.progress
		}
	}
	return r.apiNow // all read: the bookmark may reach the sync's start
}

// windowEmitter is the Emitter of one slice of a split read.
type windowEmitter struct {
	r *streamRun
	i int
}

func (e windowEmitter) Record(ctx context.Context, rec record.Record) error {
	return e.r.Record(ctx, rec)
}

func (e windowEmitter) Checkpoint(ctx context.Context, c time.Time) error {
	r := e.r
	r.mu.Lock()
	if win := r.windows[e.i]; c.After(win.progress) && (win.to.IsZero() || c.Before(win.to)) {
		r.windows[e.i].progress = c
	}
	r.checkpoint = r.windowsCheckpoint()
	defer r.mu.Unlock()
	return r.flushIfDueLocked(ctx)
}

// Record implements source.Emitter. It is safe for the slices of a split read.
func (r *streamRun) Record(ctx context.Context, rec record.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending = append(r.pending, rec)
	if len(r.pending) >= r.opts.BatchSize {
		return r.flushLocked(ctx)
	}
	// A stream that never checkpoints (newest-first or unsorted listings) still commits its
	// rows every FlushInterval, with the bookmark it had.
	return r.flushIfDueLocked(ctx)
}

// Checkpoint implements source.Emitter.
func (r *streamRun) Checkpoint(ctx context.Context, c time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c.After(r.checkpoint) {
		r.checkpoint = c
	}
	return r.flushIfDueLocked(ctx)
}

// flushIfDueLocked commits what is pending once FlushInterval has passed, so a slow read
// still advances its bookmark. Caller holds r.mu.
func (r *streamRun) flushIfDueLocked(ctx context.Context) error {
	if len(r.pending) > 0 && r.opts.Now().Sub(r.lastFlush) >= r.opts.FlushInterval {
		return r.flushLocked(ctx)
	}
	return nil
}

// flush queues the pending records with the bookmark the checkpoints so far justify. A write
// error of an earlier batch stops the read here.
func (r *streamRun) flush(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.flushLocked(ctx)
}

func (r *streamRun) flushLocked(ctx context.Context) error {
	if p := r.writeErr.Load(); p != nil {
		return *p
	}
	r.lastFlush = r.opts.Now()
	// Checkpoints only grow, so every batch's bookmark is at least its predecessor's.
	st := flushState(r.prev, r.checkpoint, r.limit, r.cat.SchemaVersion, r.started)
	if len(r.pending) == 0 && (r.replace != nil || st.Bookmark.Equal(r.queued)) {
		return nil
	}
	r.queued = st.Bookmark
	select {
	case r.jobs <- job{records: r.pending, state: st}:
	case <-ctx.Done():
		return ctx.Err()
	}
	r.pending = make([]record.Record, 0, r.opts.BatchSize)
	return nil
}

// write converts and stores one batch; it runs on the writer goroutine only.
func (r *streamRun) write(ctx context.Context, j job) error {
	b, err := r.batch(ctx, j.records)
	if err != nil {
		return err
	}
	if r.replace != nil {
		err = r.replace.Write(ctx, b)
	} else {
		err = r.dst.Write(ctx, b, j.state)
	}
	if err != nil {
		return err
	}
	if r.replace == nil {
		r.saved = j.state
	}
	r.rows += int64(len(b.Rows))
	if r.opts.Progress != nil {
		r.opts.Progress(r.stream.Name, r.rows)
	}
	return nil
}

func (r *streamRun) setColumns(cols []catalog.Column) {
	r.cols = cols
	r.colIdx = make(map[string]int, len(cols))
	for i, c := range cols {
		r.colIdx[c.Name] = i
	}
}

// batch converts the pending records to typed rows. Fields the table lacks (schema drift) and
// values that do not fit their column's type first evolve the table: columns are added and
// types widened, never dropped or narrowed.
func (r *streamRun) batch(ctx context.Context, recs []record.Record) (destination.Batch, error) {
	rows, err := r.convert(recs)
	if errors.Is(err, errDrift) {
		if err := r.evolve(ctx, recs); err != nil {
			return destination.Batch{}, err
		}
		rows, err = r.convert(recs)
	}
	if err != nil {
		return destination.Batch{}, err
	}
	return destination.Batch{Table: r.table, Columns: r.cols, Rows: rows}, nil
}

// errDrift says a record has a field the table lacks or a value its column cannot hold.
var errDrift = errors.New("the table's columns do not fit the record")

// convert turns records into rows in the table's column order, visiting only the fields each
// record has (sparse records, such as Close's activity types, fill few of the columns).
func (r *streamRun) convert(recs []record.Record) ([][]any, error) {
	n := len(r.cols)
	extracted, hasExtracted := r.colIdx[destination.ExtractedAtColumn]
	deleted, hasDeleted := r.colIdx[destination.DeletedAtColumn]
	cells := make([]any, len(recs)*n) // one allocation for the batch's rows
	rows := make([][]any, len(recs))
	for i, rec := range recs {
		row := cells[i*n : (i+1)*n : (i+1)*n]
		for k, v := range rec {
			if v == nil {
				continue // a null fits any column, and a column it lacks is NULL anyway
			}
			k = destination.FieldColumn(k)
			j, ok := r.colIdx[k]
			if !ok {
				return nil, fmt.Errorf("field %s: %w", k, errDrift)
			}
			cv, ok := record.ConvertIfFits(v, r.cols[j].Type)
			if !ok {
				return nil, fmt.Errorf("field %s: %w", k, errDrift)
			}
			row[j] = cv
		}
		// The metadata columns are crmsync's, whatever a record carries under their names.
		if hasExtracted {
			row[extracted] = r.started
		}
		if hasDeleted {
			row[deleted] = nil
		}
		rows[i] = row
	}
	return rows, nil
}

func (r *streamRun) evolve(ctx context.Context, recs []record.Record) error {
	var want []catalog.Column
	wantIdx := map[string]int{}
	for _, rec := range recs {
		for k, v := range rec {
			if v == nil {
				continue // a null says nothing about the type
			}
			k = destination.FieldColumn(k)
			if j, ok := wantIdx[k]; ok {
				if !record.Fits(v, want[j].Type) {
					want[j].Type = catalog.Widen(want[j].Type, record.Infer(v))
				}
				continue
			}
			i, ok := r.colIdx[k]
			if ok && record.Fits(v, r.cols[i].Type) {
				continue
			}
			c := catalog.Column{Name: k, Type: record.Infer(v)}
			if ok {
				c.Type = catalog.Widen(r.cols[i].Type, c.Type)
			}
			wantIdx[k] = len(want)
			want = append(want, c)
		}
	}
	if len(want) == 0 {
		return nil
	}
	r.opts.Logger.Info("schema drift: evolving table", "stream", r.stream.Name, "columns", len(want))
	cols, err := r.dst.Prepare(ctx, r.table, want)
	if err != nil {
		return err
	}
	r.setColumns(cols)
	return nil
}

// checkSchemaVersion compares the schema version the table was written with to the source's.
// An older one is migrated by reading the stream again from the start date (upserts bring
// every row to the new shape; new columns arrive as drift). A newer one was written by a newer
// crmsync, whose rows this one could damage: the stream is refused. Caller: run, first.
func (r *streamRun) checkSchemaVersion(rep *StreamReport) error {
	had, want := r.prev.SchemaVersion, r.cat.SchemaVersion
	switch {
	case had == 0 || had == want:
		return nil
	case had > want:
		return fmt.Errorf("table %s was written by a newer crmsync (schema version %d; this one writes %d): upgrade crmsync, or sync into another --schema", r.stream.Name, had, want)
	}
	if r.stream.Method != catalog.FullTable {
		r.prev.Bookmark = time.Time{}
		rep.Notes = append(rep.Notes, fmt.Sprintf("schema version %d → %d: reading again from the start date", had, want))
	}
	return nil
}
