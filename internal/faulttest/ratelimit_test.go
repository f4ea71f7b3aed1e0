package faulttest

import (
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/apiclient"
	"github.com/crmsync/crmsync/internal/connector"
	"github.com/crmsync/crmsync/internal/e2e"
	"github.com/crmsync/crmsync/internal/simulator/closesim"
	"github.com/crmsync/crmsync/internal/simulator/coppersim"
	"github.com/crmsync/crmsync/internal/source/closecrm"
	"github.com/crmsync/crmsync/internal/source/copper"
)

// TestPacedByAnnouncedGroupLimits: with crmsync's default pacing, a Close account whose endpoint
// groups announce their own limits (a 1-second token bucket, or a fixed window with fractional
// resets) is synced completely without a single 429 and without a request inside a closed
// window, and each group runs near its own limit rather than a fixed pace.
func TestPacedByAnnouncedGroupLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("paced syncs take seconds")
	}
	tests := []struct {
		name   string
		limits closesim.Config
	}{
		{"token bucket, activities 20/s, others 10/s", closesim.Config{RateLimit: 10, GroupRateLimits: map[string]float64{"GET /activity/": 20}}},
		{"fixed 2 s windows, fractional resets", closesim.Config{RateLimit: 10, RateWindow: 2 * time.Second, FractionalReset: true}},
	}
	for _, tt := range tests {
		for destName, newDest := range e2e.Destinations() {
			t.Run(tt.name+"/"+destName, func(t *testing.T) {
				t.Parallel()
				cfg := tt.limits
				cfg.Seed, cfg.APIKey, cfg.EnforceResets = 41, key, true
				cfg.Leads, cfg.Activities, cfg.Tasks, cfg.Users, cfg.CustomFields = 600, 3000, 200, 5, 6
				sim, err := closesim.New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				a := e2e.NewAccount(t, closecrm.Descriptor, e2e.Options{Sim: sim, SimConfig: connector.SimConfig{Credentials: creds}})
				a.Tuning = apiclient.Tuning{BaseBackoff: 5 * time.Millisecond} // crmsync's default pacing
				dest := newDest(t)
				dst := e2e.OpenDest(t, dest, "close")
				t0 := time.Now()
				rep := a.Sync(t, dst, "leads", "activities", "tasks", "users")
				elapsed := time.Since(t0)
				st := sim.Stats()
				if st.RateLimited > 0 || st.InsideReset > 0 || rep.Requests.RateLimited > 0 {
					t.Errorf("the server answered %d requests over the limit and %d inside a closed window (client saw %d 429s); want none",
						st.RateLimited, st.InsideReset, rep.Requests.RateLimited)
				}
				// Activities (30 pages at 20/s, or 10/s in windows) bound the sync; everything
				// else runs alongside under its own group's limit. A fixed 15 requests/s over
				// all groups would need (30+3+1+1+1)/15 ≈ 2.5 s.
				ideal := time.Duration(float64(st.ByGroup["GET /activity/"]) / activityRate(cfg) * float64(time.Second))
				t.Logf("%s: %s for %d requests (activities %d: ideal %s); waited for rate limits: %s",
					tt.name, elapsed.Round(time.Millisecond), st.Requests, st.ByGroup["GET /activity/"], ideal, rep.Requests.RateLimitWait.Round(time.Millisecond))
				if elapsed > 3*ideal+2*time.Second {
					t.Errorf("took %s; the activities group alone allows it in %s", elapsed, ideal)
				}
				a.AssertReplica(t, e2e.OpenReplica(t, dest, "close"), "leads", "tasks", "activities", "users")
			})
		}
	}
}

func activityRate(cfg closesim.Config) float64 {
	if r, ok := cfg.GroupRateLimits["GET /activity/"]; ok {
		return r
	}
	return cfg.RateLimit
}

// TestCopperHeaderless429Storm: at Copper's documented pace, an account of ~1,500 records whose
// API answers every third request with a header-less 429 is synced completely, in well under a
// minute (no whole-window stall per 429).
func TestCopperHeaderless429Storm(t *testing.T) {
	if testing.Short() {
		t.Skip("paced syncs take seconds")
	}
	for destName, newDest := range e2e.Destinations() {
		t.Run(destName, func(t *testing.T) {
			t.Parallel()
			// 180 requests a minute, rolling, as documented; the storm comes on top.
			sim, err := coppersim.New(coppersim.Config{Seed: 42, APIKey: key, UserEmail: email, People: 500, Companies: 300, Leads: 100, Opportunities: 100,
				Projects: 20, Tasks: 100, Activities: 400, Users: 5, RateLimit: 3, RateWindow: time.Minute,
				Faults: coppersim.Faults{Seed: 1, Every429: 3}})
			if err != nil {
				t.Fatal(err)
			}
			a := e2e.NewAccount(t, copper.Descriptor, e2e.Options{Sim: sim, SimConfig: connector.SimConfig{Credentials: creds}})
			a.Tuning = apiclient.Tuning{} // crmsync's default pacing
			dest := newDest(t)
			dst := e2e.OpenDest(t, dest, "copper")
			t0 := time.Now()
			// Unsplit first reads, as the CLI reads Copper at its pace.
			opts := a.Options()
			opts.Windows = copper.Descriptor.Windows(0)
			rep := e2e.SyncWith(t, a.Source(t), dst, opts)
			elapsed := time.Since(t0)
			t.Logf("%d rows, %d requests, %d answered 429, %s", rep.Rows(), rep.Requests.Requests, rep.Requests.RateLimited, elapsed.Round(time.Millisecond))
			if rep.Requests.RateLimited == 0 {
				t.Fatal("the storm did not happen")
			}
			if elapsed > 30*time.Second {
				t.Errorf("took %s; want well under a minute", elapsed)
			}
			a.AssertReplica(t, e2e.OpenReplica(t, dest, "copper"))
		})
	}
}
