package postgres_test

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/destination/postgres"
	"github.com/crmsync/crmsync/internal/destination/postgres/pgtest"
	"github.com/crmsync/crmsync/internal/destination/sqlite"
	"github.com/crmsync/crmsync/internal/state"
)

// go test ./internal/destination/postgres -run XXX -bench BenchmarkLoad -benchtime 1x [-load-rows N] [-load-batch N]
var (
	loadRows  = flag.Int("load-rows", 1_000_000, "rows BenchmarkLoad loads")
	loadBatch = flag.Int("load-batch", 5000, "rows per destination transaction in BenchmarkLoad (the engine's default)")
)

// leadStream is shaped like Close's leads: 21 fields (text, instants, JSON, numbers) plus
// crmsync's two metadata columns.
var leadStream = catalog.Stream{
	Name: "leads", PrimaryKey: []string{"id"}, Method: catalog.Incremental, CursorField: "date_updated",
	Columns: catalog.Cols("id:str", "name:str", "display_name:str", "description:str", "url:str", "html_url:str",
		"status_id:str", "status_label:str", "organization_id:str", "created_by:str", "created_by_name:str",
		"updated_by:str", "updated_by_name:str", "date_created:ts", "date_updated:ts", "addresses:json",
		"contacts:json", "custom:json", "num_employees:int", "score:num", "is_active:bool"),
}

var leadCols = append(append([]catalog.Column{}, leadStream.Columns...), destination.MetadataColumns...)

// leadGen makes deterministic lead-like rows. Field values come from small pools built up front,
// so generating a row costs little next to storing it.
type leadGen struct {
	names, descs, addrs, contacts, customs []string
	users                                  []string
	base                                   time.Time
}

func newLeadGen() *leadGen {
	g := &leadGen{base: time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)}
	for i := range 997 {
		g.names = append(g.names, fmt.Sprintf("Acme %d Holdings — Zoë & Søn GmbH", i))
		g.descs = append(g.descs, strings.Repeat(fmt.Sprintf("Lead %d imported from a trade show; follow up in Q3. ", i), 2))
		g.addrs = append(g.addrs, fmt.Sprintf(`[{"label":"business","address_1":"%d Main St","city":"Springfield","state":"IL","zipcode":"627%02d","country":"US"}]`, i, i%100))
		g.contacts = append(g.contacts, fmt.Sprintf(`[{"id":"cont_%06d","name":"Contact %d","title":"VP Sales","emails":[{"type":"office","email":"c%d@example.com"}],`+
			`"phones":[{"type":"office","phone":"+1555%07d"}],"date_created":"2023-01-01T00:00:00Z"},`+
			`{"id":"cont_%06db","name":"Second %d","title":"CTO","emails":[],"phones":[]}]`, i, i, i, i, i, i))
		g.customs = append(g.customs, fmt.Sprintf(`{"cf_industry":"Industry %d","cf_tier":%d,"cf_tags":["a","b"]}`, i%17, i%5))
	}
	for i := range 25 {
		g.users = append(g.users, fmt.Sprintf("user_%022d", i))
	}
	return g
}

func (g *leadGen) row(i int, extracted time.Time) []any {
	k := i % 997
	id := "lead_" + strconv.FormatInt(int64(i)+1_000_000_000, 36) + "XqZ8kW3bN5tY"
	created := g.base.Add(time.Duration(i) * time.Second)
	return []any{
		id, g.names[k], g.names[k], g.descs[k], "https://example.com/" + strconv.Itoa(k), "https://app.close.com/lead/" + id + "/",
		"stat_" + strconv.Itoa(i%7), "Potential", "orga_1234567890abcdefghij", g.users[i%25], "Jane Doe",
		g.users[(i+3)%25], "John Roe", created, created.Add(time.Hour), g.addrs[k],
		g.contacts[k], g.customs[k], int64(i % 5000), float64(i%1000) / 7, i%3 != 0,
		extracted, nil,
	}
}

