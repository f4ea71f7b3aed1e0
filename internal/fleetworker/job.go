package fleetworker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"github.com/crmsync/crmsync/internal/apiclient"
	"github.com/crmsync/crmsync/internal/config"
	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/engine"
	"github.com/crmsync/crmsync/internal/fleet"
	"github.com/crmsync/crmsync/internal/fleetqueue"
	"github.com/crmsync/crmsync/internal/syncsetup"
)

// lockedRetry is when a sync that found its destination locked by another sync is tried
// again (the other is most likely a sync the rescuer thought dead).
const lockedRetry = 30 * time.Second

// errKeyRefused cancels the scheduled job of an account whose key the API refused, unchanged.
var errKeyRefused = errors.New("skipped: the API refused this account's key on its last run and the key has not changed since; fix the key (the worker reads it at every run), or force a try with `crmsync fleet run`")

// Work runs one sync of the job's account.
func (w *worker) Work(ctx context.Context, job *river.Job[fleetqueue.SyncArgs]) error {
	name := job.Args.Account
	log := w.log.With("account", name, "job", job.ID, "attempt", job.Attempt)
	acct, ok := w.fleet.Load().Lookup(name)
	if !ok {
		log.Warn("job cancelled: the account is not in this worker's fleet file")
		return river.JobCancel(fmt.Errorf("account %q is not in this worker's fleet file", name))
	}
	run := fleetqueue.Run{Account: name, JobID: job.ID, Attempt: job.Attempt, Worker: w.client.ID(), Manual: job.Args.Manual}
	cfg, keyErr := acct.Config(w.getenv)
	if keyErr == nil {
		run.KeyFingerprint = fleet.KeyFingerprint(name, cfg.APIKey)
		if !job.Args.Manual {
			last, ok, err := w.history.Last(ctx, name)
			if err != nil {
				return err
			}
			if ok && last.Result == fleetqueue.ResultAuth && last.KeyFingerprint == run.KeyFingerprint {
				log.Warn("sync skipped: the key the API refused last time has not changed")
				return river.JobCancel(errKeyRefused)
			}
		}
	}
	id, err := w.history.Start(ctx, run)
	if err != nil {
		return err
	}
	log = log.With("run", id)
	w.metrics.running.Inc()
	defer w.metrics.running.Dec()
	start := time.Now()
	log.Info("sync started")
	var rep engine.Report
	var result string
	if keyErr != nil {
		result, err = fleetqueue.ResultFailed, keyErr // the variable may be set on another machine
	} else {
		rep, result, err = w.sync(ctx, cfg, log, id)
	}
	took := time.Since(start)
	run.Result, run.Rows, run.Requests, run.Retries, run.RateLimited = result, rep.Rows(), rep.Requests.Requests, rep.Requests.Retries, rep.Requests.RateLimited
	if err != nil {
		run.Error = err.Error()
	}
	if ferr := w.history.Finish(ctx, id, run); ferr != nil {
		log.Error("run history not updated", "err", ferr)
	}
	w.metrics.observe(name, result, rep, took, time.Now())
	attrs := []any{"result", result, "rows", rep.Rows(), "requests", rep.Requests.Requests, "seconds", took.Round(time.Millisecond).Seconds()}
	switch result {
	case fleetqueue.ResultOK:
		log.Info("sync done", attrs...)
		return nil
	case fleetqueue.ResultStopped, fleetqueue.ResultTimeout:
		// Committed batches are kept: the next attempt resumes from the bookmarks, at once
		// and without spending an attempt.
		log.Info("sync stopped; it resumes from its bookmarks", attrs...)
		return river.JobSnooze(0)
	case fleetqueue.ResultLocked:
		log.Warn("another sync holds the destination's lock; trying again later", attrs...)
		return river.JobSnooze(lockedRetry)
	case fleetqueue.ResultAuth, fleetqueue.ResultSettings:
		log.Error("sync refused; not retried until the account's key or settings change", append(attrs, "err", err)...)
		return river.JobCancel(err)
	default:
		log.Error("sync failed; retried with backoff", append(attrs, "err", err)...)
		return err
	}
}

// sync builds the account's sync as `crmsync sync` does and runs it; the result says how it
// ended (fleetqueue.Result*).
func (w *worker) sync(ctx context.Context, cfg config.Config, log *slog.Logger, runID int64) (engine.Report, string, error) {
	// The run's id in the User-Agent lets an API's (or a simulator's) request log tell syncs apart.
	s, err := syncsetup.Prepare(ctx, cfg, syncsetup.Params{Log: log, UserAgent: fmt.Sprintf("%s (fleet run %d)", w.userAgent, runID)})
	var bad *syncsetup.SettingsError
	switch {
	case errors.As(err, &bad):
		return engine.Report{}, fleetqueue.ResultSettings, err
	case err != nil:
		return engine.Report{}, w.classify(ctx, err), err
	}
	defer s.Close()
	rep, err := s.Run(ctx)
	if err == nil {
		return rep, fleetqueue.ResultOK, nil
	}
	if failed := rep.Failed(); len(failed) > 0 {
		first := failed[0]
		for _, f := range failed {
			if isAuth(f.Err) {
				first = f
			}
		}
		err = fmt.Errorf("%d of %d tables failed (the others are committed); %s: %w", len(failed), len(rep.Streams), first.Stream, first.Err)
	}
	return rep, w.classify(ctx, err), err
}

// classify names how a sync that returned err ended.
func (w *worker) classify(ctx context.Context, err error) string {
	switch {
	case isAuth(err):
		return fleetqueue.ResultAuth
	case ctx.Err() != nil && w.stopping.Load():
		return fleetqueue.ResultStopped
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fleetqueue.ResultTimeout
	case ctx.Err() != nil:
		return fleetqueue.ResultStopped // cancelled in the queue
	case errors.Is(err, destination.ErrLocked):
		return fleetqueue.ResultLocked
	}
	return fleetqueue.ResultFailed
}

func isAuth(err error) bool {
	var ae *apiclient.AuthError
	return errors.As(err, &ae)
}

// NextRetry is when a failed sync is tried again: River's backoff, capped at the account's
// period (an hour for a cron schedule), so a failing account is tried at least as often as
// it is scheduled.
func (w *worker) NextRetry(job *river.Job[fleetqueue.SyncArgs]) time.Time {
	period := time.Hour
	if a, ok := w.fleet.Load().Lookup(job.Args.Account); ok && a.Every > 0 {
		period = a.Every
	}
	var at time.Time
	if job.AttemptedAt != nil {
		at = *job.AttemptedAt
	}
	return fleetqueue.NextRetry(job.Attempt, at, time.Now(), period)
}
