package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/record"
	"github.com/crmsync/crmsync/internal/simulator/closesim"
	"github.com/crmsync/crmsync/internal/simulator/coppersim"
	"github.com/crmsync/crmsync/internal/state"
	"github.com/crmsync/crmsync/internal/synctest"
)

// account is a simulated account the real binary syncs from.
type account struct {
	source  string
	env     []string
	baseURL string
	sim     synctest.Simulator
	tables  []synctest.Table
}

func closeAccount(t *testing.T, latency time.Duration) account {
	sim, url := newCloseSim(t, closesim.Config{Seed: 21, Leads: 2500, Activities: 5000, Tasks: 1500, Users: 20, CustomFields: 12, Events: 1500, Latency: latency})
	return account{
		source: "close", env: []string{"CLOSE_API_KEY=api_cli.testkey0123456789"}, baseURL: url, sim: sim,
		tables: []synctest.Table{
			{Name: "leads", Key: "id", Version: "date_updated"}, {Name: "tasks", Key: "id", Version: "date_updated"},
			{Name: "users", Key: "id", Version: "date_updated"}, {Name: "custom_fields", Key: "id", Version: "date_updated"},
			{Name: "event_log", Key: "id", Version: "date_updated"}, {Name: "activities", Key: "id", AppendOnly: true},
		},
	}
}

func copperAccount(t *testing.T, latency time.Duration) account {
	sim, err := coppersim.New(coppersim.Config{Seed: 22, APIKey: "cu_key_123456", UserEmail: "me@example.com", People: 3000, Companies: 1500,
		Leads: 600, Opportunities: 600, Projects: 100, Tasks: 600, Activities: 4000, Users: 10, Latency: latency})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	acc := account{source: "copper", env: []string{"COPPER_API_KEY=cu_key_123456", "COPPER_USER_EMAIL=me@example.com"}, baseURL: srv.URL, sim: sim}
	for _, n := range []string{"activities_search", "companies", "leads", "opportunities", "people", "projects", "tasks"} {
		acc.tables = append(acc.tables, synctest.Table{Name: n, Key: "id", Version: "date_modified"})
	}
	for _, n := range []string{"account", "contact_types", "custom_field_definitions", "customer_sources", "lead_statuses", "loss_reasons", "pipeline_stages", "pipelines", "users"} {
		acc.tables = append(acc.tables, synctest.Table{Name: n, Key: "id"})
	}
	acc.tables = append(acc.tables, synctest.Table{Name: "tags", Key: "name"})
	return acc
}

func (a account) command(ctx context.Context, dest string, extra ...string) *exec.Cmd {
	args := append([]string{"sync", "--source", a.source, "--base-url", a.baseURL, "--start-date", "2020-01-01", "--dest", dest,
		"--requests-per-second", "-1", "--batch-size", "300"}, extra...)
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=/tmp"}, a.env...)
	return cmd
}

// replica opens the destination a sync wrote to for reading.
func (a account) replica(t *testing.T, dest string) synctest.Replica {
	return synctest.OpenReplica(t, dest, a.source)
}

func (a account) assertReplica(t *testing.T, dest string) {
	t.Helper()
	r := a.replica(t, dest)
	for _, tb := range a.tables {
		synctest.AssertReplica(t, r, a.sim, tb)
	}
}

func TestBinarySyncThenIncremental(t *testing.T) {
	for _, mk := range []func(*testing.T, time.Duration) account{closeAccount, copperAccount} {
		acc := mk(t, 0)
		t.Run(acc.source, func(t *testing.T) {
			db := "sqlite:" + filepath.Join(t.TempDir(), "crm.db")
			for run := 1; run <= 2; run++ {
				var stdout, stderr bytes.Buffer
				cmd := acc.command(context.Background(), db, "--report-json", filepath.Join(t.TempDir(), "report.json"))
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				if err := cmd.Run(); err != nil {
					t.Fatalf("run %d: %v\n%s\n%s", run, err, stdout.String(), stderr.String())
				}
				if !strings.Contains(stdout.String(), "requests:") || !strings.Contains(stdout.String(), acc.tables[0].Name) {
					t.Fatalf("run %d: the report is missing:\n%s", run, stdout.String())
				}
				for _, e := range acc.env {
					secret := e[strings.Index(e, "=")+1:]
					if acc.source == "close" && strings.Contains(stdout.String()+stderr.String(), secret) {
						t.Fatalf("run %d printed a secret", run)
					}
				}
				acc.assertReplica(t, db)
			}
		})
	}
}

