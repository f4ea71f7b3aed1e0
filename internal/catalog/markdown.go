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
			fmt.Fprintf(&b, "| [%s](#%s-%s) | %s | %s | %s | %s |\n", s.Name, c.Source, s.Name, s.Method,
				strings.Join(s.PrimaryKey, ", "), dash(s.CursorField), dash(strings.Join(notes, "; ")))
		}
		for _, s := range c.Streams {
			fmt.Fprintf(&b, "\n### %s %s\n\n", c.Source, s.Name)
			if s.Description != "" {
				b.WriteString(s.Description + "\n\n")
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
