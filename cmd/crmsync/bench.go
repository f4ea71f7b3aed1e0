package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/crmsync/crmsync/internal/bench"
	"github.com/crmsync/crmsync/internal/destination/dsn"
	"github.com/crmsync/crmsync/internal/sources"
)

// benchSizeFlags are the bench's long-standing size flags, each with the sized table it sets
// by source; a flag of another source is ignored, as it always was. --size sets any table.
var benchSizeFlags = []struct {
	name, usage string
	tables      map[string]string // source → table
}{
	{"leads", "Close leads", map[string]string{"close": "leads"}},
	{"activities", "activities (both sources; Copper's activities_search)", map[string]string{"close": "activities", "copper": "activities_search"}},
	{"people", "Copper people", map[string]string{"copper": "people"}},
	{"companies", "Copper companies", map[string]string{"copper": "companies"}},
}

// benchFlags are the bench command's flags.
type benchFlags struct {
	o                      bench.Options
	sizes                  map[string]int // --size
	legacy                 map[string]*int
	asJSON, suite, serving bool
	baseline               string   // --baseline
	cases                  []string // --case
	rounds                 int      // --rounds
}

func (f *benchFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.o.Source, "source", "close", "which simulated API: "+strings.Join(sources.Names(), " or "))
	f.legacy = map[string]*int{}
	for _, sf := range benchSizeFlags {
		def := 0 // the usual size, of the first source the flag sizes
		for _, s := range sources.Names() {
			if t, ok := sf.tables[s]; ok {
				def = bench.Usual(s)[t]
				break
			}
		}
		f.legacy[sf.name] = fl.Int(sf.name, def, sf.usage)
	}
	fl.StringToIntVar(&f.sizes, "size", nil, "records of any sized table of the source, table=n (repeatable; wins over the flags above)")
	fl.StringVar(&f.o.Dest, "dest", "", "destination (default: a SQLite file in a temporary directory); with --suite, the PostgreSQL URL to include. A scratch database: the bench's schemas are dropped and recreated")
	fl.StringVar(&f.o.Schema, "schema", "", "destination schema (dropped first when PostgreSQL)")
	fl.DurationVar(&f.o.Latency, "latency", 0, "simulated latency per request")
	fl.Float64Var(&f.o.ServerRate, "rate-limit", 0, "simulated rate limit in requests per second (0: none)")
	fl.Float64Var(&f.o.ClientRate, "requests-per-second", 0, "crmsync's ceiling on requests per second (0: unpaced, following the 429s and announced limits)")
	fl.BoolVar(&f.o.DefaultPacing, "default-pacing", false, "pace as crmsync does by default (Close: each endpoint group at the limit it announces; Copper: 180/min)")
	fl.BoolVar(&f.o.Incremental, "incremental", false, "then sync again with nothing changed and count its requests (and those spent on deletions)")
	fl.BoolVar(&f.o.Reconcile, "reconcile", false, "then sync again with every table's id sweep due (as with --reconcile-every 0) and measure its requests and wall time")
	fl.IntVar(&f.o.LoadRows, "load", 0, "instead of a sync, load this many generated rows through crmsync's destination and through the database's fastest path (SQLite: new files in a temporary directory)")
	fl.BoolVar(&f.asJSON, "json", false, "print the result as JSON")
	fl.BoolVar(&f.o.AllTables, "all-tables", false, "sync every table of the source at once (default: its big tables), the parallel windows at their maximum: the most a sync holds in memory")
	fl.BoolVar(&f.o.Discard, "discard", false, "store nothing: drop each batch where the destination would store it, so the run measures reading, decoding and converting alone")
	fl.BoolVar(&f.o.InProcess, "in-process", false, "serve the simulator in this process (default: a child process, so crmsync's CPU and memory are measured alone)")
	fl.BoolVar(&f.serving, "serve-simulator", false, "only serve the simulated account, printing its URL, until standard input closes")
	fl.MarkHidden("serve-simulator")
	fl.BoolVar(&f.suite, "suite", false, "run the whole benchmark suite (each case in its own process) and print one table")
	fl.StringVar(&f.baseline, "baseline", "", "with --suite: another crmsync executable (an earlier release) to compare with, each case run as baseline, this, this, baseline")
	fl.StringArrayVar(&f.cases, "case", nil, "with --suite: run only the cases whose names contain this text (repeatable)")
	fl.IntVar(&f.rounds, "rounds", 1, "with --suite: how many times to run each case (the row shows the median run and every run's CPU per row); with --baseline, each case's four runs")
	fl.StringVar(&f.o.CPUProfile, "cpuprofile", "", "write a CPU profile (go tool pprof) to this file")
	fl.StringVar(&f.o.MemProfile, "memprofile", "", "write a heap profile (allocations during the sync) to this file")
	fl.StringVar(&f.o.Trace, "trace", "", "write an execution trace (go tool trace) to this file")
}

