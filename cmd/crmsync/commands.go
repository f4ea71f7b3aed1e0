package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/crmsync/crmsync/internal/apiclient"
	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/config"
	"github.com/crmsync/crmsync/internal/engine"
	"github.com/crmsync/crmsync/internal/sources"
)

// settingsFlags are the flags shared by check, discover and sync.
type settingsFlags struct {
	configPath string
	// reconcile is --reconcile-every; it counts only when given (0 is a value of its own).
	reconcile time.Duration
	cfg       config.Config
	streams   string
	flags     *pflag.FlagSet
}

func (f *settingsFlags) register(cmd *cobra.Command, withSync bool) {
	fl := cmd.Flags()
	f.flags = fl
	fl.StringVar(&f.configPath, "config", "", "YAML config file (flags win over it, it wins over the environment)")
	fl.StringVar(&f.cfg.Source, "source", "", "source CRM: "+strings.Join(sources.Names(), " or "))
	fl.StringVar(&f.cfg.APIKey, "api-key", "", "API key (prefer "+credentialEnv("api_key")+" in the environment: flags show up in process lists)")
	fl.StringVar(&f.cfg.UserEmail, "user-email", "", "email of the user who owns the API key (or "+credentialEnv("user_email")+")")
	fl.StringVar(&f.cfg.BaseURL, "base-url", "", "replace the API's scheme and host (proxy, simulator); API paths stay")
	fl.BoolVar(&f.cfg.AllowInsecureHTTP, "allow-insecure-http", false, "allow an http:// base URL that is not loopback")
	fl.Float64Var(&f.cfg.RequestsPerSecond, "requests-per-second", 0, "ceiling on API requests per second over all endpoints (default: none; each endpoint group is paced by the limit the API announces, Copper by its documented 180/min); negative: no pacing beyond what the API announces")
	fl.DurationVar(&f.cfg.StallTimeout, "stall-timeout", 0, fmt.Sprintf("abandon and retry an API answer that sends nothing for this long (default %s)", apiclient.DefaultStallTimeout))
	fl.DurationVar(&f.cfg.RateLimitTimeout, "rate-limit-timeout", 0, fmt.Sprintf("give up on a request that stays rate limited this long (default %s)", apiclient.DefaultRateLimitTimeout))
	fl.StringVar(&f.cfg.LogLevel, "log-level", "", "debug, info, warn or error (default warn; info with --verbose)")
	fl.StringVar(&f.cfg.LogFormat, "log-format", "", "text or json")
	if withSync {
		fl.StringVar(&f.cfg.StartDate, "start-date", "", "earliest data to replicate on a first sync: YYYY-MM-DD, MM/DD/YYYY or RFC 3339")
		fl.StringVar(&f.cfg.Dest, "dest", "", "destination: sqlite:PATH (default sqlite:crmsync.db) or postgres://user@host:5432/db")
		fl.StringVar(&f.cfg.Schema, "schema", "", "namespace in the destination (PostgreSQL schema; SQLite table prefix)")
		fl.StringVar(&f.streams, "streams", "", "comma-separated tables to sync (default: all)")
		fl.IntVar(&f.cfg.Concurrency, "concurrency", 0, "tables read at once (default 4)")
		fl.IntVar(&f.cfg.BatchSize, "batch-size", 0, "rows per destination transaction (default 2000)")
		fl.IntVar(&f.cfg.MemoryBudgetMB, "memory-budget-mb", 0, fmt.Sprintf("MiB of records all tables of a sync hold at once (default %d)", engine.DefaultMemoryBudget>>20))
		fl.StringVar(&f.cfg.Deletes, "deletes", "", "what a record deleted in the source does to its row: soft (marked in _crmsync_deleted_at; the default) or hard (removed)")
		fl.DurationVar(&f.reconcile, "reconcile-every", config.DefaultReconcileEvery, "how often a table without a deletion feed (Copper's) sweeps its ids to find deleted records; 0: on every sync")
	}
}

// credentialEnv lists the environment variables of a credential, over every source.
func credentialEnv(key string) string {
	var names []string
	for _, d := range sources.All() {
		for _, c := range d.Credentials {
			if c.Key == key {
				names = append(names, c.Env)
			}
		}
	}
	return strings.Join(names, " / ")
}

