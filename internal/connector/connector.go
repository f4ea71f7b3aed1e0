// Package connector describes a CRM source as one value: its name, its tables, the settings it
// needs and how to build it from them, how it is paced, and the API simulator that stands in
// for it in the demo, the bench and the tests. The command, the config, the demo, the bench and
// the end-to-end harness all work from descriptors found in the registry (package sources), so
// a new CRM is its own package plus one registry line.
package connector

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/crmsync/crmsync/internal/apiclient"
	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/simulator/simfault"
	"github.com/crmsync/crmsync/internal/source"
)

// Credential is one setting a source needs to authenticate. Its config key doubles as the
// flag name (api_key → --api-key).
type Credential struct {
	Key string // config key: "api_key", "user_email"
	Env string // environment variable, e.g. CLOSE_API_KEY
	// Missing explains what to set when the value is missing, after "<key>: missing; ".
	Missing string
}

// Settings is what a source is built from.
type Settings struct {
	// Credentials by Credential.Key.
	Credentials map[string]string
	// BaseURL replaces the API's scheme and host; empty: the real API.
	BaseURL string
	// Tuning is the HTTP client's: a requests-per-second ceiling, timeouts, clock.
	Tuning apiclient.Tuning
}

// Declarations are a source's tables with their readers (a source.Tables).
type Declarations interface {
	Catalog() catalog.Catalog
	Validate() error
}

// Descriptor is one CRM.
type Descriptor struct {
	Name   string // "close": the --source value, the default schema, the table prefix
	Title  string // "Close", for people
	Tables Declarations
	// Credentials are the settings Open needs, in the order a message lists them.
	Credentials []Credential
	// New builds the source from settings whose credentials are all there (Open checks
	// them first). It makes no request.
	New func(Settings) (source.Source, error)
	// RequestsPerSecond is the pace when the API announces no limit. With PacedPerGroup it
	// applies to each endpoint group apart (whose real limit is learned from the answers);
	// otherwise to the whole account.
	RequestsPerSecond float64
	PacedPerGroup     bool
	// Simulator stands in for the API in the demo, the sandbox, the bench and the tests.
	Simulator SimulatorSpec
}

// Catalog is the source's catalog.
func (d Descriptor) Catalog() catalog.Catalog { return d.Tables.Catalog() }

// typicalLatency is what one API page takes on a real account (100–500 ms).
const typicalLatency = 400 * time.Millisecond

// Windows is how many time windows a big first read is split into, under a requests-per-second
// ceiling (0: none; negative: unpaced): as many as keep the allowed request rate busy at typical
// latency (rate × latency requests in flight), rounded down, since every window costs a
// partial last page (and a whole request on a small table). Below two requests in flight the
// other tables, read concurrently under the same pace, keep it busy better than a split would:
// Copper's 3 requests/s at 400 ms gives 1.2, so 1. A source paced per endpoint group (limits
// learned from the answers) is bounded up front only by a ceiling; unpaced runs: 8.
func (d Descriptor) Windows(ceiling float64) int {
	rps := ceiling
	if rps == 0 && !d.PacedPerGroup {
		rps = d.RequestsPerSecond
	}
	if rps <= 0 {
		return 8
	}
	return min(8, max(1, int(rps*typicalLatency.Seconds())))
}

// Validate checks the descriptor and its tables.
func (d Descriptor) Validate() error {
	var errs []error
	if d.Name == "" || d.Title == "" || d.New == nil || d.Tables == nil || d.Simulator.New == nil {
		errs = append(errs, fmt.Errorf("connector %q: name, title, tables, New and a simulator are required", d.Name))
	}
	if d.Tables != nil {
		if err := d.Tables.Validate(); err != nil {
			errs = append(errs, err)
		}
		if c := d.Tables.Catalog(); c.Source != d.Name {
			errs = append(errs, fmt.Errorf("connector %q: its catalog says source %q", d.Name, c.Source))
		}
	}
	if d.RequestsPerSecond <= 0 {
		errs = append(errs, fmt.Errorf("connector %q: no default pace", d.Name))
	}
	for _, c := range d.Credentials {
		if c.Key == "" || c.Env == "" || c.Missing == "" {
			errs = append(errs, fmt.Errorf("connector %q: credential %+v lacks a key, variable or message", d.Name, c))
		}
	}
	if err := d.Simulator.validate(d.Catalog()); err != nil {
		errs = append(errs, fmt.Errorf("connector %q: %w", d.Name, err))
	}
	return errors.Join(errs...)
}

// Open checks the credentials and builds the source from them, without the whitespace around
// them (a key pasted with its newline). It makes no request.
func (d Descriptor) Open(s Settings) (source.Source, error) {
	if err := d.CheckCredentials(s.Credentials); err != nil {
		return nil, fmt.Errorf("%s: %w", d.Name, err)
	}
	trimmed := make(map[string]string, len(s.Credentials))
	for k, v := range s.Credentials {
		trimmed[k] = strings.TrimSpace(v)
	}
	s.Credentials = trimmed
	src, err := d.New(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.Name, err) // and never a typed nil inside the interface
	}
	return src, nil
}

