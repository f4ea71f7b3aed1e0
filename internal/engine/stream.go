package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/customfield"
	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/record"
	"github.com/crmsync/crmsync/internal/source"
	"github.com/crmsync/crmsync/internal/state"
)

// streamRun syncs one stream. It is the source's Emitter: records pile up in a batch that is
// flushed when full, when FlushInterval has passed, and at the end.
type streamRun struct {
	src    source.Source
	dst    destination.Destination
	opts   Options
	cat    catalog.Catalog
	stream catalog.Stream
	prev   state.Stream
	// startDate is where the table's replica begins (chooseStartDate).
	startDate time.Time
	started   time.Time // local clock: LastSyncAt, _crmsync_extracted_at
	apiNow    time.Time // the sync start in the API's clock: window end, bookmark limit
	// meter gathers the read's rate-limit waits and the record count the API announces.
	meter source.Meter

	table  destination.Table
	cols   []catalog.Column
	colIdx map[string]int
	// fieldIdx finds a record field's column (destination.FieldColumn, then colIdx) in one
	// lookup; filled as fields are met. Its keys are copies: decoded keys share their page.
	fieldIdx map[string]int
	// cellBuf and rowBuf are the last batch's row storage, reused by the next: a destination is
	// done with a batch's rows when its Write returns.
	cellBuf []any
	rowBuf  [][]any
	// custom is the stream's custom-field columns; fixed marks them in cols (setColumns): a
	// value that does not fit one is set aside, as in a timestamp column, not widening it.
	custom *customfield.Table
	fixed  []bool
	// refill holds the custom-field mappings of a table that gets them for the first time:
	// it is read again from its start date, and they are stored once that read succeeds.
	refill      []customfield.Mapping
	customStore destination.CustomFieldStore
	raw         []rawColumn // columns that keep a field as sent (setColumns)
	pending     []record.Record
	// pendingBytes is what the pending records hold (record.Size); pendingHeld is their share
	// of the sync's memory budget, released when their batch is written.
	pendingBytes int
	pendingHeld  int64
	budget       *semaphore.Weighted
	// checkpoint is the newest bookmark the source has justified; it is committed with the
	// next flush, after the records emitted before it.
	checkpoint time.Time
	limit      time.Time // bookmarks never pass this: sync start − settle time
	lastFlush  time.Time
	queued     time.Time // bookmark of the last queued batch
	// deletes are the keys of deleted records waiting for the next batch (by keyString);
	// checked is the deletion check instant the next batch commits, queuedChecked the last
	// one queued (see captureDeletes).
	deletes                map[string][]any
	checked, queuedChecked time.Time
	// keyTypes are the primary key columns' types, fixed before the writer starts (which
	// owns cols): deleted keys are converted to them.
	keyTypes []catalog.Type
	// mu guards pending, pendingBytes, deletes, checkpoint, checked, windows, lastFlush and the queued
	// values: the slices of a split read emit concurrently.
	mu      sync.Mutex
	windows []windowProgress
	// heads drop the copies of records two slices of a split read both read (see sliceHeads).
	heads   *sliceHeads
	replace destination.Replacement

	// The writer goroutine owns cols, colIdx, rows and saved while it runs.
	jobs       chan job
	writerDone chan struct{}
	writeErr   atomic.Pointer[error]
	rows       int64
	marked     int64       // rows of deleted records marked (or removed)
	issues     valueIssues // of the rows committed
	saved      state.Stream
}

