package loadbench_test

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/destination/postgres"
	"github.com/crmsync/crmsync/internal/destination/postgres/pgtest"
	"github.com/crmsync/crmsync/internal/destination/sqlite"
	"github.com/crmsync/crmsync/internal/loadbench"
)

// go test ./internal/loadbench -run XXX -bench Load -benchtime 1x [-load-rows N] [-load-batch N]
var (
	loadRows  = flag.Int("load-rows", 1_000_000, "rows BenchmarkLoad loads")
	loadBatch = flag.Int("load-batch", 2000, "rows per destination transaction (the engine's default)")
)

// loader is one way of loading rows into a fresh destination; it returns how long the load
// took and a query for a digest of the table's contents.
type loader struct {
	name string
	load func(t testing.TB, n int) (time.Duration, func() string)
}

func loaders() []loader {
	ctx := context.Background()
	openSQLite := func(t testing.TB) *sqlite.Destination {
		d, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "load.db"), "close")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	sqliteDigest := func(t testing.TB, d *sqlite.Destination) func() string {
		return func() string {
			var s string
			q := `SELECT count(*) || ' ' || count(DISTINCT id) || ' ' || max(date_updated) || ' ' || sum(num_employees) || ' ' || sum(is_active) || ' ' || max(contacts) FROM close_leads`
			if err := d.DB().QueryRowContext(ctx, q).Scan(&s); err != nil {
				t.Fatal(err)
			}
			return s
		}
	}
	var schemas int
	openPostgres := func(t testing.TB) *postgres.Destination {
		schemas++
		d, err := postgres.Open(ctx, pgtest.NewDatabase(t), fmt.Sprintf("load_%d", schemas))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	pgDigest := func(t testing.TB, d *postgres.Destination) func() string {
		return func() string {
			var s string
			q := fmt.Sprintf(`SELECT count(*) || ' ' || count(DISTINCT id) || ' ' || to_char(max(date_updated) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') || ' ' || sum(num_employees) || ' ' || sum(is_active::int) || ' ' || max(contacts::text) FROM %s`, d.Table("leads"))
			if err := d.Pool().QueryRow(ctx, q).Scan(&s); err != nil {
				t.Fatal(err)
			}
			return s
		}
	}
	must := func(t testing.TB, took time.Duration, err error) time.Duration {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return took
	}
	return []loader{
		{"sqlite/raw", func(t testing.TB, n int) (time.Duration, func() string) {
			d := openSQLite(t)
			took, err := loadbench.SQLiteCeiling(ctx, d, n)
			return must(t, took, err), sqliteDigest(t, d)
		}},
		{"sqlite/crmsync", func(t testing.TB, n int) (time.Duration, func() string) {
			d := openSQLite(t)
			took, err := loadbench.Through(ctx, d, n, *loadBatch)
			return must(t, took, err), sqliteDigest(t, d)
		}},
		{"postgres/raw", func(t testing.TB, n int) (time.Duration, func() string) {
			d := openPostgres(t)
			took, err := loadbench.PostgresCeiling(ctx, d, n)
			return must(t, took, err), pgDigest(t, d)
		}},
		{"postgres/crmsync", func(t testing.TB, n int) (time.Duration, func() string) {
			d := openPostgres(t)
			took, err := loadbench.Through(ctx, d, n, *loadBatch)
			return must(t, took, err), pgDigest(t, d)
		}},
	}
}

// TestPathsStoreTheSameRows checks that the ceiling and crmsync's path load the same table
// contents, so the benchmark compares like with like.
func TestPathsStoreTheSameRows(t *testing.T) {
	const n = 4321
	digests := map[string]string{}
	for _, l := range loaders() {
		t.Run(l.name, func(t *testing.T) {
			_, digest := l.load(t, n)
			digests[l.name] = digest()
		})
	}
	if got := digests["sqlite/raw"]; got == "" || got != digests["sqlite/crmsync"] {
		t.Errorf("sqlite: raw path stored %q, crmsync %q", got, digests["sqlite/crmsync"])
	}
	if got := digests["postgres/raw"]; got != digests["postgres/crmsync"] {
		t.Errorf("postgres: raw path stored %q, crmsync %q", got, digests["postgres/crmsync"])
	}
	if want := fmt.Sprint(n, " ", n); len(digests["sqlite/raw"]) < len(want) || digests["sqlite/raw"][:len(want)] != want {
		t.Errorf("sqlite digest %q does not count %d distinct rows", digests["sqlite/raw"], n)
	}
}

// BenchmarkLoad compares each destination with its database's fastest path (rows/s).
func BenchmarkLoad(b *testing.B) {
	for _, l := range loaders() {
		b.Run(l.name, func(b *testing.B) {
			var total time.Duration
			for range b.N {
				took, _ := l.load(b, *loadRows)
				total += took
			}
			b.ReportMetric(float64(*loadRows*b.N)/total.Seconds(), "rows/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
