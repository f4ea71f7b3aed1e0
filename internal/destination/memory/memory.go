// Package memory is a destination that keeps its tables and state in memory, for fast tests
// of the engine. It honours the same contract as the SQL destinations (destinationtest runs
// against it): a batch and its state are stored together or not at all, upserts never
// regress a row by cursor, append-only tables keep each version once, replacements are
// invisible until committed, and tables evolve through catalog.Merge. Options inject the
// faults an engine test needs: a write that fails, or one that hangs until cancelled.
//
// Values are checked as strictly as a typed database would: each must be the Go type its
// column's logical type calls for (see destination.Batch), and JSON must be valid, so an engine
// bug that a lenient store would swallow fails the write instead.
package memory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/customfield"
	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/record"
	"github.com/crmsync/crmsync/internal/state"
)

// Options inject faults. The zero value injects none.
type Options struct {
	// FailAt makes the FailAt-th batch write (Write or Replacement.Write, counted from 1 over
	// the whole destination) and every later one fail with ErrInjected, storing nothing.
	FailAt int
	// HangAt makes the HangAt-th batch write and every later one block until its context is
	// done and then fail with the context's error, storing nothing. Hanging reports when the
	// first one starts to wait.
	HangAt int
}

// ErrInjected is what a write made to fail by Options.FailAt returns.
var ErrInjected = errors.New("memory destination: injected write failure")

// ErrClosed is returned by every method of a closed destination.
var ErrClosed = errors.New("memory destination: closed")

// timeLayout is how an instant reads once its column is widened to text, as in the SQL
// destinations.
const timeLayout = "2006-01-02T15:04:05.000000Z"

// Destination is safe for concurrent use. One mutex serialises everything, which makes every
// write and every commit atomic to readers.
type Destination struct {
	opts Options

	mu      sync.Mutex
	closed  bool
	locks   map[string]bool
	tables  map[string]*table // by stream name: two sources cannot share one
	states  map[stateKey][]byte
	custom  map[string][]customfield.Mapping // by source
	batches int                              // batch writes attempted, for the fault options

	hanging  chan struct{}
	hangOnce sync.Once
}

type stateKey struct{ source, stream string }

// New returns an empty destination.
func New(opts Options) *Destination {
	return &Destination{
		opts:    opts,
		locks:   map[string]bool{},
		tables:  map[string]*table{},
		states:  map[stateKey][]byte{},
		hanging: make(chan struct{}),
	}
}

// SetOptions replaces the fault options and counts batch writes from zero again: a test syncs
// into a faulty destination, heals it and syncs again.
func (d *Destination) SetOptions(opts Options) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.opts = opts
	d.batches = 0
}

// Hanging is closed when the first write held back by Options.HangAt starts to wait.
func (d *Destination) Hanging() <-chan struct{} { return d.hanging }

// Close makes every later call fail; the tables stay readable through Count and Rows.
func (d *Destination) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	return nil
}

// begin locks the destination for one call, or says why the call cannot run.
func (d *Destination) begin(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return ErrClosed
	}
	return nil
}

// Lock implements destination.Destination.
func (d *Destination) Lock(ctx context.Context, source string) (func(), error) {
	if err := d.begin(ctx); err != nil {
		return nil, err
	}
	defer d.mu.Unlock()
	if d.locks[source] {
		return nil, destination.ErrLocked
	}
	d.locks[source] = true
	var once sync.Once
	return func() {
		once.Do(func() {
			d.mu.Lock()
			delete(d.locks, source)
			d.mu.Unlock()
		})
	}, nil
}

// Prepare implements destination.Destination.
func (d *Destination) Prepare(ctx context.Context, t destination.Table, cols []catalog.Column) ([]catalog.Column, error) {
	if err := d.begin(ctx); err != nil {
		return nil, err
	}
	defer d.mu.Unlock()
	if err := d.claim(t); err != nil {
		return nil, err
	}
	tb := d.tables[t.Stream.Name]
	tb.evolve(cols)
	return append([]catalog.Column(nil), tb.cols...), nil
}

// Claim implements destination.Destination.
func (d *Destination) Claim(ctx context.Context, tables []destination.Table) error {
	if err := d.begin(ctx); err != nil {
		return err
	}
	defer d.mu.Unlock()
	return d.claim(tables...)
}

