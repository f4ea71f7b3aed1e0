package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/destination"
)

// Prepare creates the table or evolves it to hold cols: missing columns are added and types
// widened in place (ALTER COLUMN … TYPE … USING); nothing is dropped or narrowed. It returns
// the table's columns afterwards, in table order, with their logical names and types.
func (d *Destination) Prepare(ctx context.Context, t destination.Table, cols []catalog.Column) ([]catalog.Column, error) {
	table := Ident(t.Stream.Name)
	var out []catalog.Column
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		// Two processes evolving one table would otherwise race between reading the columns
		// and altering them.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey("table", d.schema, table)); err != nil {
			return err
		}
		if err := d.claim(ctx, tx, t); err != nil {
			return err
		}
		existing, err := d.columns(ctx, tx, table)
		if err != nil {
			return err
		}
		merged, added, widened := catalog.Merge(existing, cols)
		if err := checkNames(merged); err != nil {
			return err
		}
		if existing == nil {
			for _, s := range createSQL(d.Table(t.Stream.Name), t.Stream, merged, targetTable) {
				if _, err := tx.Exec(ctx, s); err != nil {
					return fmt.Errorf("create table: %w", err)
				}
			}
		} else if slices.ContainsFunc(widened, catalog.Widening.Converts) {
			if err := d.convert(ctx, tx, t.Stream.Name, cols, added, widened); err != nil {
				return err
			}
			d.mergeFromNowOn(t.Stream.Name)
		} else if s := alterSQL(d.Table(t.Stream.Name), added, widened); s != "" {
			if _, err := tx.Exec(ctx, s); err != nil {
				return fmt.Errorf("evolve columns: %w", err)
			}
			if len(widened) > 0 {
				// pgx caches a COPY target's column types by statement text, so a COPY
				// straight into the table would encode values as the old types.
				d.mergeFromNowOn(t.Stream.Name)
			}
		}
		if err := d.recordNames(ctx, tx, table, added); err != nil {
			return err
		}
		out = merged
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("prepare %s.%s: %w", d.schema, table, err)
	}
	return out, nil
}

// Claim implements destination.Destination: in one transaction, every table is checked and
// then registered to the source, or none is.
func (d *Destination) Claim(ctx context.Context, tables []destination.Table) error {
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = Ident(t.Stream.Name)
	}
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		// Prepare's lock per table, taken in one order so two claims never deadlock.
		for _, n := range slices.Sorted(slices.Values(names)) {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey("table", d.schema, n)); err != nil {
				return err
			}
		}
		return d.claim(ctx, tx, tables...)
	})
	if err != nil {
		return fmt.Errorf("claim tables in schema %s: %w", d.schema, err)
	}
	return nil
}

