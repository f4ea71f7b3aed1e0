package faulttest

import (
	"context"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/apiclient"
	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/destination/postgres"
	"github.com/crmsync/crmsync/internal/destination/sqlite"
	"github.com/crmsync/crmsync/internal/simulator/closesim"
	"github.com/crmsync/crmsync/internal/simulator/coppersim"
	"github.com/crmsync/crmsync/internal/source"
	"github.com/crmsync/crmsync/internal/source/closecrm"
	"github.com/crmsync/crmsync/internal/source/copper"
	"github.com/crmsync/crmsync/internal/synctest"
)

const (
	key   = "fault-test-key-0123456789"
	email = "fault@example.com"
	rate  = 0.08 // share of requests that get the fault
)

// fault is one kind of bad day, set the same way on both simulators.
type fault struct {
	name   string
	close  closesim.Faults
	copper coppersim.Faults
	// rateLimit is a sustained server-side limit (requests/s) lower than the client paces for.
	rateLimit float64
}

// stall is how long a stalled answer stays silent: longer than any test could wait out.
const stall = 40 * time.Second

var faults = []fault{
	{name: "429 with hints", close: closesim.Faults{Rate429: rate}, copper: coppersim.Faults{Rate429: rate}},
	{name: "429 without hints", close: closesim.Faults{Rate429NoHint: rate}, copper: coppersim.Faults{Rate429NoHint: rate}},
	{name: "sustained limit below documented", rateLimit: 40},
	{name: "5xx", close: closesim.Faults{Rate5xx: rate}, copper: coppersim.Faults{Rate5xx: rate}},
	{name: "connection reset", close: closesim.Faults{RateReset: rate}, copper: coppersim.Faults{RateReset: rate}},
	{name: "never-finishing responses", close: closesim.Faults{RateSlow: rate, SlowDelay: 3 * time.Second}, copper: coppersim.Faults{RateSlow: rate, SlowDelay: 3 * time.Second}},
	{name: "stalled answers", close: closesim.Faults{RateStall: rate, RateStallHeaders: rate, StallFor: stall},
		copper: coppersim.Faults{RateStall: rate, RateStallHeaders: rate, StallFor: stall}},
	{name: "429 storm: every 3rd request, every 7th a 502", close: closesim.Faults{Every429: 3, Every5xx: 7, StormReset: time.Second},
		copper: coppersim.Faults{Every429: 3, Every5xx: 7}},
	// Close only: Copper documents no Retry-After (its 429s with one are "429 with hints").
	{name: "503 with Retry-After", close: closesim.Faults{Rate503RetryAfter: 0.2, RetryAfter: time.Second}},
	{name: "truncated bodies", close: closesim.Faults{RateTruncate: rate}, copper: coppersim.Faults{RateTruncate: rate}},
	{name: "invalid, empty or HTML bodies with 200", close: closesim.Faults{RateBadJSON: rate}, copper: coppersim.Faults{RateBadJSON: rate}},
	{name: "records changing between pages", close: closesim.Faults{MutateBetweenPages: 0.5}, copper: coppersim.Faults{MutateBetweenPages: 0.5}},
	{name: "everything at once", close: closesim.Faults{Rate429: 0.02, Rate429NoHint: 0.02, Rate5xx: 0.02, RateReset: 0.02, RateTruncate: 0.02, RateBadJSON: 0.02, MutateBetweenPages: 0.2},
		copper: coppersim.Faults{Rate429: 0.02, Rate429NoHint: 0.02, Rate5xx: 0.02, RateReset: 0.02, RateTruncate: 0.02, RateBadJSON: 0.02, MutateBetweenPages: 0.2}},
}

// account is one simulated account with its source and the tables to compare.
type account struct {
	name    string
	faulted bool // the fault applies to this source
	sim     interface{ Snapshot(string) []map[string]any }
	faults  func(on bool)
	stats   func() map[string]int64
	mutate  func(at time.Time)
	source  func(url string) source.Source
	tables  []synctest.Table
	handler func() *httptest.Server
}

// tuning is the client's in the matrix: unpaced (the simulators announce no limit unless the
// fault says so), quick retries, and a stall bound far below the simulators' stalls.
var tuning = apiclient.Tuning{RequestsPerSecond: -1, BaseBackoff: 5 * time.Millisecond, MaxAttempts: 15, StallTimeout: 300 * time.Millisecond}

