package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/fleetqueue"
)

// withPassword puts a password into a PostgreSQL URL. The test server trusts loopback, so it
// is ignored there; it is in the URLs only to show it never leaks.
func withPassword(t *testing.T, raw, pw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		t.Fatalf("the test server's connection string is not a URL (%v): set %s to one", err, "CRMSYNC_TEST_POSTGRES")
	}
	u.User = url.UserPassword(u.User.Username(), pw)
	return u.String()
}

// dumpQueue returns every row of every table of the queue database as JSON text: what the
// queue keeps (River's jobs, leader, queues, migrations, and the run history).
func (h *fleetHarness) dumpQueue() string {
	h.t.Helper()
	ctx := context.Background()
	rows, err := h.db.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`)
	if err != nil {
		h.t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			h.t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	var b strings.Builder
	for _, table := range tables {
		var dump *string
		if err := h.db.QueryRow(ctx, fmt.Sprintf(`SELECT string_agg(row_to_json(t)::text, E'\n') FROM %q t`, table)).Scan(&dump); err != nil {
			h.t.Fatalf("dump %s: %v", table, err)
		}
		if dump != nil {
			b.WriteString(table + ":\n" + *dump + "\n")
		}
	}
	if !strings.Contains(b.String(), "river_job:") || !strings.Contains(b.String(), "crmsync_fleet_runs:") {
		h.t.Fatalf("the queue dump lacks the jobs or the run history:\n%.2000s", b.String())
	}
	return b.String()
}

func (h *fleetHarness) fleetCommand(args ...string) string {
	h.t.Helper()
	out, err := h.fleetTry(args...)
	if err != nil {
		h.t.Fatalf("crmsync fleet %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// fleetTry runs `crmsync fleet args…` and returns its output and error.
func (h *fleetHarness) fleetTry(args ...string) (string, error) {
	cmd := exec.Command(binary, append([]string{"fleet"}, append(args, "--fleet", h.path)...)...)
	cmd.Env = h.env()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

var metricsAddr = regexp.MustCompile(`msg="serving /metrics and /healthz" addr=(\S+)`)

func (w *fleetWorker) get(t *testing.T, path string) string {
	t.Helper()
	m := metricsAddr.FindStringSubmatch(w.out.String())
	if m == nil {
		t.Fatalf("worker %s did not say where it serves metrics:\n%s", w.id, w.out.String())
	}
	resp, err := http.Get("http://" + m[1] + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", path, resp.Status, b)
	}
	return string(b)
}

// TestFleetWorkersSurviveKillAndStop runs three worker processes over 50 simulated accounts
// (each on its own port, with its own key) with a real PostgreSQL queue: one worker is killed
// with SIGKILL in the middle of syncs, another stopped with SIGTERM in the middle of syncs.
// Then every account's replica must equal its simulator, the killed worker's syncs must have
// been rescued and finished by another worker within the rescue bound, the stopped worker
// must have exited 0 in time with its syncs handed back, no account may ever have had two
// syncs at once (from each simulator's request log: every request names its run), and no
// secret may be in the queue, the logs, the metrics or the status output.
func TestFleetWorkersSurviveKillAndStop(t *testing.T) {
	// In the queue's and the destination's URLs; it must never show.
	const password = "fleet-db-pw-8c1e2f"
	const rescueAfter = 6 * time.Second
	h := newFleet(t, fleetSpec{accounts: 50, latency: 60 * time.Millisecond, pace: -1,
		timing: fmt.Sprintf("job_timeout: 5s\nrescue_after: %s\n", rescueAfter), password: password})

	conc := []string{"--concurrency", "4", "--stop-timeout", "20s"}
	workers := []*fleetWorker{h.startWorker("w-alpha", conc...), h.startWorker("w-beta", conc...), h.startWorker("w-gamma", conc...)}
	var leader string
	h.waitFor("a leader is elected", 30*time.Second, func() bool {
		return h.db.QueryRow(context.Background(), `SELECT leader_id FROM river_leader`).Scan(&leader) == nil
	})
	var others []*fleetWorker
	for _, w := range workers {
		if w.id != leader {
			others = append(others, w)
		}
	}
	// The leader runs the rescuer: the killed worker is another, so the rescue is River's
	// own (and not a new leader's first round).
	killed, stopped := others[0], others[1]

	var killedRuns []int64
	h.waitFor("the worker to be killed is in the middle of a sync", 60*time.Second, func() bool {
		killedRuns = h.midSync(killed.id, 3)
		return len(killedRuns) > 0
	})
	killedAt := time.Now()
	killed.stop(t, syscall.SIGKILL, 10*time.Second)

	var stoppedRuns []int64
	h.waitFor("the worker to be stopped is in the middle of a sync", 60*time.Second, func() bool {
		stoppedRuns = h.midSync(stopped.id, 3)
		return len(stoppedRuns) > 0
	})
	if took := stopped.stop(t, syscall.SIGTERM, 25*time.Second); took > 20*time.Second {
		t.Errorf("SIGTERM: the worker took %s to exit", took)
	}
	if stopped.err != nil {
		t.Errorf("SIGTERM: the worker exited with %v, want 0\n%s", stopped.err, stopped.out.String())
	}

	// Ask for every account again, three times in a row, while syncs run and the killed
	// worker's jobs wait for their rescue: an account with a job open must not get a second
	// (without unique jobs, the three would be run side by side by free workers).
	inserter, err := fleetqueue.NewInserter(h.db)
	if err != nil {
		t.Fatal(err)
	}
	duplicates := 0
	for _, a := range h.accounts {
		for range 3 {
			res, err := fleetqueue.Enqueue(context.Background(), inserter, a.name, true)
			if err != nil {
				t.Fatal(err)
			}
			if res.Duplicate {
				duplicates++
			}
		}
	}
	if duplicates == 0 {
		t.Errorf("no manual run met an open job of its account: the test did not test uniqueness")
	}

	// River's rescuer runs every 30 s on the leader: a job stuck past rescue_after waits for
	// its next round, then its retry (a second) and the scheduler.
	bound := rescueAfter + 30*time.Second + 15*time.Second
	h.waitFor("every account synced, nothing left in the queue", bound+30*time.Second, h.allSynced)

	// The killed worker's syncs never finished; each account was then synced by another
	// worker, after the rescue.
	for _, run := range killedRuns {
		var account string
		var finished *time.Time
		if err := h.db.QueryRow(context.Background(), `SELECT account, finished_at FROM crmsync_fleet_runs WHERE id = $1`, run).Scan(&account, &finished); err != nil {
			t.Fatal(err)
		}
		if finished != nil {
			t.Errorf("run %d of the killed worker says it finished", run)
		}
		var rescuedAt time.Time
		var by string
		if err := h.db.QueryRow(context.Background(), `SELECT started_at, worker FROM crmsync_fleet_runs WHERE account = $1 AND id > $2 AND result = 'ok' ORDER BY id LIMIT 1`,
			account, run).Scan(&rescuedAt, &by); err != nil {
			t.Fatalf("%s: no successful run after the killed one: %v", account, err)
		}
		if by == killed.id || rescuedAt.Sub(killedAt) > bound {
			t.Errorf("%s: rerun by %s %s after the kill (bound %s)", account, by, rescuedAt.Sub(killedAt), bound)
		}
		t.Logf("%s: killed mid-sync, rescued and synced by %s %s after the kill", account, by, rescuedAt.Sub(killedAt).Round(time.Second))
	}
	// The stopped worker's syncs ended as "stopped" and went back to the queue at once.
	for _, run := range stoppedRuns {
		var result *string
		if err := h.db.QueryRow(context.Background(), `SELECT result FROM crmsync_fleet_runs WHERE id = $1`, run).Scan(&result); err != nil {
			t.Fatal(err)
		}
		if result == nil || *result != "stopped" {
			t.Errorf("run %d of the SIGTERMed worker: result %v, want stopped", run, result)
		}
	}

	// River's unique jobs alone kept each account's syncs apart: the destination's lock, the
	// second line, never had to refuse one.
	if n := h.scalar(`SELECT count(*) FROM crmsync_fleet_runs WHERE result = 'locked'`); n > 0 {
		t.Errorf("%d syncs found their destination locked by another sync of the account", n)
	}
	// Every replica equals its account; no account had two syncs at once.
	for _, a := range h.accounts {
		a.AssertReplica(t, openFleetReplica(t, h, a))
		spans := a.log.runs()
		if a.log.untagged > 0 {
			t.Errorf("%s: %d requests without a run id", a.name, a.log.untagged)
		}
		for i := 1; i < len(spans); i++ {
			if spans[i].first.Before(spans[i-1].last) {
				t.Errorf("%s: runs %d and %d overlap: [%s, %s] and [%s, %s]", a.name, spans[i-1].run, spans[i].run,
					spans[i-1].first.Format(time.StampMilli), spans[i-1].last.Format(time.StampMilli), spans[i].first.Format(time.StampMilli), spans[i].last.Format(time.StampMilli))
			}
		}
	}

	// What could leak, and where to look.
	survivor := workers[0]
	for _, w := range workers {
		if w != killed && w != stopped {
			survivor = w
		}
	}
	status := h.fleetCommand("status")
	statusJSON := h.fleetCommand("status", "--json")
	var st []map[string]any
	if err := json.Unmarshal([]byte(statusJSON), &st); err != nil || len(st) != len(h.accounts) {
		t.Fatalf("fleet status --json: %d accounts, %v\n%s", len(st), err, statusJSON)
	}
	if !strings.Contains(status, "acct-00") || strings.Count(status, " ok ") < len(h.accounts) {
		t.Errorf("fleet status does not say every account synced:\n%s", status)
	}
	metrics := survivor.get(t, "/metrics")
	for _, want := range []string{`crmsync_syncs_total{account="acct-`, "crmsync_rows_written_total", "crmsync_api_requests_total", `crmsync_jobs{state="running"}`,
		"crmsync_sync_duration_seconds_bucket", "crmsync_last_success_timestamp_seconds"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if hz := survivor.get(t, "/healthz"); !strings.HasPrefix(hz, "ok") {
		t.Errorf("/healthz: %q", hz)
	}
	survivor.stop(t, syscall.SIGTERM, 25*time.Second)
	outputs := map[string]string{"queue database": h.dumpQueue(), "fleet status": status, "fleet status --json": statusJSON, "metrics": metrics}
	for _, w := range workers {
		outputs["log of "+w.id] = w.out.String()
		for _, line := range strings.Split(w.out.String(), "\n") {
			if strings.Contains(line, " job=") && !strings.Contains(line, " account=") {
				t.Errorf("%s: a log line about a job without the account: %s", w.id, line)
			}
		}
	}
	for where, text := range outputs {
		if strings.Contains(text, password) {
			t.Errorf("%s holds the database password", where)
		}
		for _, a := range h.accounts {
			if strings.Contains(text, a.key) || strings.Contains(text, a.email) {
				t.Errorf("%s holds a secret of %s", where, a.name)
			}
		}
	}
}
