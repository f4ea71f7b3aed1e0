package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/state"
)

// ordColumn numbers a stage's rows in load order ("last wins" among duplicates). Names
// starting with _crmsync_ are reserved.
const ordColumn = "_crmsync_ord"

// batchTable names the per-transaction temp table a batch is COPYed into, after the batch's
// column names and types. pgx caches the column types of a COPY target by statement text, so
// a name must never be reused with other types: values would be encoded as the old types.
func batchTable(cols []catalog.Column) string {
	h := sha256.New()
	for _, c := range cols {
		fmt.Fprintf(h, "%s\x00%s\x00", Ident(c.Name), sqlType(c.Type))
	}
	return "_crmsync_batch_" + hex.EncodeToString(h.Sum(nil))[:16]
}

// stageBatch creates the temp table for cols (dropped at commit) and COPYs rows into it,
// numbering them from first+1. It returns the table's qualified name.
func stageBatch(ctx context.Context, tx pgx.Tx, s catalog.Stream, cols []catalog.Column, rows [][]any, first int64) (string, error) {
	name := batchTable(cols)
	stage := "pg_temp." + quote(name)
	if _, err := tx.Exec(ctx, createSQL(stage, s, cols, tempTable)[0]); err != nil {
		return "", fmt.Errorf("create staging table: %w", err)
	}
	// The table was just made from cols: its types are known, no need to describe it.
	oids := make([]uint32, 0, len(cols)+1)
	for _, c := range cols {
		oids = append(oids, sqlTypeOID(c.Type))
	}
	oids = append(oids, pgtype.Int8OID) // ordColumn
	if err := copyRows(ctx, tx, stage, cols, rows, first+1, oids); err != nil {
		return "", err
	}
	return stage, nil
}

// directSavepoint guards a COPY straight into a table: when it meets a stored row, the
// transaction goes back to it and the batch takes the merge path.
const directSavepoint = "crmsync_direct"

// uniqueViolation is PostgreSQL's SQLSTATE for a duplicate key.
const uniqueViolation = "23505"

// copyDirect COPYs a batch straight into its table when none of its rows can be stored yet, the
// common case of a first sync: COPY is the database's fastest path, and the merge's staging
// and upsert cost as much again. It reports false, with the transaction as it found it, when
// the batch has to be merged: keys repeat within it, a stored row has its key (the COPY fails
// with a unique violation), or an earlier batch of the table met stored rows in this run.
func (d *Destination) copyDirect(ctx context.Context, tx pgx.Tx, b destination.Batch) (bool, error) {
	s := b.Table.Stream
	if d.mergeOnly(s.Name) || repeatsKey(b, destination.StoredKey(s)) {
		return false, nil
	}
	if _, err := tx.Exec(ctx, "SAVEPOINT "+directSavepoint); err != nil {
		return false, err
	}
	err := copyRows(ctx, tx, d.Table(s.Name), b.Columns, b.Rows, 0, nil)
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		_, err = tx.Exec(ctx, "RELEASE SAVEPOINT "+directSavepoint)
		return err == nil, err
	case errors.As(err, &pgErr) && pgErr.Code == uniqueViolation:
		d.mergeFromNowOn(s.Name) // the table holds rows of this run's range
		_, err = tx.Exec(ctx, "ROLLBACK TO SAVEPOINT "+directSavepoint)
		return false, err
	}
	return false, err
}

// mergeOnly reports whether the stream's batches take the merge path for the rest of the run:
// a direct COPY met stored rows, or a column of the table was widened.
func (d *Destination) mergeOnly(stream string) bool {
	_, ok := d.mergeOnlyStreams.Load(stream)
	return ok
}

// mergeFromNowOn sends the stream's later batches of this run down the merge path.
func (d *Destination) mergeFromNowOn(stream string) { d.mergeOnlyStreams.Store(stream, struct{}{}) }

// repeatsKey reports whether two rows of b share their values of keys (or a key is absent
// from the batch, or a key value is NULL, which the merge path resolves).
func repeatsKey(b destination.Batch, keys []string) bool {
	if len(keys) == 0 {
		return false // no key: every row is inserted on either path
	}
	rowKeys, ok := destination.RowKeys(b.Rows, b.Columns, keys)
	if !ok {
		return true
	}
	seen := make(map[string]struct{}, len(rowKeys))
	for _, k := range rowKeys {
		if _, dup := seen[k]; dup {
			return true
		}
		seen[k] = struct{}{}
	}
	return false
}

