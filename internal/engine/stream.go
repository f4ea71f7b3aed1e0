package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

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
	started time.Time

	table   destination.Table
	cols    []catalog.Column
	colIdx  map[string]int
	pending []record.Record
	// checkpoint is the newest bookmark the source has justified; it is committed with the
	// next flush, after the records emitted before it.
	checkpoint time.Time
	limit      time.Time // bookmarks never pass this: sync start − settle time
	lastFlush  time.Time
	replace    destination.Replacement
	rows       int64
	saved      state.Stream
}

func (r *streamRun) run(ctx context.Context) StreamReport {
	s := r.stream
	t0 := time.Now()
	rep := StreamReport{Stream: s.Name, Method: s.Method}
	log := r.opts.Logger.With("stream", s.Name)
	r.table = destination.Table{Source: r.cat.Source, Stream: s}
	r.limit = r.started.Add(-s.Settle)
	r.saved = r.prev
	r.lastFlush = time.Now()

	var w source.Window
	if s.Method != catalog.FullTable {
		var clipped bool
		w, clipped = Window(s, r.opts.StartDate, r.prev.Bookmark, r.started)
		rep.From, rep.To = w.From, w.To
		if clipped {
			note := fmt.Sprintf("the API keeps only %d days of history: reading from %s instead of the start date or bookmark", int(s.MaxHistory.Hours()/24), w.From.Format(time.RFC3339))
			rep.Notes = append(rep.Notes, note)
			log.Warn("history limit clips the window", "from", w.From)
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
	rep.Duration = time.Since(t0)
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
		if err := r.src.Read(ctx, s, w, r); err != nil {
			r.replace.Abort(context.WithoutCancel(ctx))
			return err
		}
		if err := r.flush(ctx); err != nil {
			r.replace.Abort(context.WithoutCancel(ctx))
			return err
		}
		r.saved = state.Stream{SchemaVersion: r.cat.SchemaVersion, LastSyncAt: r.started}
		return r.replace.Commit(ctx, r.saved)
	}

	if !w.From.Before(w.To) {
		return nil // bookmark at the sync start: nothing can have changed since
	}
	readErr := r.src.Read(ctx, s, w, r)
	if readErr == nil {
		// The whole window was read: every row before its end is handed over.
		r.checkpoint = w.To
	}
	// Rows read before a failure are real; commit them with the last bookmark they justify.
	// The write must survive the cancellation that may have caused the failure.
	flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := r.flush(flushCtx); err != nil {
		if readErr != nil {
			return fmt.Errorf("%w (and committing the rows read before it failed: %v)", readErr, err)
		}
		return err
	}
	return readErr
}

// Record implements source.Emitter.
func (r *streamRun) Record(ctx context.Context, rec record.Record) error {
	r.pending = append(r.pending, rec)
	if len(r.pending) >= r.opts.BatchSize {
		return r.flush(ctx)
	}
	return nil
}

// Checkpoint implements source.Emitter.
func (r *streamRun) Checkpoint(ctx context.Context, c time.Time) error {
	if c.After(r.checkpoint) {
		r.checkpoint = c
	}
	if len(r.pending) > 0 && time.Since(r.lastFlush) >= r.opts.FlushInterval {
		return r.flush(ctx)
	}
	return nil
}

func (r *streamRun) flush(ctx context.Context) error {
	r.lastFlush = time.Now()
	st := flushState(r.saved, r.checkpoint, r.limit, r.cat.SchemaVersion, r.started)
	if len(r.pending) == 0 && (r.replace != nil || st.Bookmark.Equal(r.saved.Bookmark)) {
		return nil
	}
	b, err := r.batch(ctx)
	if err != nil {
		return err
	}
	if r.replace != nil {
		err = r.replace.Write(ctx, b)
	} else {
		err = r.dst.Write(ctx, b, st)
	}
	if err != nil {
		return err
	}
	if r.replace == nil {
		r.saved = st
	}
	r.rows += int64(len(b.Rows))
	r.pending = r.pending[:0]
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
func (r *streamRun) batch(ctx context.Context) (destination.Batch, error) {
	if err := r.evolve(ctx); err != nil {
		return destination.Batch{}, err
	}
	rows := make([][]any, len(r.pending))
	extracted := r.started
	for i, rec := range r.pending {
		row := make([]any, len(r.cols))
		for j, c := range r.cols {
			switch c.Name {
			case destination.ExtractedAtColumn:
				row[j] = extracted
			case destination.DeletedAtColumn:
				row[j] = nil
			default:
				v, err := record.Convert(rec[c.Name], c.Type)
				if err != nil {
					return destination.Batch{}, fmt.Errorf("field %s: %w", c.Name, err)
				}
				row[j] = v
			}
		}
		rows[i] = row
	}
	return destination.Batch{Table: r.table, Columns: r.cols, Rows: rows}, nil
}

func (r *streamRun) evolve(ctx context.Context) error {
	var want []catalog.Column
	wantIdx := map[string]int{}
	for _, rec := range r.pending {
		for k, v := range rec {
			if v == nil {
				continue // a null says nothing about the type
			}
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
