package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/crmsync/crmsync/internal/connector"
	"github.com/crmsync/crmsync/internal/destination/postgres/pgtest"
	"github.com/crmsync/crmsync/internal/e2e"
	"github.com/crmsync/crmsync/internal/source/closecrm"
	"github.com/crmsync/crmsync/internal/source/copper"
)

// span is what a simulator saw of one sync: its first request's start, its last request's end.
type span struct {
	run         int64
	first, last time.Time
	requests    int
}

// requestLog records, per sync run (the id the worker puts in its User-Agent), when the
// simulator of one account served it.
type requestLog struct {
	mu       sync.Mutex
	spans    map[int64]*span
	untagged int
}

var runTag = regexp.MustCompile(`\(fleet run (\d+)\)`)

func (l *requestLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		h.ServeHTTP(w, r)
		end := time.Now()
		l.mu.Lock()
		defer l.mu.Unlock()
		m := runTag.FindStringSubmatch(r.UserAgent())
		if m == nil {
			l.untagged++
			return
		}
		run, _ := strconv.ParseInt(m[1], 10, 64)
		s, ok := l.spans[run]
		if !ok {
			s = &span{run: run, first: start}
			l.spans[run] = s
		}
		s.first, s.last = minTime(s.first, start), maxTime(s.last, end)
		s.requests++
	})
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// runs returns the spans by start; requests counts the requests of run.
func (l *requestLog) runs() []span {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []span
	for _, s := range l.spans {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b span) int { return a.first.Compare(b.first) })
	return out
}

func (l *requestLog) requests(run int64) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s, ok := l.spans[run]; ok {
		return s.requests
	}
	return 0
}

// fleetAccount is one simulated account of a fleet, on its own port with its own key.
type fleetAccount struct {
	*e2e.Account
	name, keyEnv, key, email string
	log                      *requestLog
}

// fleetHarness is a fleet file over simulated accounts, a queue database and a destination
// database, and the worker processes a test starts.
type fleetHarness struct {
	t           *testing.T
	queue, dest string
	path        string
	accounts    []*fleetAccount
	db          *pgxpool.Pool // the queue database, for the test's queries
}

// fleetSpec shapes a harness.
type fleetSpec struct {
	accounts  int
	latency   time.Duration
	rateLimit float64 // per account (per endpoint group on Close); 0: none
	// timing is written at the top of the fleet file (job_timeout, rescue_after).
	timing string
	// pace: the accounts' requests_per_second (0: crmsync's default pacing).
	pace float64
	// destPoolConns bounds each sync's pool on the destination (default 1; the server is shared
	// with the other packages' tests).
	destPoolConns int
	// password goes into the queue's and the destination's URLs (the test server trusts
	// loopback and ignores it).
	password string
}

var fleetSizes = map[string]map[string]int{
	"close": {"leads": 60, "activities": 120, "tasks": 40, "users": 5, "custom_fields": 5, "event_log": 40},
	"copper": {"people": 60, "companies": 30, "leads": 20, "opportunities": 20, "projects": 5, "tasks": 20,
		"activities_search": 60, "users": 3},
}

