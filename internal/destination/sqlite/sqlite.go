// Package sqlite is the embedded default destination: one SQLite file (pure Go driver, no cgo).
//
// Naming: a table is named after its stream; with a schema (namespace) it is "<schema>_<stream>",
// which lets several sources share one file. _crmsync_tables records which source owns each
// table; a table it does not list was not created by crmsync (an application's own table in a
// shared file) and is never altered, filled or dropped: a sync that would write one is
// refused, naming it, before any change (Claim). Names compare case-insensitively, as SQLite's.
//
// Column names: a field is stored under its own name unless SQLite cannot take it as it is —
// a name equal, ignoring ASCII case, to another column of the table (SQLite compares names
// so: "Name" beside "name"), rowid, oid or _rowid_ (in any case; they would hide the rowid),
// a name with a NUL byte or invalid UTF-8, or the empty name. Such a field is stored as its
// name without NUL bytes and invalid UTF-8, "_" and the first 8 hex digits of the SHA-256 of
// the whole name ("rowid" → "rowid_<8 hex>"), and the mapping is recorded in _crmsync_columns
// (table_name, column_name, logical_name), as the PostgreSQL destination records shortened
// names; Prepare reports the field names. A column keeps its name once created. Among new
// columns that differ only in case, crmsync's own come first, then a name already in lower
// case, then byte order, so which keeps its spelling does not depend on the order fields
// arrive in. Column names are the API's field names, quoted.
// Types: BIGINT (integer affinity, never a rowid alias), REAL, BOOLEAN (0/1), TIMESTAMP (UTC text "2006-01-02T15:04:05.000000Z", which
// sorts in time order), DATE (text "2006-01-02", which sorts in day order), TEXT and JSON TEXT
// (JSON text with text affinity; "JSON" in tables made before). The declared type is how the
// logical type is read back, so no side table is needed; widening rebuilds the table in one
// transaction, and so does the upgrade of a text column to a timestamp, date or JSON column
// (catalog.Widening.Converts): instants and dates are re-read by the engine's parser (convertParsed), text
// that is a JSON object or array stays that document and other text becomes a JSON string.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/record"
	"github.com/crmsync/crmsync/internal/state"
)

// TimeLayout is how timestamps are stored: fixed width, so text order is time order.
const TimeLayout = destination.TimeLayout

// metaVersion is the version of crmsync's own bookkeeping tables in the file.
const metaVersion = 1

// Destination writes to one SQLite file.
type Destination struct {
	path   string
	schema string
	db     *sql.DB
	// mu serialises write transactions: SQLite has one writer, and holding the lock in Go
	// avoids busy-retry storms between the streams of one sync.
	mu sync.Mutex
	// bulk: the file was new at Open and uses a rollback journal until Close.
	bulk bool
	// colNames caches each table's renamed columns (see names). Guarded by mu.
	colNames map[string]colNames
	// raw is the connection Write's transactions run on (see rawConn). Guarded by mu.
	raw *rawConn
	// stmts keeps Write's statements prepared across batches, on raw. Guarded by mu.
	stmts *statementCache
	// loading holds the tables this process loads without their key index (BeginLoad).
	// Guarded by mu.
	loading map[string]bool
}

// Open opens (creating with mode 0600 if needed) the SQLite file at path. Tables are prefixed
// with "<schema>_" when schema is not empty.
func Open(ctx context.Context, path, schema string) (*Destination, error) {
	if path == "" {
		return nil, errors.New("sqlite destination: empty file path")
	}
	if dir := filepath.Dir(path); dir != "" {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("sqlite destination: directory %s does not exist", dir)
		}
	}
	// Create the file ourselves so its mode is 0600; SQLite gives its journal files the same mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite destination: open %s: %w", path, err)
	}
	st, err := f.Stat()
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("sqlite destination: open %s: %w", path, err)
	}
	// A new file is about to take a first sync, a bulk load nobody reads yet. A rollback
	// journal writes its new pages once, where WAL writes each twice (log, then checkpoint):
	// the first sync runs 30–70 % faster that way. Close then switches the file to WAL, under
	// which later syncs never block readers. 16 KiB pages keep most CRM records (often a few KB
	// of nested JSON) off overflow pages; the page size is fixed when the file is created.
	bulk := st.Size() == 0
	journal := "WAL"
	if bulk {
		journal = "DELETE"
	}
	uri, err := fileURI(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite destination: %w", err)
	}
	dsn := uri + "?_pragma=page_size(16384)&_pragma=journal_mode(" + journal + ")&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(off)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite destination: %w", err)
	}
	db.SetMaxOpenConns(1)
	d := &Destination{path: path, schema: schema, db: db, bulk: bulk, colNames: map[string]colNames{}, loading: map[string]bool{}}
	if err := d.init(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if d.raw, err = openRaw(uri); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite destination: open %s: %w", path, err)
	}
	d.stmts = newStatementCache(d.raw)
	return d, nil
}

