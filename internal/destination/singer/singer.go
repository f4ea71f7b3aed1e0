// Package singer is a destination that writes Singer messages (SCHEMA, RECORD, STATE,
// ACTIVATE_VERSION) to a stream, one JSON object per line, for the tap-crmsync binary. The
// engine drives it like any other destination: Prepare sends a table's SCHEMA (again when
// schema drift adds or widens a column), Write sends the batch's RECORDs and then a STATE
// message holding the bookmarks of every stream so far, so a STATE always follows the records
// it covers. A Full Table stream's records carry a table version that an ACTIVATE_VERSION
// message makes current once the whole table has been sent.
//
// The STATE value is documented in State: {"version": 1, "source": "close", "bookmarks":
// {"leads": <state.Marshal of the stream>}}.
package singer

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/record"
	"github.com/crmsync/crmsync/internal/state"
)

// StateVersion is the version of the STATE value's shape.
const StateVersion = 1

// State is the value of a STATE message, and what --state reads back:
//
//	{"version": 1, "source": "close", "bookmarks": {"leads": {"version": 1, "bookmark": "…", …}}}
//
// Each bookmark is a stream's state in the form the SQL destinations store (package state).
type State struct {
	Version   int                        `json:"version"`
	Source    string                     `json:"source"`
	Bookmarks map[string]json.RawMessage `json:"bookmarks"`
}

// ParseState reads a STATE value; empty input or {} is an empty state. A state of another
// source, or of a newer shape, is an error.
func ParseState(data []byte, source string) (state.Source, error) {
	out := state.Source{}
	if len(data) == 0 {
		return out, nil
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("state: not valid JSON: %w", err)
	}
	if s.Version == 0 && s.Source == "" && len(s.Bookmarks) == 0 {
		return out, nil // {}: no state yet
	}
	if s.Version < 1 || s.Version > StateVersion {
		return nil, fmt.Errorf("state: version %d is not supported by this release (supports 1..%d)", s.Version, StateVersion)
	}
	if s.Source != source {
		return nil, fmt.Errorf("state: it is the state of source %q, not %q", s.Source, source)
	}
	for name, raw := range s.Bookmarks {
		st, err := state.Unmarshal(raw)
		if err != nil {
			return nil, fmt.Errorf("state of stream %s: %w", name, err)
		}
		out[name] = st
	}
	return out, nil
}

// Fields says which fields of a stream go into its records: Excluded fields are left out of
// SCHEMA and RECORD messages. The primary key, replication key and version field are never
// excluded.
type Fields struct {
	Excluded map[string]bool
}

// Options configure a destination.
type Options struct {
	// State is the state the sync resumes from (from --state).
	State state.Source
	// Fields by stream name; a stream missing has every field.
	Fields map[string]Fields
	// Now stamps time_extracted and table versions; nil: time.Now.
	Now func() time.Time
}

// Destination writes Singer messages to one writer. It is safe for concurrent use: each
// message group (a batch's records and its state) is written whole.
type Destination struct {
	opts Options

	mu        sync.Mutex
	w         *bufio.Writer
	bookmarks map[string]json.RawMessage
	schemas   map[string][]catalog.Column // by stream: the columns sent in its last SCHEMA
	err       error                       // the first write error: later writes fail with it
}

// New returns a destination writing to w.
func New(w io.Writer, opts Options) *Destination {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	d := &Destination{opts: opts, w: bufio.NewWriterSize(w, 1<<16), bookmarks: map[string]json.RawMessage{}, schemas: map[string][]catalog.Column{}}
	for name, st := range opts.State {
		if raw, err := state.Marshal(st); err == nil {
			d.bookmarks[name] = raw
		}
	}
	return d
}

// Lock implements destination.Destination: a tap holds nothing to lock.
func (d *Destination) Lock(ctx context.Context, source string) (func(), error) {
	return func() {}, nil
}

// Claim implements destination.Destination: a tap's output belongs to no one else.
func (d *Destination) Claim(ctx context.Context, tables []destination.Table) error { return nil }

// State implements destination.Destination: the state given at start.
func (d *Destination) State(ctx context.Context, source string) (state.Source, error) {
	out := state.Source{}
	for k, v := range d.opts.State {
		out[k] = v
	}
	return out, nil
}

// Prepare implements destination.Destination: it sends the table's SCHEMA whenever its
// columns change.
func (d *Destination) Prepare(ctx context.Context, t destination.Table, cols []catalog.Column) ([]catalog.Column, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	prev, sent := d.schemas[t.Stream.Name]
	merged, added, widened := catalog.Merge(prev, cols)
	if sent && len(added) == 0 && len(widened) == 0 {
		return append([]catalog.Column(nil), merged...), nil
	}
	d.schemas[t.Stream.Name] = merged
	msg := map[string]any{
		"type":           "SCHEMA",
		"stream":         t.Stream.Name,
		"schema":         Schema(merged, d.excluded(t.Stream)),
		"key_properties": KeyProperties(t.Stream),
	}
	if t.Stream.CursorField != "" {
		msg["bookmark_properties"] = []string{t.Stream.CursorField}
	}
	if err := d.emit(msg); err != nil {
		return nil, err
	}
	return append([]catalog.Column(nil), merged...), d.flush()
}

// excluded is the set of fields left out of s's messages.
func (d *Destination) excluded(s catalog.Stream) map[string]bool {
	f := d.opts.Fields[s.Name].Excluded
	if len(f) == 0 {
		return nil
	}
	out := map[string]bool{}
	for k, v := range f {
		if v && !Automatic(s, k) {
			out[k] = true
		}
	}
	return out
}

