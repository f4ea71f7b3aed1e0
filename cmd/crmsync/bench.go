package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/crmsync/crmsync/internal/config"
	"github.com/crmsync/crmsync/internal/engine"
	"github.com/crmsync/crmsync/internal/simulator/closesim"
	"github.com/crmsync/crmsync/internal/simulator/coppersim"
)

// benchOptions describe one benchmark run: a simulated account served on loopback in this
// process, synced in full (and optionally once more, incrementally, with nothing changed).
type benchOptions struct {
	source, dest, schema string
	leads, activities    int // Close leads; activities of either source
	people, companies    int // Copper
	latency              time.Duration
	serverRate           float64 // simulator's limit in requests/s; 0: none
	clientRate           float64 // crmsync's pacing; 0: unpaced
	incremental          bool
	cpuProfile           string
	memProfile           string
	trace                string
}

// benchResult is what one run measured.
type benchResult struct {
	Source      string  `json:"source"`
	Dest        string  `json:"dest"`
	Rows        int64   `json:"rows"`
	Seconds     float64 `json:"seconds"`
	RowsPerSec  float64 `json:"rows_per_second"`
	CPUSeconds  float64 `json:"cpu_seconds"`
	CPUPer100k  float64 `json:"cpu_seconds_per_100k_rows"`
	PeakRSSMB   float64 `json:"peak_rss_mb"`
	Requests    int64   `json:"requests"`
	MinRequests int64   `json:"min_requests"` // Σ ceil(rows ÷ max page size) per endpoint
	RateLimited int64   `json:"rate_limited"`
	// IncrementalRequests is what a second sync with no changes made (when asked for).
	IncrementalRequests int64 `json:"incremental_requests,omitempty"`
}

// pageSizes are the largest pages the endpoints allow, for the request minimum.
var pageSizes = map[string]int{
	"close/leads": 200, "close/activities": 100, "close/tasks": 1000, "close/users": 1000, "close/custom_fields": 1000,
	"copper/people": 200, "copper/companies": 200, "copper/activities_search": 200,
}

