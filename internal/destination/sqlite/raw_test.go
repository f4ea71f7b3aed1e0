package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// openBoth opens a new database file through database/sql and then a raw connection to it,
// as Open does.
func openBoth(t *testing.T) (*sql.DB, *rawConn) {
	t.Helper()
	uri, err := fileURI(filepath.Join(t.TempDir(), "raw.db"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", uri)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE t (v)`); err != nil {
		t.Fatal(err)
	}
	raw, err := openRaw(uri)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.close() })
	return db, raw
}

// TestRawValues: every kind of value the destination binds is stored with the type and bytes
// the database/sql driver gives it (instants as the destination formats them), texts with
// NULs and multibyte characters included, an empty text before the arena exists, and a text
// bigger than the arena's first size.
func TestRawValues(t *testing.T) {
	db, raw := openBoth(t)
	big := strings.Repeat("é€x", 40_000) // 240,000 bytes: the arena grows
	instant := time.Date(2026, 3, 4, 8, 21, 56, 445_000_000, time.UTC)
	for _, tc := range []struct {
		v        any
		typ, hex string
	}{
		{nil, "null", ""},
		{int64(-7), "integer", "2D37"},
		{42, "integer", "3432"},
		{1.5, "real", "312E35"},
		{true, "integer", "31"},
		{false, "integer", "30"},
		{"", "text", ""},
		{"a\x00b é", "text", "61006220C3A9"},
		{[]byte(nil), "null", ""},
		{[]byte{}, "blob", ""},
		{[]byte{0, 255}, "blob", "00FF"},
		{instant, "text", strings.ToUpper(hexOf(formatTime(instant)))},
		{big, "text", strings.ToUpper(hexOf(big))},
	} {
		if _, err := raw.ExecContext(t.Context(), `DELETE FROM t`); err != nil {
			t.Fatal(err)
		}
		if _, err := raw.ExecContext(t.Context(), `INSERT INTO t (v) VALUES (?)`, tc.v); err != nil {
			t.Fatalf("%T %.20v: %v", tc.v, tc.v, err)
		}
		var typ, hex string
		if err := db.QueryRow(`SELECT typeof(v), hex(CAST(v AS BLOB)) FROM t`).Scan(&typ, &hex); err != nil {
			t.Fatal(err)
		}
		if tc.v == nil || tc.typ == "null" {
			hex = "" // hex(NULL) is NULL, read as ""
		}
		if typ != tc.typ || hex != tc.hex {
			t.Errorf("%T %.20v: stored %s %.40s; want %s %.40s", tc.v, tc.v, typ, hex, tc.typ, tc.hex)
		}
	}
}

func hexOf(s string) string {
	const digits = "0123456789abcdef"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteByte(digits[s[i]>>4])
		b.WriteByte(digits[s[i]&15])
	}
	return b.String()
}

// TestRawErrors: a statement is refused, with SQLite's message, for a value it cannot store,
// too few or too many values, bad SQL, and after close (which may be called twice); nothing is
// written by a refused one.
func TestRawErrors(t *testing.T) {
	db, raw := openBoth(t)
	for _, tc := range []struct {
		query string
		args  []any
		want  string
	}{
		{`INSERT INTO t (v) VALUES (?)`, []any{struct{}{}}, "cannot store a struct {}"},
		{`INSERT INTO t (v) VALUES (?)`, nil, "0 values for 1 parameters"},
		{`INSERT INTO t (v) VALUES (?)`, []any{1, 2}, "column index out of range"},
		{`INSERT INTO nowhere (v) VALUES (?)`, []any{1}, "no such table: nowhere"},
	} {
		_, err := raw.ExecContext(t.Context(), tc.query, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %v: %v; want an error with %q", tc.query, tc.args, err, tc.want)
		}
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d rows (%v) after refused statements", n, err)
	}
	raw.close()
	if err := raw.close(); err != nil {
		t.Errorf("closing again: %v", err)
	}
	if _, err := raw.ExecContext(t.Context(), `INSERT INTO t (v) VALUES (1)`); !errors.Is(err, errClosed) {
		t.Errorf("after close: %v; want %v", err, errClosed)
	}
}