func (g *leadGen) batch(t destination.Table, from, n int, extracted time.Time) destination.Batch {
	rows := make([][]any, n)
	for j := range rows {
		rows[j] = g.row(from+j, extracted)
	}
	return destination.Batch{Table: t, Columns: leadCols, Rows: rows}
}

// loadThrough writes rows through a destination, batch by batch, each with its bookmark, as the
// engine does.
func loadThrough(b *testing.B, d destination.Destination, rows, batchSize int) {
	ctx := context.Background()
	t := destination.Table{Source: "close", Stream: leadStream}
	if _, err := d.Prepare(ctx, t, leadCols); err != nil {
		b.Fatal(err)
	}
	g := newLeadGen()
	extracted := time.Now().UTC()
	for from := 0; from < rows; from += batchSize {
		n := min(batchSize, rows-from)
		bt := g.batch(t, from, n, extracted)
		st := state.Stream{Bookmark: g.base.Add(time.Duration(from+n) * time.Second), SchemaVersion: 1, LastSyncAt: extracted}
		if err := d.Write(ctx, bt, st); err != nil {
			b.Fatal(err)
		}
	}
}

// copySource streams generated rows to a plain COPY.
type copySource struct {
	g         *leadGen
	i, n      int
	extracted time.Time
}

func (s *copySource) Next() bool             { s.i++; return s.i <= s.n }
func (s *copySource) Values() ([]any, error) { return s.g.row(s.i-1, s.extracted), nil }
func (s *copySource) Err() error             { return nil }

func BenchmarkLoad(b *testing.B) {
	url := pgtest.NewDatabase(b)
	rows, batchSize := *loadRows, *loadBatch
	report := func(b *testing.B, what string, elapsed time.Duration) {
		rate := float64(rows) / elapsed.Seconds()
		b.ReportMetric(rate, "rows/s")
		b.ReportMetric(0, "ns/op")
		fmt.Printf("%-44s %9d rows in %8.2fs = %8.0f rows/s\n", what, rows, elapsed.Seconds(), rate)
	}
	var run int
	schema := func() string { run++; return fmt.Sprintf("load_%d", run) }

	b.Run("copy", func(b *testing.B) {
		for range b.N {
			ctx := context.Background()
			conn, err := pgx.Connect(ctx, url)
			if err != nil {
				b.Fatal(err)
			}
			s := schema()
			var ddl []string
			for _, c := range leadCols {
				typ := map[catalog.Type]string{catalog.Integer: "bigint", catalog.Number: "double precision", catalog.Boolean: "boolean",
					catalog.Timestamp: "timestamptz", catalog.JSON: "jsonb"}[c.Type]
				if typ == "" {
					typ = "text"
				}
				ddl = append(ddl, pgx.Identifier{c.Name}.Sanitize()+" "+typ)
			}
			if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE SCHEMA %s; CREATE TABLE %s.leads (%s)", s, s, strings.Join(ddl, ", "))); err != nil {
				b.Fatal(err)
			}
			names := make([]string, len(leadCols))
			for i, c := range leadCols {
				names[i] = c.Name
			}
			start := time.Now()
			if _, err := conn.CopyFrom(ctx, pgx.Identifier{s, "leads"}, names, &copySource{g: newLeadGen(), n: rows, extracted: time.Now().UTC()}); err != nil {
				b.Fatal(err)
			}
			report(b, "plain COPY, one statement, no index", time.Since(start))
			conn.Close(ctx)
		}
	})
	b.Run("postgres", func(b *testing.B) {
		for range b.N {
			d, err := postgres.Open(context.Background(), url, schema())
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			loadThrough(b, d, rows, batchSize)
			report(b, fmt.Sprintf("crmsync postgres (batches of %d)", batchSize), time.Since(start))
			d.Close()
		}
	})
	b.Run("sqlite", func(b *testing.B) {
		for range b.N {
			d, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "load.db"), "close")
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			loadThrough(b, d, rows, batchSize)
			report(b, fmt.Sprintf("crmsync sqlite (batches of %d)", batchSize), time.Since(start))
			d.Close()
		}
	})
}
