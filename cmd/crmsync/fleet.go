package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/crmsync/crmsync/internal/config"
	"github.com/crmsync/crmsync/internal/fleet"
	"github.com/crmsync/crmsync/internal/fleetqueue"
	"github.com/crmsync/crmsync/internal/fleetworker"
)

// queueEnv names the queue when neither --queue nor the fleet file does.
const queueEnv = "CRMSYNC_QUEUE"

func (a *app) workerCommand() *cobra.Command {
	var o fleetworker.Options
	var logLevel, logFormat string
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run syncs of the accounts of a fleet file from a shared PostgreSQL job queue (run one on every machine)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.FleetPath == "" {
				return usageError{errors.New("fleet: missing; give the fleet file with --fleet")}
			}
			log, err := newLogger(config.Config{LogLevel: cmp.Or(logLevel, "info"), LogFormat: logFormat}, a)
			if err != nil {
				return err
			}
			if o.Concurrency < 0 {
				return usageError{errors.New("concurrency: must not be negative")}
			}
			o.Concurrency = cmp.Or(o.Concurrency, fleetworker.DefaultConcurrency())
			tuneGC(a.getenv, o.Concurrency) // the soft limit main set is one sync's; a worker runs several
			if o.ID == "" {
				host, _ := os.Hostname()
				o.ID = fmt.Sprintf("%s-%d", cmp.Or(host, "worker"), os.Getpid())
			}
			// SIGHUP rereads the fleet file instead of stopping the worker.
			signal.Reset(syscall.SIGHUP)
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			reload := make(chan struct{})
			go func() {
				for range hup {
					reload <- struct{}{}
				}
			}()
			o.Reload, o.Log, o.Getenv, o.QueueEnv, o.UserAgent = reload, log, a.getenv, a.getenv(queueEnv), "crmsync/"+version
			err = fleetworker.Run(cmd.Context(), o)
			var bad *fleetworker.SettingsError
			if errors.As(err, &bad) {
				return usageError{err}
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.FleetPath, "fleet", "", "the fleet file (YAML): the queue and the accounts")
	fl.StringVar(&o.Queue, "queue", "", "PostgreSQL URL of the job queue (default: queue: in the fleet file, else "+queueEnv+")")
	fl.IntVar(&o.Concurrency, "concurrency", 0, fmt.Sprintf("syncs run at once by this worker (default %d here: 4 per core)", fleetworker.DefaultConcurrency()))
	fl.StringVar(&o.Listen, "listen", "", "serve /metrics (Prometheus) and /healthz on this address, e.g. 127.0.0.1:9464")
	fl.StringVar(&o.ID, "id", "", "this worker's name in the queue and in fleet status (default HOST-PID)")
	fl.DurationVar(&o.StopTimeout, "stop-timeout", 30*time.Second, "on SIGTERM, how long running syncs may take to commit and stop")
	fl.StringVar(&logLevel, "log-level", "", "debug, info (default), warn or error")
	fl.StringVar(&logFormat, "log-format", "", "text or json")
	return cmd
}

// fleetFlags are the flags of the fleet commands.
type fleetFlags struct {
	path, queue string
}

func (f *fleetFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.path, "fleet", "", "the fleet file (YAML)")
	cmd.Flags().StringVar(&f.queue, "queue", "", "PostgreSQL URL of the job queue (default: queue: in the fleet file, else "+queueEnv+")")
}

// open loads the fleet file and connects to its queue.
func (f *fleetFlags) open(ctx context.Context, a *app) (*fleet.File, *pgxpool.Pool, error) {
	if f.path == "" {
		return nil, nil, usageError{errors.New("fleet: missing; give the fleet file with --fleet")}
	}
	file, err := fleet.Load(ctx, f.path, time.Now())
	if err != nil {
		return nil, nil, usageError{err}
	}
	queue := cmp.Or(f.queue, file.Queue, a.getenv(queueEnv))
	if queue == "" {
		return nil, nil, usageError{errors.New("queue: missing; set queue: in the fleet file, --queue or " + queueEnv)}
	}
	pool, err := fleetqueue.Open(ctx, queue, 4)
	if err != nil {
		return nil, nil, err
	}
	if err := fleetqueue.Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, nil, err
	}
	return file, pool, nil
}

func (a *app) fleetCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "fleet", Short: "See and steer the syncs of a fleet file (see crmsync worker)"}
	cmd.AddCommand(a.fleetStatusCommand(), a.fleetRunCommand())
	return cmd
}

