package bench

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// suiteCase is one row of the suite.
type suiteCase struct {
	name string
	o    Options
	// perGroup: the simulator's limit applies to each endpoint group apart (Close), so the
	// ideal is the busiest group's requests at that rate.
	perGroup bool
}

// suiteCases are the suite's runs; pgURL, when set, adds the PostgreSQL ones.
func suiteCases(pgURL string) []suiteCase {
	closeAcct := func(leads, activities int) Options {
		return Options{Source: "close", Sizes: map[string]int{"leads": leads, "activities": activities}}
	}
	copperAcct := func(people, companies, activities int) Options {
		return Options{Source: "copper", Sizes: map[string]int{"people": people, "companies": companies, "activities_search": activities}}
	}
	// limited is o at a simulated latency and rate limit, paced by crmsync's default pacing or
	// else by a ceiling at that rate (and then synced again, to count the incremental requests).
	limited := func(o Options, latency time.Duration, rate float64, defaultPacing bool) Options {
		o.Latency, o.ServerRate, o.DefaultPacing = latency, rate, defaultPacing
		if !defaultPacing {
			o.ClientRate, o.Incremental = rate, true
		}
		return o
	}
	allTables := func(o Options) Options {
		o.AllTables = true
		return o
	}
	into := func(o Options, schema string) Options {
		o.Dest, o.Schema = pgURL, schema
		return o
	}
	close1M, copper1M, load := closeAcct(250_000, 750_000), copperAcct(250_000, 250_000, 500_000), Options{Source: "close", LoadRows: LoadRows}
	discarded := close1M
	discarded.Discard = true
	cases := []suiteCase{
		{name: "close 1M → sqlite", o: close1M},
		// The same sync storing nothing: what the source side costs, and so what SQLite does.
		{name: "close 1M → nowhere (rows discarded)", o: discarded},
		{name: "copper 1M → sqlite", o: copper1M},
	}
	if pgURL != "" {
		cases = append(cases,
			suiteCase{name: "close 1M → postgres", o: into(close1M, "crmsync_bench_close")},
			suiteCase{name: "copper 1M → postgres", o: into(copper1M, "crmsync_bench_copper")})
	}
	cases = append(cases,
		suiteCase{name: "close 100k → sqlite", o: closeAcct(25_000, 75_000)},
		suiteCase{name: "close 1M, every table at once → sqlite", o: allTables(close1M)},
		suiteCase{name: "copper 100k → sqlite", o: copperAcct(25_000, 25_000, 50_000)},
		suiteCase{name: "close 40k, 200 ms, 20 req/s", o: limited(closeAcct(10_000, 30_000), 200*time.Millisecond, 20, false)},
		suiteCase{name: "copper 12k, 200 ms, 3 req/s", o: limited(copperAcct(4_000, 4_000, 4_000), 200*time.Millisecond, 3, false)},
		suiteCase{name: "close 100k, 200 req/s per group, default pacing", o: limited(closeAcct(25_000, 75_000), 0, 200, true), perGroup: true},
		suiteCase{name: "close 8k, 10 req/s per group, default pacing", o: limited(closeAcct(2_000, 6_000), 0, 10, true), perGroup: true},
		suiteCase{name: "load 1M lead rows → sqlite", o: load})
	if pgURL != "" {
		cases = append(cases, suiteCase{name: "load 1M lead rows → postgres", o: into(load, "crmsync_bench_load")})
	}
	return cases
}

// SuiteOptions choose what the suite runs.
type SuiteOptions struct {
	// PostgresURL, when set, adds the cases into that PostgreSQL database.
	PostgresURL string
	// Baseline, when set, is another crmsync executable (an earlier release) to compare with:
	// each case runs four times, baseline, this one, this one, baseline, so that a machine
	// whose speed drifts during the suite favours neither.
	Baseline string
	// Cases, when set, keeps the cases whose names contain one of these strings.
	Cases []string
	// Rounds is how many times a case runs (at least once): the suite's row is then the
	// median run's, with every run's CPU per row; a comparison runs its four runs that often.
	Rounds int
}

// Suite runs every case in a process of its own that self describes (peak RSS is per
// process) and prints one Markdown table to w as the cases finish; the processes' errors go
// to stderr.
func Suite(ctx context.Context, w, stderr io.Writer, so SuiteOptions, self Command) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cases := selectCases(suiteCases(so.PostgresURL), so.Cases)
	if len(cases) == 0 {
		return fmt.Errorf("no case of the suite matches %q", so.Cases)
	}
	if so.Baseline != "" {
		return compareSuite(ctx, w, stderr, cases, so.Baseline, exe, max(so.Rounds, 1), self)
	}
	rounds := max(so.Rounds, 1)
	cpuHeader := "CPU s / 100k"
	if rounds > 1 {
		cpuHeader = fmt.Sprintf("CPU s / 100k, median of %d (all runs)", rounds)
	}
	fmt.Fprintf(w, "| case | rows | rows/s | %s | peak RSS MB | requests (min) | 429s | wall ÷ ideal | incr. requests | load ceiling: rows/s (share) |\n|---|---|---|---|---|---|---|---|---|---|\n", cpuHeader)
	for _, c := range cases {
		var runs []Result
		for range rounds {
			r, err := runCase(ctx, exe, self(c.o, false), stderr)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			runs = append(runs, r)
		}
		fmt.Fprintln(w, c.row(runs))
	}
	return nil
}

