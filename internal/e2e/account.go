package e2e

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/apiclient"
	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/connector"
	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/destination/dsn"
	"github.com/crmsync/crmsync/internal/destination/sqlite"
	"github.com/crmsync/crmsync/internal/engine"
	"github.com/crmsync/crmsync/internal/fakeclock"
	"github.com/crmsync/crmsync/internal/source"
)

// Account is one simulated account of a source, served on loopback for the test's lifetime.
type Account struct {
	Desc connector.Descriptor
	Sim  connector.Simulator
	URL  string
	// Credentials reach the simulator (the descriptor's simulator credentials by default).
	Credentials map[string]string
	// Tuning is the client's: unpaced, quick retries (see DefaultTuning).
	Tuning apiclient.Tuning
	// Clock, when set, is the time of the simulator (when the harness built it), the client
	// and the engine: a test moves it instead of sleeping.
	Clock *fakeclock.Clock
	// StartDate is where a first sync begins; zero: three years before the clock.
	StartDate time.Time
	// DeletedMayRemain: see Table.DeletedMayRemain (tests that delete records in the API).
	DeletedMayRemain bool
}

// DefaultTuning is the client's in tests: no pacing (the simulators announce no limit unless
// a test says so), quick retries, and a stall bound far below the simulators' stalls.
var DefaultTuning = apiclient.Tuning{RequestsPerSecond: -1, BaseBackoff: 5 * time.Millisecond, MaxAttempts: 15,
	StallTimeout: 300 * time.Millisecond, Timeout: 30 * time.Second}

// Options shape an account.
type Options struct {
	// Sim is built by the descriptor from SimConfig when nil; Seed defaults to 7.
	Sim       connector.Simulator
	SimConfig connector.SimConfig
	// Clock: see Account.Clock. When the harness builds the simulator, it runs on it.
	Clock *fakeclock.Clock
	// Wrap, when set, wraps the simulator's handler (a test's request log, say).
	Wrap func(http.Handler) http.Handler
}

