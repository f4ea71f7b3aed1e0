// Package catalog is the vocabulary every other package shares: streams (tables), their
// replication method, keys and typed columns, and the catalog a source publishes.
//
// A source declares its streams as data; the engine, the destinations, the discover command and
// the generated docs all read the same declarations, so they cannot disagree.
package catalog

import (
	"errors"
	"fmt"
	"sort"
	"time"
)

// Method is how a stream is replicated.
type Method string

const (
	// FullTable reads every row on every sync and replaces the destination table atomically.
	FullTable Method = "FULL_TABLE"
	// Incremental (CDC) reads rows whose cursor is at or after the bookmark and upserts them by key.
	Incremental Method = "INCREMENTAL"
	// AppendOnly reads like Incremental but appends every version it reads; a version already
	// stored (same key and VersionField value) is not stored twice, so re-reads are harmless.
	AppendOnly Method = "APPEND_ONLY"
)

// Type is the logical type of a column. Destinations map it to their own types.
//
// The type rules, one per meaning of a field (docs/TABLES.md lists every column's type):
//   - integer: whole numbers (ids, counts, durations in seconds, money in cents);
//   - number: quantities that may have a fraction (money amounts, win_probability 0–100);
//   - boolean;
//   - timestamp: an instant (ISO 8601 text or unix seconds in the API), stored in UTC;
//   - date: a calendar day without a time or zone (Copper's M/D/YYYY close_date, Close's
//     date-only fields), stored as the day itself: no time zone can shift it;
//   - string: text;
//   - json: any JSON value as a JSON document — nested objects and arrays, and scalars in a
//     field that is sometimes an object (a string "Open" is stored as the JSON string "Open").
//
// A timestamp or date value that does not parse is stored as NULL and its raw value kept (see
// destination.UnparsedColumn); other columns widen (integer → number → string) when a value
// does not fit, and never narrow.
type Type string

const (
	Integer   Type = "integer"
	Number    Type = "number"
	Boolean   Type = "boolean"
	Timestamp Type = "timestamp" // ISO 8601 strings or unix seconds in the API; a UTC instant in the destination
	Date      Type = "date"      // a calendar day: YYYY-MM-DD, M/D/YYYY, or the day of a date-time as written
	String    Type = "string"
	JSON      Type = "json" // any JSON value, kept as a JSON document
)

// Temporal reports whether values of t are parsed (instants and days): such a column is never
// widened; a value that does not parse is set aside instead.
func (t Type) Temporal() bool { return t == Timestamp || t == Date }

// Widen returns the narrowest type that holds values of both a and b without loss.
// Types only ever widen: integer → number → string; anything mixed with JSON stays JSON
// only when both are JSON, otherwise it becomes string (JSON text is a string).
func Widen(a, b Type) Type {
	if a == b {
		return a
	}
	if a == "" {
		return b
	}
	if b == "" {
		return a
	}
	if (a == Integer && b == Number) || (a == Number && b == Integer) {
		return Number
	}
	return String
}

// Column is one typed column of a stream.
type Column struct {
	Name        string `json:"name"`
	Type        Type   `json:"type"`
	Description string `json:"description,omitempty"`
	// Raw names a string column that keeps the field's value as the API sent it, beside the
	// typed one, where the type cannot say everything the text did (a date-only value and a
	// date-time in one field). The engine fills it; empty: none.
	Raw string `json:"raw,omitempty"`
}

// Stream is one table replicated from a source.
type Stream struct {
	Name       string
	PrimaryKey []string
	Method     Method
	// CursorField is the replication key ("date_updated", "date_modified"); empty for FullTable.
	CursorField string
	// VersionField identifies one version of a row for AppendOnly streams (with the primary key).
	VersionField string
	// Lookback is the attribution window re-read before the bookmark on every sync.
	Lookback time.Duration
	// MaxHistory is how far back the API keeps data; zero means unlimited.
	MaxHistory time.Duration
	// Settle is how late the API may publish a row (Close's event log: up to 5 minutes). The
	// bookmark stays this far behind the sync's start so a late row is read next time.
	Settle time.Duration
	// ReadWith, when set, says the stream is read through another stream's listing, filtered
	// on that stream's cursor (Close contacts, through the leads that embed them): the bookmark
	// is then a value of the parent's cursor, and every record whose parent's cursor is before
	// it is stored — not every record whose own cursor is.
	ReadWith *Parent
	// ServerFiltered says the API filters this stream by a cursor range on the server, so
	// disjoint time windows can be read in parallel (a first sync of a big table at the rate
	// limit). Streams filtered on the client must not be split: each window would re-read all.
	ServerFiltered bool
	// Deletes is how records deleted in the source reach the table (see Deletes).
	Deletes Deletes
	// CustomFields says the stream's records carry the account's custom fields: each becomes
	// a column of its own, custom_<name> (package customfield).
	CustomFields bool
	// Columns are the documented fields. Fields the API sends beyond these are schema drift:
	// they become extra columns with an inferred type.
	Columns     []Column
	Description string
}

