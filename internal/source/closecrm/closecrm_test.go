package closecrm_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/apiclient"
	"github.com/crmsync/crmsync/internal/destination/sqlite"
	"github.com/crmsync/crmsync/internal/engine"
	"github.com/crmsync/crmsync/internal/simulator/closesim"
	"github.com/crmsync/crmsync/internal/source/closecrm"
	"github.com/crmsync/crmsync/internal/synctest"
)

const testKey = "api_TESTKEYtestkey1234567.secretpart0123456789"

type harness struct {
	t    *testing.T
	sim  *closesim.Server
	url  string
	path string
	dst  *sqlite.Destination
}

func newHarness(t *testing.T, cfg closesim.Config) *harness {
	t.Helper()
	cfg.APIKey = testKey
	if cfg.Seed == 0 {
		cfg.Seed = 7
	}
	sim, err := closesim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	dst, path := synctest.OpenSQLite(t)
	return &harness{t: t, sim: sim, url: srv.URL, path: path, dst: dst}
}

func (h *harness) source(key string) *closecrm.Source {
	h.t.Helper()
	src, err := closecrm.New(closecrm.Config{APIKey: key, BaseURL: h.url, Tuning: apiclient.Tuning{RequestsPerSecond: -1, BaseBackoff: time.Millisecond, MaxAttempts: 12, Timeout: 5 * time.Second}})
	if err != nil {
		h.t.Fatal(err)
	}
	return src
}

func (h *harness) sync(streams ...string) engine.Report {
	h.t.Helper()
	return synctest.Sync(h.t, h.source(testKey), h.dst, streams...)
}

var tables = map[string]synctest.Table{
	"activities":    {Name: "activities", Key: "id", AppendOnly: true},
	"custom_fields": {Name: "custom_fields", Key: "id", Version: "date_updated"},
	"event_log":     {Name: "event_log", Key: "id", Version: "date_updated"},
	"leads":         {Name: "leads", Key: "id", Version: "date_updated"},
	"tasks":         {Name: "tasks", Key: "id", Version: "date_updated"},
	"users":         {Name: "users", Key: "id", Version: "date_updated"},
}

func (h *harness) assertReplica(names ...string) {
	h.t.Helper()
	if len(names) == 0 {
		for n := range tables {
			names = append(names, n)
		}
	}
	for _, n := range names {
		synctest.AssertReplica(h.t, synctest.SQLiteReplica(h.dst.DB()), h.sim, tables[n])
	}
}

func TestFullAndIncrementalSync(t *testing.T) {
	h := newHarness(t, closesim.Config{Leads: 700, Activities: 1500, Tasks: 400, Users: 30, CustomFields: 20, Events: 900})
	rep := h.sync()
	h.assertReplica()
	for _, s := range rep.Streams {
		if s.Stream == "event_log" && len(s.Notes) == 0 {
			t.Error("event_log: the report must say that history was clipped to 30 days")
		}
	}

	// A live account changes: the next sync picks up exactly that.
	at := time.Now().UTC()
	h.sim.UpdateRecords("leads", 12, at)
	h.sim.AddRecords("activities", 9, at)
	h.sim.UpdateRecords("tasks", 5, at)
	time.Sleep(synctest.ClockSlack)
	h.sim.ResetStats()
	rep = h.sync()
	h.assertReplica()
	byName := map[string]engine.StreamReport{}
	for _, s := range rep.Streams {
		byName[s.Stream] = s
	}
	if n := byName["leads"].Rows; n < 12 || n > 100 {
		t.Errorf("incremental leads read %d rows, want the 12 changed (plus the bookmark minute)", n)
	}
	if reqs := h.sim.Stats().Requests; reqs > 30 {
		t.Errorf("incremental sync made %d requests; it should read only what changed", reqs)
	}
}

func TestDeepPagingBeyondSkipCap(t *testing.T) {
	// With a cap of 150 on _skip, 2,000 records cannot be reached by offset paging alone.
	h := newHarness(t, closesim.Config{Leads: 2000, Activities: 2000, Tasks: 2500, Users: 3, CustomFields: 3, Events: 10, MaxSkip: 150})
	h.sync("leads", "activities", "tasks")
	h.assertReplica("leads", "activities", "tasks")
}

