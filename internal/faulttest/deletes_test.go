package faulttest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/connector"
	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/e2e"
	"github.com/crmsync/crmsync/internal/engine"
	"github.com/crmsync/crmsync/internal/fakeclock"
	"github.com/crmsync/crmsync/internal/simulator/closesim"
	"github.com/crmsync/crmsync/internal/simulator/coppersim"
	"github.com/crmsync/crmsync/internal/simulator/simfault"
	"github.com/crmsync/crmsync/internal/source/closecrm"
	"github.com/crmsync/crmsync/internal/source/copper"
)

// deletionAccount is a simulated account on a fake clock, synced into dest.
type deletionAccount struct {
	*e2e.Account
	dest string
	dst  destination.Destination
	opts engine.Options
}

func newDeletionAccount(t *testing.T, d connector.Descriptor, dest string, sim func(now func() time.Time) (connector.Simulator, error)) *deletionAccount {
	t.Helper()
	clock := fakeclock.New(time.Now().UTC())
	s, err := sim(clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	a := e2e.NewAccount(t, d, e2e.Options{Sim: s, Clock: clock, SimConfig: connector.SimConfig{Credentials: creds}})
	return &deletionAccount{Account: a, dest: dest, dst: e2e.OpenDest(t, dest, d.Name), opts: a.Options()}
}

func (a *deletionAccount) sync(t *testing.T) engine.Report {
	t.Helper()
	a.Settle()
	opts := a.opts
	opts.Now = a.Clock.Now
	return e2e.SyncWith(t, a.Source(t), a.dst, opts)
}

func (a *deletionAccount) assert(t *testing.T, names ...string) {
	t.Helper()
	a.AssertReplica(t, e2e.OpenReplica(t, a.dest, a.Desc.Name), names...)
}

// liveRows counts a table's rows by whether they are marked deleted.
func (a *deletionAccount) rows(t *testing.T, table string) (live, marked int) {
	t.Helper()
	r := e2e.OpenReplica(t, a.dest, a.Desc.Name)
	err := r.DB.QueryRow(fmt.Sprintf(`SELECT count(*) FILTER (WHERE %[1]q IS NULL), count(*) FILTER (WHERE %[1]q IS NOT NULL) FROM %[2]s`,
		destination.DeletedAtColumn, r.Ref(table))).Scan(&live, &marked)
	if err != nil {
		t.Fatal(err)
	}
	return live, marked
}

// TestCloseDeletionsAndLateEdits: leads deleted (with their activities and tasks) and merged
// away, tasks, custom fields and users deleted, and activities edited long after their
// creation all reach the replica with the next sync: deleted rows marked, the activities'
// new versions appended. Both ways the API may announce a merge; both destinations.
func TestCloseDeletionsAndLateEdits(t *testing.T) {
	for destName, newDest := range e2e.Destinations() {
		for _, mergeDeletes := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/merge-emits-deleted=%v", destName, mergeDeletes), func(t *testing.T) {
				t.Parallel()
				a := newDeletionAccount(t, closecrm.Descriptor, newDest(t), func(now func() time.Time) (connector.Simulator, error) {
					return closesim.New(closesim.Config{Seed: 41, APIKey: key, Leads: 300, Activities: 900, Tasks: 300, Users: 8, CustomFields: 12,
						Events: 200, MergeEmitsDeleted: mergeDeletes, Now: now})
				})
				sim := a.Sim.(*closesim.Server)
				a.sync(t)
				a.assert(t)

				at := a.Clock.Now()
				deleted := sim.DeleteRecords("leads", 6, at)
				merged := sim.MergeLeads(3, at)
				sim.DeleteRecords("tasks", 4, at)
				sim.DeleteRecords("activities", 5, at)
				sim.DeleteRecords("custom_fields", 2, at)
				sim.DeleteRecords("users", 1, at)
				edited := sim.UpdateRecords("activities", 20, at) // most created long before the 24-hour window
				rep := a.sync(t)
				a.assert(t)

				leads := rep.Stream("leads").Deletes
				if leads.How != "event log" || leads.Marked != int64(len(deleted)+len(merged)) {
					t.Errorf("leads: deletes %+v, want %d marked from the event log", leads, len(deleted)+len(merged))
				}
				if acts := rep.Stream("activities").Deletes; acts.Reread < int64(len(edited)) || acts.Marked < 5 {
					t.Errorf("activities: deletes %+v, want ≥ %d re-read and ≥ 5 marked (and those of the deleted leads)", acts, len(edited))
				}
				if users := rep.Stream("users").Deletes; users.How != "id sweep" || users.Marked != 1 {
					t.Errorf("users: deletes %+v, want 1 marked by an id sweep", users)
				}
				// Nothing changed: one walk of the event log serves every table. (The sync right
				// after the changes reads their events again: each read starts 5 minutes before
				// the last one began, for events the API publishes late.)
				a.Clock.Advance(10 * time.Minute)
				a.sync(t)
				quiet := a.sync(t)
				a.assert(t)
				var extra int64
				for _, s := range quiet.Streams {
					extra += s.Deletes.Requests
					if s.Deletes.Marked != 0 || s.Deletes.Reread != 0 {
						t.Errorf("%s: nothing changed, yet deletes %+v", s.Stream, s.Deletes)
					}
				}
				if extra != 2 {
					t.Errorf("a sync with nothing changed spent %d requests on deletions, want 2 (one event-log page, one users sweep)", extra)
				}
			})
		}
	}
}

