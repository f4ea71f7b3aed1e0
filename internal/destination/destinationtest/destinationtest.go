// Package destinationtest is the contract every destination honours, written once and run by
// each implementation's tests:
//
//	func TestContract(t *testing.T) {
//		destinationtest.Run(t, func(t *testing.T) destination.Destination {
//			d := open a new, empty destination
//			t.Cleanup(func() { d.Close() })
//			return d // ideally wrapped so that it also implements Reader
//		})
//	}
//
// Most cases read the stored rows back through Reader; a destination that cannot be read
// (a stream on stdout) only runs the others.
package destinationtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/record"
	"github.com/crmsync/crmsync/internal/state"
)

// Reader reads a destination's tables back. Tests implement it, usually in a wrapper around
// the destination, with the destination's own SQL.
type Reader interface {
	// Count returns the number of rows in t's table. It must read on a connection of its own,
	// like another program would: the suite calls it concurrently with replacements to check
	// that readers never see a half-replaced table.
	Count(ctx context.Context, t destination.Table) (int64, error)
	// Rows returns every row of t's table keyed by logical column name (as Prepare reports
	// them), with values as in a Batch: nil, int64, float64, bool, time.Time or string (JSON
	// columns as JSON text).
	Rows(ctx context.Context, t destination.Table) ([]map[string]any, error)
}

// Foreigner creates tables as another program sharing the destination would. The cases about
// tables crmsync did not create run when the destination (or its test wrapper) implements it.
type Foreigner interface {
	// CreateForeign creates the table t would be written to, as an application would: columns
	// id (integer primary key) and name (text, not null), and one row.
	CreateForeign(ctx context.Context, t destination.Table) error
	// DescribeForeign describes that table's columns, with their types and constraints, and its
	// rows, so a test can tell whether anything about it changed.
	DescribeForeign(ctx context.Context, t destination.Table) (string, error)
}

// Run runs the contract suite. open must return a new, empty destination for each call and
// arrange for it to be closed when the test ends.
func Run(t *testing.T, open func(t *testing.T) destination.Destination) {
	cases := []struct {
		name string
		run  func(*harness)
	}{
		{"Create", testCreate},
		{"Upsert", testUpsert},
		{"UpsertManyDuplicates", testUpsertManyDuplicates},
		{"BulkLoad", testBulkLoad},
		{"BulkLoadInterrupted", testBulkLoadInterrupted},
		{"UpsertKeepsColumnsMissingFromBatch", testUpsertPartialColumns},
		{"Append", testAppend},
		{"Replace", testReplace},
		{"ReplaceConcurrentReader", testReplaceConcurrentReader},
		{"SchemaEvolution", testSchemaEvolution},
		{"DatesAndJSON", testDatesAndJSON},
		{"ConvertTextColumns", testConvertTextColumns},
		{"State", testState},
		{"CrashBetweenBatches", testCrash},
		{"Identifiers", testIdentifiers},
		{"FieldNames", testFieldNames},
		{"Values", testValues},
		{"Nulls", testNulls},
		{"Lock", testLock},
		{"Ownership", testOwnership},
		{"ClaimAllOrNothing", testClaimAllOrNothing},
		{"ForeignTables", testForeignTables},
		{"ConcurrentStreams", testConcurrentStreams},
		{"Deletes", testDeletes},
		{"CustomFields", testCustomFields},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := open(t)
			h := &harness{t: t, d: d, ctx: t.Context()}
			h.r, _ = d.(Reader)
			c.run(h)
		})
	}
}

const source = "src"

// t0 is the fixtures' reference instant; at(m) is m minutes later.
var t0 = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

func at(minutes int) time.Time { return t0.Add(time.Duration(minutes) * time.Minute) }

// rec is a row by column name; absent columns are NULL.
type rec map[string]any

type harness struct {
	t   *testing.T
	d   destination.Destination
	r   Reader
	ctx context.Context
}

// reader returns the Reader or skips the calling test.
func (h *harness) reader() Reader {
	h.t.Helper()
	if h.r == nil {
		h.t.Skip("the destination does not implement destinationtest.Reader")
	}
	return h.r
}

func table(name string, m catalog.Method) destination.Table {
	s := catalog.Stream{Name: name, PrimaryKey: []string{"id"}, Method: m}
	switch m {
	case catalog.Incremental:
		s.CursorField = "updated"
	case catalog.AppendOnly:
		s.CursorField, s.VersionField = "created", "updated"
	}
	return destination.Table{Source: source, Stream: s}
}

// colSpec builds columns from "name:type" pairs and appends the metadata columns.
func colSpec(spec ...string) []catalog.Column {
	var out []catalog.Column
	for _, s := range spec {
		name, typ, _ := strings.Cut(s, ":")
		out = append(out, catalog.Column{Name: name, Type: catalog.Type(typ)})
	}
	return append(out, destination.MetadataColumns...)
}

var standardCols = colSpec("id:string", "updated:timestamp", "n:integer", "x:number", "ok:boolean", "s:string", "j:json")

func batch(t destination.Table, cols []catalog.Column, recs ...rec) destination.Batch {
	rows := make([][]any, len(recs))
	for i, r := range recs {
		row := make([]any, len(cols))
		for j, c := range cols {
			row[j] = normalize(r[c.Name])
		}
		rows[i] = row
	}
	return destination.Batch{Table: t, Columns: cols, Rows: rows}
}

func bookmark(b time.Time) state.Stream {
	return state.Stream{Bookmark: b, SchemaVersion: 1, LastSyncAt: t0}
}

func (h *harness) prepare(t destination.Table, cols []catalog.Column) []catalog.Column {
	h.t.Helper()
	got, err := h.d.Prepare(h.ctx, t, cols)
	if err != nil {
		h.t.Fatalf("Prepare %q: %v", t.Stream.Name, err)
	}
	return got
}

func (h *harness) write(b destination.Batch, st state.Stream) {
	h.t.Helper()
	if err := h.d.Write(h.ctx, b, st); err != nil {
		h.t.Fatalf("Write %q: %v", b.Table.Stream.Name, err)
	}
}

func (h *harness) replace(t destination.Table, st state.Stream, batches ...destination.Batch) {
	h.t.Helper()
	r, err := h.d.Replace(h.ctx, t)
	if err != nil {
		h.t.Fatalf("Replace %q: %v", t.Stream.Name, err)
	}
	for _, b := range batches {
		if err := r.Write(h.ctx, b); err != nil {
			h.t.Fatalf("Replacement.Write %q: %v", t.Stream.Name, err)
		}
	}
	if err := r.Commit(h.ctx, st); err != nil {
		h.t.Fatalf("Replacement.Commit %q: %v", t.Stream.Name, err)
	}
}

func (h *harness) state() state.Source {
	h.t.Helper()
	st, err := h.d.State(h.ctx, source)
	if err != nil {
		h.t.Fatalf("State: %v", err)
	}
	return st
}

func (h *harness) count(t destination.Table) int64 {
	h.t.Helper()
	n, err := h.reader().Count(h.ctx, t)
	if err != nil {
		h.t.Fatalf("Count %q: %v", t.Stream.Name, err)
	}
	return n
}

