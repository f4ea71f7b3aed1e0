package copper_test

import (
	"cmp"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/apiclient"
	"github.com/crmsync/crmsync/internal/connector"
	"github.com/crmsync/crmsync/internal/e2e"
	"github.com/crmsync/crmsync/internal/simulator/coppersim"
	"github.com/crmsync/crmsync/internal/source"
	"github.com/crmsync/crmsync/internal/source/copper"
)

const (
	testKey   = "cu_TESTKEY0123456789abcdef"
	testEmail = "owner.secret@example.com"
)

// harness is one simulated Copper account (built with the knobs a test needs) synced into a
// fresh SQLite file, all on one fake clock: a test moves time instead of sleeping.
type harness struct {
	*e2e.Local
	sim *coppersim.Server
}

func newHarness(t *testing.T, cfg coppersim.Config) *harness {
	t.Helper()
	cfg.APIKey, cfg.UserEmail, cfg.Seed = testKey, testEmail, cmp.Or(cfg.Seed, 11)
	creds := map[string]string{"api_key": testKey, "user_email": testEmail}
	l, sim := e2e.NewClocked(t, copper.Descriptor, creds, 0, func(now func() time.Time) (*coppersim.Server, error) {
		cfg.Now = now
		return coppersim.New(cfg)
	})
	return &harness{Local: l, sim: sim}
}

func (h *harness) source(key, email string) source.Source {
	return h.Source(h.T(), map[string]string{"api_key": key, "user_email": email})
}

func TestAllTablesFullAndIncremental(t *testing.T) {
	h := newHarness(t, coppersim.Config{People: 600, Companies: 300, Leads: 300, Opportunities: 300, Projects: 80, Tasks: 300, Activities: 1200, Users: 8})
	rep := h.Sync()
	if len(rep.Streams) != 17 {
		t.Fatalf("synced %d tables, want all 17", len(rep.Streams))
	}
	h.Assert()
	for _, s := range rep.Streams {
		if s.Rows == 0 {
			t.Errorf("%s: no rows replicated", s.Stream)
		}
	}

	at := h.Clock.Now().UTC()
	h.sim.UpdateRecords("people", 7, at)
	h.sim.UpdateRecords("opportunities", 4, at)
	h.sim.AddRecords("companies", 3, at)
	h.sim.AddRecords("activities_search", 5, at)
	h.sim.DeleteRecords("people", 2, at) // gone from the source: the sweep marks them
	tags := h.sim.Snapshot("tags")
	h.sim.SetSmallList("tags", tags[1:]) // a full table shrinks: the replica must shrink too
	h.Settle()
	h.sim.ResetStats()
	rep = h.Sync()
	h.Assert()
	if n := rep.Stream("people").Rows; n < 7 || n > 50 {
		t.Errorf("incremental people read %d rows, want the 7 changed", n)
	}
	if reqs := h.sim.Stats().Requests; reqs > 40 {
		t.Errorf("incremental sync made %d requests; want about one per table", reqs)
	}
}

func TestSearchCeilingDoesNotTruncate(t *testing.T) {
	// With a 500-result ceiling, 3,000 people cannot be reached by paging one search.
	h := newHarness(t, coppersim.Config{People: 3000, Activities: 3000, Users: 2, MaxResults: 500})
	h.Sync("people", "activities_search")
	h.Assert("people", "activities_search")
}

func TestManyRecordsShareOneSecond(t *testing.T) {
	h := newHarness(t, coppersim.Config{People: 900, Users: 2, SameTimestamp: 450})
	h.Sync("people")
	h.Assert("people")
}

func TestFaultsStillConverge(t *testing.T) {
	h := newHarness(t, coppersim.Config{People: 400, Companies: 200, Leads: 100, Opportunities: 100, Projects: 20, Tasks: 100, Activities: 600, Users: 5})
	h.sim.SetFaults(coppersim.Faults{Seed: 9, Rate429: 0.05, Rate429NoHint: 0.05, Rate5xx: 0.05, RateTruncate: 0.05, RateBadJSON: 0.05, RateReset: 0.03})
	h.Sync()
	h.sim.SetFaults(coppersim.Faults{})
	h.Assert()
}

func TestLeadStatusesForbiddenIsSkippedNotFailed(t *testing.T) {
	off := false
	h := newHarness(t, coppersim.Config{People: 5, Users: 1, LeadsEnabled: &off})
	rep := h.Sync("lead_statuses", "people")
	if len(rep.Streams[0].Notes) == 0 {
		t.Fatal("lead_statuses: the report must say why it was skipped")
	}
}

func TestWrongCredentialsFailClearlyWithoutLeaking(t *testing.T) {
	h := newHarness(t, coppersim.Config{People: 5, Users: 1})
	for _, c := range []struct{ key, email string }{{"wrong-key-123456", testEmail}, {testKey, "someone.else@example.com"}} {
		err := h.source(c.key, c.email).Check(context.Background())
		var ae *apiclient.AuthError
		if !errors.As(err, &ae) || !strings.Contains(err.Error(), "COPPER_USER_EMAIL") || strings.Contains(err.Error(), c.key) || strings.Contains(err.Error(), c.email) {
			t.Fatalf("Check(%s): %v", c.key, err)
		}
	}
	if err := h.source(testKey, testEmail).Check(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestMissingEmailIsRejectedBeforeAnyRequest(t *testing.T) {
	if _, err := copper.Descriptor.Open(connector.Settings{Credentials: map[string]string{"api_key": testKey}}); err == nil || !strings.Contains(err.Error(), "COPPER_USER_EMAIL") {
		t.Fatalf("New without email: %v", err)
	}
}

func TestSecretsNeverStored(t *testing.T) {
	h := newHarness(t, coppersim.Config{People: 50, Companies: 20, Activities: 50, Users: 3})
	h.Sync()
	h.Dst.Close()
	// The owner's email is legitimately in the users table; the key must be nowhere.
	e2e.AssertNoSecrets(t, h.Path, testKey)
}

// TestProgressCarriesTheAnnouncedTotal: the engine hands the live display the X-PW-TOTAL of
// each search, summed over a first sync's parallel windows; on an account that does not change
// while it is read, that is exactly the rows written.
func TestProgressCarriesTheAnnouncedTotal(t *testing.T) {
	h := newHarness(t, coppersim.Config{People: 3000, Companies: 300, Leads: 300, Opportunities: 300, Projects: 80, Tasks: 300, Activities: 1200, Users: 8})
	rep, last := h.SyncWatched()
	for _, name := range []string{"people", "companies", "leads", "opportunities", "projects", "tasks", "activities_search"} {
		if got, rows := last[name].Expected, rep.Stream(name).Rows; got != rows || rows == 0 {
			t.Errorf("%s: progress announced %d records, %d rows written", name, got, rows)
		}
	}
	if got := last["users"].Expected; got != 0 {
		t.Errorf("users (paged without a total): progress announced %d records, want 0 (unknown)", got)
	}
}
