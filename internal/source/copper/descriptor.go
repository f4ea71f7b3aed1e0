package copper

import (
	"github.com/crmsync/crmsync/internal/connector"
	"github.com/crmsync/crmsync/internal/simulator/coppersim"
	"github.com/crmsync/crmsync/internal/source"
)

// Descriptor is Copper as the registry knows it.
var Descriptor = connector.Descriptor{
	Name:   "copper",
	Title:  "Copper",
	Tables: tables,
	Credentials: []connector.Credential{
		{Key: "api_key", Env: "COPPER_API_KEY", Missing: "set COPPER_API_KEY in the environment (or --api-key, or api_key in the config file)"},
		{Key: "user_email", Env: "COPPER_USER_EMAIL", Missing: "Copper needs the email of the user who owns the API key: set COPPER_USER_EMAIL, --user-email, or user_email in the config file"},
	},
	New:               func(s connector.Settings) (source.Source, error) { return New(s) },
	RequestsPerSecond: DefaultRequestsPerSecond,
	Simulator: connector.SimulatorSpec{
		New:         newSimulator,
		Credentials: map[string]string{"api_key": "api_demo.sandboxkey", "user_email": "demo@crmsync.example"},
		Sizes: []connector.SimSize{
			{Table: "people", Default: 2000}, {Table: "companies", Default: 1000}, {Table: "leads", Default: 1000},
			{Table: "opportunities", Default: 1000}, {Table: "projects", Default: 200}, {Table: "tasks", Default: 1000},
			{Table: "activities_search", Default: 6000}, {Table: "users", Default: 12},
		},
		Updated: "people", Added: "activities_search",
		BenchPages: map[string]int{"people": pageSize, "companies": pageSize, "activities_search": pageSize},
		// Copper's bench syncs every table: the other record tables are left empty, as they
		// always were, so figures stay comparable.
		BenchSizes: map[string]int{"people": 100_000, "companies": 100_000, "activities_search": 300_000, "users": 10,
			"leads": 0, "opportunities": 0, "projects": 0, "tasks": 0},
	},
}

func newSimulator(c connector.SimConfig) (connector.Simulator, error) {
	n := c.Sizes
	sim, err := coppersim.New(coppersim.Config{
		Seed: c.Seed, APIKey: c.Credentials["api_key"], UserEmail: c.Credentials["user_email"], Now: c.Now,
		Latency: c.Latency, RateLimit: c.RateLimit,
		People: n["people"], Companies: n["companies"], Leads: n["leads"], Opportunities: n["opportunities"],
		Projects: n["projects"], Tasks: n["tasks"], Activities: n["activities_search"], Users: n["users"],
	})
	if err != nil {
		return nil, err
	}
	return sim, nil
}