// check compares t's rows with want (order does not matter; columns absent from a want row
// must be NULL).
func (h *harness) check(t destination.Table, want ...rec) {
	h.t.Helper()
	got, err := h.reader().Rows(h.ctx, t)
	if err != nil {
		h.t.Fatalf("Rows %q: %v", t.Stream.Name, err)
	}
	current := h.prepare(t, nil)
	types := map[string]catalog.Type{}
	for _, c := range current {
		types[c.Name] = c.Type
	}
	key := func(r map[string]any) string {
		k := fmt.Sprint(normalize(r["id"]))
		if v, ok := r["updated"].(time.Time); ok {
			k += "|" + v.UTC().Format(time.RFC3339Nano)
		}
		return k
	}
	sort.SliceStable(got, func(i, j int) bool { return key(got[i]) < key(got[j]) })
	want = append([]rec{}, want...)
	sort.SliceStable(want, func(i, j int) bool { return key(want[i]) < key(want[j]) })
	if len(got) != len(want) {
		h.t.Errorf("%q has %d rows, want %d:\n got: %s\nwant: %s", t.Stream.Name, len(got), len(want), preview(got), preview(want))
		return
	}
	for i := range want {
		for name := range got[i] {
			if _, known := types[name]; !known {
				h.t.Errorf("%q: Rows returned column %q that Prepare does not report", t.Stream.Name, name)
			}
		}
		for _, c := range current {
			w, g := want[i][c.Name], got[i][c.Name]
			if !equalValue(c.Type, w, g) {
				h.t.Errorf("%q row %s column %q = %s, want %s", t.Stream.Name, key(want[i]), c.Name, short(g), short(w))
			}
		}
		for name := range want[i] {
			if _, ok := types[name]; !ok {
				h.t.Errorf("%q: want column %q that the table lacks", t.Stream.Name, name)
			}
		}
	}
}

// normalize turns fixture conveniences into Batch values.
func normalize(v any) any {
	switch x := v.(type) {
	case int:
		return int64(x)
	case time.Time:
		return x.UTC()
	}
	return v
}

func equalValue(typ catalog.Type, want, got any) bool {
	want = normalize(want)
	if want == nil || got == nil {
		return want == nil && got == nil
	}
	if w, ok := want.(time.Time); ok {
		g, ok := got.(time.Time)
		return ok && w.Truncate(time.Microsecond).Equal(g)
	}
	if typ == catalog.JSON {
		ws, ok1 := want.(string)
		gs, ok2 := got.(string)
		if !ok1 || !ok2 {
			return false
		}
		var wv, gv any
		return json.Unmarshal([]byte(ws), &wv) == nil && json.Unmarshal([]byte(gs), &gv) == nil && reflect.DeepEqual(wv, gv)
	}
	return reflect.DeepEqual(want, got)
}

func short(v any) string {
	s := fmt.Sprintf("%#v", v)
	if len(s) > 120 {
		s = s[:120] + fmt.Sprintf("…(%d bytes)", len(s))
	}
	return s
}

func preview(v any) string {
	s := fmt.Sprint(v)
	if len(s) > 600 {
		s = s[:600] + "…"
	}
	return s
}

func assertColumns(t *testing.T, what string, got, want []catalog.Column) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d columns %v, want %d %v", what, len(got), got, len(want), want)
	}
	for i := range want {
		if got[i].Name != want[i].Name || got[i].Type != want[i].Type {
			t.Errorf("%s: column %d = %s %s, want %s %s", what, i, got[i].Name, got[i].Type, want[i].Name, want[i].Type)
		}
	}
}

func testCreate(h *harness) {
	t := h.t
	tb := table("things", catalog.Incremental)
	assertColumns(t, "new table", h.prepare(tb, standardCols), standardCols)
	assertColumns(t, "prepared again", h.prepare(tb, standardCols), standardCols)
	assertColumns(t, "prepared with fewer columns", h.prepare(tb, standardCols[:2]), standardCols)
	if st := h.state(); len(st) != 0 {
		t.Errorf("state of a new destination = %v, want none", st)
	}
	// A batch may carry only a bookmark (the engine flushes one when the source justifies it).
	h.write(batch(tb, standardCols), bookmark(at(5)))
	if got := h.state()[tb.Stream.Name].Bookmark; !got.Equal(at(5)) {
		t.Errorf("bookmark after an empty batch = %v, want %v", got, at(5))
	}
	if h.r != nil && h.count(tb) != 0 {
		t.Errorf("rows after an empty batch = %d, want 0", h.count(tb))
	}
}

// upsertCases are batches of one key's versions and the row that must be left.
var upsertCases = []struct {
	name    string
	batches [][]rec
	want    []rec
	// loadKeeps is what a bulk load (destination.BulkLoader) leaves where it differs: it keeps
	// a dated copy over a later one without a cursor, where upserts keep the later.
	loadKeeps []rec
}{
	{
		name:    "newest by cursor wins within a batch",
		batches: [][]rec{{{"id": "a", "updated": at(1), "s": "v1"}, {"id": "a", "updated": at(3), "s": "v3"}, {"id": "a", "updated": at(2), "s": "v2"}}},
		want:    []rec{{"id": "a", "updated": at(3), "s": "v3"}},
	},
	{
		name:    "equal cursors within a batch: the last wins",
		batches: [][]rec{{{"id": "a", "updated": at(1), "s": "first"}, {"id": "a", "updated": at(1), "s": "last"}}},
		want:    []rec{{"id": "a", "updated": at(1), "s": "last"}},
	},
	{
		name:    "an older version never replaces a newer row",
		batches: [][]rec{{{"id": "a", "updated": at(2), "s": "new", "n": 2}}, {{"id": "a", "updated": at(1), "s": "old", "n": 1}}},
		want:    []rec{{"id": "a", "updated": at(2), "s": "new", "n": 2}},
	},
	{
		name:    "a newer version replaces the row",
		batches: [][]rec{{{"id": "a", "updated": at(1), "s": "old", "n": 1}}, {{"id": "a", "updated": at(2), "s": "new"}}},
		want:    []rec{{"id": "a", "updated": at(2), "s": "new"}},
	},
	{
		name:    "a re-read with the same cursor replaces the row",
		batches: [][]rec{{{"id": "a", "updated": at(1), "s": "first"}}, {{"id": "a", "updated": at(1), "s": "again"}}},
		want:    []rec{{"id": "a", "updated": at(1), "s": "again"}},
	},
	{
		name:    "a NULL cursor in the table is replaced",
		batches: [][]rec{{{"id": "a", "s": "no cursor"}}, {{"id": "a", "updated": at(1), "s": "dated"}}},
		want:    []rec{{"id": "a", "updated": at(1), "s": "dated"}},
	},
	{
		// A cursor that did not parse is stored as NULL: it must not hide a valid version.
		name:    "a NULL cursor within a batch is replaced by a later dated version",
		batches: [][]rec{{{"id": "a", "s": "no cursor"}, {"id": "a", "updated": at(1), "s": "dated"}}},
		want:    []rec{{"id": "a", "updated": at(1), "s": "dated"}},
	},
	{
		name:      "a NULL cursor in a later batch replaces the row",
		batches:   [][]rec{{{"id": "a", "updated": at(1), "s": "dated"}}, {{"id": "a", "s": "no cursor"}}},
		want:      []rec{{"id": "a", "s": "no cursor"}},
		loadKeeps: []rec{{"id": "a", "updated": at(1), "s": "dated"}},
	},
	{
		// A destination may load a batch of new rows the fast way and fall back when it
		// meets a stored one; nothing of the first attempt may be left behind.
		name: "a stored row after new rows in a batch",
		batches: [][]rec{
			{{"id": "z", "updated": at(5), "s": "z5"}},
			{{"id": "x", "updated": at(1), "s": "x1"}, {"id": "y", "updated": at(1), "s": "y1"}, {"id": "z", "updated": at(4), "s": "z4"}},
			{{"id": "w", "updated": at(1), "s": "w1"}, {"id": "x", "updated": at(2), "s": "x2"}},
		},
		want: []rec{{"id": "w", "updated": at(1), "s": "w1"}, {"id": "x", "updated": at(2), "s": "x2"}, {"id": "y", "updated": at(1), "s": "y1"}, {"id": "z", "updated": at(5), "s": "z5"}},
	},
	{
		name: "keys are independent",
		batches: [][]rec{
			{{"id": "a", "updated": at(5), "s": "a5"}, {"id": "b", "updated": at(1), "s": "b1"}, {"id": "c", "updated": at(3), "s": "c3"}},
			{{"id": "a", "updated": at(4), "s": "a4"}, {"id": "b", "updated": at(2), "s": "b2"}, {"id": "d", "updated": at(1), "s": "d1"}},
		},
		want: []rec{{"id": "a", "updated": at(5), "s": "a5"}, {"id": "b", "updated": at(2), "s": "b2"}, {"id": "c", "updated": at(3), "s": "c3"}, {"id": "d", "updated": at(1), "s": "d1"}},
	},
}

