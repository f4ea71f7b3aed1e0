package fleetqueue

import (
	"context"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/rivertype"

	"github.com/crmsync/crmsync/internal/fleet"
)

// AccountStatus is what `crmsync fleet status` says of an account.
type AccountStatus struct {
	Account string
	Source  string
	// Last is the last finished run (nil: none yet).
	Last *Run
	// State of the account's open job: running, available (waiting for a free worker),
	// scheduled, retryable; empty when none is open.
	State     string
	JobID     int64
	RunningOn string    // the worker (River client id) running it
	Since     time.Time // running since
	// NextRun is when the next sync is due: the open job's scheduled time, else the
	// schedule's next instant; zero while one runs.
	NextRun             time.Time
	ConsecutiveFailures int
	// KeyRefused: the last run's key was refused by the API; scheduled runs skip the account
	// until its key changes (or `fleet run` forces one).
	KeyRefused bool
}

// Status reads the queue and the run history for every account of the fleet file.
func Status(ctx context.Context, pool *pgxpool.Pool, f *fleet.File, now time.Time) ([]AccountStatus, error) {
	c, err := NewInserter(pool)
	if err != nil {
		return nil, err
	}
	jobs, err := openJobs(ctx, c)
	if err != nil {
		return nil, err
	}
	h := History{Pool: pool}
	last, err := h.LastFinished(ctx)
	if err != nil {
		return nil, err
	}
	fails, err := h.ConsecutiveFailures(ctx)
	if err != nil {
		return nil, err
	}
	var out []AccountStatus
	for _, a := range f.Accounts {
		s := AccountStatus{Account: a.Name, Source: a.Settings.Source, ConsecutiveFailures: fails[a.Name]}
		if r, ok := last[a.Name]; ok {
			s.Last = &r
			s.KeyRefused = r.Result == ResultAuth
		}
		s.NextRun = a.Schedule.Next(now)
		if j, ok := jobs[a.Name]; ok {
			s.State, s.JobID = string(j.State), j.ID
			switch j.State {
			case rivertype.JobStateRunning:
				s.NextRun = time.Time{}
				if len(j.AttemptedBy) > 0 {
					s.RunningOn = j.AttemptedBy[len(j.AttemptedBy)-1]
				}
				if j.AttemptedAt != nil {
					s.Since = *j.AttemptedAt
				}
			default:
				s.NextRun = j.ScheduledAt
			}
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b AccountStatus) int {
		if a.Account < b.Account {
			return -1
		}
		return 1
	})
	return out, nil
}
