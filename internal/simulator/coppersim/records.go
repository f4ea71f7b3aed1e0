package coppersim

import (
	"math/bits"
	"strconv"
	"time"

	"github.com/crmsync/crmsync/internal/simulator/jsonenc"
)

// Record generation. Each entity has a core struct computed from its rng
// streams; the JSON writer and the sort-key extractor both read the core, so
// what is sorted on is exactly what is served.

type labeled struct {
	v   string
	cat nstr
}

type addr struct {
	ok bool // false: the whole address is null
	p  *place
}

const day = 86400

// Copper's value shapes, written with the shared JSON appenders (jsonenc).

// nstr is a nullable string.
type nstr struct {
	s  string
	ok bool
}

func some(s string) nstr { return nstr{s, true} }

// orNull turns "" into null (the pools use "" for "no value").
func orNull(s string) nstr { return nstr{s, s != ""} }

func appendNStr(b []byte, v nstr) []byte { return jsonenc.AppendStringOrNull(b, v.s, v.ok) }

// appendID writes an id, with 0 meaning null (no Copper id is 0).
func appendID(b []byte, id int64) []byte { return jsonenc.AppendIntOrNull(b, id, id != 0) }

// appendCloseDate writes an opportunity close_date: "M/D/YYYY", no padding.
func appendCloseDate(b []byte, ts int64) []byte {
	t := time.Unix(ts, 0).UTC()
	b = append(b, '"')
	b = strconv.AppendInt(b, int64(t.Month()), 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(t.Day()), 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(t.Year()), 10)
	return append(b, '"')
}

func digits4(b []byte, n int) []byte {
	return append(b, byte('0'+n/1000%10), byte('0'+n/100%10), byte('0'+n/10%10), byte('0'+n%10))
}

func itoa(n int32) string { return strconv.FormatInt(int64(n), 10) }

// refSlot picks a slot of entity e among those that existed at build time,
// or -1 when there are none. References never change, even after deletes:
// like in Copper, a dangling reference is possible.
func (s *Server) refSlot(e entity, r *rng) int32 {
	n := s.tabs[e].base
	if n == 0 {
		return -1
	}
	return int32(r.intn(int(n)))
}

func (s *Server) refID(e entity, r *rng) int64 {
	slot := s.refSlot(e, r)
	if slot < 0 {
		return 0
	}
	return s.idOf(e, slot)
}

// assignee: a user id or 0 (null).
func (s *Server) assignee(r *rng) int64 {
	if r.Chance(0.2) {
		return 0
	}
	return s.refID(entUsers, r)
}

func (s *Server) address(r *rng, pNull float64) addr {
	if r.Chance(pNull) {
		return addr{}
	}
	return addr{ok: true, p: &places[r.intn(len(places))]}
}

func appendAddress(b []byte, a addr) []byte {
	b = append(b, `"address":`...)
	if !a.ok {
		return append(b, "null"...)
	}
	b = append(b, `{"street":`...)
	b = appendNStr(b, orNull(a.p.street))
	b = append(b, `,"city":`...)
	b = appendNStr(b, orNull(a.p.city))
	b = append(b, `,"state":`...)
	b = appendNStr(b, orNull(a.p.state))
	b = append(b, `,"postal_code":`...)
	b = appendNStr(b, orNull(a.p.postal))
	b = append(b, `,"country":`...)
	b = appendNStr(b, orNull(a.p.country))
	return append(b, '}')
}

func appendLabeled(b []byte, key, vkey string, list []labeled) []byte {
	b = append(b, '"')
	b = append(b, key...)
	b = append(b, `":[`...)
	for i, l := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"`...)
		b = append(b, vkey...)
		b = append(b, `":`...)
		b = jsonenc.AppendString(b, l.v)
		b = append(b, `,"category":`...)
		b = appendNStr(b, l.cat)
		b = append(b, '}')
	}
	return append(b, ']')
}

func (s *Server) phones(r *rng, max int) []labeled {
	n := r.intn(max + 1)
	if n == 0 {
		return nil
	}
	out := make([]labeled, n)
	for i := range out {
		num := digits4([]byte(pick(r, phonePrefixes)), r.intn(10000))
		cat := some(pick(r, phoneCats))
		if r.Chance(0.05) {
			cat = nstr{}
		}
		out[i] = labeled{string(num), cat}
	}
	return out
}

func socials(r *rng, handle string) []labeled {
	if r.Chance(0.6) {
		return nil
	}
	sc := socialCats[r.intn(len(socialCats))]
	return []labeled{{sc.prefix + handle, some(sc.cat)}}
}

func websites(r *rng, domain string) []labeled {
	if domain == "" || r.Chance(0.5) {
		return nil
	}
	if r.Chance(0.2) { // typed without scheme, no category: seen in real data
		return []labeled{{domain, nstr{}}}
	}
	return []labeled{{"https://www." + domain, some("work")}}
}

func appendTags(b []byte, mask uint16) []byte {
	b = append(b, `"tags":[`...)
	first := true
	for mask != 0 {
		i := bits.TrailingZeros16(mask)
		mask &^= 1 << i
		if !first {
			b = append(b, ',')
		}
		first = false
		b = jsonenc.AppendString(b, tagNames[i])
	}
	return append(b, ']')
}

