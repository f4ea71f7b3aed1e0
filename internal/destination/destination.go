// Package destination defines what a destination must guarantee. Implementations live in
// sub-packages (sqlite, postgres); contract_test-style checks every one of them runs live in
// destinationtest.
package destination

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/customfield"
	"github.com/crmsync/crmsync/internal/state"
)

// Metadata columns on every table.
const (
	ExtractedAtColumn = "_crmsync_extracted_at"
	DeletedAtColumn   = "_crmsync_deleted_at"
	// UnparsedColumn holds, as a JSON object, the raw values of the row's fields that did not
	// parse in their timestamp or date column (which holds NULL for them); NULL when all parsed.
	UnparsedColumn = "_crmsync_unparsed"
)

// MetadataColumns are appended to every stream's columns.
var MetadataColumns = []catalog.Column{
	{Name: ExtractedAtColumn, Type: catalog.Timestamp, Description: "when the sync that wrote this row started (UTC)"},
	{Name: DeletedAtColumn, Type: catalog.Timestamp, Description: "when the row was seen deleted in the source; NULL while live"},
	{Name: UnparsedColumn, Type: catalog.JSON, Description: `the raw values of fields that did not fit their column (timestamps and dates that did not parse, custom-field values of another type; stored NULL), as {"field": value}; NULL when every value fitted`},
}

// ReservedPrefix starts the names of crmsync's own columns and tables.
const ReservedPrefix = "_crmsync_"

// FieldColumn is the column a source field is stored in: the field's name, except that a name
// in crmsync's reserved space (ReservedPrefix) gets the suffix "_src", so a source field never
// lands in a metadata column or changes its type. The mapping is one-to-one: only reserved
// names change, and they stay reserved.
func FieldColumn(field string) string {
	if strings.HasPrefix(field, ReservedPrefix) {
		return field + "_src"
	}
	return field
}

// Table identifies one destination table: the stream of a source.
type Table struct {
	Source string
	Stream catalog.Stream
}

// Batch is a set of rows for one table. Rows are aligned with Columns; each value is nil,
// int64, float64, bool, time.Time (a date column: midnight UTC of the day) or string (JSON
// columns carry JSON text of any JSON value). The rows' slices are the caller's again once
// Write returns (the engine reuses them for its next batch): a destination keeps values, never
// the slices; it may change cells in place while it writes.
type Batch struct {
	Table   Table
	Columns []catalog.Column
	Rows    [][]any
	// Deleted are the primary keys (values in PrimaryKey order, typed as in Rows) of records
	// deleted in the source. They apply after Rows, in the same transaction: every stored
	// row of such a key (every version, for an append-only stream) that is not marked yet
	// gets DeletedAt in DeletedAtColumn, or is removed when HardDelete. A row written later
	// with the same key is live again (its DeletedAtColumn is NULL).
	Deleted    [][]any
	DeletedAt  time.Time
	HardDelete bool
}

// Destination stores tables and their state. Every method is safe for concurrent use by the
// streams of one sync.
type Destination interface {
	// Lock claims the source for this process so two syncs of one source never interleave.
	// The returned func releases it. A second claim fails with ErrLocked.
	Lock(ctx context.Context, source string) (release func(), err error)
	// Claim makes the tables of a sync the source's before anything is written, all or none.
	// A table another source owns, or one crmsync did not create (an application's own
	// table in a shared database), fails the claim with a *ConflictError naming every such
	// table, and then nothing is changed: a sync into the wrong place never half-succeeds.
	// The engine calls it once, before any stream starts; Prepare refuses those tables too.
	Claim(ctx context.Context, tables []Table) error
	// Prepare creates the table or evolves it so it holds cols (adding columns, widening
	// types; never dropping or narrowing), and returns the table's columns afterwards. A text
	// column that cols declares as timestamp, date or JSON (a replica of an earlier release:
	// catalog.Widening.Converts) is converted in place, in the same transaction: values parse
	// as the engine parses them (ParsedText; the text of one that does not is kept in
	// UnparsedColumn, and the text of every value in the column its declaration names as Raw),
	// and text becomes JSON as record.JSONFromText says.
	Prepare(ctx context.Context, t Table, cols []catalog.Column) ([]catalog.Column, error)
	// State returns the saved state of every stream of the source.
	State(ctx context.Context, source string) (state.Source, error)
	// Write stores b (upsert by primary key for Incremental, insert-if-new-version for
	// AppendOnly) and the stream's state in one transaction: both or neither.
	Write(ctx context.Context, b Batch, st state.Stream) error
	// Replace starts an atomic replacement of a FullTable stream's rows.
	Replace(ctx context.Context, t Table) (Replacement, error)
	// Close releases the connection.
	Close() error
}