// claim creates the tables that do not exist yet, once it has checked that every one of them
// is free or the source's. A table with no source stands for one crmsync did not create (see
// AddForeignTable). Caller holds d.mu.
func (d *Destination) claim(tables ...destination.Table) error {
	var conflicts []destination.Conflict
	for _, t := range tables {
		if tb, ok := d.tables[t.Stream.Name]; ok && tb.source != t.Source {
			conflicts = append(conflicts, destination.Conflict{Table: t.Stream.Name, Owner: tb.source})
		}
	}
	if len(conflicts) > 0 {
		return &destination.ConflictError{Source: tables[0].Source, Conflicts: conflicts, WayOut: "use another memory destination"}
	}
	for _, t := range tables {
		if _, ok := d.tables[t.Stream.Name]; !ok {
			d.tables[t.Stream.Name] = newTable(t)
		}
	}
	return nil
}

// AddForeignTable adds a table crmsync did not create, with one row, as an application
// sharing the database would have: syncs must refuse it and leave it as it is.
func (d *Destination) AddForeignTable(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	tb := &table{cols: []catalog.Column{{Name: "id", Type: catalog.Integer}, {Name: "name", Type: catalog.String}}, index: map[string]int{}}
	tb.rows = []map[string]any{{"id": int64(1), "name": "app row"}}
	d.tables[name] = tb
}

// State implements destination.Destination.
func (d *Destination) State(ctx context.Context, source string) (state.Source, error) {
	if err := d.begin(ctx); err != nil {
		return nil, err
	}
	defer d.mu.Unlock()
	out := state.Source{}
	for k, raw := range d.states {
		if k.source != source {
			continue
		}
		st, err := state.Unmarshal(raw)
		if err != nil {
			return nil, fmt.Errorf("state of %s.%s: %w", k.source, k.stream, err)
		}
		out[k.stream] = st
	}
	return out, nil
}

// saveState stores st as the SQL destinations do, serialized, so a state that does not
// survive the round trip fails here too. Caller holds d.mu.
func (d *Destination) saveState(t destination.Table, st state.Stream) error {
	raw, err := state.Marshal(st)
	if err != nil {
		return err
	}
	d.states[stateKey{t.Source, t.Stream.Name}] = raw
	return nil
}

// fault applies the fault options to one batch write, before it takes the lock: a hung write
// must not stop the other streams.
func (d *Destination) fault(ctx context.Context) error {
	d.mu.Lock()
	d.batches++
	n, opts := d.batches, d.opts
	d.mu.Unlock()
	if opts.HangAt > 0 && n >= opts.HangAt {
		d.hangOnce.Do(func() { close(d.hanging) })
		<-ctx.Done()
		return ctx.Err()
	}
	if opts.FailAt > 0 && n >= opts.FailAt {
		return ErrInjected
	}
	return nil
}

// Write implements destination.Destination: the batch is checked whole before anything is
// stored, so a bad value leaves rows and state as they were.
func (d *Destination) Write(ctx context.Context, b destination.Batch, st state.Stream) error {
	if err := d.fault(ctx); err != nil {
		return err
	}
	if err := d.begin(ctx); err != nil {
		return err
	}
	defer d.mu.Unlock()
	name := b.Table.Stream.Name
	tb, ok := d.tables[name]
	if !ok || tb.source != b.Table.Source {
		return fmt.Errorf("write %s: table not prepared for %s", name, b.Table.Source)
	}
	rows, err := tb.conform(b)
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if tb.stream.Method == catalog.AppendOnly {
		tb.append(rows)
	} else {
		tb.upsert(rows, b.Columns)
	}
	tb.markDeleted(b)
	return d.saveState(b.Table, st)
}

// LiveKeys implements destination.KeyLister.
func (d *Destination) LiveKeys(ctx context.Context, t destination.Table, fn func(key []any) error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	tb, ok := d.tables[t.Stream.Name]
	if !ok {
		return fmt.Errorf("no table %s", t.Stream.Name)
	}
	seen := map[string]bool{}
	for _, row := range tb.rows {
		k := keyOf(row, tb.stream.PrimaryKey)
		if row[destination.DeletedAtColumn] != nil || seen[k] {
			continue
		}
		seen[k] = true
		key := make([]any, len(tb.stream.PrimaryKey))
		for i, c := range tb.stream.PrimaryKey {
			key[i] = row[c]
		}
		if err := fn(key); err != nil {
			return err
		}
	}
	return nil
}