// tagMask draws 0-3 tags; most records have none or one.
func (s *Server) tagMask(e entity, slot int32, version uint32) uint16 {
	r := s.rngFor(e, slot, stTags, version)
	u := r.Float()
	k := 0
	switch {
	case u > 0.95:
		k = 3
	case u > 0.8:
		k = 2
	case u > 0.5:
		k = 1
	}
	var m uint16
	for i := 0; i < k; i++ {
		m |= 1 << r.intn(len(tagNames))
	}
	return m
}

// details: a pooled text, null sometimes; every update appends "(rev N)" so
// an update always changes a visible field.
func details(r *rng, pool []string, pNull float64, version uint32) nstr {
	v := nstr{}
	if !r.Chance(pNull) {
		v = some(pick(r, pool))
	}
	if version > 0 {
		rev := "(rev " + strconv.FormatUint(uint64(version), 10) + ")"
		if v.s != "" {
			rev = v.s + " " + rev
		}
		v = some(rev)
	}
	return v
}

// ---------------------------------------------------------------- people

type personCore struct {
	first, middle, last, prefix, suffix nstr
	name                                string
	addr                                addr
	companyID                           int64
	companyName                         nstr
	contactType                         int64
	emails, phones, socials, websites   []labeled
	leadFrom                            int64
	leadCreated                         int64
	assignee                            int64
	title, details                      nstr
	interactions                        int64
	lastContacted                       int64 // 0 = null
}

func joinName(parts ...nstr) string {
	out := ""
	for _, p := range parts {
		if p.ok && p.s != "" {
			if out != "" {
				out += " "
			}
			out += p.s
		}
	}
	return out
}

// companyBasics is the stable head of a company: other entities quote it.
func (s *Server) companyBasics(slot int32) (name, domain string) {
	r := s.rngFor(entCompanies, slot, stStable, 0)
	h, t := pick(&r, companyHeads), pick(&r, companyTails)
	name = h.text + " " + t.text + pick(&r, companySuffixes)
	if !r.Chance(0.1) { // a few companies have no email_domain
		domain = h.slug + "-" + t.slug + "-" + itoa(slot) + ".example"
	}
	return name, domain
}

func (s *Server) person(slot int32, rc *rec) personCore {
	var p personCore
	r := s.rngFor(entPeople, slot, stStable, 0)
	fn, ln := pick(&r, firstNames), pick(&r, lastNames)
	p.first = some(fn.text)
	if !r.Chance(0.02) {
		p.last = some(ln.text)
	}
	if r.Chance(0.1) {
		p.prefix = some(pick(&r, prefixes))
	}
	if r.Chance(0.15) {
		p.middle = some(pick(&r, middleNames))
	}
	if r.Chance(0.04) {
		p.suffix = some(pick(&r, suffixes))
	}
	p.name = joinName(p.first, p.middle, p.last)
	p.addr = s.address(&r, 0.15)
	domain := "mail.example"
	if r.Chance(0.7) {
		if cs := s.refSlot(entCompanies, &r); cs >= 0 {
			p.companyID = s.idOf(entCompanies, cs)
			name, d := s.companyBasics(cs)
			p.companyName = some(name)
			if d != "" {
				domain = d
			}
		}
	}
	p.contactType = pick(&r, contactTypes).ID
	local := fn.slug + "." + ln.slug + itoa(slot)
	switch u := r.Float(); {
	case u < 0.05:
	case u < 0.75:
		p.emails = []labeled{{local + "@" + domain, some("work")}}
	default: // emails are unique across people: the slot is part of each
		p.emails = []labeled{{local + "@" + domain, some("work")}, {fn.slug + itoa(slot) + "@mail.example", some(pick(&r, emailCats))}}
	}
	p.phones = s.phones(&r, 2)
	p.socials = socials(&r, fn.slug+"-"+ln.slug+"-"+itoa(slot))
	if domain != "mail.example" {
		p.websites = websites(&r, domain)
	}
	if r.Chance(0.08) {
		p.leadFrom = s.refID(entLeads, &r)
		if p.leadFrom != 0 {
			p.leadCreated = max(rc.created-r.int63n(90*day), s.start)
		}
	}
	v := s.rngFor(entPeople, slot, stVersion, rc.version)
	p.assignee = s.assignee(&v)
	if !v.Chance(0.15) {
		p.title = some(pick(&v, titles))
	}
	p.details = details(&v, detailsPool, 0.3, rc.version)
	p.interactions = int64(v.intn(40))
	if v.Chance(0.6) {
		p.lastContacted = rc.created + v.int63n(rc.modified-rc.created+1)
	}
	return p
}