// fileURI turns a file path into a "file:" URI that names exactly that file. The driver splits
// its own parameters off at the first '?', and SQLite ends the path at '?' or '#' and decodes
// %HH in it, so every byte outside a small safe set is percent-encoded. The path is made
// absolute so the URI always has the empty-authority form "file:///..." (a relative path
// starting with "//" would otherwise read as an authority); on Windows that is
// "file:///C:/...", which SQLite's Windows VFS accepts.
func fileURI(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", path, err)
	}
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len("file://") + 3*len(p))
	b.WriteString("file://")
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '/', c == '-', c == '.', c == '_', c == '~', c == ':':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String(), nil
}

func (d *Destination) init(ctx context.Context) error {
	stmts := []string{
		`CREATE TABLE IF NOT EXISTS _crmsync_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS _crmsync_state (source TEXT NOT NULL, stream TEXT NOT NULL, state TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (source, stream))`,
		`CREATE TABLE IF NOT EXISTS _crmsync_tables (table_name TEXT PRIMARY KEY, source TEXT NOT NULL, stream TEXT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS _crmsync_columns (table_name TEXT NOT NULL, column_name TEXT NOT NULL, logical_name TEXT NOT NULL, PRIMARY KEY (table_name, column_name))`,
		loadingTable,
		customFieldsTable,
	}
	for _, s := range stmts {
		if _, err := d.db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("sqlite destination: initialise %s: %w", d.path, err)
		}
	}
	var v string
	err := d.db.QueryRowContext(ctx, `SELECT value FROM _crmsync_meta WHERE key = 'format_version'`).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		_, err = d.db.ExecContext(ctx, `INSERT INTO _crmsync_meta (key, value) VALUES ('format_version', ?)`, fmt.Sprint(metaVersion))
		if err != nil {
			return fmt.Errorf("sqlite destination: %w", err)
		}
	case err != nil:
		return fmt.Errorf("sqlite destination: read format version: %w", err)
	case v != fmt.Sprint(metaVersion):
		return fmt.Errorf("sqlite destination: %s was written by a release with format version %s; this release reads version %d", d.path, v, metaVersion)
	}
	return nil
}

// DB exposes the connection for tests and tools that read the replica.
func (d *Destination) DB() *sql.DB { return d.db }

// Close closes the database, first switching a file created by this Open to WAL.
func (d *Destination) Close() error {
	d.mu.Lock()
	d.stmts.reset()
	rawErr := d.raw.close() // first: the switch to WAL needs the file to itself
	d.mu.Unlock()
	if rawErr != nil {
		d.db.Close()
		return fmt.Errorf("sqlite destination: close %s: %w", d.path, rawErr)
	}
	if d.bulk {
		// Best effort: a reader holding the file keeps it in rollback mode, and the next Open
		// switches it then.
		d.db.Exec("PRAGMA journal_mode=WAL")
	}
	return d.db.Close()
}

// TableName is the SQLite table a stream is written to.
func (d *Destination) TableName(stream string) string {
	if d.schema == "" {
		return stream
	}
	return d.schema + "_" + stream
}

// Lock takes an exclusive OS lock on a file next to the database; release removes the file. The
// kernel drops the lock if the process dies, so a crashed sync leaves at most an unlocked file,
// never a stale lock. Where flock is unavailable this is a no-op (see lock_other.go).
func (d *Destination) Lock(ctx context.Context, source string) (func(), error) {
	return lockFile(d.path + ".crmsync-" + source + ".lock")
}

// Prepare creates or evolves the table.
func (d *Destination) Prepare(ctx context.Context, t destination.Table, cols []catalog.Column) ([]catalog.Column, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stmts.reset() // the tables the statements write may change
	name := d.TableName(t.Stream.Name)
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("prepare %s: %w", name, err)
	}
	defer tx.Rollback()
	if err := d.claim(ctx, tx, t); err != nil {
		return nil, err
	}
	names, err := d.names(ctx, tx, name)
	if err != nil {
		return nil, err
	}
	stored, err := tableColumns(ctx, tx, name)
	if err != nil {
		return nil, err
	}
	existing := names.logical(stored)
	merged, added, widened := catalog.Merge(existing, cols)
	if existing == nil {
		added, merged = cols, cols
	}
	if names, err = nameColumns(ctx, tx, name, names, stored, added); err != nil {
		return nil, err
	}
	s := names.stream(t.Stream)
	if existing == nil {
		if _, err := tx.ExecContext(ctx, createTableSQL(name, s, names.cols(cols))); err != nil {
			return nil, fmt.Errorf("create table %s: %w", name, err)
		}
		for _, st := range indexSQL(name, s) {
			if _, err := tx.ExecContext(ctx, st); err != nil {
				return nil, fmt.Errorf("create index on %s: %w", name, err)
			}
		}
	} else {
		for _, c := range names.cols(added) {
			if _, err := tx.ExecContext(ctx, fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", quote(name), quote(c.Name), sqlType(c.Type))); err != nil {
				return nil, fmt.Errorf("add column %s.%s: %w", name, c.Name, err)
			}
		}
		for _, w := range widened {
			if w.Converts() && w.To.Temporal() {
				if err := convertParsed(ctx, tx, name, names, w, destination.RawOf(cols, w.Name)); err != nil {
					return nil, err
				}
			}
		}
		if len(widened) > 0 {
			if err := rebuild(ctx, tx, name, s, names.cols(existing), names.cols(merged), !d.loading[name]); err != nil {
				return nil, err
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("prepare %s: %w", name, err)
	}
	d.colNames[name] = names
	return merged, nil
}

// Claim implements destination.Destination: in one transaction, every table is checked and
// then registered to the source, or none is.
func (d *Destination) Claim(ctx context.Context, tables []destination.Table) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("claim tables: %w", err)
	}
	defer tx.Rollback()
	if err := d.claim(ctx, tx, tables...); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("claim tables: %w", err)
	}
	if len(tables) == 0 {
		return nil
	}
	return d.finishSourceLoads(ctx, tables[0].Source)
}