// TestCloseContactsAndOpportunities: contacts and opportunities edited, deleted on their own
// and deleted with their lead reach the replica with the next sync: the incremental reads take
// in the edits (a contact's or opportunity's change moves its lead's date_updated, and every
// object the lead embeds takes it), the event log marks the deleted rows, and an idle sync
// reads nothing new. Both destinations.
func TestCloseContactsAndOpportunities(t *testing.T) {
	for destName, newDest := range e2e.Destinations() {
		t.Run(destName, func(t *testing.T) {
			t.Parallel()
			a := newDeletionAccount(t, closecrm.Descriptor, newDest(t), func(now func() time.Time) (connector.Simulator, error) {
				return closesim.New(closesim.Config{Seed: 45, APIKey: key, Leads: 400, Activities: 200, Tasks: 100, Users: 6, CustomFields: 9,
					Events: 50, Now: now})
			})
			sim := a.Sim.(*closesim.Server)
			first := a.sync(t)
			a.assert(t)
			tables := []string{"contacts", "opportunities"}
			for _, table := range tables {
				if got, want := first.Stream(table).Rows, int64(sim.Count(table)); got != want || want == 0 {
					t.Errorf("%s: the first sync read %d rows, want the %d the account has", table, got, want)
				}
			}

			a.Clock.Advance(time.Minute)
			at := a.Clock.Now()
			cases := []struct {
				table           string
				edited, deleted []string
				cascadedAtLeast int
			}{
				{table: "contacts", edited: sim.UpdateRecords("contacts", 5, at), deleted: sim.DeleteRecords("contacts", 3, at)},
				{table: "opportunities", edited: sim.UpdateRecords("opportunities", 4, at), deleted: sim.DeleteRecords("opportunities", 2, at)},
			}
			before := map[string]int{}
			for _, c := range cases {
				before[c.table] = sim.Count(c.table)
			}
			gone := sim.DeleteRecords("leads", 5, at)
			rep := a.sync(t)
			a.assert(t)
			for _, c := range cases {
				s := rep.Stream(c.table)
				if len(c.edited) == 0 || len(c.deleted) == 0 {
					t.Fatalf("%s: the simulator changed nothing (edited %d, deleted %d)", c.table, len(c.edited), len(c.deleted))
				}
				if s.Rows < int64(len(c.edited)) {
					t.Errorf("%s: the incremental sync read %d rows, fewer than the %d edited", c.table, s.Rows, len(c.edited))
				}
				// The deleted leads took their contacts and opportunities with them.
				want := int64(len(c.deleted) + before[c.table] - sim.Count(c.table))
				if s.Deletes.How != "event log" || s.Deletes.Marked != want {
					t.Errorf("%s: deletes %+v, want %d marked from the event log (%d deleted, the rest with %d leads)", c.table, s.Deletes, want, len(c.deleted), len(gone))
				}
				live, marked := a.rows(t, c.table)
				if live != sim.Count(c.table) || int64(marked) != want {
					t.Errorf("%s: %d live and %d marked rows, want %d and %d", c.table, live, marked, sim.Count(c.table), want)
				}
			}

			a.Clock.Advance(10 * time.Minute)
			a.sync(t)
			quiet := a.sync(t)
			for _, table := range tables {
				if s := quiet.Stream(table); s.Rows != 0 || s.Deletes.Marked != 0 {
					t.Errorf("%s: nothing changed, yet %d rows read and deletes %+v", table, s.Rows, s.Deletes)
				}
			}
		})
	}
}

// TestCloseEventLogLapsed: a replica not synced for more than the event log's 30 days (or
// written before deletions were tracked) finds its deleted rows with an id sweep, and says so.
func TestCloseEventLogLapsed(t *testing.T) {
	for destName, newDest := range e2e.Destinations() {
		t.Run(destName, func(t *testing.T) {
			t.Parallel()
			a := newDeletionAccount(t, closecrm.Descriptor, newDest(t), func(now func() time.Time) (connector.Simulator, error) {
				return closesim.New(closesim.Config{Seed: 43, APIKey: key, Leads: 250, Activities: 500, Tasks: 200, Users: 5, CustomFields: 6, Events: 100, Now: now})
			})
			sim := a.Sim.(*closesim.Server)
			a.sync(t)
			sim.DeleteRecords("leads", 4, a.Clock.Now())
			sim.DeleteRecords("tasks", 3, a.Clock.Now())
			sim.DeleteRecords("contacts", 2, a.Clock.Now())
			sim.DeleteRecords("opportunities", 2, a.Clock.Now())
			a.Clock.Advance(31 * 24 * time.Hour)
			rep := a.sync(t)
			a.assert(t, "leads", "tasks", "activities", "custom_fields", "users", "contacts", "opportunities")
			for _, name := range []string{"leads", "tasks", "activities", "contacts", "opportunities"} {
				s := rep.Stream(name)
				if s.Deletes.How != "id sweep" || !slices.ContainsFunc(s.Notes, func(n string) bool { return strings.Contains(n, "no longer reaches back") }) {
					t.Errorf("%s: deletes %+v, notes %q: want an id sweep the report explains", name, s.Deletes, s.Notes)
				}
			}
			if n := rep.Stream("leads").Deletes.Marked; n < 4 {
				t.Errorf("leads: %d marked, want the 4 deleted", n)
			}
		})
	}
}

