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
// run n times in one transaction, into the table the destination creates (same columns, same
// primary key, same file settings), with the destination's value encodings.
func SQLiteCeiling(ctx context.Context, d *sqlite.Destination, n int) (time.Duration, error) {
	cols, err := d.Prepare(ctx, Table, Columns())
	if err != nil {
		return 0, err
	}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = `"` + c.Name + `"`
	}
	q := fmt.Sprintf(`INSERT INTO "%s" (%s) VALUES (%s)`, d.TableName(Stream.Name), strings.Join(names, ", "),
		strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", "))
	start := time.Now()
	tx, err := d.DB().BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, q)
	if err != nil {
		return 0, err
	}
	defer stmt.Close()
	rows := NewRows(n)
	for rows.Next() {
		row, _ := rows.Values()
		for j, v := range row {
			switch x := v.(type) {
			case time.Time:
				row[j] = x.UTC().Format(sqlite.TimeLayout)
			case bool:
				row[j] = map[bool]int64{false: 0, true: 1}[x]
			}
		}
		if _, err := stmt.ExecContext(ctx, row...); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(); err != nil {
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
