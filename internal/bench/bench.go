// Package bench measures crmsync: a full sync (and, if asked, an incremental one with nothing
// changed) of a simulated account served on loopback, or a destination's load ceiling, with
// the CPU time and peak RSS they cost. The account is built from the source's descriptor, so
// every registered source can be measured. The bench command (cmd/crmsync) turns its flags
// into Options; measurements run in processes of their own and the simulator in another, so
// the figures are crmsync's alone.
package bench

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strings"
	"time"

	"github.com/crmsync/crmsync/internal/apiclient"
	"github.com/crmsync/crmsync/internal/config"
	"github.com/crmsync/crmsync/internal/connector"
	"github.com/crmsync/crmsync/internal/destination/dsn"
	"github.com/crmsync/crmsync/internal/engine"
	"github.com/crmsync/crmsync/internal/simulator/simfault"
	"github.com/crmsync/crmsync/internal/sources"
)

// Options describe one run.
type Options struct {
	Source string // a registered source's name
	// Dest names the destination as --dest does; empty: a SQLite file in a temporary
	// directory. A PostgreSQL schema the run writes to is dropped first.
	Dest, Schema string
	// Sizes are record counts of the source's sized tables; a table left out has its size
	// in the usual account (Usual).
	Sizes map[string]int
	// Latency is added to every simulated answer; ServerRate is the simulator's limit in
	// requests per second (per endpoint group where the API limits groups apart); 0: none.
	Latency    time.Duration
	ServerRate float64
	// ClientRate is crmsync's ceiling in requests per second; 0: unpaced beyond what the
	// simulator announces, or crmsync's default pacing with DefaultPacing.
	ClientRate    float64
	DefaultPacing bool
	Incremental   bool // then sync again with nothing changed and count its requests
	// Reconcile: then sync again with every table's deletion check due (id sweeps on every
	// sync) and measure that sync.
	Reconcile bool
	InProcess bool // serve the simulator in this process (profiles then include it)
	// AllTables syncs every table of the source, all at once, instead of its bench tables
	// (with the parallel windows at their maximum, as in every unpaced run): the most a sync
	// holds in memory.
	AllTables bool
	// Discard drops every batch where the destination would store it (discarding): the run
	// measures reading, decoding and converting alone. The destination beneath (o.Dest)
	// holds the tables and state the engine asks for, and no rows.
	Discard bool
	// LoadRows > 0 measures the destination's load ceiling with that many rows instead.
	LoadRows                      int
	CPUProfile, MemProfile, Trace string
}

// Result is what one run measured.
type Result struct {
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
	// IncrementalDeleteRequests is the part of IncrementalRequests spent finding deleted
	// records and late edits.
	IncrementalDeleteRequests int64 `json:"incremental_delete_requests,omitempty"`
	// ReconcileRequests and ReconcileSeconds are the requests and wall time of a sync with
	// every id sweep due and nothing changed; ReconcileDeleteRequests the sweeps' share.
	ReconcileRequests       int64   `json:"reconcile_requests,omitempty"`
	ReconcileDeleteRequests int64   `json:"reconcile_delete_requests,omitempty"`
	ReconcileSeconds        float64 `json:"reconcile_seconds,omitempty"`
	// CeilingRowsPerSec is the database's own fastest load of the same rows (load runs).
	CeilingRowsPerSec float64 `json:"ceiling_rows_per_second,omitempty"`
}

// finish derives the rates and takes the process's figures; cpu0 is the CPU time at the start.
func (r *Result) finish(cpu0 float64) {
	r.CPUSeconds, r.PeakRSSMB = cpuSeconds()-cpu0, peakRSSMB()
	r.RowsPerSec = float64(r.Rows) / r.Seconds
	r.CPUPer100k = r.CPUSeconds / float64(r.Rows) * 100000
}

// Command is this binary's command line (after the executable's name) that runs o in a
// process of its own: printing its Result as JSON, or with serve, serving o's simulated
// account (ServeSimulator). A process apiece keeps each measurement's CPU time and peak RSS
// its own, and the simulator's (which holds the whole account in memory) out of them.
type Command func(o Options, serve bool) []string

