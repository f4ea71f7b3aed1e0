package closesim

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
)

type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, a ...any) *apiError {
	return &apiError{400, fmt.Sprintf(format, a...)}
}

// timeBound converts "field <op> t" (t in unix micros, maybe with a
// sub-microsecond remainder rem>0) into a half-open micro interval.
func timeBound(op string, us int64, frac bool) (span, bool) {
	sp := anyTime
	switch op {
	case "gt", ">":
		sp.lo = us + 1
	case "gte", ">=":
		sp.lo = us
		if frac {
			sp.lo = us + 1
		}
	case "lt", "<":
		sp.hi = us
		if frac {
			sp.hi = us + 1
		}
	case "lte", "<=":
		sp.hi = us + 1
	default:
		return sp, false
	}
	return sp, true
}

// rangeParams reads field__gt/gte/lt/lte (ISO 8601, naive = UTC).
func rangeParams(q url.Values, field string) (span, error) {
	sp := anyTime
	for _, op := range []string{"gt", "gte", "lt", "lte"} {
		name := field + "__" + op
		v, ok := q[name]
		if !ok {
			continue
		}
		t, ok := parseTime(v[len(v)-1])
		if !ok {
			return sp, badRequest("Invalid value for %s: %q is not an ISO 8601 date-time.", name, v[len(v)-1])
		}
		us := t.UnixMicro()
		b, _ := timeBound(op, us, t.Nanosecond()%1000 != 0)
		sp = sp.and(b)
	}
	return sp, nil
}

// parseLeadQuery understands the subset of the (deprecated) lead search
// language that incremental readers use:
//
//	date_updated>="2024-01-01T00:00" date_updated<"2024-02-01T00:00" sort:date_updated
//
// Fields date_updated / date_created (aliases updated / created), operators
// > >= < <= (spaces around the operator allowed), values quoted or not, and
// sort:[-]date_updated|date_created (aliases updated|created). The language
// has minute precision: both the record's timestamp and the value are
// truncated to the minute before comparing, so date_updated>="…T10:05"
// matches everything from 10:05:00.000000 on, and date_updated<"…T10:05"
// excludes all of minute 10:05. A value without a zone is read in zone (see
// Config.QueryZone). With exact (Config.QueryExactMinute) the
// value means exactly HH:MM:00.000000 and the record keeps its full
// precision: <= "10:05" excludes 10:05:05, > "10:05" includes 10:05:00.5.
// Any other term → 400.
func parseLeadQuery(qs string, exact bool, zone time.Duration) (created, updated span, order int, desc bool, err error) {
	created, updated, order = anyTime, anyTime, fID
	p := 0
	skipWS := func() {
		for p < len(qs) && (qs[p] == ' ' || qs[p] == '\t' || qs[p] == '\n') {
			p++
		}
	}
	word := func() string {
		st := p
		for p < len(qs) && !strings.ContainsRune(" \t\n<>=\"'", rune(qs[p])) {
			p++
		}
		return qs[st:p]
	}
	for {
		skipWS()
		if p >= len(qs) {
			return
		}
		w := word()
		if w == "" {
			return created, updated, order, desc, badRequest("Invalid query near %q.", qs[p:])
		}
		if f, ok := strings.CutPrefix(w, "sort:"); ok {
			desc = strings.HasPrefix(f, "-")
			switch strings.TrimPrefix(f, "-") {
			case "date_updated", "updated":
				order = fUpdated
			case "date_created", "created":
				order = fCreated
			default:
				return created, updated, order, desc, badRequest("Unsupported sort in query: %q.", w)
			}
			continue
		}
		var target *span
		switch w {
		case "date_updated", "updated":
			target = &updated
		case "date_created", "created":
			target = &created
		default:
			return created, updated, order, desc, badRequest("Unsupported query term: %q.", w)
		}
		skipWS()
		op := ""
		for p < len(qs) && (qs[p] == '<' || qs[p] == '>' || qs[p] == '=') {
			op += string(qs[p])
			p++
		}
		skipWS()
		var val string
		if p < len(qs) && (qs[p] == '"' || qs[p] == '\'') {
			q := qs[p]
			end := strings.IndexByte(qs[p+1:], q)
			if end < 0 {
				return created, updated, order, desc, badRequest("Unterminated quote in query.")
			}
			val = qs[p+1 : p+1+end]
			p += end + 2
		} else {
			st := p
			for p < len(qs) && qs[p] != ' ' && qs[p] != '\t' {
				p++
			}
			val = qs[st:p]
		}
		t, ok := parseTime(val)
		if !ok {
			return created, updated, order, desc, badRequest("Invalid date in query: %q.", val)
		}
		if naive(val) {
			t = t.Add(-zone) // the value is a wall-clock time in that zone
		}
		m := floorDiv(t.UnixMicro(), usPerMinute) * usPerMinute
		var b span
		if exact {
			var ok bool
			if b, ok = timeBound(op, m, false); !ok {
				return created, updated, order, desc, badRequest("Unsupported operator %q in query.", op)
			}
			*target = target.and(b)
			continue
		}
		switch op { // minute granularity, see above
		case ">=":
			b = span{m, math.MaxInt64}
		case ">":
			b = span{m + usPerMinute, math.MaxInt64}
		case "<":
			b = span{math.MinInt64, m}
		case "<=":
			b = span{math.MinInt64, m + usPerMinute}
		default:
			return created, updated, order, desc, badRequest("Unsupported operator %q in query.", op)
		}
		*target = target.and(b)
	}
}

// ---- paging ----

func intParam(q url.Values, name string, def int) (int, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, badRequest("Invalid %s: %q must be a non-negative integer.", name, v)
	}
	return n, nil
}

func (s *Server) paging(q url.Values, maxLimit int, capSkip bool) (skip, limit int, err error) {
	if skip, err = intParam(q, "_skip", 0); err != nil {
		return
	}
	if limit, err = intParam(q, "_limit", 100); err != nil {
		return
	}
	if limit == 0 {
		limit = 100
	}
	if limit > maxLimit {
		return 0, 0, badRequest("Invalid _limit: it must be less than or equal to %d.", maxLimit)
	}
	if capSkip && skip > s.maxSk {
		return 0, 0, badRequest("The skip you set is larger than the maximum skip for this resource (max_skip = %d). Please refine your search query.", s.maxSk)
	}
	return skip, min(limit, maxLimit), nil
}

// ---- event cursor ----

// evCursor is the opaque _cursor of /event/: the position of the last
// event served (keyset, so new events never shift later pages) and the
// date_updated window of the walk (not repeated by clients).
type evCursor struct {
	t   int64
	g   int64
	win span
}

func (c evCursor) encode() string {
	raw := fmt.Sprintf("v1:%d:%d:%d:%d", c.t, c.g, c.win.lo, c.win.hi)
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func decodeCursor(v string) (evCursor, error) {
	var c evCursor
	raw, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return c, errors.New("bad cursor")
	}
	parts := strings.Split(string(raw), ":")
	if len(parts) != 5 || parts[0] != "v1" {
		return c, errors.New("bad cursor")
	}
	var nums [4]int64
	for i := range nums {
		if nums[i], err = strconv.ParseInt(parts[i+1], 10, 64); err != nil {
			return c, errors.New("bad cursor")
		}
	}
	return evCursor{t: nums[0], g: nums[1], win: span{nums[2], nums[3]}}, nil
}

// naive reports whether a date-time value carries no zone: nothing after its date but the time.
func naive(v string) bool {
	if len(v) <= 10 {
		return true
	}
	return !strings.ContainsAny(v[10:], "Zz+-")
}
