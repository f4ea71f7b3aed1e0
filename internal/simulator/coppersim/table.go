package coppersim

import (
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/crmsync/crmsync/internal/simulator/simfault"
)

// entity is a record type served by a search endpoint.
type entity uint8

const (
	entPeople entity = iota
	entCompanies
	entLeads
	entOpportunities
	entProjects
	entTasks
	entActivities
	entUsers
	numEntities
)

type entityInfo struct {
	path   string // URL segment: /developer_api/v1/<path>/search
	table  string // spec table name
	kind   string // singular, as in related_resource.type and available_on
	idBase int64
	stride int64 // ids are idBase + slot*stride + 1 + jitter, jitter < stride: strictly increasing
}

var entities = [numEntities]entityInfo{
	entPeople:        {"people", "people", "person", 120450000, 4},
	entCompanies:     {"companies", "companies", "company", 40110000, 3},
	entLeads:         {"leads", "leads", "lead", 30990000, 3},
	entOpportunities: {"opportunities", "opportunities", "opportunity", 27330000, 3},
	entProjects:      {"projects", "projects", "project", 410000, 2},
	entTasks:         {"tasks", "tasks", "task", 98760000, 3},
	entActivities:    {"activities", "activities_search", "activity", 15550000000, 4}, // ids above 2^31
	entUsers:         {"users", "users", "user", 381000, 1},
}

func entityByTable(name string) (entity, bool) {
	for e := entity(0); e < numEntities; e++ {
		if entities[e].table == name || entities[e].path == name {
			return e, true
		}
	}
	return 0, false
}

func entityByPath(seg string) (entity, bool) {
	for e := entity(0); e < numEntities; e++ {
		if entities[e].path == seg {
			return e, true
		}
	}
	return 0, false
}

// rec is the only per-record state: 24 bytes. Everything else is generated
// from (seed, entity, slot, version) when served.
type rec struct {
	created  int64  // date_created
	modified int64  // date_modified; for activities: activity_date
	version  uint32 // bumped by every update
	flags    uint32
}

const (
	flDeleted   = 1 << iota
	flConverted // leads only: hidden from search unless include_converted_leads
)

// table holds one entity's records. Slots are never reused or removed, so
// slot order is id order and an id maps back to its slot arithmetically.
type table struct {
	e         entity
	recs      []rec
	base      int32 // count at build time: cross references point into [0, base)
	live      int
	byMod     []int32 // live slots by (modified, slot); activities: by activity_date
	byCreated []int32 // live slots by (created, slot); nil for activities
	gen       uint64  // bumped on every mutation; invalidates caches
	mutSeq    uint32

	cacheMu   sync.Mutex
	cacheGen  uint64
	sorted    map[string][]int32 // lazily built orders for the other sort keys
	results   []cachedScan       // small LRU of filtered scans
	tagCounts []int64            // per tag name, nil until computed
}

func keyMod(r *rec) int64     { return r.modified }
func keyCreated(r *rec) int64 { return r.created }

// search returns the first position in idx whose (key, slot) is >= (k, slot).
func (t *table) searchIdx(idx []int32, key func(*rec) int64, k int64, slot int32) int {
	return sort.Search(len(idx), func(i int) bool {
		s := idx[i]
		ks := key(&t.recs[s])
		return ks > k || (ks == k && s >= slot)
	})
}

func (t *table) idxInsert(idx []int32, key func(*rec) int64, slot int32) []int32 {
	pos := t.searchIdx(idx, key, key(&t.recs[slot]), slot)
	return slices.Insert(idx, pos, slot)
}

func (t *table) idxRemove(idx []int32, key func(*rec) int64, slot int32) []int32 {
	pos := t.searchIdx(idx, key, key(&t.recs[slot]), slot)
	if pos < len(idx) && idx[pos] == slot {
		return slices.Delete(idx, pos, pos+1)
	}
	return idx
}

