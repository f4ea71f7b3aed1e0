package closesim

import (
	"maps"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/crmsync/crmsync/internal/simulator/simfault"
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
	fault503RetryAfter
	faultStall
	faultStallHeaders
)

// drawFault makes the per-request fault decision: one uniform draw against
// the cumulative rates, plus an auxiliary number for the variant.
func (s *Server) drawFault() (faultKind, uint64) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	f := &s.faults
	u := s.frng.float()
	aux := s.frng.next()
	// New kinds go at the end so old seeds keep drawing the same faults.
	for k, p := range []float64{f.Rate429, f.Rate429NoHint, f.Rate5xx, f.RateTruncate, f.RateBadJSON, f.RateReset, f.RateSlow,
		f.Rate503RetryAfter, f.RateStall, f.RateStallHeaders} {
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

// faultDurations returns the durations of the current faults with their
// defaults applied.
func (s *Server) faultDurations() (storm, retryAfter, stall time.Duration) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	f := &s.faults
	storm, retryAfter, stall = f.StormReset, f.RetryAfter, f.StallFor
	if storm == 0 {
		storm = time.Second
	}
	if retryAfter == 0 {
		retryAfter = time.Second
	}
	if stall == 0 {
		stall = simfault.DefaultStallFor
	}
	return
}

func (s *Server) stormHit() simfault.Hit {
	s.faultMu.Lock()
	e429, e5xx := s.faults.Every429, s.faults.Every5xx
	s.faultMu.Unlock()
	return s.storm.Next(e429, e5xx)
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

// limiter keeps, per endpoint group (method + path pattern), a token bucket
// (refilled at rate per second up to burst = max(1, rate)) or, when window
// is set, a fixed-window counter; and the time until which an announced
// reset closes the group.
type limiter struct {
	mu      sync.Mutex
	def     float64
	rates   map[string]float64
	window  time.Duration
	buckets map[string]*bucket
	closed  map[string]time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
	start  time.Time // fixed window: start of the current window
	n      int       // fixed window: requests accepted in it
}

type rlResult struct {
	limited          bool // the group has a limit
	ok               bool
	limit, remaining int
	reset            float64 // seconds until the bucket is full / the window ends
	wait             float64 // seconds until a request is accepted again (when !ok)
}

func (r rlResult) header(frac bool) string {
	return "limit=" + strconv.Itoa(r.limit) + ", remaining=" + strconv.Itoa(r.remaining) + ", reset=" + simfault.FormatReset(r.reset, frac)
}

func (l *limiter) init(rate float64, rates map[string]float64, window time.Duration) {
	l.def = rate
	l.rates = maps.Clone(rates)
	l.window = window
	l.buckets = map[string]*bucket{}
	l.closed = map[string]time.Time{}
}

func (l *limiter) rate(key string) float64 {
	if r, ok := l.rates[key]; ok {
		return r
	}
	return l.def
}

// limit is what RateLimit's limit= says for the group; unlimited groups
// advertise 1000, as they always have.
func (l *limiter) limit(key string) int {
	r := l.rate(key)
	switch {
	case r <= 0:
		return 1000
	case l.window > 0:
		return simfault.WindowLimit(r, l.window)
	}
	return int(math.Max(1, math.Floor(r)))
}

func (l *limiter) take(key string, now time.Time) rlResult {
	rate := l.rate(key)
	if rate <= 0 {
		return rlResult{ok: true}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	burst := math.Max(1, rate)
	if b == nil {
		b = &bucket{tokens: burst, last: now}
		l.buckets[key] = b
	}
	res := rlResult{limited: true, limit: l.limit(key)}
	if l.window > 0 {
		start := now.Truncate(l.window)
		if !b.start.Equal(start) {
			b.start, b.n = start, 0
		}
		if b.n < res.limit {
			b.n++
			res.ok = true
		}
		res.remaining = res.limit - b.n
		res.reset = start.Add(l.window).Sub(now).Seconds()
		if !res.ok {
			res.wait = res.reset
		}
		return res
	}
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = math.Min(burst, b.tokens+dt*rate)
		b.last = now
	}
	if b.tokens >= 1-1e-9 { // float slack: a client that waited exactly is on time
		b.tokens = math.Max(0, b.tokens-1)
		res.ok = true
	} else {
		res.wait = (1 - b.tokens) / rate
	}
	res.remaining = int(math.Floor(b.tokens + 1e-9))
	if missing := burst - b.tokens; missing > 1e-9 {
		res.reset = missing / rate
	}
	if !res.ok {
		res.reset = math.Max(res.reset, res.wait)
	}
	return res
}

// closedFor reports how long the group stays closed by an announced reset.
func (l *limiter) closedFor(key string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.closed[key]
	if !ok {
		return 0, false
	}
	if !now.Before(t) {
		delete(l.closed, key)
		return 0, false
	}
	return t.Sub(now), true
}

// close records that the group was told to wait until t.
func (l *limiter) close(key string, t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t.After(l.closed[key]) {
		l.closed[key] = t
	}
}
