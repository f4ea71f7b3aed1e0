// Package fleetqueue is the fleet's job queue in PostgreSQL: River's tables (migrated here),
// the sync job (its arguments are the account's name and nothing else: no secret ever enters
// the queue), one job per account at a time (River unique jobs), and crmsync's own run
// history, which `crmsync fleet status` reads with River's jobs.
package fleetqueue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"

	"github.com/crmsync/crmsync/internal/destination/postgres"
)

// Kind is the River job kind of a sync.
const Kind = "crmsync_sync"

// SyncArgs are a sync job's arguments: the account's name, looked up in the worker's fleet
// file. Only Account makes a job unique, so a manual run and a scheduled one of the same
// account are the same job.
type SyncArgs struct {
	Account string `json:"account" river:"unique"`
	// Manual: enqueued by `crmsync fleet run`; it runs even when the account's key was
	// refused before.
	Manual bool `json:"manual,omitempty"`
}

// Kind is the job kind.
func (SyncArgs) Kind() string { return Kind }

// uniqueStates are the states in which a job of an account blocks another: every state
// before the job is finished. A retryable job counts, so a failing account is retried by its
// one job instead of piling up new ones.
var uniqueStates = []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
	rivertype.JobStateRetryable, rivertype.JobStateScheduled}

// InsertOpts makes each account's job unique until it is finished: one sync per account at a
// time, across all workers.
func (SyncArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: uniqueStates}}
}

// Open connects to the queue database. maxConns bounds the pool (0: pgx's default).
func Open(ctx context.Context, url string, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("queue %s: %w", postgres.Redact(url), redact(err, url))
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "crmsync-worker"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err == nil {
		err = pool.Ping(ctx)
	}
	if err != nil {
		if pool != nil {
			pool.Close()
		}
		return nil, fmt.Errorf("queue %s: %w", postgres.Redact(url), redact(err, url))
	}
	return pool, nil
}

// redact keeps the URL's password out of an error.
func redact(err error, url string) error {
	return postgres.RedactError(err, url)
}

// migrateLock serialises migrations of workers starting together (River's migrator does not).
const migrateLock = 0x63726d73796e63 // "crmsync"

// Migrate brings River's tables and crmsync's run history up to date; workers starting at
// once take turns.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate the queue: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(migrateLock)); err != nil {
		return fmt.Errorf("migrate the queue: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(migrateLock))
	m, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fmt.Errorf("migrate the queue: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("migrate the queue (River): %w", err)
	}
	if _, err := conn.Exec(ctx, runsDDL); err != nil {
		return fmt.Errorf("migrate the queue (run history): %w", err)
	}
	return nil
}

// NewInserter is a River client that only inserts jobs (`crmsync fleet run`).
func NewInserter(pool *pgxpool.Pool) (*river.Client[pgx5Tx], error) {
	return river.NewClient(riverpgxv5.New(pool), &river.Config{Logger: slog.New(slog.DiscardHandler)})
}

// Enqueued says what an insert did.
type Enqueued struct {
	JobID     int64
	Duplicate bool // the account already had a job waiting or running: that one stands
	State     rivertype.JobState
}

// Enqueue inserts a sync of the account now, unless one is already waiting or running.
func Enqueue(ctx context.Context, c *river.Client[pgx5Tx], account string, manual bool) (Enqueued, error) {
	res, err := c.Insert(ctx, SyncArgs{Account: account, Manual: manual}, nil)
	if err != nil {
		return Enqueued{}, fmt.Errorf("enqueue %s: %w", account, err)
	}
	return Enqueued{JobID: res.Job.ID, Duplicate: res.UniqueSkippedAsDuplicate, State: res.Job.State}, nil
}

// openJobs lists the sync jobs not finished yet, by account.
func openJobs(ctx context.Context, c *river.Client[pgx5Tx]) (map[string]*rivertype.JobRow, error) {
	out := map[string]*rivertype.JobRow{}
	params := river.NewJobListParams().Kinds(Kind).States(uniqueStates...).First(10000)
	for {
		res, err := c.JobList(ctx, params)
		if err != nil {
			return nil, fmt.Errorf("list the queue's jobs: %w", err)
		}
		for _, j := range res.Jobs {
			var args struct {
				Account string `json:"account"`
			}
			if err := decodeArgs(j, &args); err != nil {
				return nil, err
			}
			out[args.Account] = j
		}
		if len(res.Jobs) < 10000 || res.LastCursor == nil {
			return out, nil
		}
		params = params.After(res.LastCursor)
	}
}

var errNoArgs = errors.New("job without arguments")

// NextRetry is when a failed sync is tried again: River's backoff (attempt⁴ seconds), but
// never later than the account's own period, so a failing account is tried at least as
// often as it is scheduled.
func NextRetry(attempt int, attemptedAt, now time.Time, period time.Duration) time.Time {
	wait := time.Duration(attempt*attempt*attempt*attempt) * time.Second
	wait = max(time.Second, min(wait, period))
	if attemptedAt.IsZero() {
		attemptedAt = now
	}
	return attemptedAt.Add(wait)
}
