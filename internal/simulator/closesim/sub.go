package closesim

import (
	"cmp"
	"math"
	"slices"
	"strings"
)

// Contacts and opportunities are not stored: they are the objects each lead embeds, served
// again by /contact/ and /opportunity/, so the listings and the leads always agree. A
// sub-object is named by its lead's generator index and its place j in the lead (gen =
// lead*4 + j, as the id keys are). A change to one of them moves its lead's date_updated (the
// API does that without a lead event) and every embedded object of the lead takes that
// date_updated: the lead's version is all that is kept.

// Virtual stream ids, beyond the stored streams: they appear only in events.
const (
	sContacts = numStreams + iota
	sOpps
)

// subName maps the table names to the virtual streams.
var subName = map[string]int{"contacts": sContacts, "opportunities": sOpps}

func subGen(l int64, j int) uint32 { return uint32(l)*4 + uint32(j) }

func splitSub(gen uint32) (l int64, j int) { return int64(gen / 4), int(gen % 4) }

// nOpps is the number of opportunities lead l was generated with.
func (s *Server) nOpps(l int64) int {
	or := s.rngFor(hOpps, uint64(l))
	if v := or.Intn(10); v >= 6 {
		return 1 + v/9
	}
	return 0
}

func (s *Server) nSubs(sid int, l int64) int {
	if sid == sContacts {
		return s.nContacts(l)
	}
	return s.nOpps(l)
}

// subRng is the generator of one sub-object's fields (its first draws place its times).
func (s *Server) subRng(sid int, l int64, j int) rng {
	if sid == sContacts {
		return s.rngFor(hContactName+1, uint64(l)*4+uint64(j))
	}
	return s.rngFor(hOpps+1<<20, uint64(l)*4+uint64(j))
}

// subTimesOf places a sub-object in time: between its lead's creation and last update as
// generated; once the lead has changed (ver > 0), at the lead's date_updated.
func subTimesOf(r *rng, ver uint16, created, updated int64) (c, u int64) {
	c, u = subTimes(r, created, updated)
	if ver > 0 {
		u = updated
	}
	return c, u
}

// subKey is a sub-object's id key and prefix.
func (s *Server) subKey(sid int, gen uint32) (string, uint64) {
	l, j := splitSub(gen)
	if sid == sContacts {
		return "cont_", s.contactKey(l, j)
	}
	return "oppo_", s.h(hOppKey, uint64(l)*4+uint64(j))
}

func (s *Server) subGone(sid int, gen uint32) bool {
	return s.gone[uint64(sid)<<32|uint64(gen)]
}

// writeSub writes one sub-object as its listing serves it.
func (s *Server) writeSub(e *enc, sid int, gen uint32, ver uint16, created, updated int64) {
	l, j := splitSub(gen)
	key := s.idkey(sLeads, uint32(l))
	if sid == sContacts {
		s.writeContact(e, l, j, key, ver, created, updated)
		return
	}
	s.writeOpportunity(e, l, j, key, ver, created, updated)
}

// subEntry is one live sub-object with its times.
type subEntry struct {
	gen              uint32
	created, updated int64
}

// subs lists the live sub-objects of sid in the listing's default order (their leads' id
// order, then their place in the lead). Cached per data version. Caller holds s.mu.
func (s *Server) subs(sid int) []subEntry {
	st := s.st[sLeads]
	ver := [2]uint64{st.version, uint64(len(s.gone))}
	s.cacheMu.Lock()
	c := s.subCache[sid-sContacts]
	s.cacheMu.Unlock()
	if c.ok && c.ver == ver {
		return c.list
	}
	var list []subEntry
	for _, i := range st.idx[0].ids {
		s.liveSubs(sid, i, func(g uint32, created, updated int64) { list = append(list, subEntry{g, created, updated}) })
	}
	s.cacheMu.Lock()
	s.subCache[sid-sContacts] = subList{ok: true, ver: ver, list: list}
	s.cacheMu.Unlock()
	return list
}

type subList struct {
	ok   bool
	ver  [2]uint64 // the leads' version and the number of deleted sub-objects
	list []subEntry
}

// writeSubPage writes a page of sub-objects.
func (s *Server) writeSubPage(c *call, sid int, list []subEntry, skip, limit int, total bool) {
	e := c.e
	sel := e.sel
	e.sel = nil
	e.obj()
	e.key("has_more")
	e.boolean(skip+limit < len(list))
	if total {
		e.key("total_results")
		e.int(int64(len(list)))
	}
	e.key("data")
	e.arr()
	e.sel = sel
	for _, x := range list[min(skip, len(list)):min(skip+limit, len(list))] {
		l, _ := splitSub(x.gen)
		s.writeSub(e, sid, x.gen, s.st[sLeads].recs[l].ver, s.st[sLeads].recs[l].created, s.st[sLeads].recs[l].updated)
	}
	e.sel = nil
	e.endArr()
	e.end()
}

// byLead keeps the entries of the lead named by the lead_id parameter, if any.
func (s *Server) byLead(c *call, list []subEntry) []subEntry {
	v := c.q.Get("lead_id")
	if v == "" {
		return list
	}
	g, ok := s.leadGenOf(v)
	if !ok {
		return nil
	}
	return slices.DeleteFunc(slices.Clone(list), func(x subEntry) bool { l, _ := splitSub(x.gen); return l != g })
}

