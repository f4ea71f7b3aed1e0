package record

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/catalog"
)

func TestInferAndConvert(t *testing.T) {
	obj, err := DecodeObject([]byte(`{"i": 5015299552, "big": 123456789012345678901234, "f": 1.5, "b": true, "s": "x", "o": {"a":1}, "a": [1], "n": null}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		field string
		infer catalog.Type
		conv  any
	}{
		{"i", catalog.Integer, int64(5015299552)},
		{"big", catalog.String, "123456789012345678901234"},
		{"f", catalog.Number, 1.5},
		{"b", catalog.Boolean, true},
		{"s", catalog.String, "x"},
		{"o", catalog.JSON, `{"a":1}`},
		{"a", catalog.JSON, `[1]`},
		{"n", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			v := obj[tt.field]
			if got := Infer(v); got != tt.infer {
				t.Fatalf("Infer = %q, want %q", got, tt.infer)
			}
			typ := tt.infer
			if typ == "" {
				typ = catalog.String
			}
			got, err := Convert(v, typ)
			if err != nil || got != tt.conv {
				t.Fatalf("Convert = %#v, %v; want %#v", got, err, tt.conv)
			}
		})
	}
}

func TestFitsAndWiden(t *testing.T) {
	tests := []struct {
		v    any
		t    catalog.Type
		fits bool
	}{
		{json.Number("3"), catalog.Number, true},
		{json.Number("3.5"), catalog.Integer, false},
		{"abc", catalog.Integer, false},
		{"2024-06-04T08:31:44.512000+00:00", catalog.Timestamp, true},
		{json.Number("1759932175"), catalog.Timestamp, true},
		{"soon", catalog.Timestamp, false},
		{map[string]any{}, catalog.String, true},
		{"x", catalog.JSON, true}, // a JSON column holds a string as a JSON string
		{json.Number("3"), catalog.JSON, true},
		{"11/19/2018", catalog.Date, true},
		{"2024-06-10", catalog.Date, true},
		{"2024-06-10T16:00:00+00:00", catalog.Date, true},
		{"19/11/2018", catalog.Date, false},
		{"soon", catalog.Date, false},
		{true, catalog.Date, false},
		{nil, catalog.Integer, true},
	}
	for _, tt := range tests {
		if got := Fits(tt.v, tt.t); got != tt.fits {
			t.Errorf("Fits(%#v, %s) = %v, want %v", tt.v, tt.t, got, tt.fits)
		}
	}
	if catalog.Widen(catalog.Integer, catalog.Number) != catalog.Number || catalog.Widen(catalog.Number, catalog.String) != catalog.String ||
		catalog.Widen(catalog.Timestamp, catalog.String) != catalog.String || catalog.Widen("", catalog.JSON) != catalog.JSON {
		t.Fatal("Widen must only widen: integer → number → string")
	}
}

// TestConvertIfFits checks the one-step conversion against Fits and Convert on every pair of
// value shape and column type.
func TestConvertIfFits(t *testing.T) {
	values := []any{nil, true, "x", "2024-06-04T08:31:44.512000+00:00", "6/4/2024", "2024-06-04", json.Number("3"), json.Number("3.5"),
		json.Number("123456789012345678901234"), json.Number("1759932175"), json.RawMessage(`{"a":1}`), json.RawMessage(`[1]`),
		map[string]any{"a": 1.0}}
	types := []catalog.Type{catalog.Integer, catalog.Number, catalog.Boolean, catalog.Timestamp, catalog.Date, catalog.String, catalog.JSON}
	for _, v := range values {
		for _, typ := range types {
			got, ok := ConvertIfFits(v, typ)
			if fits := Fits(v, typ); ok != fits {
				t.Errorf("ConvertIfFits(%#v, %s) fits = %v, Fits says %v", v, typ, ok, fits)
				continue
			}
			if !ok {
				continue
			}
			want, err := Convert(v, typ)
			if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("ConvertIfFits(%#v, %s) = %#v, Convert gives %#v, %v", v, typ, got, want, err)
			}
		}
	}
}

func TestParseTime(t *testing.T) {
	want := time.Date(2023, 4, 7, 10, 1, 14, 670000000, time.UTC)
	tests := []struct {
		in   any
		want time.Time
	}{
		{"2023-04-07T10:01:14.670000+00:00", want},
		{"2023-04-07T10:01:14.670000", want}, // Close event log: no offset means UTC
		{"2023-04-07T12:01:14.67+02:00", want},
		{"2021-09-17T21:29:12+00:00", time.Date(2021, 9, 17, 21, 29, 12, 0, time.UTC)},
		{json.Number("1545168280"), time.Unix(1545168280, 0).UTC()},
	}
	for _, tt := range tests {
		got, err := ParseTime(tt.in)
		if err != nil || !got.Equal(tt.want) || got.Location() != time.UTC {
			t.Errorf("ParseTime(%v) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	if _, err := ParseTime("07/04/2023"); err == nil {
		t.Error("ParseTime accepted a non-ISO date")
	}
}

// TestParseTimeRefusesWhatIsNoInstant: malformed dates, and numbers or dates outside the years
// 1–9999 (unix milliseconds read as seconds, overflowing floats), are errors — never a
// wrapped-around instant a destination cannot store or sort. A fraction finer than
// nanoseconds is truncated.
func TestParseTimeRefusesWhatIsNoInstant(t *testing.T) {
	bad := []any{"yesterday", "2024-13-45T00:00:00Z", "", "2024-02-30T00:00:00Z", "9999-12-31T23:00:00-05:00",
		json.Number("1e30"), json.Number("99999999999999999999"), json.Number("1700000000000000"), json.Number("-1e300"),
		float64(1e20), int64(-62135596801), true, map[string]any{}}
	for _, v := range bad {
		if tm, err := ParseTime(v); err == nil {
			t.Errorf("ParseTime(%#v) = %s, want an error", v, tm)
		}
		if Fits(v, catalog.Timestamp) {
			t.Errorf("Fits(%#v, timestamp) = true", v)
		}
	}
	good := map[any]time.Time{
		"2024-01-01T00:00:00.123456789012Z": time.Date(2024, 1, 1, 0, 0, 0, 123456789, time.UTC),
		json.Number("1759932175"):           time.Unix(1759932175, 0).UTC(),
		json.Number("1759932175.5"):         time.Unix(1759932175, 5e8).UTC(),
		json.Number("253402300799"):         time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		"0001-01-01T00:00:00Z":              time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for v, want := range good {
		if got, err := ParseTime(v); err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%#v) = %s, %v; want %s", v, got, err, want)
		}
	}
}

// TestParseDate: the day forms both APIs send become that day (midnight UTC); a date-time
// gives the day as written in its own offset; what is no day is an error.
func TestParseDate(t *testing.T) {
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	tests := []struct {
		in   any
		want time.Time // zero: an error
	}{
		{"11/19/2018", day(2018, 11, 19)}, // Copper close_date: M/D/YYYY, no padding
		{"1/2/2026", day(2026, 1, 2)},
		{"01/02/2026", day(2026, 1, 2)},
		{"2024-06-10", day(2024, 6, 10)},                // Close date-only values
		{"2024-05-02T16:00:00+00:00", day(2024, 5, 2)},  // a Close task date that is a date-time
		{"2024-05-02T23:30:00-04:00", day(2024, 5, 2)},  // the day as written, not the UTC day
		{"2024-05-02T10:01:14.670000", day(2024, 5, 2)}, // no offset
		{json.Number("1545168280"), day(2018, 12, 18)},  // unix seconds: the UTC day
		{"0001-01-02", day(1, 1, 2)}, {"9999-12-31", day(9999, 12, 31)},
		{"0000-01-01", time.Time{}}, {"2/30/2024", time.Time{}}, {"13/1/2024", time.Time{}}, {"19/11/2018", time.Time{}},
		{"2024-6-10", time.Time{}}, {"", time.Time{}}, {"soon", time.Time{}}, {true, time.Time{}}, {json.RawMessage(`{}`), time.Time{}},
	}
	for _, tt := range tests {
		got, err := ParseDate(tt.in)
		switch {
		case tt.want.IsZero() && err == nil:
			t.Errorf("ParseDate(%#v) = %v, want an error", tt.in, got)
		case !tt.want.IsZero() && (err != nil || !got.Equal(tt.want) || got.Location() != time.UTC):
			t.Errorf("ParseDate(%#v) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

// TestJSONColumnValues: a JSON column stores every value as a JSON document — a string as a
// JSON string (never bare text that cannot be told from an object), objects as themselves.
func TestJSONColumnValues(t *testing.T) {
	tests := []struct {
		in   any
		want string
	}{
		{"Open", `"Open"`},
		{`{"a":1}`, `"{\"a\":1}"`}, // a string that looks like an object stays a string
		{"a<b & c>", `"a<b & c>"`},
		{json.RawMessage(`{"id":1,"name":"Won"}`), `{"id":1,"name":"Won"}`},
		{json.RawMessage(`[1,2]`), `[1,2]`},
		{json.Number("12345678901234567890"), `12345678901234567890`},
		{true, `true`},
	}
	for _, tt := range tests {
		got, err := Convert(tt.in, catalog.JSON)
		if err != nil || got != tt.want {
			t.Errorf("Convert(%#v, json) = %#v, %v; want %s", tt.in, got, err, tt.want)
		}
		if !json.Valid([]byte(got.(string))) {
			t.Errorf("Convert(%#v, json) = %s: not JSON", tt.in, got)
		}
	}
	for in, want := range map[string]string{
		`{"id": 1, "name": "Won"}`: `{"id": 1, "name": "Won"}`, // the text of an object: that object
		` [1]`:                     ` [1]`,
		"Open":                     `"Open"`,
		"123":                      `"123"`, // only objects and arrays were stored as their JSON text
		`{"broken"`:                `"{\"broken\""`,
		"":                         `""`,
	} {
		if got := JSONFromText(in); got != want {
			t.Errorf("JSONFromText(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestSize: a record's size counts its names and values, nested JSON included, and a fixed
// cost per field, so a batch bound by it tracks the memory the records hold.
func TestSize(t *testing.T) {
	small := Record{"id": "a"}
	for _, tt := range []struct {
		name string
		r    Record
		min  int
	}{
		{"string value", Record{"id": "a", "note": strings.Repeat("x", 1000)}, small.Size() + 1000 + len("note")},
		{"nested JSON", Record{"id": "a", "contacts": json.RawMessage(strings.Repeat("[]", 500))}, small.Size() + 1000},
		{"number", Record{"id": "a", "n": json.Number("12345678901234567890")}, small.Size() + 20},
		{"null still costs its field", Record{"id": "a", "gone": nil}, small.Size() + len("gone") + 1},
	} {
		if got := tt.r.Size(); got < tt.min {
			t.Errorf("%s: Size = %d, want at least %d", tt.name, got, tt.min)
		}
	}
}
