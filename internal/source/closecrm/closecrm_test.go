package closecrm_test

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/apiclient"
	"github.com/crmsync/crmsync/internal/destination/sqlite"
	"github.com/crmsync/crmsync/internal/e2e"
	"github.com/crmsync/crmsync/internal/simulator/closesim"
	"github.com/crmsync/crmsync/internal/source"
	"github.com/crmsync/crmsync/internal/source/closecrm"
)

const testKey = "api_TESTKEYtestkey1234567.secretpart0123456789"

// harness is one simulated Close account (built with the knobs a test needs) synced into a
// fresh SQLite file, all on one fake clock: a test moves time instead of sleeping.
type harness struct {
	*e2e.Local
	sim *closesim.Server
}

func newHarness(t *testing.T, cfg closesim.Config) *harness { return newSkewedHarness(t, cfg, 0) }

// newSkewedHarness runs the API's clock skew ahead of ours (behind when negative).
func newSkewedHarness(t *testing.T, cfg closesim.Config, skew time.Duration) *harness {
	t.Helper()
	cfg.APIKey, cfg.Seed = testKey, cmp.Or(cfg.Seed, 7)
	l, sim := e2e.NewClocked(t, closecrm.Descriptor, map[string]string{"api_key": testKey}, skew, func(now func() time.Time) (*closesim.Server, error) {
		cfg.Now = now
		return closesim.New(cfg)
	})
	return &harness{Local: l, sim: sim}
}

func (h *harness) source(key string) source.Source {
	return h.Source(h.T(), map[string]string{"api_key": key})
}

func TestFullAndIncrementalSync(t *testing.T) {
	h := newHarness(t, closesim.Config{Leads: 700, Activities: 1500, Tasks: 400, Users: 30, CustomFields: 20, Events: 900})
	rep := h.Sync()
	h.Assert()
	for _, s := range rep.Streams {
		if s.Stream == "event_log" && len(s.Notes) == 0 {
			t.Error("event_log: the report must say that history was clipped to 30 days")
		}
	}

	// A live account changes: the next sync picks up exactly that.
	at := h.Clock.Now().UTC()
	h.sim.UpdateRecords("leads", 12, at)
	h.sim.AddRecords("activities", 9, at)
	h.sim.UpdateRecords("tasks", 5, at)
	h.Settle()
	h.sim.ResetStats()
	rep = h.Sync()
	h.Assert()
	if n := rep.Stream("leads").Rows; n < 12 || n > 100 {
		t.Errorf("incremental leads read %d rows, want the 12 changed (plus the bookmark minute)", n)
	}
	if reqs := h.sim.Stats().Requests; reqs > 30 {
		t.Errorf("incremental sync made %d requests; it should read only what changed", reqs)
	}
}

func TestDeepPagingBeyondSkipCap(t *testing.T) {
	// With a cap of 150 on _skip, 2,000 records cannot be reached by offset paging alone.
	h := newHarness(t, closesim.Config{Leads: 2000, Activities: 2000, Tasks: 2500, Users: 3, CustomFields: 3, Events: 10, MaxSkip: 150})
	// About 800 opportunities: past the cap too.
	h.Sync("leads", "activities", "tasks", "contacts", "opportunities")
	h.Assert("leads", "activities", "tasks", "contacts", "opportunities")
}

func TestManyRecordsShareOneTimestamp(t *testing.T) {
	h := newHarness(t, closesim.Config{Leads: 600, Activities: 600, Users: 2, CustomFields: 2, SameTimestamp: 450})
	h.Sync("leads", "activities")
	h.Assert("leads", "activities")
}

func TestFutureDatedRecordsDoNotPushTheBookmark(t *testing.T) {
	h := newHarness(t, closesim.Config{Leads: 200, Activities: 200, Users: 2, CustomFields: 2, FutureDated: 5})
	started := h.Clock.Now()
	rep := h.Sync("leads", "activities")
	for _, s := range rep.Streams {
		if s.Bookmark.After(started.Add(time.Second)) {
			t.Errorf("%s: bookmark %s is past the sync start %s", s.Stream, s.Bookmark, started)
		}
	}
	// A record updated after the sync, dated before the future-dated ones, is still read.
	h.Settle()
	ids := h.sim.UpdateRecords("leads", 3, h.Clock.Now().UTC())
	h.Sync("leads")
	var n int
	h.Dst.DB().QueryRow(`SELECT count(*) FROM leads WHERE id IN (?, ?, ?) AND date_updated > ?`, ids[0], ids[1], ids[2], started.UTC().Format(sqlite.TimeLayout)).Scan(&n)
	if n != 3 {
		t.Fatalf("%d of the 3 leads updated after the first sync were read by the second", n)
	}
}

func TestFaultsStillConverge(t *testing.T) {
	h := newHarness(t, closesim.Config{Leads: 500, Activities: 800, Tasks: 200, Users: 10, CustomFields: 10, Events: 300})
	h.sim.SetFaults(closesim.Faults{Seed: 3, Rate429: 0.05, Rate429NoHint: 0.03, Rate5xx: 0.05, RateTruncate: 0.05, RateBadJSON: 0.05, RateReset: 0.03})
	h.Sync()
	h.sim.SetFaults(closesim.Faults{})
	h.Assert()
	if f := h.sim.Stats().Faults; len(f) == 0 {
		t.Fatal("no faults were injected; the test proves nothing")
	}
}