func runBench(ctx context.Context, o benchOptions) (benchResult, error) {
	var handler http.Handler
	var streams []string
	switch o.source {
	case "close":
		sim, err := closesim.New(closesim.Config{Seed: 1, APIKey: demoKey, Leads: o.leads, Activities: o.activities,
			Users: 20, CustomFields: 20, Latency: o.latency, RateLimit: o.serverRate})
		if err != nil {
			return benchResult{}, err
		}
		handler, streams = sim, []string{"leads", "activities", "users", "custom_fields"}
	case "copper":
		sim, err := coppersim.New(coppersim.Config{Seed: 1, APIKey: demoKey, UserEmail: demoEmail, People: o.people,
			Companies: o.companies, Activities: o.activities, Users: 10, Latency: o.latency, RateLimit: o.serverRate})
		if err != nil {
			return benchResult{}, err
		}
		handler = sim
	default:
		return benchResult{}, usageError{fmt.Errorf("source: %q is not a known source", o.source)}
	}
	base, stop, err := serve(handler, "127.0.0.1:0")
	if err != nil {
		return benchResult{}, err
	}
	defer stop()
	if o.dest == "" {
		dir, err := os.MkdirTemp("", "crmsync-bench")
		if err != nil {
			return benchResult{}, err
		}
		defer os.RemoveAll(dir)
		o.dest = "sqlite:" + filepath.Join(dir, "bench.db")
	}
	dst, destName, err := openDestination(ctx, o.dest, o.schema, o.source)
	if err != nil {
		return benchResult{}, err
	}
	defer dst.Close()
	cfg := config.Config{Source: o.source, BaseURL: base, APIKey: demoKey, UserEmail: demoEmail, RequestsPerSecond: -1}
	if o.clientRate > 0 {
		cfg.RequestsPerSecond = o.clientRate
	}
	src, err := newSource(cfg, nil)
	if err != nil {
		return benchResult{}, err
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return benchResult{}, err
		}
		defer f.Close()
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if o.trace != "" {
		f, err := os.Create(o.trace)
		if err != nil {
			return benchResult{}, err
		}
		defer f.Close()
		if err := trace.Start(f); err != nil {
			return benchResult{}, err
		}
		defer trace.Stop()
	}
	if o.memProfile != "" {
		runtime.MemProfileRate = 64 << 10
		defer func() {
			if f, err := os.Create(o.memProfile); err == nil {
				pprof.Lookup("heap").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	opts := engine.Options{StartDate: time.Now().AddDate(-3, 0, 0), Streams: streams, Windows: windowsFor(cfg)}
	cpu0 := cpuSeconds()
	rep, err := engine.Run(ctx, src, dst, opts)
	if err != nil {
		return benchResult{}, err
	}
	res := benchResult{Source: o.source, Dest: destName, Rows: rep.Rows(), Seconds: rep.Duration.Seconds(),
		CPUSeconds: cpuSeconds() - cpu0, PeakRSSMB: peakRSSMB(), Requests: rep.Requests.Requests, RateLimited: rep.Requests.RateLimited}
	res.RowsPerSec = float64(res.Rows) / res.Seconds
	res.CPUPer100k = res.CPUSeconds / float64(res.Rows) * 100000
	for _, s := range rep.Streams {
		size := pageSizes[o.source+"/"+s.Stream]
		if size == 0 {
			res.MinRequests++ // one unpaged list
			continue
		}
		res.MinRequests += int64(math.Ceil(float64(s.Rows) / float64(size)))
	}
	if o.incremental {
		before := rep.Requests.Requests
		again, err := engine.Run(ctx, src, dst, opts)
		if err != nil {
			return benchResult{}, err
		}
		res.IncrementalRequests = again.Requests.Requests - before
	}
	return res, nil
}

func (a *app) benchCommand() *cobra.Command {
	var o benchOptions
	var asJSON, suite bool
	cmd := &cobra.Command{
		Use:    "bench",
		Short:  "Measure a full sync of a simulated account served on loopback (in this process)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if suite {
				return a.benchSuite(cmd.Context(), o.dest)
			}
			res, err := runBench(cmd.Context(), o)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(a.stdout).Encode(res)
			}
			fmt.Fprintf(a.stdout, "%s → %s: %d rows in %.1fs = %.0f rows/s; CPU %.1fs (%.2fs per 100k rows); peak RSS %.0f MB; %d requests (minimum %d, %d answered 429)",
				res.Source, res.Dest, res.Rows, res.Seconds, res.RowsPerSec, res.CPUSeconds, res.CPUPer100k, res.PeakRSSMB, res.Requests, res.MinRequests, res.RateLimited)
			if o.incremental {
				fmt.Fprintf(a.stdout, "; incremental sync with no changes: %d requests", res.IncrementalRequests)
			}
			fmt.Fprintln(a.stdout)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.source, "source", "close", "close or copper")
	f.StringVar(&o.dest, "dest", "", "destination (default: a SQLite file in a temporary directory); with --suite, the PostgreSQL URL to include")
	f.StringVar(&o.schema, "schema", "", "destination schema")
	f.IntVar(&o.leads, "leads", 100000, "Close leads")
	f.IntVar(&o.activities, "activities", 300000, "activities (both sources)")
	f.IntVar(&o.people, "people", 100000, "Copper people")
	f.IntVar(&o.companies, "companies", 100000, "Copper companies")
	f.DurationVar(&o.latency, "latency", 0, "simulated latency per request")
	f.Float64Var(&o.serverRate, "rate-limit", 0, "simulated rate limit in requests per second (0: none)")
	f.Float64Var(&o.clientRate, "requests-per-second", 0, "crmsync's pacing (0: unpaced, following the 429s)")
	f.BoolVar(&o.incremental, "incremental", false, "then sync again with nothing changed and count its requests")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	f.BoolVar(&suite, "suite", false, "run the whole benchmark suite (each case in its own process) and print one table")
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile (go tool pprof) to this file")
	f.StringVar(&o.memProfile, "memprofile", "", "write a heap profile (allocations during the sync) to this file")
	f.StringVar(&o.trace, "trace", "", "write an execution trace (go tool trace) to this file")
	return cmd
}

// benchCase is one row of the suite.
type benchCase struct {
	name string
	args []string
	rate float64 // the simulated rate limit, for wall ÷ ideal; 0: none
}

// benchSuite runs every case in a child process (peak RSS is per process) and prints a table.
func (a *app) benchSuite(ctx context.Context, pgURL string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	close1M := []string{"--source", "close", "--leads", "250000", "--activities", "750000"}
	copper1M := []string{"--source", "copper", "--people", "250000", "--companies", "250000", "--activities", "500000"}
	cases := []benchCase{
		{"close 1M → sqlite", close1M, 0},
		{"copper 1M → sqlite", copper1M, 0},
		{"close 100k → sqlite", []string{"--source", "close", "--leads", "25000", "--activities", "75000"}, 0},
		{"copper 100k → sqlite", []string{"--source", "copper", "--people", "25000", "--companies", "25000", "--activities", "50000"}, 0},
		{"close 40k, 200 ms, 20 req/s", []string{"--source", "close", "--leads", "10000", "--activities", "30000", "--latency", "200ms", "--rate-limit", "20", "--requests-per-second", "20", "--incremental"}, 20},
		{"copper 12k, 200 ms, 3 req/s", []string{"--source", "copper", "--people", "4000", "--companies", "4000", "--activities", "4000", "--latency", "200ms", "--rate-limit", "3", "--requests-per-second", "3", "--incremental"}, 3},
	}
	if pgURL != "" {
		cases = append(cases[:2:2], append([]benchCase{
			{"close 1M → postgres", append(append([]string{}, close1M...), "--dest", pgURL, "--schema", "bench_close"), 0},
			{"copper 1M → postgres", append(append([]string{}, copper1M...), "--dest", pgURL, "--schema", "bench_copper"), 0},
		}, cases[2:]...)...)
	}
	fmt.Fprintf(a.stdout, "| case | rows | rows/s | CPU s / 100k | peak RSS MB | requests (min) | 429s | wall ÷ ideal | incr. requests |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range cases {
		var out bytes.Buffer
		cmd := exec.CommandContext(ctx, self, append([]string{"bench", "--json"}, c.args...)...)
		cmd.Stdout, cmd.Stderr = &out, a.stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		var r benchResult
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		ideal, incr := "—", "—"
		if c.rate > 0 {
			ideal = fmt.Sprintf("%.2f", r.Seconds/(float64(r.MinRequests)/c.rate))
			incr = fmt.Sprint(r.IncrementalRequests)
		}
		fmt.Fprintf(a.stdout, "| %s | %d | %.0f | %.2f | %.0f | %d (%d) | %d | %s | %s |\n",
			c.name, r.Rows, r.RowsPerSec, r.CPUPer100k, r.PeakRSSMB, r.Requests, r.MinRequests, r.RateLimited, ideal, incr)
	}
	return nil
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// peakRSSMB is the process's high-water resident set size (Linux reports kilobytes).
func peakRSSMB() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Maxrss) / 1024
}