// bookmarksHonest checks that every simulator row before a table's bookmark is in the replica.
func bookmarksHonest(t *testing.T, r synctest.Replica, acc account) {
	t.Helper()
	rows, err := r.DB.Query(fmt.Sprintf(`SELECT stream, CAST(state AS TEXT) FROM %s WHERE source = '%s'`, r.Ref("_crmsync_state"), acc.source))
	if err != nil {
		return // not created yet: killed before the first commit
	}
	bookmarks := map[string]time.Time{}
	for rows.Next() {
		var stream, raw string
		rows.Scan(&stream, &raw)
		st, err := state.Unmarshal([]byte(raw))
		if err != nil {
			t.Fatalf("state of %s unreadable after a kill: %v", stream, err)
		}
		bookmarks[stream] = st.Bookmark
	}
	rows.Close()
	for _, tb := range acc.tables {
		bm, ok := bookmarks[tb.Name]
		cursor := tb.Version
		if tb.AppendOnly {
			cursor = "date_created"
		}
		if !ok || bm.IsZero() || cursor == "" {
			continue
		}
		stored := map[string]bool{}
		keys, err := r.DB.Query(fmt.Sprintf(`SELECT CAST(%q AS TEXT) FROM %s`, tb.Key, r.Ref(tb.Name)))
		if err != nil {
			t.Fatal(err)
		}
		for keys.Next() {
			var k string
			keys.Scan(&k)
			stored[k] = true
		}
		keys.Close()
		for _, rec := range acc.sim.Snapshot(tb.Name) {
			// A minute of slack: Close's lead search filters at minute precision.
			c, err := record.ParseTime(rec[cursor])
			if err == nil && c.Before(bm.Add(-time.Minute)) && !stored[synctest.Key(rec["id"])] {
				t.Fatalf("%s: bookmark %s is ahead of the data: row %v (cursor %s) is missing", tb.Name, bm, rec["id"], c)
			}
		}
	}
}

// TestKill9AndResume kills the real binary with SIGKILL at seeded random moments, reruns it,
// and checks after every kill that no bookmark is ahead of the rows written, and at the end
// that the tables equal the source with no duplicate keys — for both sources into SQLite and
// PostgreSQL.
func TestKill9AndResume(t *testing.T) {
	const killsPerCase = 7
	rng := rand.New(rand.NewPCG(2026, 11))
	kills := 0
	for _, mk := range []func(*testing.T, time.Duration) account{closeAccount, copperAccount} {
		for destName, newDest := range synctest.Destinations() {
			acc := mk(t, 2*time.Millisecond)
			t.Run(acc.source+"/"+destName, func(t *testing.T) {
				// How long an uninterrupted sync takes here, to kill inside it.
				probe := newDest(t)
				t0 := time.Now()
				if out, err := acc.command(context.Background(), probe).CombinedOutput(); err != nil {
					t.Fatalf("clean sync: %v\n%s", err, out)
				}
				full := time.Since(t0)

				dest := newDest(t)
				r := acc.replica(t, dest)
				for k := 0; k < killsPerCase; k++ {
					cmd := acc.command(context.Background(), dest)
					if err := cmd.Start(); err != nil {
						t.Fatal(err)
					}
					// Each run resumes, so later runs are shorter: aim inside the remaining work.
					delay := time.Duration(float64(full) * (0.05 + 0.6*rng.Float64()) / float64(k/3+1))
					time.Sleep(delay)
					cmd.Process.Signal(syscall.SIGKILL)
					cmd.Wait()
					kills++
					bookmarksHonest(t, r, acc)
				}
				if out, err := acc.command(context.Background(), dest).CombinedOutput(); err != nil {
					t.Fatalf("final run: %v\n%s", err, out)
				}
				acc.assertReplica(t, dest)
			})
		}
	}
	t.Logf("kills survived: %d", kills)
	if kills < 25 {
		t.Fatalf("only %d kills", kills)
	}
}

