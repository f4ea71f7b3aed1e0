package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/crmsync/crmsync/internal/config"
	"github.com/crmsync/crmsync/internal/simulator/closesim"
	"github.com/crmsync/crmsync/internal/simulator/coppersim"
)

// demoSeed makes the demo data the same on every machine.
const demoSeed = 42

// demoKey is the simulator's API key; it is not a secret.
const demoKey = "api_demo.sandboxkey"

// simulator is one running in-process API simulator.
type simulator struct {
	source  string
	baseURL string
	apiKey  string
	email   string
	stop    func()
}

// serve starts h on a loopback port.
func serve(h http.Handler, addr string) (string, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}
	return "http://" + ln.Addr().String(), stop, nil
}

// demoSize is the simulated account size of the demo.
type demoSize struct {
	closeLeads, closeActivities    int
	copperPeople, copperActivities int
	latency                        time.Duration // added to every response
	rateLimit                      float64       // requests per second; 0: none
}

// demoEmail is the Copper simulator's user email; not a secret.
const demoEmail = "demo@crmsync.example"

func startCopperSimulator(size demoSize, addr string) (*coppersim.Server, simulator, error) {
	n := size.copperPeople
	sim, err := coppersim.New(coppersim.Config{
		Seed: demoSeed, APIKey: demoKey, UserEmail: demoEmail,
		People: n, Companies: n / 2, Leads: n / 2, Opportunities: n / 2, Projects: n / 10, Tasks: n / 2,
		Activities: size.copperActivities, Users: 12, Latency: size.latency, RateLimit: size.rateLimit,
	})
	if err != nil {
		return nil, simulator{}, err
	}
	base, stop, err := serve(sim, addr)
	if err != nil {
		return nil, simulator{}, err
	}
	return sim, simulator{source: "copper", baseURL: base, apiKey: demoKey, email: demoEmail, stop: stop}, nil
}

func startCloseSimulator(size demoSize, addr string) (*closesim.Server, simulator, error) {
	sim, err := closesim.New(closesim.Config{
		Seed: demoSeed, APIKey: demoKey,
		Leads: size.closeLeads, Activities: size.closeActivities,
		Tasks: size.closeLeads / 2, Users: 25, CustomFields: 24, Events: size.closeLeads * 2,
		Latency: size.latency, RateLimit: size.rateLimit,
	})
	if err != nil {
		return nil, simulator{}, err
	}
	base, stop, err := serve(sim, addr)
	if err != nil {
		return nil, simulator{}, err
	}
	return sim, simulator{source: "close", baseURL: base, apiKey: demoKey, stop: stop}, nil
}

func (a *app) demoCommand() *cobra.Command {
	var dest string
	var size demoSize
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Try crmsync without an account: sync simulated CRM accounts into a local database",
		Long: "demo starts API simulators on loopback, serving a deterministic simulated account, and syncs every table into\n" +
			"the destination (default sqlite:crmsync-demo.db). Run it again for an incremental sync: the simulators add\n" +
			"and change a few records in between, as a live account would.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runDemo(cmd, dest, size)
		},
	}
	cmd.Flags().StringVar(&dest, "dest", "sqlite:crmsync-demo.db", "destination (sqlite:PATH or postgres://…)")
	cmd.Flags().IntVar(&size.closeLeads, "close-leads", 2000, "simulated Close leads")
	cmd.Flags().IntVar(&size.closeActivities, "close-activities", 6000, "simulated Close activities")
	cmd.Flags().IntVar(&size.copperPeople, "copper-people", 2000, "simulated Copper people")
	cmd.Flags().IntVar(&size.copperActivities, "copper-activities", 6000, "simulated Copper activities")
	return cmd
}

