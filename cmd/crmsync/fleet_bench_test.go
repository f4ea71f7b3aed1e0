package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFleetBench measures the fleet: N simulated accounts (default 200) at 200 ms latency,
// each with its own rate limit (3 requests/s, per endpoint group on Close), synced once by 1,
// 2 and 4 worker processes with their default concurrency. It prints accounts synced per
// minute, worker CPU per account, the mean wall time of one account's sync, the 429s and the
// runs that did not succeed (and were retried).
// Opt-in (minutes of wall time): scripts/fleet-bench.sh, or CRMSYNC_FLEET_BENCH=1.
func TestFleetBench(t *testing.T) {
	if os.Getenv("CRMSYNC_FLEET_BENCH") != "1" {
		t.Skip("opt-in: scripts/fleet-bench.sh (or CRMSYNC_FLEET_BENCH=1)")
	}
	accounts := envInt("FLEET_BENCH_ACCOUNTS", 200)
	workerCounts := []int{1, 2, 4}
	if s := os.Getenv("FLEET_BENCH_WORKERS"); s != "" {
		workerCounts = nil
		for _, f := range strings.Fields(s) {
			n, _ := strconv.Atoi(f)
			workerCounts = append(workerCounts, n)
		}
	}
	var rows []string
	for _, k := range workerCounts {
		t.Run(fmt.Sprintf("workers=%d", k), func(t *testing.T) {
			h := newFleet(t, fleetSpec{accounts: accounts, latency: 200 * time.Millisecond, rateLimit: 3, destPoolConns: 1})
			start := time.Now()
			var ws []*fleetWorker
			for i := range k {
				ws = append(ws, h.startWorker(fmt.Sprintf("bench-%d", i)))
			}
			h.waitFor("every account synced", 30*time.Minute, h.allSynced)
			wall := time.Since(start)
			var cpu time.Duration
			for _, w := range ws {
				w.stop(t, syscall.SIGTERM, time.Minute)
				cpu += w.cmd.ProcessState.UserTime() + w.cmd.ProcessState.SystemTime()
			}
			var meanSync float64
			if err := h.db.QueryRow(context.Background(), `SELECT avg(extract(epoch FROM finished_at - started_at)) FROM crmsync_fleet_runs WHERE result = 'ok'`).Scan(&meanSync); err != nil {
				t.Fatal(err)
			}
			retried := h.scalar(`SELECT count(*) FROM crmsync_fleet_runs WHERE result <> 'ok'`)
			if retried > 0 {
				var why string
				if err := h.db.QueryRow(context.Background(), `SELECT string_agg(n || ' × ' || e, '; ') FROM (SELECT count(*) AS n,
					left(regexp_replace(coalesce(error, result), '^.*?(FATAL|ERROR|HTTP)', '\1'), 80) AS e FROM crmsync_fleet_runs
					WHERE result <> 'ok' GROUP BY 2 ORDER BY 1 DESC LIMIT 3) t`).Scan(&why); err != nil {
					t.Fatal(err)
				}
				fmt.Printf("workers=%d: runs retried: %s\n", k, why)
			}
			var limited, requests int64
			for _, a := range h.accounts {
				st := a.Sim.Stats()
				limited += st.RateLimited
				requests += st.Requests
			}
			row := fmt.Sprintf("| %d | %d | %.1f s | %.0f | %.1f ms | %.1f s | %d | %d | %d |", k, accounts, wall.Seconds(),
				float64(accounts)/wall.Minutes(), float64(cpu.Milliseconds())/float64(accounts), meanSync, requests, limited, retried)
			rows = append(rows, row)
			t.Log(row)
		})
	}
	fmt.Println("| workers | accounts | wall | accounts/min | worker CPU per account | mean sync wall | requests | 429s | runs retried |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Println(r)
	}
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}
