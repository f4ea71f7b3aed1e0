package closesim

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/crmsync/crmsync/internal/simulator/simfault"
)

// Stream ids.
const (
	sLeads = iota
	sActivities
	sTasks
	sUsers
	sCustomFields
	sEvents
	numStreams
)

var streamNames = [numStreams]string{"leads", "activities", "tasks", "users", "custom_fields", "event_log"}

func streamID(name string) int {
	for i, n := range streamNames {
		if n == name {
			return i
		}
	}
	return -1
}

// Index fields.
const (
	fID = iota
	fCreated
	fUpdated
	fDate // tasks: the task's due date
)

const (
	flagDeleted = 1 << iota
	flagTouched // transient, during index maintenance
)

// rec is all that is kept per record (24 bytes). The record's position in
// its stream's slice is its generator index ("gen"): the JSON is produced
// from (seed, stream, gen, ver, kind, created, updated) when served.
type rec struct {
	created, updated int64 // unix micros
	ver              uint16
	kind             uint8 // activity/task _type, custom field group
	flags            uint8
}

// ghostBase: generator indexes >= ghostBase name objects that were deleted
// before the dataset's history starts (targets of seeded "deleted" events).
// They can never collide with live records.
const ghostBase = 1 << 31

// Event actions.
const (
	actCreated = iota
	actUpdated
	actDeleted
	actMerged // on the destination lead of a merge; msrc is the lead merged into it
)

var actionNames = [...]string{"created", "updated", "deleted", "merged"}

// evRef is what an event points at. Kept only for event_log records.
type evRef struct {
	tupd, tprev int64 // target's date_updated after / before the change
	tgen        uint32
	msrc        uint32 // merges: the generator index of the lead merged away
	tver        uint16
	tstream     uint8
	action      uint8
	tkind       uint8
	changed     uint8 // "updated" events of custom fields: which changed_fields (ch*)
}

type index struct {
	field int
	ids   []int32
}

type stream struct {
	id      int
	salt    uint64
	recs    []rec
	live    int
	idx     []*index // idx[0] is always the id order
	version uint64
}

func (st *stream) index(field int) *index {
	for _, ix := range st.idx {
		if ix.field == field {
			return ix
		}
	}
	return nil
}

func (s *Server) idkey(sid int, gen uint32) uint64 {
	return simfault.Mix64(uint64(gen) + s.st[sid].salt)
}

// fieldVal is the sort value of record i on an index field.
func (s *Server) fieldVal(st *stream, field int, i int32) int64 {
	r := &st.recs[i]
	switch field {
	case fCreated:
		return r.created
	case fUpdated:
		return r.updated
	case fDate:
		d, _ := s.taskDate(uint32(i), r.created)
		return d
	}
	return 0
}

// tiebreak orders records with equal sort values: by id, except events,
// which keep insertion order (later event of one object sorts later).
func (s *Server) tiebreak(st *stream, i int32) uint64 {
	if st.id == sEvents {
		return uint64(i)
	}
	return simfault.Mix64(uint64(i) + st.salt)
}

// prefixRank orders task ids by prefix first ("noti_" < "task_"), so that
// record order is the ids' string order.
func prefixRank(st *stream, i int32) uint8 {
	if st.id == sTasks && taskTypes[st.recs[i].kind].prefix == "task_" {
		return 1
	}
	return 0
}

func (s *Server) cmpRec(st *stream, field int, a, b int32) int {
	if field != fID {
		if c := cmp.Compare(s.fieldVal(st, field, a), s.fieldVal(st, field, b)); c != 0 {
			return c
		}
	}
	if c := cmp.Compare(prefixRank(st, a), prefixRank(st, b)); c != 0 {
		return c
	}
	return cmp.Compare(s.tiebreak(st, a), s.tiebreak(st, b))
}

type sortItem struct {
	t int64
	k uint64
	i int32
	p uint8
}

// sortIDs sorts record indexes on field, precomputing keys (fast for the
// million-record builds).
func (s *Server) sortIDs(st *stream, field int, ids []int32) {
	tmp := make([]sortItem, len(ids))
	for j, i := range ids {
		it := sortItem{k: s.tiebreak(st, i), i: i, p: prefixRank(st, i)}
		if field != fID {
			it.t = s.fieldVal(st, field, i)
		}
		tmp[j] = it
	}
	slices.SortFunc(tmp, func(a, b sortItem) int {
		if a.t != b.t {
			return cmp.Compare(a.t, b.t)
		}
		if a.p != b.p {
			return cmp.Compare(a.p, b.p)
		}
		return cmp.Compare(a.k, b.k)
	})
	for j := range tmp {
		ids[j] = tmp[j].i
	}
}

