package coppersim

import (
	"cmp"
	"slices"
	"sort"
)

// Sorting. date_modified and date_created use indexes maintained on every
// mutation (they are the hot path of incremental syncs); every other sort_by
// builds its order lazily from the generated field values and keeps it until
// the next mutation of the table. Ties are broken by id, ascending for asc and
// descending for desc (a desc order is the asc order reversed), so paging is
// stable. Nulls sort first ascending; strings compare by bytes.

type sortKey struct {
	null bool
	i    int64
	s    string
}

func strKey(v nstr) sortKey  { return sortKey{null: !v.ok, s: v.s} }
func intKey(v int64) sortKey { return sortKey{i: v} }
func idKey(v int64) sortKey  { return sortKey{null: v == 0, i: v} } // 0 = null
func firstOf(l []labeled) sortKey {
	if len(l) == 0 {
		return sortKey{null: true}
	}
	return sortKey{s: l[0].v}
}

func cmpKey(a, b sortKey) int {
	if a.null != b.null {
		if a.null {
			return -1
		}
		return 1
	}
	if c := cmp.Compare(a.i, b.i); c != 0 {
		return c
	}
	return cmp.Compare(a.s, b.s)
}

type indexKind uint8

const (
	idxLazy indexKind = iota
	idxModified
	idxCreated
)

// sortField is one allowed sort_by value.
type sortField struct {
	index indexKind
	key   func(s *Server, slot int32, rc *rec) sortKey // for idxLazy
}

func addrKey(a addr, f func(*place) string) sortKey {
	if !a.ok {
		return sortKey{null: true}
	}
	return strKey(orNull(f(a.p)))
}

var (
	cityOf    = func(p *place) string { return p.city }
	stateOf   = func(p *place) string { return p.state }
	countryOf = func(p *place) string { return p.country }
	zipOf     = func(p *place) string { return p.postal }
)

func lazy(f func(s *Server, slot int32, rc *rec) sortKey) sortField { return sortField{idxLazy, f} }

var (
	byModified = sortField{index: idxModified}
	byCreated  = sortField{index: idxCreated}
)

func pf(f func(p *personCore) sortKey) sortField {
	return lazy(func(s *Server, slot int32, rc *rec) sortKey { p := s.person(slot, rc); return f(&p) })
}
func cf(f func(s *Server, c *companyCore) sortKey) sortField {
	return lazy(func(s *Server, slot int32, rc *rec) sortKey { c := s.company(slot, rc); return f(s, &c) })
}
func lf(f func(l *leadCore, rc *rec) sortKey) sortField {
	return lazy(func(s *Server, slot int32, rc *rec) sortKey { l := s.lead(slot, rc); return f(&l, rc) })
}
func of(f func(o *oppCore) sortKey) sortField {
	return lazy(func(s *Server, slot int32, rc *rec) sortKey { o := s.opportunity(slot, rc); return f(&o) })
}
func prf(f func(p *projectCore) sortKey) sortField {
	return lazy(func(s *Server, slot int32, rc *rec) sortKey { p := s.project(slot, rc); return f(&p) })
}
func tf(f func(t *taskCore) sortKey) sortField {
	return lazy(func(s *Server, slot int32, rc *rec) sortKey { t := s.task(slot, rc); return f(&t) })
}

func relKey(s *Server, r related) sortKey {
	if r.slot < 0 {
		return sortKey{null: true}
	}
	return intKey(s.idOf(r.e, r.slot))
}

func contactKey(s *Server, c *companyCore, part int) sortKey {
	if c.primaryContact < 0 {
		return sortKey{null: true}
	}
	first, last := s.personNames(c.primaryContact)
	switch part {
	case 1:
		return strKey(orNull(first))
	case 2:
		return strKey(orNull(last))
	}
	return strKey(orNull(joinName(some(first), orNull(last))))
}

// idOrder is the implicit order of users (no sort_by) and of the id filter.
var idOrder = lazy(func(s *Server, slot int32, rc *rec) sortKey { return sortKey{} })

