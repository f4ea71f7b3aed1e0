// Package record holds the in-flight form of an API record and the conversion of its values
// to the typed values destinations store.
package record

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/crmsync/crmsync/internal/catalog"
)

// Record is one API object as decoded JSON. Numbers are json.Number so that integers beyond
// 2^53 (Copper activity ids) and the integer/number distinction survive decoding.
type Record map[string]any

// Size estimates the memory a record holds: the bytes of its names and values and a fixed
// cost per field (map slot, interface, headers). Engines bound the records they hold by it.
func (r Record) Size() int {
	n := 48
	for k, v := range r {
		n += len(k) + 56
		switch x := v.(type) {
		case string:
			n += len(x)
		case json.RawMessage:
			n += len(x)
		case json.Number:
			n += len(x)
		}
	}
	return n
}

// Unfit is a value known not to fit the column it is meant for, though it might look as if it
// did (an option id a custom field's definition lacks is a number, not the label its text
// column holds). It never fits: the engine sets Value aside as it does a timestamp that does
// not parse.
type Unfit struct{ Value any }

// Infer returns the logical type of a decoded JSON value, or "" for null (unknown yet).
func Infer(v any) catalog.Type {
	switch x := v.(type) {
	case nil, Unfit:
		return "" // an unfit value says nothing of its column's type
	case bool:
		return catalog.Boolean
	case json.Number:
		if _, err := x.Int64(); err == nil {
			return catalog.Integer
		}
		if f, err := x.Float64(); err == nil && !math.IsInf(f, 0) && strings.ContainsAny(string(x), ".eE") {
			return catalog.Number
		}
		return catalog.String // an integer beyond int64 is kept exact as text
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return catalog.Integer
		}
		return catalog.Number
	case int, int64:
		return catalog.Integer
	case string:
		return catalog.String
	case map[string]any, []any, json.RawMessage:
		return catalog.JSON
	default:
		return catalog.String
	}
}

// Fits reports whether v can be stored in a column of type t without loss.
func Fits(v any, t catalog.Type) bool {
	if v == nil {
		return true
	}
	if _, unfit := v.(Unfit); unfit {
		return false
	}
	switch t {
	case catalog.String, catalog.JSON:
		return true // a JSON column holds any JSON value: a string is stored as a JSON string
	case catalog.Timestamp:
		_, err := ParseTime(v)
		return err == nil
	case catalog.Date:
		_, err := ParseDate(v)
		return err == nil
	case catalog.Number:
		it := Infer(v)
		return it == catalog.Number || it == catalog.Integer
	default:
		return Infer(v) == t
	}
}

// Convert turns a decoded JSON value into the Go value stored for a column of type t:
// int64, float64, bool, time.Time (UTC; midnight UTC of the day for catalog.Date), string
// (JSON text for catalog.JSON: any value, a string as a JSON string), or nil.
// Callers check Fits first; Convert reports an error when the value does not fit.
func Convert(v any, t catalog.Type) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch t {
	case catalog.Integer:
		switch x := v.(type) {
		case json.Number:
			return x.Int64()
		case float64:
			if x == math.Trunc(x) {
				return int64(x), nil
			}
		case int64:
			return x, nil
		case int:
			return int64(x), nil
		}
	case catalog.Number:
		switch x := v.(type) {
		case json.Number:
			return x.Float64()
		case float64:
			return x, nil
		case int64:
			return float64(x), nil
		case int:
			return float64(x), nil
		}
	case catalog.Boolean:
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case catalog.Timestamp:
		return ParseTime(v)
	case catalog.Date:
		return ParseDate(v)
	case catalog.JSON:
		switch x := v.(type) {
		case json.RawMessage:
			return rawString(x), nil
		case json.Number:
			return string(x), nil
		case bool:
			return strconv.FormatBool(x), nil
		case string:
			return jsonString(x), nil
		case float64, int, int64, map[string]any, []any:
			b, err := json.Marshal(v)
			if err != nil {
				return nil, err
			}
			return string(b), nil
		}
	case catalog.String:
		switch x := v.(type) {
		case string:
			return x, nil
		case json.Number:
			return string(x), nil
		case bool:
			return strconv.FormatBool(x), nil
		case json.RawMessage:
			return rawString(x), nil
		case map[string]any, []any:
			b, err := json.Marshal(x)
			if err != nil {
				return nil, err
			}
			return string(b), nil
		default:
			return fmt.Sprint(x), nil
		}
	}
	return nil, fmt.Errorf("value %s does not fit a %s column", preview(v), t)
}

// rawString is a nested value's text as a string sharing its bytes: the decoders' raw values
// are slices of a page no one writes to, and copying every nested object and array once more
// was a third of Convert's CPU.
func rawString(raw json.RawMessage) string {
	return unsafe.String(unsafe.SliceData(raw), len(raw))
}

