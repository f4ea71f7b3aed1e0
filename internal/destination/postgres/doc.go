// Package postgres is the PostgreSQL destination (driver: pgx v5; server: PostgreSQL 15 or
// later, UTF8 database).
//
// # Connection
//
// Open takes a postgres:// URL or a keyword/value string; parts it omits (host, port, user,
// password, database, sslmode) come from the PG* environment variables and ~/.pgpass, as with
// libpq. Passwords never appear in errors: the password field of any URL or keyword/value
// string an error quotes is replaced by "xxxxx", and so is the password wherever it stands as a
// whole word (never inside other words: a one-letter password must not garble the message).
// Redact gives the connection string to display.
//
// # Layout
//
// Everything lives in one schema (crmsync's --schema, by default the source name): one table
// per stream, named after the stream, plus crmsync's bookkeeping tables:
//
//	_crmsync_meta     key/value; format_version of these tables (a newer one is refused)
//	_crmsync_state    (source, stream) → state jsonb, updated_at: the bookmarks, written in
//	                  the same transaction as the rows they cover
//	_crmsync_tables   which source and stream own each table (two sources sharing a schema
//	                  cannot write into one table). A table of the schema not listed here was
//	                  not created by crmsync and is never altered, filled or dropped: a sync
//	                  that would write one is refused, naming it, before any change (Claim)
//	_crmsync_columns  the full name of every column whose identifier was shortened (a name
//	                  with NUL bytes, which text cannot hold, is kept Go-quoted: "a\x00b")
//
// Names starting with _crmsync_ are reserved (stages are _crmsync_stage_<stream>).
//
// # Identifiers
//
// Every identifier is quoted, so names keep their case, spaces, dots, quotes and Unicode, and
// reserved words need no care. PostgreSQL truncates identifiers to 63 bytes, which could make
// two long names one, so crmsync shortens them itself, deterministically:
//
//   - a name of 1 to 63 bytes (valid UTF-8, no NUL byte) is used as it is;
//   - any other name becomes its first bytes, cut at a character boundary, with NUL bytes and
//     invalid UTF-8 removed, followed by "_" and the first 8 hex digits of the SHA-256 of the
//     whole name: at most 54 + 9 = 63 bytes. For example a 100-byte name "aaa…a" becomes
//     "aaa…a_" + 8 hex digits, and a 100-byte name differing only in its last byte gets
//     different digits.
//
// This applies to schema, table and column names alike (see Ident). Shortened column names
// are recorded in _crmsync_columns, so Prepare reports the full names; two names whose
// shortened forms collide are refused, never merged.
//
// # Types
//
//	integer   → bigint
//	number    → double precision (the engine carries numbers as float64; numeric would
//	            suggest an exactness the values no longer have)
//	boolean   → boolean
//	timestamp → timestamptz (microsecond precision)
//	string    → text
//	json      → jsonb
//
// PostgreSQL text cannot hold NUL bytes and jsonb cannot hold \u0000: they are removed from
// values (invalid UTF-8 becomes U+FFFD); every other character is stored as it is.
//
// Types only widen (integer → number → string; anything else mixed → string), in place with
// ALTER COLUMN … TYPE … USING, in the same transaction as any added columns. Converted text is
// what the engine writes for new values: numbers in shortest exact form ("7", "7.5"),
// booleans as "true"/"false", instants as "2006-01-02T15:04:05.000000Z" (UTC). Nothing is
// ever dropped or narrowed.
//
// # Writing
//
// Write COPYs a batch (binary protocol) into a temporary table, then merges it with one
// INSERT … SELECT, in one transaction with the stream's bookmark:
//
//   - Incremental: DISTINCT ON the primary key keeps the newest row of the batch by cursor
//     (NULL counts as oldest; ties go to the row loaded last), and ON CONFLICT … DO UPDATE …
//     WHERE excluded.cursor >= t.cursor OR either is NULL never regresses a stored row to an
//     older version.
//   - AppendOnly: the table has no primary key but a UNIQUE (key, version) NULLS NOT DISTINCT
//     index; ON CONFLICT DO NOTHING stores each version once (the first copy in a batch).
//
// A batch none of whose rows can be stored yet — the rows of a first sync — takes a shorter
// path: when its keys are distinct, it is COPYed straight into the table under a savepoint,
// which is as fast as the database loads at all. A stored row with one of its keys makes the
// COPY fail with a unique violation; the transaction returns to the savepoint, the batch is
// merged as above, and the table's later batches of this run go straight to the merge.
//
// A Full Table replacement COPYs into an unlogged stage table; Commit deletes the old rows and
// inserts the staged ones (deduplicated by key as above) in one transaction with the state, so
// a reader sees the old rows or the new ones, never a mix, and views and grants on the table
// are kept. Deleted rows are reclaimed by autovacuum.
//
// # Locking
//
// Lock takes pg_try_advisory_lock on a key derived from (schema, source), on a connection of
// its own held until release; the server drops it if the process dies. Prepare serialises on a
// transaction-level advisory lock per table, so two processes evolving one table take turns.
package postgres