// Replace implements destination.Destination.
func (d *Destination) Replace(ctx context.Context, t destination.Table) (destination.Replacement, error) {
	if err := d.begin(ctx); err != nil {
		return nil, err
	}
	defer d.mu.Unlock()
	// Each replacement stages on its own, so one left by a crashed sync is simply forgotten.
	return &replacement{d: d, t: t, stage: newTable(t)}, nil
}

type replacement struct {
	d     *Destination
	t     destination.Table
	stage *table
	done  bool
}

func (r *replacement) Write(ctx context.Context, b destination.Batch) error {
	if err := r.d.fault(ctx); err != nil {
		return err
	}
	if err := r.d.begin(ctx); err != nil {
		return err
	}
	defer r.d.mu.Unlock()
	if r.done {
		return fmt.Errorf("stage %s: the replacement is over", r.t.Stream.Name)
	}
	// The table may have been widened since the last batch: widen the stage with it, on a
	// copy, so a failed batch leaves the stage as it was.
	stage := r.stage.clone()
	stage.evolve(b.Columns)
	rows, err := stage.conform(b)
	if err != nil {
		return fmt.Errorf("stage %s: %w", r.t.Stream.Name, err)
	}
	stage.upsert(rows, b.Columns)
	r.stage = stage
	return nil
}

func (r *replacement) Commit(ctx context.Context, st state.Stream) error {
	if err := r.d.begin(ctx); err != nil {
		return err
	}
	defer r.d.mu.Unlock()
	name := r.t.Stream.Name
	if r.done {
		return fmt.Errorf("replace %s: the replacement is over", name)
	}
	tb, ok := r.d.tables[name]
	if !ok || tb.source != r.t.Source {
		return fmt.Errorf("replace %s: table not prepared for %s", name, r.t.Source)
	}
	rows := make([]map[string]any, len(r.stage.rows))
	for i, row := range r.stage.rows {
		out := make(map[string]any, len(row))
		for k, v := range row {
			c := catalog.IndexOf(tb.cols, k)
			if c < 0 {
				return fmt.Errorf("replace %s: the table has no column %q", name, k)
			}
			cv, err := widen(v, r.stage.cols[catalog.IndexOf(r.stage.cols, k)].Type, tb.cols[c].Type)
			if err != nil {
				return fmt.Errorf("replace %s: column %q: %w", name, k, err)
			}
			out[k] = cv
		}
		rows[i] = out
	}
	tb.rows = rows
	tb.reindex()
	r.done = true
	return r.d.saveState(r.t, st)
}

func (r *replacement) Abort(context.Context) error {
	r.d.mu.Lock()
	defer r.d.mu.Unlock()
	r.done = true
	r.stage = nil
	return nil
}

// Count implements destinationtest.Reader: the number of rows in t's table.
func (d *Destination) Count(ctx context.Context, t destination.Table) (int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	tb, ok := d.tables[t.Stream.Name]
	if !ok {
		return 0, fmt.Errorf("no table %s", t.Stream.Name)
	}
	return int64(len(tb.rows)), nil
}

// Rows implements destinationtest.Reader: a copy of every row of t's table, in the order the
// rows were first stored, each with every column (NULL as nil).
func (d *Destination) Rows(ctx context.Context, t destination.Table) ([]map[string]any, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	tb, ok := d.tables[t.Stream.Name]
	if !ok {
		return nil, fmt.Errorf("no table %s", t.Stream.Name)
	}
	out := make([]map[string]any, len(tb.rows))
	for i, row := range tb.rows {
		r := make(map[string]any, len(tb.cols))
		for _, c := range tb.cols {
			r[c.Name] = row[c.Name]
		}
		out[i] = r
	}
	return out, nil
}

// table is one stream's rows, each a map from column name to value (absent: NULL).
type table struct {
	source string
	stream catalog.Stream
	cols   []catalog.Column
	keys   []string // destination.StoredKey: what identifies a stored row
	rows   []map[string]any
	index  map[string]int // stored key → position in rows
}

func newTable(t destination.Table) *table {
	return &table{source: t.Source, stream: t.Stream, keys: destination.StoredKey(t.Stream), index: map[string]int{}}
}

func (t *table) clone() *table {
	c := *t
	c.cols = append([]catalog.Column(nil), t.cols...)
	c.rows = make([]map[string]any, len(t.rows))
	for i, row := range t.rows {
		r := make(map[string]any, len(row))
		for k, v := range row {
			r[k] = v
		}
		c.rows[i] = r
	}
	c.reindex()
	return &c
}