// rangeIdx returns [lo, hi) of positions in idx whose key lies in [min, max].
func (t *table) rangeIdx(idx []int32, key func(*rec) int64, min, max int64) (int, int) {
	lo := sort.Search(len(idx), func(i int) bool { return key(&t.recs[idx[i]]) >= min })
	hi := sort.Search(len(idx), func(i int) bool { return key(&t.recs[idx[i]]) > max })
	if hi < lo {
		hi = lo
	}
	return lo, hi
}

// buildIdx sorts the live slots by (key, slot). Keys are packed with the slot
// into one uint64 so the sort runs on plain integers (3-5x faster than a
// comparator sort at 300k records).
func (t *table) buildIdx(key func(*rec) int64) []int32 {
	idx := make([]int32, 0, t.live)
	if len(t.recs) == 0 {
		return idx
	}
	mn, mx := int64(1<<62), int64(-1<<62)
	for i := range t.recs {
		k := key(&t.recs[i])
		mn, mx = min(mn, k), max(mx, k)
	}
	if mx-mn >= 1<<31 { // cannot pack: fall back to a comparator sort
		for i := range t.recs {
			if t.recs[i].flags&flDeleted == 0 {
				idx = append(idx, int32(i))
			}
		}
		slices.SortFunc(idx, func(a, b int32) int {
			ka, kb := key(&t.recs[a]), key(&t.recs[b])
			if ka != kb {
				if ka < kb {
					return -1
				}
				return 1
			}
			return int(a - b)
		})
		return idx
	}
	packed := make([]uint64, 0, t.live)
	for i := range t.recs {
		if t.recs[i].flags&flDeleted == 0 {
			packed = append(packed, uint64(key(&t.recs[i])-mn)<<32|uint64(uint32(i)))
		}
	}
	slices.Sort(packed)
	for _, p := range packed {
		idx = append(idx, int32(uint32(p)))
	}
	return idx
}

func (t *table) isActivities() bool { return t.e == entActivities }

// invalidate drops derived caches; callers hold the server write lock.
func (t *table) invalidate() { t.gen++ }

// idOf returns the id of a slot of entity e.
func (s *Server) idOf(e entity, slot int32) int64 {
	info := &entities[e]
	j := int64(0)
	if info.stride > 1 {
		j = int64(simfault.Mix64(uint64(s.cfg.Seed)^uint64(e)<<48^uint64(uint32(slot))) % uint64(info.stride))
	}
	return info.idBase + int64(slot)*info.stride + 1 + j
}

// slotOf maps an id back to its slot, or -1.
func (s *Server) slotOf(e entity, id int64) int32 {
	info := &entities[e]
	q := id - info.idBase - 1
	if q < 0 {
		return -1
	}
	slot := q / info.stride
	t := s.tabs[e]
	if slot >= int64(len(t.recs)) || s.idOf(e, int32(slot)) != id {
		return -1
	}
	return int32(slot)
}

// build generates the metadata of all tables.
func (s *Server) build() {
	sizes := [numEntities]int{
		entPeople: s.cfg.People, entCompanies: s.cfg.Companies, entLeads: s.cfg.Leads,
		entOpportunities: s.cfg.Opportunities, entProjects: s.cfg.Projects, entTasks: s.cfg.Tasks,
		entActivities: s.cfg.Activities, entUsers: s.cfg.Users,
	}
	for e := entity(0); e < numEntities; e++ {
		t := &table{e: e, base: int32(sizes[e])}
		s.tabs[e] = t
	}
	// Build in parallel: each table is independent (2 cores here).
	var wg sync.WaitGroup
	for e := entity(0); e < numEntities; e++ {
		wg.Go(func() { s.buildTable(s.tabs[e], sizes[e]) })
	}
	wg.Wait()
}