// options are the parsed flags as bench options: sizes from the size flags given (those left
// out keep the usual account's sizes), --size over them.
func (f *benchFlags) options(fl *pflag.FlagSet) bench.Options {
	o := f.o
	o.Sizes = map[string]int{}
	for _, sf := range benchSizeFlags {
		if t, ok := sf.tables[o.Source]; ok && fl.Changed(sf.name) {
			o.Sizes[t] = *f.legacy[sf.name]
		}
	}
	maps.Copy(o.Sizes, f.sizes)
	return o
}

// benchArgs is the bench command line that runs o in a child process (bench.Command): its
// result as JSON, or with serve, its simulator.
func benchArgs(o bench.Options, serve bool) []string {
	args := []string{"bench", "--source", o.Source}
	for _, t := range slices.Sorted(maps.Keys(o.Sizes)) {
		args = append(args, "--size", t+"="+strconv.Itoa(o.Sizes[t]))
	}
	args = append(args, "--latency", o.Latency.String(), "--rate-limit", fmt.Sprint(o.ServerRate))
	if serve {
		return append(args, "--serve-simulator")
	}
	args = append(args, "--json", "--requests-per-second", fmt.Sprint(o.ClientRate), "--load", strconv.Itoa(o.LoadRows))
	// Switches only when on, so that an earlier release (a --baseline of the suite) runs every
	// case that needs none of the switches it predates.
	for _, sw := range []struct {
		name string
		on   bool
	}{{"default-pacing", o.DefaultPacing}, {"incremental", o.Incremental}, {"reconcile", o.Reconcile},
		{"in-process", o.InProcess}, {"all-tables", o.AllTables}, {"discard", o.Discard}} {
		if sw.on {
			args = append(args, "--"+sw.name)
		}
	}
	for _, kv := range [][2]string{{"dest", o.Dest}, {"schema", o.Schema}, {"cpuprofile", o.CPUProfile}, {"memprofile", o.MemProfile}, {"trace", o.Trace}} {
		if kv[1] != "" {
			args = append(args, "--"+kv[0], kv[1])
		}
	}
	return args
}

func (a *app) benchCommand() *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:    "bench",
		Short:  "Measure a full sync of a simulated account served on loopback, or a destination's load ceiling",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := f.options(cmd.Flags())
			if err := o.Validate(); err != nil {
				return usageError{err}
			}
			switch {
			case !f.suite && (f.baseline != "" || len(f.cases) > 0):
				return usageError{errors.New("--baseline and --case choose what --suite runs: add --suite")}
			case f.rounds < 1 || f.rounds > 1 && !f.suite:
				return usageError{errors.New("--rounds is how many times (1 or more) --suite runs each case")}
			case f.suite:
				so := bench.SuiteOptions{PostgresURL: o.Dest, Baseline: f.baseline, Cases: f.cases, Rounds: f.rounds}
				return bench.Suite(cmd.Context(), a.stdout, a.stderr, so, benchArgs)
			case f.serving:
				return bench.ServeSimulator(o, cmd.InOrStdin(), a.stdout)
			}
			res, err := bench.Run(cmd.Context(), o, benchArgs)
			if unknown := (*dsn.UnknownError)(nil); errors.As(err, &unknown) {
				return usageError{err}
			} else if err != nil {
				return err
			}
			return a.printBench(o, res, f.asJSON)
		},
	}
	f.register(cmd.Flags())
	return cmd
}

// printBench prints a run's result: JSON, or one line for people.
func (a *app) printBench(o bench.Options, res bench.Result, asJSON bool) error {
	switch {
	case asJSON:
		return json.NewEncoder(a.stdout).Encode(res)
	case o.LoadRows > 0:
		fmt.Fprintf(a.stdout, "%d rows → %s: crmsync %.0f rows/s, the database's fastest path %.0f rows/s (%.0f %%)\n",
			res.Rows, res.Dest, res.RowsPerSec, res.CeilingRowsPerSec, 100*res.RowsPerSec/res.CeilingRowsPerSec)
	default:
		fmt.Fprintf(a.stdout, "%s → %s: %d rows in %.1fs = %.0f rows/s; CPU %.1fs (%.2fs per 100k rows); peak RSS %.0f MB; %d requests (minimum %d, %d answered 429)",
			res.Source, res.Dest, res.Rows, res.Seconds, res.RowsPerSec, res.CPUSeconds, res.CPUPer100k, res.PeakRSSMB, res.Requests, res.MinRequests, res.RateLimited)
		if o.Incremental {
			fmt.Fprintf(a.stdout, "; incremental sync with no changes: %d requests (%d for deletions and late edits)", res.IncrementalRequests, res.IncrementalDeleteRequests)
		}
		if o.Reconcile {
			fmt.Fprintf(a.stdout, "; sync with every id sweep due: %d requests (%d for the sweeps) in %.1fs", res.ReconcileRequests, res.ReconcileDeleteRequests, res.ReconcileSeconds)
		}
		fmt.Fprintln(a.stdout)
	}
	return nil
}
