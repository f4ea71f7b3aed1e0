package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/crmsync/crmsync/internal/config"
	"github.com/crmsync/crmsync/internal/engine"
	"github.com/crmsync/crmsync/internal/simulator/closesim"
	"github.com/crmsync/crmsync/internal/simulator/coppersim"
)

// benchSizes is the simulated account of one benchmark run.
type benchSizes struct {
	leads, activities, tasks int // Close; activities also Copper
	people, companies        int // Copper
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
	RateLimited int64   `json:"rate_limited"`
}

func (a *app) benchCommand() *cobra.Command {
	var src, dest, schema string
	var size benchSizes
	var latency time.Duration
	var rate float64
	var asJSON bool
	var cpuProfile, memProfile string
	cmd := &cobra.Command{
		Use:    "bench",
		Short:  "Measure a full sync of a simulated account served on loopback (in this process)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var handler http.Handler
			var streams []string
			switch src {
			case "close":
				sim, err := closesim.New(closesim.Config{Seed: 1, APIKey: demoKey, Leads: size.leads, Activities: size.activities,
					Tasks: size.tasks, Users: 20, CustomFields: 20, Latency: latency, RateLimit: rate})
				if err != nil {
					return err
				}
				handler, streams = sim, []string{"leads", "activities", "tasks", "users", "custom_fields"}
			case "copper":
				sim, err := coppersim.New(coppersim.Config{Seed: 1, APIKey: demoKey, UserEmail: demoEmail, People: size.people,
					Companies: size.companies, Activities: size.activities, Users: 10, Latency: latency, RateLimit: rate})
				if err != nil {
					return err
				}
				handler = sim
			default:
				return usageError{fmt.Errorf("source: %q is not a known source", src)}
			}
			base, stop, err := serve(handler, "127.0.0.1:0")
			if err != nil {
				return err
			}
			defer stop()
			if dest == "" {
				dir, err := os.MkdirTemp("", "crmsync-bench")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				dest = "sqlite:" + filepath.Join(dir, "bench.db")
			}
			dst, destName, err := openDestination(cmd.Context(), dest, schema, src)
			if err != nil {
				return err
			}
			defer dst.Close()
			source, err := newSource(configFor(src, base), nil)
			if err != nil {
				return err
			}
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				pprof.StartCPUProfile(f)
				defer pprof.StopCPUProfile()
			}
			if memProfile != "" {
				runtime.MemProfileRate = 64 << 10
				defer func() {
					if f, err := os.Create(memProfile); err == nil {
						pprof.Lookup("heap").WriteTo(f, 0)
						f.Close()
					}
				}()
			}
			cpu0 := cpuSeconds()
			rep, err := engine.Run(cmd.Context(), source, dst, engine.Options{
				StartDate: time.Now().AddDate(-3, 0, 0), Streams: streams, Concurrency: 4,
			})
			if err != nil {
				return err
			}
			res := benchResult{Source: src, Dest: destName, Rows: rep.Rows(), Seconds: rep.Duration.Seconds(),
				CPUSeconds: cpuSeconds() - cpu0, PeakRSSMB: peakRSSMB(), Requests: rep.Requests.Requests, RateLimited: rep.Requests.RateLimited}
			res.RowsPerSec = float64(res.Rows) / res.Seconds
			res.CPUPer100k = res.CPUSeconds / float64(res.Rows) * 100000
			if asJSON {
				return json.NewEncoder(a.stdout).Encode(res)
			}
			fmt.Fprintf(a.stdout, "%s → %s: %d rows in %.1fs = %.0f rows/s; CPU %.1fs (%.2fs per 100k rows); peak RSS %.0f MB; %d requests (%d answered 429)\n",
				res.Source, res.Dest, res.Rows, res.Seconds, res.RowsPerSec, res.CPUSeconds, res.CPUPer100k, res.PeakRSSMB, res.Requests, res.RateLimited)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&src, "source", "close", "close or copper")
	f.StringVar(&dest, "dest", "", "destination (default: a SQLite file in a temporary directory)")
	f.StringVar(&schema, "schema", "", "destination schema")
	f.IntVar(&size.leads, "leads", 100000, "Close leads")
	f.IntVar(&size.tasks, "tasks", 0, "Close tasks")
	f.IntVar(&size.activities, "activities", 300000, "activities (both sources)")
	f.IntVar(&size.people, "people", 100000, "Copper people")
	f.IntVar(&size.companies, "companies", 100000, "Copper companies")
	f.DurationVar(&latency, "latency", 0, "simulated latency per request")
	f.Float64Var(&rate, "rate-limit", 0, "simulated rate limit in requests per second (0: none); the client is unpaced and must follow the 429s")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile (go tool pprof) to this file")
	f.StringVar(&memProfile, "memprofile", "", "write a heap profile (allocations during the sync) to this file")
	return cmd
}

// configFor is the configuration of a sync against a local simulator.
func configFor(src, base string) config.Config {
	c := config.Config{Source: src, BaseURL: base, APIKey: demoKey, RequestsPerSecond: -1}
	if src == "copper" {
		c.UserEmail = demoEmail
	}
	return c
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