// NewAccount builds (or takes) the simulator and serves it.
func NewAccount(t testing.TB, d connector.Descriptor, o Options) *Account {
	t.Helper()
	sim := o.Sim
	cfg := o.SimConfig
	if cfg.Credentials == nil {
		cfg.Credentials = d.Simulator.Credentials
	}
	if sim == nil {
		if cfg.Seed == 0 {
			cfg.Seed = 7
		}
		if o.Clock != nil && cfg.Now == nil {
			cfg.Now = o.Clock.Now
		}
		var err error
		if sim, err = d.NewSimulator(cfg); err != nil {
			t.Fatal(err)
		}
	}
	var h http.Handler = sim
	if o.Wrap != nil {
		h = o.Wrap(sim)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	tuning := DefaultTuning
	if o.Clock != nil {
		tuning.Clock = o.Clock
	}
	return &Account{Desc: d, Sim: sim, URL: srv.URL, Credentials: maps.Clone(cfg.Credentials), Tuning: tuning, Clock: o.Clock}
}

// Source builds the source the way the command does: from its settings, through the
// descriptor. creds override the account's credentials (a wrong key, say).
func (a *Account) Source(t testing.TB, creds ...map[string]string) source.Source {
	t.Helper()
	c := maps.Clone(a.Credentials)
	for _, o := range creds {
		maps.Copy(c, o)
	}
	src, err := a.Desc.Open(connector.Settings{Credentials: c, BaseURL: a.URL, Tuning: a.Tuning})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// now is the account's clock.
func (a *Account) now() time.Time {
	if a.Clock != nil {
		return a.Clock.Now()
	}
	return time.Now()
}

// Options are the engine options of a sync of the streams (all when none).
func (a *Account) Options(streams ...string) engine.Options {
	start := a.StartDate
	if start.IsZero() {
		start = a.now().AddDate(-3, 0, 0)
	}
	opts := engine.Options{StartDate: start, Streams: streams, BatchSize: 500}
	if a.Clock != nil {
		opts.Now = a.Clock.Now
	}
	return opts
}

// Run syncs the streams (all when none) with a fresh source and returns the report and error.
func (a *Account) Run(t testing.TB, dst destination.Destination, streams ...string) (engine.Report, error) {
	t.Helper()
	return engine.Run(context.Background(), a.Source(t), dst, a.Options(streams...))
}

// Sync is Run that fails the test when a stream fails.
func (a *Account) Sync(t testing.TB, dst destination.Destination, streams ...string) engine.Report {
	t.Helper()
	return SyncWith(t, a.Source(t), dst, a.Options(streams...))
}

// Settle moves the account's clock past the moment a sync's bookmark may trail its start (the
// API's one-second Date header, and the engine erring a second early), so changes made before
// are sure to be read by the next sync. Without a fake clock it has nothing to do: reads have
// no upper bound, so a change made before a sync is in it.
func (a *Account) Settle() {
	if a.Clock != nil {
		a.Clock.Advance(3 * time.Second)
	}
}

// Tables are the comparisons of every table of the catalog (names: only those), derived from
// the declarations: the primary key, the cursor or version field as the row's version, and
// whether several versions of a key are kept.
func Tables(cat catalog.Catalog, names ...string) []Table {
	streams, err := cat.Select(names)
	if err != nil {
		panic(err) // a test names a table its source lacks
	}
	var out []Table
	for _, s := range streams {
		if len(s.PrimaryKey) != 1 {
			panic(fmt.Sprintf("%s.%s: the harness compares single-column keys", cat.Source, s.Name))
		}
		tb := Table{Name: s.Name, Key: s.PrimaryKey[0], Version: s.CursorField}
		if s.Method == catalog.AppendOnly {
			// Several versions per key; the simulator's current one must be among them (late
			// edits are read through the event log).
			tb.Version, tb.AppendOnly = s.VersionField, true
		}
		// An API with a history limit forgets rows as they age past it; the replica keeps them.
		tb.DeletedMayRemain = s.MaxHistory > 0
		out = append(out, tb)
	}
	return out
}

// AssertReplica compares the named tables (all when none) of the replica with the simulator.
func (a *Account) AssertReplica(t testing.TB, r Replica, names ...string) {
	t.Helper()
	for _, tb := range Tables(a.Desc.Catalog(), names...) {
		tb.DeletedMayRemain = tb.DeletedMayRemain || a.DeletedMayRemain
		AssertReplica(t, r, a.Sim, tb)
	}
}

// OpenDest opens the destination named by a --dest string (see Destinations), tables in
// schema (PostgreSQL) or without prefix (SQLite).
func OpenDest(t testing.TB, dest, schema string) destination.Destination {
	t.Helper()
	if !dsn.IsPostgres(dest) {
		schema = "" // no table prefix
	}
	d, _, err := dsn.Open(context.Background(), dest, schema, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// Local is an account synced into a fresh SQLite file: what most source tests need.
type Local struct {
	*Account
	t    testing.TB
	Dst  *sqlite.Destination
	Path string
}

// NewLocal serves the account (see NewAccount) and opens a fresh SQLite destination.
func NewLocal(t testing.TB, d connector.Descriptor, o Options) *Local {
	t.Helper()
	dst, path := OpenSQLite(t)
	return &Local{Account: NewAccount(t, d, o), t: t, Dst: dst, Path: path}
}

// Sync syncs the streams (all when none) into the SQLite file; a failed stream fails the test.
func (l *Local) Sync(streams ...string) engine.Report {
	l.t.Helper()
	return l.Account.Sync(l.t, l.Dst, streams...)
}

// SyncWatched is Sync that also returns, per table, the last progress the engine reported.
func (l *Local) SyncWatched(streams ...string) (engine.Report, map[string]engine.StreamProgress) {
	l.t.Helper()
	var mu sync.Mutex
	last := map[string]engine.StreamProgress{}
	opts := l.Options(streams...)
	opts.Progress = func(p engine.StreamProgress) { // called by every stream's writer
		mu.Lock()
		last[p.Stream] = p
		mu.Unlock()
	}
	rep := SyncWith(l.t, l.Source(l.t), l.Dst, opts)
	return rep, last
}

// Assert compares the named tables (all when none) with the simulator.
func (l *Local) Assert(names ...string) {
	l.t.Helper()
	l.AssertReplica(l.t, SQLiteReplica(l.Dst.DB()), names...)
}

// T is the test the account belongs to.
func (l *Local) T() testing.TB { return l.t }

// NewClocked serves a simulator a test builds with its own settings as a Local account, on a
// fresh fake clock shared by the simulator (whose API clock runs skew ahead, behind when
// negative), the client and the engine: the test moves time instead of sleeping.
func NewClocked[S connector.Simulator](t testing.TB, d connector.Descriptor, creds map[string]string, skew time.Duration,
	build func(now func() time.Time) (S, error)) (*Local, S) {
	t.Helper()
	clock := fakeclock.New(time.Now().UTC())
	sim, err := build(func() time.Time { return clock.Now().Add(skew) })
	if err != nil {
		t.Fatal(err)
	}
	return NewLocal(t, d, Options{Sim: sim, Clock: clock, SimConfig: connector.SimConfig{Credentials: creds}}), sim
}
