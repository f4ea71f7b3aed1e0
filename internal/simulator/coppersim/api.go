package coppersim

import (
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
)

// Ground truth for tests.

// fullTables are the tables served by unpaginated GET lists.
var fullTables = []string{"account", "contact_types", "custom_field_definitions", "customer_sources",
	"lead_statuses", "loss_reasons", "pipeline_stages", "pipelines", "tags"}

// Tables lists the 17 Copper table names Snapshot and Count accept.
func Tables() []string {
	out := slices.Clone(fullTables)
	for e := entity(0); e < numEntities; e++ {
		out = append(out, entities[e].table)
	}
	slices.Sort(out)
	return out
}

// Snapshot returns the rows a correct replica of table holds now, decoded
// from the JSON as served (numbers are float64, as encoding/json decodes
// them). Search tables are in id order and include converted leads (a
// replica reads them with include_converted_leads); deleted records are
// absent, activities too (their stubs are only reachable by id). account is a
// one-row table. lead_statuses is empty while leads are disabled (the API
// answers 403, so a replica can hold nothing). Costs ~30 µs a row (JSON
// decoding); use EachRow for large tables. Unknown table names panic.
func (s *Server) Snapshot(table string) []map[string]any {
	var rows []map[string]any
	decode := func(b []byte) {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			panic(fmt.Sprintf("coppersim: served invalid JSON for %s: %v", table, err))
		}
		rows = append(rows, m)
	}
	if e, ok := entityByTable(table); ok {
		return s.snapshotEntity(e)
	}
	var b []byte
	var err error
	switch {
	case table == "account":
		b, err = s.accountJSON()
		if err == nil {
			decode(b)
		}
		return rows
	case table == "lead_statuses" && !s.cfg.leadsEnabled():
		return []map[string]any{}
	case slices.Contains(fullTables, table):
		b, err = s.smallListJSON(table)
	default:
		panic(fmt.Sprintf("coppersim: unknown table %q", table))
	}
	if err == nil {
		err = json.Unmarshal(b, &rows)
	}
	if err != nil {
		panic(fmt.Sprintf("coppersim: %s: %v", table, err))
	}
	return rows
}

// Count returns the number of rows Snapshot(table) would return, cheaply.
func (s *Server) Count(table string) int {
	if e, ok := entityByTable(table); ok {
		s.mu.RLock()
		defer s.mu.RUnlock()
		return s.tabs[e].live
	}
	switch {
	case table == "account":
		return 1
	case table == "lead_statuses" && !s.cfg.leadsEnabled():
		return 0
	case table == "tags":
		s.mu.RLock()
		rows, ok := s.small["tags"]
		s.mu.RUnlock()
		if ok {
			return len(rows)
		}
		return len(tagNames)
	case table == "custom_field_definitions":
		s.mu.RLock()
		defer s.mu.RUnlock()
		if rows, ok := s.small[table]; ok {
			return len(rows)
		}
		return s.cf.live()
	case slices.Contains(fullTables, table):
		s.mu.RLock()
		defer s.mu.RUnlock()
		return len(s.small[table])
	}
	panic(fmt.Sprintf("coppersim: unknown table %q", table))
}

// SetSmallList replaces the rows served for a full-table list (account,
// contact_types, custom_field_definitions, customer_sources, lead_statuses,
// loss_reasons, pipeline_stages, pipelines, tags). Rows are served as given
// (keys in encoding/json order); other lists are not derived from them, e.g.
// replacing pipelines leaves pipeline_stages as is. For account only rows[0]
// is used. Records keep referring to the original ids and tag names.
// custom_field_definitions: the override replaces only what is served, and
// stays in effect; the server's own definitions (what records carry, what the
// CustomFieldEditor methods edit) are not changed by it, and edits do not
// show in the served list while it is overridden.
// Unknown or search tables panic.
func (s *Server) SetSmallList(table string, rows []map[string]any) {
	if !slices.Contains(fullTables, table) {
		panic(fmt.Sprintf("coppersim: SetSmallList: %q is not a full-table list", table))
	}
	raw := make([]json.RawMessage, len(rows))
	for i, r := range rows {
		b, err := json.Marshal(r)
		if err != nil {
			panic(fmt.Sprintf("coppersim: SetSmallList(%s): %v", table, err))
		}
		raw[i] = b
	}
	s.mu.Lock()
	s.small[table] = raw
	s.mu.Unlock()
}

// snapshotEntity renders and decodes on every core: decoding into maps is
// what costs (about 20 µs a record), rendering is cheap.
func (s *Server) snapshotEntity(e entity) []map[string]any {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t := s.tabs[e]
	live := make([]int32, 0, t.live)
	for i := range t.recs {
		if t.recs[i].flags&flDeleted == 0 {
			live = append(live, int32(i))
		}
	}
	rows := make([]map[string]any, len(live))
	workers := min(runtime.GOMAXPROCS(0), max(len(live)/1000, 1))
	var wg sync.WaitGroup
	var bad atomic.Value
	for w := 0; w < workers; w++ {
		wg.Go(func() {
			var buf []byte
			for i := w; i < len(live); i += workers {
				buf = s.appendRecord(buf[:0], e, live[i])
				if err := json.Unmarshal(buf, &rows[i]); err != nil {
					bad.Store(fmt.Sprintf("coppersim: served invalid JSON for %s: %v", entities[e].table, err))
				}
			}
		})
	}
	wg.Wait()
	if msg := bad.Load(); msg != nil {
		panic(msg)
	}
	return rows
}

// EachRow calls fn with the served JSON of every row of a table, in
// Snapshot's order, without decoding: about 100x cheaper than Snapshot for
// large tables. raw is only valid during the call, and fn must not call the
// Server's mutating methods (the read lock is held).
func (s *Server) EachRow(table string, fn func(raw []byte)) {
	if e, ok := entityByTable(table); ok {
		s.mu.RLock()
		defer s.mu.RUnlock()
		t := s.tabs[e]
		var buf []byte
		for i := range t.recs {
			if t.recs[i].flags&flDeleted == 0 {
				buf = s.appendRecord(buf[:0], e, int32(i))
				fn(buf)
			}
		}
		return
	}
	var b []byte
	var err error
	if table == "account" {
		if b, err = s.accountJSON(); err == nil {
			fn(b)
		}
	} else if table == "lead_statuses" && !s.cfg.leadsEnabled() {
		return
	} else if slices.Contains(fullTables, table) {
		var rows []json.RawMessage
		if b, err = s.smallListJSON(table); err == nil {
			err = json.Unmarshal(b, &rows)
		}
		for _, r := range rows {
			fn(r)
		}
	} else {
		err = fmt.Errorf("unknown table %q", table)
	}
	if err != nil {
		panic("coppersim: EachRow: " + err.Error())
	}
}

// DemoConfig is a small but complete account for demos and the sandbox:
// every table populated, a few future-dated and same-timestamp records, no
// rate limit and no faults.
func DemoConfig(seed int64) Config {
	return Config{Seed: seed, People: 2000, Companies: 800, Leads: 600, Opportunities: 500, Projects: 120,
		Tasks: 900, Activities: 6000, Users: 8, FutureDated: 2, SameTimestamp: 25}
}