// evolve adds and widens columns as catalog.Merge says, converting the stored values of
// widened columns as the SQL destinations do.
func (t *table) evolve(cols []catalog.Column) {
	merged, _, widened := catalog.Merge(t.cols, cols)
	for _, w := range widened {
		raw := destination.RawOf(cols, w.Name)
		for _, row := range t.rows {
			v, ok := row[w.Name]
			switch {
			case !ok:
			case w.Converts():
				convert(row, w, raw)
			default:
				row[w.Name], _ = widen(v, w.From, w.To) // stored values always fit: no error
			}
		}
	}
	t.cols = merged
}

// convert upgrades a stored text value to the timestamp, date or JSON type its column now
// has, as the SQL destinations do: a value's text is kept in the raw column (when declared),
// one that does not parse in destination.UnparsedColumn.
func convert(row map[string]any, w catalog.Widening, raw string) {
	text := row[w.Name].(string)
	if w.To == catalog.JSON {
		row[w.Name] = record.JSONFromText(text)
		return
	}
	if raw != "" {
		row[raw] = text
	}
	if v, ok := destination.ParsedText([]string{text}, w.To)[text]; ok {
		layout := destination.TimeLayout
		if w.To == catalog.Date {
			layout = record.DateLayout
		}
		row[w.Name], _ = time.Parse(layout, v)
		return
	}
	delete(row, w.Name)
	unparsed := map[string]any{}
	if u, ok := row[destination.UnparsedColumn].(string); ok {
		_ = json.Unmarshal([]byte(u), &unparsed) // crmsync wrote it: an object
	}
	unparsed[w.Name] = text
	b, _ := json.Marshal(unparsed) // strings only: always encodes
	row[destination.UnparsedColumn] = string(b)
}

func (t *table) reindex() {
	t.index = map[string]int{}
	if len(t.keys) == 0 {
		return
	}
	for i, row := range t.rows {
		t.index[keyOf(row, t.keys)] = i
	}
}

// conform checks every value of b and returns its rows as stored: converted to the table's
// column types, instants in UTC at microsecond precision.
func (t *table) conform(b destination.Batch) ([]map[string]any, error) {
	types := make([]catalog.Type, len(b.Columns))
	for i, c := range b.Columns {
		j := catalog.IndexOf(t.cols, c.Name)
		if j < 0 {
			return nil, fmt.Errorf("no column %q", c.Name)
		}
		types[i] = t.cols[j].Type
	}
	out := make([]map[string]any, len(b.Rows))
	for r, row := range b.Rows {
		if len(row) != len(b.Columns) {
			return nil, fmt.Errorf("row %d has %d values for %d columns", r, len(row), len(b.Columns))
		}
		m := make(map[string]any, len(row))
		for i, v := range row {
			if v == nil {
				continue
			}
			if err := check(v, b.Columns[i].Type); err != nil {
				return nil, fmt.Errorf("row %d column %q: %w", r, b.Columns[i].Name, err)
			}
			cv, err := widen(v, b.Columns[i].Type, types[i])
			if err != nil {
				return nil, fmt.Errorf("row %d column %q: %w", r, b.Columns[i].Name, err)
			}
			m[b.Columns[i].Name] = cv
		}
		// An upserted row needs its key: a SQL primary key refuses NULL. Append-only tables
		// count NULL as a value of the version key, as the SQL destinations' unique index does.
		if t.stream.Method != catalog.AppendOnly {
			for _, k := range t.keys {
				if m[k] == nil {
					return nil, fmt.Errorf("row %d lacks its primary key %q", r, k)
				}
			}
		}
		out[r] = m
	}
	return out, nil
}

// upsert stores rows in order by key. A stored row is replaced only by a version at least as
// new by cursor (a NULL cursor on either side replaces), and only the columns of the batch
// change: a column the batch leaves out keeps its value.
func (t *table) upsert(rows []map[string]any, cols []catalog.Column) {
	for _, row := range rows {
		if len(t.keys) == 0 {
			t.rows = append(t.rows, row)
			continue
		}
		k := keyOf(row, t.keys)
		i, ok := t.index[k]
		if !ok {
			t.index[k] = len(t.rows)
			t.rows = append(t.rows, row)
			continue
		}
		old := t.rows[i]
		if c := t.stream.CursorField; c != "" && row[c] != nil && old[c] != nil && compare(row[c], old[c]) < 0 {
			continue
		}
		for _, col := range cols {
			if v, ok := row[col.Name]; ok {
				old[col.Name] = v
			} else {
				delete(old, col.Name)
			}
		}
	}
}