func testUpsert(h *harness) {
	for i, c := range upsertCases {
		h.t.Run(c.name, func(t *testing.T) {
			h := &harness{t: t, d: h.d, r: h.r, ctx: h.ctx}
			tb := table(fmt.Sprintf("upsert_%d", i), catalog.Incremental)
			cols := h.prepare(tb, standardCols)
			for j, recs := range c.batches {
				h.write(batch(tb, cols, recs...), bookmark(at(j)))
			}
			h.check(tb, c.want...)
		})
	}
}

// loader returns the destination's BulkLoader or skips the calling test.
func (h *harness) loader() destination.BulkLoader {
	h.t.Helper()
	bl, ok := h.d.(destination.BulkLoader)
	if !ok {
		h.t.Skip("the destination does not implement destination.BulkLoader")
	}
	return bl
}

// beginLoad puts the empty table into loading mode, failing the test if it does not.
func (h *harness) beginLoad(tb destination.Table) {
	h.t.Helper()
	if ok, err := h.loader().BeginLoad(h.ctx, tb); err != nil || !ok {
		h.t.Fatalf("BeginLoad %q on an empty table = %v, %v; want true", tb.Stream.Name, ok, err)
	}
}

func (h *harness) finishLoad(tb destination.Table) {
	h.t.Helper()
	if err := h.loader().FinishLoad(h.ctx, tb); err != nil {
		h.t.Fatalf("FinishLoad %q: %v", tb.Stream.Name, err)
	}
}

// testBulkLoad: a table loaded without its index ends, once the load is finished, as upserts
// would have left it — one row per key, the newest — and later writes upsert into it. Append-
// only tables keep each version once. A table with rows is not loaded.
func testBulkLoad(h *harness) {
	h.loader()
	for i, c := range upsertCases {
		h.t.Run(c.name, func(t *testing.T) {
			h := &harness{t: t, d: h.d, r: h.r, ctx: h.ctx}
			tb := table(fmt.Sprintf("load_%d", i), catalog.Incremental)
			cols := h.prepare(tb, standardCols)
			h.beginLoad(tb)
			for j, recs := range c.batches {
				h.write(batch(tb, cols, recs...), bookmark(at(j)))
			}
			h.finishLoad(tb)
			want := c.want
			if c.loadKeeps != nil {
				want = c.loadKeeps
			}
			h.check(tb, want...)
			// The key index is back: a newer version replaces the row, an older does not.
			id := want[0]["id"]
			h.write(batch(tb, cols, rec{"id": id, "updated": at(-10), "s": "older"}), bookmark(at(9)))
			h.check(tb, want...)
			h.write(batch(tb, cols, rec{"id": id, "updated": at(100), "s": "after"}), bookmark(at(10)))
			if n := h.count(tb); n != int64(len(want)) {
				t.Errorf("after the load an upsert left %d rows, want %d", n, len(want))
			}
		})
	}

	h.t.Run("append-only", func(t *testing.T) {
		h := &harness{t: t, d: h.d, r: h.r, ctx: h.ctx}
		tb := table("load_events", catalog.AppendOnly)
		cols := h.prepare(tb, colSpec("id:string", "created:timestamp", "updated:timestamp", "s:string"))
		h.beginLoad(tb)
		v1 := rec{"id": "a", "created": at(0), "updated": at(1), "s": "a1"}
		v2 := rec{"id": "a", "created": at(0), "updated": at(2), "s": "a2"}
		h.write(batch(tb, cols, v1, v2, rec{"id": "a", "created": at(0), "updated": at(1), "s": "a1 again"}), bookmark(at(1)))
		h.write(batch(tb, cols, v2), bookmark(at(2)))
		h.finishLoad(tb)
		h.check(tb, v1, v2)
		h.write(batch(tb, cols, v2, rec{"id": "a", "created": at(0), "updated": at(3), "s": "a3"}), bookmark(at(3)))
		h.check(tb, v1, v2, rec{"id": "a", "created": at(0), "updated": at(3), "s": "a3"})
	})

	h.t.Run("a table with rows is not loaded", func(t *testing.T) {
		h := &harness{t: t, d: h.d, r: h.r, ctx: h.ctx}
		tb := table("load_full", catalog.Incremental)
		cols := h.prepare(tb, standardCols)
		h.write(batch(tb, cols, rec{"id": "a", "updated": at(1), "s": "stored"}), bookmark(at(1)))
		if ok, err := h.loader().BeginLoad(h.ctx, tb); err != nil || ok {
			t.Fatalf("BeginLoad on a table with rows = %v, %v; want false", ok, err)
		}
		h.write(batch(tb, cols, rec{"id": "a", "updated": at(2), "s": "upserted"}), bookmark(at(2)))
		h.check(tb, rec{"id": "a", "updated": at(2), "s": "upserted"})
	})
}

// testBulkLoadInterrupted: a load never finished (the process died) is finished by the next
// Claim of its source, with the state the batches saved, before anything else is written.
func testBulkLoadInterrupted(h *harness) {
	tb := table("load_crash", catalog.Incremental)
	cols := h.prepare(tb, standardCols)
	h.beginLoad(tb)
	h.write(batch(tb, cols, rec{"id": "a", "updated": at(1), "s": "a1"}, rec{"id": "b", "updated": at(1), "s": "b1"}), bookmark(at(1)))
	h.write(batch(tb, cols, rec{"id": "a", "updated": at(2), "s": "a2"}), bookmark(at(2)))
	if err := h.d.Claim(h.ctx, []destination.Table{tb}); err != nil {
		h.t.Fatalf("Claim: %v", err)
	}
	h.check(tb, rec{"id": "a", "updated": at(2), "s": "a2"}, rec{"id": "b", "updated": at(1), "s": "b1"})
	if got := h.state()[tb.Stream.Name].Bookmark; !got.Equal(at(2)) {
		h.t.Errorf("bookmark after the interrupted load = %v, want %v", got, at(2))
	}
	h.write(batch(tb, cols, rec{"id": "b", "updated": at(3), "s": "b3"}), bookmark(at(3)))
	h.check(tb, rec{"id": "a", "updated": at(2), "s": "a2"}, rec{"id": "b", "updated": at(3), "s": "b3"})
	if err := h.loader().FinishLoad(h.ctx, tb); err != nil {
		h.t.Errorf("FinishLoad of a load already finished: %v", err)
	}
}

// testUpsertManyDuplicates writes large batches full of duplicate keys in random cursor order.
func testUpsertManyDuplicates(h *harness) {
	tb := table("churn", catalog.Incremental)
	cols := h.prepare(tb, standardCols)
	rng := rand.New(rand.NewPCG(1, 2))
	newest := map[string]rec{}
	for b := range 3 {
		recs := make([]rec, 3000)
		for i := range recs {
			id := fmt.Sprintf("k%03d", rng.IntN(200))
			r := rec{"id": id, "updated": at(rng.IntN(50)), "n": int64(b*10000 + i)}
			recs[i] = r
			// Newest by cursor wins; equal cursors: the one written last.
			if old, ok := newest[id]; !ok || !r["updated"].(time.Time).Before(old["updated"].(time.Time)) {
				newest[id] = r
			}
		}
		h.write(batch(tb, cols, recs...), bookmark(at(b)))
	}
	want := make([]rec, 0, len(newest))
	for _, r := range newest {
		want = append(want, r)
	}
	h.check(tb, want...)
}

