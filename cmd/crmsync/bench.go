package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/crmsync/crmsync/internal/config"
	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/destination/dsn"
	"github.com/crmsync/crmsync/internal/destination/postgres"
	"github.com/crmsync/crmsync/internal/destination/sqlite"
	"github.com/crmsync/crmsync/internal/engine"
	"github.com/crmsync/crmsync/internal/loadbench"
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
	clientRate           float64 // crmsync's ceiling; 0: unpaced (or defaultPacing)
	defaultPacing        bool    // pace as crmsync does by default (per announced group limit)
	incremental          bool
	inProcess            bool // serve the simulator in this process (profiles then include it)
	loadRows             int  // > 0: measure the destination's load ceiling instead of a sync
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
	// GroupMinRequests is the largest endpoint's share of MinRequests: what bounds a sync
	// when each endpoint group has its own limit (Close).
	GroupMinRequests int64 `json:"group_min_requests"`
	RateLimited      int64 `json:"rate_limited"`
	// IncrementalRequests is what a second sync with no changes made (when asked for).
	IncrementalRequests int64 `json:"incremental_requests,omitempty"`
	// CeilingRowsPerSec is the database's own fastest load of the same rows (load runs).
	CeilingRowsPerSec float64 `json:"ceiling_rows_per_second,omitempty"`
}

// pageSizes are the largest pages the endpoints allow, for the request minimum.
var pageSizes = map[string]int{
	"close/leads": 200, "close/activities": 100, "close/tasks": 1000, "close/users": 1000, "close/custom_fields": 1000,
	"copper/people": 200, "copper/companies": 200, "copper/activities_search": 200,
}

// benchStreams are the streams a bench syncs (nil: all).
var benchStreams = map[string][]string{"close": {"leads", "activities", "users", "custom_fields"}}

// benchSimulator builds the simulated account a bench run syncs.
func benchSimulator(o benchOptions) (http.Handler, error) {
	switch o.source {
	case "close":
		return closesim.New(closesim.Config{Seed: 1, APIKey: "api_demo.sandboxkey", Leads: o.leads, Activities: o.activities,
			Users: 20, CustomFields: 20, Latency: o.latency, RateLimit: o.serverRate})
	case "copper":
		return coppersim.New(coppersim.Config{Seed: 1, APIKey: "api_demo.sandboxkey", UserEmail: "demo@crmsync.example", People: o.people,
			Companies: o.companies, Activities: o.activities, Users: 10, Latency: o.latency, RateLimit: o.serverRate})
	}
	return nil, usageError{fmt.Errorf("source: %q is not a known source", o.source)}
}

// serveSimulator serves the bench's simulated account on loopback: in this process, or (the
// default) in a child process, so that crmsync's CPU and memory are measured without the
// simulator's (which holds the whole account in memory).
func serveSimulator(ctx context.Context, o benchOptions, args []string) (string, func(), error) {
	if o.inProcess {
		h, err := benchSimulator(o)
		if err != nil {
			return "", nil, err
		}
		return serve(h, "127.0.0.1:0")
	}
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.CommandContext(ctx, self, append([]string{"bench", "--serve-simulator"}, args...)...)
	stdin, err := cmd.StdinPipe() // the child serves until its stdin closes
	if err != nil {
		return "", nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start the simulator: %w", err)
	}
	stop := func() { stdin.Close(); cmd.Wait() }
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("start the simulator: %w", err)
	}
	return strings.TrimSpace(line), stop, nil
}