// claim registers which source owns each table, so two sources never write into one table,
// and refuses tables crmsync did not create. It checks every table before registering any.
func (d *Destination) claim(ctx context.Context, tx *sql.Tx, tables ...destination.Table) error {
	var (
		conflicts []destination.Conflict
		free      []destination.Table
	)
	for _, t := range tables {
		name := d.TableName(t.Stream.Name)
		owner, taken, err := tableOwner(ctx, tx, name)
		if err != nil {
			return fmt.Errorf("claim %s: %w", name, err)
		}
		switch {
		case !taken:
			free = append(free, t)
		case owner != t.Source:
			conflicts = append(conflicts, destination.Conflict{Table: name, Owner: owner})
		}
	}
	if len(conflicts) > 0 {
		src, stream := tables[0].Source, tables[0].Stream.Name
		return &destination.ConflictError{Source: src, Conflicts: conflicts, WayOut: fmt.Sprintf(
			"give %s tables of its own with --schema, which in SQLite prefixes the table names (--schema %s writes %s)",
			src, src, src+"_"+stream)}
	}
	for _, t := range free {
		_, err := tx.ExecContext(ctx, `INSERT INTO _crmsync_tables (table_name, source, stream) VALUES (?, ?, ?)`, d.TableName(t.Stream.Name), t.Source, t.Stream.Name)
		if err != nil {
			return fmt.Errorf("claim %s: %w", d.TableName(t.Stream.Name), err)
		}
	}
	return nil
}