// medianRun is the run whose CPU per row is the median of runs (the lower middle one of an
// even number): one run's figures, so that the row's rate, memory and requests belong together.
func medianRun(runs []Result) Result {
	sorted := slices.SortedFunc(slices.Values(runs), func(a, b Result) int { return cmp.Compare(a.CPUPer100k, b.CPUPer100k) })
	return sorted[(len(sorted)-1)/2]
}

// selectCases keeps the cases whose names contain one of the patterns (all, without any).
func selectCases(cases []suiteCase, patterns []string) []suiteCase {
	if len(patterns) == 0 {
		return cases
	}
	var kept []suiteCase
	for _, c := range cases {
		for _, p := range patterns {
			if strings.Contains(c.name, p) {
				kept = append(kept, c)
				break
			}
		}
	}
	return kept
}

// runCase runs one case in a child process of exe and reads its result.
func runCase(ctx context.Context, exe string, args []string, stderr io.Writer) (Result, error) {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Stdout, cmd.Stderr = &out, stderr
	if err := cmd.Run(); err != nil {
		return Result{}, err
	}
	var r Result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return Result{}, fmt.Errorf("read the result: %w", err)
	}
	return r, nil
}

// compareSuite runs each case as baseline, this release, this release, baseline (rounds
// times) and prints both releases' figures with the change of their means. A case the
// baseline cannot run (a flag it predates) shows "—" for it.
func compareSuite(ctx context.Context, w, stderr io.Writer, cases []suiteCase, baseline, exe string, rounds int, self Command) error {
	fmt.Fprintf(w, "| case | rows/s before → after | CPU s / 100k before → after | CPU change | peak RSS MB before → after |\n|---|---|---|---|---|\n")
	for _, c := range cases {
		args := self(c.o, false)
		var before, after []Result
		type run struct {
			exe  string
			into *[]Result
		}
		var runs []run
		for range rounds {
			runs = append(runs, run{baseline, &before}, run{exe, &after}, run{exe, &after}, run{baseline, &before})
		}
		for _, run := range runs {
			r, err := runCase(ctx, run.exe, args, stderr)
			switch {
			case err != nil && run.exe == exe:
				return fmt.Errorf("%s: %w", c.name, err)
			case err != nil:
				fmt.Fprintf(stderr, "%s: the baseline %s: %v\n", c.name, baseline, err)
			default:
				*run.into = append(*run.into, r)
			}
		}
		fmt.Fprintln(w, compareRow(c.name, before, after))
	}
	return nil
}

// compareRow is a case's line of the comparison: each run's figures, and the change of the
// mean CPU per row.
func compareRow(name string, before, after []Result) string {
	mean := func(rs []Result) float64 {
		var sum float64
		for _, r := range rs {
			sum += r.CPUPer100k
		}
		return sum / float64(len(rs))
	}
	change := "—"
	if len(before) > 0 && len(after) > 0 && mean(before) > 0 {
		change = fmt.Sprintf("%+.1f %%", 100*(mean(after)/mean(before)-1))
	}
	rate := func(r Result) float64 { return r.RowsPerSec }
	rss := func(r Result) float64 { return r.PeakRSSMB }
	return fmt.Sprintf("| %s | %s → %s | %s → %s | %s | %s → %s |", name,
		figures(before, rate, "%.0f"), figures(after, rate, "%.0f"),
		figures(before, cpuPerRow, "%.2f"), figures(after, cpuPerRow, "%.2f"), change,
		figures(before, rss, "%.0f"), figures(after, rss, "%.0f"))
}

func cpuPerRow(r Result) float64 { return r.CPUPer100k }

// figures is one figure of each run, in the order they ran, or "—" for none.
func figures(rs []Result, f func(Result) float64, format string) string {
	if len(rs) == 0 {
		return "—"
	}
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = fmt.Sprintf(format, f(r))
	}
	return strings.Join(s, ", ")
}

// row is the case's line of the suite's table: the median run's figures and, when the case
// ran more than once, every run's CPU per row in the order they ran.
func (c suiteCase) row(runs []Result) string {
	r := medianRun(runs)
	cpu := fmt.Sprintf("%.2f", r.CPUPer100k)
	if len(runs) > 1 {
		cpu += " (" + figures(runs, cpuPerRow, "%.2f") + ")"
	}
	requests, ideal, incr, ceiling := fmt.Sprintf("%d (%d)", r.Requests, r.MinRequests), "—", "—", "—"
	switch rate := c.o.ServerRate; {
	case c.perGroup:
		ideal = fmt.Sprintf("%.2f", r.Seconds/(float64(r.GroupMinRequests)/rate))
	case rate > 0:
		ideal = fmt.Sprintf("%.2f", r.Seconds/(float64(r.MinRequests)/rate))
		incr = fmt.Sprint(r.IncrementalRequests)
	}
	if r.CeilingRowsPerSec > 0 {
		requests = "—"
		ceiling = fmt.Sprintf("%.0f (%.0f %%)", r.CeilingRowsPerSec, 100*r.RowsPerSec/r.CeilingRowsPerSec)
	}
	return fmt.Sprintf("| %s | %d | %.0f | %s | %.0f | %s | %d | %s | %s | %s |",
		c.name, r.Rows, r.RowsPerSec, cpu, r.PeakRSSMB, requests, r.RateLimited, ideal, incr, ceiling)
}
