package main

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/crmsync/crmsync/internal/config"
	"github.com/crmsync/crmsync/internal/connector"
	"github.com/crmsync/crmsync/internal/destination/dsn"
	"github.com/crmsync/crmsync/internal/destination/postgres"
	"github.com/crmsync/crmsync/internal/simulator/simfault"
	"github.com/crmsync/crmsync/internal/sources"
)

// demoSeed makes the demo data the same on every machine.
const demoSeed = 42

// simulator is one running in-process API simulator.
type simulator struct {
	connector.Simulator
	desc    connector.Descriptor
	baseURL string
	stop    func()
}

// simFlags are the simulated account's shape, as flags: the size of every sized table of
// every source (--close-leads, --copper-people, …), latency and rate limit.
type simFlags struct {
	sizes     map[string]map[string]*int // source → table → count
	latency   time.Duration
	rateLimit float64
}

func (f *simFlags) register(fl *pflag.FlagSet) {
	f.sizes = map[string]map[string]*int{}
	for _, d := range sources.All() {
		f.sizes[d.Name] = map[string]*int{}
		for _, sz := range d.Simulator.Sizes {
			name := d.Name + "-" + strings.ReplaceAll(sz.Table, "_", "-")
			f.sizes[d.Name][sz.Table] = fl.Int(name, sz.Default, fmt.Sprintf("simulated %s %s", d.Title, strings.ReplaceAll(sz.Table, "_", " ")))
		}
	}
}

// start serves the descriptor's simulator on addr.
func (f *simFlags) start(d connector.Descriptor, addr string) (simulator, error) {
	sizes := map[string]int{}
	for table, n := range f.sizes[d.Name] {
		sizes[table] = *n
	}
	sim, err := d.NewSimulator(connector.SimConfig{Seed: demoSeed, Sizes: sizes, Latency: f.latency, RateLimit: f.rateLimit})
	if err != nil {
		return simulator{}, err
	}
	base, stop, err := simfault.Serve(sim, addr)
	if err != nil {
		return simulator{}, err
	}
	return simulator{Simulator: sim, desc: d, baseURL: base, stop: stop}, nil
}

// config is the sync settings that reach the simulator.
func (s simulator) config() config.Config {
	cfg := config.Config{Source: s.desc.Name, BaseURL: s.baseURL}
	creds := s.desc.Simulator.Credentials
	cfg.APIKey, cfg.UserEmail = creds["api_key"], creds["user_email"]
	return cfg
}

func (a *app) demoCommand() *cobra.Command {
	var dest string
	var sim simFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Try crmsync without an account: sync simulated CRM accounts into a local database",
		Long: "demo starts API simulators on loopback, serving a deterministic simulated account, and syncs every table into\n" +
			"the destination (default sqlite:crmsync-demo.db). Run it again for an incremental sync: the simulators add\n" +
			"and change a few records in between, as a live account would.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runDemo(cmd, dest, &sim)
		},
	}
	cmd.Flags().StringVar(&dest, "dest", "sqlite:crmsync-demo.db", "destination (sqlite:PATH or postgres://…)")
	sim.register(cmd.Flags())
	return cmd
}

