package coppersim

import (
	"errors"
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
	// DeletedActivitiesInSearch: a deleted activity stays in /activities/search as its stub
	// {"id":…, "is_deleted":true}, where it was (the docs leave open whether search returns
	// stubs; by default it does not).
	DeletedActivitiesInSearch bool

	// UnfitCustomValues (0..1): that fraction of the non-null values of Float, Percentage,
	// Currency, Date, Checkbox and Dropdown custom fields is of the wrong type, as a careless
	// import or an API change could leave: "n/a"/"TBD" for numbers, "31/31/2024"/"soon" for
	// a Date, "yes" for a Checkbox, option id 999999 (listed by no definition) for a Dropdown.
	// Drawn per record version and field, apart from the values, so the rest is unchanged.
	UnfitCustomValues float64
	// ConnectValues: Connect custom fields carry an array of one or two company ids (people
	// when there are no companies) on ~55% of record versions instead of always null. The
	// docs make Connect a read-only link whose targets live in /related_links and leave its
	// record value open.
	ConnectValues bool
	// CustomDatesAsText: custom Date values are "M/D/YYYY" text (the best-practices page)
	// instead of Unix seconds (every example); same day either way.
	CustomDatesAsText bool
	// ChunkedAnswers: answers announce no Content-Length and are sent in chunks, as a
	// streaming server or a compressing proxy sends them. The reference does not say which
	// (default: the length is announced).
	ChunkedAnswers bool
}

// Faults and Stats are the simulators' shared ones (see simfault). Copper cannot show three
// Faults fields; New and SetFaults refuse them (faultModel).
type (
	Faults = simfault.Faults
	Stats  = simfault.Stats
)

// faultModel: RateSlow is drawn apart from the response faults, and the PRNG salt is
// coppersim's own, as they always were, so seeds draw the same faults.
var faultModel = simfault.Model{Name: "coppersim", Salt: 0xfa017fa017, SlowApart: true,
	Unsupported: []string{"Rate503RetryAfter", "RetryAfter", "StormReset"},
	Why:         "Copper documents no Retry-After and no rate-limit headers, so it has no 503 with Retry-After and its storm 429s announce no reset"}

func (c *Config) normalize() error {
	for _, n := range []int{c.People, c.Companies, c.Leads, c.Opportunities, c.Projects, c.Tasks, c.Activities, c.Users, c.MaxResults, c.FutureDated, c.SameTimestamp} {
		if n < 0 {
			return errors.New("coppersim: negative size")
		}
	}
	if !(c.UnfitCustomValues >= 0 && c.UnfitCustomValues <= 1) { // also refuses NaN
		return errors.New("coppersim: UnfitCustomValues outside 0..1")
	}
	if c.Latency < 0 || c.Span < 0 {
		return errors.New("coppersim: negative latency or span")
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