func (a *app) runDemo(cmd *cobra.Command, dest string, size demoSize) error {
	closeSim, closeAPI, err := startCloseSimulator(size, "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer closeAPI.stop()
	copperSim, copperAPI, err := startCopperSimulator(size, "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer copperAPI.stop()
	// A live account changes all the time: every minute since the simulators' epoch (the start
	// of the UTC day) a lead or person is edited and an activity logged. The changes are the
	// same in every run, so a later run finds exactly those made since the previous one.
	until := time.Now().UTC().Add(-5 * time.Second) // older than the clock uncertainty
	for m := closeSim.Epoch().Add(time.Minute); !m.After(until); m = m.Add(time.Minute) {
		closeSim.UpdateRecords("leads", 1, m)
		closeSim.AddRecords("activities", 1, m)
		copperSim.UpdateRecords("people", 1, m)
		copperSim.AddRecords("activities_search", 1, m)
	}

	start := time.Now().UTC().AddDate(-2, 0, -1).Format("2006-01-02")
	fmt.Fprintf(a.stdout, "demo: Close simulator at %s, Copper simulator at %s\n", closeAPI.baseURL, copperAPI.baseURL)
	var failed []error
	for _, s := range []simulator{closeAPI, copperAPI} {
		cfg := config.Config{Source: s.source, APIKey: s.apiKey, UserEmail: s.email, BaseURL: s.baseURL,
			StartDate: start, Dest: dest, Schema: s.source, RequestsPerSecond: -1}
		if err := a.runSync(cmd, cfg, syncOptions{}); err != nil {
			failed = append(failed, fmt.Errorf("%s: %w", s.source, err))
		}
	}
	if len(failed) > 0 {
		return errors.Join(failed...)
	}
	fmt.Fprintf(a.stdout, "demo: done. Look inside with: sqlite3 %s '.tables'   (run the demo again for an incremental sync)\n", trimSQLite(dest))
	return nil
}

func trimSQLite(dest string) string {
	if len(dest) > 7 && dest[:7] == "sqlite:" {
		return dest[7:]
	}
	return dest
}

func (a *app) sandboxCommand() *cobra.Command {
	var addr, src, faultSpec string
	var size demoSize
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Serve a simulated CRM API on loopback, to point crmsync (or anything else) at",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rates, err := parseFaults(faultSpec)
			if err != nil {
				return usageError{err}
			}
			var sim simulator
			switch src {
			case "close":
				var cs *closesim.Server
				if cs, sim, err = startCloseSimulator(size, addr); err == nil {
					err = cs.SetFaults(closesim.Faults{Seed: demoSeed, Rate429: rates["429"], Rate429NoHint: rates["429nohint"], Rate5xx: rates["5xx"],
						RateTruncate: rates["truncate"], RateBadJSON: rates["badjson"], RateReset: rates["reset"], RateSlow: rates["slow"],
						SlowDelay: 90 * time.Second, MutateBetweenPages: rates["mutate"], RateStall: rates["stall"]})
				}
			case "copper":
				var cs *coppersim.Server
				if cs, sim, err = startCopperSimulator(size, addr); err == nil {
					err = cs.SetFaults(coppersim.Faults{Seed: demoSeed, Rate429: rates["429"], Rate429NoHint: rates["429nohint"], Rate5xx: rates["5xx"],
						RateTruncate: rates["truncate"], RateBadJSON: rates["badjson"], RateReset: rates["reset"], RateSlow: rates["slow"],
						SlowDelay: 90 * time.Second, MutateBetweenPages: rates["mutate"], RateStall: rates["stall"]})
				}
			default:
				return usageError{fmt.Errorf("source: %q is not a known source (close or copper)", src)}
			}
			if err != nil {
				return err
			}
			defer sim.stop()
			fmt.Fprintf(a.stdout, "%s simulator listening at %s\n", src, sim.baseURL)
			if src == "copper" {
				fmt.Fprintf(a.stdout, "try: COPPER_API_KEY=%s COPPER_USER_EMAIL=%s crmsync sync --source copper --base-url %s --start-date 2020-01-01 --dest sqlite:sandbox.db\n", sim.apiKey, sim.email, sim.baseURL)
			} else {
				fmt.Fprintf(a.stdout, "try: CLOSE_API_KEY=%s crmsync sync --source close --base-url %s --start-date 2020-01-01 --dest sqlite:sandbox.db\n", sim.apiKey, sim.baseURL)
			}
			fmt.Fprintln(a.stdout, "stop with Ctrl-C")
			<-cmd.Context().Done()
			return nil
		},
	}
	cmd.Flags().StringVar(&src, "source", "close", "which API to simulate: close or copper")
	cmd.Flags().StringVar(&addr, "listen", "127.0.0.1:8080", "address to listen on (keep it on loopback)")
	cmd.Flags().IntVar(&size.closeLeads, "close-leads", 2000, "simulated Close leads")
	cmd.Flags().IntVar(&size.closeActivities, "close-activities", 6000, "simulated Close activities")
	cmd.Flags().IntVar(&size.copperPeople, "copper-people", 2000, "simulated Copper people")
	cmd.Flags().IntVar(&size.copperActivities, "copper-activities", 6000, "simulated Copper activities")
	cmd.Flags().DurationVar(&size.latency, "latency", 0, "latency added to every response, e.g. 200ms")
	cmd.Flags().Float64Var(&size.rateLimit, "rate-limit", 0, "requests per second the simulator allows before answering 429 (0: no limit)")
	cmd.Flags().StringVar(&faultSpec, "faults", "", "fault mix, e.g. 429=0.05,5xx=0.02,truncate=0.01 (kinds: "+strings.Join(faultKinds, ", ")+")")
	return cmd
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