func (a *app) fleetRunCommand() *cobra.Command {
	var f fleetFlags
	cmd := &cobra.Command{
		Use:   "run ACCOUNT",
		Short: "Queue a sync of the account now (also after its key was refused)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file, pool, err := f.open(cmd.Context(), a)
			if err != nil {
				return err
			}
			defer pool.Close()
			if _, ok := file.Lookup(args[0]); !ok {
				return usageError{fmt.Errorf("account %q is not in %s", args[0], f.path)}
			}
			c, err := fleetqueue.NewInserter(pool)
			if err != nil {
				return err
			}
			res, err := fleetqueue.Enqueue(cmd.Context(), c, args[0], true)
			if err != nil {
				return err
			}
			if res.Duplicate {
				fmt.Fprintf(a.stdout, "%s already has a sync in the queue (job %d, %s); not queued twice\n", args[0], res.JobID, res.State)
				return nil
			}
			fmt.Fprintf(a.stdout, "queued a sync of %s (job %d)\n", args[0], res.JobID)
			return nil
		},
	}
	f.register(cmd)
	return cmd
}

// statusJSON is one account in `fleet status --json`.
type statusJSON struct {
	Account             string   `json:"account"`
	Source              string   `json:"source"`
	LastRun             *lastRun `json:"last_run,omitempty"`
	State               string   `json:"state,omitempty"`
	JobID               int64    `json:"job_id,omitempty"`
	RunningOn           string   `json:"running_on,omitempty"`
	RunningSince        string   `json:"running_since,omitempty"`
	NextRun             string   `json:"next_run,omitempty"`
	ConsecutiveFailures int      `json:"consecutive_failures"`
	KeyRefused          bool     `json:"key_refused,omitempty"`
}

type lastRun struct {
	StartedAt string  `json:"started_at"`
	Seconds   float64 `json:"seconds"`
	Result    string  `json:"result"`
	Rows      int64   `json:"rows"`
	Requests  int64   `json:"requests"`
	Worker    string  `json:"worker"`
	Error     string  `json:"error,omitempty"`
}

func (a *app) fleetStatusCommand() *cobra.Command {
	var f fleetFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "One line per account: last run, next run, running now (where), consecutive failures",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			file, pool, err := f.open(cmd.Context(), a)
			if err != nil {
				return err
			}
			defer pool.Close()
			now := time.Now()
			st, err := fleetqueue.Status(cmd.Context(), pool, file, now)
			if err != nil {
				return err
			}
			if asJSON {
				return a.printStatusJSON(st)
			}
			a.printStatus(st, now)
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (one object per account, in an array)")
	return cmd
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func (a *app) printStatusJSON(st []fleetqueue.AccountStatus) error {
	out := []statusJSON{}
	for _, s := range st {
		j := statusJSON{Account: s.Account, Source: s.Source, State: s.State, JobID: s.JobID, RunningOn: s.RunningOn,
			RunningSince: rfc3339(s.Since), NextRun: rfc3339(s.NextRun), ConsecutiveFailures: s.ConsecutiveFailures, KeyRefused: s.KeyRefused}
		if r := s.Last; r != nil {
			j.LastRun = &lastRun{StartedAt: rfc3339(r.StartedAt), Seconds: r.FinishedAt.Sub(r.StartedAt).Seconds(), Result: r.Result,
				Rows: r.Rows, Requests: r.Requests, Worker: r.Worker, Error: r.Error}
		}
		out = append(out, j)
	}
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func (a *app) printStatus(st []fleetqueue.AccountStatus, now time.Time) {
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tSOURCE\tLAST RUN\tTOOK\tRESULT\tROWS\tREQUESTS\tNEXT\tRUNNING ON\tFAILURES")
	for _, s := range st {
		last, took, result, rows, reqs := "never", "-", "-", "-", "-"
		if r := s.Last; r != nil {
			last = r.StartedAt.Local().Format("2006-01-02 15:04:05")
			took = r.FinishedAt.Sub(r.StartedAt).Round(100 * time.Millisecond).String()
			result, rows, reqs = r.Result, fmt.Sprint(r.Rows), fmt.Sprint(r.Requests)
			if s.KeyRefused {
				result = "auth (key refused: paused until it changes)"
			}
		}
		next := "-"
		switch {
		case s.State == "available":
			next = "queued"
		case !s.NextRun.IsZero():
			next = "in " + s.NextRun.Sub(now).Round(time.Second).String()
			if s.State == "retryable" {
				next += " (retry)"
			}
		}
		running := "-"
		if s.State == "running" {
			running = fmt.Sprintf("%s (%s)", s.RunningOn, now.Sub(s.Since).Round(time.Second))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", s.Account, s.Source, last, took, result, rows, reqs, next, running, s.ConsecutiveFailures)
	}
	tw.Flush()
}
