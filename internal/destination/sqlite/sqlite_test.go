package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/destination/destinationtest"
	"github.com/crmsync/crmsync/internal/record"
	"github.com/crmsync/crmsync/internal/state"
)

// readable adds destinationtest.Reader to a Destination. It reads through a connection pool of
// its own, like another program reading the file while a sync runs.
type readable struct {
	*Destination
	ro *sql.DB
}

func (d readable) Count(ctx context.Context, t destination.Table) (int64, error) {
	var n int64
	err := d.ro.QueryRowContext(ctx, "SELECT count(*) FROM "+quote(d.TableName(t.Stream.Name))).Scan(&n)
	return n, err
}

func (d readable) Rows(ctx context.Context, t destination.Table) ([]map[string]any, error) {
	cols, err := d.Prepare(ctx, t, nil)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	stored := d.colNames[d.TableName(t.Stream.Name)].cols(cols)
	d.mu.Unlock()
	rows, err := d.ro.QueryContext(ctx, fmt.Sprintf("SELECT %s FROM %s", columnList(stored), quote(d.TableName(t.Stream.Name))))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []map[string]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		r := map[string]any{}
		for i, c := range cols {
			v, err := readValue(vals[i], c.Type)
			if err != nil {
				return nil, fmt.Errorf("column %q: %w", c.Name, err)
			}
			r[c.Name] = v
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// CreateForeign implements destinationtest.Foreigner: an application's own table.
func (d readable) CreateForeign(ctx context.Context, t destination.Table) error {
	name := quote(d.TableName(t.Stream.Name))
	_, err := d.ro.ExecContext(ctx, "CREATE TABLE "+name+" (id INTEGER PRIMARY KEY, name TEXT NOT NULL); INSERT INTO "+name+" VALUES (7, 'app row')")
	return err
}

// DescribeForeign implements destinationtest.Foreigner.
func (d readable) DescribeForeign(ctx context.Context, t destination.Table) (string, error) {
	var schema, rows string
	name := d.TableName(t.Stream.Name)
	err := d.ro.QueryRowContext(ctx, "SELECT sql FROM sqlite_schema WHERE name = ?", name).Scan(&schema)
	if err != nil {
		return "", err
	}
	err = d.ro.QueryRowContext(ctx, "SELECT group_concat(id || ':' || name, ',') FROM "+quote(name)).Scan(&rows)
	return schema + " rows: " + rows, err
}

// readValue turns a stored value back into a Batch value.
func readValue(v any, t catalog.Type) (any, error) {
	if b, ok := v.([]byte); ok {
		v = string(b)
	}
	switch t {
	case catalog.Boolean:
		if n, ok := v.(int64); ok {
			return n != 0, nil
		}
	case catalog.Number:
		if n, ok := v.(int64); ok {
			return float64(n), nil
		}
	case catalog.Timestamp:
		switch x := v.(type) {
		case time.Time:
			return x.UTC(), nil
		case string:
			return time.Parse(TimeLayout, x)
		}
	case catalog.Date:
		switch x := v.(type) {
		case time.Time:
			return x.UTC(), nil
		case string:
			return time.Parse(record.DateLayout, x)
		}
	}
	return v, nil
}

func open(t *testing.T, path, schema string) readable {
	t.Helper()
	d, err := Open(t.Context(), path, schema)
	if err != nil {
		t.Fatal(err)
	}
	ro, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ro.Close()
		d.Close()
	})
	return readable{Destination: d, ro: ro}
}

func TestContract(t *testing.T) {
	for _, schema := range []string{"", "close"} {
		t.Run(fmt.Sprintf("schema=%q", schema), func(t *testing.T) {
			destinationtest.Run(t, func(t *testing.T) destination.Destination {
				return open(t, filepath.Join(t.TempDir(), "crmsync.db"), schema)
			})
		})
	}
}