// Write stores b and the stream's state in one transaction: rows are COPYed into a temp table,
// then merged into the table with one INSERT … SELECT (see the package documentation).
func (d *Destination) Write(ctx context.Context, b destination.Batch, st state.Stream) error {
	s := b.Table.Stream
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		if err := d.writeRows(ctx, tx, b); err != nil {
			return err
		}
		if err := d.applyDeletes(ctx, tx, b); err != nil {
			return err
		}
		return d.saveState(ctx, tx, b.Table.Source, s.Name, st)
	})
	if err != nil {
		return fmt.Errorf("write %s.%s: %w", d.schema, Ident(s.Name), err)
	}
	return nil
}

// writeRows stores the batch's rows: COPYed straight in when their keys are new, else
// staged and merged.
func (d *Destination) writeRows(ctx context.Context, tx pgx.Tx, b destination.Batch) error {
	if len(b.Rows) == 0 {
		return nil
	}
	s := b.Table.Stream
	if direct, err := d.copyDirect(ctx, tx, b); err != nil || direct {
		return err
	}
	stage, err := stageBatch(ctx, tx, s, b.Columns, b.Rows, 0)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, mergeSQL(d.Table(s.Name), stage, s, b.Columns)); err != nil {
		return fmt.Errorf("merge rows: %w", err)
	}
	return nil
}

// applyDeletes marks (or removes) the rows of the batch's deleted keys, in one round trip.
// A row marked before keeps its first mark.
func (d *Destination) applyDeletes(ctx context.Context, tx pgx.Tx, b destination.Batch) error {
	if len(b.Deleted) == 0 {
		return nil
	}
	keys := b.Table.Stream.PrimaryKey
	first := 2 // $1 is the mark
	if b.HardDelete {
		first = 1
	}
	where := make([]string, len(keys))
	for i, k := range keys {
		where[i] = fmt.Sprintf("%s = $%d", qident(k), i+first)
	}
	deleted := qident(destination.DeletedAtColumn)
	q := fmt.Sprintf("UPDATE %s SET %s = $1 WHERE %s IS NULL AND %s", d.Table(b.Table.Stream.Name), deleted, deleted, strings.Join(where, " AND "))
	lead := []any{b.DeletedAt.UTC()}
	if b.HardDelete {
		q = fmt.Sprintf("DELETE FROM %s WHERE %s", d.Table(b.Table.Stream.Name), strings.Join(where, " AND "))
		lead = nil
	}
	var batch pgx.Batch
	for _, key := range b.Deleted {
		args := append([]any{}, lead...)
		for _, v := range key {
			pv, err := pgValue(v, catalog.String)
			if err != nil {
				return fmt.Errorf("mark deleted rows: %w", err)
			}
			args = append(args, pv)
		}
		batch.Queue(q, args...)
	}
	if err := tx.SendBatch(ctx, &batch).Close(); err != nil {
		return fmt.Errorf("mark deleted rows: %w", err)
	}
	return nil
}

// LiveKeys implements destination.KeyLister.
func (d *Destination) LiveKeys(ctx context.Context, t destination.Table, fn func(key []any) error) error {
	rows, err := d.pool.Query(ctx, fmt.Sprintf("SELECT DISTINCT %s FROM %s WHERE %s IS NULL",
		quotedList(t.Stream.PrimaryKey), d.Table(t.Stream.Name), qident(destination.DeletedAtColumn)))
	if err != nil {
		return fmt.Errorf("list keys of %s: %w", t.Stream.Name, err)
	}
	defer rows.Close()
	for rows.Next() {
		key, err := rows.Values()
		if err != nil {
			return fmt.Errorf("list keys of %s: %w", t.Stream.Name, err)
		}
		if err := fn(key); err != nil {
			return err
		}
	}
	return rows.Err()
}