func TestSigintStopsCleanly(t *testing.T) {
	acc := closeAccount(t, 3*time.Millisecond)
	db := "sqlite:" + filepath.Join(t.TempDir(), "crm.db")
	cmd := acc.command(context.Background(), db)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitStopped {
		t.Fatalf("after SIGINT: %v, want exit code %d\n%s", err, exitStopped, stderr.String())
	}
	if !strings.Contains(stderr.String(), "run the same command again to resume") {
		t.Fatalf("stderr does not say how to resume:\n%s", stderr.String())
	}
	bookmarksHonest(t, acc.replica(t, db), acc)
	if out, err := acc.command(context.Background(), db).CombinedOutput(); err != nil {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	acc.assertReplica(t, db)
}

// TestSecretsNeverLeak greps everything succeeding and failing syncs produce — stdout, stderr
// with debug logs, the JSON report, the database files or a dump of the database — for the
// API key, the Copper user email and the database password.
func TestSecretsNeverLeak(t *testing.T) {
	const pgPassword = "pw-Sup3rSecretValue"
	for _, mk := range []func(*testing.T, time.Duration) account{closeAccount, copperAccount} {
		acc := mk(t, 0)
		for destName, newDest := range synctest.Destinations() {
			t.Run(acc.source+"/"+destName, func(t *testing.T) {
				dest := newDest(t)
				if destName == "postgres" {
					// Trust authentication ignores the password, so it can be set to test redaction.
					dest = strings.Replace(dest, "postgres://postgres@", "postgres://postgres:"+pgPassword+"@", 1)
				}
				report := filepath.Join(t.TempDir(), "report.json")
				var outputs, stored bytes.Buffer
				runs := []struct {
					name string
					env  []string
					args []string
				}{
					{"success", acc.env, []string{"--log-level", "debug", "--report-json", report}},
					{"wrong key", []string{"CLOSE_API_KEY=api_wrongKEY.leakcheck", "COPPER_API_KEY=api_wrongKEY.leakcheck", "COPPER_USER_EMAIL=me@example.com"}, []string{"--log-level", "debug"}},
				}
				for _, run := range runs {
					cmd := acc.command(context.Background(), dest, run.args...)
					cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=/tmp"}, run.env...)
					out, _ := cmd.CombinedOutput()
					outputs.Write(out)
				}
				if destName == "postgres" {
					// An unreachable server: the connection error must not carry the password.
					bad := "postgres://postgres:" + pgPassword + "@127.0.0.1:1/nowhere?sslmode=disable&connect_timeout=2"
					out, _ := acc.command(context.Background(), bad).CombinedOutput()
					outputs.Write(out)
					if dump, err := exec.Command("pg_dump", "--data-only", strings.Replace(dest, ":"+pgPassword, "", 1)).Output(); err == nil {
						stored.Write(dump)
					} else {
						t.Logf("pg_dump unavailable (%v): the database itself is not grepped", err)
					}
				} else {
					files, _ := filepath.Glob(strings.TrimPrefix(dest, "sqlite:") + "*")
					for _, f := range files {
						data, _ := os.ReadFile(f)
						stored.Write(data)
					}
				}
				if data, err := os.ReadFile(report); err == nil {
					outputs.Write(data)
				}
				for _, s := range []string{"api_cli.testkey0123456789", "cu_key_123456", "api_wrongKEY.leakcheck", pgPassword} {
					if bytes.Contains(outputs.Bytes(), []byte(s)) || bytes.Contains(stored.Bytes(), []byte(s)) {
						t.Errorf("%q leaked into what the syncs produced", s)
					}
				}
				// The Copper owner's email is sent as a header; it may be stored only as the
				// user data the API returns (the users table), never printed or logged.
				if bytes.Contains(outputs.Bytes(), []byte("me@example.com")) {
					t.Error("the Copper user email leaked into the output or logs")
				}
				if outputs.Len() == 0 || stored.Len() == 0 {
					t.Fatal("nothing was produced: the test proves nothing")
				}
			})
		}
	}
}

// TestFullDisk syncs into a SQLite file on a tiny filesystem: the sync must fail with a clear
// line per table, and what it committed must be consistent: the file passes SQLite's integrity
// check and no bookmark is ahead of the rows written.
func TestFullDisk(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small filesystem here (%v: %s); the full-disk case needs root", err, bytes.TrimSpace(out))
	}
	// Cleanups run last-in first-out: the replica closes, then this unmounts, then the
	// temporary directory goes.
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	acc := closeAccount(t, 0)
	dest := "sqlite:" + filepath.Join(dir, "crm.db")
	var stderr bytes.Buffer
	cmd := acc.command(context.Background(), dest)
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("a sync into a full disk succeeded: %v", err)
	}
	if !strings.Contains(stderr.String(), "full") {
		t.Fatalf("stderr does not say the disk is full:\n%s", stderr.String())
	}
	r := acc.replica(t, dest)
	var check string
	if err := r.DB.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity check after a full disk: %q, %v", check, err)
	}
	bookmarksHonest(t, r, acc)
}

// TestBenchMeasures runs the real binary's bench modes on small sizes: a sync from a simulator
// in a child process (which must be gone afterwards) and a load-ceiling run, checking the
// figures are measured and plausible.
func TestBenchMeasures(t *testing.T) {
	run := func(args ...string) benchResult {
		t.Helper()
		out, err := exec.CommandContext(t.Context(), binary, append([]string{"bench", "--json"}, args...)...).Output()
		if err != nil {
			t.Fatalf("bench %v: %v", args, err)
		}
		var r benchResult
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("bench %v printed %q: %v", args, out, err)
		}
		return r
	}
	for _, args := range [][]string{
		{"--source", "close", "--leads", "700", "--activities", "900", "--incremental"},
		{"--source", "copper", "--people", "500", "--companies", "300", "--activities", "400", "--incremental"},
	} {
		r := run(args...)
		if r.Rows < 1600-400 || r.RowsPerSec <= 0 || r.CPUSeconds <= 0 || r.PeakRSSMB <= 0 {
			t.Errorf("bench %v: implausible %+v", args, r)
		}
		if r.Requests < r.MinRequests || r.MinRequests == 0 || r.IncrementalRequests == 0 || r.IncrementalRequests > 20 {
			t.Errorf("bench %v: requests %d (minimum %d), incremental %d", args, r.Requests, r.MinRequests, r.IncrementalRequests)
		}
	}
	if r := run("--load", "3000"); r.Rows != 3000 || r.RowsPerSec <= 0 || r.CeilingRowsPerSec <= 0 {
		t.Errorf("bench --load: %+v", r)
	}
	if out, _ := exec.Command("pgrep", "-f", binary+" bench --serve-simulator").Output(); len(out) > 0 {
		t.Errorf("a simulator child outlived its bench: pids %s", out)
	}
}
