package engine

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/customfield"
	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/source"
)

// customPlan is the custom-field columns of a sync's streams.
type customPlan struct {
	tables map[string]*customfield.Table
	// refill holds, by stream, the mappings of a table synced before that has custom-field
	// columns for the first time (a replica of a release before them): the stream is read
	// again from its start date to fill them, and its mappings are stored once that read
	// has succeeded, so a sync stopped halfway refills again.
	refill map[string][]customfield.Mapping
	store  destination.CustomFieldStore
}

// planCustomFields reads the account's custom field definitions (once per sync), works out
// each selected stream's columns against the mappings the destination stored, and renames
// the columns of renamed fields. A destination that stores no mappings (Singer) gets the
// names a first sync would.
func planCustomFields(ctx context.Context, src source.Source, dst destination.Destination, srcName string, streams []catalog.Stream, bookmarked map[string]bool, now time.Time) (customPlan, error) {
	cf, ok := src.(source.CustomFields)
	if !ok || !slices.ContainsFunc(streams, func(s catalog.Stream) bool { return s.CustomFields }) {
		return customPlan{}, nil
	}
	names := make([]string, len(streams))
	for i, s := range streams {
		names[i] = s.Name
	}
	fields, err := cf.CustomFields(ctx, names)
	if err != nil {
		return customPlan{}, fmt.Errorf("read the custom field definitions: %w", err)
	}
	store, _ := dst.(destination.CustomFieldStore)
	var stored []customfield.Mapping
	if store != nil {
		if stored, err = store.CustomFields(ctx, srcName); err != nil {
			return customPlan{}, err
		}
	}
	reserved := map[string][]string{}
	method := map[string]catalog.Method{}
	for _, s := range streams {
		method[s.Name] = s.Method
		for _, c := range append(append([]catalog.Column{}, s.Columns...), destination.MetadataColumns...) {
			reserved[s.Name] = append(reserved[s.Name], c.Name)
			if c.Raw != "" {
				reserved[s.Name] = append(reserved[s.Name], c.Raw)
			}
		}
	}
	ms, changes := customfield.Plan(fields, stored, names, reserved, now)
	had := map[string]bool{}
	for _, m := range stored {
		had[m.Stream] = true
	}
	p := customPlan{tables: map[string]*customfield.Table{}, refill: map[string][]customfield.Mapping{}, store: store}
	var save []customfield.Mapping
	for _, s := range streams {
		p.tables[s.Name] = customfield.NewTable(s.Name, fields, ms, cf)
	}
	for _, m := range ms {
		if meth, selected := method[m.Stream]; selected && !had[m.Stream] && bookmarked[m.Stream] && meth != catalog.FullTable && store != nil {
			p.refill[m.Stream] = append(p.refill[m.Stream], m)
			continue
		}
		save = append(save, m)
	}
	// Only what changed is written: an account whose fields did not change costs no transaction.
	if save = customfield.Changed(stored, save); store != nil && (len(save) > 0 || len(changes.Renames)+len(changes.Relabels) > 0) {
		if err := store.SaveCustomFields(ctx, srcName, save, changes); err != nil {
			return customPlan{}, err
		}
	}
	return p, nil
}