// mergeSQL moves a stage's rows into the table.
//
//   - Incremental: one row per primary key — the newest by cursor (NULL counts as oldest),
//     ties going to the last in load order — is upserted, and an existing row is only
//     replaced by a version at least as new by cursor (or when either cursor is NULL), so
//     re-reads and out-of-order listings never regress a row.
//   - AppendOnly: every version (primary key + version field) not stored yet is inserted;
//     within the stage the first copy of a version wins.
//
// Only the columns of the batch are written: columns it lacks keep their values.
func mergeSQL(table, stage string, s catalog.Stream, cols []catalog.Column) string {
	list := columnList(cols)
	if s.Method == catalog.AppendOnly {
		q := fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s ORDER BY %s", table, list, list, stage, quote(ordColumn))
		if keys := destination.StoredKey(s); len(keys) > 0 {
			q += fmt.Sprintf(" ON CONFLICT (%s) DO NOTHING", quotedList(keys))
		}
		return q
	}
	q := fmt.Sprintf("INSERT INTO %s AS t (%s) %s", table, list, newestSQL(stage, s, cols))
	if len(s.PrimaryKey) == 0 {
		return q
	}
	isKey := map[string]bool{}
	for _, k := range s.PrimaryKey {
		isKey[k] = true
	}
	var sets []string
	for _, c := range cols {
		if !isKey[c.Name] {
			sets = append(sets, fmt.Sprintf("%s = excluded.%s", qident(c.Name), qident(c.Name)))
		}
	}
	pk := quotedList(s.PrimaryKey)
	if len(sets) == 0 {
		return q + fmt.Sprintf(" ON CONFLICT (%s) DO NOTHING", pk)
	}
	q += fmt.Sprintf(" ON CONFLICT (%s) DO UPDATE SET %s", pk, strings.Join(sets, ", "))
	if hasCursor(s, cols) {
		c := qident(s.CursorField)
		q += fmt.Sprintf(" WHERE excluded.%s >= t.%s OR excluded.%s IS NULL OR t.%s IS NULL", c, c, c, c)
	}
	return q
}

// newestSQL selects a stage's rows, one per primary key: the newest by cursor, NULL counting
// as oldest, ties going to the last loaded. Without a primary key every row, in load order.
func newestSQL(stage string, s catalog.Stream, cols []catalog.Column) string {
	list := columnList(cols)
	if len(s.PrimaryKey) == 0 {
		return fmt.Sprintf("SELECT %s FROM %s ORDER BY %s", list, stage, quote(ordColumn))
	}
	pk := quotedList(s.PrimaryKey)
	order := pk
	if hasCursor(s, cols) {
		order += ", " + qident(s.CursorField) + " DESC NULLS LAST"
	}
	order += ", " + quote(ordColumn) + " DESC"
	return fmt.Sprintf("SELECT DISTINCT ON (%s) %s FROM %s ORDER BY %s", pk, list, stage, order)
}

func hasCursor(s catalog.Stream, cols []catalog.Column) bool {
	return s.CursorField != "" && catalog.IndexOf(cols, s.CursorField) >= 0
}

func columnList(cols []catalog.Column) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = qident(c.Name)
	}
	return strings.Join(q, ", ")
}

// pgValue checks a batch value against the Batch contract and makes strings storable:
// PostgreSQL text cannot hold NUL bytes or invalid UTF-8, and jsonb refuses \u0000.
func pgValue(v any, t catalog.Type) (any, error) {
	switch x := v.(type) {
	case nil, int64, float64, bool:
		return v, nil
	case time.Time:
		if x.Location() == time.UTC {
			return v, nil // boxing a copy would allocate for every value
		}
		return x.UTC(), nil
	case int:
		return int64(x), nil
	case string:
		clean := cleanText
		if t == catalog.JSON {
			clean = cleanJSON
		}
		if c := clean(x); c != x {
			return c, nil
		}
		return v, nil // unchanged: reuse the boxed string rather than allocate another
	}
	return nil, fmt.Errorf("unsupported value of type %T", v)
}

func cleanText(s string) string {
	if isClean(s) {
		return s
	}
	return strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
}

// isClean reports whether PostgreSQL's text holds s as it is: no NUL byte, valid UTF-8. Most
// values of a batch are short and ASCII: one pass over them costs less than the two calls that
// scan long ones faster.
func isClean(s string) bool {
	if len(s) > 32 {
		return strings.IndexByte(s, 0) < 0 && utf8.ValidString(s)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == 0:
			return false
		case c >= utf8.RuneSelf:
			return strings.IndexByte(s[i:], 0) < 0 && utf8.ValidString(s[i:])
		}
	}
	return true
}

