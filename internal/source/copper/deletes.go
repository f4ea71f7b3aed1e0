package copper

import (
	"context"
	"time"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/record"
	"github.com/crmsync/crmsync/internal/source"
)

// deletes: Copper has no deletion feed (no event log; webhooks are lossy), so every CDC table
// finds its deleted records with an id sweep on the reconcile_every cadence.
var deletes = map[string]catalog.Deletes{
	"people": catalog.DeletesBySweep, "companies": catalog.DeletesBySweep, "leads": catalog.DeletesBySweep,
	"opportunities": catalog.DeletesBySweep, "projects": catalog.DeletesBySweep, "tasks": catalog.DeletesBySweep,
	"activities_search": catalog.DeletesBySweep,
}

// Sweep implements source.Sweeper: the table's own read from the beginning of time. Copper
// cannot select fields, so a sweep costs a full read; it walks the same keyset listing as the
// incremental read, which keeps each search under the 100,000-result ceiling and lets no
// live record slip between pages when others are created or deleted meanwhile. A deleted
// activity's stub ({"id", "is_deleted": true}), should search ever return one, is not live.
func (s *Source) Sweep(ctx context.Context, st catalog.Stream, out source.Emitter) error {
	return tables.Read(s, ctx, st, source.Window{From: time.Unix(0, 0).UTC()}, liveOnly{out})
}

// liveOnly drops deleted-record stubs.
type liveOnly struct{ source.Emitter }

func (l liveOnly) Record(ctx context.Context, rec record.Record) error {
	if deleted, _ := rec["is_deleted"].(bool); deleted {
		return nil
	}
	return l.Emitter.Record(ctx, rec)
}
