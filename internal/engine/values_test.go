package engine

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, to read PostgreSQL back

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/destination/dsn"
	"github.com/crmsync/crmsync/internal/destination/memory"
	"github.com/crmsync/crmsync/internal/destination/postgres/pgtest"
	"github.com/crmsync/crmsync/internal/record"
	"github.com/crmsync/crmsync/internal/source"
)

// These tests feed the engine values real accounts send and the destinations must survive:
// timestamps that do not parse and records without a primary key. They run on every
// destination, since the rule that protects a row from regressing lives in each of them.

// valueDest is a destination with a way to read its rows back.
type valueDest struct {
	dst destination.Destination
	// rows returns the named columns of every row of s's table, ordered by id; timestamps as
	// UTC time.Time, JSON as compact text with sorted keys, NULL as nil.
	rows func(t *testing.T, s catalog.Stream, cols ...string) []map[string]any
}

func valueDests() map[string]func(t *testing.T) valueDest {
	return map[string]func(t *testing.T) valueDest{
		"memory": func(t *testing.T) valueDest {
			dst := memory.New(memory.Options{})
			return valueDest{dst: dst, rows: func(t *testing.T, s catalog.Stream, cols ...string) []map[string]any {
				t.Helper()
				all, err := dst.Rows(context.Background(), destination.Table{Source: "scripted", Stream: s})
				if err != nil {
					t.Fatal(err)
				}
				out := make([]map[string]any, len(all))
				for i, r := range all {
					out[i] = map[string]any{}
					for _, c := range cols {
						out[i][c] = normalizeValue(r[c])
					}
				}
				slices.SortFunc(out, func(a, b map[string]any) int { return strings.Compare(fmt.Sprint(a["id"]), fmt.Sprint(b["id"])) })
				return out
			}}
		},
		"sqlite": func(t *testing.T) valueDest {
			path := filepath.Join(t.TempDir(), "values.db")
			return sqlValueDest(t, "sqlite:"+path, "sqlite", path, func(table string) string { return quoteIdent(table) })
		},
		"postgres": func(t *testing.T) valueDest {
			url := pgtest.NewDatabase(t)
			return sqlValueDest(t, url, "pgx", url, func(table string) string { return quoteIdent("scripted") + "." + quoteIdent(table) })
		},
	}
}

