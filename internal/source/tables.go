package source

import (
	"context"
	"errors"
	"fmt"

	"github.com/crmsync/crmsync/internal/catalog"
)

// Reader reads one stream of a source of type S and emits its records.
type Reader[S any] func(src S, ctx context.Context, w Window, out Emitter) error

// Table is a stream declaration together with the code that reads it, so a table cannot be
// declared without a reader nor read by a switch that forgot it.
type Table[S any] struct {
	catalog.Stream
	Read Reader[S]
}

// Tables is a source's table set: its catalog and its readers in one declaration.
type Tables[S any] struct {
	Source        string
	SchemaVersion int
	List          []Table[S]
	// Deletes says, by stream name, how deletions reach an incremental stream; FullTable
	// streams are replaced (catalog.DeletesReplaced).
	Deletes map[string]catalog.Deletes
	// CustomFieldKinds document how the CRM's custom field types are stored.
	CustomFieldKinds []catalog.CustomFieldKind
}

// Catalog returns the declared streams.
func (ts Tables[S]) Catalog() catalog.Catalog {
	streams := make([]catalog.Stream, len(ts.List))
	for i, t := range ts.List {
		streams[i] = t.Stream
		if d, ok := ts.Deletes[t.Name]; ok && t.Method != catalog.FullTable {
			streams[i].Deletes = d
		} else if t.Method == catalog.FullTable {
			streams[i].Deletes = catalog.DeletesReplaced
		}
	}
	return catalog.Catalog{Source: ts.Source, SchemaVersion: ts.SchemaVersion, Streams: streams, CustomFieldKinds: ts.CustomFieldKinds}
}

// Read dispatches to the stream's reader.
func (ts Tables[S]) Read(src S, ctx context.Context, st catalog.Stream, w Window, out Emitter) error {
	for _, t := range ts.List {
		if t.Name == st.Name {
			return t.Read(src, ctx, w, out)
		}
	}
	return fmt.Errorf("%s: no stream %q", ts.Source, st.Name)
}

// Validate checks the catalog (catalog.Validate) and that every table has a reader.
func (ts Tables[S]) Validate() error {
	var errs []error
	if err := ts.Catalog().Validate(); err != nil {
		errs = append(errs, err)
	}
	for _, t := range ts.List {
		if t.Read == nil {
			errs = append(errs, fmt.Errorf("%s.%s: no reader", ts.Source, t.Name))
		}
	}
	var src S
	_, sweeps := any(src).(Sweeper)
	_, feeds := any(src).(DeletionFeed)
	for name, d := range ts.Deletes {
		st, ok := ts.Catalog().Stream(name)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s: deletes declared for %q, which is not a table", ts.Source, name))
		case st.Method == catalog.FullTable:
			errs = append(errs, fmt.Errorf("%s.%s: a full table is replaced; it declares no deletes", ts.Source, name))
		case d != catalog.DeletesByEvents && d != catalog.DeletesBySweep:
			errs = append(errs, fmt.Errorf("%s.%s: unknown way of capturing deletes %q", ts.Source, name, d))
		case !sweeps:
			errs = append(errs, fmt.Errorf("%s.%s: deletes need an id sweep, which the source cannot do", ts.Source, name))
		case d == catalog.DeletesByEvents && !feeds:
			errs = append(errs, fmt.Errorf("%s.%s: deletes by events, but the source reads no change feed", ts.Source, name))
		}
	}
	return errors.Join(errs...)
}
