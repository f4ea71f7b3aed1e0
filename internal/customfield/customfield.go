// Package customfield turns the custom fields an account defines into named, typed columns:
// it names each field's column (Name), keeps those names stable across renames, collisions
// and deletions (Plan, against the mappings a destination stored), and moves each value from
// where the API puts it into its column, as the column's type wants it (Table.Apply).
package customfield

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/record"
)

// Field is one custom field definition as a source reads it.
type Field struct {
	ID   string // the CRM's id ("cf_…" for Close, decimal for Copper)
	Name string // its current name
	Kind string // the CRM's own type ("choices", "Dropdown", …)
	// Type is the column's type; Multi says values are arrays (a json column).
	Type  catalog.Type
	Multi bool
	// Options are a choice field's options in the CRM's order. Where they have ids (Copper
	// Dropdown and MultiSelect), records carry option ids and the column holds labels; Close's
	// choices are labels, which records carry as they are.
	Options []Option
	// Streams are the tables whose records carry the field.
	Streams []string
}

// Mapping is where one field's values are stored in one table: what a destination keeps (in
// MappingTable) so names survive renames and deletions.
type Mapping struct {
	Stream     string
	Column     string
	FieldID    string
	FieldName  string
	FieldType  string // the CRM's type
	ColumnType catalog.Type
	Options    []Option  // a choice field's options, in the CRM's order
	DeletedAt  time.Time // when a sync found the field gone; zero while it exists
	UpdatedAt  time.Time // the sync that last changed this mapping
}

// Option is one choice of a choice field.
type Option struct {
	ID    string `json:"id,omitempty"` // where records carry option ids (Copper)
	Label string `json:"label"`
}

// Changes are what a plan does to tables that exist: columns renamed with their fields, and
// labels rewritten where options were renamed.
type Changes struct {
	Renames  []Rename
	Relabels []Relabel
}

// Relabel rewrites, in a column of option labels, the labels of renamed options (by option
// id, so exact): rows written before the rename then read as rows written after it do. Multi
// says the column holds JSON arrays of labels.
type Relabel struct {
	Stream, Column string
	Multi          bool
	Labels         map[string]string // old label → new label
}

// Rename is a column to rename because its field was renamed in the CRM.
type Rename struct {
	Stream   string
	From, To string
}

// MappingTable is the table destinations keep the mappings in.
const MappingTable = "_crmsync_custom_fields"

// Prefix starts every custom-field column.
const Prefix = "custom_"

// MaxColumnBytes bounds a column name: PostgreSQL's identifier limit (63 bytes), so a name is
// the same in every destination.
const MaxColumnBytes = 63

// Name is the column a field named name is stored in, before collisions are resolved:
// "custom_" and the name in lower case, with accents removed ("Région" → "region"), each run
// of characters other than letters and digits as one "_", and no "_" at either end. Letters of
// other scripts stay as they are ("ウェブサイト" → "custom_ウェブサイト"): both destinations take
// them in quoted names. A name left empty gives "custom_field".
func Name(name string) string {
	base := fold(name)
	if base == "" {
		base = "field"
	}
	return clipName(Prefix + base)
}

// suffixed is Name with a suffix that tells the field apart: its id, made a name.
func suffixed(name, id string) string {
	sfx := "_" + idSuffix(id)
	return clipTo(Name(name), MaxColumnBytes-len(sfx)) + sfx
}

// idSuffix is the part of an id that tells fields apart, as name characters: Copper's decimal
// id, or the first 8 letters and digits of Close's "cf_…" id, in lower case.
func idSuffix(id string) string {
	id = strings.TrimPrefix(id, "cf_")
	var b strings.Builder
	for _, r := range strings.ToLower(id) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
		if b.Len() == 8 {
			break
		}
	}
	if b.Len() == 0 {
		return "x"
	}
	return b.String()
}

// clipName cuts a name to MaxColumnBytes.
func clipName(s string) string { return clipTo(s, MaxColumnBytes) }

// clipTo cuts s to n bytes at a character boundary, without a trailing "_".
func clipTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return strings.TrimRight(s[:n], "_")
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// Plan works out the custom-field columns of a sync from the account's fields and the
// mappings stored by earlier syncs. A field keeps its column while its name is unchanged; a
// renamed field's column is renamed; a new field gets Name, or Name with its id as a suffix
// when another field or a column of the table (reserved, by stream) holds that name; a field
// gone from the account keeps its column and data, and its mapping is marked deleted. Only
// the given streams are planned; mappings of other streams are returned as they were.
func Plan(fields []Field, stored []Mapping, streams []string, reserved map[string][]string, now time.Time) (ms []Mapping, ch Changes) {
	planned := map[string]bool{}
	for _, s := range streams {
		planned[s] = true
	}
	byStream := map[string][]Mapping{}
	for _, m := range stored {
		if planned[m.Stream] {
			byStream[m.Stream] = append(byStream[m.Stream], m)
		} else {
			ms = append(ms, m)
		}
	}
	sorted := slices.Clone(fields)
	slices.SortFunc(sorted, func(a, b Field) int { return compareIDs(a.ID, b.ID) })
	for _, s := range streams {
		var here []Field
		for _, f := range sorted {
			if slices.Contains(f.Streams, s) {
				here = append(here, f)
			}
		}
		if len(here) == 0 && len(byStream[s]) == 0 {
			continue
		}
		got, c := planStream(s, here, byStream[s], reserved[s], now)
		ms = append(ms, got...)
		ch.Renames = append(ch.Renames, c.Renames...)
		ch.Relabels = append(ch.Relabels, c.Relabels...)
	}
	return ms, ch
}