func testUpsertPartialColumns(h *harness) {
	tb := table("partial", catalog.Incremental)
	all := h.prepare(tb, standardCols)
	h.write(batch(tb, all, rec{"id": "a", "updated": at(1), "n": 1, "s": "old", "j": `{"k":1}`}), bookmark(at(1)))
	narrow := []catalog.Column{{Name: "id", Type: catalog.String}, {Name: "updated", Type: catalog.Timestamp}, {Name: "s", Type: catalog.String}}
	h.write(batch(tb, narrow, rec{"id": "a", "updated": at(2), "s": "new"}, rec{"id": "b", "updated": at(2), "s": "only"}), bookmark(at(2)))
	h.check(tb,
		rec{"id": "a", "updated": at(2), "n": 1, "s": "new", "j": `{"k":1}`},
		rec{"id": "b", "updated": at(2), "s": "only"})
}

func testAppend(h *harness) {
	tb := table("events", catalog.AppendOnly)
	cols := h.prepare(tb, colSpec("id:string", "created:timestamp", "updated:timestamp", "s:string"))
	h.write(batch(tb, cols,
		rec{"id": "a", "created": at(0), "updated": at(1), "s": "a1"},
		rec{"id": "a", "created": at(0), "updated": at(1), "s": "a1 again"}, // same version: stored once (the first)
		rec{"id": "a", "created": at(0), "updated": at(2), "s": "a2"},
		rec{"id": "b", "created": at(0), "updated": at(1), "s": "b1"},
		rec{"id": "c", "created": at(0), "s": "c without version"},
		rec{"id": "c", "created": at(0), "s": "c without version again"}, // NULL version: still one version
	), bookmark(at(0)))
	first := []rec{
		{"id": "a", "created": at(0), "updated": at(1), "s": "a1"},
		{"id": "a", "created": at(0), "updated": at(2), "s": "a2"},
		{"id": "b", "created": at(0), "updated": at(1), "s": "b1"},
		{"id": "c", "created": at(0), "s": "c without version"},
	}
	h.check(tb, first...)
	// A re-read (attribution window) brings old versions back and one new one.
	h.write(batch(tb, cols,
		rec{"id": "a", "created": at(0), "updated": at(2), "s": "a2 re-read"},
		rec{"id": "b", "created": at(0), "updated": at(1), "s": "b1 re-read"},
		rec{"id": "b", "created": at(0), "updated": at(3), "s": "b3"},
		rec{"id": "c", "created": at(0), "s": "c re-read"},
	), bookmark(at(1)))
	h.check(tb, append(first, rec{"id": "b", "created": at(0), "updated": at(3), "s": "b3"})...)
	if got := h.state()[tb.Stream.Name].Bookmark; !got.Equal(at(1)) {
		h.t.Errorf("bookmark = %v, want %v", got, at(1))
	}
}

func testReplace(h *harness) {
	t := h.t
	tb := table("lists", catalog.FullTable)
	cols := h.prepare(tb, colSpec("id:string", "s:string", "n:integer"))
	full := state.Stream{SchemaVersion: 3, LastSyncAt: t0}

	t.Run("commit swaps in the staged rows", func(t *testing.T) {
		h := &harness{t: t, d: h.d, r: h.r, ctx: h.ctx}
		r, err := h.d.Replace(h.ctx, tb)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range []destination.Batch{
			batch(tb, cols, rec{"id": "a", "s": "a"}, rec{"id": "b", "s": "b old"}),
			batch(tb, cols, rec{"id": "b", "s": "b new"}, rec{"id": "c", "s": "c"}), // a key twice: the last wins
		} {
			if err := r.Write(h.ctx, b); err != nil {
				t.Fatal(err)
			}
		}
		if h.r != nil && h.count(tb) != 0 {
			t.Errorf("staged rows are visible before Commit: %d rows", h.count(tb))
		}
		if err := r.Commit(h.ctx, full); err != nil {
			t.Fatal(err)
		}
		h.check(tb, rec{"id": "a", "s": "a"}, rec{"id": "b", "s": "b new"}, rec{"id": "c", "s": "c"})
		if st, ok := h.state()[tb.Stream.Name]; !ok || st.SchemaVersion != 3 || !st.LastSyncAt.Equal(t0) {
			t.Errorf("state after Commit = %+v (present: %v), want %+v", st, ok, full)
		}
	})
	t.Run("abort keeps the old rows", func(t *testing.T) {
		h := &harness{t: t, d: h.d, r: h.r, ctx: h.ctx}
		r, err := h.d.Replace(h.ctx, tb)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Write(h.ctx, batch(tb, cols, rec{"id": "z", "s": "never"})); err != nil {
			t.Fatal(err)
		}
		if err := r.Abort(h.ctx); err != nil {
			t.Fatal(err)
		}
		h.check(tb, rec{"id": "a", "s": "a"}, rec{"id": "b", "s": "b new"}, rec{"id": "c", "s": "c"})
	})
	t.Run("a stage left by a crash is discarded", func(t *testing.T) {
		h := &harness{t: t, d: h.d, r: h.r, ctx: h.ctx}
		r, err := h.d.Replace(h.ctx, tb)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Write(h.ctx, batch(tb, cols, rec{"id": "stale", "s": "from a crashed sync"})); err != nil {
			t.Fatal(err)
		}
		// No Commit, no Abort: the process died. The next sync starts over.
		h.replace(tb, full, batch(tb, cols, rec{"id": "fresh", "s": "new"}))
		h.check(tb, rec{"id": "fresh", "s": "new"})
	})
	t.Run("an empty replacement empties the table", func(t *testing.T) {
		h := &harness{t: t, d: h.d, r: h.r, ctx: h.ctx}
		h.replace(tb, full)
		h.check(tb)
	})
	t.Run("a column widened during the replacement keeps staged values intact", func(t *testing.T) {
		h := &harness{t: t, d: h.d, r: h.r, ctx: h.ctx}
		tb := table("lists_widened", catalog.FullTable)
		cols := h.prepare(tb, colSpec("id:string", "n:integer"))
		r, err := h.d.Replace(h.ctx, tb)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Write(h.ctx, batch(tb, cols, rec{"id": "a", "n": 7})); err != nil {
			t.Fatal(err)
		}
		// The engine meets "007" and widens the column before the next batch.
		wide := h.prepare(tb, []catalog.Column{{Name: "n", Type: catalog.String}})
		if err := r.Write(h.ctx, batch(tb, wide, rec{"id": "b", "n": "007"})); err != nil {
			t.Fatal(err)
		}
		if err := r.Commit(h.ctx, full); err != nil {
			t.Fatal(err)
		}
		h.check(tb, rec{"id": "a", "n": "7"}, rec{"id": "b", "n": "007"})
	})
}

