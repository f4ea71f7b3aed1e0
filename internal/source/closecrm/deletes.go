package closecrm

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/record"
	"github.com/crmsync/crmsync/internal/source"
)

// deletes says how each table learns of deletions. The event log announces them for leads,
// activities, tasks, custom fields, contacts and opportunities (a lead's deletion emits one for
// each of its contacts and opportunities). Users leave an organization without a documented
// event: they are swept on the reconcile_every cadence (one page, one request). The event
// log's own rows age out of the API, not out of the replica.
var deletes = map[string]catalog.Deletes{
	"leads":         catalog.DeletesByEvents,
	"activities":    catalog.DeletesByEvents,
	"tasks":         catalog.DeletesByEvents,
	"custom_fields": catalog.DeletesByEvents,
	"contacts":      catalog.DeletesByEvents,
	"opportunities": catalog.DeletesByEvents,
	"users":         catalog.DeletesBySweep,
}

// eventRetention is how far back the event log reaches; eventLate how late an event may
// appear in it (so the next read starts that much before this sync's start).
const (
	eventRetention = 30 * 24 * time.Hour
	eventLate      = 5 * time.Minute
)

// objectTypes says which event object types are rows of each table (by prefix).
var objectTypes = map[string]string{
	"leads":         "lead",
	"activities":    "activity.",
	"tasks":         "task.",
	"custom_fields": "custom_fields.",
	"contacts":      "contact",
	"opportunities": "opportunity",
}

// change is what a deletion read needs of one event.
type change struct {
	objectType, objectID, action, mergedAway string
}

// eventScan is one walk of the event log over a window, shared by every table whose deletion
// read covers that window: the tables of one sync read it once, not once each.
type eventScan struct {
	once    sync.Once
	changes []change
	err     error
}

// scans holds the walks of the event log, by window.
type scans struct {
	mu sync.Mutex
	m  map[source.Window]*eventScan
}

func (s *Source) scan(ctx context.Context, w source.Window) ([]change, error) {
	s.scans.mu.Lock()
	if s.scans.m == nil {
		s.scans.m = map[source.Window]*eventScan{}
	}
	sc, ok := s.scans.m[w]
	if !ok {
		sc = &eventScan{}
		s.scans.m[w] = sc
	}
	s.scans.mu.Unlock()
	sc.once.Do(func() {
		// Unfiltered by type: the API allows action only with object_type, so filtering would
		// cost one walk per object type (dozens) where one serves every table.
		sc.err = s.readEvents(ctx, source.Window{From: w.From}, collect(func(rec record.Record) {
			c := change{}
			c.objectType, _ = rec["object_type"].(string)
			c.objectID, _ = rec["object_id"].(string)
			c.action, _ = rec["action"].(string)
			if raw, ok := rec["meta"].(json.RawMessage); ok {
				var meta struct {
					Source string `json:"merge_source_lead_id"`
				}
				if json.Unmarshal(raw, &meta) == nil {
					c.mergedAway = meta.Source
				}
			}
			sc.changes = append(sc.changes, c)
		}))
	})
	if sc.err != nil {
		s.scans.mu.Lock()
		delete(s.scans.m, w) // a later read tries again
		s.scans.mu.Unlock()
	}
	return sc.changes, sc.err
}

// ReadDeletions implements source.DeletionFeed: the table's deleted objects since w.From, from
// the event log (a lead merged into another counts as deleted), and for activities the new
// version of those edited since (Close cannot list activities by update time).
func (s *Source) ReadDeletions(ctx context.Context, st catalog.Stream, w source.Window, out source.DeletionEmitter) (time.Time, error) {
	prefix, ok := objectTypes[st.Name]
	if !ok {
		return time.Time{}, fmt.Errorf("%s: the event log does not cover it", st.Name)
	}
	// An hour of margin: the API's clock and the retention's exact edge are not ours.
	if w.From.Before(w.To.Add(-eventRetention + time.Hour)) {
		return time.Time{}, source.ErrFeedLapsed
	}
	changes, err := s.scan(ctx, w)
	if err != nil {
		return time.Time{}, err
	}
	of := func(c change) bool {
		return c.objectType == prefix || (strings.HasSuffix(prefix, ".") && strings.HasPrefix(c.objectType, prefix))
	}
	deleted := map[string]bool{}
	var edited []string
	for _, c := range changes {
		switch {
		case st.Name == "leads" && c.objectType == "lead" && c.action == "merged" && c.mergedAway != "":
			deleted[c.mergedAway] = true
		case !of(c) || c.objectID == "":
		case c.action == "deleted":
			deleted[c.objectID] = true
		case c.action == "updated" && st.Name == "activities" && !slices.Contains(edited, c.objectID):
			edited = append(edited, c.objectID)
		}
	}
	for id := range deleted {
		if err := out.Deleted(ctx, id); err != nil {
			return time.Time{}, err
		}
	}
	edited = slices.DeleteFunc(edited, func(id string) bool { return deleted[id] })
	if err := s.rereadActivities(ctx, edited, out); err != nil {
		return time.Time{}, err
	}
	return w.To.Add(-eventLate), nil
}

// rereadActivities reads activities by id, a page of ids at a time.
func (s *Source) rereadActivities(ctx context.Context, ids []string, out source.DeletionEmitter) error {
	for len(ids) > 0 {
		n := min(len(ids), activityPageSize)
		q := url.Values{"id__in": {strings.Join(ids[:n], ",")}, "_limit": {fmt.Sprint(activityPageSize)}}
		p, err := s.list(ctx, "/activity/", q)
		if err != nil {
			return err
		}
		for _, rec := range p.Data {
			if err := out.Record(ctx, rec); err != nil {
				return err
			}
		}
		ids = ids[n:]
	}
	return nil
}

// sweepFields are the fields an id sweep asks for: the id and the key its listing is walked on.
var sweepFields = map[string]string{
	"leads": "id,date_updated", "activities": "id,date_created", "tasks": "id,date_created",
	"custom_fields": "id,date_updated", "users": "id,date_updated",
	// Contacts are read from the leads that embed them (readContacts), in every read.
	"contacts": "id,date_updated,contacts", "opportunities": "id,date_updated",
}

// Sweep implements source.Sweeper: the table's listing from its beginning, with only the
// fields that identify and place each record (_fields).
func (s *Source) Sweep(ctx context.Context, st catalog.Stream, out source.Emitter) error {
	fields, ok := sweepFields[st.Name]
	if !ok {
		return fmt.Errorf("%s: no id sweep", st.Name)
	}
	return tables.Read(s, context.WithValue(ctx, fieldsKey{}, fields), st, source.Window{From: time.Unix(0, 0).UTC()}, out)
}

// fieldsKey carries the _fields selection of an id sweep to list.
type fieldsKey struct{}

// collect is an Emitter that hands each record to a function.
type collect func(record.Record)

func (c collect) Record(_ context.Context, rec record.Record) error {
	c(rec)
	return nil
}

func (collect) Checkpoint(context.Context, time.Time) error { return nil }
