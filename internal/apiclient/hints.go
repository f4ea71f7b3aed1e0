package apiclient

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"time"
)

// budget is what a RateLimit header says about the limit a request is closest to.
type budget struct {
	limit, remaining int
	reset            time.Duration // until the budget is restored
}

// The IETF draft form Close sends: `RateLimit: limit=100, remaining=0, reset=1` (reset may be
// fractional). Keys are matched one by one, so their order and spacing do not matter.
var (
	limitParam     = regexp.MustCompile(`(?i)\blimit\s*=\s*(\d+)`)
	remainingParam = regexp.MustCompile(`(?i)\bremaining\s*=\s*(\d+)`)
	resetParam     = regexp.MustCompile(`(?i)\breset\s*=\s*(\d+(?:\.\d+)?)`)
)

// parseBudget reads the RateLimit header, or the older X-Rate-Limit-* trio.
func parseBudget(h http.Header) (budget, bool) {
	if v := h.Get("RateLimit"); v != "" {
		l, r, s := limitParam.FindStringSubmatch(v), remainingParam.FindStringSubmatch(v), resetParam.FindStringSubmatch(v)
		if l != nil && r != nil && s != nil {
			return makeBudget(l[1], r[1], s[1])
		}
	}
	if r := h.Get("X-Rate-Limit-Remaining"); r != "" {
		return makeBudget(h.Get("X-Rate-Limit-Limit"), r, h.Get("X-Rate-Limit-Reset"))
	}
	return budget{}, false
}

func makeBudget(limit, remaining, reset string) (budget, bool) {
	l, err1 := strconv.Atoi(limit)
	r, err2 := strconv.Atoi(remaining)
	s, err3 := strconv.ParseFloat(reset, 64)
	if err1 != nil || err2 != nil || err3 != nil || l <= 0 || r < 0 || s < 0 {
		return budget{}, false
	}
	return budget{limit: l, remaining: r, reset: seconds(s)}, true
}

// resetHint reads how long the server asks a rate-limited (429) or unavailable (503) client to
// wait: RateLimit reset, Retry-After (seconds or an HTTP date), RateLimit-Reset,
// X-Rate-Limit-Reset, then a JSON body's rate_reset (top level or under "error": the two Close
// clients disagree on where it is). Zero: no hint.
// b is the answer's parsed RateLimit budget, if it had one.
func resetHint(b budget, hasBudget bool, h http.Header, body []byte, now time.Time) time.Duration {
	if hasBudget && b.remaining == 0 && b.reset > 0 {
		return b.reset
	}
	if v := h.Get("Retry-After"); v != "" {
		if s, err := strconv.ParseFloat(v, 64); err == nil && s > 0 {
			return seconds(s)
		}
		if t, err := http.ParseTime(v); err == nil && t.After(now) {
			return min(t.Sub(now), maxHint)
		}
	}
	for _, k := range []string{"RateLimit-Reset", "X-Rate-Limit-Reset"} {
		if s, err := strconv.ParseFloat(h.Get(k), 64); err == nil && s > 0 {
			return seconds(s)
		}
	}
	if len(body) > 0 {
		var legacy struct {
			RateReset float64 `json:"rate_reset"`
			Error     struct {
				RateReset float64 `json:"rate_reset"`
			} `json:"error"`
		}
		if json.Unmarshal(body, &legacy) == nil {
			if legacy.Error.RateReset > 0 {
				return seconds(legacy.Error.RateReset)
			}
			if legacy.RateReset > 0 {
				return seconds(legacy.RateReset)
			}
		}
	}
	return 0
}

// maxHint bounds one server hint: a broken header must not stall a sync for hours.
const maxHint = 10 * time.Minute

func seconds(s float64) time.Duration {
	return min(time.Duration(s*float64(time.Second)), maxHint)
}