// sortFields lists the documented sort_by values per entity (2019 docs).
// Values without a matching visible field map to the closest one:
// companies last_interaction -> date_modified, leads inactive_days -> time
// since date_last_contacted, opportunities deal_last_stage -> date_stage_changed.
var sortFields = [numEntities]map[string]sortField{
	entPeople: {
		"name":          pf(func(p *personCore) sortKey { return sortKey{s: p.name} }),
		"first_name":    pf(func(p *personCore) sortKey { return strKey(p.first) }),
		"last_name":     pf(func(p *personCore) sortKey { return strKey(p.last) }),
		"title":         pf(func(p *personCore) sortKey { return strKey(p.title) }),
		"email":         pf(func(p *personCore) sortKey { return firstOf(p.emails) }),
		"phone":         pf(func(p *personCore) sortKey { return firstOf(p.phones) }),
		"date_modified": byModified,
		"date_created":  byCreated,
		"city":          pf(func(p *personCore) sortKey { return addrKey(p.addr, cityOf) }),
		"state":         pf(func(p *personCore) sortKey { return addrKey(p.addr, stateOf) }),
		"country":       pf(func(p *personCore) sortKey { return addrKey(p.addr, countryOf) }),
		"zip":           pf(func(p *personCore) sortKey { return addrKey(p.addr, zipOf) }),
	},
	entCompanies: {
		"name":               cf(func(_ *Server, c *companyCore) sortKey { return sortKey{s: c.name} }),
		"phone":              cf(func(_ *Server, c *companyCore) sortKey { return firstOf(c.phones) }),
		"contact":            cf(func(s *Server, c *companyCore) sortKey { return contactKey(s, c, 0) }),
		"contact_first_name": cf(func(s *Server, c *companyCore) sortKey { return contactKey(s, c, 1) }),
		"contact_last_name":  cf(func(s *Server, c *companyCore) sortKey { return contactKey(s, c, 2) }),
		"date_modified":      byModified,
		"date_created":       byCreated,
		"email_domain":       cf(func(_ *Server, c *companyCore) sortKey { return strKey(orNull(c.domain)) }),
		"city":               cf(func(_ *Server, c *companyCore) sortKey { return addrKey(c.addr, cityOf) }),
		"state":              cf(func(_ *Server, c *companyCore) sortKey { return addrKey(c.addr, stateOf) }),
		"country":            cf(func(_ *Server, c *companyCore) sortKey { return addrKey(c.addr, countryOf) }),
		"zip":                cf(func(_ *Server, c *companyCore) sortKey { return addrKey(c.addr, zipOf) }),
		"assignee":           cf(func(_ *Server, c *companyCore) sortKey { return idKey(c.assignee) }),
		"contact_group":      cf(func(_ *Server, c *companyCore) sortKey { return idKey(c.contactType) }),
		"last_interaction":   byModified,
		"interaction_count":  cf(func(_ *Server, c *companyCore) sortKey { return intKey(c.interactions) }),
		"primary_website":    cf(func(_ *Server, c *companyCore) sortKey { return firstOf(c.websites) }),
	},
	entLeads: {
		"name":         lf(func(l *leadCore, _ *rec) sortKey { return sortKey{s: l.name} }),
		"first_name":   lf(func(l *leadCore, _ *rec) sortKey { return strKey(l.first) }),
		"last_name":    lf(func(l *leadCore, _ *rec) sortKey { return strKey(l.last) }),
		"company_name": lf(func(l *leadCore, _ *rec) sortKey { return strKey(l.companyName) }),
		"title":        lf(func(l *leadCore, _ *rec) sortKey { return strKey(l.title) }),
		"value":        lf(func(l *leadCore, _ *rec) sortKey { return sortKey{null: !l.unit.ok, i: l.value} }),
		"email": lf(func(l *leadCore, _ *rec) sortKey {
			if l.email == nil {
				return sortKey{null: true}
			}
			return sortKey{s: l.email.v}
		}),
		"phone":         lf(func(l *leadCore, _ *rec) sortKey { return firstOf(l.phones) }),
		"date_modified": byModified,
		"date_created":  byCreated,
		"city":          lf(func(l *leadCore, _ *rec) sortKey { return addrKey(l.addr, cityOf) }),
		"state":         lf(func(l *leadCore, _ *rec) sortKey { return addrKey(l.addr, stateOf) }),
		"country":       lf(func(l *leadCore, _ *rec) sortKey { return addrKey(l.addr, countryOf) }),
		"zip":           lf(func(l *leadCore, _ *rec) sortKey { return addrKey(l.addr, zipOf) }),
		"inactive_days": lf(func(l *leadCore, rc *rec) sortKey {
			last := l.lastContacted
			if last == 0 {
				last = rc.created
			}
			return intKey(-last) // most recently contacted = fewest inactive days
		}),
	},
	entOpportunities: {
		"name":               of(func(o *oppCore) sortKey { return sortKey{s: o.name} }),
		"account":            of(func(o *oppCore) sortKey { return strKey(o.companyName) }),
		"company_name":       of(func(o *oppCore) sortKey { return strKey(o.companyName) }),
		"value":              of(func(o *oppCore) sortKey { return intKey(o.value) }),
		"assignee":           of(func(o *oppCore) sortKey { return idKey(o.assignee) }),
		"customer_source_id": of(func(o *oppCore) sortKey { return idKey(o.customerSource) }),
		"date_modified":      byModified,
		"date_created":       byCreated,
		"contact":            of(func(o *oppCore) sortKey { return idKey(o.primaryContact) }),
		"stage":              of(func(o *oppCore) sortKey { return intKey(o.stage.ID) }),
		"status":             of(func(o *oppCore) sortKey { return sortKey{s: o.status} }),
		"close_date":         of(func(o *oppCore) sortKey { return idKey(o.closeDate) }),
		"source":             of(func(o *oppCore) sortKey { return idKey(o.customerSource) }),
		"priority":           of(func(o *oppCore) sortKey { return sortKey{s: o.priority} }),
		"last_interaction":   of(func(o *oppCore) sortKey { return idKey(o.lastContacted) }),
		"interaction_count":  of(func(o *oppCore) sortKey { return intKey(o.interactions) }),
		"deal_last_stage":    of(func(o *oppCore) sortKey { return intKey(o.stageChanged) }),
		"win_probability":    of(func(o *oppCore) sortKey { return intKey(o.winProb) }),
	},
	entProjects: {
		"name":          prf(func(p *projectCore) sortKey { return sortKey{s: p.name} }),
		"assigned_to":   prf(func(p *projectCore) sortKey { return idKey(p.assignee) }),
		"related_to":    lazy(func(s *Server, slot int32, rc *rec) sortKey { return relKey(s, s.project(slot, rc).rel) }),
		"status":        prf(func(p *projectCore) sortKey { return sortKey{s: p.status} }),
		"date_modified": byModified,
		"date_created":  byCreated,
	},
	entTasks: {
		"name":           tf(func(t *taskCore) sortKey { return sortKey{s: t.name} }),
		"assigned_to":    tf(func(t *taskCore) sortKey { return idKey(t.assignee) }),
		"related_to":     lazy(func(s *Server, slot int32, rc *rec) sortKey { return relKey(s, s.task(slot, rc).rel) }),
		"status":         tf(func(t *taskCore) sortKey { return sortKey{s: t.status} }),
		"priority":       tf(func(t *taskCore) sortKey { return sortKey{s: t.priority} }),
		"due_date":       tf(func(t *taskCore) sortKey { return idKey(t.due) }),
		"reminder_date":  tf(func(t *taskCore) sortKey { return idKey(t.reminder) }),
		"completed_date": tf(func(t *taskCore) sortKey { return idKey(t.completed) }),
		"date_created":   byCreated,
		"date_modified":  byModified,
	},
}

