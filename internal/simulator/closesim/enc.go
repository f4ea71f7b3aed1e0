package closesim

import (
	"strings"
	"time"
	"unicode/utf8"

	"github.com/crmsync/crmsync/internal/simulator/jsonenc"
	"github.com/crmsync/crmsync/internal/simulator/simfault"
)

// enc is a minimal append-only JSON writer. Records are generated straight
// into it (no intermediate maps) so that serving a page costs little more
// than the bytes it produces.
//
// Top-level record fields are written with f(); when a _fields selection is
// active, an unselected field is written and then cut off again at the next
// f()/endRec(). Writing then truncating keeps the random draws of a record
// identical whatever _fields asks for, so a projection always agrees with the
// full record.
type enc struct {
	b     []byte
	comma bool // a value was just completed: the next item needs a ','

	sel       fieldSet // nil = every field
	skipping  bool
	mark      int
	markComma bool
}

type fieldSet map[string]bool

// has reports whether the top-level key k is selected. "custom" selects every
// custom field ("custom" object and all flat "custom.cf_..." keys), as the
// real API does.
func (fs fieldSet) has(k string) bool {
	if fs[k] {
		return true
	}
	return fs["custom"] && strings.HasPrefix(k, "custom.")
}

func parseFields(v string) fieldSet {
	if v == "" {
		return nil
	}
	fs := fieldSet{}
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			fs[p] = true
		}
	}
	if len(fs) == 0 {
		return nil
	}
	return fs
}

func (e *enc) reset() {
	e.b = e.b[:0]
	e.comma = false
	e.sel = nil
	e.skipping = false
}

func (e *enc) pre() {
	if e.comma {
		e.b = append(e.b, ',')
	}
}

// key writes an object key (ASCII, no escaping needed).
func (e *enc) key(k string) {
	e.pre()
	e.b = append(e.b, '"')
	e.b = append(e.b, k...)
	e.b = append(e.b, '"', ':')
	e.comma = false
}

// keyQ writes an object key that may need escaping (custom field names).
func (e *enc) keyQ(k string) {
	e.pre()
	e.b = jsonenc.AppendString(e.b, k)
	e.b = append(e.b, ':')
	e.comma = false
}

// want reports whether a top-level field will survive the selection; used to
// skip generating heavy nested parts (which use their own random streams).
func (e *enc) want(k string) bool { return e.sel == nil || e.sel.has(k) }

func (e *enc) flush() {
	if e.skipping {
		e.b = e.b[:e.mark]
		e.comma = e.markComma
		e.skipping = false
	}
}

// f writes a top-level record key, honouring the _fields selection.
func (e *enc) f(k string) {
	if e.sel != nil {
		e.flush()
		if !e.sel.has(k) {
			e.mark, e.markComma, e.skipping = len(e.b), e.comma, true
		}
	}
	e.key(k)
}

// fQ is f for keys that may need escaping.
func (e *enc) fQ(k string) {
	if e.sel != nil {
		e.flush()
		if !e.sel.has(k) {
			e.mark, e.markComma, e.skipping = len(e.b), e.comma, true
		}
	}
	e.keyQ(k)
}

// endRec closes a record. With no selection active (also while a record is
// embedded in another one, see writeEvent) there is nothing to cut.
func (e *enc) endRec() {
	if e.sel != nil {
		e.flush()
	}
	e.end()
}

func (e *enc) obj()    { e.pre(); e.b = append(e.b, '{'); e.comma = false }
func (e *enc) end()    { e.b = append(e.b, '}'); e.comma = true }
func (e *enc) arr()    { e.pre(); e.b = append(e.b, '['); e.comma = false }
func (e *enc) endArr() { e.b = append(e.b, ']'); e.comma = true }
func (e *enc) emptyArr() {
	e.pre()
	e.b = append(e.b, '[', ']')
	e.comma = true
}
func (e *enc) emptyObj() {
	e.pre()
	e.b = append(e.b, '{', '}')
	e.comma = true
}
func (e *enc) null() { e.pre(); e.b = jsonenc.AppendNull(e.b); e.comma = true }
func (e *enc) str(s string) {
	e.pre()
	e.b = jsonenc.AppendString(e.b, s)
	e.comma = true
}
func (e *enc) strOrNull(s string) {
	if s == "" {
		e.null()
		return
	}
	e.str(s)
}
func (e *enc) int(n int64) {
	e.pre()
	e.b = jsonenc.AppendInt(e.b, n)
	e.comma = true
}
func (e *enc) boolean(v bool) {
	e.pre()
	e.b = jsonenc.AppendBool(e.b, v)
	e.comma = true
}
func (e *enc) raw(s string) { e.pre(); e.b = append(e.b, s...); e.comma = true }

// ts writes an API date-time ("2024-06-04T08:31:44.512000+00:00", no
// fraction when it is zero).
func (e *enc) ts(us int64) {
	e.pre()
	e.b = append(e.b, '"')
	e.b = appendTS(e.b, us, true)
	e.b = append(e.b, '"')
	e.comma = true
}

// tsNaive writes an event-log date-time: no offset, like the real event log.
func (e *enc) tsNaive(us int64) {
	e.pre()
	e.b = append(e.b, '"')
	e.b = appendTS(e.b, us, false)
	e.b = append(e.b, '"')
	e.comma = true
}

func (e *enc) date(us int64) {
	e.pre()
	e.b = append(e.b, '"')
	e.b = appendDate(e.b, us)
	e.b = append(e.b, '"')
	e.comma = true
}