// hContacts serves /contact/: offset paging (at most 100 a page), filtered only by lead_id —
// the API has no date filter on contacts.
func (s *Server) hContacts(c *call) error {
	if len(c.seg) == 2 {
		return s.getSub(c, sContacts, c.seg[1])
	}
	skip, limit, err := s.paging(c.q, 100, true)
	if err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.writeSubPage(c, sContacts, s.byLead(c, s.subs(sContacts)), skip, limit, false)
	return nil
}

// hOpportunities serves /opportunity/: offset paging (at most 250 a page) with
// total_results, date_created and date_updated filters, lead_id, and _order_by on either date.
func (s *Server) hOpportunities(c *call) error {
	if len(c.seg) == 2 {
		return s.getSub(c, sOpps, c.seg[1])
	}
	skip, limit, err := s.paging(c.q, 250, true)
	if err != nil {
		return err
	}
	created, err := rangeParams(c.q, "date_created")
	if err != nil {
		return err
	}
	updated, err := rangeParams(c.q, "date_updated")
	if err != nil {
		return err
	}
	ob := c.q.Get("_order_by")
	var key func(subEntry) int64
	switch strings.TrimPrefix(ob, "-") {
	case "":
	case "date_created":
		key = func(x subEntry) int64 { return x.created }
	case "date_updated":
		key = func(x subEntry) int64 { return x.updated }
	default:
		return badRequest("Invalid _order_by: %q.", ob)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	list := slices.DeleteFunc(slices.Clone(s.byLead(c, s.subs(sOpps))), func(x subEntry) bool {
		return !created.has(x.created) || !updated.has(x.updated)
	})
	if key != nil {
		slices.SortStableFunc(list, func(a, b subEntry) int { return cmp.Compare(key(a), key(b)) })
		if ob[0] == '-' {
			slices.Reverse(list)
		}
	}
	s.writeSubPage(c, sOpps, list, skip, limit, true)
	return nil
}

func (s *Server) getSub(c *call, sid int, id string) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, x := range s.subs(sid) {
		if p, k := s.subKey(sid, x.gen); strings.HasPrefix(id, p) && s.recIDOf(p, k) == id {
			s.writeSubPage(c, sid, []subEntry{x}, 0, 1, false)
			return nil
		}
	}
	return &apiError{404, "Object not found: " + id}
}

func (s *Server) recIDOf(prefix string, key uint64) string { return makeID(prefix, key, 43) }

// ---- mutations ----

// mutateSubs updates or deletes n random live sub-objects at at: each change moves its lead
// (version and date_updated, no lead event) and emits the sub-object's own event. Adding is
// not modelled (a lead's embedded objects are drawn from its generator index).
func (s *Server) mutateSubs(sid int, op string, n int, at int64) []string {
	if op == "add" {
		return nil
	}
	list := s.subs(sid)
	if n > len(list) {
		n = len(list)
	}
	perm := make([]int, len(list))
	for j := range perm {
		perm[j] = j
	}
	for j := len(perm) - 1; j > 0; j-- {
		k := s.mrng.Intn(j + 1)
		perm[j], perm[k] = perm[k], perm[j]
	}
	st := s.st[sLeads]
	var ids []string
	var touched []int32
	for _, p := range perm[:n] {
		x := list[p]
		l, _ := splitSub(x.gen)
		r := &st.recs[l]
		prev := x.updated
		if r.ver < math.MaxUint16 {
			r.ver++
		}
		r.updated = at
		if r.flags&flagTouched == 0 {
			r.flags |= flagTouched
			touched = append(touched, int32(l))
		}
		action := actUpdated
		if op == "delete" {
			action = actDeleted
			s.markGone(sid, x.gen)
		}
		s.emit(sid, x.gen, r, action, at, prev)
		pfx, k := s.subKey(sid, x.gen)
		ids = append(ids, s.recIDOf(pfx, k))
	}
	s.reindex(st, touched, fID, fCreated, fDate)
	s.flushPendingEvents()
	s.clearCache()
	return ids
}

func (s *Server) markGone(sid int, gen uint32) {
	if s.gone == nil {
		s.gone = map[uint64]bool{}
	}
	s.gone[uint64(sid)<<32|uint64(gen)] = true
}

// liveSubs calls fn with each live object of kind sid that lead i embeds: its generator
// index and its creation and update times. Caller holds s.mu.
func (s *Server) liveSubs(sid int, i int32, fn func(g uint32, created, updated int64)) {
	r := &s.st[sLeads].recs[i]
	for j := range s.nSubs(sid, int64(i)) {
		g := subGen(int64(i), j)
		if s.subGone(sid, g) {
			continue
		}
		sr := s.subRng(sid, int64(i), j)
		c, u := subTimesOf(&sr, r.ver, r.created, r.updated)
		fn(g, c, u)
	}
}

// deleteSubsOf deletes the contacts and opportunities of leads being deleted (or merged
// away), each with its own event. Caller holds s.mu.
func (s *Server) deleteSubsOf(leads []int32, at int64) {
	st := s.st[sLeads]
	for _, sid := range []int{sContacts, sOpps} {
		for _, l := range leads {
			r := &st.recs[l]
			s.liveSubs(sid, l, func(g uint32, _, updated int64) {
				s.markGone(sid, g)
				s.emit(sid, g, r, actDeleted, at, updated)
			})
		}
	}
}