func (s *Server) buildTable(t *table, n int) {
	e := t.e
	t.recs = make([]rec, n)
	span := s.end - s.start
	step := float64(span) / float64(max(n, 1))
	for i := range t.recs {
		r := s.rngFor(e, int32(i), stBuild, 0)
		// created grows with the slot, so ids follow creation order as in Copper.
		c := s.start + int64((float64(i)+r.Float())*step)
		c = min(max(c, s.start), s.end-1)
		var m int64
		switch {
		case e == entActivities:
			m = c - s.activityBackdate(int32(i), &r)
			m = max(m, s.start)
		case r.Chance(0.25):
			m = c // never modified
		default:
			m = c + r.int63n(s.end-c)
		}
		rc := rec{created: c, modified: m}
		if e == entLeads && r.Chance(0.12) {
			rc.flags |= flConverted
		}
		t.recs[i] = rc
	}
	t.live = n
	switch e {
	case entPeople:
		s.applySameTimestamp(t)
		s.applyFutureDated(t, 3600, 30*86400)
	case entActivities:
		s.applyFutureDated(t, 60, 60*86400)
	}
	t.byMod = t.buildIdx(keyMod)
	if e != entActivities {
		t.byCreated = t.buildIdx(keyCreated)
	}
}

// sameTimestampValue is the date_modified shared by Config.SameTimestamp people.
func (s *Server) sameTimestampValue() int64 { return s.start + (s.end-s.start)/2 }

func (s *Server) applySameTimestamp(t *table) {
	n := s.cfg.SameTimestamp
	if n == 0 || len(t.recs) == 0 {
		return
	}
	ts := s.sameTimestampValue()
	// Only records created at or before ts can carry it (created is monotonic in slot).
	m := sort.Search(len(t.recs), func(i int) bool { return t.recs[i].created > ts })
	n = min(n, m)
	for i := 0; i < n; i++ {
		t.recs[i*m/n].modified = ts
	}
}

// applyFutureDated dates cfg.FutureDated records after the Epoch, picked from
// the newest half so they do not collide with SameTimestamp records.
func (s *Server) applyFutureDated(t *table, minAhead, spread int64) {
	n := min(s.cfg.FutureDated, len(t.recs))
	if n == 0 {
		return
	}
	half := max(len(t.recs)/2, 1)
	stride := max(half/n, 1)
	for i := 0; i < n; i++ {
		slot := len(t.recs) - 1 - i*stride // i*stride < len(t.recs) since n <= len
		r := s.rngFor(t.e, int32(slot), stBuild, 1)
		t.recs[slot].modified = s.end + minAhead + r.int63n(spread)
	}
}

// pickLive chooses n distinct live slots deterministically. With keepOwner,
// user slot 0 (the API key's owner, served by /users/me) is never chosen.
func (s *Server) pickLive(t *table, n int, keepOwner bool) []int32 {
	protected := int32(-1)
	avail := t.live
	if keepOwner && t.e == entUsers && len(t.recs) > 0 && t.recs[0].flags&flDeleted == 0 {
		protected = 0
		avail--
	}
	if n <= 0 || avail <= 0 {
		return nil
	}
	if n >= avail {
		out := make([]int32, 0, avail)
		for i := range t.recs {
			if t.recs[i].flags&flDeleted == 0 && int32(i) != protected {
				out = append(out, int32(i))
			}
		}
		return out
	}
	r := s.rngFor(t.e, 0, stMutation, t.mutSeq)
	t.mutSeq++
	seen := make(map[int32]bool, n)
	out := make([]int32, 0, n)
	for len(out) < n {
		slot := int32(r.intn(len(t.recs)))
		for t.recs[slot].flags&flDeleted != 0 || seen[slot] || slot == protected {
			slot = (slot + 1) % int32(len(t.recs))
		}
		seen[slot] = true
		out = append(out, slot)
	}
	return out
}