// id writes a quoted Close-style id: prefix + 11 order-preserving base62
// digits of key + filler up to n characters.
func (e *enc) id(prefix string, key uint64, n int) {
	e.pre()
	e.b = append(e.b, '"')
	e.b = appendID(e.b, prefix, key, n)
	e.b = append(e.b, '"')
	e.comma = true
}

// ---- time ----

const (
	usPerSec    = int64(1e6)
	usPerMinute = 60 * usPerSec
	usPerHour   = 60 * usPerMinute
	usPerDay    = 24 * usPerHour
)

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// civil converts days since 1970-01-01 to a proleptic Gregorian date
// (H. Hinnant's algorithm); much cheaper than going through time.Time.
func civil(z int64) (y, m, d int64) {
	z += 719468
	era := floorDiv(z, 146097)
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	if mp < 10 {
		m = mp + 3
	} else {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	return
}

func append2(b []byte, v int64) []byte { return append(b, byte('0'+v/10), byte('0'+v%10)) }

func appendDate(b []byte, us int64) []byte {
	y, m, d := civil(floorDiv(us, usPerDay))
	b = append(b, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-')
	b = append2(b, m)
	b = append(b, '-')
	return append2(b, d)
}

func appendTS(b []byte, us int64, zone bool) []byte {
	b = appendDate(b, us)
	rem := us - floorDiv(us, usPerDay)*usPerDay
	sec := rem / usPerSec
	frac := rem % usPerSec
	b = append(b, 'T')
	b = append2(b, sec/3600)
	b = append(b, ':')
	b = append2(b, sec/60%60)
	b = append(b, ':')
	b = append2(b, sec%60)
	if frac != 0 {
		b = append(b, '.')
		for div := int64(100000); div > 0; div /= 10 {
			b = append(b, byte('0'+frac/div%10))
		}
	}
	if zone {
		b = append(b, "+00:00"...)
	}
	return b
}

func fmtTS(us int64) string { return string(appendTS(nil, us, true)) }

// parseTime accepts the ISO 8601 forms clients send as filter values: date
// only, minutes, seconds, any fraction, with or without zone (Z, ±hh:mm,
// ±hhmm); naive values are UTC. A space instead of 'T' is accepted too.
func parseTime(v string) (time.Time, bool) {
	v = strings.TrimSpace(v)
	if len(v) > 10 && v[10] == ' ' {
		v = v[:10] + "T" + v[11:]
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, v); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

var timeLayouts = []string{
	"2006-01-02T15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04",
	"2006-01-02",
}

// ---- hashing and ids ----

// unmix64 inverts simfault.Mix64 (it is a bijection), which lets an id be mapped
// back to its record without any lookup table.
func unmix64(z uint64) uint64 {
	z ^= z>>31 ^ z>>62
	z *= invC2
	z ^= z>>27 ^ z>>54
	z *= invC1
	z ^= z>>30 ^ z>>60
	return z
}

var invC1, invC2 = modInverse(0xBF58476D1CE4E5B9), modInverse(0x94D049BB133111EB)

func modInverse(a uint64) uint64 {
	x := a // Newton iteration for the inverse of an odd number mod 2^64
	for i := 0; i < 6; i++ {
		x *= 2 - a*x
	}
	return x
}

// rng is the shared splitmix64 stream; its bounded draws are the ones closesim's data was
// always generated with.
type rng = simfault.Rand

func pick[T any](r *rng, xs []T) T { return xs[r.Intn(len(xs))] }

const b62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// appendID writes prefix + fixed-width base62(key) + deterministic filler.
// The base62 alphabet is in ASCII order, so ids sort like their keys.
func appendID(b []byte, prefix string, key uint64, n int) []byte {
	b = append(b, prefix...)
	var d [11]byte
	k := key
	for i := 10; i >= 0; i-- {
		d[i] = b62[k%62]
		k /= 62
	}
	b = append(b, d[:]...)
	var f uint64
	for i := 11; i < n; i++ {
		if (i-11)%10 == 0 { // 10 six-bit characters per 64-bit draw
			f = simfault.Mix64(key ^ 0x5DEECE66D + uint64(i)*0x9E3779B97F4A7C15)
		}
		b = append(b, b64ish[f&63])
		f >>= 6
	}
	return b
}

// b64ish maps 6 bits to a base62 character (two repeat; ids only need to
// look random).
const b64ish = b62 + "Qz"

func makeID(prefix string, key uint64, n int) string { return string(appendID(nil, prefix, key, n)) }

// parseIDKey recovers the key encoded in an id made by appendID.
func parseIDKey(id, prefix string, n int) (uint64, bool) {
	if !strings.HasPrefix(id, prefix) || len(id) != len(prefix)+n || !utf8.ValidString(id) {
		return 0, false
	}
	var k uint64
	for i := 0; i < 11; i++ {
		c := id[len(prefix)+i]
		var v uint64
		switch {
		case c >= '0' && c <= '9':
			v = uint64(c - '0')
		case c >= 'A' && c <= 'Z':
			v = uint64(c-'A') + 10
		case c >= 'a' && c <= 'z':
			v = uint64(c-'a') + 36
		default:
			return 0, false
		}
		hi := k * 62
		if k != 0 && hi/62 != k {
			return 0, false
		}
		k = hi + v
		if k < hi {
			return 0, false
		}
	}
	return k, true
}