// claim registers which source owns each table, so two sources sharing a schema never write
// into one table and two streams whose names shorten alike never share one, and refuses
// tables crmsync did not create. It checks every table before registering any. The caller
// holds the tables' advisory locks.
func (d *Destination) claim(ctx context.Context, tx pgx.Tx, tables ...destination.Table) error {
	var (
		conflicts []destination.Conflict
		free      []destination.Table
	)
	for _, t := range tables {
		table := Ident(t.Stream.Name)
		var source, stream string
		err := tx.QueryRow(ctx, `SELECT source, stream FROM `+d.meta("_crmsync_tables")+` WHERE table_name = $1`, table).Scan(&source, &stream)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			var exists bool
			err = tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
				WHERE n.nspname = $1 AND c.relname = $2)`, d.schema, table).Scan(&exists)
			if err != nil {
				return err
			}
			if exists {
				conflicts = append(conflicts, destination.Conflict{Table: d.schema + "." + table})
			} else {
				free = append(free, t)
			}
		case err != nil:
			return err
		case source != t.Source:
			conflicts = append(conflicts, destination.Conflict{Table: d.schema + "." + table, Owner: source})
		case stream != t.Stream.Name:
			return fmt.Errorf("streams %q and %q both map to table %s", stream, t.Stream.Name, table)
		}
	}
	if len(conflicts) > 0 {
		src := tables[0].Source
		return &destination.ConflictError{Source: src, Conflicts: conflicts, WayOut: fmt.Sprintf(
			"give %s a schema of its own with --schema (the default is the source's name, %s)", src, src)}
	}
	for _, t := range free {
		_, err := tx.Exec(ctx, `INSERT INTO `+d.meta("_crmsync_tables")+` (table_name, source, stream) VALUES ($1, $2, $3)`, Ident(t.Stream.Name), t.Source, t.Stream.Name)
		if err != nil {
			return err
		}
	}
	return nil
}

// columns reads a table's columns back from information_schema, with the logical names of
// shortened ones; nil when the table does not exist.
func (d *Destination) columns(ctx context.Context, tx pgx.Tx, table string) ([]catalog.Column, error) {
	rows, err := tx.Query(ctx, `SELECT c.column_name::text, c.data_type::text, m.logical_name
		FROM information_schema.columns c
		LEFT JOIN `+d.meta("_crmsync_columns")+` m ON m.table_name = c.table_name::text AND m.column_name = c.column_name::text
		WHERE c.table_schema = $1 AND c.table_name = $2
		ORDER BY c.ordinal_position`, d.schema, table)
	if err != nil {
		return nil, fmt.Errorf("read columns: %w", err)
	}
	defer rows.Close()
	var cols []catalog.Column
	for rows.Next() {
		var (
			physical, dataType string
			logical            *string
		)
		if err := rows.Scan(&physical, &dataType, &logical); err != nil {
			return nil, fmt.Errorf("read columns: %w", err)
		}
		cols = append(cols, catalog.Column{Name: logicalName(logical, physical), Type: logicalType(dataType)})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read columns: %w", err)
	}
	return cols, nil
}

// recordNames remembers the logical name of every column whose identifier was shortened.
func (d *Destination) recordNames(ctx context.Context, tx pgx.Tx, table string, cols []catalog.Column) error {
	for _, c := range cols {
		if p := Ident(c.Name); p != c.Name {
			_, err := tx.Exec(ctx, `INSERT INTO `+d.meta("_crmsync_columns")+` (table_name, column_name, logical_name) VALUES ($1, $2, $3)
				ON CONFLICT DO NOTHING`, table, p, storedLogical(c.Name))
			if err != nil {
				return fmt.Errorf("record column name %q: %w", c.Name, err)
			}
		}
	}
	return nil
}

// storedLogical is how _crmsync_columns keeps a logical column name: text cannot hold NUL,
// so a name with NUL bytes is kept Go-quoted ("a\x00b").
func storedLogical(name string) string {
	if strings.IndexByte(name, 0) >= 0 {
		return strconv.Quote(name)
	}
	return name
}

// logicalName reads a stored logical name back (nil when none is stored: the column keeps
// its own name). A quoted form is trusted only when it is the column's: Ident hashes the
// whole name, so a long name that merely looks quoted stays as it is.
func logicalName(stored *string, physical string) string {
	if stored == nil {
		return physical
	}
	if u, err := strconv.Unquote(*stored); err == nil && strings.IndexByte(u, 0) >= 0 && Ident(u) == physical {
		return u
	}
	return *stored
}

// checkNames refuses two logical columns that map to one identifier (a SHA-256 prefix
// collision between two long names: astronomically unlikely, but never silent).
func checkNames(cols []catalog.Column) error {
	seen := make(map[string]string, len(cols))
	for _, c := range cols {
		p := Ident(c.Name)
		if other, ok := seen[p]; ok && other != c.Name {
			return fmt.Errorf("columns %q and %q both map to identifier %q", other, c.Name, p)
		}
		seen[p] = c.Name
	}
	return nil
}

// tableKind says what createSQL creates.
type tableKind int

const (
	targetTable tableKind = iota // a stream's table: primary key or version index
	stageTable                   // a replacement's stage: unlogged, no keys, an order column
	tempTable                    // Write's per-transaction stage: like stageTable, dropped at commit
)

// createSQL creates a table and, for append-only streams, the unique index on (key, version)
// that stores each version once.
func createSQL(table string, s catalog.Stream, cols []catalog.Column, kind tableKind) []string {
	var b strings.Builder
	switch kind {
	case stageTable:
		// A stage is rebuilt from scratch after a crash anyway, so it need not be WAL-logged.
		b.WriteString("CREATE UNLOGGED TABLE ")
	case tempTable:
		b.WriteString("CREATE TEMP TABLE ")
	default:
		b.WriteString("CREATE TABLE ")
	}
	b.WriteString(table + " (")
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(qident(c.Name) + " " + sqlType(c.Type))
	}
	if kind != targetTable {
		fmt.Fprintf(&b, ", %s bigint NOT NULL", quote(ordColumn))
	} else if s.Method != catalog.AppendOnly && len(s.PrimaryKey) > 0 {
		fmt.Fprintf(&b, ", PRIMARY KEY (%s)", quotedList(s.PrimaryKey))
	}
	b.WriteString(")")
	if kind == tempTable {
		b.WriteString(" ON COMMIT DROP")
	}
	stmts := []string{b.String()}
	if keys := destination.StoredKey(s); kind == targetTable && s.Method == catalog.AppendOnly && len(keys) > 0 {
		// No name: PostgreSQL picks one that is unique in the schema, whatever the table's name.
		stmts = append(stmts, fmt.Sprintf("CREATE UNIQUE INDEX ON %s (%s) NULLS NOT DISTINCT", table, quotedList(keys)))
	}
	return stmts
}

// alterSQL adds and widens columns in one statement (one table rewrite at most), or "".
func alterSQL(table string, added []catalog.Column, widened []catalog.Widening) string {
	var parts []string
	for _, c := range added {
		parts = append(parts, fmt.Sprintf("ADD COLUMN %s %s", qident(c.Name), sqlType(c.Type)))
	}
	for _, w := range widened {
		parts = append(parts, fmt.Sprintf("ALTER COLUMN %s TYPE %s USING %s", qident(w.Name), sqlType(w.To), convertExpr(qident(w.Name), w.From, w.To)))
	}
	if len(parts) == 0 {
		return ""
	}
	return "ALTER TABLE " + table + " " + strings.Join(parts, ", ")
}

// convert upgrades text columns to the timestamp, date or JSON columns their declarations ask
// for (catalog.Widening.Converts), with the other changes of the same Prepare: columns are
// added first, so the column that keeps a field as sent and the unparsed column can take the
// old text; instants and dates are rewritten as the engine reads them (destination.ParsedText)
// while still text; then every type changes in one ALTER, JSON through jsonFromTextSQL.
func (d *Destination) convert(ctx context.Context, tx pgx.Tx, stream string, cols, added []catalog.Column, changed []catalog.Widening) error {
	table := d.Table(stream)
	if s := alterSQL(table, added, nil); s != "" {
		if _, err := tx.Exec(ctx, s); err != nil {
			return fmt.Errorf("evolve columns: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, jsonFromTextSQL); err != nil {
		return fmt.Errorf("convert columns: %w", err)
	}
	for _, w := range changed {
		if w.Converts() && w.To.Temporal() {
			if err := convertParsed(ctx, tx, table, w, destination.RawOf(cols, w.Name)); err != nil {
				return fmt.Errorf("convert %s to %s: %w", w.Name, w.To, err)
			}
		}
	}
	if _, err := tx.Exec(ctx, alterSQL(table, nil, changed)); err != nil {
		return fmt.Errorf("convert columns: %w", err)
	}
	return nil
}

// jsonFromTextSQL is record.JSONFromText in SQL, for the transaction that needs it: text that
// is a JSON object or array is that document, any other text a JSON string.
const jsonFromTextSQL = `CREATE OR REPLACE FUNCTION pg_temp.crmsync_json_from_text(t text) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	IF left(ltrim(t, E' \t\r\n'), 1) IN ('{', '[') THEN
		BEGIN
			RETURN t::jsonb;
		EXCEPTION WHEN others THEN
			NULL; -- not JSON after all: a string
		END;
	END IF;
	RETURN to_jsonb(t);
END $$`

// convertParsed rewrites a text column that is about to become a timestamp or date column:
// each value as the engine reads it (ISO text, which casts whatever the DateStyle), or NULL
// with the text kept in the unparsed column; the text also goes to the column that keeps the
// field as sent, when the declaration names one.
func convertParsed(ctx context.Context, tx pgx.Tx, table string, w catalog.Widening, raw string) error {
	col, unparsed := qident(w.Name), qident(destination.UnparsedColumn)
	if raw != "" {
		if _, err := tx.Exec(ctx, fmt.Sprintf("UPDATE %s SET %s = %s WHERE %s IS NOT NULL", table, qident(raw), col, col)); err != nil {
			return err
		}
	}
	rows, err := tx.Query(ctx, fmt.Sprintf("SELECT DISTINCT %s FROM %s WHERE %s IS NOT NULL", col, table, col))
	if err != nil {
		return err
	}
	values, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	parsed := destination.ParsedText(values, w.To)
	raws, texts := make([]string, 0, len(parsed)), make([]string, 0, len(parsed))
	for v, text := range parsed {
		raws, texts = append(raws, v), append(texts, text)
	}
	stmts := []string{
		`CREATE TEMP TABLE _crmsync_parsed (raw text PRIMARY KEY, value text NOT NULL) ON COMMIT DROP`,
		`INSERT INTO _crmsync_parsed (raw, value) SELECT * FROM unnest($1::text[], $2::text[])`,
		fmt.Sprintf(`UPDATE %[1]s SET %[3]s = coalesce(%[3]s, '{}'::jsonb) || jsonb_build_object($1::text, %[2]s)
			WHERE %[2]s IS NOT NULL AND NOT EXISTS (SELECT 1 FROM _crmsync_parsed m WHERE m.raw = %[2]s)`, table, col, unparsed),
		fmt.Sprintf(`UPDATE %[1]s SET %[2]s = (SELECT m.value FROM _crmsync_parsed m WHERE m.raw = %[2]s) WHERE %[2]s IS NOT NULL`, table, col),
		`DROP TABLE _crmsync_parsed`,
	}
	args := [][]any{nil, {raws, texts}, {w.Name}, nil, nil}
	for i, st := range stmts {
		if _, err := tx.Exec(ctx, st, args[i]...); err != nil {
			return err
		}
	}
	return nil
}

// convertExpr converts a column's values when its type widens. Text forms match what the
// engine writes for new values of the wider type: numbers in shortest exact form, booleans as
// true/false, instants as RFC 3339 UTC with microseconds (as the SQLite destination stores them).
// Text turning into JSON goes through jsonFromTextSQL; text turning into instants or dates
// holds ISO text by then (convertParsed).
func convertExpr(col string, from, to catalog.Type) string {
	if from == catalog.String && to == catalog.JSON {
		return "pg_temp.crmsync_json_from_text(" + col + ")"
	}
	if to == catalog.String && from == catalog.Timestamp {
		return fmt.Sprintf(`to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`, col)
	}
	return col + "::" + sqlType(to)
}

// storedTypes is how each logical type is stored: the SQL type a column is created as, and its
// OID (COPY encodes a value for it). Anything else is text.
var storedTypes = map[catalog.Type]struct {
	name string
	oid  uint32
}{
	catalog.Integer:   {"bigint", pgtype.Int8OID},
	catalog.Number:    {"double precision", pgtype.Float8OID},
	catalog.Boolean:   {"boolean", pgtype.BoolOID},
	catalog.Timestamp: {"timestamptz", pgtype.TimestamptzOID},
	catalog.Date:      {"date", pgtype.DateOID},
	catalog.JSON:      {"jsonb", pgtype.JSONBOID},
}

func sqlType(t catalog.Type) string {
	if st, ok := storedTypes[t]; ok {
		return st.name
	}
	return "text"
}

// sqlTypeOID is the OID of sqlType(t) (TestSQLTypeOIDs asks the server).
func sqlTypeOID(t catalog.Type) uint32 {
	if st, ok := storedTypes[t]; ok {
		return st.oid
	}
	return pgtype.TextOID
}

// logicalType reads information_schema's data_type back; types crmsync does not create (a
// column added by hand) map to the closest logical type.
func logicalType(dataType string) catalog.Type {
	switch dataType {
	case "bigint", "integer", "smallint":
		return catalog.Integer
	case "double precision", "real", "numeric":
		return catalog.Number
	case "boolean":
		return catalog.Boolean
	case "timestamp with time zone", "timestamp without time zone":
		return catalog.Timestamp
	case "date":
		return catalog.Date
	case "jsonb", "json":
		return catalog.JSON
	default:
		return catalog.String
	}
}
