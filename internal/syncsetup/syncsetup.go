// Package syncsetup turns validated settings into a ready sync: the source built through its
// descriptor, the destination opened, the engine options. `crmsync sync` and the fleet worker
// both build their syncs here, so a setting means the same in both.
package syncsetup

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"time"

	"github.com/crmsync/crmsync/internal/apiclient"
	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/config"
	"github.com/crmsync/crmsync/internal/connector"
	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/destination/dsn"
	"github.com/crmsync/crmsync/internal/engine"
	"github.com/crmsync/crmsync/internal/source"
)

// SettingsError marks an error in the settings: nothing was done, and retrying with the same
// settings cannot help.
type SettingsError struct{ Err error }

func (e *SettingsError) Error() string { return e.Err.Error() }
func (e *SettingsError) Unwrap() error { return e.Err }

func settings(err error) error { return &SettingsError{err} }

// DestError says a destination named well could not be opened (down, refusing the login, out
// of disk): the settings may be right, and a later try may succeed.
type DestError struct{ Err error }

func (e *DestError) Error() string { return "dest: " + e.Err.Error() }
func (e *DestError) Unwrap() error { return e.Err }

// Params are what a sync needs besides its settings.
type Params struct {
	Log       *slog.Logger
	UserAgent string           // "crmsync/1.2"
	Now       func() time.Time // zero: time.Now
	// FullRefresh reads every table again from the start date.
	FullRefresh bool
}

// Sync is a sync ready to run.
type Sync struct {
	Source   source.Source
	Dest     destination.Destination
	DestName string // for logs and reports; never holds a password
	Selected []catalog.Stream
	Options  engine.Options
}

// Run runs the sync (see engine.Run).
func (s *Sync) Run(ctx context.Context) (engine.Report, error) {
	return engine.Run(ctx, s.Source, s.Dest, s.Options)
}

// Close closes the destination.
func (s *Sync) Close() error { return s.Dest.Close() }

// NewSource builds the source named in cfg from its descriptor; its client logs requests and
// retries to log.
func NewSource(cfg config.Config, log *slog.Logger, userAgent string) (source.Source, error) {
	d, err := cfg.Descriptor()
	if err != nil {
		return nil, err
	}
	return d.Open(connector.Settings{
		Credentials: cfg.Credentials(),
		BaseURL:     cfg.BaseURL,
		Tuning: apiclient.Tuning{RequestsPerSecond: cfg.RequestsPerSecond, UserAgent: userAgent,
			StallTimeout: cfg.StallTimeout, RateLimitTimeout: cfg.RateLimitTimeout, Logger: log},
	})
}

// Check validates the settings of a sync without opening anything: credentials and base URL,
// start date, table selection, pace, sizes and timeouts. Errors are *SettingsError.
func Check(cfg config.Config, now time.Time) (start time.Time, selected []catalog.Stream, err error) {
	if err := cfg.CheckCredentials(); err != nil {
		return time.Time{}, nil, settings(err)
	}
	if start, err = cfg.StartTime(now); err != nil {
		return time.Time{}, nil, settings(err)
	}
	d, err := cfg.Descriptor()
	if err != nil {
		return time.Time{}, nil, settings(err)
	}
	if selected, err = d.Catalog().Select(cfg.Streams); err != nil {
		return time.Time{}, nil, settings(fmt.Errorf("streams: %w", err))
	}
	if err := cfg.CheckSync(); err != nil {
		return time.Time{}, nil, settings(err)
	}
	return start, selected, nil
}

// Prepare validates cfg (see Check), builds the source and opens the destination. A first
// sync without a start date is refused, before a SQLite file is created for nothing. Errors in
// the settings, the destination's name included, are *SettingsError; a destination that is
// named well but cannot be opened is *DestError.
func Prepare(ctx context.Context, cfg config.Config, p Params) (*Sync, error) {
	now := p.Now
	if now == nil {
		now = time.Now
	}
	start, selected, err := Check(cfg, now())
	if err != nil {
		return nil, err
	}
	d, _ := cfg.Descriptor() // Check found it
	src, err := NewSource(cfg, p.Log, p.UserAgent)
	if err != nil {
		return nil, settings(err)
	}
	if start.IsZero() {
		if path, ok := dsn.SQLitePath(cmp.Or(cfg.Dest, dsn.Default)); ok {
			if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
				return nil, settings(config.ErrNoStartDate)
			}
		}
	}
	dst, destName, err := dsn.Open(ctx, cfg.Dest, cfg.Schema, cfg.Source)
	if err != nil {
		var unknown *dsn.UnknownError
		if errors.As(err, &unknown) {
			return nil, settings(err)
		}
		return nil, &DestError{err}
	}
	if start.IsZero() {
		saved, err := dst.State(ctx, cfg.Source)
		if err != nil {
			dst.Close()
			return nil, fmt.Errorf("read the destination's state: %w", err)
		}
		if len(saved) == 0 {
			dst.Close()
			return nil, settings(config.ErrNoStartDate)
		}
	}
	if p.FullRefresh && start.IsZero() {
		dst.Close()
		return nil, settings(errors.New("full-refresh: reads every table again from the start date: set --start-date"))
	}
	opts := EngineOptions(cfg, d, start, p.Log)
	opts.FullRefresh = p.FullRefresh
	opts.Now = now
	return &Sync{Source: src, Dest: dst, DestName: destName, Selected: selected, Options: opts}, nil
}

// EngineOptions turns validated settings into engine options.
func EngineOptions(cfg config.Config, d connector.Descriptor, start time.Time, log *slog.Logger) engine.Options {
	return engine.Options{
		StartDate:    start,
		Streams:      cfg.Streams,
		BatchSize:    cfg.BatchSize,
		Concurrency:  cfg.Concurrency,
		MemoryBudget: cfg.MemoryBudgetMB << 20,
		Windows:      d.Windows(cfg.RequestsPerSecond),
		Logger:       log,
		// Validated by CheckSync: soft or hard (or unset: soft).
		Deletes:        engine.DeleteMode(cfg.Deletes),
		ReconcileEvery: cfg.Reconcile(),
	}
}
