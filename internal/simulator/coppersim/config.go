package coppersim

import (
	"errors"
	"math"
	"time"

	"github.com/crmsync/crmsync/internal/simulator/simfault"
)

// Defaults used when the corresponding Config field is empty.
const (
	DefaultAPIKey     = "sim-copper-api-key"
	DefaultUserEmail  = "dana.whitfield@northwind-outfitters.example"
	DefaultMaxResults = 100000 // Copper: a search reaches at most the first 100 000 records
	DefaultRateWindow = 60 * time.Second
	DefaultSpan       = 2 * 365 * 24 * time.Hour
	MaxPageSize       = 200
	DefaultPageSize   = 20
	// CopperRateLimit is the documented limit, 180 requests/minute.
	CopperRateLimit = 3.0
)

// Config sizes and shapes the simulated account.
type Config struct {
	Seed      int64
	APIKey    string        // X-PW-AccessToken must equal it; empty -> DefaultAPIKey
	UserEmail string        // X-PW-UserEmail must equal it; empty -> DefaultUserEmail. X-PW-Application must be "developer_api".
	Epoch     time.Time     // all generated timestamps lie in [Epoch-Span, Epoch); zero -> start of current UTC day
	Span      time.Duration // zero -> 2 years

	// Record counts. Users is at least 1: user 0 owns the API key (GET /users/me).
	People, Companies, Leads, Opportunities, Projects, Tasks, Activities, Users int

	MaxResults   int           // search ceiling; zero -> 100000. See doc.go for the paging behaviour past it.
	RateLimit    float64       // requests per second averaged over RateWindow; 0 = unlimited
	RateWindow   time.Duration // zero -> 60s
	LeadsEnabled *bool         // nil -> true; false -> GET /lead_statuses answers 403
	Latency      time.Duration // added to every request
	Faults       Faults
	Now          func() time.Time // nil -> time.Now; drives the rate limiter and mid-scan mutations

	FutureDated   int // that many people (date_modified) and activities (activity_date) dated after Epoch
	SameTimestamp int // that many people share one exact date_modified
}

// Faults configures random failure injection. Rates are probabilities per
// request in [0,1]; the response faults (429s, 5xx, truncate, bad JSON, reset)
// are mutually exclusive and their rates must sum to at most 1.
type Faults struct {
	Seed          int64
	Rate429       float64 // 429 with a Retry-After header
	Rate429NoHint float64 // 429 with no header at all (what Copper documents)
	Rate5xx       float64 // 500/502/503/504 at random
	RateTruncate  float64 // 200, full Content-Length declared, body cut halfway, connection closed
	RateBadJSON   float64 // 200 with invalid JSON, an empty body, or an HTML error page
	RateReset     float64 // connection closed without a response
	RateSlow      float64 // independent of the above: response delayed by SlowDelay
	SlowDelay     time.Duration
	// MutateBetweenPages is the probability that, before serving page 2+ of a
	// search, a few records of that entity are updated, inserted and deleted.
	MutateBetweenPages float64

	// Every429 answers every Nth request (1-based, counted over all
	// authenticated requests since New or SetFaults) with Copper's
	// header-less 429. Every5xx answers every Nth with a gateway's 502
	// (HTML). When both hit the same request, 429 wins.
	Every429 int
	Every5xx int
	// RateStall: status, headers (full Content-Length) and half the body
	// are sent, then nothing for StallFor or until the client goes away,
	// then the rest. RateStallHeaders: nothing at all for that long, then
	// the normal response. Both are response faults (exclusive with the
	// others).
	RateStall        float64
	RateStallHeaders float64
	StallFor         time.Duration // zero → 40s
}

// Stats counts what the server has seen since New or ResetStats.
type Stats struct {
	Requests int64
	ByStatus map[int]int64    // status codes written (a reset connection has none)
	ByPath   map[string]int64 // path pattern, ids replaced by {id}
	// Faults: "429", "429_no_hint", "5xx", "truncate", "bad_json", "reset",
	// "slow", "mutate", "storm_429", "storm_5xx", "stall", "stall_headers".
	Faults map[string]int64
	// RateLimited counts genuine 429s from the rolling window (not faults).
	RateLimited int64
}

func (f Faults) validate() error {
	err := simfault.CheckRates("coppersim", []simfault.Rate{
		simfault.R("Rate429", f.Rate429), simfault.R("Rate429NoHint", f.Rate429NoHint), simfault.R("Rate5xx", f.Rate5xx),
		simfault.R("RateTruncate", f.RateTruncate), simfault.R("RateBadJSON", f.RateBadJSON), simfault.R("RateReset", f.RateReset),
		simfault.R("RateStall", f.RateStall), simfault.R("RateStallHeaders", f.RateStallHeaders),
	}, []simfault.Rate{simfault.R("RateSlow", f.RateSlow), simfault.R("MutateBetweenPages", f.MutateBetweenPages)})
	if err != nil {
		return err
	}
	return simfault.CheckNonNegative("coppersim", simfault.S("SlowDelay", int64(f.SlowDelay)),
		simfault.S("Every429", int64(f.Every429)), simfault.S("Every5xx", int64(f.Every5xx)), simfault.S("StallFor", int64(f.StallFor)))
}

func (c *Config) normalize() error {
	for _, n := range []int{c.People, c.Companies, c.Leads, c.Opportunities, c.Projects, c.Tasks, c.Activities, c.Users, c.MaxResults, c.FutureDated, c.SameTimestamp} {
		if n < 0 {
			return errors.New("coppersim: negative size")
		}
	}
	if c.RateLimit < 0 || math.IsNaN(c.RateLimit) || c.Latency < 0 || c.Span < 0 || c.RateWindow < 0 {
		return errors.New("coppersim: negative rate, latency, span or window")
	}
	if err := c.Faults.validate(); err != nil {
		return err
	}
	if c.APIKey == "" {
		c.APIKey = DefaultAPIKey
	}
	if c.UserEmail == "" {
		c.UserEmail = DefaultUserEmail
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Epoch.IsZero() {
		c.Epoch = time.Now().UTC().Truncate(24 * time.Hour)
	}
	if c.Span == 0 {
		c.Span = DefaultSpan
	}
	if c.Span < time.Second {
		c.Span = time.Second
	}
	if c.MaxResults == 0 {
		c.MaxResults = DefaultMaxResults
	}
	if c.RateWindow == 0 {
		c.RateWindow = DefaultRateWindow
	}
	if c.Users < 1 {
		c.Users = 1
	}
	return nil
}

// leadsEnabled reports Config.LeadsEnabled with its default.
func (c *Config) leadsEnabled() bool { return c.LeadsEnabled == nil || *c.LeadsEnabled }
