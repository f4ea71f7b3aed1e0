package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/config"
	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/engine"
	"github.com/crmsync/crmsync/internal/source"
	"github.com/crmsync/crmsync/internal/sources"
	"github.com/crmsync/crmsync/internal/syncsetup"
)

// allCatalogs lists every source's catalog, in registry order.
func allCatalogs() []catalog.Catalog {
	var cats []catalog.Catalog
	for _, d := range sources.All() {
		cats = append(cats, d.Catalog())
	}
	return cats
}

// newSource builds the source named in cfg from its descriptor; its client logs requests and
// retries to log.
func newSource(cfg config.Config, log *slog.Logger) (source.Source, error) {
	return syncsetup.NewSource(cfg, log, "crmsync/"+version)
}

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func (a *app) runSync(cmd *cobra.Command, cfg config.Config, opts syncOptions) error {
	ctx := cmd.Context()
	// The logger writes through logs, which the live progress display redirects above itself.
	logs := &switchWriter{w: a.stderr, stderr: a.stderr}
	la := *a
	la.stderr = logs
	log, err := newLogger(cfg, &la)
	if err != nil {
		return err
	}
	now := time.Now
	if opts.now != nil {
		now = opts.now
	}
	if opts.reportJSON != "" {
		if st, err := os.Stat(filepath.Dir(opts.reportJSON)); err != nil || !st.IsDir() {
			return usageError{fmt.Errorf("report-json: %s: the directory does not exist", opts.reportJSON)}
		}
	}
	s, err := syncsetup.Prepare(ctx, cfg, syncsetup.Params{Log: log, UserAgent: "crmsync/" + version, Now: now, FullRefresh: opts.fullRefresh})
	var bad *syncsetup.SettingsError
	var badDest *syncsetup.DestError
	if errors.As(err, &bad) || errors.As(err, &badDest) {
		return usageError{err}
	} else if err != nil {
		return err
	}
	defer s.Close()
	eopts := s.Options
	src, selected, destName := s.Source, s.Selected, s.DestName
	ps := progressSetup{force: opts.progress, jsonLogs: strings.EqualFold(cfg.LogFormat, "json"), logs: logs}
	for _, st := range selected {
		ps.streams = append(ps.streams, st.Name)
	}
	stopProgress := a.startProgress(&eopts, src, ps)
	rep, err := engine.Run(ctx, src, s.Dest, eopts)
	stopProgress()
	var reportErr error
	if len(rep.Streams) > 0 {
		a.printReport(rep, destName)
		if opts.reportJSON != "" {
			if reportErr = writeReportJSON(opts.reportJSON, rep, destName); reportErr != nil {
				fmt.Fprintln(a.stderr, "crmsync: report:", reportErr)
			}
		}
	}
	if err == nil && reportErr != nil {
		// The data is committed; a scheduler must still learn that its report is missing.
		return fmt.Errorf("the sync is committed, but --report-json could not be written: %w", reportErr)
	}
	if err != nil {
		for _, f := range rep.Failed() {
			fmt.Fprintf(a.stderr, "crmsync: %s.%s failed: %v\n", cfg.Source, f.Stream, f.Err)
		}
		if ctx.Err() != nil {
			fmt.Fprintln(a.stderr, "crmsync: stopped: every committed batch is kept; run the same command again to resume")
			return context.Canceled
		}
		if errors.Is(err, destination.ErrLocked) {
			return err
		}
		if len(rep.Failed()) > 0 {
			return fmt.Errorf("%d of %d tables failed; the others are committed, and a rerun resumes the failed ones", len(rep.Failed()), len(rep.Streams))
		}
		return err
	}
	return nil
}

