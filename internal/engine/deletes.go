package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/record"
	"github.com/crmsync/crmsync/internal/source"
)

// DeleteMode is what a deletion in the source does to the table.
type DeleteMode string

const (
	// DeletesSoft marks the rows of deleted records (destination.DeletedAtColumn); the default.
	DeletesSoft DeleteMode = "soft"
	// DeletesHard removes them.
	DeletesHard DeleteMode = "hard"
	// DeletesOff captures no deletions (a destination that keeps no rows: a Singer stream).
	DeletesOff DeleteMode = "off"
)

// DeletesReport says how a stream's deletions were captured in one sync.
type DeletesReport struct {
	// How: "event log", "id sweep", "not due" (a sweep ran less than ReconcileEvery ago),
	// "first sync" (nothing stored to check), or "" when the stream captures none.
	How string
	// Marked counts the rows of deleted records marked (or removed); Reread the records
	// read again because the source announced late edits of them.
	Marked, Reread int64
	// Requests is what capturing the deletions cost.
	Requests int64
	// CheckedAt is the instant (API clock) up to which deletions are reflected in the table
	// after this sync: for a sweep, when the last one started.
	CheckedAt time.Time
}

// captureDeletes runs before a stream's incremental read: it marks the rows of records
// deleted since the last check, through the source's change feed or an id sweep, and
// queues the new check instant, committed with the marks (see flushLocked).
func (r *streamRun) captureDeletes(ctx context.Context, rep *StreamReport) error {
	s := r.stream
	if r.opts.Deletes == DeletesOff || s.Method == catalog.FullTable || s.Deletes == catalog.DeletesNotCaptured {
		return nil
	}
	now := r.apiNow
	if r.prev.LastSyncAt.IsZero() && r.prev.Bookmark.IsZero() {
		rep.Deletes.How = "first sync"
		r.setChecked(now)
		return nil
	}
	meter := &source.Meter{}
	ctx = source.WithMeter(ctx, meter)
	defer func() {
		rep.Deletes.Requests = meter.Requests()
		r.meter.AddWait(meter.Waited()) // the pass's waits are the stream's too
	}()
	since := r.prev.DeletesCheckedAt
	switch s.Deletes {
	case catalog.DeletesByEvents:
		feed, ok := r.src.(source.DeletionFeed)
		if !ok {
			return fmt.Errorf("%s: the source reads no change feed", s.Name)
		}
		if since.IsZero() {
			rep.Notes = append(rep.Notes, "deletions were not checked before: swept the ids instead of reading the event log")
			return r.sweep(ctx, rep, now)
		}
		through, err := feed.ReadDeletions(ctx, s, source.Window{From: since, To: now}, deletionEmitter{r: r, rep: rep})
		if errors.Is(err, source.ErrFeedLapsed) {
			rep.Notes = append(rep.Notes, fmt.Sprintf("the event log no longer reaches back to the last check (%s): swept the ids instead", since.Format(time.RFC3339)))
			return r.sweep(ctx, rep, now)
		}
		if err != nil {
			return fmt.Errorf("reading deletions: %w", err)
		}
		rep.Deletes.How = string(catalog.DeletesByEvents)
		r.setChecked(through)
		return nil
	case catalog.DeletesBySweep:
		// 0 sweeps on every sync: a check committed by a sync that began in the same second
		// (a killed one) can read as later than this sync's start in the API's clock.
		if !since.IsZero() && r.opts.ReconcileEvery > 0 && now.Sub(since) < r.opts.ReconcileEvery {
			rep.Deletes.How = "not due"
			return nil
		}
		return r.sweep(ctx, rep, now)
	}
	return fmt.Errorf("%s: unknown way of capturing deletes %q", s.Name, s.Deletes)
}