// tableOwner says whether the name is taken and by which source: "" for a table (or view,
// index, trigger) crmsync did not create. SQLite names are case-insensitive (ASCII), and so
// are these lookups.
func tableOwner(ctx context.Context, tx *sql.Tx, name string) (owner string, taken bool, err error) {
	err = tx.QueryRowContext(ctx, `SELECT source FROM _crmsync_tables WHERE table_name = ? COLLATE NOCASE`, name).Scan(&owner)
	if err == nil || !errors.Is(err, sql.ErrNoRows) {
		return owner, err == nil, err
	}
	var n int
	err = tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE name = ? COLLATE NOCASE`, name).Scan(&n)
	return "", n > 0, err
}

func tableColumns(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, name string) ([]catalog.Column, error) {
	rows, err := q.QueryContext(ctx, fmt.Sprintf("PRAGMA table_info(%s)", quote(name)))
	if err != nil {
		return nil, fmt.Errorf("read columns of %s: %w", name, err)
	}
	defer rows.Close()
	var cols []catalog.Column
	for rows.Next() {
		var (
			cid, notnull, pk int
			colName, typ     string
			dflt             sql.NullString
		)
		if err := rows.Scan(&cid, &colName, &typ, &notnull, &dflt, &pk); err != nil {
			return nil, err
		}
		cols = append(cols, catalog.Column{Name: colName, Type: logicalType(typ)})
	}
	return cols, rows.Err()
}

// rebuild re-creates the table with wider column types and copies the rows over. SQLite cannot
// alter a column's type, and storing text in an INTEGER column would turn "007" into 7.
// old holds the types before widening (columns added since are absent or equal). indexed:
// the table has its key index (it is not being loaded).
func rebuild(ctx context.Context, tx *sql.Tx, name string, s catalog.Stream, old, cols []catalog.Column, indexed bool) error {
	tmp := "_crmsync_rebuild_" + name
	was := map[string]catalog.Type{}
	for _, c := range old {
		was[c.Name] = c.Type
	}
	exprs := make([]string, len(cols))
	for i, c := range cols {
		exprs[i] = convertExpr(quote(c.Name), was[c.Name], c.Type)
	}
	stmts := []string{
		"DROP TABLE IF EXISTS " + quote(tmp),
		createTableSQL(tmp, s, cols),
		fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s", quote(tmp), columnList(cols), strings.Join(exprs, ", "), quote(name)),
		"DROP TABLE " + quote(name),
		fmt.Sprintf("ALTER TABLE %s RENAME TO %s", quote(tmp), quote(name)),
	}
	if indexed {
		stmts = append(stmts, indexSQL(name, s)...)
	}
	for _, st := range stmts {
		if _, err := tx.ExecContext(ctx, st); err != nil {
			return fmt.Errorf("widen columns of %s: %w", name, err)
		}
	}
	return nil
}

// convertParsed rewrites a text column that becomes a timestamp or date column (see
// destination.ParsedText) before the rebuild gives it its type: each value as the engine
// would store it, or NULL with the text kept in the unparsed column; the text is also kept in
// the column that keeps the field as sent, when the declaration names one.
func convertParsed(ctx context.Context, tx *sql.Tx, table string, names colNames, w catalog.Widening, raw string) error {
	t, col, unparsed := quote(table), quote(names.col(w.Name)), quote(names.col(destination.UnparsedColumn))
	fail := func(err error) error { return fmt.Errorf("convert %s.%s to %s: %w", table, w.Name, w.To, err) }
	if raw != "" {
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("UPDATE %s SET %s = %s WHERE %s IS NOT NULL", t, quote(names.col(raw)), col, col)); err != nil {
			return fail(err)
		}
	}
	values, err := distinctText(ctx, tx, fmt.Sprintf("SELECT DISTINCT CAST(%s AS TEXT) FROM %s WHERE %s IS NOT NULL", col, t, col))
	if err != nil {
		return fail(err)
	}
	stmts := []string{"DROP TABLE IF EXISTS temp._crmsync_parsed", "CREATE TEMP TABLE _crmsync_parsed (raw TEXT PRIMARY KEY, value TEXT NOT NULL)"}
	for _, st := range stmts {
		if _, err := tx.ExecContext(ctx, st); err != nil {
			return fail(err)
		}
	}
	for v, text := range destination.ParsedText(values, w.To) {
		if _, err := tx.ExecContext(ctx, "INSERT INTO temp._crmsync_parsed (raw, value) VALUES (?, ?)", v, text); err != nil {
			return fail(err)
		}
	}
	stmts = []string{
		fmt.Sprintf("UPDATE %[1]s SET %[3]s = json_patch(coalesce(%[3]s, '{}'), json_object(?, %[2]s)) WHERE %[2]s IS NOT NULL AND %[2]s NOT IN (SELECT raw FROM temp._crmsync_parsed)", t, col, unparsed),
		fmt.Sprintf("UPDATE %[1]s SET %[2]s = (SELECT value FROM temp._crmsync_parsed WHERE raw = %[2]s) WHERE %[2]s IS NOT NULL", t, col),
		"DROP TABLE temp._crmsync_parsed",
	}
	for i, st := range stmts {
		var args []any
		if i == 0 {
			args = []any{w.Name}
		}
		if _, err := tx.ExecContext(ctx, st, args...); err != nil {
			return fail(err)
		}
	}
	return nil
}

// distinctText runs a query of one text column and returns its values.
func distinctText(ctx context.Context, tx *sql.Tx, query string) ([]string, error) {
	rows, err := tx.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// convertExpr converts a column's stored values when its type widens to text, so old rows
// read like the text the engine writes for new values: booleans as true/false (not 1/0) and
// integral numbers without a trailing ".0"; other numbers keep SQLite's exact (round-trip) text.
// A text column turning into JSON keeps the text of an object or array as that document and
// makes any other text a JSON string (record.JSONFromText); one turning into instants or dates
// was rewritten by convertParsed.
func convertExpr(col string, from, to catalog.Type) string {
	if from == catalog.String && to == catalog.JSON {
		return fmt.Sprintf("CASE WHEN %[1]s IS NULL OR (json_valid(%[1]s) AND json_type(%[1]s) IN ('object', 'array')) THEN %[1]s ELSE json_quote(CAST(%[1]s AS TEXT)) END", col)
	}
	if to != catalog.String || from == to {
		return col
	}
	switch from {
	case catalog.Boolean:
		return fmt.Sprintf("CASE typeof(%[1]s) WHEN 'integer' THEN CASE WHEN %[1]s THEN 'true' ELSE 'false' END ELSE %[1]s END", col)
	case catalog.Number:
		return fmt.Sprintf("CASE WHEN typeof(%[1]s) = 'real' AND abs(%[1]s) < 9007199254740992.0 AND %[1]s = CAST(%[1]s AS INTEGER) "+
			"THEN CAST(CAST(%[1]s AS INTEGER) AS TEXT) ELSE %[1]s END", col)
	}
	return col
}

func createTableSQL(name string, s catalog.Stream, cols []catalog.Column) string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE %s (", quote(name))
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quote(c.Name) + " " + sqlType(c.Type))
	}
	b.WriteString(")")
	return b.String()
}

// indexSQL creates the table's key index: a unique index rather than a PRIMARY KEY clause (as
// tables of earlier releases have), so that a first sync can load the table without it and
// build it once at the end (see BeginLoad).
func indexSQL(name string, s catalog.Stream) []string {
	ix := keyIndex(name, s)
	if ix.name == "" {
		return nil
	}
	return []string{fmt.Sprintf("CREATE UNIQUE INDEX IF NOT EXISTS %s ON %s (%s)", quote(ix.name), quote(name), strings.Join(ix.exprs, ", "))}
}

// index is a table's key index: its name and the expressions it indexes.
type index struct {
	name  string
	exprs []string
}

// keyIndex is the unique index upserts find stored rows by: the primary key, or for an
// append-only table, which keeps every version once, the version key with NULL counted as a
// value (so INSERT OR IGNORE skips versions already stored). None for a table without a key.
func keyIndex(name string, s catalog.Stream) index {
	if s.Method == catalog.AppendOnly {
		keys := destination.StoredKey(s)
		if len(keys) == 0 {
			return index{}
		}
		exprs := make([]string, len(keys))
		for i, k := range keys {
			exprs[i] = fmt.Sprintf("IFNULL(%s, '')", quote(k))
		}
		return index{name: "ux_" + name + "_version", exprs: exprs}
	}
	if len(s.PrimaryKey) == 0 {
		return index{}
	}
	exprs := make([]string, len(s.PrimaryKey))
	for i, k := range s.PrimaryKey {
		exprs[i] = quote(k)
	}
	return index{name: "ux_" + name + "_key", exprs: exprs}
}

func sqlType(t catalog.Type) string {
	switch t {
	case catalog.Integer:
		// Not "INTEGER": a single INTEGER primary key would become the rowid, and the table
		// itself would then be ordered by ids that arrive in random order (Copper's, sorted
		// by modification time), making every insert land on a random page of the whole
		// table — a 1M-row Copper sync ran 3× slower so. BIGINT has the same integer affinity.
		return "BIGINT"
	case catalog.Number:
		return "REAL"
	case catalog.Boolean:
		return "BOOLEAN"
	case catalog.Timestamp:
		return "TIMESTAMP"
	case catalog.Date:
		return "DATE"
	case catalog.JSON:
		// TEXT affinity: under "JSON" (NUMERIC affinity) SQLite would store the JSON number
		// 12345678901234567890 as an approximate REAL. Tables made before keep "JSON".
		return "JSON TEXT"
	default:
		return "TEXT"
	}
}

func logicalType(sqlType string) catalog.Type {
	switch strings.ToUpper(sqlType) {
	case "BIGINT", "INTEGER": // INTEGER: tables made by earlier builds
		return catalog.Integer
	case "REAL":
		return catalog.Number
	case "BOOLEAN":
		return catalog.Boolean
	case "TIMESTAMP":
		return catalog.Timestamp
	case "DATE":
		return catalog.Date
	case "JSON", "JSON TEXT":
		return catalog.JSON
	default:
		return catalog.String
	}
}

// State reads the saved state of a source's streams.
func (d *Destination) State(ctx context.Context, source string) (state.Source, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT stream, state FROM _crmsync_state WHERE source = ?`, d.stateKey(source))
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	defer rows.Close()
	out := state.Source{}
	for rows.Next() {
		var stream, raw string
		if err := rows.Scan(&stream, &raw); err != nil {
			return nil, err
		}
		st, err := state.Unmarshal([]byte(raw))
		if err != nil {
			return nil, fmt.Errorf("state of %s.%s: %w", source, stream, err)
		}
		out[stream] = st
	}
	return out, rows.Err()
}