// lowerBound returns the first position in ix whose field value >= t.
func (s *Server) lowerBound(st *stream, ix *index, t int64) int {
	return sortSearch(len(ix.ids), func(j int) bool { return s.fieldVal(st, ix.field, ix.ids[j]) >= t })
}

func sortSearch(n int, f func(int) bool) int {
	lo, hi := 0, n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if !f(m) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// span is a half-open interval [lo, hi) of unix micros.
type span struct{ lo, hi int64 }

var anyTime = span{math.MinInt64, math.MaxInt64}

func (a span) and(b span) span  { return span{max(a.lo, b.lo), min(a.hi, b.hi)} }
func (a span) all() bool        { return a == anyTime }
func (a span) has(t int64) bool { return t >= a.lo && t < a.hi }

func (s *Server) subrange(st *stream, ix *index, sp span) []int32 {
	lo, hi := 0, len(ix.ids)
	if sp.lo != math.MinInt64 {
		lo = s.lowerBound(st, ix, sp.lo)
	}
	if sp.hi != math.MaxInt64 {
		hi = s.lowerBound(st, ix, sp.hi)
	}
	if hi < lo {
		hi = lo
	}
	return ix.ids[lo:hi]
}

// ---- index maintenance ----

// reindex removes the touched records from every index except the id index
// (when keepID) and re-inserts the live ones at their new places: one pass
// over each index plus a merge, so bulk mutations stay O(n).
func (s *Server) reindex(st *stream, touched []int32, skipFields ...int) {
	var ins []int32
	for _, i := range touched {
		if st.recs[i].flags&flagDeleted == 0 {
			ins = append(ins, i)
		}
	}
	for _, ix := range st.idx {
		if slices.Contains(skipFields, ix.field) {
			continue
		}
		// Drop touched entries (also catches newly added ones, not yet there).
		out := ix.ids[:0]
		for _, i := range ix.ids {
			if st.recs[i].flags&flagTouched == 0 {
				out = append(out, i)
			}
		}
		ix.ids = out
		if len(ins) == 0 {
			continue
		}
		add := slices.Clone(ins)
		s.sortIDs(st, ix.field, add)
		ix.ids = s.mergeInto(st, ix.field, ix.ids, add)
	}
	for _, i := range touched {
		st.recs[i].flags &^= flagTouched
	}
	st.version++
}

// mergeInto merges sorted add into sorted a in place (from the back).
func (s *Server) mergeInto(st *stream, field int, a, add []int32) []int32 {
	n, m := len(a), len(add)
	a = slices.Grow(a, m)[:n+m]
	i, j, k := n-1, m-1, n+m-1
	for j >= 0 {
		if i >= 0 && s.cmpRec(st, field, a[i], add[j]) > 0 {
			a[k] = a[i]
			i--
		} else {
			a[k] = add[j]
			j--
		}
		k--
	}
	return a
}

// pickLive chooses up to n distinct live records with the mutation rng.
// The caller must clear flagTouched (reindex does).
func (s *Server) pickLive(st *stream, n int) []int32 {
	if n <= 0 || st.live == 0 {
		return nil
	}
	var out []int32
	if n*2 >= st.live {
		var all []int32
		for i := range st.recs {
			if st.recs[i].flags&flagDeleted == 0 {
				all = append(all, int32(i))
			}
		}
		for j := len(all) - 1; j > 0; j-- { // deterministic shuffle
			k := s.mrng.Intn(j + 1)
			all[j], all[k] = all[k], all[j]
		}
		out = all[:min(n, len(all))]
	} else {
		for len(out) < n {
			i := int32(s.mrng.Intn(len(st.recs)))
			if st.recs[i].flags&(flagDeleted|flagTouched) != 0 {
				continue
			}
			st.recs[i].flags |= flagTouched
			out = append(out, i)
		}
	}
	for _, i := range out {
		st.recs[i].flags |= flagTouched
	}
	return out
}

func (s *Server) recID(sid int, gen uint32, kind uint8) string {
	return makeID(s.idPrefix(sid, kind), s.idkey(sid, gen), idLen(sid))
}

func idLen(sid int) int {
	if sid == sEvents {
		return 22
	}
	return 43
}

func (s *Server) idPrefix(sid int, kind uint8) string {
	switch sid {
	case sLeads:
		return "lead_"
	case sActivities:
		return "acti_"
	case sTasks:
		return taskTypes[kind].prefix
	case sUsers:
		return "user_"
	case sCustomFields:
		return "cf_"
	case sEvents:
		return "ev_"
	case sContacts:
		return "cont_"
	case sOpps:
		return "oppo_"
	}
	return ""
}

// lookupID maps an id string back to its live record.
func (s *Server) lookupID(sid int, id string) (int32, bool) {
	st := s.st[sid]
	for _, p := range s.prefixesOf(sid) {
		k, ok := parseIDKey(id, p, idLen(sid))
		if !ok {
			continue
		}
		g := unmix64(k) - st.salt
		if g >= uint64(len(st.recs)) {
			return 0, false
		}
		r := st.recs[g]
		if r.flags&flagDeleted != 0 || s.recID(sid, uint32(g), r.kind) != id {
			return 0, false
		}
		return int32(g), true
	}
	return 0, false
}

func (s *Server) prefixesOf(sid int) []string {
	if sid == sTasks {
		return []string{"task_", "noti_"}
	}
	return []string{s.idPrefix(sid, 0)}
}

// leadGenOf maps a lead id to its generator index, live or not (filters on
// lead_id of deleted leads still match their activities).
func (s *Server) leadGenOf(id string) (int64, bool) {
	k, ok := parseIDKey(id, "lead_", 43)
	if !ok {
		return 0, false
	}
	g := unmix64(k) - s.st[sLeads].salt
	if g >= uint64(len(s.st[sLeads].recs)) || s.recID(sLeads, uint32(g), 0) != id {
		return 0, false
	}
	return int64(g), true
}

// ---- mutations ----

func (s *Server) mutate(sid int, op string, n int, at int64) []string {
	st := s.st[sid]
	var touched []int32
	switch op {
	case "update":
		touched = s.pickLive(st, n)
		for _, i := range touched {
			r := &st.recs[i]
			prev := r.updated
			if r.ver < math.MaxUint16 {
				r.ver++
			}
			r.updated = at
			s.emit(sid, uint32(i), r, actUpdated, at, prev)
		}
		s.reindex(st, touched, fID, fCreated, fDate)
	case "add":
		for k := 0; k < n; k++ {
			gen := uint32(len(st.recs))
			r := rec{created: at, updated: at, kind: s.kindFor(sid, gen), flags: flagTouched}
			st.recs = append(st.recs, r)
			st.live++
			touched = append(touched, int32(gen))
			s.emit(sid, gen, &r, actCreated, at, at)
		}
		s.reindex(st, touched)
	case "delete":
		touched = s.pickLive(st, n)
		if sid == sLeads {
			// Deleting a lead deletes its activities, tasks, contacts and opportunities, each
			// with its own event.
			s.deleteChildren(touched, at)
			s.deleteSubsOf(touched, at)
		}
		for _, i := range touched {
			s.deleteRec(sid, i, at)
		}
		s.reindex(st, touched)
	}
	ids := make([]string, len(touched))
	for j, i := range touched {
		ids[j] = s.recID(sid, uint32(i), st.recs[i].kind)
	}
	s.flushPendingEvents()
	s.clearCache()
	return ids
}

// deleteRec marks a record deleted and emits its "deleted" event; the caller reindexes.
func (s *Server) deleteRec(sid int, i int32, at int64) {
	st := s.st[sid]
	r := &st.recs[i]
	r.flags |= flagDeleted | flagTouched
	st.live--
	s.emit(sid, uint32(i), r, actDeleted, at, r.updated)
}

// children lists the live activities and tasks of the given leads, by stream.
func (s *Server) children(leads []int32) map[int][]int32 {
	of := map[int64]bool{}
	for _, l := range leads {
		of[int64(l)] = true
	}
	out := map[int][]int32{}
	for _, sid := range []int{sActivities, sTasks} {
		for i := range s.st[sid].recs {
			if s.st[sid].recs[i].flags&flagDeleted == 0 && of[s.leadOf(sid, uint32(i))] {
				out[sid] = append(out[sid], int32(i))
			}
		}
	}
	return out
}

// deleteChildren deletes the activities and tasks of leads being deleted.
func (s *Server) deleteChildren(leads []int32, at int64) {
	for sid, ids := range s.children(leads) {
		for _, i := range ids {
			s.deleteRec(sid, i, at)
		}
		s.reindex(s.st[sid], ids)
	}
}

// merge merges n pairs of live leads: each source lead's activities and tasks move to its
// destination lead ("updated" events), the destination lead is updated and gets a "merged"
// event naming the source, and the source lead is gone — with a "deleted" event of its own
// only when Config.MergeEmitsDeleted (the docs leave open which events it gets). Returns the
// ids of the leads merged away.
func (s *Server) merge(n int, at int64) []string {
	st := s.st[sLeads]
	picked := s.pickLive(st, 2*n)
	var gone []string
	var touched []int32
	for j := 0; j+1 < len(picked); j += 2 {
		src, dst := picked[j], picked[j+1]
		for sid, ids := range s.children([]int32{src}) {
			for _, i := range ids {
				r := &s.st[sid].recs[i]
				prev := r.updated
				if s.moved == nil {
					s.moved = map[uint64]int64{}
				}
				s.moved[uint64(sid)<<32|uint64(i)] = int64(dst)
				if r.ver < math.MaxUint16 {
					r.ver++
				}
				r.updated = at
				r.flags |= flagTouched
				s.emit(sid, uint32(i), r, actUpdated, at, prev)
			}
			s.reindex(s.st[sid], ids, fID, fCreated, fDate)
		}
		d := &st.recs[dst]
		prev := d.updated
		if d.ver < math.MaxUint16 {
			d.ver++
		}
		d.updated = at
		s.emit(sLeads, uint32(dst), d, actUpdated, at, prev)
		s.emit(sLeads, uint32(dst), d, actMerged, at, prev)
		s.evRefs[len(s.evRefs)-1].msrc = uint32(src)
		// The source lead's contacts and opportunities leave the listings with it.
		s.deleteSubsOf([]int32{src}, at)
		sr := &st.recs[src]
		sr.flags |= flagDeleted
		st.live--
		if s.cfg.MergeEmitsDeleted {
			s.emit(sLeads, uint32(src), sr, actDeleted, at, sr.updated)
		}
		gone = append(gone, s.recID(sLeads, uint32(src), 0))
		touched = append(touched, src, dst)
	}
	for _, i := range picked[len(touched):] { // an odd one out stays as it was
		st.recs[i].flags &^= flagTouched
	}
	s.reindex(st, touched)
	s.flushPendingEvents()
	s.clearCache()
	return gone
}

// emit queues an event for a mutation; flushPendingEvents indexes them.
func (s *Server) emit(sid int, gen uint32, r *rec, action int, at, prev int64) {
	ev := s.st[sEvents]
	g := int32(len(ev.recs))
	ev.recs = append(ev.recs, rec{created: at, updated: at, flags: flagTouched})
	ev.live++
	s.evRefs = append(s.evRefs, evRef{tupd: at, tprev: prev, tgen: gen, tver: r.ver,
		tstream: uint8(sid), action: uint8(action), tkind: r.kind})
	s.pendingEv = append(s.pendingEv, g)
}

func (s *Server) flushPendingEvents() {
	if len(s.pendingEv) > 0 {
		s.reindex(s.st[sEvents], s.pendingEv)
		s.pendingEv = s.pendingEv[:0]
	}
}

// ---- listing ----

// query is a normalised listing request (everything but paging).
type query struct {
	sid       int
	created   span
	updated   span
	kinds     uint64 // bitmask of allowed kinds; 0 = any
	leadGen   int64  // -1 = any, -2 = matches nothing
	complete  int8   // tasks: -1 any, 0/1
	order     int    // fID, fCreated, fUpdated, fDate, or orderNames*
	desc      bool
	cacheable bool
}

const (
	orderLastFirst = 100 + iota // users: last_name,first_name
	orderFirstLast
)

func newQuery(sid int) query {
	return query{sid: sid, created: anyTime, updated: anyTime, leadGen: -1, complete: -1, order: fID}
}

// result is an ordered list of record indexes (possibly a view into an
// index, read backwards when desc).
type result struct {
	ids  []int32
	desc bool
	view bool // ids is a sub-slice of an index: cheap to recompute, not cached
}

func (r result) len() int { return len(r.ids) }
func (r result) at(j int) int32 {
	if r.desc {
		return r.ids[len(r.ids)-1-j]
	}
	return r.ids[j]
}

func (s *Server) matches(q *query, st *stream, i int32) bool {
	r := &st.recs[i]
	if !q.created.has(r.created) || !q.updated.has(r.updated) {
		return false
	}
	if q.kinds != 0 && q.kinds&(1<<r.kind) == 0 {
		return false
	}
	if q.leadGen == -2 {
		return false
	}
	if q.leadGen >= 0 && s.leadOf(q.sid, uint32(i)) != q.leadGen {
		return false
	}
	if q.complete >= 0 {
		c := s.taskComplete(uint32(i), r.ver)
		if c != (q.complete == 1) {
			return false
		}
	}
	return true
}

// run evaluates q against the current data. Caller holds s.mu (read).
func (s *Server) run(q query) result {
	key := ""
	if q.cacheable {
		key = fmt.Sprintf("%+v", q)
		if r, ok := s.cacheGet(key); ok {
			return r
		}
	}
	r := s.eval(q)
	if q.cacheable && !r.view {
		s.cachePut(key, r)
	}
	return r
}

func (s *Server) eval(q query) result {
	st := s.st[q.sid]
	if q.order >= orderLastFirst {
		var ids []int32
		for _, i := range st.idx[0].ids {
			if s.matches(&q, st, i) {
				ids = append(ids, i)
			}
		}
		s.sortUsers(ids, q.order)
		return result{ids: ids, desc: q.desc}
	}
	oix := st.index(q.order)
	// Candidate 1: walk the order index (restricted by its own range).
	base := oix.ids
	switch q.order {
	case fCreated:
		base = s.subrange(st, oix, q.created)
	case fUpdated:
		base = s.subrange(st, oix, q.updated)
	}
	// Candidate 2: a narrower range on another indexed field, then sort.
	var alt []int32
	for _, c := range []struct {
		f  int
		sp span
	}{{fCreated, q.created}, {fUpdated, q.updated}} {
		if c.f == q.order || c.sp.all() {
			continue
		}
		if ix := st.index(c.f); ix != nil {
			sub := s.subrange(st, ix, c.sp)
			if alt == nil || len(sub) < len(alt) {
				alt = sub
			}
		}
	}
	if alt != nil && len(alt)*8 < len(base) {
		var ids []int32
		for _, i := range alt {
			if s.matches(&q, st, i) {
				ids = append(ids, i)
			}
		}
		s.sortIDs(st, q.order, ids)
		return result{ids: ids, desc: q.desc}
	}
	if s.onlyRange(q) {
		return result{ids: base, desc: q.desc, view: true}
	}
	var ids []int32
	for _, i := range base {
		if s.matches(&q, st, i) {
			ids = append(ids, i)
		}
	}
	return result{ids: ids, desc: q.desc}
}

// onlyRange: the order index's sub-range is already the exact answer.
func (s *Server) onlyRange(q query) bool {
	if q.kinds != 0 || q.leadGen != -1 || q.complete >= 0 {
		return false
	}
	switch q.order {
	case fCreated:
		return q.updated.all()
	case fUpdated:
		return q.created.all()
	}
	return q.created.all() && q.updated.all()
}

// ---- result cache ----
// Offset paging re-runs the same query for every page; caching the ordered
// match list per (query, data version) keeps each page O(limit). Mutations
// clear the cache so later pages see the new data (and shift, as real
// offset pages do).

// The cache is bounded by entries and by total ids held (16 MB), so it
// never dominates the resident size of a large dataset.
const (
	cacheMax    = 16
	cacheMaxIDs = 4 << 20
)

type cacheEntry struct{ r result }

func (s *Server) cacheGet(key string) (result, bool) {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	e, ok := s.cache[key]
	return e.r, ok
}

func (s *Server) cachePut(key string, r result) {
	if r.len() > cacheMaxIDs {
		return
	}
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	if _, ok := s.cache[key]; ok {
		return
	}
	for len(s.cacheKeys) > 0 && (len(s.cacheKeys) >= cacheMax || s.cacheIDs+r.len() > cacheMaxIDs) {
		old := s.cacheKeys[0]
		s.cacheIDs -= s.cache[old].r.len()
		delete(s.cache, old)
		s.cacheKeys = s.cacheKeys[1:]
	}
	s.cacheKeys = append(s.cacheKeys, key)
	s.cache[key] = cacheEntry{r}
	s.cacheIDs += r.len()
}

func (s *Server) clearCache() {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	clear(s.cache)
	s.cacheKeys = nil
	s.cacheIDs = 0
}
