package singer

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/state"
)

var (
	at    = time.Date(2024, 5, 6, 7, 8, 9, 500_000_000, time.UTC)
	leads = catalog.Stream{Name: "leads", PrimaryKey: []string{"id"}, Method: catalog.Incremental, CursorField: "updated",
		Columns: []catalog.Column{{Name: "id", Type: catalog.String}, {Name: "updated", Type: catalog.Timestamp}, {Name: "data", Type: catalog.JSON}, {Name: "note", Type: catalog.String}}}
	users = catalog.Stream{Name: "users", PrimaryKey: []string{"id"}, Method: catalog.FullTable,
		Columns: []catalog.Column{{Name: "id", Type: catalog.Integer}}}
)

func lines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var msgs []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

func types(msgs []map[string]any) string {
	var ts []string
	for _, m := range msgs {
		ts = append(ts, m["type"].(string))
	}
	return strings.Join(ts, " ")
}

// TestWrite: SCHEMA once (again on drift), RECORDs with JSON as JSON and instants as RFC 3339,
// then a STATE holding every stream's bookmark; deselected fields are left out, keys are not.
func TestWrite(t *testing.T) {
	var out bytes.Buffer
	prev := state.Source{"users": {SchemaVersion: 1, LastSyncAt: at}}
	d := New(&out, Options{State: prev, Now: func() time.Time { return at },
		Fields: map[string]Fields{"leads": {Excluded: map[string]bool{"note": true, "id": true}}}})
	ctx := context.Background()
	tl := destination.Table{Source: "close", Stream: leads}
	cols, err := d.Prepare(ctx, tl, leads.Columns)
	if err != nil || len(cols) != 4 {
		t.Fatal(cols, err)
	}
	if _, err := d.Prepare(ctx, tl, leads.Columns); err != nil { // nothing new: no SCHEMA
		t.Fatal(err)
	}
	b := destination.Batch{Table: tl, Columns: leads.Columns, Rows: [][]any{{"l1", at, `{"a":[1,2]}`, "hi"}, {"l2", nil, nil, nil}}}
	if err := d.Write(ctx, b, state.Stream{Bookmark: at, SchemaVersion: 1}); err != nil {
		t.Fatal(err)
	}
	drift := append(append([]catalog.Column{}, leads.Columns...), catalog.Column{Name: "extra", Type: catalog.Integer})
	if cols, _ = d.Prepare(ctx, tl, drift); len(cols) != 5 {
		t.Fatalf("drift: %v", cols)
	}
	msgs := lines(t, out.String())
	if got := types(msgs); got != "SCHEMA RECORD RECORD STATE SCHEMA" {
		t.Fatalf("messages %s", got)
	}
	schema := msgs[0]["schema"].(map[string]any)["properties"].(map[string]any)
	if _, ok := schema["note"]; ok {
		t.Error("an excluded field is in the schema")
	}
	if _, ok := schema["id"]; !ok {
		t.Error("the key was excluded")
	}
	rec := msgs[1]["record"].(map[string]any)
	if rec["updated"] != "2024-05-06T07:08:09.5Z" || rec["id"] != "l1" {
		t.Errorf("record %v", rec)
	}
	if data, ok := rec["data"].(map[string]any); !ok || len(data["a"].([]any)) != 2 {
		t.Errorf("JSON field %#v is not JSON", rec["data"])
	}
	if _, ok := rec["note"]; ok {
		t.Error("an excluded field is in a record")
	}
	if msgs[1]["time_extracted"] != "2024-05-06T07:08:09.5Z" {
		t.Errorf("time_extracted %v", msgs[1]["time_extracted"])
	}
	raw, _ := json.Marshal(msgs[3]["value"])
	st, err := ParseState(raw, "close")
	if err != nil || !st["leads"].Bookmark.Equal(at) || st["users"].LastSyncAt.IsZero() {
		t.Errorf("state %s: %v, %v", raw, st, err)
	}
}

// TestReplace: a full table's records carry a version that ACTIVATE_VERSION activates on
// commit, before the STATE; an aborted replacement activates nothing.
func TestReplace(t *testing.T) {
	var out bytes.Buffer
	d := New(&out, Options{Now: func() time.Time { return at }})
	ctx := context.Background()
	tu := destination.Table{Source: "close", Stream: users}
	if _, err := d.Prepare(ctx, tu, users.Columns); err != nil {
		t.Fatal(err)
	}
	r, _ := d.Replace(ctx, tu)
	r.Write(ctx, destination.Batch{Table: tu, Columns: users.Columns, Rows: [][]any{{int64(1)}}})
	r.Commit(ctx, state.Stream{SchemaVersion: 1, LastSyncAt: at})
	aborted, _ := d.Replace(ctx, tu)
	aborted.Write(ctx, destination.Batch{Table: tu, Columns: users.Columns, Rows: [][]any{{int64(2)}}})
	aborted.Abort(ctx)
	msgs := lines(t, out.String())
	if got := types(msgs); got != "SCHEMA RECORD ACTIVATE_VERSION STATE RECORD" {
		t.Fatalf("messages %s", got)
	}
	if msgs[1]["version"] != msgs[2]["version"] || msgs[2]["version"] == nil {
		t.Errorf("record version %v, activated %v", msgs[1]["version"], msgs[2]["version"])
	}
}

func TestParseState(t *testing.T) {
	for in, wantErr := range map[string]bool{
		``:   false,
		`{}`: false,
		`{"version":1,"source":"close","bookmarks":{}}`:                      false,
		`{"version":2,"source":"close"}`:                                     true,
		`{"version":1,"source":"copper"}`:                                    true,
		`{"version":1,"source":"close","bookmarks":{"leads":{"version":9}}}`: true,
		`[`: true,
	} {
		if _, err := ParseState([]byte(in), "close"); (err != nil) != wantErr {
			t.Errorf("%q: error %v", in, err)
		}
	}
}

func TestValue(t *testing.T) {
	for _, f := range []float64{math.NaN(), math.Inf(1)} {
		if v := Value(catalog.Number, f); v != nil {
			t.Errorf("%v: %v, want null", f, v)
		}
	}
	if v := Value(catalog.String, `{"a":1}`); v != `{"a":1}` {
		t.Errorf("a string column's JSON-looking text changed: %v", v)
	}
	// Days are dates, JSON columns any JSON value: a JSON string is a string in the record.
	for _, tt := range []struct {
		typ  catalog.Type
		in   any
		want string
	}{
		{catalog.Date, time.Date(2018, 11, 19, 0, 0, 0, 0, time.UTC), `"2018-11-19"`},
		{catalog.Timestamp, time.Date(2018, 11, 19, 0, 0, 0, 0, time.UTC), `"2018-11-19T00:00:00Z"`},
		{catalog.JSON, `"Open"`, `"Open"`},
		{catalog.JSON, `{"id":1}`, `{"id":1}`},
	} {
		b, err := json.Marshal(Value(tt.typ, tt.in))
		if err != nil || string(b) != tt.want {
			t.Errorf("Value(%s, %v) encodes as %s, %v; want %s", tt.typ, tt.in, b, err, tt.want)
		}
	}
	if s := TypeSchema(catalog.Date); s["format"] != "date" {
		t.Errorf("a date's schema: %v", s)
	}
}
