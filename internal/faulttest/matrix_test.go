package faulttest

import (
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/connector"
	"github.com/crmsync/crmsync/internal/e2e"
	"github.com/crmsync/crmsync/internal/fakeclock"
	"github.com/crmsync/crmsync/internal/simulator/closesim"
	"github.com/crmsync/crmsync/internal/simulator/coppersim"
	"github.com/crmsync/crmsync/internal/simulator/simfault"
	"github.com/crmsync/crmsync/internal/source/closecrm"
	"github.com/crmsync/crmsync/internal/source/copper"
)

const (
	key   = "fault-test-key-0123456789"
	email = "fault@example.com"
	rate  = 0.08 // share of requests that get the fault
)

// creds reach every simulated account of these tests (Close ignores the email).
var creds = map[string]string{"api_key": key, "user_email": email}

// fault is one kind of bad day, set the same way on every simulator that can have it.
type fault struct {
	name   string
	faults simfault.Faults
	// only names the one source whose API can have this fault; empty: all.
	only string
	// rateLimit is a sustained server-side limit (requests/s) lower than the client paces for.
	rateLimit float64
}

// stall is how long a stalled answer stays silent: longer than any test could wait out.
const stall = 40 * time.Second

var faults = []fault{
	{name: "429 with hints", faults: simfault.Faults{Rate429: rate}},
	{name: "429 without hints", faults: simfault.Faults{Rate429NoHint: rate}},
	{name: "sustained limit below documented", rateLimit: 40},
	{name: "5xx", faults: simfault.Faults{Rate5xx: rate}},
	{name: "connection reset", faults: simfault.Faults{RateReset: rate}},
	{name: "never-finishing responses", faults: simfault.Faults{RateSlow: rate, SlowDelay: 3 * time.Second}},
	{name: "stalled answers", faults: simfault.Faults{RateStall: rate, RateStallHeaders: rate, StallFor: stall}},
	{name: "429 storm: every 3rd request, every 7th a 502", faults: simfault.Faults{Every429: 3, Every5xx: 7}},
	// Copper documents no Retry-After (its 429s with one are "429 with hints").
	{name: "503 with Retry-After", faults: simfault.Faults{Rate503RetryAfter: 0.2, RetryAfter: time.Second}, only: "close"},
	{name: "truncated bodies", faults: simfault.Faults{RateTruncate: rate}},
	{name: "invalid, empty or HTML bodies with 200", faults: simfault.Faults{RateBadJSON: rate}},
	{name: "records changing between pages", faults: simfault.Faults{MutateBetweenPages: 0.5}},
	{name: "everything at once", faults: simfault.Faults{Rate429: 0.02, Rate429NoHint: 0.02, Rate5xx: 0.02, RateReset: 0.02, RateTruncate: 0.02,
		RateBadJSON: 0.02, MutateBetweenPages: 0.2}},
}

// account is how the matrix builds and changes one source's simulated account.
type account struct {
	desc connector.Descriptor
	seed int64 // of the faults
	sim  func(t *testing.T, f fault, now func() time.Time) connector.Simulator
	// changes are what a live account does between two syncs: table → records updated
	// (positive) or added (negative).
	changes map[string]int
}

var accounts = []account{
	{desc: closecrm.Descriptor, seed: 77, changes: map[string]int{"leads": 9, "activities": -7, "tasks": 5},
		sim: func(t *testing.T, f fault, now func() time.Time) connector.Simulator {
			// The lead query's minute is read the strict way (HH:MM:00), and its naive date-times
			// in the account's zone unless the request says which (UTC-5 here): crmsync must not
			// depend on the lenient reading nor on UTC being the default. Announced windows are
			// enforced: a request inside one is refused.
			sim, err := closesim.New(closesim.Config{Seed: 31, APIKey: key, Leads: 400, Activities: 600, Tasks: 300, Users: 8, CustomFields: 8, Events: 300,
				RateLimit: f.rateLimit, QueryExactMinute: true, QueryZone: -5 * time.Hour, EnforceResets: true, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			return sim
		}},
	{desc: copper.Descriptor, seed: 78, changes: map[string]int{"people": 9, "companies": -4, "opportunities": 5, "activities_search": -6},
		sim: func(t *testing.T, f fault, now func() time.Time) connector.Simulator {
			sim, err := coppersim.New(coppersim.Config{Seed: 32, APIKey: key, UserEmail: email, People: 500, Companies: 250, Leads: 150, Opportunities: 150,
				Projects: 40, Tasks: 150, Activities: 600, Users: 5, RateLimit: f.rateLimit, RateWindow: time.Second, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			return sim
		}},
}

// change applies the account's live changes at the given instant.
func (a account) change(sim connector.Simulator, at time.Time) {
	for table, n := range a.changes {
		if n > 0 {
			sim.UpdateRecords(table, n, at)
		} else {
			sim.AddRecords(table, -n, at)
		}
	}
}

// setFaults switches the simulator's faults.
func setFaults(t *testing.T, sim connector.Simulator, f simfault.Faults) {
	t.Helper()
	if err := sim.SetFaults(f); err != nil {
		t.Fatal(err)
	}
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
		for _, acc := range accounts {
			if f.only != "" && f.only != acc.desc.Name {
				continue // this bad day is the other source's
			}
			for destName, newDest := range e2e.Destinations() {
				t.Run(f.name+"/"+acc.desc.Name+"/"+destName, func(t *testing.T) {
					t.Parallel()
					// Simulator, client and engine share a fake clock: waits for rate limits and
					// backoffs pass at once. Stalls and slow answers still take real time.
					clock := fakeclock.New(time.Now().UTC())
					a := e2e.NewAccount(t, acc.desc, e2e.Options{Sim: acc.sim(t, f, clock.Now), Clock: clock,
						SimConfig: connector.SimConfig{Credentials: creds}})
					dest := newDest(t)
					dst := e2e.OpenDest(t, dest, acc.desc.Name)
					on := f.faults
					on.Seed = acc.seed
					var waited time.Duration // for rate limits, by the client's pacing
					for round := 1; round <= 2; round++ {
						if round == 2 {
							// Changed just before the sync, in its very second: must be in it.
							acc.change(a.Sim, clock.Now())
						}
						setFaults(t, a.Sim, on)
						waited += a.Sync(t, dst).Requests.RateLimitWait
						setFaults(t, a.Sim, simfault.Faults{})
						// A fault that moved data under the sync is caught up by the next one.
						if f.faults.MutateBetweenPages > 0 {
							a.Sync(t, dst)
						}
						a.AssertReplica(t, e2e.OpenReplica(t, dest, acc.desc.Name))
					}
					st := a.Sim.Stats()
					hit := st.RateLimited
					for _, v := range st.Faults {
						hit += v
					}
					if hit == 0 && (f.rateLimit == 0 || waited == 0) {
						t.Fatal("the simulator injected nothing and no limit held the client back: this case proves nothing")
					}
					injected.Lock()
					for k, v := range st.Faults {
						injected.byKind[k] += v
					}
					injected.byKind["rate limited"] += st.RateLimited
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