func (r *streamRun) run(ctx context.Context) StreamReport {
	defer func() { // records a failed read never queued give their memory back to the other streams
		r.mu.Lock()
		r.release(r.pendingHeld)
		r.pendingHeld = 0
		r.mu.Unlock()
	}()
	s := r.stream
	t0 := r.opts.Now()
	rep := StreamReport{Stream: s.Name, Method: s.Method}
	log := r.opts.Logger.With("stream", s.Name)
	if err := r.checkSchemaVersion(&rep); err != nil {
		rep.Err = err
		log.Error("stream refused", "err", err)
		return rep
	}
	ctx = source.WithMeter(ctx, &r.meter)
	r.table = destination.Table{Source: r.cat.Source, Stream: s}
	r.limit = r.apiNow.Add(-s.Settle)
	r.saved = r.prev
	r.queued = r.prev.Bookmark
	r.checked, r.queuedChecked = r.prev.DeletesCheckedAt, r.prev.DeletesCheckedAt
	r.lastFlush = r.opts.Now()

	if err := r.chooseStartDate(&rep); err != nil {
		rep.Err = err
		log.Error("stream refused", "err", err)
		return rep
	}
	if len(r.refill) > 0 && !r.prev.Bookmark.IsZero() {
		r.prev.Bookmark = time.Time{}
		rep.Notes = append(rep.Notes, "custom-field columns are new to this table: reading it again from the start date to fill them")
	}
	var w source.Window
	if s.Method != catalog.FullTable {
		var clipped bool
		w, clipped = Window(s, r.startDate, r.prev.Bookmark, r.apiNow)
		rep.From, rep.To = w.From, w.To
		if clipped {
			note := fmt.Sprintf("the API keeps only %d days of history: reading from %s instead of the start date or bookmark", int(s.MaxHistory.Hours()/24), w.From.Format(time.RFC3339))
			rep.Notes = append(rep.Notes, note)
			log.Info("history limit clips the window", "from", w.From)
		}
	}

	err := r.read(ctx, w, &rep)
	var unavailable *source.Unavailable
	if errors.As(err, &unavailable) {
		rep.Notes = append(rep.Notes, "skipped: "+unavailable.Error())
		log.Warn("stream skipped", "reason", unavailable.Reason)
		err = nil
	} else if err == nil && len(r.refill) > 0 {
		err = r.customStore.SaveCustomFields(ctx, r.cat.Source, r.refill, customfield.Changes{})
	}
	rep.Rows = r.rows
	rep.Unparsed, rep.Skipped = r.issues.unparsed, r.issues.skipped
	if n := r.issues.unparsed; n > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("values that did not fit their column (timestamps, dates, custom fields): %d, stored as NULL with the raw values in %s (e.g. %s)", n, destination.UnparsedColumn, r.issues.unparsedSample))
		log.Warn("values did not fit their column", "values", n, "column", destination.UnparsedColumn, "sample", r.issues.unparsedSample)
	}
	if n := r.issues.skipped; n > 0 {
		key := strings.Join(s.PrimaryKey, ", ")
		rep.Notes = append(rep.Notes, fmt.Sprintf("records without a primary key (%s): %d, skipped, not stored (e.g. %s)", key, n, r.issues.skippedSample))
		log.Warn("records without a primary key skipped", "records", n, "key", key, "sample", r.issues.skippedSample)
	}
	rep.Bookmark = r.saved.Bookmark
	rep.Deletes.Marked, rep.Deletes.CheckedAt = r.marked, r.saved.DeletesCheckedAt
	rep.Duration = r.opts.Now().Sub(t0)
	rep.RateLimitWait = r.meter.Waited()
	if err != nil {
		rep.Err = err
		log.Error("stream failed", "rows", r.rows, "err", err)
	} else {
		log.Info("stream done", "rows", r.rows, "duration", rep.Duration.Round(time.Millisecond))
	}
	return rep
}