// NewClient builds a source's API client: requests go to the settings' base URL (the real
// API's, defaultBase, when empty) under the API's path prefix; the settings' tuning (a
// ceiling, timeouts, clock) applies over the source's pace.
func (s Settings) NewClient(defaultBase, prefix string, pace float64, cfg apiclient.Config) (*apiclient.Client, error) {
	base := s.BaseURL
	if base == "" {
		base = defaultBase
	}
	cfg.BaseURL = strings.TrimSuffix(base, "/") + prefix
	return apiclient.New(s.Tuning.Apply(cfg, pace))
}

// CheckCredentials reports the first credential missing from creds, or holding whitespace or
// a control character inside it (no key or email does; a header could not carry it), naming
// where to set it. Whitespace around a value is not an error: Open trims it.
func (d Descriptor) CheckCredentials(creds map[string]string) error {
	for _, c := range d.Credentials {
		v := strings.TrimSpace(creds[c.Key])
		if v == "" {
			return fmt.Errorf("%s: missing; %s", c.Key, c.Missing)
		}
		if strings.ContainsFunc(v, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
			return fmt.Errorf("%s: contains whitespace or a control character; check the value of %s (or %s in the config file)", c.Key, c.Env, c.Key)
		}
	}
	return nil
}

// Simulator is a running simulated account of one CRM: an HTTP handler with its ground
// truth (Snapshot), live changes, faults and stats.
type Simulator = simfault.Simulator

// SimConfig is what every simulator is built from.
type SimConfig struct {
	Seed int64
	// Credentials the simulator accepts, by Credential.Key.
	Credentials map[string]string
	// Sizes are record counts of the sized tables (SimulatorSpec.Sizes); NewSimulator gives
	// a table left out its default size.
	Sizes map[string]int
	// Latency is added to every answer; RateLimit is the requests per second the simulated
	// API allows (per endpoint group where the API limits groups apart); 0: none.
	Latency   time.Duration
	RateLimit float64
	// Now is the simulated API's clock; nil: the system clock.
	Now func() time.Time
}

// SimSize is a table whose size a simulator takes as a setting; the other tables' sizes
// follow from these.
type SimSize struct {
	Table   string
	Default int // the demo's size
}

// SimulatorSpec is how a descriptor builds its simulator and what the demo does with it.
type SimulatorSpec struct {
	New func(SimConfig) (Simulator, error)
	// Credentials the demo and the tests give the simulator (not secrets).
	Credentials map[string]string
	// Sizes are the tables whose sizes the demo, the sandbox and the bench take as flags.
	Sizes []SimSize
	// Updated and Added are the tables a live account changes every minute in the demo: a
	// record of Updated is edited and one of Added created.
	Updated, Added string
	// Bench are the tables the bench syncs (empty: all), with the page size of each table
	// whose request count the bench checks against the least possible.
	Bench      []string
	BenchPages map[string]int
	// BenchSizes is the account the bench measures unless told other sizes (a sized table
	// left out has its default size). It stays the same across versions so figures compare.
	BenchSizes map[string]int
}

func (s SimulatorSpec) validate(cat catalog.Catalog) error {
	var errs []error
	known := func(role, table string) {
		if _, ok := cat.Stream(table); table != "" && !ok {
			errs = append(errs, fmt.Errorf("simulator: %s table %q is not in the catalog", role, table))
		}
	}
	sized := map[string]bool{}
	for _, sz := range s.Sizes {
		known("sized", sz.Table)
		sized[sz.Table] = true
	}
	for t := range s.BenchSizes {
		if !sized[t] {
			errs = append(errs, fmt.Errorf("simulator: bench size of %q, which is not a sized table", t))
		}
	}
	known("updated", s.Updated)
	known("added", s.Added)
	for _, t := range s.Bench {
		known("bench", t)
	}
	for t := range s.BenchPages {
		known("bench page", t)
	}
	return errors.Join(errs...)
}

// NewSimulator builds the simulator: with the spec's credentials unless cfg has some, and
// the default size of every sized table cfg leaves out.
func (d Descriptor) NewSimulator(cfg SimConfig) (Simulator, error) {
	if cfg.Credentials == nil {
		cfg.Credentials = d.Simulator.Credentials
	}
	sizes := make(map[string]int, len(d.Simulator.Sizes))
	for _, sz := range d.Simulator.Sizes {
		sizes[sz.Table] = sz.Default
	}
	for t, n := range cfg.Sizes {
		sizes[t] = n
	}
	cfg.Sizes = sizes
	sim, err := d.Simulator.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s simulator: %w", d.Name, err)
	}
	return sim, nil
}