func planStream(stream string, fields []Field, stored []Mapping, reserved []string, now time.Time) ([]Mapping, Changes) {
	taken := map[string]string{} // column (lower case) → field id holding it
	for _, c := range reserved {
		taken[strings.ToLower(c)] = ""
	}
	old := map[string]Mapping{}
	for _, m := range stored {
		old[m.FieldID] = m
		taken[strings.ToLower(m.Column)] = m.FieldID
	}
	free := func(col, id string) bool {
		holder, ok := taken[strings.ToLower(col)]
		return !ok || holder == id
	}
	choose := func(f Field) string {
		if c := Name(f.Name); free(c, f.ID) {
			return c
		}
		return suffixed(f.Name, f.ID)
	}
	var out []Mapping
	var ch Changes
	seen := map[string]bool{}
	for _, f := range fields {
		seen[f.ID] = true
		m, had := old[f.ID]
		next := Mapping{Stream: stream, FieldID: f.ID, FieldName: f.Name, FieldType: f.Kind, ColumnType: f.Type, Options: f.Options, UpdatedAt: now}
		switch {
		case !had:
			next.Column = choose(f)
		case m.FieldName == f.Name || Name(f.Name) == Name(m.FieldName):
			next.Column = m.Column // unchanged, or renamed to a name with the same column
		default:
			next.Column = choose(f)
			if !free(next.Column, f.ID) { // pathological: even the suffixed name is held
				next.Column = m.Column
			}
		}
		if had {
			// A field whose type changed in the CRM keeps one column: its type widens to hold both.
			next.ColumnType = catalog.Widen(m.ColumnType, f.Type)
			if next.Column != m.Column {
				ch.Renames = append(ch.Renames, Rename{Stream: stream, From: m.Column, To: next.Column})
				delete(taken, strings.ToLower(m.Column))
			}
			if labels := renamedOptions(m.Options, f.Options); len(labels) > 0 && m.DeletedAt.IsZero() {
				ch.Relabels = append(ch.Relabels, Relabel{Stream: stream, Column: next.Column, Multi: f.Multi, Labels: labels})
			}
			if m.sameAs(next) {
				next.UpdatedAt = m.UpdatedAt
			}
		}
		taken[strings.ToLower(next.Column)] = f.ID
		out = append(out, next)
	}
	for _, m := range stored {
		if seen[m.FieldID] {
			continue
		}
		if m.DeletedAt.IsZero() {
			m.DeletedAt, m.UpdatedAt = now, now
		}
		out = append(out, m)
	}
	return out, ch
}

// Changed returns the mappings of ms that stored does not hold as they are: what a
// destination has to write, so a sync whose account changed nothing writes nothing.
func Changed(stored, ms []Mapping) []Mapping {
	type key struct{ stream, id string }
	had := make(map[key]Mapping, len(stored))
	for _, m := range stored {
		had[key{m.Stream, m.FieldID}] = m
	}
	var out []Mapping
	for _, m := range ms {
		o, ok := had[key{m.Stream, m.FieldID}]
		if !ok || !o.sameContent(m) || !o.UpdatedAt.Equal(m.UpdatedAt) || !o.DeletedAt.Equal(m.DeletedAt) {
			out = append(out, m)
		}
	}
	return out
}

// renamedOptions maps the old label of each option (by id) whose label changed to its new one.
func renamedOptions(old, cur []Option) map[string]string {
	out := map[string]string{}
	for _, o := range old {
		for _, c := range cur {
			if o.ID != "" && o.ID == c.ID && o.Label != c.Label {
				out[o.Label] = c.Label
			}
		}
	}
	return out
}

// sameAs says two mappings of a live field say the same.
func (m Mapping) sameAs(o Mapping) bool {
	return m.sameContent(o) && m.DeletedAt.IsZero() && o.DeletedAt.IsZero()
}

// sameContent compares everything but the times.
func (m Mapping) sameContent(o Mapping) bool {
	return m.Column == o.Column && m.FieldName == o.FieldName && m.FieldType == o.FieldType && m.ColumnType == o.ColumnType &&
		slices.Equal(m.Options, o.Options)
}

