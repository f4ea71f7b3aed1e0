package bench

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/crmsync/crmsync/internal/sources"
)

// childFlag makes the test binary a bench child (see TestMain): the processes a run and the
// suite start are this binary, as they are crmsync in the command.
const childFlag = "-bench.child"

// TestMain serves as the child a Command starts: args childFlag, the options as JSON and
// "serve" or "run".
func TestMain(m *testing.M) {
	if len(os.Args) == 4 && os.Args[1] == childFlag {
		var o Options
		if err := json.Unmarshal([]byte(os.Args[2]), &o); err != nil {
			panic(err)
		}
		if os.Args[3] == "serve" {
			if err := ServeSimulator(o, os.Stdin, os.Stdout); err != nil {
				panic(err)
			}
			os.Exit(0)
		}
		r, err := Run(context.Background(), o, child)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		json.NewEncoder(os.Stdout).Encode(r)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// child is the Command that runs o in this test binary.
func child(o Options, serve bool) []string {
	b, err := json.Marshal(o)
	if err != nil {
		panic(err)
	}
	return []string{childFlag, string(b), map[bool]string{true: "serve", false: "run"}[serve]}
}

// TestUsualAccounts: sizes given win over the usual account and are checked. (That the usual
// accounts size only sized tables is checked with the descriptors: TestDescriptorsValid.)
func TestUsualAccounts(t *testing.T) {
	d, _ := sources.Lookup("copper")
	got, err := Options{Source: "copper", Sizes: map[string]int{"people": 7, "leads": 3}}.account(d)
	want := Usual("copper")
	want["people"], want["leads"] = 7, 3
	if err != nil || !maps.Equal(got, want) {
		t.Errorf("account = %v, %v; want %v", got, err, want)
	}
	for _, o := range []Options{
		{Source: "copper", Sizes: map[string]int{"activities": 1}}, // Copper's is activities_search
		{Source: "close", Sizes: map[string]int{"leads": -1}},
		{Source: "nowhere"},
		{Source: "close", LoadRows: -1},
		{Source: "close", Discard: true, Incremental: true},
		{Source: "close", Discard: true, LoadRows: 10},
	} {
		if err := o.Validate(); err == nil {
			t.Errorf("Validate(%+v) accepted it", o)
		}
	}
}

// TestSuite runs the suite's cases at a thousandth of their size, without latency and rate
// limits, each in a child process with its simulator in another, and checks every row is
// measured.
func TestSuite(t *testing.T) {
	small := func(o Options, serve bool) []string {
		sizes := map[string]int{}
		for table, n := range o.Sizes {
			sizes[table] = n / 1000
		}
		// Copper's client keeps its documented 3 requests/s under any ceiling: no limits here.
		o.Sizes, o.LoadRows, o.Latency, o.ServerRate, o.ClientRate = sizes, o.LoadRows/1000, 0, 0, 0
		return child(o, serve)
	}
	var out, stderr bytes.Buffer
	if err := Suite(t.Context(), &out, &stderr, SuiteOptions{}, small); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	t.Log(out.String())
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if want := 2 + len(suiteCases("")); len(lines) != want {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), want, out.String())
	}
	for i, c := range suiteCases("") {
		cells := strings.Split(lines[2+i], " | ")
		if !strings.HasPrefix(lines[2+i], "| "+c.name+" |") || cells[1] == "0" || cells[2] == "0" {
			t.Errorf("row %q: no rows or no rate", lines[2+i])
		}
	}
	if out, _ := exec.Command("pgrep", "-f", childFlag).Output(); len(out) > 0 {
		t.Errorf("a child outlived its run: pids %s", out)
	}
}

// smallChild runs a suite case on an account a thousandth of its size.
func smallChild(o Options, serve bool) []string {
	sizes := map[string]int{}
	for table, n := range o.Sizes {
		sizes[table] = n / 1000
	}
	o.Sizes = sizes
	return child(o, serve)
}

