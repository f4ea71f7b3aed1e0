package destination

import (
	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/record"
)

// Converting a text column to a typed one (catalog.Widening.Converts) is how a replica written
// before a field was declared date or JSON is upgraded in place: the SQL destinations apply
// these rules, in SQL where the database can (JSON) and through the engine's own parser where
// only it knows the forms (dates).

// TextDays maps each distinct text value of a column turning into a date column to the day it
// stands for (record.ParseDate, written record.DateLayout); a value that is no date is absent:
// it becomes NULL, and its text goes to UnparsedColumn, as for a new value that does not parse.
func TextDays(values []string) map[string]string {
	days := make(map[string]string, len(values))
	for _, v := range values {
		if d, err := record.ParseDate(v); err == nil {
			days[v] = d.Format(record.DateLayout)
		}
	}
	return days
}

// RawOf returns the column of cols that keeps name's value as sent (catalog.Column.Raw), or "".
func RawOf(cols []catalog.Column, name string) string {
	if i := catalog.IndexOf(cols, name); i >= 0 {
		return cols[i].Raw
	}
	return ""
}