func TestManyRecordsShareOneTimestamp(t *testing.T) {
	h := newHarness(t, closesim.Config{Leads: 600, Activities: 600, Users: 2, CustomFields: 2, SameTimestamp: 450})
	h.sync("leads", "activities")
	h.assertReplica("leads", "activities")
}

func TestFutureDatedRecordsDoNotPushTheBookmark(t *testing.T) {
	h := newHarness(t, closesim.Config{Leads: 200, Activities: 200, Users: 2, CustomFields: 2, FutureDated: 5})
	started := time.Now()
	rep := h.sync("leads", "activities")
	for _, s := range rep.Streams {
		if s.Bookmark.After(started.Add(time.Second)) {
			t.Errorf("%s: bookmark %s is past the sync start %s", s.Stream, s.Bookmark, started)
		}
	}
	// A record updated after the sync, dated before the future-dated ones, is still read.
	time.Sleep(synctest.ClockSlack)
	ids := h.sim.UpdateRecords("leads", 3, time.Now().UTC())
	h.sync("leads")
	var n int
	h.dst.DB().QueryRow(`SELECT count(*) FROM leads WHERE id IN (?, ?, ?) AND date_updated > ?`, ids[0], ids[1], ids[2], started.UTC().Format(sqlite.TimeLayout)).Scan(&n)
	if n != 3 {
		t.Fatalf("%d of the 3 leads updated after the first sync were read by the second", n)
	}
}

func TestFaultsStillConverge(t *testing.T) {
	h := newHarness(t, closesim.Config{Leads: 500, Activities: 800, Tasks: 200, Users: 10, CustomFields: 10, Events: 300})
	h.sim.SetFaults(closesim.Faults{Seed: 3, Rate429: 0.05, Rate429NoHint: 0.03, Rate5xx: 0.05, RateTruncate: 0.05, RateBadJSON: 0.05, RateReset: 0.03})
	h.sync()
	h.sim.SetFaults(closesim.Faults{})
	h.assertReplica()
	if f := h.sim.Stats().Faults; len(f) == 0 {
		t.Fatal("no faults were injected; the test proves nothing")
	}
}

func TestMutationsBetweenPagesAreCaughtUp(t *testing.T) {
	h := newHarness(t, closesim.Config{Leads: 1200, Activities: 1200, Tasks: 1200, Users: 5, CustomFields: 5, Events: 100})
	h.sim.SetFaults(closesim.Faults{Seed: 5, MutateBetweenPages: 0.5})
	h.sync("leads", "tasks", "users")
	h.sim.SetFaults(closesim.Faults{})
	// What one sync misses because the data moved under it, the next one picks up.
	time.Sleep(synctest.ClockSlack)
	h.sync("leads", "tasks", "users")
	h.assertReplica("leads", "tasks", "users")
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
	h.sync()
	h.dst.Close()
	synctest.AssertNoSecrets(t, h.path, testKey, "TESTKEYtestkey")
}

// TestAPIClockSkew: the API's clock runs minutes behind or ahead of ours. A record the API
// stamps with its own (earlier) time after our sync began must still be read by the next sync.
func TestAPIClockSkew(t *testing.T) {
	for _, skew := range []time.Duration{-10 * time.Minute, 7 * time.Minute} {
		t.Run(skew.String(), func(t *testing.T) {
			apiNow := func() time.Time { return time.Now().Add(skew) }
			sim, err := closesim.New(closesim.Config{Seed: 5, APIKey: testKey, Leads: 300, Tasks: 100, Users: 2, CustomFields: 2, Now: apiNow})
			if err != nil {
				t.Fatal(err)
			}
			// The API's Date header tells its clock, as a real server's does.
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Date", apiNow().UTC().Format(http.TimeFormat))
				sim.ServeHTTP(w, r)
			}))
			defer srv.Close()
			dst, _ := synctest.OpenSQLite(t)
			h := &harness{t: t, sim: sim, url: srv.URL, dst: dst}
			h.sync("leads", "tasks")
			h.sim.UpdateRecords("leads", 4, apiNow().UTC())
			h.sim.UpdateRecords("tasks", 4, apiNow().UTC())
			time.Sleep(synctest.ClockSlack)
			h.sync("leads", "tasks")
			h.assertReplica("leads", "tasks")
		})
	}
}
