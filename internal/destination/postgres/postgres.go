package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/state"
)

// metaVersion is the version of crmsync's bookkeeping tables (_crmsync_*) in a schema.
const metaVersion = 1

// minServerVersion is the oldest server supported: append-only tables dedupe versions with a
// UNIQUE … NULLS NOT DISTINCT index, new in PostgreSQL 15.
const minServerVersion = 150000

// Destination writes the tables of one schema.
type Destination struct {
	pool    *pgxpool.Pool
	connCfg *pgx.ConnConfig // for the dedicated lock connections
	schema  string          // physical schema name (after Ident)
	secrets []string        // password spellings to scrub from connection errors
	// mergeOnlyStreams holds the streams whose batches must take the merge path (see mergeOnly).
	mergeOnlyStreams sync.Map
}

var _ destination.Destination = (*Destination)(nil)

// Open connects to the database named by connString (a postgres:// URL or keyword/value
// string; parts it omits come from the PG* environment variables, as with libpq) and prepares
// schema, creating it and crmsync's bookkeeping tables when missing.
func Open(ctx context.Context, connString, schema string) (*Destination, error) {
	if schema == "" {
		return nil, errors.New("postgres destination: empty schema name")
	}
	secrets := secrets(connString)
	fail := func(format string, err error) error {
		return redactErr(fmt.Errorf("postgres destination: "+format, err), secrets)
	}
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		return nil, fail("%w", err)
	}
	params := cfg.ConnConfig.RuntimeParams
	if params["application_name"] == "" {
		params["application_name"] = "crmsync"
	}
	// Any positive value selects shortest exact float text (PostgreSQL 12+), which widening a
	// number column to text relies on; a role-level 0 would round to 15 digits.
	params["extra_float_digits"] = "1"
	params["timezone"] = "UTC"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fail("%w", err)
	}
	d := &Destination{pool: pool, connCfg: cfg.ConnConfig, schema: Ident(schema), secrets: secrets}
	if err := d.init(ctx); err != nil {
		pool.Close()
		return nil, fail("%w", err)
	}
	return d, nil
}

func (d *Destination) init(ctx context.Context) error {
	var (
		version  int
		encoding string
	)
	err := d.pool.QueryRow(ctx, `SELECT current_setting('server_version_num')::int, current_setting('server_encoding')`).Scan(&version, &encoding)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	if version < minServerVersion {
		return fmt.Errorf("PostgreSQL %d.%d is too old: crmsync needs 15 or later", version/10000, version%10000)
	}
	if encoding != "UTF8" {
		return fmt.Errorf("the database's encoding is %s: crmsync stores Unicode text and needs a UTF8 database", encoding)
	}
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		// Serialise concurrent first runs: CREATE … IF NOT EXISTS races on the catalog.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey("init", d.schema)); err != nil {
			return fmt.Errorf("initialise schema %s: %w", d.schema, err)
		}
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, d.schema).Scan(&exists); err != nil {
			return fmt.Errorf("initialise schema %s: %w", d.schema, err)
		}
		// Only create what is missing: CREATE SCHEMA IF NOT EXISTS needs the database's CREATE
		// privilege even when the schema exists.
		stmts := []string{
			`CREATE TABLE IF NOT EXISTS ` + d.meta("_crmsync_meta") + ` (key text PRIMARY KEY, value text NOT NULL)`,
			`CREATE TABLE IF NOT EXISTS ` + d.meta("_crmsync_state") + ` (source text NOT NULL, stream text NOT NULL, state jsonb NOT NULL,
				updated_at timestamptz NOT NULL, PRIMARY KEY (source, stream))`,
			`CREATE TABLE IF NOT EXISTS ` + d.meta("_crmsync_tables") + ` (table_name text PRIMARY KEY, source text NOT NULL, stream text NOT NULL)`,
			`CREATE TABLE IF NOT EXISTS ` + d.meta("_crmsync_columns") + ` (table_name text NOT NULL, column_name text NOT NULL,
				logical_name text NOT NULL, PRIMARY KEY (table_name, column_name))`,
			d.customFieldsSQL(),
		}
		if !exists {
			stmts = append([]string{`CREATE SCHEMA ` + quote(d.schema)}, stmts...)
		}
		for _, s := range stmts {
			if _, err := tx.Exec(ctx, s); err != nil {
				return fmt.Errorf("initialise schema %s: %w", d.schema, err)
			}
		}
		var v string
		err := tx.QueryRow(ctx, `SELECT value FROM `+d.meta("_crmsync_meta")+` WHERE key = 'format_version'`).Scan(&v)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			_, err = tx.Exec(ctx, `INSERT INTO `+d.meta("_crmsync_meta")+` (key, value) VALUES ('format_version', $1)`, strconv.Itoa(metaVersion))
			if err != nil {
				return fmt.Errorf("initialise schema %s: %w", d.schema, err)
			}
		case err != nil:
			return fmt.Errorf("read format version of schema %s: %w", d.schema, err)
		case v != strconv.Itoa(metaVersion):
			return fmt.Errorf("schema %s was written by a release with format version %s; this release reads version %d", d.schema, v, metaVersion)
		}
		return nil
	})
}