// cleanJSON drops NUL characters from JSON text: raw ones (invalid JSON anyway) and \u0000
// escapes inside strings, which jsonb cannot store.
func cleanJSON(s string) string {
	s = cleanText(s)
	if !strings.Contains(s, `\u0000`) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	inString := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case !inString:
			inString = c == '"'
		case c == '"':
			inString = false
		case c == '\\':
			if strings.HasPrefix(s[i:], `\u0000`) {
				i += len(`\u0000`) - 1
				continue
			}
			if i+1 < len(s) { // keep an escape pair together: `\\u0000` is not a NUL
				b.WriteByte(c)
				i++
				c = s[i]
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}

// Replace starts an atomic replacement. Batches reach an unlogged stage table in the schema
// through Write's temp table (COPY never targets the stage: its column types change when the
// table widens). Commit swaps the rows in with DELETE + INSERT … SELECT in one transaction, so
// a reader sees the old rows or the new ones, never a mix, and views and grants on the table
// survive.
func (d *Destination) Replace(ctx context.Context, t destination.Table) (destination.Replacement, error) {
	r := &replacement{
		d: d, table: t,
		target: d.Table(t.Stream.Name),
		stage:  quote(d.schema) + "." + qident("_crmsync_stage_"+t.Stream.Name),
	}
	// A stage left by a crashed sync is stale: start over.
	if _, err := d.pool.Exec(ctx, "DROP TABLE IF EXISTS "+r.stage); err != nil {
		return nil, fmt.Errorf("replace %s.%s: %w", d.schema, Ident(t.Stream.Name), err)
	}
	return r, nil
}

type replacement struct {
	d      *Destination
	table  destination.Table
	target string
	stage  string

	mu     sync.Mutex
	cols   []catalog.Column // columns of the stage; nil until the first write
	staged int64            // rows staged so far
}

func (r *replacement) fail(err error) error {
	return fmt.Errorf("replace %s.%s: %w", r.d.schema, Ident(r.table.Stream.Name), err)
}

func (r *replacement) Write(ctx context.Context, b destination.Batch) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(b.Rows) == 0 {
		return nil
	}
	var cols []catalog.Column
	err := pgx.BeginFunc(ctx, r.d.pool, func(tx pgx.Tx) error {
		var stmts []string
		if r.cols == nil {
			cols, _, _ = catalog.Merge(nil, b.Columns)
			stmts = createSQL(r.stage, r.table.Stream, cols, stageTable)
		} else {
			// The table may have gained or widened columns since the last batch.
			var added []catalog.Column
			var widened []catalog.Widening
			cols, added, widened = catalog.Merge(r.cols, b.Columns)
			if s := alterSQL(r.stage, added, widened); s != "" {
				stmts = append(stmts, s)
			}
		}
		if err := checkNames(cols); err != nil {
			return err
		}
		for _, s := range stmts {
			if _, err := tx.Exec(ctx, s); err != nil {
				return fmt.Errorf("stage: %w", err)
			}
		}
		batch, err := stageBatch(ctx, tx, r.table.Stream, b.Columns, b.Rows, r.staged)
		if err != nil {
			return err
		}
		list := columnList(b.Columns) + ", " + quote(ordColumn)
		if _, err := tx.Exec(ctx, fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s", r.stage, list, list, batch)); err != nil {
			return fmt.Errorf("stage: %w", err)
		}
		return nil
	})
	if err != nil {
		return r.fail(err)
	}
	r.cols = cols
	r.staged += int64(len(b.Rows))
	return nil
}

func (r *replacement) Commit(ctx context.Context, st state.Stream) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.table.Stream
	err := pgx.BeginFunc(ctx, r.d.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM "+r.target); err != nil {
			return fmt.Errorf("delete old rows: %w", err)
		}
		if r.cols != nil {
			// The table is empty now: no conflicts, only the stage's duplicates to resolve.
			q := fmt.Sprintf("INSERT INTO %s (%s) %s", r.target, columnList(r.cols), newestSQL(r.stage, s, r.cols))
			if _, err := tx.Exec(ctx, q); err != nil {
				return fmt.Errorf("insert new rows: %w", err)
			}
			if _, err := tx.Exec(ctx, "DROP TABLE "+r.stage); err != nil {
				return fmt.Errorf("drop stage: %w", err)
			}
		}
		return r.d.saveState(ctx, tx, r.table.Source, s.Name, st)
	})
	if err != nil {
		return r.fail(err)
	}
	r.cols, r.staged = nil, 0
	return nil
}

func (r *replacement) Abort(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.d.pool.Exec(ctx, "DROP TABLE IF EXISTS "+r.stage); err != nil {
		return r.fail(err)
	}
	r.cols, r.staged = nil, 0
	return nil
}