// ConvertIfFits is Fits and Convert in one step (a timestamp is parsed once): the stored value
// and true, or false when v does not fit a column of type t.
func ConvertIfFits(v any, t catalog.Type) (any, bool) {
	switch x := v.(type) {
	case string:
		if t == catalog.String {
			return v, true // as it is: boxing the string again cost an allocation per value
		}
	case json.RawMessage:
		if t == catalog.JSON || t == catalog.String {
			return rawString(x), true
		}
	}
	switch {
	case v == nil:
		return nil, true
	case t == catalog.Timestamp:
		tm, err := ParseTime(v)
		return tm, err == nil
	case t == catalog.Date:
		d, err := ParseDate(v)
		return d, err == nil
	case !Fits(v, t):
		return nil, false
	}
	c, err := Convert(v, t)
	return c, err == nil
}

// jsonString is s as a JSON string, with <, > and & as they are (json.Marshal would escape them).
func jsonString(s string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}

// JSONFromText is the JSON document a text value becomes when its column turns from text into
// JSON (a replica written before the column was declared JSON, which stored objects as their
// JSON text and strings as they were): text that is a JSON object or array is that document;
// any other text is a JSON string. Both SQL destinations apply the same rule in SQL.
func JSONFromText(s string) string {
	if t := strings.TrimLeft(s, " \t\r\n"); t != "" && (t[0] == '{' || t[0] == '[') && json.Valid([]byte(t)) {
		return s
	}
	return jsonString(s)
}

// RawText is a value as the API sent it, for a column that keeps it beside its typed form
// (catalog.Column.Raw): a string as it is, anything else as its JSON text.
func RawText(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case json.Number:
		return string(x), nil
	case json.RawMessage:
		return string(x), nil
	}
	b, err := json.Marshal(v)
	return string(b), err
}

// ParseDate reads a calendar day: YYYY-MM-DD, M/D/YYYY (Copper's close_date; no zero padding
// needed), or an ISO 8601 date-time, whose day is taken as written (in the offset it was sent
// with: the day its writer meant), or unix seconds (the UTC day; some Copper clients send a
// close_date so). The day is returned as midnight UTC. Days outside the years 1–9999 are refused.
func ParseDate(v any) (time.Time, error) {
	var (
		d   time.Time
		err error
	)
	switch x := v.(type) {
	case string:
		d, err = parseDateText(x)
	case json.Number, float64, int64, time.Time:
		d, err = ParseTime(v)
	default:
		err = errors.New("not a date")
	}
	if err != nil || d.Year() < 1 {
		return time.Time{}, fmt.Errorf("not a date: %s", preview(v))
	}
	y, m, day := d.Date()
	return time.Date(y, m, day, 0, 0, 0, 0, time.UTC), nil
}

func parseDateText(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02", "1/2/2006"} {
		if d, err := time.Parse(layout, s); err == nil {
			return d, nil
		}
	}
	for _, layout := range isoLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil // not in UTC: the day as written
		}
	}
	return time.Time{}, errors.New("not a date")
}

// DateLayout is how a day is written where it is text (SQLite, Singer): sorts in day order.
const DateLayout = "2006-01-02"

// ParseTime reads the instants both APIs send: ISO 8601 strings with or without offset or
// fraction (naive means UTC, as Close's event log sends them) and unix seconds (Copper).
// Instants outside the years 1–9999 are refused: no API means them (unix milliseconds read as
// seconds land there), and neither destination stores them as instants that sort.
func ParseTime(v any) (time.Time, error) {
	t, err := parseTime(v)
	if err == nil && (t.Before(minTime) || t.After(maxTime)) {
		return time.Time{}, fmt.Errorf("not a timestamp: %s is outside the years 1–9999", preview(v))
	}
	return t, err
}

// The instants ParseTime accepts: 0001-01-01T00:00:00Z through 9999-12-31T23:59:59.999999999Z.
var (
	minTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
)

func parseTime(v any) (time.Time, error) {
	switch x := v.(type) {
	case time.Time:
		return x.UTC(), nil
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return unixTime(float64(n))
		}
		f, err := x.Float64()
		if err != nil {
			return time.Time{}, fmt.Errorf("not a timestamp: %s", preview(v))
		}
		return unixTime(f)
	case float64:
		return unixTime(x)
	case int64:
		return unixTime(float64(x))
	case string:
		return ParseISOTime(x)
	}
	return time.Time{}, fmt.Errorf("not a timestamp: %s", preview(v))
}

// unixTime is the instant f seconds after the unix epoch; seconds beyond the years ParseTime
// accepts (or not a number) are an error rather than an overflowed instant.
func unixTime(f float64) (time.Time, error) {
	if !(f >= float64(minTime.Unix()) && f < float64(maxTime.Unix()+1)) {
		return time.Time{}, fmt.Errorf("not a timestamp: %v seconds is outside the years 1–9999", f)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
}

var isoLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04",
}

// ParseISOTime parses an ISO 8601 date-time; a value without offset is taken as UTC.
func ParseISOTime(s string) (time.Time, error) {
	for _, layout := range isoLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("not an ISO 8601 date-time: %s", preview(s))
}

func preview(v any) string {
	s := fmt.Sprintf("%v", v)
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return strconv.Quote(s)
}
