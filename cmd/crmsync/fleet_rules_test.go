package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFleetWrongKeyAndReload runs one worker over accounts synced every 2 s: an account whose
// key the API refuses is tried once, then its scheduled runs are skipped without a request
// until `fleet run` forces one or its key changes (the worker reads api_key_file at every
// run); an account whose destination is down is retried with backoff and shown failing while
// the others sync; an account added to the fleet file is synced after SIGHUP, without a
// restart.
func TestFleetWrongKeyAndReload(t *testing.T) {
	h := newFleet(t, fleetSpec{accounts: 4, pace: -1})
	good, bad, down, added := h.accounts[0], h.accounts[1], h.accounts[2], h.accounts[3]
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte("not-the-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	full, _ := os.ReadFile(h.path)
	h.edit(func(s string) string {
		s = strings.ReplaceAll(s, "every: 1h", "every: 2s")
		s = strings.Replace(s, "api_key_env: "+bad.keyEnv, "api_key_file: "+keyFile, 1)
		i := strings.Index(s, "  - name: "+down.name)
		s = s[:i] + strings.Replace(s[i:], h.dest[:strings.LastIndex(h.dest, "/")+1]+"crmsync_test_", h.dest[:strings.LastIndex(h.dest, "/")+1]+"crmsync_gone_", 1)
		return s[:strings.Index(s, "  - name: "+added.name)] // added after SIGHUP
	})
	w := h.startWorker("w-solo", "--concurrency", "2")
	h.waitFor("the good account synced and the bad one refused", 60*time.Second, func() bool {
		return h.runs(good.name, "ok") > 0 && h.runs(bad.name, "auth") > 0
	})
	requests := bad.Sim.Stats().Requests
	h.waitFor("two scheduled runs of the refused account skipped", 30*time.Second, func() bool {
		return h.scalar(`SELECT count(*) FROM river_job WHERE state = 'cancelled' AND args->>'account' = $1 AND errors::text LIKE '%skipped: the API refused%'`, bad.name) >= 2
	})
	if n := h.runs(bad.name, ""); n != 1 || bad.Sim.Stats().Requests != requests {
		t.Fatalf("the refused key was tried again: %d runs, %d requests (then %d)", n, bad.Sim.Stats().Requests, requests)
	}
	if status := h.fleetCommand("status"); !strings.Contains(status, "key refused") {
		t.Errorf("fleet status does not say the key was refused:\n%s", status)
	}
	h.waitFor("the account whose destination is down retried", 30*time.Second, func() bool { return h.runs(down.name, "failed") >= 3 })
	var st []struct {
		Account  string `json:"account"`
		Failures int    `json:"consecutive_failures"`
		LastRun  struct {
			Result, Error string
		} `json:"last_run"`
	}
	if err := json.Unmarshal([]byte(h.fleetCommand("status", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.Account == down.name && (s.Failures < 3 || s.LastRun.Result != "failed" || !strings.Contains(s.LastRun.Error, "does not exist")) {
			t.Errorf("fleet status of the account whose destination is down: %+v", s)
		}
	}
	if n := h.runs(good.name, "ok"); n < 2 {
		t.Errorf("the good account synced %d times meanwhile, want it on its schedule", n)
	}

	// A manual run tries it anyway. Its scheduled job may be in the queue at that moment (on
	// its way to being skipped): fleet run refuses to queue a second one, so it is asked again.
	h.waitFor("fleet run to queue a sync", 30*time.Second, func() bool {
		out, err := h.fleetTry("run", bad.name)
		if err != nil && !strings.Contains(out, "already has a sync in the queue") {
			t.Fatalf("fleet run: %v\n%s", err, out)
		}
		return err == nil && strings.Contains(out, "queued a sync of "+bad.name)
	})
	h.waitFor("the forced run", 30*time.Second, func() bool { return h.runs(bad.name, "auth") == 2 })

	// The right key in the file: the next scheduled run uses it.
	if err := os.WriteFile(keyFile, []byte(bad.key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the account synced with its new key", 30*time.Second, func() bool { return h.runs(bad.name, "ok") > 0 })

	// An account added to the file is synced after SIGHUP.
	h.edit(func(s string) string {
		f := strings.ReplaceAll(string(full), "every: 1h", "every: 2s")
		return s + f[strings.Index(f, "  - name: "+added.name):]
	})
	if err := w.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the added account synced", 30*time.Second, func() bool { return h.runs(added.name, "ok") > 0 })
	w.stop(t, syscall.SIGTERM, 25*time.Second)
	if w.err != nil {
		t.Fatalf("worker exit: %v", w.err)
	}
	for _, a := range []*fleetAccount{good, bad, added} {
		a.AssertReplica(t, openFleetReplica(t, h, a))
	}
}