// testReplaceConcurrentReader counts rows on another connection while tables are replaced
// over and over: every count must be a whole old or a whole new table.
func testReplaceConcurrentReader(h *harness) {
	t := h.t
	r := h.reader()
	tb := table("swapped", catalog.FullTable)
	cols := h.prepare(tb, colSpec("id:string", "s:string", "n:integer"))
	sizes := []int{100, 250}
	load := func(round int) []destination.Batch {
		n := sizes[round%2]
		var out []destination.Batch
		for start := 0; start < n; start += 50 {
			var recs []rec
			for i := start; i < start+50 && i < n; i++ {
				recs = append(recs, rec{"id": fmt.Sprintf("r%d-%d", round, i), "s": strings.Repeat("x", 100), "n": i})
			}
			out = append(out, batch(tb, cols, recs...))
		}
		return out
	}
	h.replace(tb, bookmark(time.Time{}), load(0)...)

	ctx, cancel := context.WithCancel(h.ctx)
	var (
		wg     sync.WaitGroup
		seen   = map[int64]int{}
		rerr   error
		counts atomic.Int64 // counts completed, read by the writer's loop
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			n, err := r.Count(ctx, tb)
			if err != nil {
				if ctx.Err() == nil {
					rerr = err
				}
				return
			}
			seen[n]++
			counts.Add(1)
		}
	}()
	// At least 30 replacements, and more until the reader has completed a count: on a loaded
	// machine the reader may not get a turn during the first 30.
	round := 0
	for deadline := time.Now().Add(10 * time.Second); round < 30 || (counts.Load() == 0 && time.Now().Before(deadline)); {
		round++
		h.replace(tb, bookmark(time.Time{}), load(round)...)
	}
	cancel()
	wg.Wait()
	if rerr != nil {
		t.Fatalf("concurrent Count: %v", rerr)
	}
	reads := 0
	for n, k := range seen {
		reads += k
		if n != int64(sizes[0]) && n != int64(sizes[1]) {
			t.Errorf("a reader saw %d rows %d times; only %v are whole tables", n, k, sizes)
		}
	}
	if reads == 0 {
		t.Error("the reader never completed a count during the replacements")
	}
	t.Logf("counts seen during %d replacements: %v", round, seen)
	if got := h.count(tb); got != int64(sizes[round%2]) {
		t.Errorf("final count = %d, want %d", got, sizes[round%2])
	}
}

func testSchemaEvolution(h *harness) {
	t := h.t
	tb := table("evolving", catalog.Incremental)
	v1 := h.prepare(tb, colSpec("id:string", "updated:timestamp", "n:integer", "flag:boolean", "when:timestamp", "doc:json"))
	when := time.Date(2023, 7, 8, 9, 10, 11, 123456000, time.UTC)
	h.write(batch(tb, v1, rec{"id": "a", "updated": at(1), "n": 7, "flag": true, "when": when, "doc": `{"k":[1,2]}`}), bookmark(at(1)))

	// Schema drift: a new column, and a number where integers were.
	v2 := h.prepare(tb, []catalog.Column{{Name: "n", Type: catalog.Number}, {Name: "extra", Type: catalog.String}})
	want := append([]catalog.Column{}, v1...)
	want[indexOf(want, "n")].Type = catalog.Number
	want = append(want, catalog.Column{Name: "extra", Type: catalog.String})
	assertColumns(t, "after adding extra and widening n to number", v2, want)
	h.write(batch(tb, v2, rec{"id": "b", "updated": at(2), "n": 7.5, "extra": "x"}), bookmark(at(2)))
	h.check(tb,
		rec{"id": "a", "updated": at(1), "n": 7.0, "flag": true, "when": when, "doc": `{"k":[1,2]}`},
		rec{"id": "b", "updated": at(2), "n": 7.5, "extra": "x"})

	// Then text where numbers, booleans, instants and JSON were.
	v3 := h.prepare(tb, []catalog.Column{{Name: "n", Type: catalog.String}, {Name: "flag", Type: catalog.String},
		{Name: "when", Type: catalog.String}, {Name: "doc", Type: catalog.String}})
	for _, name := range []string{"n", "flag", "when", "doc"} {
		want[indexOf(want, name)].Type = catalog.String
	}
	assertColumns(t, "after widening to string", v3, want)
	h.write(batch(tb, v3, rec{"id": "c", "updated": at(3), "n": "007", "flag": "maybe", "when": "soon", "doc": "plain"}), bookmark(at(3)))

	// Types never narrow, columns are never dropped.
	assertColumns(t, "after asking for a narrower type", h.prepare(tb, []catalog.Column{{Name: "n", Type: catalog.Integer}}), want)
	assertColumns(t, "after asking for fewer columns", h.prepare(tb, v1[:1]), want)

	rows, err := h.reader().Rows(h.ctx, tb)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]map[string]any{}
	for _, r := range rows {
		byID[fmt.Sprint(r["id"])] = r
	}
	a, b, c := byID["a"], byID["b"], byID["c"]
	for _, x := range []struct {
		what      string
		got, want any
	}{
		{"a.n (integer 7 widened twice)", a["n"], "7"},
		{"b.n (number 7.5 widened)", b["n"], "7.5"},
		{"c.n", c["n"], "007"},
		{"a.flag (boolean widened)", a["flag"], "true"},
		{"c.flag", c["flag"], "maybe"},
		{"b.extra", b["extra"], "x"},
		{"a.extra", a["extra"], nil},
	} {
		if !reflect.DeepEqual(x.got, x.want) {
			t.Errorf("%s = %#v, want %#v", x.what, x.got, x.want)
		}
	}
	if s, ok := a["when"].(string); !ok {
		t.Errorf("a.when = %#v, want text", a["when"])
	} else if got, err := record.ParseISOTime(s); err != nil || !got.Equal(when) {
		t.Errorf("a.when (instant widened) = %q, want the same instant as %s", s, when.Format(time.RFC3339Nano))
	}
	var doc any
	if s, ok := a["doc"].(string); !ok || json.Unmarshal([]byte(s), &doc) != nil || !reflect.DeepEqual(doc, map[string]any{"k": []any{1.0, 2.0}}) {
		t.Errorf(`a.doc (JSON widened) = %#v, want JSON text of {"k":[1,2]}`, a["doc"])
	}
}

// day is midnight UTC of a day: how a Batch carries a date.
func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// testDatesAndJSON: date columns hold days (the years 1–9999), JSON columns any JSON value —
// a JSON string is not confused with an object whose text it holds.
func testDatesAndJSON(h *harness) {
	tb := table("typed", catalog.Incremental)
	cs := h.prepare(tb, colSpec("id:string", "updated:timestamp", "d:date", "j:json"))
	recs := []rec{
		{"id": "a", "updated": at(1), "d": day(2018, 11, 19), "j": `{"id":1,"name":"Won"}`},
		{"id": "b", "updated": at(1), "d": day(1, 1, 1), "j": `"Open"`},
		{"id": "c", "updated": at(1), "d": day(9999, 12, 31), "j": `"{\"id\":1,\"name\":\"Won\"}"`},
		{"id": "d", "updated": at(1), "j": `12345678901234567890`},
		{"id": "e", "updated": at(1), "j": `[true,null]`},
	}
	h.write(batch(tb, cs, recs...), bookmark(at(1)))
	h.check(tb, recs...)
	assertColumns(h.t, "typed", h.prepare(tb, nil), cs)
}

// testConvertTextColumns: a replica written before fields were declared timestamp, date or
// JSON holds them as text; preparing the declared types converts them in place: instants and
// days as the engine parses them (text that does not parse: NULL, kept in the unparsed
// column beside what it held), the day's text kept in its raw column; the text of an object
// or array becomes that document, other text a JSON string.
func testConvertTextColumns(h *harness) {
	tb := table("upgraded", catalog.Incremental)
	old := h.prepare(tb, colSpec("id:string", "updated:timestamp", "d:string", "doc:string", "when:string"))
	h.write(batch(tb, old,
		rec{"id": "a", "updated": at(1), "d": "11/19/2018", "doc": `{"id": 1, "name": "Won"}`, "when": "2024-06-04T08:31:44.512000+00:00"},
		rec{"id": "b", "updated": at(1), "d": "2024-05-02T16:00:00+00:00", "doc": "Open", "when": "1759932175"},
		rec{"id": "c", "updated": at(1), "d": "someday", "doc": "[1, 2]", "when": "yesterday", destination.UnparsedColumn: `{"updated":"x"}`},
		rec{"id": "d", "updated": at(1), "doc": "123"},
	), bookmark(at(1)))

	declared := colSpec("id:string", "updated:timestamp", "d:date", "doc:json", "when:timestamp")
	declared[2].Raw = "d_raw"
	declared = slices.Insert(declared, 3, catalog.Column{Name: "d_raw", Type: catalog.String})
	got := h.prepare(tb, declared)
	want := append(append([]catalog.Column{}, old...), catalog.Column{Name: "d_raw", Type: catalog.String})
	for name, typ := range map[string]catalog.Type{"d": catalog.Date, "doc": catalog.JSON, "when": catalog.Timestamp} {
		want[indexOf(want, name)].Type = typ
	}
	assertColumns(h.t, "after declaring d a date, doc JSON and when a timestamp", got, want)
	h.check(tb,
		rec{"id": "a", "updated": at(1), "d": day(2018, 11, 19), "d_raw": "11/19/2018", "doc": `{"id":1,"name":"Won"}`,
			"when": time.Date(2024, 6, 4, 8, 31, 44, 512000000, time.UTC)},
		rec{"id": "b", "updated": at(1), "d": day(2024, 5, 2), "d_raw": "2024-05-02T16:00:00+00:00", "doc": `"Open"`,
			"when": time.Unix(1759932175, 0).UTC()},
		rec{"id": "c", "updated": at(1), "d_raw": "someday", "doc": `[1,2]`,
			destination.UnparsedColumn: `{"updated":"x","d":"someday","when":"yesterday"}`},
		rec{"id": "d", "updated": at(1), "doc": `"123"`})
	// New rows take the declared types; a second Prepare changes nothing.
	h.write(batch(tb, got, rec{"id": "e", "updated": at(2), "d": day(2026, 1, 2), "d_raw": "1/2/2026", "doc": `"Lost"`}), bookmark(at(2)))
	assertColumns(h.t, "declared again", h.prepare(tb, declared), want)
}