func (s *Server) appendPerson(b []byte, slot int32, rc *rec) []byte {
	p := s.person(slot, rc)
	b = append(b, `{"id":`...)
	b = jsonenc.AppendInt(b, s.idOf(entPeople, slot))
	b = append(b, `,"name":`...)
	b = jsonenc.AppendString(b, p.name)
	b = append(b, `,"prefix":`...)
	b = appendNStr(b, p.prefix)
	b = append(b, `,"first_name":`...)
	b = appendNStr(b, p.first)
	b = append(b, `,"middle_name":`...)
	b = appendNStr(b, p.middle)
	b = append(b, `,"last_name":`...)
	b = appendNStr(b, p.last)
	b = append(b, `,"suffix":`...)
	b = appendNStr(b, p.suffix)
	b = append(b, ',')
	b = appendAddress(b, p.addr)
	b = append(b, `,"assignee_id":`...)
	b = appendID(b, p.assignee)
	b = append(b, `,"company_id":`...)
	b = appendID(b, p.companyID)
	b = append(b, `,"company_name":`...)
	b = appendNStr(b, p.companyName)
	b = append(b, `,"contact_type_id":`...)
	b = appendID(b, p.contactType)
	b = append(b, `,"details":`...)
	b = appendNStr(b, p.details)
	b = append(b, ',')
	b = appendLabeled(b, "emails", "email", p.emails)
	b = append(b, ',')
	b = appendLabeled(b, "phone_numbers", "number", p.phones)
	b = append(b, ',')
	b = appendLabeled(b, "socials", "url", p.socials)
	b = append(b, ',')
	b = appendTags(b, s.tagMask(entPeople, slot, rc.version))
	b = append(b, `,"title":`...)
	b = appendNStr(b, p.title)
	b = append(b, ',')
	b = appendLabeled(b, "websites", "url", p.websites)
	b = append(b, ',')
	b = s.appendCustomFields(b, entPeople, slot, rc)
	b = append(b, `,"date_created":`...)
	b = jsonenc.AppendInt(b, rc.created)
	b = append(b, `,"date_modified":`...)
	b = jsonenc.AppendInt(b, rc.modified)
	b = append(b, `,"date_last_contacted":`...)
	b = appendID(b, p.lastContacted)
	b = append(b, `,"interaction_count":`...)
	b = jsonenc.AppendInt(b, p.interactions)
	b = append(b, `,"leads_converted_from":[`...)
	if p.leadFrom != 0 {
		b = jsonenc.AppendInt(b, p.leadFrom)
	}
	b = append(b, `],"date_lead_created":`...)
	b = appendID(b, p.leadCreated)
	return append(b, '}')
}

// ---------------------------------------------------------------- companies

type companyCore struct {
	name, domain      string
	addr              addr
	contactType       int64
	phones            []labeled
	primaryContact    int32 // person slot or -1
	socials, websites []labeled
	assignee          int64
	details           nstr
	interactions      int64
}

func (s *Server) company(slot int32, rc *rec) companyCore {
	var c companyCore
	c.name, c.domain = s.companyBasics(slot)
	r := s.rngFor(entCompanies, slot, stStable2, 0) // companyBasics owns stStable
	c.addr = s.address(&r, 0.1)
	c.contactType = pick(&r, contactTypes).ID
	c.phones = s.phones(&r, 2)
	c.primaryContact = -1
	if r.Chance(0.7) {
		c.primaryContact = s.refSlot(entPeople, &r)
	}
	slug := c.domain
	if slug == "" {
		slug = "company-" + itoa(slot)
	}
	c.socials = socials(&r, slug)
	c.websites = websites(&r, c.domain)
	v := s.rngFor(entCompanies, slot, stVersion, rc.version)
	c.assignee = s.assignee(&v)
	c.details = details(&v, detailsPool, 0.3, rc.version)
	c.interactions = int64(v.intn(60))
	return c
}

func (s *Server) appendCompany(b []byte, slot int32, rc *rec) []byte {
	c := s.company(slot, rc)
	b = append(b, `{"id":`...)
	b = jsonenc.AppendInt(b, s.idOf(entCompanies, slot))
	b = append(b, `,"name":`...)
	b = jsonenc.AppendString(b, c.name)
	b = append(b, ',')
	b = appendAddress(b, c.addr)
	b = append(b, `,"assignee_id":`...)
	b = appendID(b, c.assignee)
	b = append(b, `,"contact_type_id":`...)
	b = appendID(b, c.contactType)
	b = append(b, `,"details":`...)
	b = appendNStr(b, c.details)
	b = append(b, `,"email_domain":`...)
	b = appendNStr(b, orNull(c.domain))
	b = append(b, ',')
	b = appendLabeled(b, "phone_numbers", "number", c.phones)
	b = append(b, `,"primary_contact_id":`...)
	if c.primaryContact >= 0 {
		b = jsonenc.AppendInt(b, s.idOf(entPeople, c.primaryContact))
	} else {
		b = append(b, "null"...)
	}
	b = append(b, ',')
	b = appendLabeled(b, "socials", "url", c.socials)
	b = append(b, ',')
	b = appendTags(b, s.tagMask(entCompanies, slot, rc.version))
	b = append(b, ',')
	b = appendLabeled(b, "websites", "url", c.websites)
	b = append(b, ',')
	b = s.appendCustomFields(b, entCompanies, slot, rc)
	b = append(b, `,"interaction_count":`...)
	b = jsonenc.AppendInt(b, c.interactions)
	b = append(b, `,"date_created":`...)
	b = jsonenc.AppendInt(b, rc.created)
	b = append(b, `,"date_modified":`...)
	b = jsonenc.AppendInt(b, rc.modified)
	return append(b, '}')
}

// personNames is the cheap part of a person, for company contact sorts.
func (s *Server) personNames(slot int32) (first, last string) {
	r := s.rngFor(entPeople, slot, stStable, 0)
	fn, ln := pick(&r, firstNames), pick(&r, lastNames)
	if r.Chance(0.02) {
		return fn.text, ""
	}
	return fn.text, ln.text
}

// ---------------------------------------------------------------- leads