// TestCompareSuite compares the test binary with itself on the cases one pattern selects:
// two runs of each release a case (a round), four with two rounds, and a baseline that cannot
// run leaves its cells empty without failing the suite.
func TestCompareSuite(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		baseline string
		rounds   int
		want     *regexp.Regexp
	}{
		{self, 1, regexp.MustCompile(`^\| copper 100k → sqlite \| \d+, \d+ → \d+, \d+ \| [\d.]+, [\d.]+ → [\d.]+, [\d.]+ \| [+-][\d.]+ % \| \d+, \d+ → \d+, \d+ \|$`)},
		{"/bin/false", 1, regexp.MustCompile(`^\| copper 100k → sqlite \| — → \d+, \d+ \| — → [\d.]+, [\d.]+ \| — \| — → \d+, \d+ \|$`)},
		{self, 2, regexp.MustCompile(`^\| copper 100k → sqlite \| (\d+, ){3}\d+ → (\d+, ){3}\d+ \| `)},
	} {
		var out, stderr bytes.Buffer
		so := SuiteOptions{Baseline: tc.baseline, Cases: []string{"copper 100k"}, Rounds: tc.rounds}
		if err := Suite(t.Context(), &out, &stderr, so, smallChild); err != nil {
			t.Fatalf("%v\n%s", err, stderr.String())
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) != 3 || !tc.want.MatchString(lines[2]) {
			t.Errorf("baseline %s, %d rounds: table\n%s\nwant one row matching %s", tc.baseline, tc.rounds, out.String(), tc.want)
		}
	}
	if err := Suite(t.Context(), io.Discard, io.Discard, SuiteOptions{Cases: []string{"no such case"}}, smallChild); err == nil {
		t.Error("a pattern that selects no case was accepted")
	}
}

// TestSuiteRounds: with rounds, a case's row is its median run's, followed by every run's CPU
// per row.
func TestSuiteRounds(t *testing.T) {
	var out, stderr bytes.Buffer
	if err := Suite(t.Context(), &out, &stderr, SuiteOptions{Cases: []string{"copper 100k"}, Rounds: 3}, smallChild); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	row := regexp.MustCompile(`^\| copper 100k → sqlite \| \d+ \| \d+ \| ([\d.]+) \(([\d.]+), ([\d.]+), ([\d.]+)\) \| `)
	if len(lines) != 3 || !strings.Contains(lines[0], "median of 3") {
		t.Fatalf("table\n%s\nwant a header naming the median of 3 and one row", out.String())
	}
	m := row.FindStringSubmatch(lines[2])
	if m == nil {
		t.Fatalf("row %q does not show a median and three runs", lines[2])
	}
	runs := []string{m[2], m[3], m[4]}
	slices.SortFunc(runs, func(a, b string) int {
		x, _ := strconv.ParseFloat(a, 64)
		y, _ := strconv.ParseFloat(b, 64)
		return cmp.Compare(x, y)
	})
	if m[1] != runs[1] {
		t.Errorf("row %q: %s is not the median of its runs", lines[2], m[1])
	}
}

func TestMedianRun(t *testing.T) {
	for _, tc := range []struct {
		cpu  []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{3.77, 2.61, 2.88}, 2.88},
		{[]float64{2, 1}, 1},
		{[]float64{4, 1, 3, 2}, 2},
	} {
		runs := make([]Result, len(tc.cpu))
		for i, c := range tc.cpu {
			runs[i] = Result{CPUPer100k: c, Rows: int64(i)}
		}
		if got := medianRun(runs); got.CPUPer100k != tc.want {
			t.Errorf("medianRun(%v) = %v, want %v", tc.cpu, got.CPUPer100k, tc.want)
		}
	}
}

// TestDiscard: a run that discards reads and counts every row, and the destination beneath
// holds the tables and none of the rows.
func TestDiscard(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.db")
	o := Options{Source: "close", Sizes: map[string]int{"leads": 30, "activities": 90}, Dest: "sqlite:" + path, InProcess: true, Discard: true}
	res, err := Run(t.Context(), o, child)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows < 120 || res.Dest != "nowhere (rows discarded)" {
		t.Errorf("rows %d into %q; want at least 120 (the leads and activities) into nowhere", res.Rows, res.Dest)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, table := range []string{"leads", "activities"} {
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM "` + table + `"`).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s: %d rows (%v); want the table, empty", table, n, err)
		}
	}
}
