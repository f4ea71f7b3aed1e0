package destination

import (
	"encoding/json"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/record"
)

// Converting a text column to a typed one (catalog.Widening.Converts) is how a replica written
// before a field was declared timestamp, date or JSON is upgraded in place: the destinations
// apply these rules, in SQL where the database can (JSON) and through the engine's own parser
// where only it knows the forms (instants and dates).

// TimeLayout is how an instant is written as text: fixed width, so text order is time order
// (the SQLite destination stores instants so; PostgreSQL reads it as timestamptz).
const TimeLayout = "2006-01-02T15:04:05.000000Z"

// ParsedText maps each distinct text value of a column turning into a timestamp or date column
// (to) to the value it stands for, as the engine's parser reads it (record.ParseTime,
// record.ParseDate), written as text (TimeLayout, record.DateLayout); a value that does not
// parse is absent: it becomes NULL, and its text goes to UnparsedColumn, as a new value that
// does not parse does.
//
// Text that is a number was one in the API (a text column stores a number as its JSON text):
// unix seconds, as the engine reads a number.
func ParsedText(values []string, to catalog.Type) map[string]string {
	out := make(map[string]string, len(values))
	for _, text := range values {
		var v any = text
		if n := json.Number(text); json.Valid([]byte(text)) && record.Infer(n) != catalog.String && record.Infer(n) != catalog.JSON {
			v = n
		}
		if to == catalog.Date {
			if d, err := record.ParseDate(v); err == nil {
				out[text] = d.Format(record.DateLayout)
			}
		} else if t, err := record.ParseTime(v); err == nil {
			out[text] = t.Format(TimeLayout)
		}
	}
	return out
}

// RawOf returns the column of cols that keeps name's value as sent (catalog.Column.Raw), or "".
func RawOf(cols []catalog.Column, name string) string {
	if i := catalog.IndexOf(cols, name); i >= 0 {
		return cols[i].Raw
	}
	return ""
}
