package fleetqueue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/rivertype"
)

type pgx5Tx = pgx.Tx

// runsDDL is crmsync's run history: one row per sync attempt, written as it starts and
// completed as it ends (a row never completed is a sync whose worker died). No secret: the key
// is kept only as a fingerprint (fleet.KeyFingerprint), errors are the redacted messages.
const runsDDL = `
CREATE TABLE IF NOT EXISTS crmsync_fleet_runs (
	id              bigserial PRIMARY KEY,
	account         text NOT NULL,
	job_id          bigint NOT NULL,
	attempt         integer NOT NULL,
	worker          text NOT NULL,
	manual          boolean NOT NULL DEFAULT false,
	started_at      timestamptz NOT NULL DEFAULT now(),
	finished_at     timestamptz,
	result          text,
	rows            bigint NOT NULL DEFAULT 0,
	requests        bigint NOT NULL DEFAULT 0,
	retries         bigint NOT NULL DEFAULT 0,
	rate_limited    bigint NOT NULL DEFAULT 0,
	error           text,
	key_fingerprint text
);
CREATE INDEX IF NOT EXISTS crmsync_fleet_runs_account ON crmsync_fleet_runs (account, id DESC);
`

// Results of a run.
const (
	ResultOK       = "ok"
	ResultFailed   = "failed"   // retried with backoff
	ResultAuth     = "auth"     // the API refused the key: not retried until the key changes
	ResultSettings = "settings" // the account's settings are refused: not retried until they change
	ResultStopped  = "stopped"  // the worker was stopped (SIGTERM): resumed at once elsewhere
	ResultTimeout  = "timeout"  // the job ran past job_timeout: resumed at once
	ResultLocked   = "locked"   // another sync held the destination's lock: tried again later
)

// failures are the results that count as consecutive failures.
var failures = []string{ResultFailed, ResultAuth, ResultSettings}

// Run is one sync attempt as the history keeps it.
type Run struct {
	ID             int64
	Account        string
	JobID          int64
	Attempt        int
	Worker         string
	Manual         bool
	StartedAt      time.Time
	FinishedAt     time.Time // zero: not finished (running, or its worker died)
	Result         string
	Rows           int64
	Requests       int64
	Retries        int64
	RateLimited    int64
	Error          string
	KeyFingerprint string
}

// History is the run history in the queue database.
type History struct{ Pool *pgxpool.Pool }

// Start records a run as it starts and returns its id.
func (h History) Start(ctx context.Context, r Run) (int64, error) {
	var id int64
	err := h.Pool.QueryRow(ctx, `INSERT INTO crmsync_fleet_runs (account, job_id, attempt, worker, manual, key_fingerprint)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`, r.Account, r.JobID, r.Attempt, r.Worker, r.Manual, r.KeyFingerprint).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("record the run's start: %w", err)
	}
	return id, nil
}

// Finish records how run id ended. It is written even when ctx is done (the worker stopping):
// the history must say the run stopped.
func (h History) Finish(ctx context.Context, id int64, r Run) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_, err := h.Pool.Exec(ctx, `UPDATE crmsync_fleet_runs SET finished_at = now(), result = $2, rows = $3, requests = $4,
		retries = $5, rate_limited = $6, error = NULLIF($7, '') WHERE id = $1`, id, r.Result, r.Rows, r.Requests, r.Retries, r.RateLimited, r.Error)
	if err != nil {
		return fmt.Errorf("record the run's end: %w", err)
	}
	return nil
}

// LastFinished returns each account's last finished run.
func (h History) LastFinished(ctx context.Context) (map[string]Run, error) {
	rows, err := h.Pool.Query(ctx, `SELECT DISTINCT ON (account) id, account, job_id, attempt, worker, manual, started_at, finished_at,
		result, rows, requests, retries, rate_limited, coalesce(error, ''), coalesce(key_fingerprint, '')
		FROM crmsync_fleet_runs WHERE finished_at IS NOT NULL ORDER BY account, id DESC`)
	if err != nil {
		return nil, fmt.Errorf("read the run history: %w", err)
	}
	out := map[string]Run{}
	for rows.Next() {
		var r Run
		if err := rows.Scan(&r.ID, &r.Account, &r.JobID, &r.Attempt, &r.Worker, &r.Manual, &r.StartedAt, &r.FinishedAt, &r.Result,
			&r.Rows, &r.Requests, &r.Retries, &r.RateLimited, &r.Error, &r.KeyFingerprint); err != nil {
			return nil, fmt.Errorf("read the run history: %w", err)
		}
		out[r.Account] = r
	}
	return out, rows.Err()
}

// LastStarted returns when each account's last run started.
func (h History) LastStarted(ctx context.Context) (map[string]time.Time, error) {
	rows, err := h.Pool.Query(ctx, `SELECT account, max(started_at) FROM crmsync_fleet_runs GROUP BY account`)
	if err != nil {
		return nil, fmt.Errorf("read the run history: %w", err)
	}
	out := map[string]time.Time{}
	for rows.Next() {
		var a string
		var t time.Time
		if err := rows.Scan(&a, &t); err != nil {
			return nil, fmt.Errorf("read the run history: %w", err)
		}
		out[a] = t
	}
	return out, rows.Err()
}

// ConsecutiveFailures counts, per account, the failed runs since its last successful one.
func (h History) ConsecutiveFailures(ctx context.Context) (map[string]int, error) {
	rows, err := h.Pool.Query(ctx, `SELECT r.account, count(*) FROM crmsync_fleet_runs r
		WHERE r.result = ANY($1) AND r.id > coalesce((SELECT max(o.id) FROM crmsync_fleet_runs o WHERE o.account = r.account AND o.result = 'ok'), 0)
		GROUP BY r.account`, failures)
	if err != nil {
		return nil, fmt.Errorf("read the run history: %w", err)
	}
	out := map[string]int{}
	for rows.Next() {
		var a string
		var n int
		if err := rows.Scan(&a, &n); err != nil {
			return nil, fmt.Errorf("read the run history: %w", err)
		}
		out[a] = n
	}
	return out, rows.Err()
}

// Prune deletes runs that started before cutoff.
func (h History) Prune(ctx context.Context, cutoff time.Time) error {
	if _, err := h.Pool.Exec(ctx, `DELETE FROM crmsync_fleet_runs WHERE started_at < $1`, cutoff); err != nil {
		return fmt.Errorf("prune the run history: %w", err)
	}
	return nil
}

func decodeArgs(j *rivertype.JobRow, v any) error {
	if len(j.EncodedArgs) == 0 {
		return errNoArgs
	}
	if err := json.Unmarshal(j.EncodedArgs, v); err != nil {
		return fmt.Errorf("job %d: arguments: %w", j.ID, err)
	}
	return nil
}

// Last returns the account's last finished run (ok false: none).
func (h History) Last(ctx context.Context, account string) (Run, bool, error) {
	var r Run
	err := h.Pool.QueryRow(ctx, `SELECT id, result, coalesce(key_fingerprint, '') FROM crmsync_fleet_runs
		WHERE account = $1 AND finished_at IS NOT NULL ORDER BY id DESC LIMIT 1`, account).Scan(&r.ID, &r.Result, &r.KeyFingerprint)
	if errors.Is(err, pgx.ErrNoRows) {
		return Run{}, false, nil
	}
	if err != nil {
		return Run{}, false, fmt.Errorf("read the run history: %w", err)
	}
	r.Account = account
	return r, true, nil
}
