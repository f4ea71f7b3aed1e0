package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/bench"
	"github.com/crmsync/crmsync/internal/connector"
	"github.com/crmsync/crmsync/internal/e2e"
	"github.com/crmsync/crmsync/internal/record"
	"github.com/crmsync/crmsync/internal/source/closecrm"
	"github.com/crmsync/crmsync/internal/source/copper"
	"github.com/crmsync/crmsync/internal/state"
)

// account is a simulated account the real binary syncs from.
type account struct {
	*e2e.Account
	env []string // the credentials, as the environment variables the descriptor names
}

func newAccount(t *testing.T, d connector.Descriptor, sim connector.SimConfig) account {
	sim.Credentials = map[string]string{"api_key": "cli-testkey-0123456789", "user_email": "me@example.com"}
	acc := account{Account: e2e.NewAccount(t, d, e2e.Options{SimConfig: sim})}
	for _, c := range d.Credentials {
		acc.env = append(acc.env, c.Env+"="+acc.Credentials[c.Key])
	}
	return acc
}

func closeAccount(t *testing.T, latency time.Duration) account {
	return newAccount(t, closecrm.Descriptor, connector.SimConfig{Seed: 21, Latency: latency, Sizes: map[string]int{
		"leads": 2500, "activities": 5000, "tasks": 1500, "users": 20, "custom_fields": 12, "event_log": 1500}})
}

func copperAccount(t *testing.T, latency time.Duration) account {
	return newAccount(t, copper.Descriptor, connector.SimConfig{Seed: 22, Latency: latency, Sizes: map[string]int{
		"people": 3000, "companies": 1500, "leads": 600, "opportunities": 600, "projects": 100, "tasks": 600, "activities_search": 4000, "users": 10}})
}

func (a account) command(ctx context.Context, dest string, extra ...string) *exec.Cmd {
	args := append([]string{"sync", "--source", a.Desc.Name, "--base-url", a.URL, "--start-date", "2020-01-01", "--dest", dest,
		"--requests-per-second", "-1", "--batch-size", "300"}, extra...)
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=/tmp"}, a.env...)
	return cmd
}

// replica opens the destination a sync wrote to for reading.
func (a account) replica(t *testing.T, dest string) e2e.Replica {
	return e2e.OpenReplica(t, dest, a.Desc.Name)
}

func (a account) assertReplica(t *testing.T, dest string) {
	t.Helper()
	a.AssertReplica(t, a.replica(t, dest))
}

func TestBinarySyncThenIncremental(t *testing.T) {
	for _, mk := range []func(*testing.T, time.Duration) account{closeAccount, copperAccount} {
		acc := mk(t, 0)
		t.Run(acc.Desc.Name, func(t *testing.T) {
			db := "sqlite:" + filepath.Join(t.TempDir(), "crm.db")
			for run := 1; run <= 2; run++ {
				var stdout, stderr bytes.Buffer
				cmd := acc.command(context.Background(), db, "--report-json", filepath.Join(t.TempDir(), "report.json"))
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				if err := cmd.Run(); err != nil {
					t.Fatalf("run %d: %v\n%s\n%s", run, err, stdout.String(), stderr.String())
				}
				if !strings.Contains(stdout.String(), "requests:") || !strings.Contains(stdout.String(), acc.Desc.Catalog().Streams[0].Name) {
					t.Fatalf("run %d: the report is missing:\n%s", run, stdout.String())
				}
				for _, e := range acc.env {
					secret := e[strings.Index(e, "=")+1:]
					if acc.Desc.Name == "close" && strings.Contains(stdout.String()+stderr.String(), secret) {
						t.Fatalf("run %d printed a secret", run)
					}
				}
				acc.assertReplica(t, db)
			}
		})
	}
}

