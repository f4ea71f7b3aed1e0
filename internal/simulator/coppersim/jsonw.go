package coppersim

import (
	"strconv"
	"time"

	"github.com/crmsync/crmsync/internal/simulator/jsonenc"
)

// Hand-rolled JSON appenders: serving a 200-record page must cost about a
// millisecond, which encoding/json over maps cannot do.

// appendStr appends s as a JSON string. s must be valid UTF-8 (all generated
// text is); non-ASCII is written raw, as Copper does.
func appendStr(b []byte, s string) []byte { return jsonenc.AppendString(b, s) }

// nstr is a nullable string.
type nstr struct {
	s  string
	ok bool
}

func some(s string) nstr { return nstr{s, true} }

// orNull turns "" into null (the pools use "" for "no value").
func orNull(s string) nstr { return nstr{s, s != ""} }

func appendNStr(b []byte, v nstr) []byte {
	if !v.ok {
		return append(b, "null"...)
	}
	return appendStr(b, v.s)
}

func appendInt(b []byte, v int64) []byte { return strconv.AppendInt(b, v, 10) }

// appendNInt writes v, or null when !ok.
func appendNInt(b []byte, v int64, ok bool) []byte {
	if !ok {
		return append(b, "null"...)
	}
	return strconv.AppendInt(b, v, 10)
}

// appendID writes an id, with 0 meaning null (no Copper id is 0).
func appendID(b []byte, id int64) []byte { return appendNInt(b, id, id != 0) }

func appendFloat(b []byte, f float64) []byte { return strconv.AppendFloat(b, f, 'f', -1, 64) }

func appendBool(b []byte, v bool) []byte { return strconv.AppendBool(b, v) }

// appendCloseDate writes an opportunity close_date: "M/D/YYYY", no padding.
func appendCloseDate(b []byte, ts int64) []byte {
	t := time.Unix(ts, 0).UTC()
	b = append(b, '"')
	b = strconv.AppendInt(b, int64(t.Month()), 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(t.Day()), 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(t.Year()), 10)
	return append(b, '"')
}

// errorBody is Copper's observed error shape.
func errorBody(status int, msg string) []byte {
	b := make([]byte, 0, 64+len(msg))
	b = append(b, `{"success":false,"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"message":`...)
	b = appendStr(b, msg)
	return append(b, '}')
}
