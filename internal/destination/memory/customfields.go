package memory

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/crmsync/crmsync/internal/catalog"

	"github.com/crmsync/crmsync/internal/customfield"
	"github.com/crmsync/crmsync/internal/destination"
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
func (d *Destination) SaveCustomFields(ctx context.Context, source string, ms []customfield.Mapping, ch customfield.Changes) error {
	if err := d.begin(ctx); err != nil {
		return err
	}
	defer d.mu.Unlock()
	// Check every rename before changing anything: all or nothing, as in a transaction.
	for _, rn := range ch.Renames {
		tb, ok := d.tables[rn.Stream]
		if !ok || tb.source != source {
			continue // not created yet: it will be created with the new name
		}
		if slices.ContainsFunc(tb.cols, func(c catalog.Column) bool { return c.Name == rn.To }) {
			return fmt.Errorf("rename %s.%s to %s: the table has a column of that name", rn.Stream, rn.From, rn.To)
		}
	}
	for _, rn := range ch.Renames {
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
			// Values set aside are kept by column name: they follow the column.
			if u, ok := row[destination.UnparsedColumn].(string); ok {
				var kept map[string]json.RawMessage
				if json.Unmarshal([]byte(u), &kept) == nil && kept[rn.From] != nil {
					kept[rn.To] = kept[rn.From]
					delete(kept, rn.From)
					if b, err := json.Marshal(kept); err == nil {
						row[destination.UnparsedColumn] = string(b)
					}
				}
			}
		}
	}
	for _, rl := range ch.Relabels {
		tb, ok := d.tables[rl.Stream]
		if !ok || tb.source != source {
			continue
		}
		for _, row := range tb.rows {
			row[rl.Column] = relabel(row[rl.Column], rl)
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

// relabel is a stored label (or JSON array of labels) with renamed options' new labels.
func relabel(v any, rl customfield.Relabel) any {
	s, ok := v.(string)
	if !ok {
		return v
	}
	if !rl.Multi {
		if to, ok := rl.Labels[s]; ok {
			return to
		}
		return v
	}
	var labels []any
	if err := json.Unmarshal([]byte(s), &labels); err != nil {
		return v
	}
	for i, l := range labels {
		if to, ok := rl.Labels[fmt.Sprint(l)]; ok {
			labels[i] = to
		}
	}
	b, err := json.Marshal(labels)
	if err != nil {
		return v
	}
	return string(b)
}

var _ destination.CustomFieldStore = (*Destination)(nil)
