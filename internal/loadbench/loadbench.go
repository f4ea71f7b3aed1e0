// Package loadbench measures a destination's load speed next to the database's own fastest
// path into the same table (its load ceiling), with generated rows shaped like Close leads.
// The bench command and the destination benchmarks share it.
package loadbench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/state"
)

// Stream is shaped like Close's leads: 21 fields (text, instants, JSON, numbers).
var Stream = catalog.Stream{
	Name: "leads", PrimaryKey: []string{"id"}, Method: catalog.Incremental, CursorField: "date_updated",
	Columns: catalog.Cols("id:str", "name:str", "display_name:str", "description:str", "url:str", "html_url:str",
		"status_id:str", "status_label:str", "organization_id:str", "created_by:str", "created_by_name:str",
		"updated_by:str", "updated_by_name:str", "date_created:ts", "date_updated:ts", "addresses:json",
		"contacts:json", "custom:json", "num_employees:int", "score:num", "is_active:bool"),
}

// Table is the stream as the benchmarks store it.
var Table = destination.Table{Source: "close", Stream: Stream}

// Columns are the stream's columns plus crmsync's metadata columns, in row order.
func Columns() []catalog.Column {
	return append(append([]catalog.Column{}, Stream.Columns...), destination.MetadataColumns...)
}

// Gen makes deterministic lead-like rows. Field values come from small pools built up front,
// so generating a row costs little next to storing it.
type Gen struct {
	names, descs, addrs, contacts, customs []string
	users                                  []string
	base                                   time.Time
}

// NewGen builds the value pools.
func NewGen() *Gen {
	g := &Gen{base: time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)}
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

// Row is row i, in Columns order.
func (g *Gen) Row(i int, extracted time.Time) []any {
	k := i % 997
	id := "lead_" + strconv.FormatInt(int64(i)+1_000_000_000, 36) + "XqZ8kW3bN5tY"
	created := g.base.Add(time.Duration(i) * time.Second)
	return []any{
		id, g.names[k], g.names[k], g.descs[k], "https://example.com/" + strconv.Itoa(k), "https://app.close.com/lead/" + id + "/",
		"stat_" + strconv.Itoa(i%7), "Potential", "orga_1234567890abcdefghij", g.users[i%25], "Jane Doe",
		g.users[(i+3)%25], "John Roe", created, created.Add(time.Hour), g.addrs[k],
		g.contacts[k], g.customs[k], int64(i % 5000), float64(i%1000) / 7, i%3 != 0,
		extracted, nil, nil, // _crmsync_extracted_at, _crmsync_deleted_at, _crmsync_unparsed
	}
}

// Through writes n rows through d in batches, each committed with its bookmark, and returns
// how long it took. As in the engine, the next batch is made while one is being written (a COPY
// likewise reads its rows while the server stores them).
func Through(ctx context.Context, d destination.Destination, n, batchSize int) (time.Duration, error) {
	cols, err := d.Prepare(ctx, Table, Columns())
	if err != nil {
		return 0, err
	}
	g := NewGen()
	extracted := time.Now().UTC()
	type batch struct {
		rows [][]any
		st   state.Stream
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan batch, 1)
	start := time.Now()
	go func() {
		defer close(batches)
		for from := 0; from < n; from += batchSize {
			rows := make([][]any, min(batchSize, n-from))
			for j := range rows {
				rows[j] = g.Row(from+j, extracted)
			}
			st := state.Stream{Bookmark: g.base.Add(time.Duration(from+len(rows)) * time.Second), SchemaVersion: 1, LastSyncAt: extracted}
			select {
			case batches <- batch{rows, st}:
			case <-ctx.Done():
				return
			}
		}
	}()
	for b := range batches {
		if err := d.Write(ctx, destination.Batch{Table: Table, Columns: cols, Rows: b.rows}, b.st); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

// Rows streams n generated rows, for a database's bulk path.
type Rows struct {
	g         *Gen
	i, n      int
	extracted time.Time
}

// NewRows streams rows 0..n-1.
func NewRows(n int) *Rows { return &Rows{g: NewGen(), n: n, extracted: time.Now().UTC()} }

// Next advances to the next row.
func (r *Rows) Next() bool { r.i++; return r.i <= r.n }

// Values is the current row.
func (r *Rows) Values() ([]any, error) { return r.g.Row(r.i-1, r.extracted), nil }

// Err is always nil: generation cannot fail.
func (r *Rows) Err() error { return nil }
