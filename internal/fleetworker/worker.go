// Package fleetworker is `crmsync worker`: a River client that enqueues each account of a
// fleet file on its schedule and runs syncs from the shared PostgreSQL queue, as many at once
// as its concurrency allows. Any number of workers on any number of machines share the queue;
// River's unique jobs keep one sync per account at a time, its rescuer reruns the jobs of a
// worker that died, and each sync is built and run exactly as `crmsync sync` runs it (package
// syncsetup).
package fleetworker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/crmsync/crmsync/internal/fleet"
	"github.com/crmsync/crmsync/internal/fleetqueue"
)

// DefaultConcurrency is how many syncs a worker runs at once when not told: syncs wait on
// the APIs most of the time, so several per core.
func DefaultConcurrency() int { return 4 * runtime.GOMAXPROCS(0) }

// Options configure a worker.
type Options struct {
	FleetPath string
	// Queue overrides the fleet file's queue URL; QueueEnv is used when neither names one.
	Queue, QueueEnv string
	Concurrency     int    // syncs at once; zero: DefaultConcurrency
	Listen          string // address of /metrics and /healthz; empty: none
	ID              string // the worker's name in the queue and in status
	Log             *slog.Logger
	Getenv          func(string) string
	UserAgent       string // "crmsync/1.2"
	// StopTimeout bounds a stop: running syncs are cancelled at once and commit what they
	// read; a sync still running after this is abandoned (and rescued elsewhere).
	StopTimeout time.Duration
	// Reload (SIGHUP) rereads the fleet file.
	Reload <-chan struct{}
	// Listening, when set, is called with the metrics address once it is served.
	Listening func(net.Addr)
}

// Run runs the worker until ctx is done, then stops it: no new job is taken, running syncs
// are cancelled (committing what they read) and put back in the queue to resume at once.
func Run(ctx context.Context, o Options) error {
	o.Concurrency = cmp.Or(o.Concurrency, DefaultConcurrency())
	o.StopTimeout = cmp.Or(o.StopTimeout, 30*time.Second)
	f, err := fleet.Load(ctx, o.FleetPath, time.Now())
	if err != nil {
		return &SettingsError{err}
	}
	queue := cmp.Or(o.Queue, f.Queue, o.QueueEnv)
	if queue == "" {
		return &SettingsError{errors.New("queue: missing; set queue: in the fleet file, --queue or CRMSYNC_QUEUE (a postgres:// URL)")}
	}
	// River holds a few connections (notifications, fetching, the leader's maintenance); each
	// sync borrows one briefly to record its start and end. A pool that is short makes them
	// wait; one that is large uses up the server's connections across a fleet.
	pool, err := fleetqueue.Open(ctx, queue, int32(6+o.Concurrency/4))
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := fleetqueue.Migrate(ctx, pool); err != nil {
		return err
	}
	w := &worker{log: o.Log, getenv: o.Getenv, userAgent: o.UserAgent, history: fleetqueue.History{Pool: pool}, metrics: newMetrics(pool)}
	w.fleet.Store(f)
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, w); err != nil {
		return err
	}
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		ID:                   o.ID,
		Logger:               slog.New(minLevel{o.Log.Handler(), slog.LevelWarn}),
		Queues:               map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: o.Concurrency}},
		Workers:              workers,
		JobTimeout:           f.JobTimeout,
		RescueStuckJobsAfter: f.RescueAfter,
		PeriodicJobs:         periodicJobs(f),
	})
	if err != nil {
		return fmt.Errorf("start the queue client: %w", err)
	}
	w.client = client
	if err := w.catchUp(ctx, f); err != nil {
		return err
	}
	if err := w.history.Prune(ctx, time.Now().AddDate(0, 0, -historyDays)); err != nil {
		o.Log.Warn("run history not pruned", "err", err)
	}
	// River stops when its Start context ends; the worker stops it itself (below), so that
	// running syncs are cancelled rather than waited for.
	if err := client.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("start the queue client: %w", err)
	}
	if o.Listen != "" {
		addr, err := serve(ctx, o.Listen, w.metrics, func(ctx context.Context) error { return pool.Ping(ctx) }, o.Log)
		if err != nil {
			w.stop(o.StopTimeout)
			return &SettingsError{fmt.Errorf("listen: %w", err)}
		}
		o.Log.Info("serving /metrics and /healthz", "addr", addr.String())
		if o.Listening != nil {
			o.Listening(addr)
		}
	}
	o.Log.Info("worker started", "worker", client.ID(), "accounts", len(f.Accounts), "concurrency", o.Concurrency,
		"job_timeout", f.JobTimeout, "rescue_after", f.RescueAfter)
	for {
		select {
		case <-ctx.Done():
			o.Log.Info("stopping: running syncs commit what they read and go back to the queue")
			return w.stop(o.StopTimeout)
		case <-o.Reload:
			w.reload(ctx, o.FleetPath)
		}
	}
}

