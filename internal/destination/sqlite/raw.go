package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/crmsync/crmsync/internal/catalog"
)

// rawConn is the connection Write's transactions run on: the destination's file opened a
// second time, through SQLite's C API as modernc.org/sqlite/lib exposes it rather than
// through database/sql. The driver copies every text value it binds into a C allocation of
// its own and frees it after the statement, and keeps a Go slice of those allocations per
// run: binding was 12 % of a million-row Close sync's CPU and its bookkeeping a fifth of the
// sync's allocations. Here a statement run's texts are copied into one reused C buffer
// (arena) and bound in place, so nothing is allocated per value.
//
// Everything else (schema changes, loads, reads, full-table replacements) stays on the
// database/sql connection. The destination's lock serialises the two, and SQLite keeps them
// coherent as it does any two connections to one file: a statement prepared here is
// prepared again by SQLite when the other connection changes the schema.
type rawConn struct {
	tls *libc.TLS
	db  uintptr
	// arena holds the texts and blobs bound to the statement being run: chunks of C memory
	// (SQLite's API takes addresses as uintptr, and the race detector's pointer checks
	// reject Go memory there), filled in order and reused by the next run. A chunk is never
	// moved while a run's bindings point into it.
	arena []arenaChunk
	// chunk and off are where the next value goes: arena[chunk] at off.
	chunk, off int
	// out is a C word that receives the handles SQLite returns through a pointer.
	out uintptr
	// stmts are the statements ExecContext prepared, by text.
	stmts map[string]uintptr
}

// rawBusyTimeout is how long a write waits for another process's lock on the file (the
// database/sql connection's busy_timeout too).
const rawBusyTimeout = 10 * time.Second

// openRaw opens the existing database file at uri ("file:" form) for writing.
func openRaw(uri string) (*rawConn, error) {
	c := &rawConn{tls: libc.NewTLS(), stmts: map[string]uintptr{}}
	if c.out = libc.Xmalloc(c.tls, 8); c.out == 0 {
		c.tls.Close()
		return nil, errors.New("sqlite: out of memory")
	}
	name, err := libc.CString(uri)
	if err != nil {
		c.close()
		return nil, err
	}
	defer libc.Xfree(c.tls, name)
	// NOMUTEX: the destination's lock already keeps any two calls on this connection apart;
	// SQLite's own mutex would be taken and released around every bind.
	rc := sqlite3.Xsqlite3_open_v2(c.tls, name, c.out, sqlite3.SQLITE_OPEN_READWRITE|sqlite3.SQLITE_OPEN_URI|sqlite3.SQLITE_OPEN_NOMUTEX, 0)
	c.db = c.handle()
	if rc != sqlite3.SQLITE_OK {
		err := c.errorOf(rc)
		c.close()
		return nil, err
	}
	sqlite3.Xsqlite3_extended_result_codes(c.tls, c.db, 1)
	sqlite3.Xsqlite3_busy_timeout(c.tls, c.db, int32(rawBusyTimeout/time.Millisecond))
	for _, q := range []string{"PRAGMA synchronous=FULL", "PRAGMA foreign_keys=OFF"} {
		if _, err := c.ExecContext(context.Background(), q); err != nil {
			c.close()
			return nil, err
		}
	}
	return c, nil
}

// close finalizes the statements and closes the connection; the caller holds the statement
// cache's statements too and finalizes them first (statementCache.reset). Closing again does
// nothing.
func (c *rawConn) close() error {
	if c.tls == nil {
		return nil
	}
	for q, st := range c.stmts {
		sqlite3.Xsqlite3_finalize(c.tls, st)
		delete(c.stmts, q)
	}
	var err error
	if c.db != 0 {
		if rc := sqlite3.Xsqlite3_close_v2(c.tls, c.db); rc != sqlite3.SQLITE_OK {
			err = c.errorOf(rc)
		}
		c.db = 0
	}
	c.freeChunks(0)
	if c.out != 0 {
		libc.Xfree(c.tls, c.out)
		c.out = 0
	}
	c.tls.Close()
	c.tls = nil
	return err
}

// interrupt stops the statement running on the connection, from any goroutine.
func (c *rawConn) interrupt() {
	tls := libc.NewTLS()
	defer tls.Close()
	sqlite3.Xsqlite3_interrupt(tls, c.db)
}