type leadCore struct {
	first, middle, last, prefix, suffix nstr
	name                                string
	addr                                addr
	companyName                         nstr
	customerSource                      int64
	email                               *labeled
	phones, socials, websites           []labeled
	title                               nstr
	assignee                            int64
	status                              leadStatus
	details                             nstr
	interactions                        int64
	unit                                nstr
	value                               int64
	lastContacted                       int64
	convOpp, convContact, convAt        int64
}

func (s *Server) lead(slot int32, rc *rec) leadCore {
	var l leadCore
	r := s.rngFor(entLeads, slot, stStable, 0)
	fn, ln := pick(&r, firstNames), pick(&r, lastNames)
	if r.Chance(0.08) { // anonymous inbound calls: a single name part
		l.first = some("Unknown caller " + string(digits4(nil, int(slot%10000))))
	} else {
		l.first, l.last = some(fn.text), some(ln.text)
		if r.Chance(0.1) {
			l.prefix = some(pick(&r, prefixes))
		}
		if r.Chance(0.1) {
			l.middle = some(pick(&r, middleNames))
		}
	}
	l.name = joinName(l.first, l.middle, l.last)
	l.addr = s.address(&r, 0.3)
	domain := "mail.example"
	if r.Chance(0.7) { // free text, not a company id
		h, t := pick(&r, companyHeads), pick(&r, companyTails)
		l.companyName = some(h.text + " " + t.text)
		domain = h.slug + "-" + t.slug + ".example"
	}
	if !r.Chance(0.15) {
		l.customerSource = pick(&r, customerSources).ID
	}
	if r.Chance(0.75) && l.last.ok {
		l.email = &labeled{fn.slug + "." + ln.slug + itoa(slot) + "@" + domain, some(pick(&r, emailCats))}
	}
	l.phones = s.phones(&r, 1)
	l.socials = socials(&r, fn.slug+"-"+itoa(slot))
	if l.companyName.ok {
		l.websites = websites(&r, domain)
	}
	if r.Chance(0.7) {
		l.title = some(pick(&r, titles))
	}
	if rc.flags&flConverted != 0 {
		l.convContact = s.refID(entPeople, &r)
		l.convOpp = s.refID(entOpportunities, &r)
		l.convAt = rc.created + r.int63n(rc.modified-rc.created+1)
	}
	v := s.rngFor(entLeads, slot, stVersion, rc.version)
	l.assignee = s.assignee(&v)
	l.status = pick(&v, leadStatuses)
	if rc.flags&flConverted != 0 {
		l.status = leadStatuses[3] // Qualified
	}
	l.details = details(&v, detailsPool, 0.4, rc.version)
	l.interactions = int64(v.intn(10))
	if v.Chance(0.7) {
		l.unit = some(pick(&v, []string{"USD", "USD", "EUR", "GBP"}))
		l.value = int64(500 * (1 + v.intn(100)))
	}
	if v.Chance(0.5) {
		l.lastContacted = rc.created + v.int63n(rc.modified-rc.created+1)
	}
	return l
}

func convertUSD(unit string, value int64) float64 {
	switch unit {
	case "EUR":
		return float64(value) * 1.08
	case "GBP":
		return float64(value) * 1.27
	}
	return float64(value)
}