// bookmarksHonest checks that every simulator row before a table's bookmark is in the replica,
// and returns how many bookmarks it checked (none when the sync was stopped before its first
// commit created the state table).
func bookmarksHonest(t *testing.T, r e2e.Replica, acc account) int {
	t.Helper()
	if ok, err := r.Exists("_crmsync_state"); err != nil {
		t.Fatalf("state table: %v", err)
	} else if !ok {
		return 0
	}
	rows, err := r.DB.Query(fmt.Sprintf(`SELECT stream, CAST(state AS TEXT) FROM %s WHERE source = '%s'`, r.Ref("_crmsync_state"), acc.Desc.Name))
	if err != nil {
		t.Fatalf("read the bookmarks: %v", err)
	}
	bookmarks := map[string]time.Time{}
	for rows.Next() {
		var stream, raw string
		if err := rows.Scan(&stream, &raw); err != nil {
			t.Fatal(err)
		}
		st, err := state.Unmarshal([]byte(raw))
		if err != nil {
			t.Fatalf("state of %s unreadable after a kill: %v", stream, err)
		}
		bookmarks[stream] = st.Bookmark
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, s := range acc.Desc.Catalog().Streams {
		bm, ok := bookmarks[s.Name]
		if !ok || bm.IsZero() || s.CursorField == "" {
			continue
		}
		key := s.PrimaryKey[0]
		stored := map[string]bool{}
		keys, err := r.DB.Query(fmt.Sprintf(`SELECT CAST(%q AS TEXT) FROM %s`, key, r.Ref(s.Name)))
		if err != nil {
			t.Fatalf("%s: a bookmark without its table: %v", s.Name, err)
		}
		for keys.Next() {
			var k string
			if err := keys.Scan(&k); err != nil {
				t.Fatal(err)
			}
			stored[k] = true
		}
		if err := keys.Close(); err != nil {
			t.Fatal(err)
		}
		cursor := func(rec map[string]any) any { return rec[s.CursorField] }
		if p := s.ReadWith; p != nil { // the bookmark is a value of the parent's cursor
			parent, _ := acc.Desc.Catalog().Stream(p.Stream)
			parentCursor := map[string]any{}
			for _, r := range acc.Sim.Snapshot(p.Stream) {
				parentCursor[e2e.Key(r[parent.PrimaryKey[0]])] = r[parent.CursorField]
			}
			cursor = func(rec map[string]any) any { return parentCursor[e2e.Key(rec[p.KeyField])] }
		}
		for _, rec := range acc.Sim.Snapshot(s.Name) {
			// A minute of slack: Close's lead search filters at minute precision.
			c, err := record.ParseTime(cursor(rec))
			if err == nil && c.Before(bm.Add(-time.Minute)) && !stored[e2e.Key(rec[key])] {
				t.Fatalf("%s: bookmark %s is ahead of the data: row %v (cursor %s) is missing", s.Name, bm, rec[key], c)
			}
		}
		checked++
	}
	return checked
}

// committed is the source's saved state in the replica, as text: it changes with every commit.
func committed(t *testing.T, r e2e.Replica, acc account) string {
	t.Helper()
	if ok, err := r.Exists("_crmsync_state"); err != nil || !ok {
		return ""
	}
	rows, err := r.DB.Query(fmt.Sprintf(`SELECT stream, CAST(state AS TEXT) FROM %s WHERE source = '%s' ORDER BY stream`, r.Ref("_crmsync_state"), acc.Desc.Name))
	if err != nil {
		return "" // busy with a commit: read again on the next poll
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var stream, st string
		if rows.Scan(&stream, &st) == nil {
			b.WriteString(stream + "=" + st + ";")
		}
	}
	return b.String()
}

// TestKill9AndResume kills the real binary with SIGKILL at seeded random points of its work, reruns it,
// and checks after every kill that no bookmark is ahead of the rows written, and at the end
// that the tables equal the source with no duplicate keys — for both sources into SQLite and
// PostgreSQL. Only kills that landed while the sync was still running count, and enough of
// them must have found bookmarks to check.
func TestKill9AndResume(t *testing.T) {
	const killsPerCase = 7
	rng := rand.New(rand.NewPCG(2026, 11))
	for _, mk := range []func(*testing.T, time.Duration) account{closeAccount, copperAccount} {
		for destName, newDest := range e2e.Destinations() {
			acc := mk(t, 2*time.Millisecond)
			t.Run(acc.Desc.Name+"/"+destName, func(t *testing.T) {
				// How many requests an uninterrupted sync makes, to kill inside one: kills are
				// aimed by the requests the simulator has served, not by time, so a loaded machine
				// does not make them land after the sync.
				requests := func() int64 { return acc.Sim.Stats().Requests }
				probe := newDest(t)
				before := requests()
				if out, err := acc.command(context.Background(), probe).CombinedOutput(); err != nil {
					t.Fatalf("clean sync: %v\n%s", err, out)
				}
				full := requests() - before

				dest := newDest(t)
				r := acc.replica(t, dest)
				landed, withBookmarks := 0, 0
				for k := 0; k < killsPerCase; k++ {
					cmd := acc.command(context.Background(), dest)
					// Each run resumes, so later runs are shorter: aim inside the remaining work.
					target := requests() + 1 + int64(float64(full)*(0.05+0.6*rng.Float64())/float64(k/3+1))
					if err := cmd.Start(); err != nil {
						t.Fatal(err)
					}
					state0 := committed(t, r, acc)
					exited := make(chan error, 1)
					go func() { exited <- cmd.Wait() }()
					var err error
				wait:
					for {
						select {
						case err = <-exited:
							break wait
						case <-time.After(2 * time.Millisecond):
							// Every other kill also waits for a commit of this run, so that kills
							// find bookmarks to check however slowly a loaded machine writes.
							if requests() >= target && (k%2 == 1 || committed(t, r, acc) != state0) {
								cmd.Process.Signal(syscall.SIGKILL)
								err = <-exited
								break wait
							}
						}
					}
					if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
						t.Logf("kill %d came after the sync ended (%v)", k+1, err)
						continue
					}
					landed++
					if bookmarksHonest(t, r, acc) > 0 {
						withBookmarks++
					}
				}
				t.Logf("kills that landed mid-sync: %d of %d; %d left bookmarks to check", landed, killsPerCase, withBookmarks)
				if landed < killsPerCase/2 || withBookmarks < 2 {
					t.Errorf("only %d kills landed mid-sync (%d with bookmarks to check): the test proves too little", landed, withBookmarks)
				}
				if out, err := acc.command(context.Background(), dest).CombinedOutput(); err != nil {
					t.Fatalf("final run: %v\n%s", err, out)
				}
				acc.assertReplica(t, dest)
			})
		}
	}
}