// errorOf is the connection's error for a result code: SQLite's message, with the code.
func (c *rawConn) errorOf(rc int32) error {
	msg := libc.GoString(sqlite3.Xsqlite3_errstr(c.tls, rc))
	if c.db != 0 && sqlite3.Xsqlite3_extended_errcode(c.tls, c.db) == rc {
		msg = libc.GoString(sqlite3.Xsqlite3_errmsg(c.tls, c.db))
	}
	return fmt.Errorf("sqlite: %s (%d)", msg, rc)
}

// prepare compiles one statement, kept for reuse (SQLITE_PREPARE_PERSISTENT), after checking
// the schema (checkSchema). To compile several, check once and compile each.
func (c *rawConn) prepare(query string) (uintptr, error) {
	if err := c.checkSchema(); err != nil {
		return 0, err
	}
	return c.compile(query)
}

// checkSchema runs a statement that reads the schema table: as it starts, SQLite compares
// the schema it holds with the file's, and reads it again if it changed. A statement compiles
// against the schema the connection last read, which the other connection may have changed
// since, and SQLite does not always notice at compile time: an upsert on a unique index built
// since fails to compile ("ON CONFLICT clause does not match"). Statements already prepared
// need no such care: SQLite compiles them again when it finds the schema changed as they start.
func (c *rawConn) checkSchema() error {
	st, err := c.compile("SELECT 1 FROM sqlite_schema LIMIT 1")
	if err != nil {
		return err
	}
	defer c.finalize(st)
	return c.run(context.Background(), st, func(func(any) bool) {})
}

// errClosed is the error of a statement on a closed connection.
var errClosed = errors.New("sqlite: the destination is closed")

// compile compiles one statement against the schema the connection holds.
func (c *rawConn) compile(query string) (uintptr, error) {
	if c.db == 0 {
		return 0, errClosed
	}
	text, err := libc.CString(query)
	if err != nil {
		return 0, err
	}
	defer libc.Xfree(c.tls, text)
	rc := sqlite3.Xsqlite3_prepare_v3(c.tls, c.db, text, int32(len(query)+1), sqlite3.SQLITE_PREPARE_PERSISTENT, c.out, 0)
	if rc != sqlite3.SQLITE_OK {
		return 0, c.errorOf(rc)
	}
	st := c.handle()
	if st == 0 {
		return 0, fmt.Errorf("sqlite: no statement in %q", query)
	}
	return st, nil
}

func (c *rawConn) finalize(st uintptr) { sqlite3.Xsqlite3_finalize(c.tls, st) }

