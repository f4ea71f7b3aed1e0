package simfault

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// Faults are the fault settings of both simulators (closesim.Faults and coppersim.Faults are
// this type). Faults are injected per request with the given probabilities, drawn from a PRNG
// seeded by Seed; Every429/Every5xx are counted, not drawn. A simulator refuses, with an error
// from New or SetFaults, a field its API cannot show (see Model.Unsupported) and every
// out-of-range value: nothing is clamped or ignored.
type Faults struct {
	Seed int64

	// The response faults: one uniform draw per request picks at most one of them, so their
	// rates add up and must not exceed 1.
	Rate429       float64 // 429 with reset hints (Close: RateLimit, Retry-After and the legacy body; Copper: Retry-After)
	Rate429NoHint float64 // 429 with no header and no reset hint in the body (what Copper documents)
	Rate5xx       float64 // 500/502/503/504 at random
	RateTruncate  float64 // 200 whose JSON body is cut off halfway
	RateBadJSON   float64 // 200 with invalid JSON, an empty body or an HTML error page
	RateReset     float64 // connection closed without a response
	// RateSlow delays the response by SlowDelay, then serves it normally. Close draws it as a
	// response fault (it counts towards the sum); Copper draws it apart (Model.SlowApart), so a
	// slow answer can carry another fault too.
	RateSlow  float64
	SlowDelay time.Duration
	// Rate503RetryAfter: 503 with Retry-After: RetryAfter (zero → 1s, sent as whole seconds);
	// it closes the endpoint group for RetryAfter. Close only.
	Rate503RetryAfter float64
	RetryAfter        time.Duration
	// RateStall: status, headers (full Content-Length) and half the body are sent, then
	// nothing for StallFor or until the client goes away, then the rest. RateStallHeaders:
	// nothing at all for that long, then the normal response.
	RateStall        float64
	RateStallHeaders float64
	StallFor         time.Duration // zero → DefaultStallFor

	// MutateBetweenPages is the probability that, before a listing request of a table (any
	// but its first since New or SetFaults), a few of its records change (inserted, updated,
	// deleted), so pages shift under a client walking them, whether it pages by offset or by
	// re-anchored filters. It is drawn apart from the response faults.
	MutateBetweenPages float64

	// Every429 answers every Nth request (1-based, counted over all authenticated requests
	// since New or SetFaults) with a 429: Close's announces StormReset and closes the group for
	// it, Copper's is header-less. Every5xx answers every Nth with a proxy's 502 (HTML). When
	// both hit the same request, 429 wins.
	Every429   int
	Every5xx   int
	StormReset time.Duration // zero → 1s. Close only.
}

// StallDuration is StallFor, zero → DefaultStallFor.
func (f Faults) StallDuration() time.Duration { return orDefault(f.StallFor, DefaultStallFor) }

// RetryAfterDuration is RetryAfter, zero → 1s.
func (f Faults) RetryAfterDuration() time.Duration { return orDefault(f.RetryAfter, time.Second) }

// StormResetDuration is StormReset, zero → 1s.
func (f Faults) StormResetDuration() time.Duration { return orDefault(f.StormReset, time.Second) }

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Kind names an injected fault; its String is the key of Stats.Faults.
type Kind uint8

// The response faults, in the order the one uniform draw meets them (new kinds go last, so
// old seeds keep drawing the same faults), then the faults that are not drawn that way.
const (
	KindNone Kind = iota
	Kind429
	Kind429NoHint
	Kind5xx
	KindTruncate
	KindBadJSON
	KindReset
	KindSlow
	Kind503RetryAfter
	KindStall
	KindStallHeaders
	KindMutate   // MutateBetweenPages fired
	KindStorm429 // Every429 hit
	KindStorm5xx // Every5xx hit
)

var kindNames = [...]string{"", "429", "429_nohint", "5xx", "truncate", "bad_json", "reset", "slow",
	"503_retry_after", "stall", "stall_headers", "mutate", "storm_429", "storm_5xx"}

func (k Kind) String() string { return kindNames[k] }

// OnAnswer reports whether the fault alters a successful answer (truncate, bad JSON, stall
// of the body): it applies, and is counted, only when there is one.
func (k Kind) OnAnswer() bool { return k == KindTruncate || k == KindBadJSON || k == KindStall }