func (a *app) printReport(rep engine.Report, dest string) {
	w := a.stdout
	fmt.Fprintf(w, "%s → %s: %d rows in %s\n", rep.Source, dest, rep.Rows(), rep.Duration.Round(time.Millisecond))
	fmt.Fprintf(w, "  %-26s %-12s %10s  %-27s %-10s %-14s %6s  %s\n", "TABLE", "METHOD", "ROWS", "BOOKMARK", "TIME", "RATE-LIMITED", "WAIT%", "STATUS")
	for _, s := range rep.Streams {
		status := "ok"
		if s.Err != nil {
			status = "FAILED"
		}
		bm := "-"
		if !s.Bookmark.IsZero() {
			bm = s.Bookmark.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(w, "  %-26s %-12s %10d  %-27s %-10s %-14s %6s  %s\n", s.Stream, s.Method, s.Rows, bm, s.Duration.Round(100*time.Millisecond),
			s.RateLimitWait.Round(100*time.Millisecond), fmt.Sprintf("%.0f%%", 100*waitShare(s)), status)
		if line := deletesLine(s.Deletes); line != "" {
			fmt.Fprintf(w, "    deletes: %s\n", line)
		}
		for _, n := range s.Notes {
			fmt.Fprintf(w, "    note: %s\n", n)
		}
	}
	fmt.Fprintf(w, "  requests: %d, retries: %d, rate-limited (429): %d; RATE-LIMITED is the time a table's requests waited for rate limits (summed over parallel requests), WAIT%% that time over the table's wall TIME\n",
		rep.Requests.Requests, rep.Requests.Retries, rep.Requests.RateLimited)
}

// deletesLine says how a table's deletions were captured: how, what it found and cost, and
// when they were last checked (for an id sweep: when the last one ran).
func deletesLine(d engine.DeletesReport) string {
	if d.How == "" {
		return ""
	}
	line := d.How
	if d.How != "first sync" && d.How != "not due" {
		line += fmt.Sprintf(", %d marked, %d requests", d.Marked, d.Requests)
		if d.Reread > 0 {
			line += fmt.Sprintf(", %d edited records read again", d.Reread)
		}
	}
	if !d.CheckedAt.IsZero() {
		line += ", checked through " + d.CheckedAt.UTC().Format(time.RFC3339)
	}
	return line
}

// waitShare is the time a table's requests waited for rate limits over its wall time.
func waitShare(s engine.StreamReport) float64 {
	if s.Duration <= 0 {
		return 0
	}
	return math.Round(1000*s.RateLimitWait.Seconds()/s.Duration.Seconds()) / 1000
}

type reportStreamJSON struct {
	Table    string  `json:"table"`
	Method   string  `json:"method"`
	Rows     int64   `json:"rows"`
	From     string  `json:"from,omitempty"`
	To       string  `json:"to,omitempty"`
	Bookmark string  `json:"bookmark,omitempty"`
	Seconds  float64 `json:"seconds"`
	// RateLimitWaitSeconds is the time the table's requests waited for rate limits.
	RateLimitWaitSeconds float64 `json:"rate_limit_wait_seconds"`
	// RateLimitWaitShare is RateLimitWaitSeconds over Seconds, the table's wall time (parallel
	// requests add up, so a table read in parallel slices can pass 1).
	RateLimitWaitShare float64 `json:"rate_limit_wait_share"`
	// UnparsedValues counts values that did not parse as timestamps (stored NULL, the raw
	// values in _crmsync_unparsed); SkippedRecords the records skipped for lack of a primary
	// key. The notes give a sample of each.
	UnparsedValues int64    `json:"unparsed_values,omitempty"`
	SkippedRecords int64    `json:"skipped_records,omitempty"`
	Notes          []string `json:"notes,omitempty"`
	Error          string   `json:"error,omitempty"`
	// Deletes says how deletions in the source were captured (absent for tables that do not
	// capture them this way: full tables, the event log).
	Deletes *deletesJSON `json:"deletes,omitempty"`
}

type deletesJSON struct {
	How      string `json:"how"` // event log, id sweep, not due, first sync
	Marked   int64  `json:"marked"`
	Reread   int64  `json:"reread,omitempty"` // late edits read again (Close activities)
	Requests int64  `json:"requests"`
	// CheckedAt: deletions up to this instant are reflected in the table; for an id sweep,
	// when the last one started.
	CheckedAt string `json:"checked_at,omitempty"`
}

func writeReportJSON(path string, rep engine.Report, dest string) error {
	out := struct {
		Source      string             `json:"source"`
		Destination string             `json:"destination"`
		StartedAt   string             `json:"started_at"`
		Seconds     float64            `json:"seconds"`
		Rows        int64              `json:"rows"`
		Requests    int64              `json:"requests"`
		Retries     int64              `json:"retries"`
		RateLimited int64              `json:"rate_limited"`
		Tables      []reportStreamJSON `json:"tables"`
	}{rep.Source, dest, rep.StartedAt.Format(time.RFC3339), rep.Duration.Seconds(), rep.Rows(),
		rep.Requests.Requests, rep.Requests.Retries, rep.Requests.RateLimited, nil}
	for _, s := range rep.Streams {
		r := reportStreamJSON{Table: s.Stream, Method: string(s.Method), Rows: s.Rows, Seconds: s.Duration.Seconds(),
			RateLimitWaitSeconds: s.RateLimitWait.Seconds(), RateLimitWaitShare: waitShare(s), UnparsedValues: s.Unparsed, SkippedRecords: s.Skipped, Notes: s.Notes}
		if !s.From.IsZero() {
			r.From, r.To = s.From.Format(time.RFC3339), s.To.Format(time.RFC3339)
		}
		if !s.Bookmark.IsZero() {
			r.Bookmark = s.Bookmark.Format(time.RFC3339Nano)
		}
		if s.Err != nil {
			r.Error = s.Err.Error()
		}
		if d := s.Deletes; d.How != "" {
			r.Deletes = &deletesJSON{How: d.How, Marked: d.Marked, Reread: d.Reread, Requests: d.Requests}
			if !d.CheckedAt.IsZero() {
				r.Deletes.CheckedAt = d.CheckedAt.UTC().Format(time.RFC3339)
			}
		}
		out.Tables = append(out.Tables, r)
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o600)
}

// discoverJSON is the catalog as printed by discover.
func discoverJSON(cat catalog.Catalog) any {
	type streamJSON struct {
		Name              string         `json:"name"`
		Description       string         `json:"description,omitempty"`
		PrimaryKey        []string       `json:"primary_key"`
		ReplicationMethod string         `json:"replication_method"`
		ReplicationKey    string         `json:"replication_key,omitempty"`
		AttributionWindow string         `json:"attribution_window,omitempty"`
		HistoryLimit      string         `json:"history_limit,omitempty"`
		Deletes           string         `json:"deletes"`
		Schema            map[string]any `json:"schema"`
	}
	out := struct {
		Source        string       `json:"source"`
		SchemaVersion int          `json:"schema_version"`
		Streams       []streamJSON `json:"streams"`
	}{Source: cat.Source, SchemaVersion: cat.SchemaVersion}
	for _, s := range cat.Streams {
		sj := streamJSON{Name: s.Name, Description: s.Description, PrimaryKey: s.PrimaryKey, ReplicationMethod: string(s.Method),
			ReplicationKey: s.CursorField, Schema: s.JSONSchema()}
		if s.Lookback > 0 {
			sj.AttributionWindow = s.Lookback.String()
		}
		if s.MaxHistory > 0 {
			sj.HistoryLimit = fmt.Sprintf("%d days", int(s.MaxHistory.Hours()/24))
		}
		sj.Deletes = deletesCapture(s)
		out.Streams = append(out.Streams, sj)
	}
	return out
}

// deletesCapture says, for discover, how a table learns of records deleted in the source.
func deletesCapture(s catalog.Stream) string {
	switch s.Deletes {
	case catalog.DeletesReplaced:
		return "replaced: every sync reads the whole table and swaps it in, so deleted records are gone"
	case catalog.DeletesByEvents:
		return "event log: every sync reads the deletions announced since the last one and marks those rows (_crmsync_deleted_at); an id sweep when the last sync is older than the log's 30 days"
	case catalog.DeletesBySweep:
		return "id sweep: every reconcile_every (default 24h) the ids the API has are listed and rows of the others marked (_crmsync_deleted_at); costs a read of the table"
	}
	return "not captured: rows stay as they were last read"
}