func TestReopenKeepsTablesAndState(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crmsync.db")
	ctx := t.Context()
	tb := destination.Table{Source: "close", Stream: catalog.Stream{Name: "leads", PrimaryKey: []string{"id"}, Method: catalog.Incremental, CursorField: "u"}}
	cols := []catalog.Column{{Name: "id", Type: catalog.String}, {Name: "u", Type: catalog.Timestamp}, {Name: "n", Type: catalog.Integer}}
	bm := time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC)
	func() {
		d := open(t, path, "close")
		if _, err := d.Prepare(ctx, tb, cols); err != nil {
			t.Fatal(err)
		}
		err := d.Write(ctx, destination.Batch{Table: tb, Columns: cols, Rows: [][]any{{"a", bm, int64(1)}}}, stateAt(bm))
		if err != nil {
			t.Fatal(err)
		}
		d.Close()
	}()
	d := open(t, path, "close")
	got, err := d.Prepare(ctx, tb, cols[:1])
	if err != nil || len(got) != 3 || got[2].Type != catalog.Integer {
		t.Fatalf("columns after reopening = %v, %v", got, err)
	}
	st, err := d.State(ctx, "close")
	if err != nil || !st["leads"].Bookmark.Equal(bm) {
		t.Fatalf("state after reopening = %v, %v", st, err)
	}
	if n, err := d.Count(ctx, tb); err != nil || n != 1 {
		t.Fatalf("rows after reopening = %d, %v", n, err)
	}
}

func TestWidenedTextMatchesNewValues(t *testing.T) {
	// Old rows of a column widened to text read like what the engine writes for new values;
	// numbers whose shortest form SQLite cannot produce keep an exact (round-trip) text.
	tests := []struct {
		from  catalog.Type
		val   any
		want  string
		exact bool // want is the only acceptable text; otherwise any text of the same number
	}{
		{catalog.Integer, int64(-42), "-42", true},
		{catalog.Number, 7.0, "7", true},
		{catalog.Number, -3.0, "-3", true},
		{catalog.Number, 7.5, "7.5", true},
		{catalog.Number, 0.1, "0.1", true},
		{catalog.Number, 1.0 / 3, "0.3333333333333333", false},
		{catalog.Number, 1e21, "1e+21", false},
		{catalog.Boolean, true, "true", true},
		{catalog.Boolean, false, "false", true},
		{catalog.Timestamp, time.Date(2024, 1, 2, 3, 4, 5, 600000000, time.UTC), "2024-01-02T03:04:05.600000Z", true},
		{catalog.JSON, `{"a":1}`, `{"a":1}`, true},
	}
	d := open(t, filepath.Join(t.TempDir(), "crmsync.db"), "")
	ctx := t.Context()
	for i, tt := range tests {
		t.Run(fmt.Sprintf("%s %v", tt.from, tt.val), func(t *testing.T) {
			tb := destination.Table{Source: "s", Stream: catalog.Stream{Name: fmt.Sprintf("w%d", i), PrimaryKey: []string{"id"}, Method: catalog.Incremental}}
			cols := []catalog.Column{{Name: "id", Type: catalog.String}, {Name: "v", Type: tt.from}}
			if _, err := d.Prepare(ctx, tb, cols); err != nil {
				t.Fatal(err)
			}
			if err := d.Write(ctx, destination.Batch{Table: tb, Columns: cols, Rows: [][]any{{"a", tt.val}}}, stateAt(time.Time{})); err != nil {
				t.Fatal(err)
			}
			if _, err := d.Prepare(ctx, tb, []catalog.Column{{Name: "v", Type: catalog.String}}); err != nil {
				t.Fatal(err)
			}
			rows, err := d.Rows(ctx, tb)
			if err != nil || len(rows) != 1 {
				t.Fatalf("Rows = %v, %v", rows, err)
			}
			got, _ := rows[0]["v"].(string)
			if tt.exact && got != tt.want {
				t.Errorf("widened to string: %#v, want %q", rows[0]["v"], tt.want)
			}
			if !tt.exact {
				f, err := strconv.ParseFloat(got, 64)
				if err != nil || f != tt.val.(float64) {
					t.Errorf("widened to string: %#v, want the text of %v", rows[0]["v"], tt.val)
				}
			}
		})
	}
}

func TestAppendWithoutVersionField(t *testing.T) {
	d := open(t, filepath.Join(t.TempDir(), "crmsync.db"), "")
	ctx := t.Context()
	tb := destination.Table{Source: "s", Stream: catalog.Stream{Name: "log", PrimaryKey: []string{"id"}, Method: catalog.AppendOnly}}
	cols := []catalog.Column{{Name: "id", Type: catalog.String}, {Name: "v", Type: catalog.String}}
	if _, err := d.Prepare(ctx, tb, cols); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := d.Write(ctx, destination.Batch{Table: tb, Columns: cols, Rows: [][]any{{"a", "x"}, {"b", "y"}}}, stateAt(time.Time{})); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := d.Count(ctx, tb); err != nil || n != 2 {
		t.Errorf("rows = %d, %v; want 2 (the key alone identifies a version)", n, err)
	}
}

