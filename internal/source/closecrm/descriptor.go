package closecrm

import (
	"github.com/crmsync/crmsync/internal/connector"
	"github.com/crmsync/crmsync/internal/simulator/closesim"
	"github.com/crmsync/crmsync/internal/source"
)

// Descriptor is Close as the registry knows it.
var Descriptor = connector.Descriptor{
	Name:   "close",
	Title:  "Close",
	Tables: tables,
	Credentials: []connector.Credential{
		{Key: "api_key", Env: "CLOSE_API_KEY", Missing: "set CLOSE_API_KEY in the environment (or --api-key, or api_key in the config file)"},
	},
	New:               func(s connector.Settings) (source.Source, error) { return New(s) },
	RequestsPerSecond: DefaultRequestsPerSecond,
	PacedPerGroup:     true,
	Simulator: connector.SimulatorSpec{
		New:         newSimulator,
		Credentials: map[string]string{"api_key": "api_demo.sandboxkey"},
		Sizes: []connector.SimSize{
			{Table: "leads", Default: 2000}, {Table: "activities", Default: 6000}, {Table: "tasks", Default: 1000},
			{Table: "event_log", Default: 4000}, {Table: "users", Default: 25}, {Table: "custom_fields", Default: 24},
		},
		Updated: "leads", Added: "activities",
		// Tasks and the event log are left out: the bench measures the big tables and the
		// per-group pacing, and the event log's 30-day window would skew rows per request.
		Bench:      []string{"leads", "activities", "users", "custom_fields"},
		BenchPages: map[string]int{"leads": leadPageSize, "activities": activityPageSize, "users": bigPageSize, "custom_fields": bigPageSize},
		BenchSizes: map[string]int{"leads": 100_000, "activities": 300_000, "users": 20, "custom_fields": 20, "tasks": 0, "event_log": 0},
	},
}

func newSimulator(c connector.SimConfig) (connector.Simulator, error) {
	sim, err := closesim.New(closesim.Config{
		Seed: c.Seed, APIKey: c.Credentials["api_key"], Now: c.Now, Latency: c.Latency, RateLimit: c.RateLimit,
		Leads: c.Sizes["leads"], Activities: c.Sizes["activities"], Tasks: c.Sizes["tasks"], Events: c.Sizes["event_log"],
		Users: c.Sizes["users"], CustomFields: c.Sizes["custom_fields"],
	})
	if err != nil {
		return nil, err
	}
	return sim, nil
}