func newFleet(t *testing.T, spec fleetSpec) *fleetHarness {
	t.Helper()
	h := &fleetHarness{t: t, queue: pgtest.NewDatabase(t), dest: pgtest.NewDatabase(t)}
	if spec.password != "" {
		h.queue, h.dest = withPassword(t, h.queue, spec.password), withPassword(t, h.dest, spec.password)
	}
	// A sync opens its own pool on the destination: keep it small, the server is shared.
	sep := "?"
	if strings.Contains(h.dest, "?") {
		sep = "&"
	}
	destURL := fmt.Sprintf("%s%spool_max_conns=%d", h.dest, sep, cmp.Or(spec.destPoolConns, 1))
	var b strings.Builder
	fmt.Fprintf(&b, "queue: %s\n%saccounts:\n", h.queue, spec.timing)
	for i := range spec.accounts {
		d := closecrm.Descriptor
		if i%2 == 1 {
			d = copper.Descriptor
		}
		a := &fleetAccount{name: fmt.Sprintf("acct-%02d", i), keyEnv: fmt.Sprintf("FLEET_KEY_%02d", i),
			key: fmt.Sprintf("fleetkey-%02d-%x", i, time.Now().UnixNano()), email: fmt.Sprintf("owner%02d@fleet.example", i),
			log: &requestLog{spans: map[int64]*span{}}}
		a.Account = e2e.NewAccount(t, d, e2e.Options{Wrap: a.log.wrap, SimConfig: connector.SimConfig{Seed: int64(100 + i),
			Latency: spec.latency, RateLimit: spec.rateLimit, Sizes: fleetSizes[d.Name],
			Credentials: map[string]string{"api_key": a.key, "user_email": a.email}}})
		fmt.Fprintf(&b, "  - name: %s\n    source: %s\n    api_key_env: %s\n    start_date: 2020-01-01\n    base_url: %s\n    dest: %q\n    schema: %s\n    every: 1h\n    batch_size: 300\n",
			a.name, d.Name, a.keyEnv, a.URL, destURL, a.name)
		if d.Name == "copper" {
			fmt.Fprintf(&b, "    user_email: %s\n", a.email)
		}
		if spec.pace != 0 {
			fmt.Fprintf(&b, "    requests_per_second: %g\n", spec.pace)
		}
		h.accounts = append(h.accounts, a)
	}
	h.path = filepath.Join(t.TempDir(), "fleet.yaml")
	if err := os.WriteFile(h.path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(context.Background(), h.queue)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	h.db = pool
	return h
}

// env is the workers' environment: each account's key in its variable.
func (h *fleetHarness) env() []string {
	env := []string{"PATH=/usr/bin:/bin", "HOME=/tmp"}
	for _, a := range h.accounts {
		env = append(env, a.keyEnv+"="+a.key)
	}
	return env
}

// syncBuffer is a bytes.Buffer safe for a process writing and a test reading.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fleetWorker is a running `crmsync worker` process.
type fleetWorker struct {
	id     string
	cmd    *exec.Cmd
	out    *syncBuffer
	done   chan struct{}
	err    error
	exited time.Time
}

func (h *fleetHarness) startWorker(id string, args ...string) *fleetWorker {
	h.t.Helper()
	w := &fleetWorker{id: id, out: &syncBuffer{}, done: make(chan struct{})}
	w.cmd = exec.Command(binary, append([]string{"worker", "--fleet", h.path, "--id", id, "--listen", "127.0.0.1:0"}, args...)...)
	w.cmd.Env = h.env()
	w.cmd.Stdout, w.cmd.Stderr = w.out, w.out
	if err := w.cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	go func() {
		w.err = w.cmd.Wait()
		w.exited = time.Now()
		close(w.done)
	}()
	h.t.Cleanup(func() {
		select {
		case <-w.done:
		default:
			w.cmd.Process.Kill()
			<-w.done
		}
		if h.t.Failed() {
			h.t.Logf("worker %s output:\n%s", id, w.out.String())
		}
	})
	h.waitFor("worker "+id+" started", 60*time.Second, func() bool { return strings.Contains(w.out.String(), `msg="worker started"`) })
	return w
}

// signal sends sig and, for a stop, waits up to within for the process to end.
func (w *fleetWorker) stop(t *testing.T, sig syscall.Signal, within time.Duration) time.Duration {
	t.Helper()
	sent := time.Now()
	if err := w.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal worker %s: %v", w.id, err)
	}
	select {
	case <-w.done:
		return w.exited.Sub(sent)
	case <-time.After(within):
		t.Fatalf("worker %s still running %s after %s", w.id, within, sig)
		return 0
	}
}

// query runs a one-value query on the queue database.
func (h *fleetHarness) scalar(sql string, args ...any) int64 {
	h.t.Helper()
	var n int64
	if err := h.db.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		h.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// waitFor polls cond until it holds or the deadline passes.
func (h *fleetHarness) waitFor(what string, within time.Duration, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// allSynced: every account has a successful run and no job is waiting, running or retrying.
func (h *fleetHarness) allSynced() bool {
	ok := h.scalar(`SELECT count(DISTINCT account) FROM crmsync_fleet_runs WHERE result = 'ok'`)
	open := h.scalar(`SELECT count(*) FROM river_job WHERE state IN ('available', 'running', 'retryable', 'scheduled', 'pending')`)
	return ok == int64(len(h.accounts)) && open == 0
}

// runningOn returns the unfinished runs of a worker that have made at least minRequests
// requests: syncs caught in the middle.
func (h *fleetHarness) midSync(worker string, minRequests int) []int64 {
	h.t.Helper()
	rows, err := h.db.Query(context.Background(), `SELECT id, account FROM crmsync_fleet_runs WHERE worker = $1 AND finished_at IS NULL`, worker)
	if err != nil {
		h.t.Fatal(err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		var account string
		if err := rows.Scan(&id, &account); err != nil {
			h.t.Fatal(err)
		}
		for _, a := range h.accounts {
			if a.name == account && a.log.requests(id) >= minRequests {
				out = append(out, id)
			}
		}
	}
	return out
}

// edit rewrites the fleet file.
func (h *fleetHarness) edit(change func(string) string) {
	h.t.Helper()
	b, err := os.ReadFile(h.path)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(h.path, []byte(change(string(b))), 0o600); err != nil {
		h.t.Fatal(err)
	}
}

// runs counts an account's runs with the result ("" for any).
func (h *fleetHarness) runs(account, result string) int64 {
	return h.scalar(`SELECT count(*) FROM crmsync_fleet_runs WHERE account = $1 AND ($2 = '' OR result = $2)`, account, result)
}

// openFleetReplica opens an account's replica for reading.
func openFleetReplica(t *testing.T, h *fleetHarness, a *fleetAccount) e2e.Replica {
	return e2e.OpenReplica(t, h.dest, a.name)
}