// Usual is the account a run of source measures unless told other sizes: the descriptor's
// bench sizes (a sized table left out has the simulator's default size).
func Usual(source string) map[string]int {
	d, err := sources.Lookup(source)
	if err != nil {
		return nil
	}
	return maps.Clone(d.Simulator.BenchSizes)
}

// account is the sizes a run of o gives the simulator: the usual account with o.Sizes over it.
func (o Options) account(d connector.Descriptor) (map[string]int, error) {
	sizes := Usual(d.Name)
	if sizes == nil {
		sizes = map[string]int{}
	}
	var sized []string
	for _, sz := range d.Simulator.Sizes {
		sized = append(sized, sz.Table)
	}
	for _, t := range slices.Sorted(maps.Keys(o.Sizes)) {
		if !slices.Contains(sized, t) {
			return nil, fmt.Errorf("size: %s has no sized table %q (sized: %s)", d.Name, t, strings.Join(sized, ", "))
		}
		if o.Sizes[t] < 0 {
			return nil, fmt.Errorf("size: %s %s: %d is negative", d.Name, t, o.Sizes[t])
		}
		sizes[t] = o.Sizes[t]
	}
	return sizes, nil
}

// Validate checks what the options ask for; its errors are the user's to fix.
func (o Options) Validate() error {
	d, err := sources.Lookup(o.Source)
	if err != nil {
		return err
	}
	if o.LoadRows < 0 {
		return errors.New("load: the number of rows is negative")
	}
	if o.Discard && (o.LoadRows > 0 || o.Incremental || o.Reconcile) {
		return errors.New("discard: a run that stores nothing measures one first sync; it cannot load rows or sync again")
	}
	_, err = o.account(d)
	return err
}

// Run measures o: the load ceiling when o.LoadRows > 0, else a sync, whose simulator runs
// in the process self describes unless o.InProcess. A dest crmsync does not know is a
// *dsn.UnknownError.
func Run(ctx context.Context, o Options, self Command) (Result, error) {
	if err := o.Validate(); err != nil {
		return Result{}, err
	}
	if o.LoadRows > 0 {
		return runLoad(ctx, o)
	}
	d, _ := sources.Lookup(o.Source) // Validate found it
	base, stop, err := serveSimulator(ctx, o, d, self)
	if err != nil {
		return Result{}, err
	}
	defer stop()
	if o.Dest == "" {
		dir, err := os.MkdirTemp("", "crmsync-bench")
		if err != nil {
			return Result{}, err
		}
		defer os.RemoveAll(dir)
		o.Dest = "sqlite:" + filepath.Join(dir, "bench.db")
	}
	if err := freshSchema(ctx, o.Dest, cmp.Or(o.Schema, o.Source)); err != nil {
		return Result{}, err
	}
	dst, destName, err := dsn.Open(ctx, o.Dest, o.Schema, o.Source)
	if err != nil {
		return Result{}, err
	}
	defer dst.Close()
	if o.Discard {
		dst, destName = discarding{dst}, "nowhere (rows discarded)"
	}
	rps := -1.0 // unpaced beyond what the simulator announces
	switch {
	case o.ClientRate > 0:
		rps = o.ClientRate
	case o.DefaultPacing:
		rps = 0
	}
	src, err := d.Open(connector.Settings{Credentials: d.Simulator.Credentials, BaseURL: base,
		Tuning: apiclient.Tuning{RequestsPerSecond: rps, UserAgent: "crmsync-bench"}})
	if err != nil {
		return Result{}, err
	}
	stopProfiles, err := startProfiles(o)
	if err != nil {
		return Result{}, err
	}
	defer stopProfiles()
	// Deletion checks on crmsync's default cadence, as a scheduled sync runs them.
	opts := engine.Options{StartDate: time.Now().AddDate(-3, 0, 0), Streams: d.Simulator.Bench, Windows: d.Windows(rps),
		ReconcileEvery: config.DefaultReconcileEvery}
	if o.AllTables {
		opts.Streams, opts.Concurrency = nil, len(d.Catalog().Streams)
	}
	cpu0 := cpuSeconds()
	rep, err := engine.Run(ctx, src, dst, opts)
	if err != nil {
		return Result{}, err
	}
	res := Result{Source: o.Source, Dest: destName, Rows: rep.Rows(), Seconds: rep.Duration.Seconds(),
		Requests: rep.Requests.Requests, RateLimited: rep.Requests.RateLimited}
	res.finish(cpu0)
	for _, s := range rep.Streams {
		size := d.Simulator.BenchPages[s.Stream]
		if size == 0 {
			res.MinRequests++ // one unpaged list
			continue
		}
		n := int64(math.Ceil(float64(s.Rows) / float64(size)))
		res.MinRequests += n
		res.GroupMinRequests = max(res.GroupMinRequests, n)
	}
	if o.Incremental {
		before := rep.Requests.Requests
		again, err := engine.Run(ctx, src, dst, opts)
		if err != nil {
			return Result{}, err
		}
		res.IncrementalRequests = again.Requests.Requests - before
		res.IncrementalDeleteRequests = deleteRequests(again)
	}
	if o.Reconcile {
		before := src.Stats().Requests
		sweep := opts
		sweep.ReconcileEvery = 0
		again, err := engine.Run(ctx, src, dst, sweep)
		if err != nil {
			return Result{}, err
		}
		res.ReconcileRequests = again.Requests.Requests - before
		res.ReconcileDeleteRequests = deleteRequests(again)
		res.ReconcileSeconds = again.Duration.Seconds()
	}
	return res, nil
}