func TestQuote(t *testing.T) {
	if got := quote(`a"b`); got != `"a""b"` {
		t.Errorf("quote = %s", got)
	}
	if ix := indexSQL(`x"y`, catalog.Stream{PrimaryKey: []string{`k"`}}); len(ix) != 1 || !strings.HasSuffix(ix[0], `ON "x""y" ("k""")`) {
		t.Errorf("key index not quoted: %q", ix)
	}
}

func stateAt(b time.Time) state.Stream { return state.Stream{Bookmark: b, SchemaVersion: 1} }

// BenchmarkWrite measures a batch upsert of 2,000 ten-column rows with its state, in one
// transaction — the SQLite destination's hot path.
func BenchmarkWrite(b *testing.B) {
	ctx := context.Background()
	d, err := Open(ctx, filepath.Join(b.TempDir(), "bench.db"), "")
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	s := catalog.Stream{Name: "leads", PrimaryKey: []string{"id"}, Method: catalog.Incremental, CursorField: "date_updated",
		Columns: catalog.Cols("id:str", "name:str", "date_updated:ts", "value:int", "score:num", "active:bool", "contacts:json", "a:str", "b:str", "c:str")}
	table := destination.Table{Source: "close", Stream: s}
	cols, err := d.Prepare(ctx, table, s.Columns)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	rows := make([][]any, 2000)
	for i := range rows {
		rows[i] = []any{fmt.Sprintf("lead_%d", i), "Harbor & Finch Logistics GmbH", now, int64(i), 0.5, true, `[{"name": "Jörg"}]`, "x", nil, "z"}
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := d.Write(ctx, destination.Batch{Table: table, Columns: cols, Rows: rows}, state.Stream{Bookmark: now}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(rows)), "ns/row")
}