func (r *streamRun) read(ctx context.Context, w source.Window, rep *StreamReport) error {
	s := r.stream
	declared := append(append(append([]catalog.Column{}, s.Columns...), r.custom.Columns()...), destination.MetadataColumns...)
	cols, err := r.dst.Prepare(ctx, r.table, declared)
	if err != nil {
		return err
	}
	r.setColumns(cols)
	r.keyTypes = make([]catalog.Type, len(s.PrimaryKey))
	for i, k := range s.PrimaryKey {
		if j, ok := r.colIdx[k]; ok {
			r.keyTypes[i] = r.cols[j].Type
		}
	}

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

	// A first sync loads an empty table without its key index where the destination can (see
	// destination.BulkLoader), and has the index built once the read is over.
	loader, _ := r.dst.(destination.BulkLoader)
	loading := false
	if loader != nil && r.prev.Bookmark.IsZero() {
		if loading, err = loader.BeginLoad(ctx, r.table); err != nil {
			return err
		}
	}

	// Even a bookmark at (or, after a clock change, past) the sync's start is read from: the
	// start is only known to a second or two of the API's clock, and the read is unbounded.
	// Rows read before a failure are real; they are committed with the last bookmark they
	// justify. Those writes must survive the cancellation that may have caused the failure.
	writeCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	r.startWriter(writeCtx)
	// Deletions first: the rows they mark were all stored by earlier syncs, so a sweep
	// cannot mistake a row this sync adds for a deleted one. A failure to capture them does
	// not keep the table from its new rows; the stream still fails.
	delErr := r.captureDeletes(ctx, rep)
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
	// Once cancelled, the index is left to the next sync (which builds it first): a stop
	// should not wait for a sort of the whole table.
	if loading && ctx.Err() == nil {
		t0 := r.opts.Now()
		if err := loader.FinishLoad(ctx, r.table); err != nil {
			writeErr = errors.Join(writeErr, err)
		} else {
			r.opts.Logger.Debug("key index built", "stream", s.Name, "rows", r.rows, "duration", r.opts.Now().Sub(t0).Round(time.Millisecond))
		}
	}
	if readErr == nil {
		readErr = delErr
	}
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
	held    int64   // of the memory budget, released once the batch is written
	deleted [][]any // keys of deleted records, marked after the records are stored
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
				r.release(j.held)
				continue // drain: after a failure nothing more may be committed
			}
			err := r.write(ctx, j)
			r.release(j.held)
			if err != nil {
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
	r.heads = newSliceHeads(r.stream, n, r.recordKey)
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
	if e.r.heads != nil && e.r.heads.repeated(e.i, rec) {
		return nil // the next slice handed it over (see sliceHeads)
	}
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
	size := rec.Size() // outside the lock the parallel slices of a read share
	held, err := r.hold(ctx, size)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.deletes) > 0 {
		r.forgetDeleted(rec)
	}
	r.pending = append(r.pending, rec)
	r.pendingBytes += size
	r.pendingHeld += held
	if len(r.pending)+len(r.deletes) >= r.opts.BatchSize || r.pendingBytes >= r.opts.BatchBytes {
		return r.flushLocked(ctx)
	}
	// A stream that never checkpoints (newest-first or unsorted listings) still commits its
	// rows every FlushInterval, with the bookmark it had.
	return r.flushIfDueLocked(ctx)
}

// hold takes a record's share of the sync's memory budget (at most all of it, so a record
// bigger than the budget still passes alone). When the budget is spent, the stream first
// queues what it holds — so that no stream waits for memory its own pending rows hold — and
// then waits for the writes of every stream to free some.
func (r *streamRun) hold(ctx context.Context, size int) (int64, error) {
	if r.budget == nil {
		return 0, nil
	}
	n := min(int64(size), int64(r.opts.MemoryBudget))
	if r.budget.TryAcquire(n) {
		return n, nil
	}
	if err := r.flush(ctx); err != nil {
		return 0, err
	}
	if err := r.budget.Acquire(ctx, n); err != nil {
		return 0, err
	}
	return n, nil
}