// TestRawSeesSchemaChanges: the other connection's schema changes reach the raw one, both for
// a statement prepared after them and for one prepared before. A unique index built after the
// raw connection last read the schema is the case SQLite does not recover from by itself: the
// upsert on it fails to compile against the old schema ("ON CONFLICT clause does not match"),
// as a first sync's writes did once its load built the key index. (A statement naming a new
// column SQLite compiles again by itself.)
func TestRawSeesSchemaChanges(t *testing.T) {
	db, raw := openBoth(t)
	insert := `INSERT INTO t (v) VALUES (?)`
	if _, err := raw.ExecContext(t.Context(), insert, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE UNIQUE INDEX ux ON t (v)`); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.ExecContext(t.Context(), `INSERT INTO t (v) VALUES (?) ON CONFLICT (v) DO NOTHING`, "a"); err != nil {
		t.Fatalf("an upsert on the index built by the other connection: %v", err)
	}
	if _, err := db.Exec(`ALTER TABLE t ADD COLUMN w`); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.ExecContext(t.Context(), `INSERT INTO t (v, w) VALUES (?, ?) ON CONFLICT (v) DO UPDATE SET w = excluded.w`, "a", 1); err != nil {
		t.Fatalf("a statement naming the new column: %v", err)
	}
	if _, err := raw.ExecContext(t.Context(), insert, "b"); err != nil {
		t.Fatalf("the statement prepared before the changes: %v", err)
	}
	var got string
	if err := db.QueryRow(`SELECT group_concat(v || ':' || ifnull(w, '-'), ' ') FROM (SELECT * FROM t ORDER BY v)`).Scan(&got); err != nil || got != "a:1 b:-" {
		t.Errorf("rows %q (%v); want a:1 b:-", got, err)
	}
}

// TestRawInterrupt: interrupting the connection from another goroutine, as Write does when its
// context ends, stops a statement that would run forever, and the connection works after.
func TestRawInterrupt(t *testing.T) {
	_, raw := openBoth(t)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	done := make(chan struct{})
	stop := context.AfterFunc(ctx, func() { defer close(done); raw.interrupt() })
	_, err := raw.ExecContext(ctx, `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) FROM c`)
	if !stop() {
		<-done
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("endless statement: %v; want the context's deadline", err)
	}
	if _, err := raw.ExecContext(t.Context(), `INSERT INTO t (v) VALUES (1)`); err != nil {
		t.Fatalf("after the interrupt: %v", err)
	}
}

// TestRawArenaChunks: one statement's texts spread over several chunks of the arena (and one
// text bigger than a chunk) are stored intact, and so are the next statement's, which reuses
// the chunks.
func TestRawArenaChunks(t *testing.T) {
	db, raw := openBoth(t)
	const n = 600
	query := `INSERT INTO t (v) VALUES ` + strings.TrimSuffix(strings.Repeat(`(?),`, n), ",")
	for round := range 2 {
		if _, err := raw.ExecContext(t.Context(), `DELETE FROM t`); err != nil {
			t.Fatal(err)
		}
		want := make([]any, n)
		for i := range want {
			switch {
			case i == 300:
				want[i] = strings.Repeat("big", chunkSize/2) // 1.5 chunks
			case i%7 == 0:
				want[i] = ""
			default:
				want[i] = strings.Repeat(string(rune('a'+(i+round)%26)), 1000+i)
			}
		}
		if _, err := raw.ExecContext(t.Context(), query, want...); err != nil {
			t.Fatal(err)
		}
		rows, err := db.Query(`SELECT v FROM t ORDER BY rowid`)
		if err != nil {
			t.Fatal(err)
		}
		i := 0
		for ; rows.Next(); i++ {
			var got string
			if err := rows.Scan(&got); err != nil {
				t.Fatal(err)
			}
			if i < n && got != want[i] {
				t.Errorf("round %d, value %d: %d bytes %.10q…; want %d bytes %.10q…", round, i, len(got), got, len(want[i].(string)), want[i])
			}
		}
		rows.Close()
		if i != n {
			t.Fatalf("round %d: %d rows; want %d", round, i, n)
		}
	}
	if len(raw.arena) > maxKeptChunks {
		t.Errorf("%d chunks kept; want at most %d", len(raw.arena), maxKeptChunks)
	}
	for _, ch := range raw.arena {
		if len(ch.bytes) != chunkSize {
			t.Errorf("a chunk of %d bytes kept; only %d-byte ones are", len(ch.bytes), chunkSize)
		}
	}
}

// TestInsertEach: the rows go in one transaction, so a row that fails leaves none of them;
// rows that all succeed are stored.
func TestInsertEach(t *testing.T) {
	ctx := context.Background()
	d, err := Open(ctx, filepath.Join(t.TempDir(), "each.db"), "close")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if _, err := d.DB().Exec(`CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)`); err != nil {
		t.Fatal(err)
	}
	rows := func(keys ...int) func(func([]any) bool) {
		return func(yield func([]any) bool) {
			for _, k := range keys {
				if !yield([]any{k, "v"}) {
					return
				}
			}
		}
	}
	count := func() (n int) {
		t.Helper()
		if err := d.DB().QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	const q = `INSERT INTO t (k, v) VALUES (?, ?)`
	if err := d.InsertEach(ctx, "t", q, rows(1, 2, 2)); err == nil || !strings.Contains(err.Error(), "UNIQUE") {
		t.Fatalf("a repeated key: %v, want a UNIQUE constraint error", err)
	}
	if n := count(); n != 0 {
		t.Fatalf("%d rows stored after a failed row, want none", n)
	}
	if err := d.InsertEach(ctx, "t", q, rows(1, 2, 3)); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 3 {
		t.Fatalf("%d rows stored, want 3", n)
	}
}
