// Package jsonenc is the JSON writer both simulators build their answers with: they append
// JSON by hand (per-record maps would cost too much memory and time at a million records),
// and these appenders are the pieces that must be exactly right. Shapes of one API (Close's
// timestamps and ids, Copper's dates) stay with its simulator.
package jsonenc

import "strconv"

const hexDigits = "0123456789abcdef"

var needsEscape = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return
}()

// AppendEscaped appends s escaped for a JSON string, without quotes. Non-ASCII text is kept as
// UTF-8, as the real APIs send it.
func AppendEscaped(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !needsEscape[c] {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"':
			b = append(b, '\\', '"')
		case '\\':
			b = append(b, '\\', '\\')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	return append(b, s[start:]...)
}

// AppendString appends s as a quoted JSON string.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	b = AppendEscaped(b, s)
	return append(b, '"')
}

// AppendStringOrNull appends s as a JSON string, or null when !ok.
func AppendStringOrNull(b []byte, s string, ok bool) []byte {
	if !ok {
		return AppendNull(b)
	}
	return AppendString(b, s)
}

// AppendNull appends null.
func AppendNull(b []byte) []byte { return append(b, "null"...) }

// AppendInt appends v.
func AppendInt(b []byte, v int64) []byte { return strconv.AppendInt(b, v, 10) }

// AppendIntOrNull appends v, or null when !ok.
func AppendIntOrNull(b []byte, v int64, ok bool) []byte {
	if !ok {
		return AppendNull(b)
	}
	return AppendInt(b, v)
}

// AppendFloat appends f in the shortest form that reads back exactly, without an exponent.
func AppendFloat(b []byte, f float64) []byte { return strconv.AppendFloat(b, f, 'f', -1, 64) }

// AppendBool appends true or false.
func AppendBool(b []byte, v bool) []byte { return strconv.AppendBool(b, v) }
