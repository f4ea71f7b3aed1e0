package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/destination/sqlite"
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

func (a account) command(ctx context.Context, db string, extra ...string) *exec.Cmd {
	args := append([]string{"sync", "--source", a.source, "--base-url", a.baseURL, "--start-date", "2020-01-01", "--dest", "sqlite:" + db,
		"--requests-per-second", "-1", "--batch-size", "300"}, extra...)
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=/tmp"}, a.env...)
	return cmd
}

func (a account) assertReplica(t *testing.T, db string) {
	t.Helper()
	dst, err := sqlite.Open(context.Background(), db, "")
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	for _, tb := range a.tables {
		synctest.AssertReplica(t, dst.DB(), a.sim, tb)
	}
}

func TestBinarySyncThenIncremental(t *testing.T) {
	for _, mk := range []func(*testing.T, time.Duration) account{closeAccount, copperAccount} {
		acc := mk(t, 0)
		t.Run(acc.source, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "crm.db")
			for run := 1; run <= 2; run++ {
				var stdout, stderr bytes.Buffer
				cmd := acc.command(context.Background(), db, "--report-json", db+".report.json")
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
func bookmarksHonest(t *testing.T, db string, acc account) {
	t.Helper()
	conn, err := sql.Open("sqlite", "file:"+db+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rows, err := conn.Query(`SELECT stream, state FROM _crmsync_state WHERE source = ?`, acc.source)
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
		r, err := conn.Query(fmt.Sprintf(`SELECT CAST(%q AS TEXT) FROM %q`, tb.Key, tb.Name))
		if err != nil {
			t.Fatal(err)
		}
		for r.Next() {
			var k string
			r.Scan(&k)
			stored[k] = true
		}
		r.Close()
		for _, rec := range acc.sim.Snapshot(tb.Name) {
			c, err := record.ParseTime(rec[cursor])
			if err == nil && c.Before(bm.Add(-time.Minute)) && !stored[synctest.Key(rec["id"])] {
				t.Fatalf("%s: bookmark %s is ahead of the data: row %v (cursor %s) is missing", tb.Name, bm, rec["id"], c)
			}
		}
	}
}

// TestKill9AndResume kills the real binary at seeded random moments and reruns it: the final
// tables must equal the source, with no duplicate keys, and after every kill no bookmark may be
// ahead of the rows written.
func TestKill9AndResume(t *testing.T) {
	rng := rand.New(rand.NewPCG(2026, 11))
	kills := 0
	for _, mk := range []func(*testing.T, time.Duration) account{closeAccount, copperAccount} {
		acc := mk(t, 2*time.Millisecond)
		t.Run(acc.source, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "crm.db")
			for attempt := 0; attempt < 40; attempt++ {
				cmd := acc.command(context.Background(), db)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				done := make(chan error, 1)
				go func() { done <- cmd.Wait() }()
				killAfter := time.Duration(50+rng.IntN(700)) * time.Millisecond
				select {
				case err := <-done:
					if err != nil {
						t.Fatalf("sync failed without a kill: %v\n%s", err, stderr.String())
					}
					if attempt < 6 {
						// Finished before the kill: start over so every table is killed mid-way a few times.
						continue
					}
					acc.assertReplica(t, db)
					t.Logf("%s: converged after %d kills", acc.source, attempt)
					return
				case <-time.After(killAfter):
					cmd.Process.Signal(syscall.SIGKILL)
					<-done
					kills++
					bookmarksHonest(t, db, acc)
				}
			}
			t.Fatal("the sync never finished between kills")
		})
	}
	t.Logf("kills survived: %d", kills)
}

func TestSigintStopsCleanly(t *testing.T) {
	acc := closeAccount(t, 3*time.Millisecond)
	db := filepath.Join(t.TempDir(), "crm.db")
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
	bookmarksHonest(t, db, acc)
	if out, err := acc.command(context.Background(), db).CombinedOutput(); err != nil {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	acc.assertReplica(t, db)
}