func sqlValueDest(t *testing.T, dest, driver, conn string, ref func(table string) string) valueDest {
	t.Helper()
	dst, _, err := dsn.Open(context.Background(), dest, "", "scripted")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dst.Close() })
	db, err := sql.Open(driver, conn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return valueDest{dst: dst, rows: func(t *testing.T, s catalog.Stream, cols ...string) []map[string]any {
		t.Helper()
		quoted := make([]string, len(cols))
		for i, c := range cols {
			quoted[i] = quoteIdent(c)
		}
		rows, err := db.Query(fmt.Sprintf("SELECT %s FROM %s ORDER BY id", strings.Join(quoted, ", "), ref(s.Name)))
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []map[string]any
		for rows.Next() {
			vals := make([]any, len(cols))
			if err := rows.Scan(pointersTo(vals)...); err != nil {
				t.Fatal(err)
			}
			m := map[string]any{}
			for i, c := range cols {
				m[c] = normalizeValue(vals[i])
			}
			out = append(out, m)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}}
}

// pointersTo returns a pointer to each of vals, for rows.Scan.
func pointersTo(vals []any) []any {
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	return ptrs
}

// normalizeValue makes a value read back comparable across destinations.
func normalizeValue(v any) any {
	switch x := v.(type) {
	case []byte:
		return normalizeValue(string(x))
	case time.Time:
		return x.UTC()
	case map[string]any:
		b, _ := json.Marshal(x)
		return string(b)
	case string:
		if tm, err := record.ParseISOTime(x); err == nil {
			return tm
		}
		var m map[string]any
		if strings.HasPrefix(x, "{") && json.Unmarshal([]byte(x), &m) == nil {
			return normalizeValue(m)
		}
	}
	return v
}

// unparsedJSON is what UnparsedColumn holds for fields, normalized as normalizeValue does.
func unparsedJSON(fields map[string]any) any {
	b, err := json.Marshal(fields)
	if err != nil {
		panic(err)
	}
	return normalizeValue(string(b))
}

// scriptedStream serves one stream, running read as its next sync's read.
func scriptedStream(s catalog.Stream, read *func(ctx context.Context, out source.Emitter) error) *scriptedSource {
	return &scriptedSource{version: 1, streams: []catalog.Stream{s}, read: func(ctx context.Context, _ catalog.Stream, _ source.Window, out source.Emitter) error {
		return (*read)(ctx, out)
	}}
}

func emitAll(recs ...record.Record) func(ctx context.Context, out source.Emitter) error {
	return func(ctx context.Context, out source.Emitter) error {
		for _, r := range recs {
			if err := out.Record(ctx, r); err != nil {
				return err
			}
		}
		return nil
	}
}

// TestUnparsableTimestampKeepsItsColumn: a value that does not parse in a timestamp column —
// the cursor or another one — leaves the column a timestamp column: the row is stored with
// NULL there and the raw value in _crmsync_unparsed, the report counts it, the bookmark the
// source justified is committed with the row, and a later valid version of the row replaces
// it (the malformed value never looks newer). Before, the column widened to text, and
// "yesterday" sorted after every real date, so every later update of the row was dropped.
func TestUnparsableTimestampKeepsItsColumn(t *testing.T) {
	bad := []any{"yesterday", "2024-13-45T10:00:00Z", "", json.Number("1700000000000000")}
	s := catalog.Stream{Name: "items", PrimaryKey: []string{"id"}, Method: catalog.Incremental, CursorField: "updated",
		Columns: catalog.Cols("id:str", "updated:ts", "due:ts", "n:int")}
	tb := destination.Table{Source: "scripted", Stream: s}
	cols := []string{"id", "updated", "due", destination.UnparsedColumn}
	for name, open := range valueDests() {
		t.Run(name, func(t *testing.T) {
			d := open(t)
			var read func(ctx context.Context, out source.Emitter) error
			src := scriptedStream(s, &read)
			now := syncStart
			run := func() (Report, error) {
				t.Helper()
				return Run(context.Background(), src, d.dst, testOptions(now))
			}

			// 1. Malformed values, a checkpoint, then the read fails: the rows are committed
			// with the checkpoint, their timestamps NULL and kept raw.
			lost := errors.New("connection lost")
			read = func(ctx context.Context, out source.Emitter) error {
				for i, v := range bad {
					if err := out.Record(ctx, record.Record{"id": fmt.Sprintf("item_%d", i), "updated": v, "due": v, "n": json.Number("1")}); err != nil {
						return err
					}
				}
				if err := out.Checkpoint(ctx, hour(10)); err != nil {
					return err
				}
				return lost
			}
			rep, err := run()
			if !errors.Is(err, ErrStreamsFailed) || !errors.Is(rep.Stream("items").Err, lost) {
				t.Fatalf("sync 1: %v, stream error %v; want the read's failure", err, rep.Stream("items").Err)
			}
			if got := rep.Stream("items"); got.Rows != 4 || got.Unparsed != 8 || !hasNote(got, destination.UnparsedColumn) || !hasNote(got, `"yesterday"`) {
				t.Fatalf("sync 1 report: %d rows, %d unparsed, notes %q; want 4 rows, 8 unparsed and a note with a sample", got.Rows, got.Unparsed, got.Notes)
			}
			if bm := savedState(t, d.dst, "items").Bookmark; !bm.Equal(hour(10)) {
				t.Fatalf("bookmark after sync 1: %s, want the checkpoint %s", bm, hour(10))
			}
			typed, err := d.dst.Prepare(context.Background(), tb, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []string{"updated", "due"} {
				if i := catalog.IndexOf(typed, c); i < 0 || typed[i].Type != catalog.Timestamp {
					t.Fatalf("column %s after malformed values: %v; want it to stay a timestamp column", c, typed)
				}
			}
			rows := d.rows(t, s, cols...)
			if len(rows) != len(bad) {
				t.Fatalf("sync 1 stored %d rows, want %d", len(rows), len(bad))
			}
			for i, v := range bad {
				want := map[string]any{"id": fmt.Sprintf("item_%d", i), "updated": nil, "due": nil,
					destination.UnparsedColumn: unparsedJSON(map[string]any{"updated": v, "due": v})}
				if fmt.Sprint(rows[i]) != fmt.Sprint(want) {
					t.Fatalf("row %d after sync 1:\n got %v\nwant %v", i, rows[i], want)
				}
			}

			// 2. Valid versions of the same rows replace them, whatever the malformed value was.
			now = syncStart.Add(time.Hour)
			var valid []record.Record
			for i := range bad {
				valid = append(valid, record.Record{"id": fmt.Sprintf("item_%d", i), "updated": hour(20).Format(time.RFC3339), "due": hour(21).Format(time.RFC3339)})
			}
			read = emitAll(valid...)
			if rep, err := run(); err != nil || rep.Stream("items").Unparsed != 0 {
				t.Fatalf("sync 2: %v, %d unparsed", err, rep.Stream("items").Unparsed)
			}
			for i, r := range d.rows(t, s, cols...) {
				want := map[string]any{"id": fmt.Sprintf("item_%d", i), "updated": hour(20), "due": hour(21), destination.UnparsedColumn: nil}
				if fmt.Sprint(r) != fmt.Sprint(want) {
					t.Fatalf("row %d after a valid newer version:\n got %v\nwant %v", i, r, want)
				}
			}

			// 3. A malformed version read after a valid one is stored (it is what the API
			// says now), and a valid version, even an older one, replaces it in turn: an
			// unparsable stored cursor is older than any valid one.
			now = syncStart.Add(2 * time.Hour)
			read = emitAll(record.Record{"id": "item_0", "updated": "yesterday"})
			if _, err := run(); err != nil {
				t.Fatal(err)
			}
			if r := d.rows(t, s, cols...)[0]; r["updated"] != nil || r[destination.UnparsedColumn] != unparsedJSON(map[string]any{"updated": "yesterday"}) {
				t.Fatalf("item_0 after a malformed version: %v", r)
			}
			now = syncStart.Add(3 * time.Hour)
			read = emitAll(record.Record{"id": "item_0", "updated": hour(15).Format(time.RFC3339)})
			if _, err := run(); err != nil {
				t.Fatal(err)
			}
			if r := d.rows(t, s, cols...)[0]; r["updated"] != hour(15) || r[destination.UnparsedColumn] != nil {
				t.Fatalf("item_0 after a valid version replaced the malformed one: %v", r)
			}
		})
	}
}

// TestUnparsableVersionIsStoredOnce: an append-only stream keeps every version of a record,
// identified by its version field. A version whose field does not parse is stored once (its
// version NULL, the raw value in _crmsync_unparsed) however often it is read again, and a
// valid version is stored beside it.
func TestUnparsableVersionIsStoredOnce(t *testing.T) {
	s := itemsStream("items", catalog.AppendOnly)
	s.VersionField = "updated"
	for name, open := range valueDests() {
		t.Run(name, func(t *testing.T) {
			d := open(t)
			read := emitAll(record.Record{"id": "item_0", "updated": "yesterday"})
			src := scriptedStream(s, &read)
			for run := 1; run <= 3; run++ {
				if run == 3 {
					read = emitAll(record.Record{"id": "item_0", "updated": "yesterday"}, record.Record{"id": "item_0", "updated": hour(1).Format(time.RFC3339)})
				}
				rep, err := Run(context.Background(), src, d.dst, testOptions(syncStart.Add(time.Duration(run)*time.Hour)))
				if err != nil || rep.Stream("items").Unparsed != 1 {
					t.Fatalf("run %d: %v, %d unparsed", run, err, rep.Stream("items").Unparsed)
				}
			}
			rows := d.rows(t, s, "id", "updated", destination.UnparsedColumn)
			slices.SortFunc(rows, func(a, b map[string]any) int {
				return strings.Compare(fmt.Sprint(a["updated"]), fmt.Sprint(b["updated"]))
			})
			want := fmt.Sprint([]map[string]any{
				{"id": "item_0", "updated": hour(1), destination.UnparsedColumn: nil},
				{"id": "item_0", "updated": nil, destination.UnparsedColumn: unparsedJSON(map[string]any{"updated": "yesterday"})},
			})
			if fmt.Sprint(rows) != want {
				t.Fatalf("versions stored:\n got %v\nwant %v", rows, want)
			}
		})
	}
}

// TestUnparsableValueInOtherColumnsStillWidens: only timestamp columns keep their type; an
// integer column that receives text widens to text as before (schema drift), and nothing of
// it goes to _crmsync_unparsed.
func TestUnparsableValueInOtherColumnsStillWidens(t *testing.T) {
	s := catalog.Stream{Name: "items", PrimaryKey: []string{"id"}, Method: catalog.Incremental, CursorField: "updated",
		Columns: catalog.Cols("id:str", "updated:ts", "n:int")}
	d := valueDests()["memory"](t)
	read := emitAll(record.Record{"id": "item_0", "updated": hour(1).Format(time.RFC3339), "n": "abc"})
	rep, err := Run(context.Background(), scriptedStream(s, &read), d.dst, testOptions(syncStart))
	if err != nil || rep.Stream("items").Unparsed != 0 {
		t.Fatalf("sync: %v, %d unparsed", err, rep.Stream("items").Unparsed)
	}
	cols, err := d.dst.Prepare(context.Background(), destination.Table{Source: "scripted", Stream: s}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if i := catalog.IndexOf(cols, "n"); i < 0 || cols[i].Type != catalog.String {
		t.Fatalf("columns %v: want n widened to string", cols)
	}
	if r := d.rows(t, s, "id", "n", destination.UnparsedColumn)[0]; r["n"] != "abc" || r[destination.UnparsedColumn] != nil {
		t.Fatalf("row %v", r)
	}
}

// TestRecordsWithoutKeyAreSkipped: a record whose primary key is missing or null is not
// written — SQLite stored it as a NULL-key row, one more on every run, and PostgreSQL failed
// the whole table — but counted, with a sample, in the report; the table still syncs.
func TestRecordsWithoutKeyAreSkipped(t *testing.T) {
	recs := []record.Record{
		{"id": "item_0", "updated": hour(1).Format(time.RFC3339)},
		{"updated": hour(2).Format(time.RFC3339), "name": "no id"},
		{"id": nil, "updated": hour(3).Format(time.RFC3339)},
	}
	for name, open := range valueDests() {
		for _, m := range []catalog.Method{catalog.Incremental, catalog.AppendOnly, catalog.FullTable} {
			t.Run(name+"/"+string(m), func(t *testing.T) {
				d := open(t)
				s := itemsStream("items", m)
				read := emitAll(recs...)
				src := scriptedStream(s, &read)
				for run := 1; run <= 2; run++ {
					rep, err := Run(context.Background(), src, d.dst, testOptions(syncStart.Add(time.Duration(run)*time.Hour)))
					if err != nil {
						t.Fatalf("run %d: %v", run, err)
					}
					got := rep.Stream("items")
					if got.Rows != 1 || got.Skipped != 2 || !hasNote(got, "primary key") || !hasNote(got, "no id") {
						t.Fatalf("run %d report: %d rows, %d skipped, notes %q; want 1 row, 2 skipped and a note with a sample", run, got.Rows, got.Skipped, got.Notes)
					}
					if rows := d.rows(t, s, "id"); len(rows) != 1 || rows[0]["id"] != "item_0" {
						t.Fatalf("run %d stored %v, want item_0 alone", run, rows)
					}
				}
			})
		}
	}
}

func hasNote(r StreamReport, substr string) bool {
	for _, n := range r.Notes {
		if strings.Contains(n, substr) {
			return true
		}
	}
	return false
}

func quoteIdent(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

// TestDaysAndJSONDocuments: a date column stores the day each form means (Copper's M/D/YYYY,
// a date, the day of a date-time as written) and a column declared to keep the field as sent
// holds the API's text; a day that does not parse is NULL and kept raw. A JSON column holds
// JSON documents only: an object as itself, a string as a JSON string — even one that reads
// like an object — in every destination.
func TestDaysAndJSONDocuments(t *testing.T) {
	s := catalog.Stream{Name: "typed", PrimaryKey: []string{"id"}, Method: catalog.Incremental, CursorField: "updated",
		Columns: catalog.Cols("id:str", "updated:ts", "day:date+raw", "doc:json")}
	recs := []record.Record{
		{"id": "a", "updated": "2024-06-04T08:00:00Z", "day": "11/19/2018", "doc": json.RawMessage(`{"id":1,"name":"Won"}`)},
		{"id": "b", "updated": "2024-06-04T08:00:00Z", "day": "2024-05-02T23:30:00-04:00", "doc": "Open"},
		{"id": "c", "updated": "2024-06-04T08:00:00Z", "day": "2024-06-10", "doc": `{"id":1}`},
		{"id": "d", "updated": "2024-06-04T08:00:00Z", "day": "someday", "doc": json.RawMessage(`["x"]`)},
		{"id": "e", "updated": "2024-06-04T08:00:00Z"},
	}
	want := []struct {
		day, raw string // "": NULL
		doc      any    // decoded
		unparsed any
	}{
		{"2018-11-19", "11/19/2018", map[string]any{"id": 1.0, "name": "Won"}, nil},
		{"2024-05-02", "2024-05-02T23:30:00-04:00", "Open", nil},
		{"2024-06-10", "2024-06-10", `{"id":1}`, nil},
		{"", "someday", []any{"x"}, unparsedJSON(map[string]any{"day": "someday"})},
		{"", "", nil, nil},
	}
	for name, open := range valueDests() {
		t.Run(name, func(t *testing.T) {
			d := open(t)
			read := emitAll(recs...)
			if _, err := Run(context.Background(), scriptedStream(s, &read), d.dst, testOptions(syncStart)); err != nil {
				t.Fatal(err)
			}
			rows := d.rows(t, s, "id", "day", "day_raw", "doc", destination.UnparsedColumn)
			if len(rows) != len(want) {
				t.Fatalf("%d rows, want %d", len(rows), len(want))
			}
			for i, w := range want {
				r := rows[i]
				day := r["day"]
				if tm, ok := day.(time.Time); ok {
					day = tm.Format(record.DateLayout)
				}
				var doc any
				if r["doc"] != nil {
					if err := json.Unmarshal([]byte(jsonText(r["doc"])), &doc); err != nil {
						t.Errorf("row %s: doc %#v is not JSON", r["id"], r["doc"])
					}
				}
				if fmt.Sprint(day) != fmt.Sprint(orNil(w.day)) || fmt.Sprint(r["day_raw"]) != fmt.Sprint(normalizeValue(orNil(w.raw))) ||
					fmt.Sprint(doc) != fmt.Sprint(w.doc) || fmt.Sprint(r[destination.UnparsedColumn]) != fmt.Sprint(w.unparsed) {
					t.Errorf("row %s: day %v, day_raw %v, doc %#v, unparsed %v; want %v, %v, %#v, %v", r["id"], day, r["day_raw"], doc,
						r[destination.UnparsedColumn], orNil(w.day), orNil(w.raw), w.doc, w.unparsed)
				}
			}
		})
	}
}

// jsonText is a JSON column's value as text: normalizeValue has decoded and re-encoded objects.
func jsonText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

func orNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}
