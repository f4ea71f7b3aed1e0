package catalog

import (
	"fmt"
	"strings"
)

// Markdown renders the table reference of the given catalogs: the docs are generated from the
// declarations the code runs on, so they cannot drift from it.
func Markdown(cats ...Catalog) string {
	var b strings.Builder
	b.WriteString("# Tables\n\n")
	b.WriteString("Generated from the stream declarations by `go run ./cmd/crmsync docs > docs/TABLES.md`; a test fails when this file is stale.\n\n")
	b.WriteString("Every table also has `_crmsync_extracted_at` (when the sync that wrote the row started, UTC) and `_crmsync_deleted_at` (NULL while the row is live) and `_crmsync_unparsed` (the raw values of fields that did not fit their column — timestamps and dates that did not parse, custom-field values of another type — which hold NULL, as a JSON object; NULL when every value fitted).\n")
	b.WriteString("Fields the API sends beyond the columns listed here are kept too: they become extra columns (schema drift).\n\n")
	b.WriteString(TypeRules)
	b.WriteString(CustomFieldRules)
	for _, c := range cats {
		fmt.Fprintf(&b, "\n## %s (schema version %d)\n\n", c.Source, c.SchemaVersion)
		b.WriteString("| table | method | primary key | replication key | notes |\n|---|---|---|---|---|\n")
		for _, s := range c.Streams {
			var notes []string
			if s.Lookback > 0 {
				notes = append(notes, fmt.Sprintf("attribution window %s", s.Lookback))
			}
			if s.MaxHistory > 0 {
				notes = append(notes, fmt.Sprintf("history limit %d days", int(s.MaxHistory.Hours()/24)))
			}
			if s.Deletes != DeletesNotCaptured && s.Deletes != DeletesReplaced {
				notes = append(notes, "deletes: "+string(s.Deletes))
			}
			if s.VersionField != "" {
				notes = append(notes, "one row per version ("+strings.Join(s.PrimaryKey, ", ")+", "+s.VersionField+")")
			}
			if s.ReadWith != nil {
				notes = append(notes, "read with "+s.ReadWith.Stream+": the bookmark is a "+s.ReadWith.Stream+" cursor")
			}
			fmt.Fprintf(&b, "| [%s](#%s-%s) | %s | %s | %s | %s |\n", s.Name, c.Source, s.Name, s.Method,
				strings.Join(s.PrimaryKey, ", "), dash(s.CursorField), dash(strings.Join(notes, "; ")))
		}
		if len(c.CustomFieldKinds) > 0 {
			var carry []string
			for _, s := range c.Streams {
				if s.CustomFields {
					carry = append(carry, "`"+s.Name+"`")
				}
			}
			fmt.Fprintf(&b, "\n### %s custom fields\n\nTables with custom-field columns: %s.\n\n", c.Source, strings.Join(carry, ", "))
			b.WriteString("| field type | column type | notes |\n|---|---|---|\n")
			for _, k := range c.CustomFieldKinds {
				fmt.Fprintf(&b, "| %s | %s | %s |\n", k.Kind, k.Type, dash(k.Note))
			}
		}
		for _, s := range c.Streams {
			fmt.Fprintf(&b, "\n### %s %s\n\n", c.Source, s.Name)
			if s.Description != "" {
				b.WriteString(s.Description + "\n\n")
			}
			if s.CustomFields {
				fmt.Fprintf(&b, "Also a `custom_<name>` column for each of the account's custom fields that applies to this table (see [%s custom fields](#%s-custom-fields)).\n\n", c.Source, c.Source)
			}
			b.WriteString("| column | type | notes |\n|---|---|---|\n")
			for _, col := range s.Columns {
				fmt.Fprintf(&b, "| `%s` | %s | %s |\n", col.Name, col.Type, dash(col.Description))
			}
		}
	}
	return b.String()
}

func dash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// TypeRules is the one statement of how each logical type is stored, for the docs.
const TypeRules = `Column types (one per meaning of a field; SQLite / PostgreSQL):

| type | holds | SQLite | PostgreSQL |
|---|---|---|---|
| integer | whole numbers: ids, counts, seconds, cents | ` + "`BIGINT`" + ` | ` + "`bigint`" + ` |
| number | quantities with a fraction: amounts, ` + "`win_probability`" + ` (0–100) | ` + "`REAL`" + ` | ` + "`double precision`" + ` |
| boolean | true / false | ` + "`BOOLEAN`" + ` (1 / 0) | ` + "`boolean`" + ` |
| timestamp | an instant (ISO 8601 or unix seconds in the API) | ` + "`TIMESTAMP`" + `: UTC text ` + "`2006-01-02T15:04:05.000000Z`" + `, sorts in time order | ` + "`timestamptz`" + ` |
| date | a calendar day (` + "`YYYY-MM-DD`" + `, Copper's ` + "`M/D/YYYY`" + `, the day of a date-time as written) | ` + "`DATE`" + `: text ` + "`YYYY-MM-DD`" + `, sorts in day order | ` + "`date`" + ` |
| string | text | ` + "`TEXT`" + ` | ` + "`text`" + ` |
| json | any JSON value as a document: objects and arrays, and a string sent in a field that is sometimes an object is the JSON string (` + "`\"Open\"`" + `) | ` + "`JSON TEXT`" + ` (JSON text) | ` + "`jsonb`" + ` |

A timestamp or date that does not parse is stored as NULL, its raw value kept in ` + "`_crmsync_unparsed`" + `; other columns widen (integer → number → string) when a value does not fit, and never narrow.
`

// CustomFieldRules is the one statement of how custom fields become columns, for the docs.
const CustomFieldRules = `
Custom fields: every custom field the account defines for a table becomes a column of its own,
named ` + "`custom_<name>`" + `: the field's name in lower case, accents removed (` + "`Région`" + ` → ` + "`region`" + `, ` + "`ß`" + ` → ` + "`ss`" + `),
each run of characters other than letters and digits one ` + "`_`" + `, none at either end; letters of other
scripts are kept (` + "`custom_ウェブサイト`" + `), names are cut to 63 bytes, and a name left empty is ` + "`custom_field`" + `.
When two fields (or a field and a column of the table) would share a name, the field added later
gets its id as a suffix (` + "`custom_region_710014`" + `, ` + "`custom_region_vnx558gk`" + `).
The table ` + "`_crmsync_custom_fields`" + ` maps each column to its table, the field's id, current name and type,
its option labels, and ` + "`deleted_at`" + ` once the field is gone from the account. A field renamed in the CRM
renames its column (data kept); a field added later adds a column; a deleted field keeps its column and data.
Values are typed from the field's definition (tables per CRM below); a value that does not fit (text
in a number field, an option id the definition lacks) is stored as NULL and kept in ` + "`_crmsync_unparsed`" + `,
and the column keeps its type. The CRM's raw values stay where the spec puts them (Copper's
` + "`custom_fields`" + ` array, Close's deprecated ` + "`custom`" + ` object on leads); Close's flat ` + "`custom.cf_…`" + ` keys are
replaced by the named columns.
`