// compareIDs orders ids as numbers where both are (Copper), else as text.
func compareIDs(a, b string) int {
	x, errA := strconv.ParseInt(a, 10, 64)
	y, errB := strconv.ParseInt(b, 10, 64)
	if errA == nil && errB == nil {
		return cmp.Compare(x, y)
	}
	return strings.Compare(a, b)
}

// Values is how a source's records carry custom field values.
type Values interface {
	// CustomValueReader returns what reads, from a record of stream, the values of the fields
	// ids: it calls fn with each value rec carries, by field id, and the record field that holds
	// only that value (Close's flat "custom.cf_…" keys), or "" where the value sits inside a
	// field the record keeps (Copper's custom_fields array). It may pass fields not in ids.
	// Knowing the ids, a source whose values have keys of their own looks those up rather than
	// walk every field of every record (which cost 4 % of a Close sync's CPU).
	CustomValueReader(stream string, ids []string) func(rec record.Record, fn func(id string, v any, field string))
}

// Table is the custom-field columns of one stream in one sync.
type Table struct {
	read func(rec record.Record, fn func(id string, v any, field string))
	byID map[string]column
	cols []catalog.Column
	// moves is Apply's buffer: one stream's writer applies its table, record by record.
	moves []move
}

// move is a value on its way to its column, from field when the value had one of its own.
type move struct {
	col, field string
	v          any
}

type column struct {
	name  string
	field Field
	// labels maps option ids to labels where records carry ids; nil otherwise.
	labels map[string]string
}

// NewTable is the columns of stream's live fields, as planned (ms), and how values reach them.
func NewTable(stream string, fields []Field, ms []Mapping, values Values) *Table {
	t := &Table{byID: map[string]column{}}
	byID := map[string]Field{}
	for _, f := range fields {
		byID[f.ID] = f
	}
	for _, m := range ms {
		f, ok := byID[m.FieldID]
		if m.Stream != stream || !ok || !m.DeletedAt.IsZero() {
			continue
		}
		c := column{name: m.Column, field: f}
		for _, o := range f.Options {
			if o.ID != "" {
				if c.labels == nil {
					c.labels = map[string]string{}
				}
				c.labels[o.ID] = o.Label
			}
		}
		t.byID[m.FieldID] = c
		t.cols = append(t.cols, catalog.Column{Name: m.Column, Type: m.ColumnType,
			Description: fmt.Sprintf("custom field %q (%s, id %s)", f.Name, f.Kind, f.ID)})
	}
	if len(t.byID) > 0 {
		t.read = values.CustomValueReader(stream, slices.Sorted(maps.Keys(t.byID)))
	}
	return t
}

// Columns are the table's custom-field columns. Their types are fixed: a value that does not
// fit is set aside (the engine keeps it in destination.UnparsedColumn), never widening them.
func (t *Table) Columns() []catalog.Column {
	if t == nil {
		return nil
	}
	return t.cols
}

// Apply moves rec's custom field values into their columns, as the columns' types want them:
// an option id becomes its label, an array of option ids an array of labels; an empty array
// (Copper's "none chosen") becomes null. A value that cannot become what its field's type
// says (an option id the definition lacks) becomes record.Unfit, which the engine sets aside.
// A flat field that carried a value is removed from rec; values of fields the account does
// not define (any more) stay where they were.
func (t *Table) Apply(rec record.Record) {
	if t == nil || len(t.byID) == 0 {
		return
	}
	// Values are moved after the read: a reader may be walking rec.
	t.moves = t.moves[:0]
	t.read(rec, func(id string, v any, field string) {
		if c, ok := t.byID[id]; ok {
			t.moves = append(t.moves, move{c.name, field, c.value(v)})
		}
	})
	for _, m := range t.moves {
		if m.field != "" {
			delete(rec, m.field)
		}
		rec[m.col] = m.v
	}
	clear(t.moves) // hold no values of the record
}

// value is v as the field's column wants it.
func (c column) value(v any) any {
	if arr, ok := v.([]any); ok && len(arr) == 0 {
		return nil
	}
	if c.labels == nil || v == nil {
		return v
	}
	if arr, ok := v.([]any); ok {
		out := make([]any, len(arr))
		for i, x := range arr {
			l, ok := c.labels[idText(x)]
			if !ok {
				return record.Unfit{Value: v}
			}
			out[i] = l
		}
		return out
	}
	if l, ok := c.labels[idText(v)]; ok {
		return l
	}
	return record.Unfit{Value: v}
}

func idText(v any) string {
	switch x := v.(type) {
	case json.Number:
		return string(x)
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case int64:
		return strconv.FormatInt(x, 10)
	}
	return fmt.Sprint(v)
}
