package memory

import (
	"context"
	"fmt"
	"slices"

	"github.com/crmsync/crmsync/internal/catalog"

	"github.com/crmsync/crmsync/internal/customfield"
)

// CustomFields implements destination.CustomFieldStore.
func (d *Destination) CustomFields(ctx context.Context, source string) ([]customfield.Mapping, error) {
	if err := d.begin(ctx); err != nil {
		return nil, err
	}
	defer d.mu.Unlock()
	return slices.Clone(d.custom[source]), nil
}

// SaveCustomFields implements destination.CustomFieldStore.
func (d *Destination) SaveCustomFields(ctx context.Context, source string, ms []customfield.Mapping, renames []customfield.Rename) error {
	if err := d.begin(ctx); err != nil {
		return err
	}
	defer d.mu.Unlock()
	// Check every rename before changing anything: all or nothing, as in a transaction.
	for _, rn := range renames {
		tb, ok := d.tables[rn.Stream]
		if !ok || tb.source != source {
			continue // not created yet: it will be created with the new name
		}
		if slices.ContainsFunc(tb.cols, func(c catalog.Column) bool { return c.Name == rn.To }) {
			return fmt.Errorf("rename %s.%s to %s: the table has a column of that name", rn.Stream, rn.From, rn.To)
		}
	}
	for _, rn := range renames {
		tb, ok := d.tables[rn.Stream]
		if !ok || tb.source != source {
			continue
		}
		for i, c := range tb.cols {
			if c.Name == rn.From {
				tb.cols[i].Name = rn.To
			}
		}
		for _, row := range tb.rows {
			if v, ok := row[rn.From]; ok {
				delete(row, rn.From)
				row[rn.To] = v
			}
		}
	}
	if d.custom == nil {
		d.custom = map[string][]customfield.Mapping{}
	}
	stored := d.custom[source]
	for _, m := range ms {
		i := slices.IndexFunc(stored, func(o customfield.Mapping) bool { return o.Stream == m.Stream && o.FieldID == m.FieldID })
		if i < 0 {
			stored = append(stored, m)
		} else {
			stored[i] = m
		}
	}
	d.custom[source] = stored
	return nil
}