// TestJournalModes checks the journal each phase of a file's life uses: a rollback journal for
// the first sync into a new file, WAL after it, so later syncs never block readers.
func TestJournalModes(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "modes.db")
	mode := func(db *sql.DB) string {
		t.Helper()
		var m string
		if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	for i, want := range []string{"delete", "wal", "wal"} {
		d, err := Open(ctx, path, "")
		if err != nil {
			t.Fatal(err)
		}
		if got := mode(d.DB()); got != want {
			t.Errorf("open %d: journal_mode = %s, want %s", i+1, got, want)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if got := mode(raw); got != "wal" {
		t.Errorf("after the syncs the file's journal_mode is %s, want wal (readers never blocked)", got)
	}
	var size int
	if err := raw.QueryRowContext(ctx, "PRAGMA page_size").Scan(&size); err != nil || size != 16384 {
		t.Errorf("page_size = %d (%v), want 16384", size, err)
	}
}

func TestGroupByFilled(t *testing.T) {
	const width = 100
	next := 0
	row := func(filled ...int) []any { // each row's values are its own, so order shows
		r := make([]any, width)
		for _, j := range filled {
			r[j] = fmt.Sprint("v", next)
		}
		next++
		return r
	}
	repeat := func(n int, filled ...int) [][]any {
		out := make([][]any, n)
		for i := range out {
			out[i] = row(filled...)
		}
		return out
	}
	all := fmt.Sprint(seq(width))
	tests := []struct {
		name    string
		earlier [][][]any // batches planned before, with the same remembered sets
		rows    [][]any
		groups  []string // "rows:filled columns" per group, in order
	}{
		{"one shape", nil, repeat(10, 0, 1, 2), []string{"10:[0 1 2]"}},
		{"big shapes apart", nil, append(repeat(10, 0, 1), repeat(10, 0, 5)...), []string{"10:[0 1]", "10:[0 5]"}},
		{"small shapes together, naming every column", nil, [][]any{row(0, 1), row(0, 7), row(0, 1)}, []string{"3:" + all}},
		{"big apart, small together", nil, append(repeat(6, 0, 3), row(0, 4), row(0, 9)), []string{"6:[0 3]", "2:" + all}},
		{"dense rows spare too little", nil, repeat(5, seq(95)...), []string{"5:" + all}},
		{"a subset joins a fuller group", nil, append(repeat(3, 0, 1), repeat(10, 0, 1, 2)...), []string{"13:[0 1 2]"}},
		{"a subset joins a set of an earlier batch", [][][]any{repeat(10, 0, 1, 2, 3)}, repeat(6, 0, 1), []string{"6:[0 1 2 3]"}},
		{"a subset far smaller than the remembered set has its own", [][][]any{repeat(10, seq(50)...)}, repeat(20, 0, 1), []string{"20:[0 1]"}},
		{"a small subset joins whatever holds it", [][][]any{repeat(11, seq(50)...)}, repeat(2, 0, 1), []string{"2:" + fmt.Sprint(seq(50))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			known := &shapes{}
			for _, b := range tt.earlier {
				groupByFilled(b, width, known)
			}
			var got []string
			var order []any
			for _, g := range groupByFilled(tt.rows, width, known) {
				got = append(got, fmt.Sprintf("%d:%v", len(g.rows), g.filled))
				for _, r := range g.rows {
					order = append(order, r[0])
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.groups) {
				t.Errorf("groups = %v, want %v", got, tt.groups)
			}
			var want []any
			for _, r := range tt.rows {
				want = append(want, r[0])
			}
			if len(order) != len(want) {
				t.Fatalf("%d rows grouped, want %d", len(order), len(want))
			}
			if len(got) == 1 && !slices.Equal(order, want) {
				t.Errorf("rows in order %v, want the batch's %v", order, want)
			}
		})
	}
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// TestIntegerKeyIsNotTheRowid checks that an integer primary key does not become the rowid, so
// rows arriving in random id order are appended rather than inserted all over the table.
func TestIntegerKeyIsNotTheRowid(t *testing.T) {
	ctx := t.Context()
	d, err := Open(ctx, filepath.Join(t.TempDir(), "rowid.db"), "")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	s := catalog.Stream{Name: "people", PrimaryKey: []string{"id"}, Method: catalog.Incremental, CursorField: "date_modified",
		Columns: catalog.Cols("id:int", "date_modified:ts")}
	tb := destination.Table{Source: "copper", Stream: s}
	cols, err := d.Prepare(ctx, tb, append(s.Columns, destination.MetadataColumns...))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	rows := [][]any{{int64(900), now, now, nil}, {int64(7), now, now, nil}}
	if err := d.Write(ctx, destination.Batch{Table: tb, Columns: cols, Rows: rows}, stateAt(now)); err != nil {
		t.Fatal(err)
	}
	var maxRowid, maxID int64
	if err := d.DB().QueryRowContext(ctx, `SELECT max(rowid), max(id) FROM people`).Scan(&maxRowid, &maxID); err != nil {
		t.Fatal(err)
	}
	if maxRowid != 2 || maxID != 900 {
		t.Errorf("max(rowid) = %d, max(id) = %d: want rows appended (rowid 2) with their ids kept", maxRowid, maxID)
	}
	if got := cols[catalog.IndexOf(cols, "id")].Type; got != catalog.Integer {
		t.Errorf("id reads back as %s", got)
	}
}

// TestColumnNames pins the documented stored names of fields SQLite cannot take as they are,
// and that they survive reopening the file.
func TestColumnNames(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crmsync.db")
	ctx := t.Context()
	tb := destination.Table{Source: "close", Stream: catalog.Stream{Name: "users", PrimaryKey: []string{"id"}, Method: catalog.Incremental}}
	var cols []catalog.Column
	for _, n := range []string{"Name", "id", "name", "EMAIL", "Email", "rowid", "nul\x00byte", "ID"} {
		cols = append(cols, catalog.Column{Name: n, Type: catalog.String})
	}
	want := []string{"Name_" + hashOf("Name"), "id", "name", "EMAIL", "Email_" + hashOf("Email"), "rowid_" + hashOf("rowid"), "nulbyte_" + hashOf("nul\x00byte"), "ID_" + hashOf("ID")}
	stored := func(d readable) []string {
		var names string
		err := d.ro.QueryRowContext(ctx, `SELECT group_concat(name, '|') FROM (SELECT name FROM pragma_table_info('users') ORDER BY cid)`).Scan(&names)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Split(names, "|")
	}
	d := open(t, path, "")
	if _, err := d.Prepare(ctx, tb, cols); err != nil {
		t.Fatal(err)
	}
	if got := stored(d); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("stored names %q, want %q", got, want)
	}
	d.Close()
	d = open(t, path, "")
	got, err := d.Prepare(ctx, tb, []catalog.Column{{Name: "NAME", Type: catalog.String}})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cols {
		if got[i].Name != c.Name {
			t.Errorf("after reopening, column %d is %q, want %q", i, got[i].Name, c.Name)
		}
	}
	if s := stored(d); len(s) != len(want)+1 || s[len(want)] != "NAME_"+hashOf("NAME") {
		t.Errorf("a later NAME is stored as %q", s[len(want):])
	}
}

func hashOf(name string) string { return hashedName(name)[len(hashedName(name))-8:] }

// TestStatementPlan: rows are written by statements of 100 rows and the rest by power-of-two
// statements, so every batch size reuses the same few prepared statements.
func TestStatementPlan(t *testing.T) {
	cols := catalog.Cols("id:str", "v:int")
	sqlFor := func(named []catalog.Column, n int) string { return fmt.Sprintf("%d rows", n) }
	for _, tt := range []struct {
		rows int
		want []int
	}{
		{0, nil}, {1, []int{1}}, {100, []int{100}}, {101, []int{100, 1}},
		{257, []int{100, 100, 32, 16, 8, 1}}, {99, []int{64, 32, 2, 1}},
	} {
		rows := make([][]any, tt.rows)
		for i := range rows {
			rows[i] = []any{fmt.Sprintf("k%04d", i), int64(i)}
		}
		var got []int
		written := 0
		for _, e := range planRows(rows, cols, []string{"id"}, nil) {
			var n int
			fmt.Sscanf(e.query(cols, sqlFor), "%d rows", &n)
			if args := e.args(nil); len(args) != 2*n {
				t.Errorf("%d rows: a %d-row statement has %d arguments", tt.rows, n, len(args))
			}
			got = append(got, n)
			written += n
		}
		if !slices.Equal(got, tt.want) || written != tt.rows {
			t.Errorf("%d rows: statements of %v rows, want %v", tt.rows, got, tt.want)
		}
	}
}

// TestStatementCacheStaysSmall: batches of every size from 1 to 300 rows leave at most the
// eight statement sizes prepared, and a column added by Prepare is written afterwards.
func TestStatementCacheStaysSmall(t *testing.T) {
	ctx := context.Background()
	d, err := Open(ctx, filepath.Join(t.TempDir(), "c.db"), "")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	s := catalog.Stream{Name: "leads", PrimaryKey: []string{"id"}, Method: catalog.Incremental, CursorField: "at", Columns: catalog.Cols("id:str", "at:ts")}
	tb := destination.Table{Source: "close", Stream: s}
	cols, err := d.Prepare(ctx, tb, s.Columns)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	next := 0
	for n := 1; n <= 300; n++ {
		rows := make([][]any, n)
		for i := range rows {
			rows[i] = []any{fmt.Sprintf("lead_%06d", next), now}
			next++
		}
		if err := d.Write(ctx, destination.Batch{Table: tb, Columns: cols, Rows: rows}, stateAt(now)); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(d.stmts.stmts); got > 8 {
		t.Errorf("%d statements prepared, want at most 8", got)
	}
	wider := append(slices.Clone(s.Columns), catalog.Column{Name: "extra", Type: catalog.String})
	if cols, err = d.Prepare(ctx, tb, wider); err != nil {
		t.Fatal(err)
	}
	if err := d.Write(ctx, destination.Batch{Table: tb, Columns: cols, Rows: [][]any{{"lead_000000", now.Add(time.Second), "new"}}}, stateAt(now)); err != nil {
		t.Fatal(err)
	}
	var extra string
	if err := d.db.QueryRowContext(ctx, `SELECT extra FROM leads WHERE id = 'lead_000000'`).Scan(&extra); err != nil || extra != "new" {
		t.Errorf("extra = %q, %v; want new", extra, err)
	}
	var n int
	if err := d.db.QueryRowContext(ctx, `SELECT count(*) FROM leads`).Scan(&n); err != nil || n != next {
		t.Errorf("rows = %d, %v; want %d", n, err, next)
	}
}

// TestFormatTime: the digit-by-digit formatter writes what time.Format writes, for instants
// of every year crmsync stores, in any zone.
func TestFormatTime(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	zone := time.FixedZone("x", -5*3600-30*60)
	lo, hi := time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC).Unix()
	instants := []time.Time{{}, time.Date(2024, 2, 29, 23, 59, 59, 999999999, zone), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	for range 10000 {
		instants = append(instants, time.Unix(lo+rng.Int64N(hi-lo), rng.Int64N(1e9)).In(zone))
	}
	for _, tm := range instants {
		if got, want := formatTime(tm), tm.UTC().Format(TimeLayout); got != want {
			t.Fatalf("formatTime(%v) = %s, want %s", tm, got, want)
		}
	}
}
