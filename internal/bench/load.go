package bench

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/destination/dsn"
	"github.com/crmsync/crmsync/internal/destination/postgres"
	"github.com/crmsync/crmsync/internal/destination/sqlite"
	"github.com/crmsync/crmsync/internal/engine"
	"github.com/crmsync/crmsync/internal/loadbench"
)

// LoadRows is how many generated rows the suite's load runs store.
const LoadRows = 1_000_000

// runLoad stores o.LoadRows generated lead-like rows twice, into fresh tables of the same
// shape: through crmsync's destination code in the engine's batches (each with its bookmark),
// and through the database's fastest path (PostgreSQL: one COPY; SQLite: one prepared INSERT
// in one transaction).
func runLoad(ctx context.Context, o Options) (Result, error) {
	open := func(suffix string) (destination.Destination, string, func(), error) {
		if !dsn.IsPostgres(o.Dest) { // SQLite: a new file each time
			dir, err := os.MkdirTemp("", "crmsync-bench")
			if err != nil {
				return nil, "", nil, err
			}
			d, _, err := dsn.Open(ctx, "sqlite:"+filepath.Join(dir, "load.db"), "", "")
			if err != nil {
				os.RemoveAll(dir)
				return nil, "", nil, err
			}
			return d, "sqlite", func() { d.Close(); os.RemoveAll(dir) }, nil
		}
		schema := cmp.Or(o.Schema, "crmsync_bench_load") + suffix
		if err := freshSchema(ctx, o.Dest, schema); err != nil {
			return nil, "", nil, err
		}
		d, name, err := dsn.Open(ctx, o.Dest, schema, "")
		if err != nil {
			return nil, "", nil, err
		}
		return d, name, func() { d.Close() }, nil
	}
	ceilingDst, _, closeCeiling, err := open("_raw")
	if err != nil {
		return Result{}, err
	}
	var ceiling time.Duration
	switch d := ceilingDst.(type) {
	case *sqlite.Destination:
		ceiling, err = loadbench.SQLiteCeiling(ctx, d, o.LoadRows)
	case *postgres.Destination:
		ceiling, err = loadbench.PostgresCeiling(ctx, d, o.LoadRows)
	}
	closeCeiling()
	if err != nil {
		return Result{}, fmt.Errorf("load ceiling: %w", err)
	}
	dst, name, closeDst, err := open("")
	if err != nil {
		return Result{}, err
	}
	defer closeDst()
	cpu0 := cpuSeconds()
	took, err := loadbench.Through(ctx, dst, o.LoadRows, engine.DefaultBatchSize)
	if err != nil {
		return Result{}, fmt.Errorf("load through crmsync: %w", err)
	}
	res := Result{Dest: name, Rows: int64(o.LoadRows), Seconds: took.Seconds(), CeilingRowsPerSec: float64(o.LoadRows) / ceiling.Seconds()}
	res.finish(cpu0)
	return res, nil
}

// freshSchema drops a PostgreSQL bench schema, so every run starts from empty tables (a second
// run into the same schema would otherwise be an incremental sync). SQLite runs always use a
// new file.
func freshSchema(ctx context.Context, dest, schema string) error {
	if !dsn.IsPostgres(dest) {
		return nil
	}
	d, err := postgres.Open(ctx, dest, schema) // its errors carry no password
	if err != nil {
		return err
	}
	defer d.Close()
	if _, err := d.Pool().Exec(ctx, "DROP SCHEMA "+pgx.Identifier{d.Schema()}.Sanitize()+" CASCADE"); err != nil {
		return fmt.Errorf("postgres: drop bench schema %s: %w", d.Schema(), err)
	}
	return nil
}