// rate is the probability of a drawn kind.
func (f *Faults) rate(k Kind) float64 {
	return [...]float64{Kind429: f.Rate429, Kind429NoHint: f.Rate429NoHint, Kind5xx: f.Rate5xx, KindTruncate: f.RateTruncate,
		KindBadJSON: f.RateBadJSON, KindReset: f.RateReset, KindSlow: f.RateSlow, Kind503RetryAfter: f.Rate503RetryAfter,
		KindStall: f.RateStall, KindStallHeaders: f.RateStallHeaders}[k]
}

// Model is what one simulator's API can show of Faults.
type Model struct {
	Name string // prefixes errors: "closesim"
	// Salt is mixed into Seed for the PRNG; each simulator keeps its own so that a seed draws
	// the faults it always has.
	Salt uint64
	// SlowApart draws RateSlow on its own after the response fault instead of as one of them.
	SlowApart bool
	// Unsupported names the Faults fields the API cannot show; a non-zero one is refused
	// with Why.
	Unsupported []string
	Why         string
}

type setting struct {
	name string
	v    float64
	kind int // settingRate, settingCount
}

const (
	settingRate = iota
	settingCount
)

// settings lists every field but Seed, for the one validation.
func (f Faults) settings() []setting {
	r := func(name string, v float64) setting { return setting{name, v, settingRate} }
	c := func(name string, v int64) setting { return setting{name, float64(v), settingCount} }
	return []setting{
		r("Rate429", f.Rate429), r("Rate429NoHint", f.Rate429NoHint), r("Rate5xx", f.Rate5xx), r("RateTruncate", f.RateTruncate),
		r("RateBadJSON", f.RateBadJSON), r("RateReset", f.RateReset), r("RateSlow", f.RateSlow), r("Rate503RetryAfter", f.Rate503RetryAfter),
		r("RateStall", f.RateStall), r("RateStallHeaders", f.RateStallHeaders), r("MutateBetweenPages", f.MutateBetweenPages),
		c("SlowDelay", int64(f.SlowDelay)), c("RetryAfter", int64(f.RetryAfter)), c("StallFor", int64(f.StallFor)),
		c("Every429", int64(f.Every429)), c("Every5xx", int64(f.Every5xx)), c("StormReset", int64(f.StormReset)),
	}
}

// Check is the one policy for fault settings: a field the model cannot show is refused,
// every rate lies in [0,1] (NaN refused), the response faults' rates sum to at most 1, counts
// and durations are not negative. It returns an error; nothing is clamped.
func (m Model) Check(f Faults) error {
	all := f.settings()
	for _, name := range m.Unsupported {
		i := slices.IndexFunc(all, func(s setting) bool { return s.name == name })
		if i < 0 {
			return fmt.Errorf("%s: Model.Unsupported names no Faults field %q", m.Name, name)
		}
		if all[i].v != 0 {
			return fmt.Errorf("%s: Faults.%s cannot be simulated: %s", m.Name, name, m.Why)
		}
	}
	sum := 0.0
	for _, s := range all {
		switch {
		case s.kind == settingRate && (math.IsNaN(s.v) || s.v < 0 || s.v > 1):
			return fmt.Errorf("%s: fault rate %s = %v is outside [0,1]", m.Name, s.name, s.v)
		case s.kind == settingCount && s.v < 0:
			return fmt.Errorf("%s: negative %s", m.Name, s.name)
		}
	}
	for k := Kind429; k <= KindStallHeaders; k++ {
		if k != KindSlow || !m.SlowApart {
			sum += f.rate(k)
		}
	}
	if sum > 1+1e-9 {
		return fmt.Errorf("%s: mutually exclusive fault rates sum to %v > 1", m.Name, sum)
	}
	return nil
}

// Injector holds one simulator's current faults, their PRNG and storm count; it is safe for
// concurrent use.
type Injector struct {
	m     Model
	mu    sync.Mutex
	f     Faults
	rng   Rand
	storm Storm
	// listed holds the tables listed since Set: the first listing of a table never mutates.
	listed map[string]bool
}

