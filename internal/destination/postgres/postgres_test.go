package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/destination/destinationtest"
	"github.com/crmsync/crmsync/internal/destination/postgres"
	"github.com/crmsync/crmsync/internal/destination/postgres/pgtest"
	"github.com/crmsync/crmsync/internal/state"
)

// readable adds destinationtest.Reader to a Destination; it reads through the pool, so a
// count runs on another connection than a replacement's transaction.
type readable struct{ *postgres.Destination }

func (d readable) Count(ctx context.Context, t destination.Table) (int64, error) {
	var n int64
	err := d.Pool().QueryRow(ctx, "SELECT count(*) FROM "+d.Table(t.Stream.Name)).Scan(&n)
	return n, err
}

func (d readable) Rows(ctx context.Context, t destination.Table) ([]map[string]any, error) {
	cols, err := d.Prepare(ctx, t, nil)
	if err != nil {
		return nil, err
	}
	exprs := make([]string, len(cols))
	for i, c := range cols {
		exprs[i] = pgx.Identifier{postgres.Ident(c.Name)}.Sanitize()
		if c.Type == catalog.JSON {
			exprs[i] += "::text"
		}
	}
	// Not cached: column types change when the suite widens them.
	rows, err := d.Pool().Query(ctx, "SELECT "+strings.Join(exprs, ", ")+" FROM "+d.Table(t.Stream.Name), pgx.QueryExecModeDescribeExec)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []map[string]any
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, err
		}
		r := make(map[string]any, len(cols))
		for i, c := range cols {
			if tm, ok := vals[i].(time.Time); ok {
				vals[i] = tm.UTC()
			}
			r[c.Name] = vals[i]
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// CreateForeign implements destinationtest.Foreigner: an application's own table.
func (d readable) CreateForeign(ctx context.Context, t destination.Table) error {
	_, err := d.Pool().Exec(ctx, "CREATE TABLE "+d.Table(t.Stream.Name)+" (id integer PRIMARY KEY, name text NOT NULL); INSERT INTO "+d.Table(t.Stream.Name)+" VALUES (7, 'app row')")
	return err
}

// DescribeForeign implements destinationtest.Foreigner.
func (d readable) DescribeForeign(ctx context.Context, t destination.Table) (string, error) {
	var cols, rows string
	err := d.Pool().QueryRow(ctx, `SELECT string_agg(column_name || ' ' || data_type || ' ' || is_nullable, ', ' ORDER BY ordinal_position)
		FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2`, d.Schema(), postgres.Ident(t.Stream.Name)).Scan(&cols)
	if err != nil {
		return "", err
	}
	err = d.Pool().QueryRow(ctx, "SELECT string_agg(id || ':' || name, ',') FROM "+d.Table(t.Stream.Name)).Scan(&rows)
	return cols + " rows: " + rows, err
}

func openDB(t *testing.T, url, schema string) readable {
	t.Helper()
	d, err := postgres.Open(t.Context(), url, schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return readable{d}
}

func TestContract(t *testing.T) {
	url := pgtest.NewDatabase(t)
	var n atomic.Int64
	destinationtest.Run(t, func(t *testing.T) destination.Destination {
		// Odd schema names too: every statement must quote the schema.
		return openDB(t, url, fmt.Sprintf(`contract %d "q".ü`, n.Add(1)))
	})
}

func TestLockAcrossDestinations(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := t.Context()
	a, b := openDB(t, url, "close"), openDB(t, url, "close")
	other := openDB(t, url, "elsewhere")
	release, err := a.Lock(ctx, "close")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Lock(ctx, "close"); !errors.Is(err, destination.ErrLocked) {
		t.Errorf("a second process locking the same schema and source: %v, want ErrLocked", err)
	}
	rel, err := other.Lock(ctx, "close")
	if err != nil {
		t.Errorf("the same source in another schema: %v, want no conflict", err)
	} else {
		rel()
	}
	release()
	release() // idempotent
	rel, err = b.Lock(ctx, "close")
	if err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
	rel()
}

func TestReopenAndFormatVersion(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := t.Context()
	tb := destination.Table{Source: "close", Stream: catalog.Stream{Name: strings.Repeat("long_stream_", 8), PrimaryKey: []string{"id"}, Method: catalog.Incremental}}
	long := strings.Repeat("custom.cf_", 10)
	cols := []catalog.Column{{Name: "id", Type: catalog.String}, {Name: long, Type: catalog.Integer}}
	bm := time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC)
	d := openDB(t, url, "close")
	if _, err := d.Prepare(ctx, tb, cols); err != nil {
		t.Fatal(err)
	}
	if err := d.Write(ctx, destination.Batch{Table: tb, Columns: cols, Rows: [][]any{{"a", int64(1)}}}, state.Stream{Bookmark: bm}); err != nil {
		t.Fatal(err)
	}
	d.Close()

	d = openDB(t, url, "close")
	got, err := d.Prepare(ctx, tb, cols[:1])
	if err != nil || len(got) != 2 || got[1].Name != long || got[1].Type != catalog.Integer {
		t.Fatalf("columns after reopening = %v, %v; want the full long name back", got, err)
	}
	st, err := d.State(ctx, "close")
	if err != nil || !st[tb.Stream.Name].Bookmark.Equal(bm) {
		t.Fatalf("state after reopening = %v, %v", st, err)
	}

	if _, err := d.Pool().Exec(ctx, `UPDATE close._crmsync_meta SET value = '99' WHERE key = 'format_version'`); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Open(ctx, url, "close"); err == nil || !strings.Contains(err.Error(), "format version 99") {
		t.Errorf("opening a schema written by a newer release: %v, want a format version error", err)
	}
}

func TestWidenedText(t *testing.T) {
	// Old rows of a column widened to text read like what the engine writes for new values.
	url := pgtest.NewDatabase(t)
	d := openDB(t, url, "widen")
	ctx := t.Context()
	tests := []struct {
		from catalog.Type
		val  any
		want string
	}{
		{catalog.Integer, int64(-42), "-42"},
		{catalog.Number, 7.0, "7"},
		{catalog.Number, 0.1, "0.1"},
		{catalog.Number, 1.0 / 3, "0.3333333333333333"},
		{catalog.Number, 1e21, "1e+21"},
		{catalog.Boolean, true, "true"},
		{catalog.Timestamp, time.Date(2024, 1, 2, 3, 4, 5, 600000000, time.FixedZone("x", 3600)), "2024-01-02T02:04:05.600000Z"},
		{catalog.JSON, `{"a": 1}`, `{"a": 1}`},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprintf("%s %v", tt.from, tt.val), func(t *testing.T) {
			tb := destination.Table{Source: "s", Stream: catalog.Stream{Name: fmt.Sprintf("w%d", i), PrimaryKey: []string{"id"}, Method: catalog.Incremental}}
			cols := []catalog.Column{{Name: "id", Type: catalog.String}, {Name: "v", Type: tt.from}}
			if _, err := d.Prepare(ctx, tb, cols); err != nil {
				t.Fatal(err)
			}
			if err := d.Write(ctx, destination.Batch{Table: tb, Columns: cols, Rows: [][]any{{"a", tt.val}}}, state.Stream{}); err != nil {
				t.Fatal(err)
			}
			if _, err := d.Prepare(ctx, tb, []catalog.Column{{Name: "v", Type: catalog.String}}); err != nil {
				t.Fatal(err)
			}
			rows, err := d.Rows(ctx, tb)
			if err != nil || len(rows) != 1 {
				t.Fatalf("Rows = %v, %v", rows, err)
			}
			if got := rows[0]["v"]; got != tt.want {
				t.Errorf("widened to string: %#v, want %q", got, tt.want)
			}
		})
	}
}

