package sqlite

import (
	"context"
	"fmt"
	"strings"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/destination"
)

// A first sync loads an empty table without its key index. CRM ids are random, so every batch
// of upserts would otherwise update index pages all over a B-tree that outgrows the page
// cache: at a million Close rows that page work was most of the sync's CPU, and the rate fell
// as the table grew. Without the index each batch appends to the table's last pages; the index
// is built once at the end, by a sort. While loading, a key read twice (overlapping slices of a
// split read, a record changed during the sync) is stored twice; the end keeps the newest.
//
// _crmsync_loading lists the tables being loaded, with the statements that end their load, so
// a load that a crash interrupted is ended by the next Claim of its source before anything
// else writes to the table: nothing depends on the process that began it.

// loadingTable is the bookkeeping table of loads in progress.
const loadingTable = `CREATE TABLE IF NOT EXISTS _crmsync_loading (table_name TEXT PRIMARY KEY, source TEXT NOT NULL, dedupe TEXT NOT NULL, build TEXT NOT NULL)`

// BeginLoad implements destination.BulkLoader: an empty table created by this release (a key
// index, not a PRIMARY KEY clause) drops its key index until FinishLoad.
func (d *Destination) BeginLoad(ctx context.Context, t destination.Table) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	name := d.TableName(t.Stream.Name)
	names, err := d.names(ctx, d.db, name)
	if err != nil {
		return false, err
	}
	s := names.stream(t.Stream)
	ix := keyIndex(name, s)
	if ix.name == "" || t.Stream.Method == catalog.FullTable {
		return false, nil
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("load %s: %w", name, err)
	}
	defer tx.Rollback()
	var rows, indexed, pkCols int
	err = tx.QueryRowContext(ctx, fmt.Sprintf(`SELECT (SELECT count(*) FROM (SELECT 1 FROM %s LIMIT 1)),
		(SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = ?),
		(SELECT count(*) FROM pragma_table_info(?) WHERE pk > 0)`, quote(name)), ix.name, name).Scan(&rows, &indexed, &pkCols)
	if err != nil {
		return false, fmt.Errorf("load %s: %w", name, err)
	}
	if rows > 0 || indexed == 0 || pkCols > 0 {
		return false, nil // rows to upsert into, or a table of an earlier release
	}
	build := indexSQL(name, s)[0]
	stmts := []struct {
		q    string
		args []any
	}{
		{"DROP INDEX " + quote(ix.name), nil},
		{`INSERT INTO _crmsync_loading (table_name, source, dedupe, build) VALUES (?, ?, ?, ?)`, []any{name, t.Source, dedupeSQL(name, s, ix), build}},
	}
	for _, st := range stmts {
		if _, err := tx.ExecContext(ctx, st.q, st.args...); err != nil {
			return false, fmt.Errorf("load %s: %w", name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("load %s: %w", name, err)
	}
	d.stmts.reset()
	d.loading[name] = true
	return true, nil
}

// FinishLoad implements destination.BulkLoader.
func (d *Destination) FinishLoad(ctx context.Context, t destination.Table) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.finishLoads(ctx, `table_name = ?`, d.TableName(t.Stream.Name))
}

// finishLoads ends the loads the condition on _crmsync_loading selects, each in a transaction
// of its own: the key index is built and, when keys were stored more than once, it is built
// again after dropping all but the newest copy of each.
func (d *Destination) finishLoads(ctx context.Context, where string, args ...any) error {
	type load struct{ name, dedupe, build string }
	var loads []load
	rows, err := d.db.QueryContext(ctx, `SELECT table_name, dedupe, build FROM _crmsync_loading WHERE `+where, args...)
	if err != nil {
		return fmt.Errorf("finish loads: %w", err)
	}
	for rows.Next() {
		var l load
		if err := rows.Scan(&l.name, &l.dedupe, &l.build); err != nil {
			rows.Close()
			return fmt.Errorf("finish loads: %w", err)
		}
		loads = append(loads, l)
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("finish loads: %w", err)
	}
	for _, l := range loads {
		if err := d.finishLoad(ctx, l.name, l.dedupe, l.build); err != nil {
			return err
		}
	}
	return nil
}

func (d *Destination) finishLoad(ctx context.Context, name, dedupe, build string) error {
	d.stmts.reset()
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("index %s: %w", name, err)
	}
	defer tx.Rollback()
	// Most loads store each key once: try the index first, and dedupe only when it fails.
	if _, err := tx.ExecContext(ctx, "SAVEPOINT build"); err != nil {
		return fmt.Errorf("index %s: %w", name, err)
	}
	if _, err := tx.ExecContext(ctx, build); err != nil {
		for _, q := range []string{"ROLLBACK TO build", dedupe, build} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("index %s: %w", name, err)
			}
		}
	}
	if _, err := tx.ExecContext(ctx, `RELEASE build`); err != nil {
		return fmt.Errorf("index %s: %w", name, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM _crmsync_loading WHERE table_name = ?`, name); err != nil {
		return fmt.Errorf("index %s: %w", name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("index %s: %w", name, err)
	}
	delete(d.loading, name)
	return nil
}

// dedupeSQL deletes all but one copy of each key: for an append-only table the first stored
// (INSERT OR IGNORE keeps the first), otherwise the newest by cursor, the last written among
// equals — what upserting them one by one would have kept, except that a copy without a
// cursor is kept only when no copy has one.
func dedupeSQL(name string, s catalog.Stream, ix index) string {
	order := "rowid"
	if s.Method != catalog.AppendOnly {
		order = "rowid DESC"
		if s.CursorField != "" {
			c := quote(s.CursorField)
			order = fmt.Sprintf("%s IS NULL, %s DESC, rowid DESC", c, c)
		}
	}
	return fmt.Sprintf(`DELETE FROM %[1]s WHERE rowid IN (SELECT rowid FROM (SELECT rowid, row_number() OVER (PARTITION BY %[2]s ORDER BY %[3]s) AS n FROM %[1]s) WHERE n > 1)`,
		quote(name), strings.Join(ix.exprs, ", "), order)
}

// insertRowsSQL appends n rows without looking for stored copies (a table being loaded).
func insertRowsSQL(name string, named []catalog.Column, n int) string {
	return fmt.Sprintf("INSERT INTO %s (%s) VALUES %s", quote(name), columnList(named), rowPlaceholders(len(named), n))
}

// finishSourceLoads ends the loads of a source that a crash interrupted. The caller holds mu
// and the source's lock, so no other sync is loading them.
func (d *Destination) finishSourceLoads(ctx context.Context, source string) error {
	return d.finishLoads(ctx, `source = ?`, source)
}

var _ destination.BulkLoader = (*Destination)(nil)
