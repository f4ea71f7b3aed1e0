package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/crmsync/crmsync/internal/apiclient"
	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/config"
	"github.com/crmsync/crmsync/internal/connector"
	"github.com/crmsync/crmsync/internal/destination/singer"
	"github.com/crmsync/crmsync/internal/engine"
	"github.com/crmsync/crmsync/internal/state"
)

// firstReads lists the selected incremental streams the state has no start date for: their
// first read needs start_date.
func firstReads(cat catalog.Catalog, streams []string, saved state.Source) []string {
	var out []string
	for _, name := range streams {
		if s, _ := cat.Stream(name); s.Method != catalog.FullTable && saved[name].StartDate.IsZero() {
			out = append(out, name)
		}
	}
	return out
}

// syncTap reads the streams the catalog selects and writes their messages to stdout.
func syncTap(ctx context.Context, cfg tapConfig, catalogPath, statePath string, stdout io.Writer, log *slog.Logger) error {
	cat := cfg.Desc.Catalog()
	sel, err := readSelection(catalogPath, cat)
	if err != nil {
		return usageError{err}
	}
	saved := state.Source{}
	if statePath != "" {
		data, err := os.ReadFile(statePath)
		if err != nil {
			return usageError{fmt.Errorf("state: %w", err)}
		}
		if saved, err = singer.ParseState(data, cfg.Source); err != nil {
			return usageError{fmt.Errorf("state %s: %w", statePath, err)}
		}
	}
	var start time.Time
	if cfg.StartDate != "" {
		if start, err = config.ParseStartDate(cfg.StartDate, time.Now()); err != nil {
			return usageError{err}
		}
	}
	if len(sel.Streams) == 0 {
		log.Warn("the catalog selects no stream: nothing to read")
		return nil
	}
	if start.IsZero() {
		if first := firstReads(cat, sel.Streams, saved); len(first) > 0 {
			return usageError{fmt.Errorf("start_date: missing; set start_date in the config (e.g. 2024-01-01): these streams have no bookmark in the state yet: %s", strings.Join(first, ", "))}
		}
	}
	src, err := cfg.Desc.Open(connector.Settings{
		Credentials: cfg.Credentials,
		BaseURL:     cfg.BaseURL,
		Tuning:      apiclient.Tuning{RequestsPerSecond: cfg.RequestsPerSecond, UserAgent: "tap-crmsync/" + version, Logger: log},
	})
	if err != nil {
		return usageError{err}
	}
	dst := singer.New(stdout, singer.Options{State: saved, Fields: sel.Fields})
	// A Singer stream keeps no rows to mark: deletions are not captured (see README).
	rep, runErr := engine.Run(ctx, src, dst, engine.Options{StartDate: start, Streams: sel.Streams, Logger: log, Deletes: engine.DeletesOff})
	if err := dst.Close(); err != nil && runErr == nil {
		runErr = err
	}
	for _, s := range rep.Streams {
		if s.Err != nil {
			log.Error("stream failed", "stream", s.Stream, "rows", s.Rows, "err", s.Err)
			continue
		}
		log.Info("stream synced", "stream", s.Stream, "rows", s.Rows, "duration", s.Duration.Round(time.Millisecond))
		for _, n := range s.Notes {
			log.Warn(n, "stream", s.Stream)
		}
	}
	if runErr != nil {
		return runErr
	}
	log.Info("sync done", "source", rep.Source, "rows", rep.Rows(), "requests", rep.Requests.Requests, "duration", rep.Duration.Round(time.Millisecond))
	return nil
}