func indexOf(cols []catalog.Column, name string) int {
	for i, c := range cols {
		if c.Name == name {
			return i
		}
	}
	return -1
}

func testState(h *harness) {
	t := h.t
	alpha, beta := table("alpha", catalog.Incremental), table("beta", catalog.AppendOnly)
	gamma := table("gamma", catalog.FullTable)
	odd := table(`odd "stream".name ü`, catalog.Incremental)
	for _, tb := range []destination.Table{alpha, beta, gamma, odd} {
		h.prepare(tb, colSpec("id:string", "updated:timestamp", "created:timestamp"))
	}
	stAlpha := state.Stream{Bookmark: time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC), SchemaVersion: 2, LastSyncAt: t0}
	stBeta := state.Stream{Bookmark: at(-60), SchemaVersion: 2, LastSyncAt: t0}
	stGamma := state.Stream{SchemaVersion: 2, LastSyncAt: t0}
	stOdd := state.Stream{Bookmark: at(1), SchemaVersion: 2, LastSyncAt: t0}
	c := colSpec("id:string", "updated:timestamp", "created:timestamp")
	h.write(batch(alpha, c, rec{"id": "1", "updated": at(0)}), stAlpha)
	h.write(batch(beta, c), stBeta)
	h.write(batch(odd, c, rec{"id": "1", "updated": at(0)}), stOdd)
	h.replace(gamma, stGamma, batch(gamma, c, rec{"id": "1"}))

	other := destination.Table{Source: "other", Stream: catalog.Stream{Name: "delta", PrimaryKey: []string{"id"}, Method: catalog.Incremental, CursorField: "updated"}}
	h.prepare(other, c)
	stOther := state.Stream{Bookmark: at(99), SchemaVersion: 1, LastSyncAt: t0}
	h.write(batch(other, c), stOther)

	check := func(what string, want state.Source) {
		t.Helper()
		got := h.state()
		if len(got) != len(want) {
			t.Errorf("%s: state has streams %v, want %v", what, keys(got), keys(want))
		}
		for name, w := range want {
			g, ok := got[name]
			if !ok || !g.Bookmark.Equal(w.Bookmark) || g.SchemaVersion != w.SchemaVersion || !g.LastSyncAt.Equal(w.LastSyncAt) {
				t.Errorf("%s: state of %q = %+v (present: %v), want %+v", what, name, g, ok, w)
			}
		}
	}
	check("after the first writes", state.Source{"alpha": stAlpha, "beta": stBeta, "gamma": stGamma, odd.Stream.Name: stOdd})

	stAlpha2 := state.Stream{Bookmark: stAlpha.Bookmark.Add(time.Hour), SchemaVersion: 2, LastSyncAt: at(30)}
	h.write(batch(alpha, c), stAlpha2)
	check("after a second write", state.Source{"alpha": stAlpha2, "beta": stBeta, "gamma": stGamma, odd.Stream.Name: stOdd})

	got, err := h.d.State(h.ctx, "other")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !got["delta"].Bookmark.Equal(stOther.Bookmark) {
		t.Errorf(`state of source "other" = %v, want only delta at %v`, got, stOther.Bookmark)
	}
	if got, err := h.d.State(h.ctx, "never-synced"); err != nil || len(got) != 0 {
		t.Errorf("state of an unknown source = %v, %v; want empty", got, err)
	}
}