func closeAccount(t *testing.T, f fault) account {
	// The lead query's minute is read the strict way (HH:MM:00): crmsync must not depend on
	// the lenient one. Announced windows are enforced: a request inside one is refused.
	sim, err := closesim.New(closesim.Config{Seed: 31, APIKey: key, Leads: 400, Activities: 600, Tasks: 300, Users: 8, CustomFields: 8, Events: 300,
		RateLimit: f.rateLimit, QueryExactMinute: true, EnforceResets: true})
	if err != nil {
		t.Fatal(err)
	}
	return account{
		name: "close", sim: sim, faulted: f.close != (closesim.Faults{}) || f.rateLimit > 0,
		faults: func(on bool) {
			if on {
				ff := f.close
				ff.Seed = 77
				if err := sim.SetFaults(ff); err != nil {
					t.Fatal(err)
				}
			} else if err := sim.SetFaults(closesim.Faults{}); err != nil {
				t.Fatal(err)
			}
		},
		stats: func() map[string]int64 { return sim.Stats().Faults },
		mutate: func(at time.Time) {
			sim.UpdateRecords("leads", 9, at)
			sim.AddRecords("activities", 7, at)
			sim.UpdateRecords("tasks", 5, at)
		},
		source: func(url string) source.Source {
			s, err := closecrm.New(closecrm.Config{APIKey: key, BaseURL: url, Tuning: tuning})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		tables: []synctest.Table{
			{Name: "leads", Key: "id", Version: "date_updated"}, {Name: "tasks", Key: "id", Version: "date_updated"},
			{Name: "users", Key: "id", Version: "date_updated"}, {Name: "custom_fields", Key: "id", Version: "date_updated"},
			{Name: "activities", Key: "id", AppendOnly: true},
		},
		handler: func() *httptest.Server { return httptest.NewServer(sim) },
	}
}

func copperAccount(t *testing.T, f fault) account {
	sim, err := coppersim.New(coppersim.Config{Seed: 32, APIKey: key, UserEmail: email, People: 500, Companies: 250, Leads: 150, Opportunities: 150,
		Projects: 40, Tasks: 150, Activities: 600, Users: 5, RateLimit: f.rateLimit, RateWindow: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	acc := account{
		name: "copper", sim: sim, faulted: f.copper != (coppersim.Faults{}) || f.rateLimit > 0,
		faults: func(on bool) {
			if on {
				ff := f.copper
				ff.Seed = 78
				if err := sim.SetFaults(ff); err != nil {
					t.Fatal(err)
				}
			} else if err := sim.SetFaults(coppersim.Faults{}); err != nil {
				t.Fatal(err)
			}
		},
		stats: func() map[string]int64 { return sim.Stats().Faults },
		mutate: func(at time.Time) {
			sim.UpdateRecords("people", 9, at)
			sim.AddRecords("companies", 4, at)
			sim.UpdateRecords("opportunities", 5, at)
			sim.AddRecords("activities_search", 6, at)
		},
		source: func(url string) source.Source {
			s, err := copper.New(copper.Config{APIKey: key, UserEmail: email, BaseURL: url, Tuning: tuning})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		handler: func() *httptest.Server { return httptest.NewServer(sim) },
	}
	for _, n := range []string{"companies", "leads", "opportunities", "people", "projects", "tasks", "activities_search"} {
		acc.tables = append(acc.tables, synctest.Table{Name: n, Key: "id", Version: "date_modified"})
	}
	for _, n := range []string{"account", "pipelines", "pipeline_stages", "custom_field_definitions", "users"} {
		acc.tables = append(acc.tables, synctest.Table{Name: n, Key: "id"})
	}
	return acc
}

// openDest opens the destination named by a --dest string as the engine's destination.
func openDest(t *testing.T, dest, schema string) destination.Destination {
	t.Helper()
	var d destination.Destination
	var err error
	if path, ok := strings.CutPrefix(dest, "sqlite:"); ok {
		d, err = sqlite.Open(context.Background(), path, "")
	} else {
		d, err = postgres.Open(context.Background(), dest, schema)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// injected totals the faults injected by kind over the whole matrix, for the report.
var injected = struct {
	sync.Mutex
	byKind map[string]int64
	syncs  int
}{byKind: map[string]int64{}}

// TestFaultMatrix: for every fault, both sources, both destinations: an initial sync and an
// incremental one after changes, each with the fault active, must leave the destination equal
// to the simulator. Bookmarks must never skip a row (checked by the incremental comparison).
func TestFaultMatrix(t *testing.T) {
	if testing.Short() {
		t.Skip("fault matrix: long")
	}
	for _, f := range faults {
		for _, mk := range []func(*testing.T, fault) account{closeAccount, copperAccount} {
			for destName, newDest := range synctest.Destinations() {
				acc := mk(t, f)
				if !acc.faulted {
					continue // this bad day is the other source's
				}
				t.Run(f.name+"/"+acc.name+"/"+destName, func(t *testing.T) {
					t.Parallel()
					srv := acc.handler()
					defer srv.Close()
					dest := newDest(t)
					dst := openDest(t, dest, acc.name)
					names := make([]string, len(acc.tables))
					for i, tb := range acc.tables {
						names[i] = tb.Name
					}
					for round := 1; round <= 2; round++ {
						if round == 2 {
							// Changed just before the sync, in its very second: must be in it.
							acc.mutate(time.Now().UTC())
						}
						acc.faults(true)
						synctest.Sync(t, acc.source(srv.URL), dst, names...)
						acc.faults(false)
						// A fault that moved data under the sync is caught up by the next one.
						if f.close.MutateBetweenPages > 0 {
							synctest.Sync(t, acc.source(srv.URL), dst, names...)
						}
						r := synctest.OpenReplica(t, dest, acc.name)
						for _, tb := range acc.tables {
							synctest.AssertReplica(t, r, acc.sim, tb)
						}
					}
					injected.Lock()
					for k, v := range acc.stats() {
						injected.byKind[k] += v
					}
					injected.syncs += 2
					injected.Unlock()
				})
			}
		}
	}
	t.Cleanup(func() {
		kinds := make([]string, 0, len(injected.byKind))
		for k := range injected.byKind {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		for _, k := range kinds {
			t.Logf("faults injected: %-12s %d", k, injected.byKind[k])
		}
		t.Logf("syncs under faults: %d", injected.syncs)
	})
}