func (s *Server) updateLocked(t *table, n int, at int64) []int64 {
	slots := s.pickLive(t, n, false)
	ids := make([]int64, 0, len(slots))
	for _, slot := range slots {
		t.byMod = t.idxRemove(t.byMod, keyMod, slot)
		s.sortedRemove(t, slot)
		t.recs[slot].modified = at
		t.recs[slot].version++
		t.byMod = t.idxInsert(t.byMod, keyMod, slot)
		s.sortedInsert(t, slot)
		ids = append(ids, s.idOf(t.e, slot))
	}
	t.invalidate()
	return ids
}

func (s *Server) addLocked(t *table, n int, at int64) []int64 {
	ids := make([]int64, 0, max(n, 0))
	for i := 0; i < n; i++ {
		slot := int32(len(t.recs))
		t.recs = append(t.recs, rec{created: at, modified: at})
		t.live++
		t.byMod = t.idxInsert(t.byMod, keyMod, slot)
		if t.byCreated != nil {
			t.byCreated = t.idxInsert(t.byCreated, keyCreated, slot)
		}
		s.sortedInsert(t, slot)
		ids = append(ids, s.idOf(t.e, slot))
	}
	t.invalidate()
	return ids
}

func (s *Server) deleteLocked(t *table, n int) []int64 {
	slots := s.pickLive(t, n, true)
	ids := make([]int64, 0, len(slots))
	for _, slot := range slots {
		if t.e != entActivities || !s.cfg.DeletedActivitiesInSearch {
			t.byMod = t.idxRemove(t.byMod, keyMod, slot)
		}
		if t.byCreated != nil {
			t.byCreated = t.idxRemove(t.byCreated, keyCreated, slot)
		}
		s.sortedRemove(t, slot)
		t.recs[slot].flags |= flDeleted
		t.live--
		ids = append(ids, s.idOf(t.e, slot))
	}
	t.invalidate()
	return ids
}

// UpdateRecords picks n live records of a search table, sets their
// date_modified to at and changes their versioned fields (details always
// changes). For activities the edit re-dates the activity: activity_date and
// date_modified both become at. Returns the ids (decimal, as in the API's paths: the
// simulators' mutation methods share one signature, simfault.Simulator); nil for other tables.
func (s *Server) UpdateRecords(table string, n int, at time.Time) []string {
	e, ok := entityByTable(table)
	if !ok {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return idStrings(s.updateLocked(s.tabs[e], n, at.Unix()))
}

// AddRecords appends n new records created (and modified) at `at`, with ids
// above all existing ones. Returns the new ids (decimal).
func (s *Server) AddRecords(table string, n int, at time.Time) []string {
	e, ok := entityByTable(table)
	if !ok {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return idStrings(s.addLocked(s.tabs[e], n, at.Unix()))
}

// AddBackdatedActivities adds n activities created at `created` whose
// activity_date (and date_modified) is the earlier `activityDate`: the
// user-editable back-dating that defeats a cursor on activity_date.
func (s *Server) AddBackdatedActivities(n int, created, activityDate time.Time) []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tabs[entActivities]
	ids := make([]int64, 0, max(n, 0))
	for i := 0; i < n; i++ {
		slot := int32(len(t.recs))
		t.recs = append(t.recs, rec{created: created.Unix(), modified: activityDate.Unix()})
		t.live++
		t.byMod = t.idxInsert(t.byMod, keyMod, slot)
		s.sortedInsert(t, slot)
		ids = append(ids, s.idOf(entActivities, slot))
	}
	t.invalidate()
	return ids
}

// DeleteRecords hard-deletes n live records: they vanish from search and
// GET /<entity>/{id} answers 404, except activities, which answer
// {"id":…, "is_deleted":true}. `at` is accepted for symmetry; Copper keeps no
// deletion time. The API key's user (/users/me) is never deleted. Returns the ids (decimal).
func (s *Server) DeleteRecords(table string, n int, at time.Time) []string {
	_ = at
	e, ok := entityByTable(table)
	if !ok {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return idStrings(s.deleteLocked(s.tabs[e], n))
}

func idStrings(ids []int64) []string {
	if ids == nil {
		return nil
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = strconv.FormatInt(id, 10)
	}
	return out
}