// release gives back budget held by records that are written or given up.
func (r *streamRun) release(n int64) {
	if r.budget != nil && n > 0 {
		r.budget.Release(n)
	}
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
	if len(r.pending)+len(r.deletes) > 0 && r.opts.Now().Sub(r.lastFlush) >= r.opts.FlushInterval {
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
	st := flushState(r.prev, r.checkpoint, r.limit, r.cat.SchemaVersion, r.started, r.startDate)
	st.DeletesCheckedAt = r.checked
	if len(r.pending) == 0 && len(r.deletes) == 0 && (r.replace != nil || (st.Bookmark.Equal(r.queued) && st.DeletesCheckedAt.Equal(r.queuedChecked))) {
		return nil
	}
	r.queued, r.queuedChecked = st.Bookmark, st.DeletesCheckedAt
	deleted := make([][]any, 0, len(r.deletes))
	for _, k := range r.deletes {
		deleted = append(deleted, k)
	}
	select {
	case r.jobs <- job{records: r.pending, held: r.pendingHeld, deleted: deleted, state: st}:
	case <-ctx.Done():
		return ctx.Err()
	}
	r.pending, r.pendingBytes, r.pendingHeld = make([]record.Record, 0, r.opts.BatchSize), 0, 0
	clear(r.deletes)
	return nil
}

// write converts and stores one batch; it runs on the writer goroutine only.
func (r *streamRun) write(ctx context.Context, j job) error {
	for _, rec := range j.records {
		r.custom.Apply(rec)
	}
	b, issues, err := r.batch(ctx, j.records)
	if err != nil {
		return err
	}
	b.Deleted, b.DeletedAt, b.HardDelete = j.deleted, r.started, r.opts.Deletes == DeletesHard
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
	r.marked += int64(len(b.Deleted))
	r.issues.add(issues)
	if r.opts.Progress != nil {
		r.opts.Progress(StreamProgress{Stream: r.stream.Name, Rows: r.rows, Expected: r.meter.Expected()})
	}
	return nil
}

func (r *streamRun) setColumns(cols []catalog.Column) {
	r.cols = cols
	r.colIdx = make(map[string]int, len(cols))
	for i, c := range cols {
		r.colIdx[c.Name] = i
	}
	r.fieldIdx = make(map[string]int, len(cols))
	r.fixed = make([]bool, len(cols))
	for _, c := range r.custom.Columns() {
		if j, ok := r.colIdx[c.Name]; ok {
			r.fixed[j] = true
		}
	}
	r.raw = r.raw[:0]
	for _, c := range r.stream.Columns {
		if j, ok := r.colIdx[c.Raw]; ok && c.Raw != "" {
			r.raw = append(r.raw, rawColumn{field: c.Name, col: j})
		}
	}
}

// batch converts the pending records to typed rows. Fields the table lacks (schema drift) and
// values that do not fit their column's type first evolve the table: columns are added and
// types widened, never dropped or narrowed. A timestamp column is never widened: a value
// that does not parse there is set aside (see convert).
func (r *streamRun) batch(ctx context.Context, recs []record.Record) (destination.Batch, valueIssues, error) {
	rows, issues, err := r.convert(recs)
	if errors.Is(err, errDrift) {
		if err := r.evolve(ctx, recs); err != nil {
			return destination.Batch{}, valueIssues{}, err
		}
		rows, issues, err = r.convert(recs)
	}
	if err != nil {
		return destination.Batch{}, valueIssues{}, err
	}
	return destination.Batch{Table: r.table, Columns: r.cols, Rows: rows}, issues, nil
}

// errDrift says a record has a field the table lacks or a value its column cannot hold.
var errDrift = errors.New("the table's columns do not fit the record")

// valueIssues counts what conversion set aside, with the first of each kind as a sample:
// values that did not parse in their timestamp column (the row stores NULL there and the raw
// value in destination.UnparsedColumn), and records skipped for lack of a primary key value.
type valueIssues struct {
	unparsed, skipped             int64
	unparsedSample, skippedSample string
}

func (v *valueIssues) add(o valueIssues) {
	if v.unparsedSample == "" {
		v.unparsedSample = o.unparsedSample
	}
	if v.skippedSample == "" {
		v.skippedSample = o.skippedSample
	}
	v.unparsed += o.unparsed
	v.skipped += o.skipped
}

// convert turns records into rows in the table's column order, visiting only the fields each
// record has (sparse records, such as Close's activity types, fill few of the columns).
//
// A value that does not parse in a timestamp column ("yesterday", month 13, "") leaves the
// column typed: the row holds NULL there — which the destinations' upserts count as older
// than any valid cursor, so a later valid version still replaces the row — and the raw value
// goes to destination.UnparsedColumn as {"field": value}. Widening the column to text instead
// would make "yesterday" sort after every real date, and block every later update of the row.
// A record lacking a value of its primary key cannot be stored as a row of its table: it is
// skipped. Both are counted in the issues returned.
func (r *streamRun) convert(recs []record.Record) ([][]any, valueIssues, error) {
	var issues valueIssues
	n := len(r.cols)
	extracted, hasExtracted := r.colIdx[destination.ExtractedAtColumn]
	deleted, hasDeleted := r.colIdx[destination.DeletedAtColumn]
	unparsedAt, hasUnparsed := r.colIdx[destination.UnparsedColumn]
	if cap(r.cellBuf) < len(recs)*n {
		r.cellBuf = make([]any, len(recs)*n) // one allocation for the batch's rows
	}
	cells := r.cellBuf[:len(recs)*n]
	clear(cells)
	rows := r.rowBuf[:0]
	for _, rec := range recs {
		if !r.hasKey(rec) {
			issues.skip(rec)
			continue
		}
		row := cells[len(rows)*n : (len(rows)+1)*n : (len(rows)+1)*n]
		var unparsed map[string]any
		for k, v := range rec {
			if v == nil {
				continue // a null fits any column, and a column it lacks is NULL anyway
			}
			j, ok := r.column(k)
			if !ok {
				return nil, issues, fmt.Errorf("field %s: %w", k, errDrift)
			}
			cv, ok := record.ConvertIfFits(v, r.cols[j].Type)
			switch {
			case ok:
				row[j] = cv
			case r.cols[j].Type.Temporal() || r.fixed[j]:
				if unfit, ok := v.(record.Unfit); ok {
					v = unfit.Value
				}
				if unparsed == nil {
					unparsed = map[string]any{}
				}
				unparsed[r.cols[j].Name] = v
			default:
				return nil, issues, fmt.Errorf("field %s: %w", k, errDrift)
			}
		}
		if err := r.keepRaw(rec, row); err != nil {
			return nil, issues, err
		}
		if !r.rowHasKey(row) { // a key field that is an unparsable timestamp
			clear(row)
			issues.skip(rec)
			continue
		}
		if len(unparsed) > 0 {
			issues.unparsed += int64(len(unparsed))
			if issues.unparsedSample == "" {
				issues.unparsedSample = r.unparsedSample(rec, unparsed)
			}
			if hasUnparsed {
				b, err := json.Marshal(unparsed)
				if err != nil {
					return nil, issues, err
				}
				row[unparsedAt] = string(b)
			}
		} else if hasUnparsed {
			row[unparsedAt] = nil // crmsync's column, whatever a record carries under its name
		}
		// The metadata columns are crmsync's, whatever a record carries under their names.
		if hasExtracted {
			row[extracted] = r.started
		}
		if hasDeleted {
			row[deleted] = nil
		}
		rows = append(rows, row)
	}
	r.rowBuf = rows
	return rows, issues, nil
}

// column is the index of the column a record field goes to.
func (r *streamRun) column(field string) (int, bool) {
	if j, ok := r.fieldIdx[field]; ok {
		return j, true
	}
	j, ok := r.colIdx[destination.FieldColumn(field)]
	if ok {
		r.fieldIdx[strings.Clone(field)] = j
	}
	return j, ok
}

// keepRaw fills the columns that keep a field as the API sent it (catalog.Column.Raw) beside
// its typed column; they are crmsync's, whatever a record carries under their names.
func (r *streamRun) keepRaw(rec record.Record, row []any) error {
	for _, c := range r.raw {
		row[c.col] = nil
		if v := rec[c.field]; v != nil {
			text, err := record.RawText(v)
			if err != nil {
				return fmt.Errorf("field %s: %w", c.field, err)
			}
			row[c.col] = text
		}
	}
	return nil
}

// rawColumn is a column that keeps a field as the API sent it (catalog.Column.Raw).
type rawColumn struct {
	field string
	col   int
}

// hasKey reports whether rec has a value for every field of the stream's primary key.
func (r *streamRun) hasKey(rec record.Record) bool {
	for _, k := range r.stream.PrimaryKey {
		if rec[k] == nil {
			return false
		}
	}
	return true
}

// rowHasKey reports whether a converted row holds a value in every primary key column.
func (r *streamRun) rowHasKey(row []any) bool {
	for _, k := range r.stream.PrimaryKey {
		if j, ok := r.colIdx[k]; !ok || row[j] == nil {
			return false
		}
	}
	return true
}

func (v *valueIssues) skip(rec record.Record) {
	v.skipped++
	if v.skippedSample == "" {
		b, err := json.Marshal(rec)
		if err != nil {
			b = []byte(fmt.Sprint(map[string]any(rec)))
		}
		v.skippedSample = clip(string(b))
	}
}

// unparsedSample names one value set aside: field, raw value and the record's key.
func (r *streamRun) unparsedSample(rec record.Record, unparsed map[string]any) string {
	fields := make([]string, 0, len(unparsed))
	for k := range unparsed {
		fields = append(fields, k)
	}
	slices.Sort(fields)
	raw, err := json.Marshal(unparsed[fields[0]])
	if err != nil {
		raw = []byte(fmt.Sprint(unparsed[fields[0]]))
	}
	key := make([]string, len(r.stream.PrimaryKey))
	for i, k := range r.stream.PrimaryKey {
		key[i] = fmt.Sprintf("%s %v", k, rec[k])
	}
	return clip(fmt.Sprintf("%s = %s (%s)", fields[0], raw, strings.Join(key, ", ")))
}

// clip shortens a sample for the report to about 200 bytes, at a character boundary.
func clip(s string) string {
	const max = 200
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
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
			if ok && (r.cols[i].Type.Temporal() || r.fixed[i] || record.Fits(v, r.cols[i].Type)) {
				continue // a timestamp, date or custom-field column is never widened: convert sets such values aside
			}
			c := catalog.Column{Name: strings.Clone(k), Type: record.Infer(v)} // k shares its page
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

// chooseStartDate settles where the table's replica begins: the start date it was first read
// from, kept in its state; the one given for a first sync or a full refresh. An earlier start
// date given for a table synced before is not read silently: the report says how to backfill.
func (r *streamRun) chooseStartDate(rep *StreamReport) error {
	given, kept := r.opts.StartDate, r.prev.StartDate
	switch {
	case r.opts.FullRefresh:
		r.prev.Bookmark = time.Time{}
		r.startDate = given
	case !kept.IsZero():
		r.startDate = kept
		if !given.IsZero() && given.Before(kept) && r.stream.Method != catalog.FullTable {
			rep.Notes = append(rep.Notes, fmt.Sprintf("the start date %s is before this table's first sync, which read from %s: "+
				"incremental syncs do not read earlier rows; to backfill, run once with --full-refresh", given.Format("2006-01-02"), kept.Format("2006-01-02")))
		}
	default: // a first sync, or a state written before start dates were kept
		r.startDate = given
	}
	if r.startDate.IsZero() && r.prev.Bookmark.IsZero() && r.stream.Method != catalog.FullTable {
		return errors.New("start_date: missing; this table has not been synced into this destination yet: set --start-date")
	}
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