func (s *Server) appendLead(b []byte, slot int32, rc *rec) []byte {
	l := s.lead(slot, rc)
	b = append(b, `{"id":`...)
	b = jsonenc.AppendInt(b, s.idOf(entLeads, slot))
	b = append(b, `,"name":`...)
	b = jsonenc.AppendString(b, l.name)
	b = append(b, `,"prefix":`...)
	b = appendNStr(b, l.prefix)
	b = append(b, `,"first_name":`...)
	b = appendNStr(b, l.first)
	b = append(b, `,"last_name":`...)
	b = appendNStr(b, l.last)
	b = append(b, `,"middle_name":`...)
	b = appendNStr(b, l.middle)
	b = append(b, `,"suffix":`...)
	b = appendNStr(b, l.suffix)
	b = append(b, ',')
	b = appendAddress(b, l.addr)
	b = append(b, `,"assignee_id":`...)
	b = appendID(b, l.assignee)
	b = append(b, `,"company_name":`...)
	b = appendNStr(b, l.companyName)
	b = append(b, `,"customer_source_id":`...)
	b = appendID(b, l.customerSource)
	b = append(b, `,"details":`...)
	b = appendNStr(b, l.details)
	b = append(b, `,"email":`...)
	if l.email == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"email":`...)
		b = jsonenc.AppendString(b, l.email.v)
		b = append(b, `,"category":`...)
		b = appendNStr(b, l.email.cat)
		b = append(b, '}')
	}
	b = append(b, `,"interaction_count":`...)
	b = jsonenc.AppendInt(b, l.interactions)
	b = append(b, `,"monetary_unit":`...)
	b = appendNStr(b, l.unit)
	b = append(b, `,"monetary_value":`...)
	b = jsonenc.AppendIntOrNull(b, l.value, l.unit.ok)
	converted := l.unit.ok && l.convAt != 0
	b = append(b, `,"converted_unit":`...)
	if converted {
		b = jsonenc.AppendString(b, "USD")
		b = append(b, `,"converted_value":`...)
		b = jsonenc.AppendFloat(b, convertUSD(l.unit.s, l.value))
	} else {
		b = append(b, `null,"converted_value":null`...)
	}
	b = append(b, ',')
	b = appendLabeled(b, "socials", "url", l.socials)
	b = append(b, `,"status":`...)
	b = jsonenc.AppendString(b, l.status.Name)
	b = append(b, `,"status_id":`...)
	b = jsonenc.AppendInt(b, l.status.ID)
	b = append(b, ',')
	b = appendTags(b, s.tagMask(entLeads, slot, rc.version))
	b = append(b, `,"title":`...)
	b = appendNStr(b, l.title)
	b = append(b, ',')
	b = appendLabeled(b, "websites", "url", l.websites)
	b = append(b, ',')
	b = appendLabeled(b, "phone_numbers", "number", l.phones)
	b = append(b, ',')
	b = s.appendCustomFields(b, entLeads, slot, rc)
	b = append(b, `,"date_created":`...)
	b = jsonenc.AppendInt(b, rc.created)
	b = append(b, `,"date_modified":`...)
	b = jsonenc.AppendInt(b, rc.modified)
	b = append(b, `,"date_last_contacted":`...)
	b = appendID(b, l.lastContacted)
	b = append(b, `,"converted_opportunity_id":`...)
	b = appendID(b, l.convOpp)
	b = append(b, `,"converted_contact_id":`...)
	b = appendID(b, l.convContact)
	b = append(b, `,"converted_at":`...)
	b = appendID(b, l.convAt)
	return append(b, '}')
}

// ---------------------------------------------------------------- opportunities

type oppCore struct {
	name           string
	companyID      int64
	companyName    nstr
	primaryContact int64
	customerSource int64
	leadFrom       int64
	leadCreated    int64
	pipeline       *pipeline
	stage          *stage
	status         string
	lossReason     int64
	priority       string
	unit           string
	value          int64
	winProb        int64
	closeDate      int64 // 0 = null
	stageChanged   int64
	lastContacted  int64
	interactions   int64
	assignee       int64
	details        nstr
}

var oppStatuses = []string{"Open", "Won", "Lost", "Abandoned"}

func (s *Server) opportunity(slot int32, rc *rec) oppCore {
	var o oppCore
	r := s.rngFor(entOpportunities, slot, stStable, 0)
	suffix := pick(&r, opportunityNames)
	o.name = suffix
	if r.Chance(0.8) {
		if cs := s.refSlot(entCompanies, &r); cs >= 0 {
			name, _ := s.companyBasics(cs)
			o.companyID = s.idOf(entCompanies, cs)
			o.companyName = some(name)
			o.name = name + " - " + suffix
		}
	}
	if r.Chance(0.75) {
		o.primaryContact = s.refID(entPeople, &r)
	}
	if r.Chance(0.8) {
		o.customerSource = pick(&r, customerSources).ID
	}
	if r.Chance(0.1) {
		o.leadFrom = s.refID(entLeads, &r)
		if o.leadFrom != 0 {
			o.leadCreated = max(rc.created-r.int63n(60*day), s.start)
		}
	}
	o.pipeline = &pipelines[r.intn(len(pipelines))]
	o.unit = pick(&r, []string{"USD", "USD", "USD", "EUR"})
	v := s.rngFor(entOpportunities, slot, stVersion, rc.version)
	switch u := v.Float(); {
	case u < 0.6:
		o.status = "Open"
	case u < 0.8:
		o.status = "Won"
	case u < 0.95:
		o.status = "Lost"
	default:
		o.status = "Abandoned"
	}
	st := o.pipeline.Stages
	switch o.status {
	case "Won":
		o.stage = &st[len(st)-1]
		o.winProb = 100
	case "Open":
		o.stage = &st[v.intn(len(st))]
		o.winProb = int64(o.stage.WinProbability)
	default:
		o.stage = &st[v.intn(len(st))]
		if o.status == "Lost" {
			o.lossReason = pick(&v, lossReasons).ID
		}
	}
	o.priority = pick(&v, priorities)
	o.value = int64(1500 * (1 + v.intn(200)))
	if !v.Chance(0.15) {
		o.closeDate = rc.created + (10+v.int63n(200))*day
	}
	o.stageChanged = rc.created + v.int63n(rc.modified-rc.created+1)
	if v.Chance(0.7) {
		o.lastContacted = rc.created + v.int63n(rc.modified-rc.created+1)
	}
	o.interactions = int64(v.intn(30))
	o.assignee = s.assignee(&v)
	o.details = details(&v, detailsPool, 0.4, rc.version)
	return o
}

func (s *Server) appendOpportunity(b []byte, slot int32, rc *rec) []byte {
	o := s.opportunity(slot, rc)
	b = append(b, `{"id":`...)
	b = jsonenc.AppendInt(b, s.idOf(entOpportunities, slot))
	b = append(b, `,"name":`...)
	b = jsonenc.AppendString(b, o.name)
	b = append(b, `,"assignee_id":`...)
	b = appendID(b, o.assignee)
	b = append(b, `,"close_date":`...)
	if o.closeDate != 0 {
		b = appendCloseDate(b, o.closeDate)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"company_id":`...)
	b = appendID(b, o.companyID)
	b = append(b, `,"company_name":`...)
	b = appendNStr(b, o.companyName)
	b = append(b, `,"customer_source_id":`...)
	b = appendID(b, o.customerSource)
	b = append(b, `,"details":`...)
	b = appendNStr(b, o.details)
	b = append(b, `,"loss_reason_id":`...)
	b = appendID(b, o.lossReason)
	b = append(b, `,"pipeline_id":`...)
	b = jsonenc.AppendInt(b, o.pipeline.ID)
	b = append(b, `,"pipeline_stage_id":`...)
	b = jsonenc.AppendInt(b, o.stage.ID)
	b = append(b, `,"primary_contact_id":`...)
	b = appendID(b, o.primaryContact)
	b = append(b, `,"priority":`...)
	b = jsonenc.AppendString(b, o.priority)
	b = append(b, `,"status":`...)
	b = jsonenc.AppendString(b, o.status)
	b = append(b, ',')
	b = appendTags(b, s.tagMask(entOpportunities, slot, rc.version))
	b = append(b, `,"interaction_count":`...)
	b = jsonenc.AppendInt(b, o.interactions)
	b = append(b, `,"monetary_unit":`...)
	b = jsonenc.AppendString(b, o.unit)
	b = append(b, `,"monetary_value":`...)
	b = jsonenc.AppendInt(b, o.value)
	b = append(b, `,"converted_unit":"USD","converted_value":`...)
	b = jsonenc.AppendFloat(b, convertUSD(o.unit, o.value))
	b = append(b, `,"win_probability":`...)
	b = jsonenc.AppendInt(b, o.winProb)
	b = append(b, `,"date_stage_changed":`...)
	b = jsonenc.AppendInt(b, o.stageChanged)
	b = append(b, `,"date_last_contacted":`...)
	b = appendID(b, o.lastContacted)
	b = append(b, `,"leads_converted_from":[`...)
	if o.leadFrom != 0 {
		b = jsonenc.AppendInt(b, o.leadFrom)
	}
	b = append(b, `],"date_lead_created":`...)
	b = appendID(b, o.leadCreated)
	b = append(b, `,"date_created":`...)
	b = jsonenc.AppendInt(b, rc.created)
	b = append(b, `,"date_modified":`...)
	b = jsonenc.AppendInt(b, rc.modified)
	b = append(b, ',')
	b = s.appendCustomFields(b, entOpportunities, slot, rc)
	b = append(b, `,"pipeline_type":`...)
	b = jsonenc.AppendString(b, o.pipeline.Type)
	b = append(b, `,"pipeline_is_revenue":`...)
	b = jsonenc.AppendBool(b, o.pipeline.IsRevenue)
	return append(b, '}')
}