func TestMutationsBetweenPagesAreCaughtUp(t *testing.T) {
	h := newHarness(t, closesim.Config{Leads: 1200, Activities: 1200, Tasks: 1200, Users: 5, CustomFields: 5, Events: 100})
	h.sim.SetFaults(closesim.Faults{Seed: 5, MutateBetweenPages: 0.5})
	h.Sync("leads", "tasks", "users", "contacts")
	h.sim.SetFaults(closesim.Faults{})
	// What one sync misses because the data moved under it, the next one picks up,
	// deletions included (the event log, or the users' sweep).
	h.Settle()
	h.Sync("leads", "tasks", "users", "contacts")
	h.Assert("leads", "tasks", "users", "contacts")
}

func TestWrongKeyFailsClearlyWithoutLeakingIt(t *testing.T) {
	h := newHarness(t, closesim.Config{Leads: 5, Users: 1})
	wrong := "api_WRONGwrongWRONG.wrongwrongwrong"
	err := h.source(wrong).Check(context.Background())
	var ae *apiclient.AuthError
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "CLOSE_API_KEY") || strings.Contains(err.Error(), wrong) {
		t.Fatalf("Check with a wrong key: %v", err)
	}
	if err := h.source(testKey).Check(context.Background()); err != nil {
		t.Fatalf("Check with the right key: %v", err)
	}
}

func TestKeyNeverStored(t *testing.T) {
	h := newHarness(t, closesim.Config{Leads: 50, Activities: 50, Tasks: 20, Users: 3, CustomFields: 3, Events: 20})
	h.Sync()
	h.Dst.Close()
	e2e.AssertNoSecrets(t, h.Path, testKey, "TESTKEYtestkey")
}

// TestAPIClockSkew: the API's clock runs minutes behind or ahead of ours. A record the API
// stamps with its own (earlier) time after our sync began must still be read by the next sync.
func TestAPIClockSkew(t *testing.T) {
	for _, skew := range []time.Duration{-10 * time.Minute, 7 * time.Minute} {
		t.Run(skew.String(), func(t *testing.T) {
			h := newSkewedHarness(t, closesim.Config{Seed: 5, Leads: 300, Tasks: 100, Users: 2, CustomFields: 2}, skew)
			h.Sync("leads", "tasks")
			apiNow := h.Clock.Now().Add(skew).UTC()
			h.sim.UpdateRecords("leads", 4, apiNow)
			h.sim.UpdateRecords("tasks", 4, apiNow)
			h.Settle()
			h.Sync("leads", "tasks")
			h.Assert("leads", "tasks")
		})
	}
}

// TestProgressCarriesTheAnnouncedTotal: the lead listing's total_results, summed over a first
// sync's parallel windows, reaches the live display; on a still account it is the rows
// written. Listings without a total announce none.
func TestProgressCarriesTheAnnouncedTotal(t *testing.T) {
	h := newHarness(t, closesim.Config{Leads: 900, Activities: 300, Tasks: 100, Users: 5, CustomFields: 5, Events: 100})
	rep, last := h.SyncWatched()
	if got, rows := last["leads"].Expected, rep.Stream("leads").Rows; got != rows || rows == 0 {
		t.Errorf("leads: progress announced %d records, %d rows written", got, rows)
	}
	if got := last["activities"].Expected; got != 0 {
		t.Errorf("activities (no total_results): progress announced %d records, want 0 (unknown)", got)
	}
}

// TestFirstSyncLoadsWithoutTheKeyIndex: into SQLite a first sync appends rows to tables
// without their key index and builds each index once at the end; nothing is left loading, the
// replica equals the account, and the next sync upserts through the indexes.
func TestFirstSyncLoadsWithoutTheKeyIndex(t *testing.T) {
	h := newHarness(t, closesim.Config{Leads: 900, Activities: 1200, Tasks: 300, Users: 5, CustomFields: 5, Events: 200})
	var logs strings.Builder
	opts := h.Options()
	opts.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e2e.SyncWith(t, h.Source(t), h.Dst, opts)
	h.Assert()
	for _, table := range []string{"leads", "activities", "tasks", "event_log"} {
		if !strings.Contains(logs.String(), `msg="key index built" stream=`+table+" ") {
			t.Errorf("%s: no key index built after the first sync:\n%s", table, logs.String())
		}
	}
	var loading, indexes int
	db := h.Dst.DB()
	if err := db.QueryRow(`SELECT (SELECT count(*) FROM _crmsync_loading), (SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name IN ('ux_leads_key', 'ux_activities_version'))`).Scan(&loading, &indexes); err != nil {
		t.Fatal(err)
	}
	if loading != 0 || indexes != 2 {
		t.Errorf("after the first sync: %d tables still loading, %d of 2 key indexes", loading, indexes)
	}

	logs.Reset()
	at := h.Clock.Now().UTC()
	h.sim.UpdateRecords("leads", 12, at)
	h.Settle()
	e2e.SyncWith(t, h.Source(t), h.Dst, opts)
	h.Assert()
	if strings.Contains(logs.String(), "key index built") {
		t.Errorf("an incremental sync loaded a table:\n%s", logs.String())
	}
}