// markDeleted marks every unmarked row of b's deleted keys (all versions), or removes them.
func (t *table) markDeleted(b destination.Batch) {
	if len(b.Deleted) == 0 {
		return
	}
	gone := map[string]bool{}
	for _, key := range b.Deleted {
		row := map[string]any{}
		for i, c := range t.stream.PrimaryKey {
			row[c] = key[i]
		}
		gone[keyOf(row, t.stream.PrimaryKey)] = true
	}
	kept := t.rows[:0]
	for _, row := range t.rows {
		if !gone[keyOf(row, t.stream.PrimaryKey)] {
			kept = append(kept, row)
			continue
		}
		if b.HardDelete {
			continue
		}
		if row[destination.DeletedAtColumn] == nil {
			row[destination.DeletedAtColumn] = b.DeletedAt.UTC().Truncate(time.Microsecond)
		}
		kept = append(kept, row)
	}
	clear(t.rows[len(kept):])
	t.rows = kept
	t.reindex()
}

// append stores the rows whose version is not stored yet (the first of a batch wins).
func (t *table) append(rows []map[string]any) {
	for _, row := range rows {
		if len(t.keys) > 0 {
			k := keyOf(row, t.keys)
			if _, ok := t.index[k]; ok {
				continue
			}
			t.index[k] = len(t.rows)
		}
		t.rows = append(t.rows, row)
	}
}

// keyOf encodes a row's key values as one string; NULL is a value of its own.
func keyOf(row map[string]any, keys []string) string {
	var b strings.Builder
	for _, k := range keys {
		switch v := row[k].(type) {
		case nil:
			b.WriteString("n")
		case time.Time:
			b.WriteString("t" + v.UTC().Format(time.RFC3339Nano))
		default:
			fmt.Fprintf(&b, "%T:%v", v, v)
		}
		b.WriteByte(0)
	}
	return b.String()
}

// compare orders two non-NULL values of one column.
func compare(a, b any) int {
	switch x := a.(type) {
	case time.Time:
		if y, ok := b.(time.Time); ok {
			return x.Compare(y)
		}
	case int64:
		if y, ok := b.(int64); ok {
			return cmpOrdered(x, y)
		}
	case float64:
		if y, ok := b.(float64); ok {
			return cmpOrdered(x, y)
		}
	case string:
		if y, ok := b.(string); ok {
			return strings.Compare(x, y)
		}
	}
	return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
}

func cmpOrdered[T int64 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// check says whether v is the Go value destination.Batch prescribes for type typ.
func check(v any, typ catalog.Type) error {
	ok := false
	switch typ {
	case catalog.Integer:
		_, ok = v.(int64)
	case catalog.Number:
		_, ok = v.(float64)
	case catalog.Boolean:
		_, ok = v.(bool)
	case catalog.Timestamp:
		_, ok = v.(time.Time)
	case catalog.Date:
		d, isTime := v.(time.Time)
		if isTime && (d.Location() != time.UTC || d != d.Truncate(24*time.Hour)) {
			return fmt.Errorf("a date must be midnight UTC, not %v", d)
		}
		ok = isTime
	case catalog.String:
		_, ok = v.(string)
	case catalog.JSON:
		s, isString := v.(string)
		if isString && !json.Valid([]byte(s)) {
			return fmt.Errorf("invalid JSON %.60q", s)
		}
		ok = isString
	}
	if !ok {
		return fmt.Errorf("a %T cannot be stored in a %s column", v, typ)
	}
	return nil
}

// widen converts a stored value of type from to type to, which must be as wide: the text a
// wider string column holds is what the engine writes for a new value of that type.
func widen(v any, from, to catalog.Type) (any, error) {
	if t, ok := v.(time.Time); ok {
		v = t.UTC().Truncate(time.Microsecond) // the SQL destinations' precision
	}
	if v == nil || from == to {
		return v, nil
	}
	if catalog.Widen(from, to) != to {
		return nil, fmt.Errorf("a %s value cannot be stored in a %s column", from, to)
	}
	switch x := v.(type) {
	case int64:
		if to == catalog.Number {
			return float64(x), nil
		}
		return strconv.FormatInt(x, 10), nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return strconv.FormatInt(int64(x), 10), nil
		}
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case bool:
		return strconv.FormatBool(x), nil
	case time.Time:
		return x.Format(timeLayout), nil
	}
	return v, nil // strings and JSON text stay as they are
}