// NewInjector checks f against m.
func NewInjector(m Model, f Faults) (*Injector, error) {
	in := &Injector{m: m}
	return in, in.Set(f)
}

// Set replaces the faults, reseeds the PRNG from f.Seed and restarts the storm count (so a
// storm switched on at runtime starts at request 1). Settings Check refuses return its error
// and leave the current faults in effect.
func (in *Injector) Set(f Faults) error {
	if err := in.m.Check(f); err != nil {
		return err
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.f = f
	in.rng = NewRand(Mix64(uint64(f.Seed) ^ in.m.Salt))
	in.storm.Reset()
	in.listed = map[string]bool{}
	return nil
}

// Current returns the faults in effect.
func (in *Injector) Current() Faults {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.f
}

// StormHit counts one request for the Every429/Every5xx storms.
func (in *Injector) StormHit() Hit {
	in.mu.Lock()
	e429, e5xx := in.f.Every429, in.f.Every5xx
	in.mu.Unlock()
	return in.storm.Next(e429, e5xx)
}

// Draw is one request's fault decision.
type Draw struct {
	Kind Kind   // the response fault (KindSlow among them unless the model draws it apart), or KindNone
	Aux  uint64 // random bits choosing the fault's variant (which 5xx, which bad body)
	// Slow: a SlowApart model's RateSlow hit, besides Kind.
	Slow   bool
	Faults Faults // the settings drawn under, for their durations
}

// Draw makes the per-request fault decision: one uniform draw against the cumulative rates,
// one number for the variant, and for SlowApart models one draw for RateSlow. Every request
// that reaches it consumes the same draws, whatever the rates, so a seed's sequence depends only
// on the number of requests.
func (in *Injector) Draw() Draw {
	in.mu.Lock()
	defer in.mu.Unlock()
	d := Draw{Faults: in.f}
	u := in.rng.Float()
	d.Aux = in.rng.Next()
	if in.m.SlowApart {
		d.Slow = in.rng.Float() < in.f.RateSlow
	}
	for k := Kind429; k <= KindStallHeaders; k++ {
		if k == KindSlow && in.m.SlowApart {
			continue
		}
		p := in.f.rate(k)
		if u < p {
			d.Kind = k
			break
		}
		u -= p
	}
	return d
}

// Mutate decides whether MutateBetweenPages fires before a listing of table (no draw while it
// is zero). It fires before any listing but the table's first since Set: a client that walks
// a table by re-anchoring its filter on every page (keyset paging) sends no "page 2", yet the
// records move between its pages all the same. more, when not nil, makes the caller's further
// draws for the mutation under the same lock, fire or not.
func (in *Injector) Mutate(table string, more func(r *Rand)) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	p := in.f.MutateBetweenPages
	first := !in.listed[table]
	in.listed[table] = true
	fire := p > 0 && in.rng.Float() < p && !first
	if more != nil {
		more(&in.rng)
	}
	return fire
}

// Rand is splitmix64: tiny, fast, and the same on every platform and process. It is the
// fault PRNG of both simulators and closesim's data PRNG; coppersim derives its data's
// bounded numbers its own way from the same stream.
type Rand struct{ s uint64 }

// NewRand starts a stream at state s.
func NewRand(s uint64) Rand { return Rand{s} }

// Mix64 is splitmix64's finaliser.
func Mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// Next returns 64 random bits.
func (r *Rand) Next() uint64 {
	r.s += 0x9E3779B97F4A7C15
	return Mix64(r.s)
}

// Float returns a value in [0,1).
func (r *Rand) Float() float64 { return float64(r.Next()>>11) / (1 << 53) }

// Intn returns a value in [0,n) (0 when n ≤ 0).
func (r *Rand) Intn(n int) int {
	if n <= 0 {
		return 0
	}
	return int((r.Next() >> 1) % uint64(n))
}

// Int63n returns a value in [0,n) (0 when n ≤ 0).
func (r *Rand) Int63n(n int64) int64 {
	if n <= 0 {
		return 0
	}
	return int64((r.Next() >> 1) % uint64(n))
}

// Chance reports true with probability p.
func (r *Rand) Chance(p float64) bool { return r.Float() < p }