// TestCopperReconciliation: Copper's deleted records are found by an id sweep on its cadence
// (not before it is due), under the search ceiling, with records created and deleted while
// the sweep pages; a record that comes back is live; hard deletes remove rows.
func TestCopperReconciliation(t *testing.T) {
	for destName, newDest := range e2e.Destinations() {
		for _, stubs := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/deleted-activities-in-search=%v", destName, stubs), func(t *testing.T) {
				t.Parallel()
				testCopperReconciliation(t, newDest(t), stubs)
			})
		}
	}
}

func testCopperReconciliation(t *testing.T, dest string, stubs bool) {
	a := newDeletionAccount(t, copper.Descriptor, dest, func(now func() time.Time) (connector.Simulator, error) {
		// A 300-result ceiling over 900 people: the sweep must split its reads.
		return coppersim.New(coppersim.Config{Seed: 44, APIKey: key, UserEmail: email, People: 900, Companies: 200, Leads: 100, Opportunities: 100,
			Projects: 30, Tasks: 100, Activities: 400, Users: 4, MaxResults: 300, DeletedActivitiesInSearch: stubs, Now: now})
	})
	a.opts.ReconcileEvery = 24 * time.Hour
	sim := a.Sim.(*coppersim.Server)
	a.sync(t)
	cdc := []string{"people", "companies", "leads", "opportunities", "projects", "tasks", "activities_search"}
	gone := map[string][]string{}
	for _, table := range cdc {
		gone[table] = sim.DeleteRecords(table, 3, a.Clock.Now())
	}
	rep := a.sync(t)
	for _, table := range cdc {
		if d := rep.Stream(table).Deletes; d.How != "not due" || d.Requests != 0 {
			t.Errorf("%s an hour after the first sync: deletes %+v, want no sweep", table, d)
		}
		if _, marked := a.rows(t, table); marked != 0 {
			t.Errorf("%s: %d rows marked before a sweep was due", table, marked)
		}
	}
	// A day later, with records created and deleted while the sweep pages.
	a.Clock.Advance(25 * time.Hour)
	if err := sim.SetFaults(simfault.Faults{Seed: 9, MutateBetweenPages: 0.3}); err != nil {
		t.Fatal(err)
	}
	rep = a.sync(t)
	if err := sim.SetFaults(simfault.Faults{}); err != nil {
		t.Fatal(err)
	}
	for _, table := range cdc {
		d := rep.Stream(table).Deletes
		if d.How != "id sweep" || d.Marked < 3 || d.Requests == 0 || !d.CheckedAt.After(a.Clock.Now().Add(-time.Hour)) {
			t.Errorf("%s: deletes %+v, want a sweep marking the 3 deleted", table, d)
		}
	}
	// What moved during the sweep is caught by the next one (0: every sync).
	a.opts.ReconcileEvery = 0
	a.sync(t)
	a.assert(t)
}

// TestHardDeletes: with deletes: hard, rows of deleted records are removed.
func TestHardDeletes(t *testing.T) {
	for destName, newDest := range e2e.Destinations() {
		t.Run(destName, func(t *testing.T) {
			t.Parallel()
			a := newDeletionAccount(t, closecrm.Descriptor, newDest(t), func(now func() time.Time) (connector.Simulator, error) {
				return closesim.New(closesim.Config{Seed: 45, APIKey: key, Leads: 100, Activities: 200, Tasks: 100, Users: 3, CustomFields: 4, Events: 50, Now: now})
			})
			a.opts.Deletes = engine.DeletesHard
			a.opts.Streams = []string{"leads", "activities", "tasks"}
			a.sync(t)
			a.Sim.(*closesim.Server).DeleteRecords("leads", 5, a.Clock.Now())
			a.sync(t)
			a.assert(t, "leads", "activities", "tasks")
			for _, table := range []string{"leads", "tasks"} { // one row per key
				live, marked := a.rows(t, table)
				if marked != 0 || live != len(a.Sim.Snapshot(table)) {
					t.Errorf("%s: %d live rows, %d marked; want the simulator's and none marked", table, live, marked)
				}
			}
		})
	}
}