// sweep lists every id the source has and marks the live rows whose ids are not among them.
// Nothing is marked until the whole listing is read: an interrupted sweep marks nothing and
// leaves the check instant, so the next sync sweeps again.
func (r *streamRun) sweep(ctx context.Context, rep *StreamReport, now time.Time) error {
	s := r.stream
	rep.Deletes.How = string(catalog.DeletesBySweep)
	kl, ok := r.dst.(destination.KeyLister)
	if !ok {
		rep.Notes = append(rep.Notes, "deletions not captured: the destination cannot list its rows")
		return nil
	}
	sw, ok := r.src.(source.Sweeper)
	if !ok {
		return fmt.Errorf("%s: the source cannot list ids", s.Name)
	}
	seen := map[string]struct{}{}
	collect := idCollector(func(rec record.Record) {
		vals := make([]any, len(s.PrimaryKey))
		for i, k := range s.PrimaryKey {
			vals[i] = rec[k]
		}
		if k, ok := r.keyString(vals); ok {
			seen[k] = struct{}{}
		}
	})
	if err := sw.Sweep(ctx, s, collect); err != nil {
		return fmt.Errorf("sweeping ids: %w", err)
	}
	var gone [][]any
	err := kl.LiveKeys(ctx, r.table, func(key []any) error {
		if k, ok := r.keyString(key); ok {
			if _, live := seen[k]; !live {
				gone = append(gone, key)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sweeping ids: %w", err)
	}
	for _, key := range gone {
		if err := r.Deleted(ctx, key...); err != nil {
			return err
		}
	}
	r.setChecked(now)
	return nil
}

// setChecked queues the new check instant: the next flush commits it with the marks before it.
func (r *streamRun) setChecked(t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checked = t
}

// Deleted implements source.DeletionEmitter: the rows of key are marked with the next batch.
func (r *streamRun) Deleted(ctx context.Context, key ...any) error {
	typed, ok := r.typedKey(key)
	if !ok {
		return fmt.Errorf("%s: deleted record with an unusable key %v", r.stream.Name, key)
	}
	k, _ := r.keyString(typed)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.deletes == nil {
		r.deletes = map[string][]any{}
	}
	r.deletes[k] = typed
	if len(r.pending)+len(r.deletes) >= r.opts.BatchSize {
		return r.flushLocked(ctx)
	}
	return r.flushIfDueLocked(ctx)
}

// forgetDeleted drops a queued mark of rec's key: the record came back after its deletion
// was learned, so it is live. Caller holds r.mu.
func (r *streamRun) forgetDeleted(rec record.Record) {
	if k, ok := r.recordKey(rec); ok {
		delete(r.deletes, k)
	}
}

// recordKey is keyString of a record's primary key values.
func (r *streamRun) recordKey(rec record.Record) (string, bool) {
	vals := make([]any, len(r.stream.PrimaryKey))
	for i, k := range r.stream.PrimaryKey {
		vals[i] = rec[k]
	}
	return r.keyString(vals)
}

// typedKey converts key values to the types of the primary key columns, as rows carry them.
func (r *streamRun) typedKey(key []any) ([]any, bool) {
	if len(key) != len(r.keyTypes) {
		return nil, false
	}
	out := make([]any, len(key))
	for i, v := range key {
		var ok bool
		if v == nil || r.keyTypes[i] == "" {
			return nil, false
		}
		if out[i], ok = record.ConvertIfFits(v, r.keyTypes[i]); !ok {
			return nil, false
		}
	}
	return out, true
}

// keyString encodes key values (as the API or the destination gives them) so equal keys are
// equal strings.
func (r *streamRun) keyString(key []any) (string, bool) {
	typed, ok := r.typedKey(key)
	if !ok {
		return "", false
	}
	var b strings.Builder
	for _, v := range typed {
		if t, ok := v.(time.Time); ok {
			v = t.UTC().Format(time.RFC3339Nano)
		}
		fmt.Fprintf(&b, "%T:%v\x00", v, v)
	}
	return b.String(), true
}

// deletionEmitter is the emitter of a deletion read: records it hands over (late edits) are
// stored like any other, but never move the bookmark.
type deletionEmitter struct {
	r   *streamRun
	rep *StreamReport
}

func (e deletionEmitter) Deleted(ctx context.Context, key ...any) error {
	return e.r.Deleted(ctx, key...)
}

func (e deletionEmitter) Record(ctx context.Context, rec record.Record) error {
	e.rep.Deletes.Reread++
	return e.r.Record(ctx, rec)
}

// idCollector is the emitter of an id sweep: it only notes the records' keys.
type idCollector func(record.Record)

func (c idCollector) Record(_ context.Context, rec record.Record) error {
	c(rec)
	return nil
}

func (idCollector) Checkpoint(context.Context, time.Time) error { return nil }
