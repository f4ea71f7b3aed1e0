package simfault

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"time"
)

// Mode is how a Limiter counts.
type Mode uint8

const (
	// TokenBucket refills at the rate per second up to a burst of max(1, rate) (Close's
	// default).
	TokenBucket Mode = iota
	// FixedWindow admits WindowLimit(rate, Window) requests per window, the windows aligned
	// to multiples of Window (Close with RateWindow).
	FixedWindow
	// RollingWindow admits WindowLimit(rate, Window) requests in any span of Window; refused
	// requests do not count (Copper's documented 180 a minute).
	RollingWindow
)

// Limits configure a Limiter.
type Limits struct {
	Mode Mode
	// Rate is requests per second for every key; 0 = unlimited.
	Rate float64
	// Rates overrides Rate for single keys (0 = unlimited for that key); only keys listed in
	// Keys are accepted.
	Rates map[string]float64
	Keys  []string
	// Window is the window of FixedWindow and RollingWindow (required there); TokenBucket
	// ignores it.
	Window time.Duration
}

// Limiter limits requests per key (an endpoint group) and remembers until when an announced
// reset closes a key. It is safe for concurrent use.
type Limiter struct {
	l       Limits
	mu      sync.Mutex
	buckets map[string]*bucket
	closed  map[string]time.Time
}

type bucket struct {
	tokens float64   // token bucket
	last   time.Time // token bucket: last refill
	start  time.Time // fixed window: start of the current window
	n      int       // fixed and rolling window: requests accepted in it
	times  []int64   // rolling window: ring of accepted request times (ns)
	head   int
}

// NewLimiter checks l (no negative or NaN rate, no negative window, a window for the window
// modes, no unknown key) and returns its limiter; errors are prefixed with name.
func NewLimiter(name string, l Limits) (*Limiter, error) {
	if l.Rate < 0 || math.IsNaN(l.Rate) {
		return nil, fmt.Errorf("%s: RateLimit = %v, want ≥ 0", name, l.Rate)
	}
	for k, v := range l.Rates {
		if !slices.Contains(l.Keys, k) {
			return nil, fmt.Errorf("%s: GroupRateLimits: unknown endpoint group %q (see GroupKeys)", name, k)
		}
		if v < 0 || math.IsNaN(v) {
			return nil, fmt.Errorf("%s: GroupRateLimits[%q] = %v, want ≥ 0", name, k, v)
		}
	}
	if l.Window < 0 || (l.Mode != TokenBucket && l.Window == 0) {
		return nil, fmt.Errorf("%s: RateWindow = %v, want > 0", name, l.Window)
	}
	l.Rates = maps.Clone(l.Rates)
	return &Limiter{l: l, buckets: map[string]*bucket{}, closed: map[string]time.Time{}}, nil
}

func (l *Limiter) rate(key string) float64 {
	if r, ok := l.l.Rates[key]; ok {
		return r
	}
	return l.l.Rate
}

// Limit is the number of requests the key's window admits (a token bucket's: its burst); 0
// for an unlimited key.
func (l *Limiter) Limit(key string) int {
	r := l.rate(key)
	switch {
	case r <= 0:
		return 0
	case l.l.Mode == TokenBucket:
		return int(math.Max(1, math.Floor(r)))
	}
	return WindowLimit(r, l.l.Window)
}

// Taken is the limiter's answer to one request.
type Taken struct {
	Limited          bool // the key has a limit
	OK               bool // the request is admitted
	Limit, Remaining int
	Reset            float64 // seconds until the bucket is full / the window ends / the oldest request leaves it
	Wait             float64 // seconds until a request is admitted again (when !OK)
}

// Take counts one request of key at now.
func (l *Limiter) Take(key string, now time.Time) Taken {
	rate := l.rate(key)
	if rate <= 0 {
		return Taken{OK: true}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	burst := math.Max(1, rate)
	res := Taken{Limited: true, Limit: l.Limit(key)}
	if b == nil {
		b = &bucket{tokens: burst, last: now}
		if l.l.Mode == RollingWindow {
			b.times = make([]int64, res.Limit)
		}
		l.buckets[key] = b
	}
	switch l.l.Mode {
	case FixedWindow:
		start := now.Truncate(l.l.Window)
		if !b.start.Equal(start) {
			b.start, b.n = start, 0
		}
		if b.n < res.Limit {
			b.n++
			res.OK = true
		}
		res.Remaining = res.Limit - b.n
		res.Reset = start.Add(l.l.Window).Sub(now).Seconds()
		if !res.OK {
			res.Wait = res.Reset
		}
		return res
	case RollingWindow:
		t, w := now.UnixNano(), int64(l.l.Window)
		for b.n > 0 && b.times[b.head] <= t-w {
			b.head = (b.head + 1) % len(b.times)
			b.n--
		}
		if b.n < len(b.times) {
			b.times[(b.head+b.n)%len(b.times)] = t
			b.n++
			res.OK = true
		}
		res.Remaining = res.Limit - b.n
		res.Reset = float64(b.times[b.head]+w-t) / 1e9
		if !res.OK {
			res.Wait = res.Reset
		}
		return res
	}
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = math.Min(burst, b.tokens+dt*rate)
		b.last = now
	}
	if b.tokens >= 1-1e-9 { // float slack: a client that waited exactly is on time
		b.tokens = math.Max(0, b.tokens-1)
		res.OK = true
	} else {
		res.Wait = (1 - b.tokens) / rate
	}
	res.Remaining = int(math.Floor(b.tokens + 1e-9))
	if missing := burst - b.tokens; missing > 1e-9 {
		res.Reset = missing / rate
	}
	if !res.OK {
		res.Reset = math.Max(res.Reset, res.Wait)
	}
	return res
}

// ClosedFor reports how long key stays closed by an announced reset.
func (l *Limiter) ClosedFor(key string, now time.Time) (time.Duration, bool) {
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

// Close records that key was told to wait until t.
func (l *Limiter) Close(key string, t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t.After(l.closed[key]) {
		l.closed[key] = t
	}
}