// TestSignalsStopCleanly: SIGINT, SIGTERM and SIGHUP each stop a sync cleanly, with the exit
// code shells give that signal (128 + its number), a line saying how to resume, no bookmark
// ahead of the rows, and a rerun that completes the replica.
func TestSignalsStopCleanly(t *testing.T) {
	for _, tt := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGINT, 130}, {syscall.SIGTERM, 143}, {syscall.SIGHUP, 129}} {
		t.Run(tt.sig.String(), func(t *testing.T) {
			acc := closeAccount(t, 3*time.Millisecond)
			db := "sqlite:" + filepath.Join(t.TempDir(), "crm.db")
			cmd := acc.command(context.Background(), db)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(400 * time.Millisecond)
			cmd.Process.Signal(tt.sig)
			err := cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != tt.code {
				t.Fatalf("after %v: %v, want exit code %d\n%s", tt.sig, err, tt.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), "run the same command again to resume") {
				t.Fatalf("stderr does not say how to resume:\n%s", stderr.String())
			}
			bookmarksHonest(t, acc.replica(t, db), acc)
			if out, err := acc.command(context.Background(), db).CombinedOutput(); err != nil {
				t.Fatalf("resume: %v\n%s", err, out)
			}
			acc.assertReplica(t, db)
		})
	}
}

// TestSecretsNeverLeak greps everything succeeding and failing syncs produce — stdout, stderr
// with debug logs, the JSON report, the database files or a dump of the database — for the
// API key, the Copper user email and the database password.
func TestSecretsNeverLeak(t *testing.T) {
	const pgPassword = "pw-Sup3rSecretValue"
	for _, mk := range []func(*testing.T, time.Duration) account{closeAccount, copperAccount} {
		acc := mk(t, 0)
		for destName, newDest := range e2e.Destinations() {
			t.Run(acc.Desc.Name+"/"+destName, func(t *testing.T) {
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
				for _, s := range []string{acc.Credentials["api_key"], "api_wrongKEY.leakcheck", pgPassword} {
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
	run := func(args ...string) bench.Result {
		t.Helper()
		out, err := exec.CommandContext(t.Context(), binary, append([]string{"bench", "--json"}, args...)...).Output()
		if err != nil {
			t.Fatalf("bench %v: %v", args, err)
		}
		var r bench.Result
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

// TestConfigFromFIFOStillStops: a --config that blocks (a FIFO nobody writes to) must not make
// the process deaf to Ctrl-C.
func TestConfigFromFIFOStillStops(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "config.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no FIFOs here: %v", err)
	}
	cmd := exec.Command(binary, "sync", "--config", fifo)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		if code := cmd.ProcessState.ExitCode(); code != exitStopped {
			t.Fatalf("exit %d after SIGINT while reading the config; stderr %q", code, stderr.String())
		}
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		t.Fatal("SIGINT while reading a FIFO config did not stop crmsync")
	}
}