// BulkLoader is implemented by destinations that load a table's first sync faster without its
// key index, building the index once at the end (a sort instead of random page writes).
type BulkLoader interface {
	// BeginLoad puts an empty table into loading mode and says whether it did (a table with
	// rows, or one that cannot drop its index, stays as it is). While loading, Write appends
	// rows without looking for stored copies, so a key written twice is stored twice until
	// FinishLoad; the state is saved with each batch as always.
	BeginLoad(ctx context.Context, t Table) (bool, error)
	// FinishLoad keeps one copy of each key — the newest by cursor, the last written among
	// equals; for append-only tables the first copy of each version — and builds the index,
	// in one transaction. A load a crash interrupted is finished by the next Claim of its
	// source, before any stream is read.
	FinishLoad(ctx context.Context, t Table) error
}

// CustomFieldStore is implemented by destinations that keep the custom-field columns of a
// source's tables apart from one sync to the next, in customfield.MappingTable: which column
// holds which field of the CRM, so a renamed field's column is renamed and a deleted field's
// column kept.
type CustomFieldStore interface {
	// CustomFields returns the mappings stored for the source's tables.
	CustomFields(ctx context.Context, source string) ([]customfield.Mapping, error)
	// SaveCustomFields applies ch to the tables that exist — renames the columns of renamed
	// fields, then rewrites the labels of renamed options (customfield.Relabel) — and stores ms
	// (replacing the mappings of the same stream and field), in one transaction.
	SaveCustomFields(ctx context.Context, source string, ms []customfield.Mapping, ch customfield.Changes) error
}

// KeyLister is implemented by destinations that can list what they store: an id sweep
// compares the keys of a table's live rows with the ids the source still has.
type KeyLister interface {
	// LiveKeys calls fn with the primary key (values in PrimaryKey order) of every row of t
	// whose DeletedAtColumn is NULL, each key once. fn must not call the destination.
	LiveKeys(ctx context.Context, t Table, fn func(key []any) error) error
}

// Replacement stages the new contents of a table. Readers keep seeing the old contents until
// Commit swaps them in, in one transaction with the state.
type Replacement interface {
	Write(ctx context.Context, b Batch) error
	Commit(ctx context.Context, st state.Stream) error
	// Abort drops what was staged; the table keeps its old contents.
	Abort(ctx context.Context) error
}

// Conflict is a table a sync may not write: Owner is the source that owns it, or "" when
// crmsync did not create it.
type Conflict struct {
	Table string // as the destination names it
	Owner string
}

// ConflictError refuses a sync the tables of other sources or of other programs. crmsync never
// alters, fills or drops a table it did not create: CRM table names are generic ("users",
// "tasks"), and taking over an application's table would change its columns and mix rows in.
type ConflictError struct {
	Source    string
	Conflicts []Conflict
	// WayOut says how to give the source tables of its own in this destination (--schema).
	WayOut string
}

func (e *ConflictError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "refusing to sync %s into tables it does not own (nothing was changed): ", e.Source)
	for i, c := range e.Conflicts {
		if i > 0 {
			b.WriteString(", ")
		}
		if c.Owner == "" {
			fmt.Fprintf(&b, "%s (not created by crmsync)", c.Table)
		} else {
			fmt.Fprintf(&b, "%s (holds %s data)", c.Table, c.Owner)
		}
	}
	b.WriteString("; crmsync never alters, fills or drops a table it did not create")
	if e.WayOut != "" {
		b.WriteString(": " + e.WayOut)
	}
	return b.String()
}

// ErrLocked is returned by Lock when another sync of the same source holds the lock.
var ErrLocked = errors.New("another sync of this source is running against this destination")

// StoredKey is the columns that identify one stored row of s: its primary key, and for an
// append-only stream, which keeps every version of a row, the version field too.
func StoredKey(s catalog.Stream) []string {
	keys := append([]string{}, s.PrimaryKey...)
	if s.Method == catalog.AppendOnly && s.VersionField != "" {
		keys = append(keys, s.VersionField)
	}
	return keys
}