// resolve merges environment, config file and flags, in rising precedence.
func (f *settingsFlags) resolve(ctx context.Context, getenv func(string) string) (config.Config, error) {
	flagCfg := f.cfg
	if f.flags.Changed("streams") {
		flagCfg.Streams = []string{} // given, even if empty: an empty selection is refused later
		for _, s := range strings.Split(f.streams, ",") {
			if s = strings.TrimSpace(s); s != "" {
				flagCfg.Streams = append(flagCfg.Streams, s)
			}
		}
	}
	if f.flags.Changed("reconcile-every") {
		flagCfg.ReconcileEvery = &f.reconcile
	}
	var fileCfg config.Config
	if f.configPath != "" {
		var err error
		if fileCfg, err = config.Load(ctx, f.configPath); err != nil {
			if ctx.Err() != nil {
				return config.Config{}, err // stopped while reading it: not a usage error
			}
			return config.Config{}, usageError{err}
		}
	}
	source := flagCfg.Source
	if source == "" {
		source = fileCfg.Source
	}
	cfg := config.Overlay(config.Overlay(config.FromEnv(source, getenv), fileCfg), flagCfg)
	if _, err := cfg.Descriptor(); err != nil {
		return config.Config{}, usageError{err}
	}
	return cfg, nil
}

func newLogger(cfg config.Config, a *app) (*slog.Logger, error) {
	level := slog.LevelWarn
	switch strings.ToLower(cfg.LogLevel) {
	case "":
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	case "warn", "warning":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return nil, usageError{fmt.Errorf("log_level: %q is not debug, info, warn or error", cfg.LogLevel)}
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(cfg.LogFormat) {
	case "", "text":
		return slog.New(slog.NewTextHandler(a.stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(a.stderr, opts)), nil
	}
	return nil, usageError{fmt.Errorf("log_format: %q is not text or json", cfg.LogFormat)}
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "crmsync",
		Short:         "Replicate Copper and Close CRM data into a database you own",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(a.checkCommand(), a.discoverCommand(), a.syncCommand(), a.demoCommand(), a.sandboxCommand(), a.docsCommand(), a.benchCommand(), a.workerCommand(), a.fleetCommand())
	return root
}

func (a *app) checkCommand() *cobra.Command {
	var f settingsFlags
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Verify the credentials with one cheap API call",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.resolve(cmd.Context(), a.getenv)
			if err != nil {
				return err
			}
			if err := cfg.CheckCredentials(); err != nil {
				return usageError{err}
			}
			log, err := newLogger(cfg, a)
			if err != nil {
				return err
			}
			src, err := newSource(cfg, log)
			if err != nil {
				return usageError{err}
			}
			if err := src.Check(cmd.Context()); err != nil {
				return fmt.Errorf("check %s: %w", cfg.Source, err)
			}
			fmt.Fprintf(a.stdout, "ok: the %s credentials work\n", cfg.Source)
			return nil
		},
	}
	f.register(cmd, false)
	return cmd
}

func (a *app) discoverCommand() *cobra.Command {
	var f settingsFlags
	cmd := &cobra.Command{
		Use:   "discover",
		Short: "Print the catalog of a source as JSON (tables, keys, methods, schemas)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.resolve(cmd.Context(), a.getenv)
			if err != nil {
				return err
			}
			d, err := cfg.Descriptor()
			if err != nil {
				return usageError{err}
			}
			enc := json.NewEncoder(a.stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(discoverJSON(d.Catalog()))
		},
	}
	f.register(cmd, false)
	return cmd
}

func (a *app) syncCommand() *cobra.Command {
	var f settingsFlags
	var progress, verbose, fullRefresh bool
	var reportJSON string
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Replicate the source's tables into the destination (incremental after the first run)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.resolve(cmd.Context(), a.getenv)
			if err != nil {
				return err
			}
			if verbose && cfg.LogLevel == "" {
				cfg.LogLevel = "info"
			}
			return a.runSync(cmd, cfg, syncOptions{progress: progress, reportJSON: reportJSON, fullRefresh: fullRefresh})
		},
	}
	f.register(cmd, true)
	cmd.Flags().BoolVar(&progress, "progress", false, "print progress lines even when stderr is not a terminal")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log each table's progress (log level info)")
	cmd.Flags().StringVar(&reportJSON, "report-json", "", "also write the run report as JSON to this file")
	cmd.Flags().BoolVar(&fullRefresh, "full-refresh", false, "read every selected table again from --start-date, as on a first sync (a backfill after an earlier start date); rows are upserted, nothing is duplicated")
	return cmd
}

type syncOptions struct {
	progress    bool
	fullRefresh bool
	reportJSON  string
	// prepare runs after the settings are validated and before the sync (the demo uses it).
	now func() time.Time
}

func (a *app) docsCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "docs",
		Short:  "Print the table reference (docs/TABLES.md) generated from the stream declarations",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprint(a.stdout, catalog.Markdown(allCatalogs()...))
			return err
		},
	}
}