// meta is the qualified name of one of crmsync's bookkeeping tables.
func (d *Destination) meta(name string) string { return quote(d.schema) + "." + quote(name) }

// Table is the quoted, schema-qualified name of a stream's table, ready for SQL.
func (d *Destination) Table(stream string) string { return quote(d.schema) + "." + qident(stream) }

// Schema is the (physical) schema name.
func (d *Destination) Schema() string { return d.schema }

// Pool exposes the connection pool for tests and tools that read the replica.
func (d *Destination) Pool() *pgxpool.Pool { return d.pool }

// Close closes every connection of the pool. Locks are released by their own release funcs.
func (d *Destination) Close() error {
	d.pool.Close()
	return nil
}

// lockKey derives a 64-bit advisory lock key; advisory locks are per database, so the schema
// is part of the key and two schemas (or two sources) never block each other.
func lockKey(parts ...string) int64 {
	h := sha256.New()
	h.Write([]byte("crmsync"))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return int64(binary.BigEndian.Uint64(h.Sum(nil)))
}

// Lock takes a session advisory lock on (schema, source) on a connection of its own, held
// until release. The server drops it if the process dies, so a crash leaves no stale lock.
func (d *Destination) Lock(ctx context.Context, source string) (func(), error) {
	conn, err := pgx.ConnectConfig(ctx, d.connCfg.Copy())
	if err != nil {
		return nil, redactErr(fmt.Errorf("lock %s: %w", source, err), d.secrets)
	}
	var ok bool
	key := lockKey("sync", d.schema, source)
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("lock %s: %w", source, err)
	}
	if !ok {
		conn.Close(context.WithoutCancel(ctx))
		return nil, destination.ErrLocked
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			// Closing the session releases the lock too; unlocking first is just tidy.
			conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, key)
			conn.Close(ctx)
		})
	}, nil
}

// State reads the saved state of a source's streams.
func (d *Destination) State(ctx context.Context, source string) (state.Source, error) {
	rows, err := d.pool.Query(ctx, `SELECT stream, state::text FROM `+d.meta("_crmsync_state")+` WHERE source = $1`, source)
	if err != nil {
		return nil, fmt.Errorf("read state of %s: %w", source, err)
	}
	defer rows.Close()
	out := state.Source{}
	for rows.Next() {
		var stream, raw string
		if err := rows.Scan(&stream, &raw); err != nil {
			return nil, fmt.Errorf("read state of %s: %w", source, err)
		}
		st, err := state.Unmarshal([]byte(raw))
		if err != nil {
			return nil, fmt.Errorf("state of %s.%s: %w", source, stream, err)
		}
		out[stream] = st
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read state of %s: %w", source, err)
	}
	return out, nil
}

func (d *Destination) saveState(ctx context.Context, tx pgx.Tx, source, stream string, st state.Stream) error {
	raw, err := state.Marshal(st)
	if err != nil {
		return fmt.Errorf("save state of %s.%s: %w", source, stream, err)
	}
	_, err = tx.Exec(ctx, `INSERT INTO `+d.meta("_crmsync_state")+` (source, stream, state, updated_at) VALUES ($1, $2, $3, now())
		ON CONFLICT (source, stream) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at`,
		source, stream, string(raw))
	if err != nil {
		return fmt.Errorf("save state of %s.%s: %w", source, stream, err)
	}
	return nil
}