// historyDays is how long the run history is kept.
const historyDays = 30

// SettingsError marks an error in the worker's settings (its fleet file, flags).
type SettingsError struct{ Err error }

func (e *SettingsError) Error() string { return e.Err.Error() }
func (e *SettingsError) Unwrap() error { return e.Err }

type worker struct {
	river.WorkerDefaults[fleetqueue.SyncArgs]
	log       *slog.Logger
	getenv    func(string) string
	userAgent string
	history   fleetqueue.History
	metrics   *metrics
	client    *river.Client[pgx.Tx]
	fleet     atomic.Pointer[fleet.File]
	stopping  atomic.Bool
}

// stop cancels the running syncs and waits up to timeout for them to go back to the queue.
func (w *worker) stop(timeout time.Duration) error {
	w.stopping.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := w.client.StopAndCancel(ctx); err != nil {
		return fmt.Errorf("stop: syncs still running after %s are left to be rescued: %w", timeout, err)
	}
	return nil
}

// reload rereads the fleet file: accounts added are scheduled (and run at once when due),
// accounts removed are no longer scheduled, and a job of one still queued is cancelled when
// it comes up. A file that does not parse changes nothing.
func (w *worker) reload(ctx context.Context, path string) {
	f, err := fleet.Load(ctx, path, time.Now())
	if err != nil {
		w.log.Error("fleet file not reloaded; the accounts loaded before stay", "err", err)
		return
	}
	w.fleet.Store(f)
	w.client.PeriodicJobs().Clear()
	if _, err := w.client.PeriodicJobs().AddManySafely(periodicJobs(f)); err != nil {
		w.log.Error("fleet file reloaded, but its schedules were refused", "err", err)
		return
	}
	if err := w.catchUp(ctx, f); err != nil {
		w.log.Error("fleet file reloaded, but the due accounts were not queued", "err", err)
		return
	}
	w.log.Info("fleet file reloaded", "accounts", len(f.Accounts))
}

// periodicJobs enqueue each account on its schedule. River runs them on the elected leader
// only; a job already open for the account (running, waiting, retrying) makes the insert a
// no-op.
func periodicJobs(f *fleet.File) []*river.PeriodicJob {
	var out []*river.PeriodicJob
	for _, a := range f.Accounts {
		name := a.Name
		out = append(out, river.NewPeriodicJob(a.Schedule, func() (river.JobArgs, *river.InsertOpts) {
			return fleetqueue.SyncArgs{Account: name}, nil
		}, &river.PeriodicJobOpts{ID: "crmsync:" + name}))
	}
	return out
}

// catchUp enqueues the accounts that are due: never synced, or whose schedule has passed an
// instant since their last run began. River's periodic jobs keep their schedule in the
// leader's memory only, so a fleet that was down, or a new account, would otherwise wait for
// the next instant.
func (w *worker) catchUp(ctx context.Context, f *fleet.File) error {
	last, err := w.history.LastStarted(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	var due []river.InsertManyParams
	for _, a := range f.Accounts {
		if t, ok := last[a.Name]; !ok || !a.Schedule.Next(t).After(now) {
			due = append(due, river.InsertManyParams{Args: fleetqueue.SyncArgs{Account: a.Name}})
		}
	}
	if len(due) == 0 {
		return nil
	}
	if _, err := w.client.InsertMany(ctx, due); err != nil {
		return fmt.Errorf("queue the accounts that are due: %w", err)
	}
	return nil
}

// minLevel passes on records at min or above: River's own lines below warn are noise here.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(a []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(a), h.min}
}
func (h minLevel) WithGroup(n string) slog.Handler { return minLevel{h.Handler.WithGroup(n), h.min} }