// runSimulatorServer is the child of serveSimulator: it prints the base URL, then serves until
// its standard input closes.
func runSimulatorServer(o benchOptions, stdin io.Reader, stdout io.Writer) error {
	h, err := benchSimulator(o)
	if err != nil {
		return err
	}
	base, stop, err := serve(h, "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer stop()
	fmt.Fprintln(stdout, base)
	io.Copy(io.Discard, stdin)
	return nil
}

func runBench(ctx context.Context, o benchOptions, args []string) (benchResult, error) {
	streams := benchStreams[o.source]
	base, stop, err := serveSimulator(ctx, o, args)
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
	if err := freshSchema(ctx, o.dest, cmp.Or(o.schema, o.source)); err != nil {
		return benchResult{}, err
	}
	dst, destName, err := openDestination(ctx, o.dest, o.schema, o.source)
	if err != nil {
		return benchResult{}, err
	}
	defer dst.Close()
	cfg := config.Config{Source: o.source, BaseURL: base, APIKey: "api_demo.sandboxkey", UserEmail: "demo@crmsync.example", RequestsPerSecond: -1}
	switch {
	case o.clientRate > 0:
		cfg.RequestsPerSecond = o.clientRate
	case o.defaultPacing:
		cfg.RequestsPerSecond = 0
	}
	src, err := newSource(cfg)
	if err != nil {
		return benchResult{}, err
	}
	d, err := cfg.Descriptor()
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
	opts := engine.Options{StartDate: time.Now().AddDate(-3, 0, 0), Streams: streams, Windows: d.Windows(cfg.RequestsPerSecond)}
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
		n := int64(math.Ceil(float64(s.Rows) / float64(size)))
		res.MinRequests += n
		res.GroupMinRequests = max(res.GroupMinRequests, n)
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
	var asJSON, suite, serveOnly bool
	cmd := &cobra.Command{
		Use:    "bench",
		Short:  "Measure a full sync of a simulated account served on loopback, or a destination's load ceiling",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if suite {
				return a.benchSuite(cmd.Context(), o.dest)
			}
			if serveOnly {
				return runSimulatorServer(o, cmd.InOrStdin(), a.stdout)
			}
			var res benchResult
			var err error
			if o.loadRows > 0 {
				res, err = runLoad(cmd.Context(), o)
			} else {
				res, err = runBench(cmd.Context(), o, simulatorArgs(cmd))
			}
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(a.stdout).Encode(res)
			}
			if o.loadRows > 0 {
				fmt.Fprintf(a.stdout, "%d rows → %s: crmsync %.0f rows/s, the database's fastest path %.0f rows/s (%.0f %%)\n",
					res.Rows, res.Dest, res.RowsPerSec, res.CeilingRowsPerSec, 100*res.RowsPerSec/res.CeilingRowsPerSec)
				return nil
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
	f.StringVar(&o.dest, "dest", "", "destination (default: a SQLite file in a temporary directory); with --suite, the PostgreSQL URL to include. A scratch database: the bench's schemas are dropped and recreated")
	f.StringVar(&o.schema, "schema", "", "destination schema (dropped first when PostgreSQL)")
	f.IntVar(&o.leads, "leads", 100000, "Close leads")
	f.IntVar(&o.activities, "activities", 300000, "activities (both sources)")
	f.IntVar(&o.people, "people", 100000, "Copper people")
	f.IntVar(&o.companies, "companies", 100000, "Copper companies")
	f.DurationVar(&o.latency, "latency", 0, "simulated latency per request")
	f.Float64Var(&o.serverRate, "rate-limit", 0, "simulated rate limit in requests per second (0: none)")
	f.Float64Var(&o.clientRate, "requests-per-second", 0, "crmsync's ceiling on requests per second (0: unpaced, following the 429s and announced limits)")
	f.BoolVar(&o.defaultPacing, "default-pacing", false, "pace as crmsync does by default (Close: each endpoint group at the limit it announces; Copper: 180/min)")
	f.BoolVar(&o.incremental, "incremental", false, "then sync again with nothing changed and count its requests")
	f.IntVar(&o.loadRows, "load", 0, "instead of a sync, load this many generated rows through crmsync's destination and through the database's fastest path (SQLite: new files in a temporary directory)")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	f.BoolVar(&o.inProcess, "in-process", false, "serve the simulator in this process (default: a child process, so crmsync's CPU and memory are measured alone)")
	f.BoolVar(&serveOnly, "serve-simulator", false, "only serve the simulated account, printing its URL, until standard input closes")
	f.MarkHidden("serve-simulator")
	f.BoolVar(&suite, "suite", false, "run the whole benchmark suite (each case in its own process) and print one table")
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile (go tool pprof) to this file")
	f.StringVar(&o.memProfile, "memprofile", "", "write a heap profile (allocations during the sync) to this file")
	f.StringVar(&o.trace, "trace", "", "write an execution trace (go tool trace) to this file")
	return cmd
}

// simulatorArgs are the flags of cmd that shape the simulated account, for its child process.
func simulatorArgs(cmd *cobra.Command) []string {
	var args []string
	for _, name := range []string{"source", "leads", "activities", "people", "companies", "latency", "rate-limit"} {
		args = append(args, "--"+name, cmd.Flags().Lookup(name).Value.String())
	}
	return args
}

// benchCase is one row of the suite.
type benchCase struct {
	name string
	args []string
	rate float64 // the simulated rate limit, for wall ÷ ideal; 0: none
	// perGroup: the limit applies to each endpoint group apart (Close), so the ideal is the
	// busiest group's requests at that rate.
	perGroup bool
}

// benchSuite runs every case in a child process (peak RSS is per process) and prints a table.
func (a *app) benchSuite(ctx context.Context, pgURL string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	close1M := []string{"--source", "close", "--leads", "250000", "--activities", "750000"}
	copper1M := []string{"--source", "copper", "--people", "250000", "--companies", "250000", "--activities", "500000"}
	load := []string{"--load", fmt.Sprint(benchLoadRows)}
	cases := []benchCase{
		{"close 1M → sqlite", close1M, 0, false},
		{"copper 1M → sqlite", copper1M, 0, false},
		{"close 100k → sqlite", []string{"--source", "close", "--leads", "25000", "--activities", "75000"}, 0, false},
		{"copper 100k → sqlite", []string{"--source", "copper", "--people", "25000", "--companies", "25000", "--activities", "50000"}, 0, false},
		{"close 40k, 200 ms, 20 req/s", []string{"--source", "close", "--leads", "10000", "--activities", "30000", "--latency", "200ms", "--rate-limit", "20", "--requests-per-second", "20", "--incremental"}, 20, false},
		{"copper 12k, 200 ms, 3 req/s", []string{"--source", "copper", "--people", "4000", "--companies", "4000", "--activities", "4000", "--latency", "200ms", "--rate-limit", "3", "--requests-per-second", "3", "--incremental"}, 3, false},
		{"close 100k, 200 req/s per group, default pacing", []string{"--source", "close", "--leads", "25000", "--activities", "75000", "--rate-limit", "200", "--default-pacing"}, 200, true},
		{"close 8k, 10 req/s per group, default pacing", []string{"--source", "close", "--leads", "2000", "--activities", "6000", "--rate-limit", "10", "--default-pacing"}, 10, true},
		{"load 1M lead rows → sqlite", load, 0, false},
	}
	if pgURL != "" {
		pg := func(args []string, schema string) []string {
			return append(append([]string{}, args...), "--dest", pgURL, "--schema", schema)
		}
		cases = append(cases[:2:2], append([]benchCase{
			{"close 1M → postgres", pg(close1M, "crmsync_bench_close"), 0, false},
			{"copper 1M → postgres", pg(copper1M, "crmsync_bench_copper"), 0, false},
		}, cases[2:]...)...)
		cases = append(cases, benchCase{"load 1M lead rows → postgres", pg(load, "crmsync_bench_load"), 0, false})
	}
	fmt.Fprintf(a.stdout, "| case | rows | rows/s | CPU s / 100k | peak RSS MB | requests (min) | 429s | wall ÷ ideal | incr. requests | load ceiling: rows/s (share) |\n|---|---|---|---|---|---|---|---|---|---|\n")
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
		requests, ideal, incr, ceiling := fmt.Sprintf("%d (%d)", r.Requests, r.MinRequests), "—", "—", "—"
		switch {
		case c.perGroup:
			ideal = fmt.Sprintf("%.2f", r.Seconds/(float64(r.GroupMinRequests)/c.rate))
		case c.rate > 0:
			ideal = fmt.Sprintf("%.2f", r.Seconds/(float64(r.MinRequests)/c.rate))
			incr = fmt.Sprint(r.IncrementalRequests)
		}
		if r.CeilingRowsPerSec > 0 {
			requests = "—"
			ceiling = fmt.Sprintf("%.0f (%.0f %%)", r.CeilingRowsPerSec, 100*r.RowsPerSec/r.CeilingRowsPerSec)
		}
		fmt.Fprintf(a.stdout, "| %s | %d | %.0f | %.2f | %.0f | %s | %d | %s | %s | %s |\n",
			c.name, r.Rows, r.RowsPerSec, r.CPUPer100k, r.PeakRSSMB, requests, r.RateLimited, ideal, incr, ceiling)
	}
	return nil
}

// benchLoadRows is how many generated rows a load run stores (the suite's size).
const benchLoadRows = 1_000_000

// runLoad stores o.loadRows generated lead-like rows twice, into fresh tables of the same
// shape: through crmsync's destination code in the engine's batches (each with its bookmark),
// and through the database's fastest path (PostgreSQL: one COPY; SQLite: one prepared INSERT
// in one transaction).
func runLoad(ctx context.Context, o benchOptions) (benchResult, error) {
	open := func(suffix string) (destination.Destination, string, func(), error) {
		if !dsn.IsPostgres(o.dest) { // SQLite: a new file each time
			dir, err := os.MkdirTemp("", "crmsync-bench")
			if err != nil {
				return nil, "", nil, err
			}
			d, _, err := dsn.Open(ctx, "sqlite:"+filepath.Join(dir, "load.db"), "", "")
			if err != nil {
				os.RemoveAll(dir)
				return nil, "", nil, err
			}
			return d, "sqlite", func() { d.Close(); os.RemoveAll(dir) }, nil
		}
		schema := cmp.Or(o.schema, "crmsync_bench_load") + suffix
		if err := freshSchema(ctx, o.dest, schema); err != nil {
			return nil, "", nil, err
		}
		d, name, err := openDestination(ctx, o.dest, schema, "close")
		if err != nil {
			return nil, "", nil, err
		}
		return d, name, func() { d.Close() }, nil
	}
	ceilingDst, _, closeCeiling, err := open("_raw")
	if err != nil {
		return benchResult{}, err
	}
	var ceiling time.Duration
	switch d := ceilingDst.(type) {
	case *sqlite.Destination:
		ceiling, err = loadbench.SQLiteCeiling(ctx, d, o.loadRows)
	case *postgres.Destination:
		ceiling, err = loadbench.PostgresCeiling(ctx, d, o.loadRows)
	}
	closeCeiling()
	if err != nil {
		return benchResult{}, fmt.Errorf("load ceiling: %w", err)
	}
	dst, name, closeDst, err := open("")
	if err != nil {
		return benchResult{}, err
	}
	defer closeDst()
	cpu0 := cpuSeconds()
	took, err := loadbench.Through(ctx, dst, o.loadRows, engine.DefaultBatchSize)
	if err != nil {
		return benchResult{}, fmt.Errorf("load through crmsync: %w", err)
	}
	res := benchResult{Dest: name, Rows: int64(o.loadRows), Seconds: took.Seconds(), CPUSeconds: cpuSeconds() - cpu0,
		PeakRSSMB: peakRSSMB(), CeilingRowsPerSec: float64(o.loadRows) / ceiling.Seconds()}
	res.RowsPerSec = float64(res.Rows) / res.Seconds
	res.CPUPer100k = res.CPUSeconds / float64(res.Rows) * 100000
	return res, nil
}

// freshSchema drops a PostgreSQL bench schema, so every bench run starts from empty tables
// (a second run into the same schema would otherwise be an incremental sync). SQLite benches
// always use a new file.
func freshSchema(ctx context.Context, dest, schema string) error {
	if !dsn.IsPostgres(dest) {
		return nil
	}
	d, err := postgres.Open(ctx, dest, schema) // its errors carry no password
	if err != nil {
		return err
	}
	defer d.Close()
	if _, err := d.Pool().Exec(ctx, "DROP SCHEMA "+pgx.Identifier{d.Schema()}.Sanitize()+" CASCADE"); err != nil {
		return fmt.Errorf("postgres: drop bench schema %s: %w", d.Schema(), err)
	}
	return nil
}