// Parent names the stream a stream is read through, and the field of a record that holds its
// parent's key.
type Parent struct {
	Stream, KeyField string
}

// Deletes is how a stream learns of records deleted in the source.
type Deletes string

const (
	// DeletesNotCaptured: a deleted record's row stays as it was.
	DeletesNotCaptured Deletes = ""
	// DeletesReplaced: a FullTable stream's rows are replaced on every sync, so rows gone
	// from the source are gone from the table.
	DeletesReplaced Deletes = "replaced"
	// DeletesByEvents: the API's change feed (Close's event log) announces deletions; every
	// sync reads those since the last one. When the feed no longer reaches back that far, an
	// id sweep stands in.
	DeletesByEvents Deletes = "event log"
	// DeletesBySweep: no feed exists; an id sweep (every id the API has, compared with the
	// table's) runs on a cadence.
	DeletesBySweep Deletes = "id sweep"
)

// Column returns the named column and whether the stream declares it.
func (s Stream) Column(name string) (Column, bool) {
	for _, c := range s.Columns {
		if c.Name == name {
			return c, true
		}
	}
	return Column{}, false
}

// Catalog is what a source publishes: its streams and the version of that table set.
type Catalog struct {
	Source        string
	SchemaVersion int
	Streams       []Stream
	// CustomFieldKinds are the types of the CRM's custom fields and the column type each is
	// stored as (see Stream.CustomFields).
	CustomFieldKinds []CustomFieldKind
}

// CustomFieldType is the column type of a field of the given CRM type: JSON, which holds any
// value, for a type kinds does not list.
func CustomFieldType(kinds []CustomFieldKind, kind string) Type {
	for _, k := range kinds {
		if k.Kind == kind {
			return k.Type
		}
	}
	return JSON
}

// CustomFieldKind is one of a CRM's custom field types and how its values are stored.
type CustomFieldKind struct {
	Kind string // the CRM's name of the type
	Type Type
	Note string
}

// Stream returns the named stream.
func (c Catalog) Stream(name string) (Stream, bool) {
	for _, s := range c.Streams {
		if s.Name == name {
			return s, true
		}
	}
	return Stream{}, false
}