// deleteRequests sums what a sync's streams spent on finding deletions and late edits.
func deleteRequests(rep engine.Report) int64 {
	var n int64
	for _, s := range rep.Streams {
		n += s.Deletes.Requests
	}
	return n
}

// startProfiles starts the profiles and trace o asks for; stop ends and writes them. On an
// error, what had started is stopped.
func startProfiles(o Options) (stop func(), err error) {
	var stops []func()
	stop = func() {
		for _, f := range slices.Backward(stops) {
			f()
		}
	}
	for _, p := range []struct {
		path  string
		start func(io.Writer) error
		end   func()
	}{{o.CPUProfile, pprof.StartCPUProfile, pprof.StopCPUProfile}, {o.Trace, trace.Start, trace.Stop}} {
		if p.path == "" {
			continue
		}
		f, err := os.Create(p.path)
		if err != nil {
			stop()
			return nil, err
		}
		stops = append(stops, func() { f.Close() })
		if err := p.start(f); err != nil {
			stop()
			return nil, err
		}
		stops = append(stops, p.end)
	}
	if o.MemProfile != "" {
		// Sample every 64 KiB allocated (the default is 512 KiB) for a finer heap profile.
		runtime.MemProfileRate = 64 << 10
		stops = append(stops, func() {
			if f, err := os.Create(o.MemProfile); err == nil {
				pprof.Lookup("heap").WriteTo(f, 0)
				f.Close()
			}
		})
	}
	return stop, nil
}

// newSimulator builds o's simulated account from the source's descriptor.
func newSimulator(o Options, d connector.Descriptor) (connector.Simulator, error) {
	sizes, err := o.account(d)
	if err != nil {
		return nil, err
	}
	return d.NewSimulator(connector.SimConfig{Seed: 1, Sizes: sizes, Latency: o.Latency, RateLimit: o.ServerRate})
}

// serveSimulator serves o's simulated account on loopback: in this process, or (the default)
// in a child process self describes, so that crmsync's CPU and memory are measured without
// the simulator's.
func serveSimulator(ctx context.Context, o Options, d connector.Descriptor, self Command) (base string, stop func(), err error) {
	if o.InProcess {
		sim, err := newSimulator(o, d)
		if err != nil {
			return "", nil, err
		}
		return simfault.Serve(sim, "127.0.0.1:0")
	}
	exe, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.CommandContext(ctx, exe, self(o, true)...)
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
	stop = func() { stdin.Close(); cmd.Wait() }
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("start the simulator: %w", err)
	}
	return strings.TrimSpace(line), stop, nil
}

// ServeSimulator is the child a run starts to serve its simulator: it prints the base URL,
// then serves o's simulated account until stdin closes.
func ServeSimulator(o Options, stdin io.Reader, stdout io.Writer) error {
	d, err := sources.Lookup(o.Source)
	if err != nil {
		return err
	}
	sim, err := newSimulator(o, d)
	if err != nil {
		return err
	}
	base, stop, err := simfault.Serve(sim, "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer stop()
	fmt.Fprintln(stdout, base)
	io.Copy(io.Discard, stdin)
	return nil
}
