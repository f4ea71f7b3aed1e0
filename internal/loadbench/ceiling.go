package loadbench

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/crmsync/crmsync/internal/destination/postgres"
	"github.com/crmsync/crmsync/internal/destination/sqlite"
)

// SQLiteCeiling stores n rows the fastest way SQLite offers: one prepared single-row INSERT
// run n times in one transaction through SQLite's C API, its values bound in place as the
// destination's writes bind them, into the table the destination creates (same columns, same
// primary key, same file settings).
func SQLiteCeiling(ctx context.Context, d *sqlite.Destination, n int) (time.Duration, error) {
	cols, err := d.Prepare(ctx, Table, Columns())
	if err != nil {
		return 0, err
	}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = `"` + c.Name + `"`
	}
	table := d.TableName(Stream.Name)
	q := fmt.Sprintf(`INSERT INTO "%s" (%s) VALUES (%s)`, table, strings.Join(names, ", "),
		strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", "))
	start := time.Now()
	rows := func(yield func([]any) bool) {
		for r := NewRows(n); r.Next(); {
			row, _ := r.Values()
			if !yield(row) {
				return
			}
		}
	}
	if err := d.InsertEach(ctx, table, q, rows); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// PostgresCeiling stores n rows the fastest way PostgreSQL offers: one COPY (binary protocol)
// into the table the destination creates (same columns, same primary key).
func PostgresCeiling(ctx context.Context, d *postgres.Destination, n int) (time.Duration, error) {
	cols, err := d.Prepare(ctx, Table, Columns())
	if err != nil {
		return 0, err
	}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = postgres.Ident(c.Name)
	}
	start := time.Now()
	if _, err := d.Pool().CopyFrom(ctx, pgx.Identifier{d.Schema(), postgres.Ident(Stream.Name)}, names, NewRows(n)); err != nil {
		return 0, fmt.Errorf("copy: %w", err)
	}
	return time.Since(start), nil
}