// run binds the values in order to st's parameters and steps it to the end.
func (c *rawConn) run(ctx context.Context, st uintptr, values func(yield func(any) bool)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.db == 0 {
		return errClosed
	}
	var err error
	i := int32(0)
	c.chunk, c.off = 0, 0
	for v := range values {
		i++
		if err = c.bind(st, i, v); err != nil {
			err = fmt.Errorf("binding parameter %d: %w", i, err)
			break
		}
	}
	if want := sqlite3.Xsqlite3_bind_parameter_count(c.tls, st); err == nil && i != want {
		err = fmt.Errorf("%d values for %d parameters", i, want)
	}
	for err == nil {
		rc := sqlite3.Xsqlite3_step(c.tls, st)
		if rc == sqlite3.SQLITE_DONE {
			break
		}
		if rc != sqlite3.SQLITE_ROW {
			err = c.errorOf(rc)
		}
	}
	sqlite3.Xsqlite3_reset(c.tls, st)
	// No parameter keeps pointing into the arena, which the next run overwrites.
	sqlite3.Xsqlite3_clear_bindings(c.tls, st)
	c.freeChunks(maxKeptChunks)
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// arenaChunk is one piece of the arena: C memory at p, and a Go view of it.
type arenaChunk struct {
	p     uintptr
	bytes []byte
}

// chunkSize is the arena's usual chunk; a bigger value gets a chunk of its own size.
const chunkSize = 256 << 10

// maxKeptChunks bounds the chunks a run leaves for the next (besides, a chunk bigger than
// chunkSize is never kept), so that one run of huge values does not keep their memory.
const maxKeptChunks = 8

// place returns the address where n bytes go in the arena, making room for them: in the
// current chunk if they fit, else in the next (reused, or new). Even an empty value gets an
// address in a chunk (a NULL pointer would bind NULL).
func (c *rawConn) place(n int) (uintptr, []byte, error) {
	for c.chunk < len(c.arena) {
		ch := c.arena[c.chunk]
		if c.off+n < len(ch.bytes) {
			at := c.off
			c.off += n
			return ch.p + uintptr(at), ch.bytes[at : at+n], nil
		}
		c.chunk, c.off = c.chunk+1, 0
	}
	size := max(chunkSize, n+1)
	p := libc.Xmalloc(c.tls, libc.Tsize_t(size))
	if p == 0 {
		return 0, nil, fmt.Errorf("sqlite: out of memory for %d bytes of values", size)
	}
	c.arena = append(c.arena, arenaChunk{p: p, bytes: libc.GoBytes(p, size)})
	c.chunk, c.off = len(c.arena)-1, n
	return p, c.arena[c.chunk].bytes[:n], nil
}

// freeChunks frees the arena's chunks past the first keep, and the big ones.
func (c *rawConn) freeChunks(keep int) {
	kept := c.arena[:0]
	for _, ch := range c.arena {
		if len(kept) < keep && len(ch.bytes) == chunkSize {
			kept = append(kept, ch)
		} else {
			libc.Xfree(c.tls, ch.p)
		}
	}
	clear(c.arena[len(kept):])
	c.arena = kept
}

// handle reads the pointer SQLite returned a handle in.
func (c *rawConn) handle() uintptr {
	b := libc.GoBytes(c.out, int(unsafe.Sizeof(uintptr(0))))
	if len(b) == 4 {
		return uintptr(binary.NativeEndian.Uint32(b))
	}
	return uintptr(binary.NativeEndian.Uint64(b))
}

// bind binds v to parameter i; texts and blobs are copied into the arena, where the statement
// reads them in place (SQLITE_STATIC) until its bindings are cleared.
func (c *rawConn) bind(st uintptr, i int32, v any) (err error) {
	var rc int32
	switch x := v.(type) {
	case nil:
		rc = sqlite3.Xsqlite3_bind_null(c.tls, st, i)
	case int64:
		rc = sqlite3.Xsqlite3_bind_int64(c.tls, st, i, x)
	case int:
		rc = sqlite3.Xsqlite3_bind_int64(c.tls, st, i, int64(x))
	case float64:
		rc = sqlite3.Xsqlite3_bind_double(c.tls, st, i, x)
	case string:
		var p uintptr
		if p, err = copyIn(c, x); err == nil {
			rc = sqlite3.Xsqlite3_bind_text(c.tls, st, i, p, int32(len(x)), 0)
		}
	case []byte:
		if x == nil {
			rc = sqlite3.Xsqlite3_bind_null(c.tls, st, i)
			break
		}
		var p uintptr
		if p, err = copyIn(c, x); err == nil {
			rc = sqlite3.Xsqlite3_bind_blob(c.tls, st, i, p, int32(len(x)), 0)
		}
	case bool, time.Time:
		return c.bind(st, i, sqlValue(x, catalog.Timestamp)) // as toSQLValues stores them
	default:
		return fmt.Errorf("cannot store a %T", v)
	}
	if err != nil {
		return err
	}
	if rc != sqlite3.SQLITE_OK {
		return c.errorOf(rc)
	}
	return nil
}

// copyIn copies v into the arena and returns its address there.
func copyIn[T string | []byte](c *rawConn, v T) (uintptr, error) {
	if len(v) > math.MaxInt32 {
		return 0, fmt.Errorf("a value of %d bytes: SQLite takes at most %d", len(v), math.MaxInt32)
	}
	p, dst, err := c.place(len(v))
	copy(dst, v)
	return p, err
}

// ExecContext runs one statement with args, preparing it the first time (execer). Its
// result knows the rows the statement changed.
func (c *rawConn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, ok := c.stmts[query]
	if !ok {
		var err error
		if st, err = c.prepare(query); err != nil {
			return nil, err
		}
		c.stmts[query] = st
	}
	values := func(yield func(any) bool) {
		for _, a := range args {
			if !yield(a) {
				return
			}
		}
	}
	if err := c.run(ctx, st, values); err != nil {
		return nil, err
	}
	return rawResult(sqlite3.Xsqlite3_changes(c.tls, c.db)), nil
}

// rawResult is the rows a statement changed.
type rawResult int32

func (r rawResult) LastInsertId() (int64, error) {
	return 0, errors.New("sqlite: the insert id is not kept")
}
func (r rawResult) RowsAffected() (int64, error) { return int64(r), nil }
