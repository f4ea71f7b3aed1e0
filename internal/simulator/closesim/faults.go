package closesim

import (
	"math"
	"strconv"
	"sync"
	"time"
)

type faultKind int

const (
	faultNone faultKind = iota
	fault429
	fault429NoHint
	fault5xx
	faultTruncate
	faultBadJSON
	faultReset
	faultSlow
)

// drawFault makes the per-request fault decision: one uniform draw against
// the cumulative rates, plus an auxiliary number for the variant.
func (s *Server) drawFault() (faultKind, uint64) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	f := &s.faults
	u := s.frng.float()
	aux := s.frng.next()
	for k, p := range []float64{f.Rate429, f.Rate429NoHint, f.Rate5xx, f.RateTruncate, f.RateBadJSON, f.RateReset, f.RateSlow} {
		if u < p {
			return faultKind(k + 1), aux
		}
		u -= p
	}
	return faultNone, aux
}

func (s *Server) slowDelay() time.Duration {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	return s.faults.SlowDelay
}

// maybeMutate applies MutateBetweenPages before a follow-up page: 1–3
// records of the listed stream are updated, added or deleted at Now().
// Event-log walks get lead updates (which emit new events).
func (s *Server) maybeMutate(sid int) {
	s.faultMu.Lock()
	p := s.faults.MutateBetweenPages
	fire := p > 0 && s.frng.float() < p
	op := []string{"update", "add", "delete"}[s.frng.intn(3)]
	n := 1 + s.frng.intn(3)
	s.faultMu.Unlock()
	if !fire {
		return
	}
	if sid == sEvents {
		sid, op = sLeads, "update"
	}
	s.countFault("mutate")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mutate(sid, op, n, s.now().UnixMicro())
}

// ---- rate limiting ----

// limiter is a token bucket per endpoint group (method + path pattern),
// refilled at rate per second up to burst = max(1, rate).
type limiter struct {
	mu      sync.Mutex
	rate    float64
	burst   float64
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

type rlResult struct {
	ok               bool
	limit, remaining int
	reset            int     // seconds until the bucket is full again
	wait             float64 // seconds until the next token (when !ok)
}

func (r rlResult) header() string {
	return "limit=" + strconv.Itoa(r.limit) + ", remaining=" + strconv.Itoa(r.remaining) + ", reset=" + strconv.Itoa(r.reset)
}

func (l *limiter) init(rate float64) {
	l.rate = rate
	l.burst = math.Max(1, rate)
	l.buckets = map[string]*bucket{}
}

func (l *limiter) enabled() bool { return l.rate > 0 }

func (l *limiter) limit() int { return int(math.Max(1, math.Floor(l.burst))) }

func (l *limiter) take(key string, now time.Time) rlResult {
	if !l.enabled() {
		return rlResult{ok: true}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = math.Min(l.burst, b.tokens+dt*l.rate)
		b.last = now
	}
	res := rlResult{limit: l.limit()}
	if b.tokens >= 1 {
		b.tokens--
		res.ok = true
	} else {
		res.wait = (1 - b.tokens) / l.rate
	}
	res.remaining = int(math.Floor(b.tokens))
	if missing := l.burst - b.tokens; missing > 0 {
		res.reset = int(math.Ceil(missing / l.rate))
	}
	if !res.ok {
		res.reset = max(res.reset, int(math.Ceil(res.wait)))
	}
	return res
}