// ---------------------------------------------------------------- projects & tasks

type related struct {
	e    entity
	slot int32 // -1: null
}

func (s *Server) relatedTo(r *rng, pNull float64, kinds ...entity) related {
	if r.Chance(pNull) {
		return related{slot: -1}
	}
	e := kinds[r.intn(len(kinds))]
	for i := 0; s.tabs[e].base == 0 && i < len(kinds); i++ {
		e = kinds[i]
	}
	return related{e, s.refSlot(e, r)}
}

func (s *Server) appendRelated(b []byte, key string, rel related) []byte {
	b = append(b, '"')
	b = append(b, key...)
	b = append(b, `":`...)
	if rel.slot < 0 {
		return append(b, "null"...)
	}
	b = append(b, `{"id":`...)
	b = jsonenc.AppendInt(b, s.idOf(rel.e, rel.slot))
	b = append(b, `,"type":"`...)
	b = append(b, entities[rel.e].kind...)
	return append(b, `"}`...)
}

type projectCore struct {
	name     string
	rel      related
	assignee int64
	status   string
	details  nstr
}

func (s *Server) project(slot int32, rc *rec) projectCore {
	var p projectCore
	r := s.rngFor(entProjects, slot, stStable, 0)
	p.name = pick(&r, companyHeads).text + " " + pick(&r, projectNames)
	p.rel = s.relatedTo(&r, 0.3, entCompanies, entOpportunities, entPeople)
	v := s.rngFor(entProjects, slot, stVersion, rc.version)
	p.assignee = s.assignee(&v)
	p.status = "Open"
	if v.Chance(0.4) {
		p.status = "Completed"
	}
	p.details = details(&v, detailsPool, 0.4, rc.version)
	return p
}

func (s *Server) appendProject(b []byte, slot int32, rc *rec) []byte {
	p := s.project(slot, rc)
	b = append(b, `{"id":`...)
	b = jsonenc.AppendInt(b, s.idOf(entProjects, slot))
	b = append(b, `,"name":`...)
	b = jsonenc.AppendString(b, p.name)
	b = append(b, ',')
	b = s.appendRelated(b, "related_resource", p.rel)
	b = append(b, `,"assignee_id":`...)
	b = appendID(b, p.assignee)
	b = append(b, `,"status":`...)
	b = jsonenc.AppendString(b, p.status)
	b = append(b, `,"details":`...)
	b = appendNStr(b, p.details)
	b = append(b, ',')
	b = appendTags(b, s.tagMask(entProjects, slot, rc.version))
	b = append(b, ',')
	b = s.appendCustomFields(b, entProjects, slot, rc)
	b = append(b, `,"date_created":`...)
	b = jsonenc.AppendInt(b, rc.created)
	b = append(b, `,"date_modified":`...)
	b = jsonenc.AppendInt(b, rc.modified)
	return append(b, '}')
}

type taskCore struct {
	name                     string
	rel                      related
	actType                  int64
	assignee                 int64
	due, reminder, completed int64 // 0 = null
	priority, status         string
	details                  nstr
}

