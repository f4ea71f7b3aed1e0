package bench

import (
	"context"

	"github.com/crmsync/crmsync/internal/customfield"
	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/state"
)

// discarding keeps nothing a sync writes: the engine reads, decodes and converts every row
// as for a real destination, and the batches are dropped where a destination would store
// them. A run into it measures the source side of a sync alone, so the difference to a run
// into a database is what storing the rows costs (the README's "What bounds throughput").
// Tables, state and custom-field mappings go to the destination beneath, so the engine
// takes the same path as for a first sync; it loads no table (BulkLoader is not passed on),
// which costs nothing here since no row arrives.
type discarding struct {
	destination.Destination
}

func (discarding) Write(context.Context, destination.Batch, state.Stream) error { return nil }

func (discarding) Replace(context.Context, destination.Table) (destination.Replacement, error) {
	return discardedReplacement{}, nil
}

func (d discarding) CustomFields(ctx context.Context, source string) ([]customfield.Mapping, error) {
	if s, ok := d.Destination.(destination.CustomFieldStore); ok {
		return s.CustomFields(ctx, source)
	}
	return nil, nil
}

func (d discarding) SaveCustomFields(ctx context.Context, source string, ms []customfield.Mapping, ch customfield.Changes) error {
	if s, ok := d.Destination.(destination.CustomFieldStore); ok {
		return s.SaveCustomFields(ctx, source, ms, ch)
	}
	return nil
}

// discardedReplacement drops a full-table stream's rows and state.
type discardedReplacement struct{}

func (discardedReplacement) Write(context.Context, destination.Batch) error { return nil }
func (discardedReplacement) Commit(context.Context, state.Stream) error     { return nil }
func (discardedReplacement) Abort(context.Context) error                    { return nil }
