package main

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/e2e"
	"github.com/crmsync/crmsync/internal/simulator/coppersim"
)

// markedKeys returns the keys of a table's rows marked deleted.
func markedKeys(t *testing.T, r e2e.Replica, table, key string) map[string]bool {
	t.Helper()
	rows, err := r.DB.Query(fmt.Sprintf(`SELECT CAST(%q AS TEXT) FROM %s WHERE %q IS NOT NULL`, key, r.Ref(table), destination.DeletedAtColumn))
	if err != nil {
		t.Fatalf("%s: %v", table, err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		out[k] = true
	}
	return out
}

// TestKill9DuringReconciliationThenResume: the real binary is killed with SIGKILL while it
// sweeps Copper's ids for deleted records; no kill leaves a live record marked, and the run
// that resumes marks exactly the records deleted — into SQLite and PostgreSQL.
func TestKill9DuringReconciliationThenResume(t *testing.T) {
	cdc := map[string]int{"people": 25, "companies": 10, "leads": 5, "opportunities": 5, "projects": 3, "tasks": 5, "activities_search": 8}
	for destName, newDest := range e2e.Destinations() {
		t.Run(destName, func(t *testing.T) {
			acc := copperAccount(t, 2*time.Millisecond)
			dest := newDest(t)
			requests := func() int64 { return acc.Sim.Stats().Requests }
			before := requests()
			if out, err := acc.command(context.Background(), dest).CombinedOutput(); err != nil {
				t.Fatalf("first sync: %v\n%s", err, out)
			}
			full := requests() - before
			sim := acc.Sim.(*coppersim.Server)
			deleted := map[string]map[string]bool{}
			for table, n := range cdc {
				deleted[table] = map[string]bool{}
				for _, id := range sim.DeleteRecords(table, n, time.Now()) {
					deleted[table][id] = true
				}
			}
			r := acc.replica(t, dest)
			// Never a live record marked, and no more than the deleted ones.
			checkMarks := func(what string, exact bool) {
				t.Helper()
				for table, gone := range deleted {
					marked := markedKeys(t, r, table, "id")
					for k := range marked {
						if !gone[k] {
							t.Errorf("%s: %s %s is marked deleted but live in the API", what, table, k)
						}
					}
					if exact && len(marked) != len(gone) {
						t.Errorf("%s: %s has %d rows marked, want the %d deleted", what, table, len(marked), len(gone))
					}
				}
			}
			landed := 0
			for k, share := range []float64{0.05, 0.12, 0.2} { // a sweep costs well under a first sync
				cmd := acc.command(context.Background(), dest, "--reconcile-every", "0")
				target := requests() + int64(float64(full)*share)
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				exited := make(chan error, 1)
				go func() { exited <- cmd.Wait() }()
			wait:
				for {
					select {
					case <-exited:
						break wait
					case <-time.After(2 * time.Millisecond):
						if requests() >= target {
							cmd.Process.Signal(syscall.SIGKILL)
							<-exited
							break wait
						}
					}
				}
				if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
					landed++
				} else {
					t.Logf("kill %d came after the sync ended", k+1)
				}
				checkMarks(fmt.Sprintf("after kill %d", k+1), false)
			}
			if landed < 2 {
				t.Errorf("only %d kills landed mid-sync: the test proves too little", landed)
			}
			if out, err := acc.command(context.Background(), dest, "--reconcile-every", "0").CombinedOutput(); err != nil {
				t.Fatalf("resume: %v\n%s", err, out)
			}
			checkMarks("after the resume", true)
			acc.assertReplica(t, dest)
		})
	}
}