func (s *Server) task(slot int32, rc *rec) taskCore {
	var t taskCore
	r := s.rngFor(entTasks, slot, stStable, 0)
	t.name = pick(&r, taskNames)
	t.rel = s.relatedTo(&r, 0.25, entOpportunities, entLeads, entPeople, entCompanies, entProjects)
	t.actType = pick(&r, []int64{actToDo, actToDo, actToDo, actPhoneCall, actMeeting})
	v := s.rngFor(entTasks, slot, stVersion, rc.version)
	t.assignee = s.assignee(&v)
	if !v.Chance(0.15) {
		t.due = rc.created + v.int63n(60*day)
		if v.Chance(0.4) {
			t.reminder = t.due - 3600
		}
	}
	t.priority = "None"
	if v.Chance(0.3) {
		t.priority = "High"
	}
	t.status = "Open"
	if v.Chance(0.5) {
		t.status = "Completed"
		t.completed = rc.created + v.int63n(rc.modified-rc.created+1)
	}
	t.details = details(&v, detailsPool, 0.4, rc.version)
	return t
}

func (s *Server) appendTask(b []byte, slot int32, rc *rec) []byte {
	t := s.task(slot, rc)
	b = append(b, `{"id":`...)
	b = jsonenc.AppendInt(b, s.idOf(entTasks, slot))
	b = append(b, `,"name":`...)
	b = jsonenc.AppendString(b, t.name)
	b = append(b, ',')
	b = s.appendRelated(b, "related_resource", t.rel)
	b = append(b, `,"assignee_id":`...)
	b = appendID(b, t.assignee)
	b = append(b, `,"due_date":`...)
	b = appendID(b, t.due)
	b = append(b, `,"reminder_date":`...)
	b = appendID(b, t.reminder)
	b = append(b, `,"completed_date":`...)
	b = appendID(b, t.completed)
	b = append(b, `,"priority":`...)
	b = jsonenc.AppendString(b, t.priority)
	b = append(b, `,"status":`...)
	b = jsonenc.AppendString(b, t.status)
	b = append(b, `,"details":`...)
	b = appendNStr(b, t.details)
	b = append(b, ',')
	b = appendTags(b, s.tagMask(entTasks, slot, rc.version))
	b = append(b, ',')
	b = s.appendCustomFields(b, entTasks, slot, rc)
	b = append(b, `,"date_created":`...)
	b = jsonenc.AppendInt(b, rc.created)
	b = append(b, `,"date_modified":`...)
	b = jsonenc.AppendInt(b, rc.modified)
	b = append(b, `,"custom_activity_type_id":`...)
	b = jsonenc.AppendInt(b, t.actType)
	return append(b, '}')
}

// ---------------------------------------------------------------- activities

// actHead is the cheap, filterable part of an activity.
type actHead struct {
	typeID int64
	system bool
	parent related
	user   int32
	after  rng // stable stream positioned after the head draws
}

var userActTypes = []int64{actPhoneCall, actMeeting, actEmail}

func (s *Server) activityHead(slot int32) actHead {
	var h actHead
	r := s.rngFor(entActivities, slot, stStable, 0)
	u := r.Float()
	sub := r.intn(len(userActTypes))
	hasOpp := s.tabs[entOpportunities].base > 0
	switch {
	case u < 0.45:
		h.typeID = actNote
	case u < 0.70:
		h.typeID = userActTypes[sub]
	case u < 0.88 && (hasOpp || s.tabs[entLeads].base > 0):
		h.typeID, h.system = actPropertyChg, true
	case u >= 0.88 && hasOpp:
		h.typeID, h.system = actPipelineStage, true
	default:
		h.typeID = actNote
	}
	switch {
	case h.typeID == actPipelineStage:
		h.parent = related{entOpportunities, s.refSlot(entOpportunities, &r)}
	case h.system:
		if hasOpp && (s.tabs[entLeads].base == 0 || r.Chance(0.7)) {
			h.parent = related{entOpportunities, s.refSlot(entOpportunities, &r)}
		} else {
			h.parent = related{entLeads, s.refSlot(entLeads, &r)}
		}
	default:
		// weights: person 45, company 20, lead 15, opportunity 15, project 5
		w := r.intn(100)
		order := []entity{entPeople, entCompanies, entLeads, entOpportunities, entProjects}
		cut := []int{45, 65, 80, 95, 100}
		k := 0
		for w >= cut[k] {
			k++
		}
		h.parent = related{slot: -1}
		for i := range order {
			e := order[(k+i)%len(order)]
			if s.tabs[e].base > 0 {
				h.parent = related{e, s.refSlot(e, &r)}
				break
			}
		}
	}
	h.user = s.refSlot(entUsers, &r)
	h.after = r
	return h
}

// activityBackdate is how long before its creation an activity is dated:
// users log calls and meetings after the fact, system events are immediate.
func (s *Server) activityBackdate(slot int32, r *rng) int64 {
	if s.activityHead(slot).system {
		return 0
	}
	switch u := r.Float(); {
	case u < 0.8:
		return r.int63n(6 * 3600)
	case u < 0.95:
		return r.int63n(7 * day)
	default:
		return 7*day + r.int63n(53*day)
	}
}