func keys(s state.Source) []string {
	var out []string
	for k := range s {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// testCrash checks that a failed Write leaves neither its rows nor its bookmark.
func testCrash(h *harness) {
	t := h.t
	tb := table("crashy", catalog.Incremental)
	cols := h.prepare(tb, standardCols)
	first := []rec{{"id": "a", "updated": at(1), "n": 1}, {"id": "b", "updated": at(1), "n": 2}, {"id": "c", "updated": at(1), "n": 3}}
	h.write(batch(tb, cols, first...), bookmark(at(1)))
	next := []rec{{"id": "d", "updated": at(2), "n": 4}, {"id": "e", "updated": at(2), "n": 5}, {"id": "f", "updated": at(2), "n": 6}}

	unchanged := func(what string) {
		t.Helper()
		if got := h.state()[tb.Stream.Name].Bookmark; !got.Equal(at(1)) {
			t.Errorf("%s: bookmark = %v, want it unchanged at %v", what, got, at(1))
		}
		if h.r != nil {
			h.check(tb, first...)
		}
	}

	bad := batch(tb, cols, next...)
	bad.Rows[1][indexOf(cols, "n")] = struct{ unstorable bool }{} // mid-batch: rows before it were sent
	if err := h.d.Write(h.ctx, bad, bookmark(at(2))); err == nil {
		t.Error("Write of a batch holding a value no destination can store succeeded")
	}
	unchanged("after a batch failed mid-way")

	ctx, cancel := context.WithCancel(h.ctx)
	cancel()
	if err := h.d.Write(ctx, batch(tb, cols, next...), bookmark(at(2))); err == nil {
		t.Error("Write with a cancelled context succeeded")
	}
	unchanged("after a cancelled write")

	h.write(batch(tb, cols, next...), bookmark(at(2)))
	if got := h.state()[tb.Stream.Name].Bookmark; !got.Equal(at(2)) {
		t.Errorf("bookmark after the retry = %v, want %v", got, at(2))
	}
	if h.r != nil {
		h.check(tb, append(append([]rec{}, first...), next...)...)
	}

	// A replacement whose write fails is aborted by the engine: the table keeps its rows.
	ft := table("crashy_full", catalog.FullTable)
	fcols := h.prepare(ft, cols)
	h.replace(ft, bookmark(time.Time{}), batch(ft, fcols, first...))
	r, err := h.d.Replace(h.ctx, ft)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Write(h.ctx, batch(ft, fcols, next[0])); err != nil {
		t.Fatal(err)
	}
	bad = batch(ft, fcols, next[1:]...)
	bad.Rows[0][indexOf(fcols, "n")] = struct{ unstorable bool }{}
	if err := r.Write(h.ctx, bad); err == nil {
		t.Error("Replacement.Write of an unstorable value succeeded")
	}
	if err := r.Abort(h.ctx); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	if h.r != nil {
		h.check(ft, first...)
	}
}

// oddNames are table and column names a CRM can produce (custom fields are named by users).
var oddNames = []string{
	`we"ird`,
	`with space`,
	`dot.ted`,
	`ünïcødé 表`,
	`select`,
	`Mixed Case`,
	`'; DROP TABLE x; --`,
	strings.Repeat("x", 100),
	strings.Repeat("x", 99) + "y", // shares 99 bytes with the one above
	strings.Repeat("é", 50),       // 100 bytes, 50 characters
	strings.Repeat("a", 63),
	strings.Repeat("a", 64),
}

func testIdentifiers(h *harness) {
	for i, name := range oddNames {
		h.t.Run(fmt.Sprint(i), func(t *testing.T) {
			h := &harness{t: t, d: h.d, r: h.r, ctx: h.ctx}
			tb := destination.Table{Source: source, Stream: catalog.Stream{
				Name: name, PrimaryKey: []string{name}, Method: catalog.Incremental, CursorField: name + " cursor",
			}}
			cs := []catalog.Column{{Name: name, Type: catalog.String}, {Name: name + " cursor", Type: catalog.Timestamp}}
			for j, other := range oddNames {
				if j != i {
					typ := catalog.String
					if j%2 == 1 {
						typ = catalog.JSON
					}
					cs = append(cs, catalog.Column{Name: other, Type: typ})
				}
			}
			cs = append(cs, destination.MetadataColumns...)
			assertColumns(t, "odd names", h.prepare(tb, cs), cs)
			assertColumns(t, "odd names prepared again", h.prepare(tb, cs[:1]), cs)
			r1, r2 := rec{name: "k1", name + " cursor": at(1)}, rec{name: "k2", name + " cursor": at(2)}
			for _, c := range cs[2 : len(cs)-len(destination.MetadataColumns)] {
				if c.Type == catalog.JSON {
					r1[c.Name], r2[c.Name] = fmt.Sprintf(`{"col":%q}`, c.Name), `[1]`
				} else {
					r1[c.Name], r2[c.Name] = "1:"+c.Name, "2:"+c.Name
				}
			}
			h.write(batch(tb, cs, r1, r2, rec{name: "k1", name + " cursor": at(0)}), bookmark(at(2)))
			if got := h.state()[name].Bookmark; !got.Equal(at(2)) {
				t.Errorf("bookmark of stream %q = %v, want %v", name, got, at(2))
			}
			if h.r == nil {
				return
			}
			rows, err := h.r.Rows(h.ctx, tb)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 2 {
				t.Fatalf("%d rows, want 2", len(rows))
			}
			for _, got := range rows {
				want := r1
				if got[name] == "k2" {
					want = r2
				}
				for _, c := range cs {
					if !equalValue(c.Type, want[c.Name], got[c.Name]) {
						t.Errorf("column %q = %s, want %s", c.Name, short(got[c.Name]), short(want[c.Name]))
					}
				}
			}
		})
	}
}

func testValues(h *harness) {
	t := h.t
	tb := table("values", catalog.Incremental)
	cs := h.prepare(tb, standardCols)
	// About 1 MB each, mostly multi-byte characters.
	big := strings.Repeat("Zoë 日本語 🚀 ", 1<<20/20)
	var items []string
	for i := 0; len(items)*60 < 1<<20; i++ {
		items = append(items, fmt.Sprintf(`{"i":%d,"name":"名前 %d 🚀","ok":true,"v":null}`, i, i))
	}
	bigJSON := `{"items":[` + strings.Join(items, ",") + `]}`
	recs := []rec{
		{"id": "unicode", "updated": at(1), "s": "Zoë 日本語 🚀 עברית e\u0301 \u2028 \"quoted\" back\\slash\ttab\nnewline",
			"j": `{"name":"Zoë 🚀","nested":{"a":[1,2.5,{"b":"日本"}],"empty":{},"none":null},"esc":"\"\\\/\b\f\n\r\t\u00e9"}`},
		{"id": "big", "updated": at(1), "s": big, "j": bigJSON},
		{"id": "extremes", "updated": time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), "n": math.MaxInt64, "x": math.MaxFloat64, "ok": false, "s": "", "j": `[]`},
		{"id": "extremes2", "updated": time.Date(2999, 12, 31, 23, 59, 59, 999999000, time.UTC), "n": math.MinInt64, "x": -5e-324, "ok": true, "j": `{}`},
		{"id": "zone", "updated": time.Date(2024, 1, 2, 3, 4, 5, 123456000, time.FixedZone("UTC+5", 5*3600)), "x": 0.1, "n": 0},
	}
	h.write(batch(tb, cs, recs...), bookmark(at(1)))
	h.check(tb, recs...)

	// NUL cannot be stored everywhere (PostgreSQL text): it may be dropped, but the write must
	// not fail (a stream would be stuck forever) and nothing else may change.
	tn := table("values_nul", catalog.Incremental)
	cs = h.prepare(tn, standardCols)
	h.write(batch(tn, cs, rec{"id": "nul", "s": "a\x00b", "j": `{"k":"a\u0000b","l":"\\u0000"}`}), bookmark(at(1)))
	if h.r == nil {
		return
	}
	rows, err := h.r.Rows(h.ctx, tn)
	if err != nil || len(rows) != 1 {
		t.Fatalf("Rows: %v, %v", rows, err)
	}
	if s := rows[0]["s"]; s != "a\x00b" && s != "ab" {
		t.Errorf("string with NUL read back as %q, want %q or %q", s, "a\x00b", "ab")
	}
	if j := rows[0]["j"]; !equalValue(catalog.JSON, `{"k":"a\u0000b","l":"\\u0000"}`, j) && !equalValue(catalog.JSON, `{"k":"ab","l":"\\u0000"}`, j) {
		t.Errorf("JSON with NUL read back as %q", j)
	}
}

func testNulls(h *harness) {
	nulls := rec{"id": "n"} // every other column NULL, the cursor included
	for _, m := range []catalog.Method{catalog.Incremental, catalog.AppendOnly, catalog.FullTable} {
		h.t.Run(string(m), func(t *testing.T) {
			h := &harness{t: t, d: h.d, r: h.r, ctx: h.ctx}
			tb := table("nulls_"+strings.ToLower(string(m)), m)
			cs := h.prepare(tb, colSpec("id:string", "created:timestamp", "updated:timestamp", "n:integer", "x:number", "ok:boolean", "s:string", "j:json"))
			if m == catalog.FullTable {
				h.replace(tb, bookmark(time.Time{}), batch(tb, cs, nulls))
			} else {
				h.write(batch(tb, cs, nulls), bookmark(at(1)))
				h.write(batch(tb, cs, nulls), bookmark(at(2)))
			}
			if h.r != nil {
				h.check(tb, nulls)
			}
		})
	}
}

func testLock(h *harness) {
	t := h.t
	release, err := h.d.Lock(h.ctx, "close")
	if err != nil {
		t.Fatalf("first Lock: %v", err)
	}
	if rel, err := h.d.Lock(h.ctx, "close"); !errors.Is(err, destination.ErrLocked) {
		if rel != nil {
			rel()
		}
		t.Errorf("second Lock of one source = %v, want ErrLocked", err)
	}
	other, err := h.d.Lock(h.ctx, "copper")
	if err != nil {
		t.Errorf("Lock of another source while the first is held: %v", err)
	} else {
		other()
	}
	release()
	again, err := h.d.Lock(h.ctx, "close")
	if err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
	again()
}

func testOwnership(h *harness) {
	mine := table("shared_name", catalog.Incremental)
	h.prepare(mine, standardCols)
	theirs := mine
	theirs.Source = "intruder"
	if _, err := h.d.Prepare(h.ctx, theirs, standardCols); err == nil {
		h.t.Error("Prepare let a second source claim a table another source owns")
	}
}

// testConcurrentStreams runs several streams at once, as the engine does.
func testConcurrentStreams(h *harness) {
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	tables := make([]destination.Table, 8)
	for i := range tables {
		tables[i] = table(fmt.Sprintf("parallel_%d", i), catalog.Incremental)
		if i%4 == 3 {
			tables[i] = table(fmt.Sprintf("parallel_%d", i), catalog.FullTable)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- func() error {
				tb := tables[i]
				cs, err := h.d.Prepare(h.ctx, tb, standardCols)
				if err != nil {
					return err
				}
				if tb.Stream.Method == catalog.FullTable {
					r, err := h.d.Replace(h.ctx, tb)
					if err != nil {
						return err
					}
					for b := range 5 {
						if err := r.Write(h.ctx, batch(tb, cs, rec{"id": fmt.Sprint(b), "n": b})); err != nil {
							return err
						}
					}
					return r.Commit(h.ctx, bookmark(time.Time{}))
				}
				for b := range 5 {
					if err := h.d.Write(h.ctx, batch(tb, cs, rec{"id": fmt.Sprint(b), "updated": at(b), "n": b}), bookmark(at(b))); err != nil {
						return err
					}
				}
				return nil
			}()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			h.t.Errorf("concurrent stream: %v", err)
		}
	}
	if h.r == nil {
		return
	}
	for _, tb := range tables {
		if n := h.count(tb); n != 5 {
			h.t.Errorf("%s: %d rows, want 5", tb.Stream.Name, n)
		}
	}
}

// claimErr checks that err is a ConflictError refusing exactly the tables of want (by stream
// name, found in the destination's table name) with their owners.
func claimErr(t *testing.T, what string, err error, want map[string]string) {
	t.Helper()
	var ce *destination.ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("%s = %v, want a *destination.ConflictError", what, err)
	}
	if len(ce.Conflicts) != len(want) {
		t.Fatalf("%s refused %v, want %d tables: %v", what, ce.Conflicts, len(want), want)
	}
	for _, c := range ce.Conflicts {
		found := false
		for stream, owner := range want {
			if strings.Contains(c.Table, stream) && c.Owner == owner {
				found = true
			}
		}
		if !found || !strings.Contains(err.Error(), c.Table) {
			t.Errorf("%s: unexpected conflict %+v (want %v) in %q", what, c, want, err)
		}
	}
}