// Write implements destination.Destination: the batch's RECORDs, then STATE.
func (d *Destination) Write(ctx context.Context, b destination.Batch, st state.Stream) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.records(b, 0); err != nil {
		return err
	}
	if err := d.saveState(b.Table, st); err != nil {
		return err
	}
	return d.flush()
}

// records sends b's rows; version, when not zero, is the table version they belong to.
func (d *Destination) records(b destination.Batch, version int64) error {
	excluded := d.excluded(b.Table.Stream)
	extracted := d.opts.Now().UTC().Format(time.RFC3339Nano)
	for _, row := range b.Rows {
		rec := make(map[string]any, len(b.Columns))
		for i, c := range b.Columns {
			if excluded[c.Name] || i >= len(row) {
				continue
			}
			rec[c.Name] = Value(c.Type, row[i])
		}
		msg := map[string]any{"type": "RECORD", "stream": b.Table.Stream.Name, "record": rec, "time_extracted": extracted}
		if version != 0 {
			msg["version"] = version
		}
		if err := d.emit(msg); err != nil {
			return err
		}
	}
	return nil
}

// saveState records st as the stream's bookmark and sends the STATE of every stream.
func (d *Destination) saveState(t destination.Table, st state.Stream) error {
	raw, err := state.Marshal(st)
	if err != nil {
		return err
	}
	d.bookmarks[t.Stream.Name] = raw
	return d.emit(map[string]any{"type": "STATE", "value": State{Version: StateVersion, Source: t.Source, Bookmarks: d.bookmarks}})
}

// Replace implements destination.Destination: the records of the new table version follow,
// and Commit activates it.
func (d *Destination) Replace(ctx context.Context, t destination.Table) (destination.Replacement, error) {
	return &replacement{d: d, t: t, version: d.opts.Now().UnixMilli()}, nil
}

type replacement struct {
	d       *Destination
	t       destination.Table
	version int64
}

func (r *replacement) Write(ctx context.Context, b destination.Batch) error {
	r.d.mu.Lock()
	defer r.d.mu.Unlock()
	if err := r.d.records(b, r.version); err != nil {
		return err
	}
	return r.d.flush()
}

func (r *replacement) Commit(ctx context.Context, st state.Stream) error {
	r.d.mu.Lock()
	defer r.d.mu.Unlock()
	if err := r.d.emit(map[string]any{"type": "ACTIVATE_VERSION", "stream": r.t.Stream.Name, "version": r.version}); err != nil {
		return err
	}
	if err := r.d.saveState(r.t, st); err != nil {
		return err
	}
	return r.d.flush()
}

// Abort sends nothing: a target keeps the table version it had, since the new one is never
// activated.
func (r *replacement) Abort(ctx context.Context) error { return nil }

// Close flushes what is buffered.
func (d *Destination) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.flush()
}

// emit writes one message line. Caller holds d.mu.
func (d *Destination) emit(msg any) error {
	if d.err != nil {
		return d.err
	}
	line, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("singer: %w", err)
	}
	line = append(line, '\n')
	if _, err := d.w.Write(line); err != nil {
		d.err = fmt.Errorf("singer: writing output: %w", err)
	}
	return d.err
}

func (d *Destination) flush() error {
	if d.err != nil {
		return d.err
	}
	if err := d.w.Flush(); err != nil {
		d.err = fmt.Errorf("singer: writing output: %w", err)
	}
	return d.err
}

// Value is a batch value as a record carries it: instants as RFC 3339 strings in UTC, days as
// YYYY-MM-DD, JSON text as the JSON value itself (never a string of JSON text), numbers that
// JSON cannot hold (NaN, ±Inf) as null.
func Value(t catalog.Type, v any) any {
	switch x := v.(type) {
	case string:
		if t == catalog.JSON && json.Valid([]byte(x)) {
			return json.RawMessage(x)
		}
		return x
	case time.Time:
		if t == catalog.Date {
			return x.Format(record.DateLayout)
		}
		return x.UTC().Format(time.RFC3339Nano)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
		return x
	}
	return v
}

// KeyProperties are a stream's key for targets: the primary key, and for an append-only
// stream, which keeps each version of a row, the version field too.
func KeyProperties(s catalog.Stream) []string { return destination.StoredKey(s) }

// Automatic says whether a field is always sent: part of the key, or the replication key.
func Automatic(s catalog.Stream, field string) bool {
	if field == s.CursorField {
		return true
	}
	for _, k := range KeyProperties(s) {
		if k == field {
			return true
		}
	}
	return false
}

// Schema is the JSON Schema of records with cols, without the excluded fields. Every
// field is nullable; instants are date-time strings, days date strings; JSON fields any JSON value.
func Schema(cols []catalog.Column, excluded map[string]bool) map[string]any {
	props := make(map[string]any, len(cols))
	for _, c := range cols {
		if excluded[c.Name] {
			continue
		}
		props[c.Name] = TypeSchema(c.Type)
	}
	return map[string]any{"type": "object", "properties": props, "additionalProperties": true}
}

// TypeSchema is the JSON Schema of one column type.
func TypeSchema(t catalog.Type) map[string]any {
	switch t {
	case catalog.Integer:
		return map[string]any{"type": []string{"integer", "null"}}
	case catalog.Number:
		return map[string]any{"type": []string{"number", "null"}}
	case catalog.Boolean:
		return map[string]any{"type": []string{"boolean", "null"}}
	case catalog.Timestamp:
		return map[string]any{"type": []string{"string", "null"}, "format": "date-time"}
	case catalog.Date:
		return map[string]any{"type": []string{"string", "null"}, "format": "date"}
	case catalog.JSON:
		return map[string]any{"type": catalog.JSONTypes}
	default:
		return map[string]any{"type": []string{"string", "null"}}
	}
}