func (s *Server) appendActivity(b []byte, slot int32, rc *rec) []byte {
	h := s.activityHead(slot)
	r := h.after
	b = append(b, `{"id":`...)
	b = jsonenc.AppendInt(b, s.idOf(entActivities, slot))
	b = append(b, ',')
	b = s.appendRelated(b, "parent", h.parent)
	b = append(b, `,"type":{"id":`...)
	b = jsonenc.AppendInt(b, h.typeID)
	if h.system {
		b = append(b, `,"category":"system","name":`...)
		if h.typeID == actPipelineStage {
			b = jsonenc.AppendString(b, "Pipeline Stage Changed")
		} else {
			b = jsonenc.AppendString(b, "Property Changed")
		}
		b = append(b, '}')
	} else {
		b = append(b, `,"category":"user"}`...)
	}
	b = append(b, `,"user_id":`...)
	if h.user >= 0 {
		b = jsonenc.AppendInt(b, s.idOf(entUsers, h.user))
	} else {
		b = append(b, "null"...)
	}
	v := s.rngFor(entActivities, slot, stVersion, rc.version)
	pNull := 0.1
	if h.system {
		pNull = 1
	}
	b = append(b, `,"details":`...)
	b = appendNStr(b, details(&v, noteDetails, pNull, rc.version))
	b = append(b, `,"activity_date":`...)
	b = jsonenc.AppendInt(b, rc.modified)
	b = append(b, `,"old_value":`...)
	switch {
	case h.typeID == actPipelineStage:
		p := &pipelines[r.intn(len(pipelines))]
		i := r.intn(len(p.Stages) - 1)
		b = appendStageRef(b, &p.Stages[i])
		b = append(b, `,"new_value":`...)
		b = appendStageRef(b, &p.Stages[i+1])
	case h.system && h.parent.e == entLeads:
		i := r.intn(len(leadStatuses) - 1)
		b = jsonenc.AppendString(b, leadStatuses[i].Name)
		b = append(b, `,"new_value":`...)
		b = jsonenc.AppendString(b, leadStatuses[i+1].Name)
	case h.system:
		b = jsonenc.AppendString(b, "Open")
		b = append(b, `,"new_value":`...)
		b = jsonenc.AppendString(b, oppStatuses[1+r.intn(3)])
	default:
		b = append(b, `null,"new_value":null`...)
	}
	b = append(b, `,"date_created":`...)
	b = jsonenc.AppendInt(b, rc.created)
	b = append(b, `,"date_modified":`...)
	b = jsonenc.AppendInt(b, s.activityModified(slot, rc, &r))
	return append(b, '}')
}

// activityModified: date_modified equals activity_date, except that a few
// never-updated user activities were edited later (date_modified after
// activity_date). Never beyond the Epoch.
func (s *Server) activityModified(slot int32, rc *rec, r *rng) int64 {
	if rc.version == 0 && rc.modified < s.end && r.Chance(0.03) {
		return min(rc.modified+1+r.int63n(30*day), s.end-1)
	}
	return rc.modified
}

func appendStageRef(b []byte, st *stage) []byte {
	b = append(b, `{"id":`...)
	b = jsonenc.AppendInt(b, st.ID)
	b = append(b, `,"name":`...)
	b = jsonenc.AppendString(b, st.Name)
	return append(b, '}')
}

// ---------------------------------------------------------------- users

func (s *Server) userName(slot int32) (name, email string) {
	r := s.rngFor(entUsers, slot, stStable, 0)
	fn, ln := pick(&r, firstNames), pick(&r, lastNames)
	name = fn.text + " " + ln.text
	email = fn.slug + "." + ln.slug + itoa(slot) + "@northwind-outfitters.example"
	if slot == 0 { // the API key's owner
		email = s.cfg.UserEmail
	}
	return name, email
}

func (s *Server) appendUser(b []byte, slot int32, rc *rec) []byte {
	name, email := s.userName(slot)
	b = append(b, `{"id":`...)
	b = jsonenc.AppendInt(b, s.idOf(entUsers, slot))
	b = append(b, `,"name":`...)
	b = jsonenc.AppendString(b, name)
	b = append(b, `,"email":`...)
	b = jsonenc.AppendString(b, email)
	b = append(b, `,"groups":[`...)
	// Groups rotate with the version so every update changes them.
	r := s.rngFor(entUsers, slot, stStable, 1)
	mask := (r.intn(8) + int(rc.version)) % 8
	first := true
	for i, g := range userGroups {
		if mask&(1<<i) == 0 {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, `{"id":`...)
		b = jsonenc.AppendInt(b, g.ID)
		b = append(b, `,"name":`...)
		b = jsonenc.AppendString(b, g.Name)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// appendRecord serves one record of any search entity.
func (s *Server) appendRecord(b []byte, e entity, slot int32) []byte {
	rc := &s.tabs[e].recs[slot]
	switch e {
	case entPeople:
		return s.appendPerson(b, slot, rc)
	case entCompanies:
		return s.appendCompany(b, slot, rc)
	case entLeads:
		return s.appendLead(b, slot, rc)
	case entOpportunities:
		return s.appendOpportunity(b, slot, rc)
	case entProjects:
		return s.appendProject(b, slot, rc)
	case entTasks:
		return s.appendTask(b, slot, rc)
	case entActivities:
		return s.appendActivity(b, slot, rc)
	default:
		return s.appendUser(b, slot, rc)
	}
}
