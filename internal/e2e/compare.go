// Package e2e is the one end-to-end harness every source is tested with: a simulated account
// built from the source's descriptor (or handed in) and served on loopback, the source built
// from its settings the way the command builds it, real SQLite and PostgreSQL destinations,
// syncs through the real engine, and the comparison of every replicated table — derived from
// the catalog — with the simulator's ground truth. Source tests, the fault matrix, the rate
// limit tests and the process tests use it.
package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/destination/sqlite"
	"github.com/crmsync/crmsync/internal/engine"
	"github.com/crmsync/crmsync/internal/record"
	"github.com/crmsync/crmsync/internal/source"
)

// Simulator is the ground truth a replica is compared with.
type Simulator interface {
	Snapshot(table string) []map[string]any
}

// OpenSQLite opens a fresh SQLite destination and returns it with its file path.
func OpenSQLite(t testing.TB) (*sqlite.Destination, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "crm.db")
	dst, err := sqlite.Open(context.Background(), path, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dst.Close() })
	return dst, path
}

// Sync runs a sync of the streams (all when none) from three years back and fails the test
// when a stream fails. Account.Sync is the same for a simulated account.
func Sync(t testing.TB, src source.Source, dst destination.Destination, streams ...string) engine.Report {
	t.Helper()
	return SyncWith(t, src, dst, engine.Options{StartDate: time.Now().AddDate(-3, 0, 0), Streams: streams, BatchSize: 500})
}

// SyncWith runs a sync with the given options and fails the test when a stream fails.
func SyncWith(t testing.TB, src source.Source, dst destination.Destination, opts engine.Options) engine.Report {
	t.Helper()
	rep, err := engine.Run(context.Background(), src, dst, opts)
	if err != nil {
		for _, s := range rep.Failed() {
			t.Logf("%s: %v", s.Stream, s.Err)
		}
		t.Fatalf("sync: %v", err)
	}
	return rep
}

// Table names a replicated table and how to compare it.
type Table struct {
	Name       string
	Key        string // primary key column
	Version    string // column that identifies a row's version (date_updated, date_modified); empty: none
	AppendOnly bool   // several versions of a key may be stored
	// DeletedMayRemain accepts live rows the simulator no longer has: records deleted while
	// the last sync read (found by the next one), or rows of an API that forgets old records
	// (the event log's 30 days). Otherwise a row the simulator lacks must be marked deleted
	// (destination.DeletedAtColumn), and a row it has must be live.
	DeletedMayRemain bool
}

// Replica is a destination database read through database/sql.
type Replica struct {
	DB *sql.DB
	// Ref returns the SQL reference of a table (quoted, schema-qualified where needed).
	Ref func(table string) string
	// existsQuery selects whether a table exists, given its name as the one parameter.
	existsQuery string
	// file is the SQLite database's path, when known: no file, no tables.
	file string
}

// SQLiteReplica reads tables of a SQLite destination without a schema prefix.
func SQLiteReplica(db *sql.DB) Replica {
	return Replica{DB: db, Ref: func(t string) string { return fmt.Sprintf("%q", t) },
		existsQuery: `SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?`}
}

// Exists says whether the table has been created.
func (r Replica) Exists(table string) (bool, error) {
	if r.file != "" {
		if _, err := os.Stat(r.file); errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
	}
	var ok bool
	err := r.DB.QueryRow(r.existsQuery, table).Scan(&ok)
	return ok, err
}

// AssertReplica checks that the table's live rows are exactly the simulator's: every key,
// each at the simulator's current version, no key twice (unless append-only); rows of keys
// the simulator no longer has are marked deleted (see Table.DeletedMayRemain).
func AssertReplica(t testing.TB, r Replica, sim Simulator, tb Table) {
	t.Helper()
	version := "NULL"
	if tb.Version != "" {
		version = fmt.Sprintf("%q", tb.Version)
	}
	rows, err := r.DB.Query(fmt.Sprintf(`SELECT CAST(%q AS TEXT), %s, %q IS NULL FROM %s`, tb.Key, version, destination.DeletedAtColumn, r.Ref(tb.Name)))
	if err != nil {
		t.Fatalf("%s: %v", tb.Name, err)
	}
	defer rows.Close()
	stored := map[string]map[string]bool{}
	live := map[string]bool{} // keys with a row not marked deleted
	for rows.Next() {
		var key string
		var v any
		var isLive bool
		if err := rows.Scan(&key, &v, &isLive); err != nil {
			t.Fatal(err)
		}
		if stored[key] == nil {
			stored[key] = map[string]bool{}
		} else if !tb.AppendOnly {
			t.Errorf("%s: key %s stored twice", tb.Name, key)
		}
		stored[key][instant(v)] = true
		live[key] = live[key] || isLive
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := sim.Snapshot(tb.Name)
	missing, stale, marked := 0, 0, 0
	keys := map[string]bool{}
	for _, rec := range want {
		key := Key(rec[tb.Key])
		keys[key] = true
		versions, ok := stored[key]
		if !ok {
			missing++
			continue
		}
		if !live[key] {
			if marked++; marked <= 3 {
				t.Errorf("%s %s: marked deleted, but the simulator has it", tb.Name, key)
			}
		}
		if tb.Version == "" {
			continue
		}
		vt, err := record.ParseTime(rec[tb.Version])
		if err != nil {
			t.Fatalf("%s %s: %v", tb.Name, key, err)
		}
		if !versions[instant(vt)] {
			stale++
			if stale <= 3 {
				t.Errorf("%s %s: simulator has version %s, replica has %v", tb.Name, key, instant(vt), versions)
			}
		}
	}
	extra := 0
	for k := range stored {
		if !keys[k] && live[k] {
			if extra++; extra <= 3 && !tb.DeletedMayRemain {
				t.Errorf("%s %s: deleted in the simulator, live in the replica", tb.Name, k)
			}
		}
	}
	if tb.DeletedMayRemain {
		extra = 0
	}
	if missing > 0 || stale > 0 || extra > 0 || marked > 0 {
		t.Errorf("%s: %d of %d simulator rows missing, %d stale, %d marked deleted, %d live rows not in the simulator", tb.Name, missing, len(want), stale, marked, extra)
	}
}

// instant normalises a stored or simulated time (time.Time, ISO text, unix seconds) to one form.
func instant(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case []byte:
		v = string(x)
	case float64:
		v = json.Number(strconv.FormatFloat(x, 'f', -1, 64))
	}
	t, err := record.ParseTime(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// AssertNoSecrets fails when any file of the database (main file, WAL, locks) contains a
// secret, or is readable by others than its owner.
func AssertNoSecrets(t testing.TB, dbPath string, secrets ...string) {
	t.Helper()
	matches, _ := filepath.Glob(dbPath + "*")
	if len(matches) == 0 {
		t.Fatalf("no database files at %s", dbPath)
	}
	for _, f := range matches {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if bytes.Contains(data, []byte(s)) {
				t.Errorf("%s contains a secret", f)
			}
		}
		if st, _ := os.Stat(f); st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v; database files must be private (0600)", f, st.Mode().Perm())
		}
	}
}

// Key formats a key as SQLite's CAST(… AS TEXT) does; simulators decode numbers as float64.
func Key(v any) string {
	if f, ok := v.(float64); ok && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return strconv.FormatInt(int64(f), 10)
	}
	return fmt.Sprint(v)
}