func TestPhysicalLayout(t *testing.T) {
	// What a user sees in psql: types, keys, the append-only index, names.
	url := pgtest.NewDatabase(t)
	d := openDB(t, url, "close")
	ctx := t.Context()
	long := strings.Repeat("x", 100)
	tb := destination.Table{Source: "close", Stream: catalog.Stream{Name: "activities", PrimaryKey: []string{"id"}, Method: catalog.AppendOnly,
		CursorField: "date_created", VersionField: "date_updated"}}
	cols := []catalog.Column{{Name: "id", Type: catalog.String}, {Name: "date_created", Type: catalog.Timestamp}, {Name: "date_updated", Type: catalog.Timestamp},
		{Name: "n", Type: catalog.Integer}, {Name: "x", Type: catalog.Number}, {Name: "b", Type: catalog.Boolean}, {Name: "j", Type: catalog.JSON}, {Name: long, Type: catalog.String}}
	if _, err := d.Prepare(ctx, tb, cols); err != nil {
		t.Fatal(err)
	}
	rows, err := d.Pool().Query(ctx, `SELECT column_name::text, data_type::text FROM information_schema.columns
		WHERE table_schema = 'close' AND table_name = 'activities' ORDER BY ordinal_position`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var n, typ string
		err := r.Scan(&n, &typ)
		return n + " " + typ, err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"id text", "date_created timestamp with time zone", "date_updated timestamp with time zone", "n bigint",
		"x double precision", "b boolean", "j jsonb", postgres.Ident(long) + " text"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("columns = %q, want %q", got, want)
	}
	var pk int
	var index string
	err = d.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_constraint WHERE conrelid = 'close.activities'::regclass AND contype = 'p'),
		(SELECT indexdef FROM pg_indexes WHERE schemaname = 'close' AND tablename = 'activities')`).Scan(&pk, &index)
	if err != nil {
		t.Fatal(err)
	}
	if pk != 0 || !strings.Contains(index, "UNIQUE") || !strings.Contains(index, "(id, date_updated) NULLS NOT DISTINCT") {
		t.Errorf("append-only table: %d primary keys, index %q; want none and a unique (id, date_updated) NULLS NOT DISTINCT index", pk, index)
	}
}

func TestOpenErrorsHidePassword(t *testing.T) {
	const pw = "s3cr%65t-pw"
	for _, conn := range []string{
		"postgres://crmsync:" + pw + "@127.0.0.1:1/db?sslmode=disable&connect_timeout=2", // nothing listens on port 1
		"postgres://crmsync:" + pw + "@127.0.0.1:bad/db",                                 // unparseable: pgx quotes url.Parse's error
		"host=127.0.0.1 port=1 user=crmsync password=" + pw + " connect_timeout=2",
	} {
		_, err := postgres.Open(t.Context(), conn, "close")
		if err == nil {
			t.Fatalf("Open(%s) succeeded", postgres.Redact(conn))
		}
		for _, leak := range []string{pw, "s3cret-pw"} {
			if strings.Contains(err.Error(), leak) {
				t.Errorf("error leaks the password: %v", err)
			}
		}
	}
}

func TestOpenFromEnvironment(t *testing.T) {
	url := pgtest.NewDatabase(t)
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	// A URL that names only the database; host, port and user come from PG* variables.
	t.Setenv("PGHOST", cfg.Host)
	t.Setenv("PGPORT", fmt.Sprint(cfg.Port))
	t.Setenv("PGUSER", cfg.User)
	if cfg.Password != "" {
		t.Setenv("PGPASSWORD", cfg.Password)
	}
	d, err := postgres.Open(t.Context(), "postgres:///"+cfg.Database, "env")
	if err != nil {
		t.Fatalf("Open with PG* variables: %v", err)
	}
	d.Close()
}

// TestSQLTypeOIDs: the OID a temp table's column is COPYed as is the type it is created with,
// as the server names it.
func TestSQLTypeOIDs(t *testing.T) {
	conn, err := pgx.Connect(t.Context(), pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, ct := range []catalog.Type{catalog.String, catalog.Integer, catalog.Number, catalog.Boolean, catalog.Timestamp, catalog.Date, catalog.JSON} {
		var oid uint32
		err := conn.QueryRow(t.Context(), "SELECT $1::regtype::oid", postgres.SQLType(ct)).Scan(&oid)
		if err != nil || oid != postgres.SQLTypeOID(ct) {
			t.Errorf("%v: created as %s (OID %d, %v), COPYed as OID %d", ct, postgres.SQLType(ct), oid, err, postgres.SQLTypeOID(ct))
		}
	}
}