// stateKey keeps the state of one source in different schemas apart.
func (d *Destination) stateKey(source string) string {
	if d.schema == "" {
		return source
	}
	return d.schema + "/" + source
}

func (d *Destination) saveState(ctx context.Context, tx execer, source, stream string, st state.Stream) error {
	raw, err := state.Marshal(st)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO _crmsync_state (source, stream, state, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (source, stream) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at`,
		d.stateKey(source), stream, string(raw), time.Now().UTC().Format(TimeLayout))
	if err != nil {
		return fmt.Errorf("save state of %s.%s: %w", source, stream, err)
	}
	return nil
}

// Write stores a batch and the stream state in one transaction, on the raw connection. Its
// rows are converted to the values SQLite stores and planned into statements before it takes
// the lock, so that the connection spends its time writing while other streams' batches are
// prepared.
func (d *Destination) Write(ctx context.Context, b destination.Batch, st state.Stream) error {
	toSQLValues(b.Rows, b.Columns)
	name := d.TableName(b.Table.Stream.Name)
	plan := planRows(b.Rows, b.Columns, destination.StoredKey(b.Table.Stream), d.stmts.shapesOf(name))
	d.mu.Lock()
	defer d.mu.Unlock()
	names, err := d.names(ctx, d.db, name)
	if err != nil {
		return err
	}
	s, cols := names.stream(b.Table.Stream), names.cols(b.Columns)
	sqlFor := func(named []catalog.Column, n int) string { return upsertRowsSQL(name, s, cols, named, n) }
	kind := "upsert"
	switch {
	case d.loading[name]:
		sqlFor, kind = func(named []catalog.Column, n int) string { return insertRowsSQL(name, named, n) }, "insert"
	case s.Method == catalog.AppendOnly:
		sqlFor, kind = func(named []catalog.Column, n int) string { return appendRowsSQL(name, s, named, n) }, "append"
	}
	prefix := name + "\x00" + kind + "\x00"
	// Statements are prepared before the transaction, so that it is short.
	stmts, err := d.stmts.prepare(plan, prefix, cols, sqlFor)
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return d.inRawTx(ctx, name, func(conn *rawConn) error {
		if err := d.stmts.exec(ctx, plan, stmts); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		if err := applyDeletes(ctx, conn, name, s, cols, b); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		return d.saveState(ctx, conn, b.Table.Source, b.Table.Stream.Name, st)
	})
}

// inRawTx runs do in one transaction on the raw connection, committed when do succeeds; a
// cancelled ctx interrupts the statement under way, and the interrupt ends before inRawTx
// does. The caller holds d.mu.
func (d *Destination) inRawTx(ctx context.Context, name string, do func(*rawConn) error) error {
	conn := d.raw
	interrupted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() { defer close(interrupted); conn.interrupt() })
	defer func() {
		if !stop() {
			<-interrupted
		}
	}()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	committed := false
	defer func() {
		if !committed {
			conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK") // a failed COMMIT may have ended it
		}
	}()
	if err := do(conn); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("commit %s: %w", name, err)
	}
	committed = true
	return nil
}

// InsertEach runs query, a single-row INSERT into table, once for each of rows, in one
// transaction on the connection Write uses, its values bound as Write binds them: the fastest
// way SQLite's C API offers to store rows, which the load ceiling (bench --load) measures.
func (d *Destination) InsertEach(ctx context.Context, table, query string, rows iter.Seq[[]any]) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.inRawTx(ctx, table, func(conn *rawConn) error {
		for row := range rows {
			if _, err := conn.ExecContext(ctx, query, row...); err != nil {
				return fmt.Errorf("write %s: %w", table, err)
			}
		}
		return nil
	})
}

// execer runs statements: a transaction, or a connection with one open.
type execer interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}

// toSQLValues turns the engine's values into those SQLite stores, in place: instants and days
// as text, booleans as integers. It is idempotent, so a batch written again is unchanged.
func toSQLValues(rows [][]any, cols []catalog.Column) {
	for _, row := range rows {
		for j, v := range row {
			switch v.(type) {
			case time.Time, bool:
				row[j] = sqlValue(v, cols[j].Type)
			}
		}
	}
}

// applyDeletes marks (or removes) the rows of the batch's deleted keys; s and cols name the
// table's columns as stored. A row marked before keeps its first mark.
func applyDeletes(ctx context.Context, tx execer, name string, s catalog.Stream, cols []catalog.Column, b destination.Batch) error {
	if len(b.Deleted) == 0 {
		return nil
	}
	keys := s.PrimaryKey
	where := make([]string, len(keys))
	types := make([]catalog.Type, len(keys))
	for i, k := range keys {
		// An append-only table's key index is on IFNULL(key, ''): the same expression finds
		// a key's versions through it (keys are never NULL), where "key = ?" scans the table.
		where[i] = quote(k) + " = ?"
		if s.Method == catalog.AppendOnly {
			where[i] = fmt.Sprintf("IFNULL(%s, '') = ?", quote(k))
		}
		if j := catalog.IndexOf(cols, k); j >= 0 {
			types[i] = cols[j].Type
		}
	}
	q := fmt.Sprintf("UPDATE %s SET %s = ? WHERE %s IS NULL AND %s", quote(name), quote(destination.DeletedAtColumn),
		quote(destination.DeletedAtColumn), strings.Join(where, " AND "))
	var lead []any
	if b.HardDelete {
		q = fmt.Sprintf("DELETE FROM %s WHERE %s", quote(name), strings.Join(where, " AND "))
	} else {
		lead = []any{sqlValue(b.DeletedAt.UTC(), catalog.Timestamp)}
	}
	for _, key := range b.Deleted {
		args := append([]any{}, lead...)
		for i, v := range key {
			args = append(args, sqlValue(v, types[i]))
		}
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("mark deleted rows: %w", err)
		}
	}
	return nil
}

// LiveKeys implements destination.KeyLister.
func (d *Destination) LiveKeys(ctx context.Context, t destination.Table, fn func(key []any) error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	name := d.TableName(t.Stream.Name)
	names, err := d.names(ctx, d.db, name)
	if err != nil {
		return err
	}
	s := names.stream(t.Stream)
	cols, err := tableColumns(ctx, d.db, name)
	if err != nil {
		return err
	}
	types := make([]catalog.Type, len(s.PrimaryKey))
	for i, k := range s.PrimaryKey {
		if j := catalog.IndexOf(cols, k); j >= 0 {
			types[i] = cols[j].Type
		}
	}
	rows, err := d.db.QueryContext(ctx, fmt.Sprintf("SELECT DISTINCT %s FROM %s WHERE %s IS NULL", quotedList(s.PrimaryKey), quote(name), quote(destination.DeletedAtColumn)))
	if err != nil {
		return fmt.Errorf("list keys of %s: %w", name, err)
	}
	defer rows.Close()
	for rows.Next() {
		key := make([]any, len(s.PrimaryKey))
		ptrs := make([]any, len(key))
		for i := range key {
			ptrs[i] = &key[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("list keys of %s: %w", name, err)
		}
		for i, v := range key {
			key[i] = keyValue(v, types[i])
		}
		if err := fn(key); err != nil {
			return err
		}
	}
	return rows.Err()
}

// keyValue turns a scanned key value into a Batch value of its column's type.
func keyValue(v any, t catalog.Type) any {
	switch v := v.(type) {
	case []byte:
		return string(v)
	case string:
		if t == catalog.Timestamp {
			if ts, err := time.Parse(time.RFC3339Nano, v); err == nil {
				return ts.UTC()
			}
		}
	}
	return v
}

// sortedByKey returns rows in key order and true when no two rows share their key values
// (and none lacks one); else rows as they are and false. CRM ids are random, so rows in
// arrival order would touch the key index's pages at random, and a batch of them dirties more
// pages than SQLite's cache holds; in key order each page is visited once per batch.
func sortedByKey(rows [][]any, cols []catalog.Column, keys []string) ([][]any, bool) {
	if len(keys) == 0 {
		return rows, true // no key: every row is inserted, in any order
	}
	rowKeys, ok := destination.RowKeys(rows, cols, keys)
	if !ok {
		return rows, false
	}
	order := make([]int, len(rows))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(rowKeys[a], rowKeys[b]) })
	sorted := make([][]any, len(rows))
	for n, i := range order {
		if n > 0 && rowKeys[i] == rowKeys[order[n-1]] {
			return rows, false
		}
		sorted[n] = rows[i]
	}
	return sorted, true
}

// formatTime is t.UTC().Format(TimeLayout), written digit by digit: the layout-driven
// formatter cost about 2.5 % of a Close sync's CPU, at several instants per row.
func formatTime(t time.Time) string {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.Format(TimeLayout)
	}
	hour, minute, second := t.Clock()
	var b [len(TimeLayout)]byte
	digits := func(at, n, v int) {
		for i := at + n - 1; i >= at; i-- {
			b[i] = byte('0' + v%10)
			v /= 10
		}
	}
	digits(0, 4, year)
	b[4] = '-'
	digits(5, 2, int(month))
	b[7] = '-'
	digits(8, 2, day)
	b[10] = 'T'
	digits(11, 2, hour)
	b[13] = ':'
	digits(14, 2, minute)
	b[16] = ':'
	digits(17, 2, second)
	b[19] = '.'
	digits(20, 6, t.Nanosecond()/1000)
	b[26] = 'Z'
	return string(b[:])
}

func sqlValue(v any, t catalog.Type) any {
	switch x := v.(type) {
	case time.Time:
		if t == catalog.Date {
			return x.Format(record.DateLayout) // the day, as the engine gives it
		}
		return formatTime(x)
	case bool:
		if x {
			return int64(1)
		}
		return int64(0)
	}
	return v
}

// upsertRowsSQL upserts n rows per statement (fewer statements spend less time in the driver
// per row; SQLite applies the rows in order, so a key repeated within one statement behaves as
// in separate ones). The rows fill the named columns; an update sets every column of the batch
// (cols), so a column the rows leave out becomes NULL as if bound. It replaces an existing row
// only with a version at least as new (by cursor), so a batch carrying an older copy of a row
// (re-reads, descending listings) never regresses it.
func upsertRowsSQL(name string, s catalog.Stream, cols, named []catalog.Column, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "INSERT INTO %s (%s) VALUES %s", quote(name), columnList(named), rowPlaceholders(len(named), n))
	if len(s.PrimaryKey) == 0 {
		return b.String() // nothing to upsert on
	}
	pk := map[string]bool{}
	for _, k := range s.PrimaryKey {
		pk[k] = true
	}
	var sets []string
	for _, c := range cols {
		if !pk[c.Name] {
			sets = append(sets, fmt.Sprintf("%s = excluded.%s", quote(c.Name), quote(c.Name)))
		}
	}
	if len(sets) == 0 {
		fmt.Fprintf(&b, " ON CONFLICT (%s) DO NOTHING", quotedList(s.PrimaryKey))
		return b.String()
	}
	fmt.Fprintf(&b, " ON CONFLICT (%s) DO UPDATE SET %s", quotedList(s.PrimaryKey), strings.Join(sets, ", "))
	if s.CursorField != "" {
		c := quote(s.CursorField)
		fmt.Fprintf(&b, " WHERE excluded.%s IS NULL OR %s.%s IS NULL OR excluded.%s >= %s.%s", c, quote(name), c, c, quote(name), c)
	}
	return b.String()
}

// appendRowsSQL inserts n rows, skipping versions (primary key + version field) already stored.
func appendRowsSQL(name string, s catalog.Stream, cols []catalog.Column, n int) string {
	verb := "INSERT OR IGNORE"
	if len(destination.StoredKey(s)) == 0 {
		verb = "INSERT"
	}
	return fmt.Sprintf("%s INTO %s (%s) VALUES %s", verb, quote(name), columnList(cols), rowPlaceholders(len(cols), n))
}

func rowPlaceholders(cols, n int) string {
	row := "(" + placeholders(cols) + ")"
	return strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
}

// Replace stages a full-table replacement.
func (d *Destination) Replace(ctx context.Context, t destination.Table) (destination.Replacement, error) {
	name := d.TableName(t.Stream.Name)
	r := &replacement{d: d, table: t, name: name, stage: "_crmsync_stage_" + name}
	d.mu.Lock()
	defer d.mu.Unlock()
	// A stage left by a crashed sync is stale: start over.
	if _, err := d.db.ExecContext(ctx, "DROP TABLE IF EXISTS "+quote(r.stage)); err != nil {
		return nil, fmt.Errorf("replace %s: %w", name, err)
	}
	return r, nil
}

type replacement struct {
	d      *Destination
	table  destination.Table
	name   string
	stage  string
	staged []catalog.Column // columns of the stage table, nil until the first write
}

func (r *replacement) Write(ctx context.Context, b destination.Batch) error {
	r.d.mu.Lock()
	defer r.d.mu.Unlock()
	tx, err := r.d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("stage %s: %w", r.name, err)
	}
	defer tx.Rollback()
	names, err := r.d.names(ctx, tx, r.name)
	if err != nil {
		return err
	}
	// The stage stores columns under the table's names.
	s, cols := names.stream(r.table.Stream), names.cols(b.Columns)
	// staged changes only once the transaction commits: a failed write leaves it as it was.
	staged := cols
	if r.staged == nil {
		for _, st := range append([]string{createTableSQL(r.stage, s, cols)}, indexSQL(r.stage, s)...) {
			if _, err := tx.ExecContext(ctx, st); err != nil {
				return fmt.Errorf("stage %s: %w", r.name, err)
			}
		}
	} else {
		var added []catalog.Column
		var widened []catalog.Widening
		staged, added, widened = catalog.Merge(r.staged, cols)
		for _, c := range added {
			if _, err := tx.ExecContext(ctx, fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", quote(r.stage), quote(c.Name), sqlType(c.Type))); err != nil {
				return fmt.Errorf("stage %s: %w", r.name, err)
			}
		}
		// The table was widened since the last batch: widen the stage too, or its INTEGER
		// affinity would store "007" as 7.
		if len(widened) > 0 {
			if err := rebuild(ctx, tx, r.stage, s, r.staged, staged, true); err != nil {
				return fmt.Errorf("stage %s: %w", r.name, err)
			}
		}
	}
	sqlFor := func(named []catalog.Column, n int) string {
		return upsertRowsSQL(r.stage, s, cols, named, n)
	}
	toSQLValues(b.Rows, b.Columns)
	if err := execPlan(ctx, tx, planRows(b.Rows, cols, s.PrimaryKey, nil), cols, sqlFor); err != nil {
		return fmt.Errorf("stage %s: %w", r.name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("stage %s: %w", r.name, err)
	}
	r.staged = staged
	return nil
}

func (r *replacement) Commit(ctx context.Context, st state.Stream) error {
	r.d.mu.Lock()
	defer r.d.mu.Unlock()
	tx, err := r.d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("replace %s: %w", r.name, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "DELETE FROM "+quote(r.name)); err != nil {
		return fmt.Errorf("replace %s: %w", r.name, err)
	}
	if r.staged != nil {
		cols := columnList(r.staged)
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s", quote(r.name), cols, cols, quote(r.stage))); err != nil {
			return fmt.Errorf("replace %s: %w", r.name, err)
		}
		if _, err := tx.ExecContext(ctx, "DROP TABLE "+quote(r.stage)); err != nil {
			return fmt.Errorf("replace %s: %w", r.name, err)
		}
	}
	if err := r.d.saveState(ctx, tx, r.table.Source, r.table.Stream.Name, st); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("replace %s: %w", r.name, err)
	}
	return nil
}

func (r *replacement) Abort(ctx context.Context) error {
	r.d.mu.Lock()
	defer r.d.mu.Unlock()
	_, err := r.d.db.ExecContext(ctx, "DROP TABLE IF EXISTS "+quote(r.stage))
	return err
}

func quote(id string) string { return `"` + strings.ReplaceAll(id, `"`, `""`) + `"` }

func quotedList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = quote(n)
	}
	return strings.Join(q, ", ")
}

func columnList(cols []catalog.Column) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = quote(c.Name)
	}
	return strings.Join(q, ", ")
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}
