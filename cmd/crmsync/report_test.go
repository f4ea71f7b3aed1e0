package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/engine"
)

// TestReportNamesSetAsideValues: the values a sync set aside — timestamps that did not parse,
// records without a primary key — are counted, with a sample, in the printed report and in
// --report-json.
func TestReportNamesSetAsideValues(t *testing.T) {
	notes := []string{`values that did not parse as timestamps: 2, stored as NULL with the raw values in _crmsync_unparsed (e.g. date_updated = "yesterday" (id lead_1))`,
		`records without a primary key (id): 1, skipped, not stored (e.g. {"name":"x"})`}
	rep := engine.Report{Source: "close", Streams: []engine.StreamReport{{Stream: "leads", Method: catalog.Incremental, Rows: 5, Unparsed: 2, Skipped: 1, Notes: notes}}}
	var out bytes.Buffer
	(&app{stdout: &out}).printReport(rep, "sqlite:crm.db")
	for _, n := range notes {
		if !strings.Contains(out.String(), "note: "+n) {
			t.Errorf("printed report lacks %q:\n%s", n, out.String())
		}
	}
	b := reportJSON(t, rep)
	var got struct {
		Tables []struct {
			UnparsedValues int64    `json:"unparsed_values"`
			SkippedRecords int64    `json:"skipped_records"`
			Notes          []string `json:"notes"`
		} `json:"tables"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Tables) != 1 || got.Tables[0].UnparsedValues != 2 || got.Tables[0].SkippedRecords != 1 || len(got.Tables[0].Notes) != 2 {
		t.Fatalf("report JSON: %s", b)
	}
}

// reportJSON is what --report-json writes for rep.
func reportJSON(t *testing.T, rep engine.Report) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "report.json")
	if err := writeReportJSON(path, rep, "sqlite:crm.db"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestReportTimeAndRateLimitShare: the printed report and --report-json give each table's
// wall time and the share of it its requests spent waiting for the rate limit.
func TestReportTimeAndRateLimitShare(t *testing.T) {
	rep := engine.Report{Source: "copper", Duration: 95 * time.Second, Streams: []engine.StreamReport{
		{Stream: "people", Method: catalog.Incremental, Rows: 120000, Duration: 80 * time.Second, RateLimitWait: 20 * time.Second},
		{Stream: "users", Method: catalog.FullTable, Rows: 10, Duration: 0},
	}}
	var out bytes.Buffer
	(&app{stdout: &out}).printReport(rep, "sqlite:crm.db")
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^  TABLE +METHOD +ROWS +BOOKMARK +TIME +RATE-LIMITED +WAIT% +STATUS$`),
		regexp.MustCompile(`(?m)^  people +INCREMENTAL +120000 +- +1m20s +20s +25% +ok$`),
		regexp.MustCompile(`(?m)^  users +FULL_TABLE +10 +- +0s +0s +0% +ok$`),
	} {
		if !want.MatchString(out.String()) {
			t.Errorf("printed report does not match %s:\n%s", want, out.String())
		}
	}
	b := reportJSON(t, rep)
	var got struct {
		Tables []struct {
			Seconds              float64 `json:"seconds"`
			RateLimitWaitSeconds float64 `json:"rate_limit_wait_seconds"`
			RateLimitWaitShare   float64 `json:"rate_limit_wait_share"`
		} `json:"tables"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Tables) != 2 || got.Tables[0].Seconds != 80 || got.Tables[0].RateLimitWaitSeconds != 20 || got.Tables[0].RateLimitWaitShare != 0.25 ||
		got.Tables[1].RateLimitWaitShare != 0 {
		t.Fatalf("report JSON: %s", b)
	}
}

// TestReportSaysHowDeletesWereCaptured: per table, how deletions were found, how many rows
// were marked, what it cost and when they were last checked, printed and in --report-json.
func TestReportSaysHowDeletesWereCaptured(t *testing.T) {
	checked := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	rep := engine.Report{Source: "copper", Streams: []engine.StreamReport{
		{Stream: "people", Method: catalog.Incremental, Deletes: engine.DeletesReport{How: "id sweep", Marked: 3, Requests: 501, CheckedAt: checked}},
		{Stream: "companies", Method: catalog.Incremental, Deletes: engine.DeletesReport{How: "not due", CheckedAt: checked}},
		{Stream: "users", Method: catalog.FullTable},
	}}
	var out bytes.Buffer
	(&app{stdout: &out}).printReport(rep, "sqlite:crm.db")
	for _, want := range []string{
		"    deletes: id sweep, 3 marked, 501 requests, checked through 2026-03-01T12:00:00Z\n",
		"    deletes: not due, checked through 2026-03-01T12:00:00Z\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("printed report lacks %q:\n%s", want, out.String())
		}
	}
	if n := strings.Count(out.String(), "deletes:"); n != 2 {
		t.Errorf("%d deletes lines, want 2 (none for the full table):\n%s", n, out.String())
	}
	var got struct {
		Tables []struct {
			Deletes *struct {
				How       string `json:"how"`
				Marked    int64  `json:"marked"`
				Requests  int64  `json:"requests"`
				CheckedAt string `json:"checked_at"`
			} `json:"deletes"`
		} `json:"tables"`
	}
	if err := json.Unmarshal(reportJSON(t, rep), &got); err != nil {
		t.Fatal(err)
	}
	if d := got.Tables[0].Deletes; d == nil || d.How != "id sweep" || d.Marked != 3 || d.Requests != 501 || d.CheckedAt != "2026-03-01T12:00:00Z" {
		t.Errorf("report JSON deletes of people: %+v", d)
	}
	if got.Tables[2].Deletes != nil {
		t.Errorf("report JSON: a full table has deletes %+v", got.Tables[2].Deletes)
	}
}