// defaultSort per entity (bold in the reference's table).
var defaultSort = [numEntities]string{
	entPeople: "first_name", entCompanies: "date_modified", entLeads: "name",
	entOpportunities: "name", entProjects: "name", entTasks: "due_date",
}

// order returns the ascending order of live slots for a sort field. The
// returned slice must not be modified; it stays valid while the caller holds
// the server read lock.
func (s *Server) order(t *table, name string, f sortField) []int32 {
	switch f.index {
	case idxModified:
		return t.byMod
	case idxCreated:
		return t.byCreated
	}
	t.cacheMu.Lock()
	defer t.cacheMu.Unlock()
	t.checkCacheLocked()
	if idx, ok := t.sorted[name]; ok {
		return idx
	}
	type kv struct {
		k    sortKey
		slot int32
	}
	kvs := make([]kv, 0, t.live)
	for i := range t.recs {
		if t.recs[i].flags&flDeleted == 0 {
			kvs = append(kvs, kv{f.key(s, int32(i), &t.recs[i]), int32(i)})
		}
	}
	slices.SortFunc(kvs, func(a, b kv) int {
		if c := cmpKey(a.k, b.k); c != 0 {
			return c
		}
		return cmp.Compare(a.slot, b.slot)
	})
	idx := make([]int32, len(kvs))
	for i := range kvs {
		idx[i] = kvs[i].slot
	}
	if t.sorted == nil {
		t.sorted = map[string][]int32{}
	}
	t.sorted[name] = idx
	return idx
}

// checkCacheLocked drops caches built before the last mutation. Lazy sort
// orders survive: mutations maintain them (sortedRemove/sortedInsert).
func (t *table) checkCacheLocked() {
	if t.cacheGen != t.gen {
		t.cacheGen = t.gen
		t.results = nil
		t.tagCounts = nil
	}
}

func (t *table) lazyKey(name string) func(*Server, int32, *rec) sortKey {
	if name == "id" {
		return idOrder.key
	}
	return sortFields[t.e][name].key
}

// sortedRemove takes a slot out of every lazily built order, before its
// record changes. Callers hold the server write lock.
func (s *Server) sortedRemove(t *table, slot int32) {
	t.cacheMu.Lock()
	defer t.cacheMu.Unlock()
	for name, idx := range t.sorted {
		if i := slices.Index(idx, slot); i >= 0 {
			t.sorted[name] = slices.Delete(idx, i, i+1)
		}
	}
}

// sortedInsert puts a (changed or new) slot back into every lazy order:
// a binary search costing ~17 key computations, instead of a full rebuild.
func (s *Server) sortedInsert(t *table, slot int32) {
	t.cacheMu.Lock()
	defer t.cacheMu.Unlock()
	for name, idx := range t.sorted {
		key := t.lazyKey(name)
		k := key(s, slot, &t.recs[slot])
		pos := sort.Search(len(idx), func(i int) bool {
			c := cmpKey(key(s, idx[i], &t.recs[idx[i]]), k)
			return c > 0 || (c == 0 && idx[i] >= slot)
		})
		t.sorted[name] = slices.Insert(idx, pos, slot)
	}
}