// Select returns the streams named in names (all when names is empty), in catalog order,
// or an error naming every unknown stream.
func (c Catalog) Select(names []string) ([]Stream, error) {
	if len(names) == 0 {
		return c.Streams, nil
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []Stream
	for _, s := range c.Streams {
		if want[s.Name] {
			out = append(out, s)
			delete(want, s.Name)
		}
	}
	if len(want) > 0 {
		var unknown []string
		for n := range want {
			unknown = append(unknown, n)
		}
		sort.Strings(unknown)
		return nil, fmt.Errorf("unknown stream(s) %v for source %s; known: %v", unknown, c.Source, c.Names())
	}
	return out, nil
}

// Names lists the stream names in catalog order.
func (c Catalog) Names() []string {
	out := make([]string, len(c.Streams))
	for i, s := range c.Streams {
		out[i] = s.Name
	}
	return out
}

// Widening is one column whose type changes: it grows, or (Converts) a text column becomes
// the timestamp, date or JSON column its declaration asks for.
type Widening struct {
	Name     string
	From, To Type
}

// Converts reports whether the change re-reads stored text as a typed value rather than
// widening it. Only a release that declared the column as text (or widened it to text)
// leaves such a column: the upgrade converts it in place (see destination.Destination.Prepare).
func (w Widening) Converts() bool { return w.From == String && (w.To.Temporal() || w.To == JSON) }

// Merge returns existing columns (types widened to hold want) followed by the wanted ones
// missing, plus what was added and what was widened. Existing may be nil (a new table). A
// column without a type is a string. Destinations use it to evolve tables: columns are only
// ever added and widened, except that a text column wanted as timestamp, date or JSON is
// converted (Widening.Converts): replicas written before those fields were declared so (as
// drift columns, or declared as text) hold them as text.
func Merge(existing, want []Column) (merged, added []Column, widened []Widening) {
	idx := map[string]int{}
	merged = append(merged, existing...)
	for i, c := range merged {
		idx[c.Name] = i
	}
	for _, c := range want {
		if c.Type == "" {
			c.Type = String
		}
		i, ok := idx[c.Name]
		if !ok {
			idx[c.Name] = len(merged)
			merged = append(merged, c)
			added = append(added, c)
			continue
		}
		w := Widen(merged[i].Type, c.Type)
		if conv := (Widening{From: merged[i].Type, To: c.Type}); conv.Converts() {
			w = c.Type
		}
		if w != merged[i].Type {
			if j := IndexOf(added, c.Name); j >= 0 {
				added[j].Type = w // not created yet: create it wide
			} else {
				widened = append(widened, Widening{Name: c.Name, From: merged[i].Type, To: w})
			}
			merged[i].Type = w
		}
	}
	return merged, added, widened
}

// IndexOf returns the position of the named column, or -1.
func IndexOf(cols []Column, name string) int {
	for i, c := range cols {
		if c.Name == name {
			return i
		}
	}
	return -1
}

// Validate checks what the engine and the destinations rely on: a source name and schema
// version, unique stream and column names, typed columns, a primary key and the cursor and
// version fields among the columns, and the fields each method needs.
func (c Catalog) Validate() error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Source == "" {
		fail("catalog: no source name")
	}
	if c.SchemaVersion < 1 {
		fail("%s: schema version %d; versions start at 1", c.Source, c.SchemaVersion)
	}
	if len(c.Streams) == 0 {
		fail("%s: no streams", c.Source)
	}
	seen := map[string]bool{}
	for _, s := range c.Streams {
		where := c.Source + "." + s.Name
		if s.Name == "" || seen[s.Name] {
			fail("%s: stream name empty or declared twice", where)
		}
		seen[s.Name] = true
		cols := map[string]bool{}
		for _, col := range s.Columns {
			if col.Name == "" || cols[col.Name] {
				fail("%s: column %q empty or declared twice", where, col.Name)
			}
			cols[col.Name] = true
			switch col.Type {
			case Integer, Number, Boolean, Timestamp, Date, String, JSON:
			default:
				fail("%s.%s: unknown type %q", where, col.Name, col.Type)
			}
		}
		for _, col := range s.Columns {
			if raw, ok := s.Column(col.Raw); col.Raw != "" && (!ok || raw.Type != String || raw.Raw != "") {
				fail("%s.%s: raw column %q is not a string column of the stream", where, col.Name, col.Raw)
			}
		}
		if len(s.PrimaryKey) == 0 {
			fail("%s: no primary key", where)
		}
		field := func(role, name string) {
			if name != "" && !cols[name] {
				fail("%s: %s %q is not a column", where, role, name)
			}
		}
		for _, k := range s.PrimaryKey {
			field("primary key", k)
		}
		field("cursor field", s.CursorField)
		field("version field", s.VersionField)
		switch s.Method {
		case FullTable:
			if s.CursorField != "" || s.ServerFiltered || s.Lookback != 0 {
				fail("%s: a full table has no cursor, server filter or lookback", where)
			}
		case Incremental, AppendOnly:
			if s.CursorField == "" {
				fail("%s: %s needs a cursor field", where, s.Method)
			}
			if s.Method == AppendOnly && s.VersionField == "" {
				fail("%s: append-only needs a version field", where)
			}
		default:
			fail("%s: unknown method %q", where, s.Method)
		}
		if s.Lookback < 0 || s.MaxHistory < 0 || s.Settle < 0 {
			fail("%s: negative lookback, history or settle", where)
		}
		if p := s.ReadWith; p != nil {
			field("parent key field", p.KeyField)
			if parent, ok := c.Stream(p.Stream); !ok || parent.CursorField == "" || p.Stream == s.Name {
				fail("%s: read with %q, which is not another stream with a cursor", where, p.Stream)
			}
		}
	}
	return errors.Join(errs...)
}