func (a *app) runDemo(cmd *cobra.Command, dest string, flags *simFlags) error {
	var sims []simulator
	for _, d := range sources.All() {
		sim, err := flags.start(d, "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer sim.stop()
		sims = append(sims, sim)
		// A live account changes all the time: every minute since the simulator's epoch (the
		// start of the UTC day) a record is edited and one created. The changes are the same
		// in every run, so a later run finds exactly those made since the previous one.
		until := time.Now().UTC().Add(-5 * time.Second) // older than the clock uncertainty
		for m := sim.Epoch().Add(time.Minute); !m.After(until); m = m.Add(time.Minute) {
			sim.UpdateRecords(d.Simulator.Updated, 1, m)
			sim.AddRecords(d.Simulator.Added, 1, m)
		}
		fmt.Fprintf(a.stdout, "demo: %s simulator at %s\n", d.Title, sim.baseURL)
	}

	start := time.Now().UTC().AddDate(-2, 0, -1).Format("2006-01-02")
	var failed []error
	for _, s := range sims {
		cfg := s.config()
		cfg.StartDate, cfg.Dest, cfg.Schema, cfg.RequestsPerSecond = start, dest, s.desc.Name, -1
		if err := a.runSync(cmd, cfg, syncOptions{}); err != nil {
			failed = append(failed, fmt.Errorf("%s: %w", s.desc.Name, err))
		}
	}
	if len(failed) > 0 {
		return errors.Join(failed...)
	}
	fmt.Fprintf(a.stdout, "demo: done. Look inside with: %s   (run the demo again for an incremental sync)\n", lookInside(dest))
	fmt.Fprintf(a.stdout, "      custom fields are columns: %s\n", customFieldQuery(dest))
	return nil
}

// lookInside is the command that lists the demo's tables in dest.
func lookInside(dest string) string {
	if path, ok := dsn.SQLitePath(dest); ok {
		return fmt.Sprintf("sqlite3 %s '.tables'", path)
	}
	// The demo writes each source into the schema named after it.
	return fmt.Sprintf("psql '%s' -c '\\dt (%s).*'", postgres.Redact(dest), strings.Join(sources.Names(), "|"))
}

// customFieldQuery shows the demo's Close leads with a custom field of the demo account.
func customFieldQuery(dest string) string {
	const q = "SELECT name, custom_industry FROM %s LIMIT 5"
	if path, ok := dsn.SQLitePath(dest); ok {
		return fmt.Sprintf("sqlite3 %s '"+q+"'", path, "close_leads")
	}
	return fmt.Sprintf("psql '%s' -c '"+q+"'", postgres.Redact(dest), "close.leads")
}

func (a *app) sandboxCommand() *cobra.Command {
	var addr, src, faultSpec string
	var flags simFlags
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Serve a simulated CRM API on loopback, to point crmsync (or anything else) at",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rates, err := parseFaults(faultSpec)
			if err != nil {
				return usageError{err}
			}
			d, err := sources.Lookup(src)
			if err != nil {
				return usageError{err}
			}
			sim, err := flags.start(d, addr)
			if err != nil {
				return err
			}
			defer sim.stop()
			if err := setFaults(sim, rates); err != nil {
				return usageError{err}
			}
			fmt.Fprintf(a.stdout, "%s simulator listening at %s\n", d.Name, sim.baseURL)
			var env []string
			for _, c := range d.Credentials {
				env = append(env, c.Env+"="+d.Simulator.Credentials[c.Key])
			}
			fmt.Fprintf(a.stdout, "try: %s crmsync sync --source %s --base-url %s --start-date 2020-01-01 --dest sqlite:sandbox.db\n", strings.Join(env, " "), d.Name, sim.baseURL)
			fmt.Fprintln(a.stdout, "stop with Ctrl-C")
			<-cmd.Context().Done()
			return nil
		},
	}
	cmd.Flags().StringVar(&src, "source", "close", "which API to simulate: "+strings.Join(sources.Names(), " or "))
	cmd.Flags().StringVar(&addr, "listen", "127.0.0.1:8080", "address to listen on (keep it on loopback)")
	flags.register(cmd.Flags())
	cmd.Flags().DurationVar(&flags.latency, "latency", 0, "latency added to every response, e.g. 200ms")
	cmd.Flags().Float64Var(&flags.rateLimit, "rate-limit", 0, "requests per second the simulator allows before answering 429 (0: no limit)")
	cmd.Flags().StringVar(&faultSpec, "faults", "", "fault mix, e.g. 429=0.05,5xx=0.02,truncate=0.01 (kinds: "+strings.Join(faultKinds, ", ")+")")
	return cmd
}

// setFaults switches the sandbox's random faults on.
func setFaults(sim simulator, rates map[string]float64) error {
	return sim.SetFaults(simfault.Faults{Seed: demoSeed, Rate429: rates["429"], Rate429NoHint: rates["429nohint"], Rate5xx: rates["5xx"],
		RateTruncate: rates["truncate"], RateBadJSON: rates["badjson"], RateReset: rates["reset"], RateSlow: rates["slow"],
		SlowDelay: 90 * time.Second, MutateBetweenPages: rates["mutate"], RateStall: rates["stall"]})
}

// faultKinds are the faults the sandbox can inject.
var faultKinds = []string{"429", "429nohint", "5xx", "truncate", "badjson", "reset", "slow", "stall", "mutate"}

// parseFaults reads "kind=probability,…".
func parseFaults(spec string) (map[string]float64, error) {
	out := map[string]float64{}
	if strings.TrimSpace(spec) == "" {
		return out, nil
	}
	for _, part := range strings.Split(spec, ",") {
		kind, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		p, err := strconv.ParseFloat(val, 64)
		if !ok || err != nil || p < 0 || p > 1 || !slices.Contains(faultKinds, kind) {
			return nil, fmt.Errorf("faults: %q is not kind=probability with a kind among %s and a probability in [0, 1]", part, strings.Join(faultKinds, ", "))
		}
		out[kind] = p
	}
	return out, nil
}
