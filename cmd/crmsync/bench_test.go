package main

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/crmsync/crmsync/internal/bench"
)

// parseBench parses a bench command line (without "bench") into options.
func parseBench(t *testing.T, args ...string) (bench.Options, benchFlags) {
	t.Helper()
	var f benchFlags
	fl := pflag.NewFlagSet("bench", pflag.ContinueOnError)
	f.register(fl)
	if err := fl.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return f.options(fl), f
}

// TestBenchSizeFlags checks the long-standing size flags set their source's tables only, and
// --size wins over them.
func TestBenchSizeFlags(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want map[string]int
	}{
		{[]string{"--source", "copper"}, map[string]int{}},
		{[]string{"--source", "copper", "--leads", "9", "--activities", "5", "--people", "4"}, map[string]int{"activities_search": 5, "people": 4}},
		{[]string{"--leads", "9", "--companies", "4", "--size", "leads=3,tasks=2", "--size", "users=1"}, map[string]int{"leads": 3, "tasks": 2, "users": 1}},
	} {
		if o, _ := parseBench(t, tt.args...); !reflect.DeepEqual(o.Sizes, tt.want) {
			t.Errorf("%v: sizes %v, want %v", tt.args, o.Sizes, tt.want)
		}
	}
}

// TestBenchArgsRoundTrip checks a child started with benchArgs(o) runs o: the suite's cases
// and a run's simulator depend on it.
func TestBenchArgsRoundTrip(t *testing.T) {
	for _, o := range []bench.Options{
		{Source: "close", Sizes: map[string]int{"leads": 10, "activities": 30}, Latency: 200 * time.Millisecond, ServerRate: 20, ClientRate: 20, Incremental: true},
		{Source: "copper", Sizes: map[string]int{"people": 1, "activities_search": 2}, Dest: "postgres://u@h/db", Schema: "s", DefaultPacing: true, ServerRate: 2.5},
		{Source: "close", Sizes: map[string]int{}, LoadRows: 1000, InProcess: true, CPUProfile: "c", MemProfile: "m", Trace: "t"},
		{Source: "close", Sizes: map[string]int{"leads": 5}, AllTables: true},
		{Source: "close", Sizes: map[string]int{"leads": 5}, Discard: true},
	} {
		got, f := parseBench(t, benchArgs(o, false)[1:]...)
		if !reflect.DeepEqual(got, o) || !f.asJSON {
			t.Errorf("benchArgs(%+v) parses as %+v (json %v)", o, got, f.asJSON)
		}
		got, f = parseBench(t, benchArgs(o, true)[1:]...)
		if !f.serving || got.Source != o.Source || !reflect.DeepEqual(got.Sizes, o.Sizes) || got.Latency != o.Latency || got.ServerRate != o.ServerRate {
			t.Errorf("the simulator of %+v is served as %+v", o, got)
		}
	}
}

// TestBenchArgsLeaveSwitchesOff: a switch that is off is not on the command line, so an
// earlier release that lacks it (a suite --baseline) still runs the cases that do not use it.
func TestBenchArgsLeaveSwitchesOff(t *testing.T) {
	args := benchArgs(bench.Options{Source: "close", Sizes: map[string]int{"leads": 5}}, false)
	for _, a := range args {
		if strings.HasSuffix(a, "=false") || slices.Contains([]string{"--discard", "--all-tables", "--in-process", "--reconcile", "--incremental", "--default-pacing"}, a) {
			t.Errorf("benchArgs names the switch %s, which is off: %q", a, args)
		}
	}
}

// TestBenchSuiteFlagsNeedSuite: --baseline, --case and --rounds only shape a suite, so
// without it they are a usage error (exit 2) rather than ignored.
func TestBenchSuiteFlagsNeedSuite(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "--baseline", "/bin/true"}, "add --suite"},
		{[]string{"bench", "--case", "close 1M"}, "add --suite"},
		{[]string{"bench", "--rounds", "2"}, "runs each case"},
		{[]string{"bench", "--suite", "--baseline", "/bin/true", "--rounds", "0"}, "1 or more"},
	} {
		code, _, stderr := runCLI(t, nil, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit %d, %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}