// testClaimAllOrNothing: a second source claiming a set of tables one of which the first owns
// claims none of them, so a sync into a shared destination never half-succeeds.
func testClaimAllOrNothing(h *harness) {
	t := h.t
	of := func(src, name string) destination.Table {
		tb := table(name, catalog.Incremental)
		tb.Source = src
		return tb
	}
	mine := []destination.Table{of(source, "claim_a"), of(source, "claim_b")}
	for range 2 { // claiming again is a no-op
		if err := h.d.Claim(h.ctx, mine); err != nil {
			t.Fatalf("Claim of new tables: %v", err)
		}
	}
	cs := h.prepare(mine[0], standardCols)
	h.write(batch(mine[0], cs, rec{"id": "1", "updated": at(1)}), bookmark(at(1)))

	err := h.d.Claim(h.ctx, []destination.Table{of("intruder", "claim_c"), of("intruder", "claim_a"), of("intruder", "claim_b")})
	claimErr(t, "Claim of another source's tables", err, map[string]string{"claim_a": source, "claim_b": source})
	if _, err := h.d.Prepare(h.ctx, of("intruder", "claim_b"), standardCols); err == nil {
		t.Error("Prepare let a second source take a claimed table")
	}
	// The refused claim registered nothing: a third source may still take claim_c.
	if err := h.d.Claim(h.ctx, []destination.Table{of("third", "claim_c")}); err != nil {
		t.Errorf("claim_c after a refused claim that named it: %v", err)
	}
	if h.r != nil {
		h.check(mine[0], rec{"id": "1", "updated": at(1)})
	}
}

// testForeignTables: crmsync never alters, fills or drops a table it did not create, and
// refuses it before changing anything.
func testForeignTables(h *harness) {
	t := h.t
	f, ok := h.d.(Foreigner)
	if !ok {
		t.Skip("the destination does not implement destinationtest.Foreigner")
	}
	users, leads := table("users", catalog.Incremental), table("leads", catalog.Incremental)
	if err := f.CreateForeign(h.ctx, users); err != nil {
		t.Fatalf("CreateForeign: %v", err)
	}
	before, err := f.DescribeForeign(h.ctx, users)
	if err != nil {
		t.Fatal(err)
	}
	err = h.d.Claim(h.ctx, []destination.Table{leads, users})
	claimErr(t, "Claim of an application's table", err, map[string]string{"users": ""})
	if !strings.Contains(err.Error(), "not created by crmsync") {
		t.Errorf("the refusal does not say why: %v", err)
	}
	_, err = h.d.Prepare(h.ctx, users, standardCols)
	claimErr(t, "Prepare of an application's table", err, map[string]string{"users": ""})
	after, err := f.DescribeForeign(h.ctx, users)
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Errorf("the application's table changed:\nbefore: %s\n after: %s", before, after)
	}
	// Nothing was claimed: another source may take leads.
	other := leads
	other.Source = "other"
	if err := h.d.Claim(h.ctx, []destination.Table{other}); err != nil {
		t.Errorf("leads after a refused claim that named it: %v", err)
	}
}

// fieldNames are field names some database cannot take as column names as they are: names
// differing only in case (SQLite compares names case-insensitively), the names of SQLite's
// rowid, NUL bytes (SQLite and PostgreSQL end names at NUL), a name equal to another once its
// NUL is removed, and the empty name. (Invalid UTF-8 never reaches a name: record decoding
// replaces it, as in values.)
var fieldNames = []string{"Name", "name", "EMAIL", "email", "Email", "ID", "rowid", "ROWID", "oid", "_rowid_",
	"nul\x00byte", "nulbyte", ""}

// testFieldNames: every field is stored in a column of its own and read back under its own
// name, on the first run and the next ones, whatever the order the fields come in.
func testFieldNames(h *harness) {
	for _, m := range []catalog.Method{catalog.Incremental, catalog.AppendOnly, catalog.FullTable} {
		h.t.Run(string(m), func(t *testing.T) {
			h := &harness{t: t, d: h.d, r: h.r, ctx: h.ctx}
			tb := table("field_names_"+strings.ToLower(string(m)), m)
			base := colSpec("id:string", "created:timestamp", "updated:timestamp")
			var odd []catalog.Column
			for _, n := range fieldNames {
				odd = append(odd, catalog.Column{Name: n, Type: catalog.String})
			}
			// The table first, then the odd fields as drift, in reverse order, the way the
			// engine adds the fields a record brings.
			h.prepare(tb, base)
			want := append(slices.Clone(base), odd...)
			slices.Reverse(odd)
			got := h.prepare(tb, odd)
			if len(got) != len(want) {
				t.Fatalf("Prepare = %v, want the columns %v", got, want)
			}
			for _, c := range want {
				if i := indexOf(got, c.Name); i < 0 || got[i].Type != c.Type {
					t.Errorf("Prepare lost column %q (%s): %v", c.Name, c.Type, got)
				}
			}
			assertColumns(t, "prepared again", h.prepare(tb, nil), got)
			r := func(id string, v int) rec {
				out := rec{"id": id, "created": at(0), "updated": at(v)}
				for i, n := range fieldNames {
					out[n] = fmt.Sprintf("%d:%d", v, i)
				}
				return out
			}
			if m == catalog.FullTable {
				h.replace(tb, bookmark(time.Time{}), batch(tb, got, r("a", 1), r("b", 1)))
				h.replace(tb, bookmark(time.Time{}), batch(tb, got, r("a", 2), r("b", 1)))
			} else {
				h.write(batch(tb, got, r("a", 1), r("b", 1)), bookmark(at(1)))
				h.write(batch(tb, got, r("a", 2)), bookmark(at(2)))
			}
			if h.r == nil {
				return
			}
			if m == catalog.AppendOnly {
				h.check(tb, r("a", 1), r("b", 1), r("a", 2))
			} else {
				h.check(tb, r("a", 2), r("b", 1))
			}
		})
	}
}
