package closesim

import (
	"net/url"
	"strconv"
	"time"

	"github.com/crmsync/crmsync/internal/simulator/jsonenc"
	"github.com/crmsync/crmsync/internal/simulator/simfault"
)

// Everything a record contains is a pure function of (seed, stream, gen,
// version, kind, date_created, date_updated). Parts of a record use their
// own random streams (hash of a purpose salt and the gen) so that related
// records agree (an activity's lead_name is the lead's name) and so that
// skipping a part (_fields) never changes another.

const (
	hKind = 0x1000 + iota
	hMeta
	hRec
	hVer
	hLeadName
	hUserName
	hContacts
	hContactName
	hContactKey
	hOppKey
	hLeadTaskKey
	hAddr
	hOpps
	hLeadTasks
	hCustom
	hLeadOf
	hUserOf
	hTaskDate
	hTaskComplete
	hStatusKey
	hOppStatusKey
	hPipeKey
	hOrg
	hMisc
	hEvent
	hGhost
	hCF
	hCustomAct
)

func (s *Server) h(salt, x uint64) uint64 {
	return simfault.Mix64(simfault.Mix64(x+salt*0xD6E8FEB86659FD93) ^ s.seed)
}

func (s *Server) rngFor(salt, x uint64) rng { return simfault.NewRand(s.h(salt, x)) }

func (s *Server) recRng(sid int, gen uint32) rng {
	return s.rngFor(hRec+uint64(sid)<<8, uint64(gen))
}

// verRng drives the fields that change with each update.
func (s *Server) verRng(sid int, gen uint32, ver uint16) rng {
	return s.rngFor(hVer+uint64(sid)<<8, uint64(gen)<<16|uint64(ver))
}

// ---- static tables ----

type actType struct{ name, path, objType string }

var actTypes = []actType{
	{"Call", "call", "activity.call"},
	{"Email", "email", "activity.email"},
	{"Note", "note", "activity.note"},
	{"SMS", "sms", "activity.sms"},
	{"Meeting", "meeting", "activity.meeting"},
	{"LeadStatusChange", "status_change/lead", "activity.lead_status_change"},
	{"OpportunityStatusChange", "status_change/opportunity", "activity.opportunity_status_change"},
	{"TaskCompleted", "task_completed", "activity.task_completed"},
	{"Created", "created", "activity.created"},
	{"Custom", "custom", "activity.custom_activity"},
}

// actWeights weighs the built-in types; custom activities are drawn apart (kindFor).
var actWeights = []int{20, 28, 16, 8, 7, 8, 5, 5, 3}

const (
	aCall = iota
	aEmail
	aNote
	aSMS
	aMeeting
	aLeadStatus
	aOppStatus
	aTaskCompleted
	aCreated
	aCustom
)

type taskType struct{ name, prefix string }

var taskTypes = []taskType{
	{"lead", "task_"}, {"email_followup", "noti_"}, {"missed_call", "noti_"}, {"opportunity_due", "noti_"},
	{"incoming_email", "noti_"}, {"voicemail", "noti_"}, {"incoming_sms", "noti_"},
	{"answered_detached_call", "noti_"}, {"outgoing_call", "task_"},
}
var taskWeights = []int{50, 12, 9, 8, 8, 5, 4, 2, 2}

const (
	tLead = iota
	tEmailFollowup
	tMissedCall
	tOppDue
	tIncomingEmail
	tVoicemail
	tIncomingSMS
	tAnsweredDetached
	tOutgoingCall
)

// Custom field groups = the /custom_field/<group>/ endpoints.
var cfGroups = []struct{ path, objType string }{
	{"lead", "custom_fields.lead"}, {"contact", "custom_fields.contact"}, {"opportunity", "custom_fields.opportunity"},
	{"activity", "custom_fields.activity"}, {"custom_object_type", "custom_fields.custom_object"}, {"shared", "custom_fields.shared"},
}
var cfGroupWeights = []int{40, 20, 15, 10, 5, 10}

const (
	gLead = iota
	gContact
	gOpportunity
	gActivity
	gCustomObject
	gShared
)

func weighted(r *rng, w []int) int {
	tot := 0
	for _, x := range w {
		tot += x
	}
	n := r.Intn(tot)
	for i, x := range w {
		if n < x {
			return i
		}
		n -= x
	}
	return len(w) - 1
}

// kindFor is the _type (activities, tasks) or group (custom fields) of a record.
func (s *Server) kindFor(sid int, gen uint32) uint8 {
	r := s.rngFor(hKind+uint64(sid)<<8, uint64(gen))
	switch sid {
	case sActivities:
		k := uint8(weighted(&r, actWeights))
		// One in 50 is a custom activity: a second draw, so every other activity keeps the
		// type it had before custom activities existed.
		if r.Intn(50) == 0 {
			k = aCustom
		}
		return k
	case sTasks:
		return uint8(weighted(&r, taskWeights))
	case sCustomFields:
		if gen < uint32(len(cfGroups)) { // every endpoint gets at least one field
			return uint8(gen)
		}
		return uint8(weighted(&r, cfGroupWeights))
	}
	return 0
}

// leadOf is the lead generator index an activity/task/event belongs to, -1 if none.
func (s *Server) leadOf(sid int, gen uint32) int64 {
	switch sid {
	case sLeads:
		return int64(gen)
	case sActivities, sTasks:
		if s.n0[sLeads] == 0 {
			return -1
		}
		if len(s.moved) > 0 {
			if l, ok := s.moved[uint64(sid)<<32|uint64(gen)]; ok {
				return l
			}
		}
		return int64(s.h(hLeadOf+uint64(sid)<<8, uint64(gen)) % uint64(s.n0[sLeads]))
	case sEvents:
		ref := &s.evRefs[gen]
		switch int(ref.tstream) {
		case sLeads, sActivities, sTasks:
			return s.leadOf(int(ref.tstream), ref.tgen)
		case sContacts, sOpps:
			l, _ := splitSub(ref.tgen)
			return l
		}
	}
	return -1
}

// userOf picks a referenced user (by purpose salt and x); -1 when there are no users.
func (s *Server) userOf(salt, x uint64) int64 {
	if s.n0[sUsers] == 0 {
		return -1
	}
	return int64(s.h(hUserOf+salt, x) % uint64(s.n0[sUsers]))
}

func (s *Server) userNames(u int64) (first, last name2) {
	h := s.h(hUserName, uint64(u))
	return firstNames[h%uint64(len(firstNames))], lastNames[(h>>20)%uint64(len(lastNames))]
}

func (s *Server) leadNameParts(l int64) (head name2, tail string) {
	h := s.h(hLeadName, uint64(l))
	return companyHeads[h%uint64(len(companyHeads))], companyTails[(h>>20)%uint64(len(companyTails))]
}

func (s *Server) leadName(l int64) string {
	if l < 0 {
		return ""
	}
	hd, tl := s.leadNameParts(l)
	if tl == "" {
		return hd.n
	}
	return hd.n + " " + tl
}

func (s *Server) nContacts(l int64) int {
	switch v := s.h(hContacts, uint64(l)) % 10; {
	case v == 0:
		return 0
	case v < 6:
		return 1
	case v < 9:
		return 2
	default:
		return 3
	}
}

func (s *Server) contactNames(l int64, j int) (first, last name2) {
	h := s.h(hContactName, uint64(l)*4+uint64(j))
	return firstNames[h%uint64(len(firstNames))], lastNames[(h>>20)%uint64(len(lastNames))]
}

func (s *Server) contactKey(l int64, j int) uint64 { return s.h(hContactKey, uint64(l)*4+uint64(j)) }

// taskDate is a task's "date": mostly a date, sometimes a date-time.
func (s *Server) taskDate(gen uint32, created int64) (us int64, dateOnly bool) {
	h := s.h(hTaskDate, uint64(gen))
	days := int64(h%15) - 2
	if (h>>8)%5 == 0 {
		return created + days*usPerDay + int64((h>>16)%480)*usPerMinute, false
	}
	return (floorDiv(created, usPerDay) + days) * usPerDay, true
}

func (s *Server) taskComplete(gen uint32, ver uint16) bool {
	base := s.h(hTaskComplete, uint64(gen))%10 < 3
	return base != (ver%2 == 1)
}

// ---- shared writers ----

func (e *enc) str3(a, b, c string) {
	e.pre()
	e.b = append(e.b, '"')
	e.b = jsonenc.AppendEscaped(e.b, a)
	e.b = jsonenc.AppendEscaped(e.b, b)
	e.b = jsonenc.AppendEscaped(e.b, c)
	e.b = append(e.b, '"')
	e.comma = true
}

func (s *Server) userField(e *enc, idKey, nameKey string, u int64) {
	e.f(idKey)
	s.userIDOrNull(e, u)
	if nameKey != "" {
		e.f(nameKey)
		s.userName(e, u)
	}
}

// userRefs caches the quoted id and name of referenced users: they appear
// several times in most records.
type userRef struct{ id, name string }

func (s *Server) buildUserRefs() {
	n := min(s.n0[sUsers], 1<<16)
	s.urefs = make([]userRef, n)
	for u := range s.urefs {
		fn, ln := s.userNames(int64(u))
		s.urefs[u] = userRef{
			id:   string(jsonenc.AppendString(nil, makeID("user_", s.idkey(sUsers, uint32(u)), 43))),
			name: string(jsonenc.AppendString(nil, fn.n+" "+ln.n)),
		}
	}
	for i := range s.statusIDs {
		s.statusIDs[i] = makeID("stat_", s.h(hStatusKey, uint64(i)), 43)
	}
	for i := range s.oppStatusIDs {
		s.oppStatusIDs[i] = makeID("stat_", s.h(hOppStatusKey, uint64(i)), 43)
	}
}

func (s *Server) userName(e *enc, u int64) {
	switch {
	case u < 0:
		e.null()
	case int(u) < len(s.urefs):
		e.raw(s.urefs[u].name)
	default:
		fn, ln := s.userNames(u)
		e.str3(fn.n, " ", ln.n)
	}
}

func (s *Server) userEmail(e *enc, u int64) {
	fn, ln := s.userNames(u)
	e.str3(fn.ascii+"."+ln.ascii, "@", "northwind-robotics.example")
}

func (s *Server) leadIDVal(e *enc, l int64) {
	if l < 0 {
		e.null()
		return
	}
	e.id("lead_", s.idkey(sLeads, uint32(l)), 43)
}

func (s *Server) orgID(e *enc) { e.str(s.org) }

func (s *Server) statusID(e *enc, i int) { e.str(s.statusIDs[i]) }

func (s *Server) oppStatusID(e *enc, i int) { e.str(s.oppStatusIDs[i]) }

func (s *Server) pipelineID(e *enc, i int) { e.id("pipe_", s.h(hPipeKey, uint64(i)), 22) }

// phone writes an E.164 number or its formatted form.
func (e *enc) phone(c phoneCountry, num uint64, formatted bool) {
	e.pre()
	e.b = append(e.b, '"', '+')
	e.b = append(e.b, c.cc...)
	if formatted {
		e.b = append(e.b, ' ')
	}
	e.b = append(e.b, c.area...)
	if formatted {
		if c.iso == "US" {
			e.b = append(e.b, '-')
		} else {
			e.b = append(e.b, ' ')
		}
	}
	for k := 0; k < c.digits; k++ {
		if formatted && c.iso == "US" && k == 3 {
			e.b = append(e.b, '-')
		}
		e.b = append(e.b, byte('0'+num%10))
		num /= 10
	}
	e.b = append(e.b, '"')
	e.comma = true
}

// edited appends an edit marker to a text that changes with each update.
func (e *enc) edited(text string, ver uint16) {
	if ver == 0 {
		e.str(text)
		return
	}
	e.pre()
	e.b = append(e.b, '"')
	e.b = jsonenc.AppendEscaped(e.b, text)
	e.b = append(e.b, " (edit "...)
	e.b = strconv.AppendUint(e.b, uint64(ver), 10)
	e.b = append(e.b, ")\""...)
	e.comma = true
}

// msTime rounds a generated instant to milliseconds (the API's usual
// precision); one in twenty becomes a whole second, which the API prints
// without a fraction.
func msTime(r *rng, us int64) int64 {
	if r.Intn(20) == 0 {
		return floorDiv(us, usPerSec) * usPerSec
	}
	return floorDiv(us, 1000) * 1000
}

// ---- writer dispatch ----

// writeObj writes one record of stream sid as the API serves it.
func (s *Server) writeObj(e *enc, sid int, gen uint32, ver uint16, kind uint8, created, updated int64) {
	switch sid {
	case sLeads:
		s.writeLead(e, gen, ver, created, updated)
	case sActivities:
		s.writeActivity(e, gen, ver, kind, created, updated)
	case sTasks:
		s.writeTask(e, gen, ver, kind, created, updated)
	case sUsers:
		s.writeUser(e, gen, ver, created, updated, false)
	case sCustomFields:
		s.writeCF(e, gen, ver, kind, created, updated)
	case sEvents:
		s.writeEvent(e, gen)
	case sContacts, sOpps:
		s.writeSub(e, sid, gen, ver, created, updated)
	}
}

func (s *Server) writeRec(e *enc, sid int, i int32) {
	r := &s.st[sid].recs[i]
	s.writeObj(e, sid, uint32(i), r.ver, r.kind, r.created, r.updated)
}

// ---- leads ----

func (s *Server) writeLead(e *enc, gen uint32, ver uint16, created, updated int64) {
	r := s.recRng(sLeads, gen)
	vr := s.verRng(sLeads, gen, ver)
	l := int64(gen)
	key := s.idkey(sLeads, gen)
	hd, tl := s.leadNameParts(l)
	desc := pick(&r, descriptions)
	status := (r.Intn(len(leadStatusLabels)) + int(ver)) % len(leadStatusLabels)
	creator := s.userOf(1, uint64(gen))
	updater := int64(-1)
	if ver > 0 {
		updater = s.userOf(2, vr.Next())
	} else if updated != created {
		updater = creator
	}

	e.obj()
	e.f("id")
	e.id("lead_", key, 43)
	for _, k := range []string{"name", "display_name"} {
		e.f(k)
		if tl == "" {
			e.str(hd.n)
		} else {
			e.str3(hd.n, " ", tl)
		}
	}
	e.f("description")
	if r.Intn(10) == 0 {
		e.null()
	} else {
		e.edited(desc, ver)
	}
	e.f("url")
	if r.Chance(0.4) {
		e.null()
	} else {
		e.str3("https://", hd.ascii, ".example")
	}
	e.f("html_url")
	e.pre()
	e.b = append(e.b, `"https://app.close.com/lead/`...)
	e.b = appendID(e.b, "lead_", key, 43)
	e.b = append(e.b, `/"`...)
	e.comma = true
	e.f("status_id")
	s.statusID(e, status)
	e.f("status_label")
	e.str(leadStatusLabels[status])
	e.f("organization_id")
	s.orgID(e)
	s.userField(e, "created_by", "created_by_name", creator)
	s.userField(e, "updated_by", "updated_by_name", updater)
	e.f("date_created")
	e.ts(created)
	e.f("date_updated")
	e.ts(updated)

	e.f("addresses")
	if e.want("addresses") {
		ar := s.rngFor(hAddr, uint64(gen))
		n := ar.Intn(4) / 2 // 0,0,1,1 → mostly none or one; sometimes two below
		if ar.Intn(8) == 0 {
			n = 2
		}
		e.arr()
		for k := 0; k < n; k++ {
			c := pick(&ar, cities)
			e.obj()
			e.key("label")
			e.str(pick(&ar, []string{"business", "mailing", "other"}))
			e.key("address_1")
			e.str(pick(&ar, streets))
			e.key("address_2")
			if ar.Chance(0.7) {
				e.null()
			} else {
				e.str("3. OG")
			}
			e.key("city")
			e.str(c.city)
			e.key("state")
			e.strOrNull(c.state)
			e.key("zipcode")
			e.str(c.zip)
			e.key("country")
			e.str(c.country)
			e.end()
		}
		e.endArr()
	} else {
		e.null()
	}

	e.f("contacts")
	if e.want("contacts") {
		e.arr()
		for j := 0; j < s.nContacts(l); j++ {
			if !s.subGone(sContacts, subGen(l, j)) {
				s.writeContact(e, l, j, key, ver, created, updated)
			}
		}
		e.endArr()
	} else {
		e.null()
	}

	e.f("opportunities")
	if e.want("opportunities") {
		e.arr()
		for j := 0; j < s.nOpps(l); j++ {
			if !s.subGone(sOpps, subGen(l, j)) {
				s.writeOpportunity(e, l, j, key, ver, created, updated)
			}
		}
		e.endArr()
	} else {
		e.null()
	}

	e.f("tasks")
	if e.want("tasks") {
		tr := s.rngFor(hLeadTasks, uint64(gen))
		n := 0
		if tr.Intn(4) == 0 {
			n = 1 + tr.Intn(2)
		}
		e.arr()
		for j := 0; j < n; j++ {
			s.writeLeadTask(e, &tr, l, j, created)
		}
		e.endArr()
	} else {
		e.null()
	}

	e.f("integration_links")
	e.arr()
	e.obj()
	e.key("name")
	e.str("Google Search")
	e.key("url")
	e.str("https://google.com/search?q=" + url.PathEscape(s.leadName(l)))
	e.end()
	e.endArr()

	defs := s.cfByGroup[gLead]
	e.f("custom")
	if e.want("custom") {
		e.obj()
		s.writeCustom(e, defs, uint64(gen), l, created, updated, cfByName)
		e.end()
	} else {
		e.null()
	}
	s.writeCustom(e, defs, uint64(gen), l, created, updated, cfTop)
	e.endRec()
}

// sub-object timestamps lie between the lead's creation and last update.
func subTimes(r *rng, created, updated int64) (c, u int64) {
	c = created + int64(r.Intn(900))*1000
	if c > updated {
		c = updated
	}
	u = c
	if r.Chance(0.5) && updated > c {
		u = c + floorDiv(int64(r.Float()*float64(updated-c)), 1000)*1000
	}
	return
}

func (s *Server) writeContact(e *enc, l int64, j int, leadKey uint64, ver uint16, created, updated int64) {
	r := s.subRng(sContacts, l, j)
	fn, ln := s.contactNames(l, j)
	c, u := subTimesOf(&r, ver, created, updated)
	e.obj()
	e.key("id")
	e.id("cont_", s.contactKey(l, j), 43)
	e.key("organization_id")
	s.orgID(e)
	e.key("lead_id")
	e.id("lead_", leadKey, 43)
	e.key("name")
	e.str3(fn.n, " ", ln.n)
	e.key("display_name")
	e.str3(fn.n, " ", ln.n)
	e.key("title")
	if r.Chance(0.3) {
		e.null()
	} else {
		e.str(pick(&r, []string{"Head of Operations", "Procurement Lead", "Owner", "CTO", "Geschäftsführer", "営業部長"}))
	}
	e.key("emails")
	e.arr()
	for k, n := 0, r.Intn(3); k < n; k++ {
		e.obj()
		e.key("type")
		e.str(pick(&r, []string{"office", "home", "other"}))
		e.key("email")
		e.str3(fn.ascii+"."+ln.ascii, "@", "mail"+strconv.Itoa(k)+".example")
		e.key("is_unsubscribed")
		e.boolean(r.Intn(10) == 0)
		e.end()
	}
	e.endArr()
	e.key("phones")
	e.arr()
	if r.Chance(0.6) {
		pc := pick(&r, phoneCountries)
		num := r.Next()
		e.obj()
		e.key("type")
		e.str(pick(&r, []string{"office", "mobile", "direct"}))
		e.key("phone")
		e.phone(pc, num, false)
		e.key("phone_formatted")
		e.phone(pc, num, true)
		e.key("country")
		e.str(pc.iso)
		e.end()
	}
	e.endArr()
	e.key("urls")
	e.emptyArr()
	e.key("integration_links")
	e.arr()
	e.obj()
	e.key("name")
	e.str("LinkedIn Search")
	e.key("url")
	e.str("https://www.linkedin.com/search/results/people/?keywords=" + url.PathEscape(fn.n+" "+ln.n))
	e.end()
	e.endArr()
	cr := s.userOf(3, uint64(l))
	e.key("created_by")
	s.userIDOrNull(e, cr)
	e.key("updated_by")
	if u != c {
		s.userIDOrNull(e, cr)
	} else {
		e.null()
	}
	e.key("date_created")
	e.ts(c)
	e.key("date_updated")
	e.ts(u)
	s.writeCustom(e, s.cfByGroup[gContact], uint64(l)*4+uint64(j)+1<<40, l, c, u, cfNested)
	e.end()
}

func (s *Server) userIDOrNull(e *enc, u int64) {
	switch {
	case u < 0:
		e.null()
	case int(u) < len(s.urefs):
		e.raw(s.urefs[u].id)
	default:
		e.id("user_", s.idkey(sUsers, uint32(u)), 43)
	}
}

func (s *Server) writeOpportunity(e *enc, l int64, j int, leadKey uint64, ver uint16, created, updated int64) {
	rg := s.subRng(sOpps, l, j)
	r := &rg
	c, u := subTimesOf(r, ver, created, updated)
	st := r.Intn(len(oppStatuses))
	pl := r.Intn(len(pipelines))
	value := int64(r.Intn(200)+1) * 10000
	conf := []int64{10, 25, 40, 60, 80}[r.Intn(5)]
	if oppStatuses[st].typ == "won" {
		conf = 100
	} else if oppStatuses[st].typ == "lost" {
		conf = 0
	}
	period := pick(r, []string{"one_time", "monthly", "annual"})
	user := s.userOf(4, uint64(l)*4+uint64(j))
	nc := s.nContacts(l)
	e.obj()
	e.key("id")
	e.id("oppo_", s.h(hOppKey, uint64(l)*4+uint64(j)), 43)
	e.key("organization_id")
	s.orgID(e)
	e.key("lead_id")
	e.id("lead_", leadKey, 43)
	e.key("lead_name")
	e.str(s.leadName(l))
	if nc > 0 {
		fn, ln := s.contactNames(l, 0)
		e.key("contact_id")
		e.id("cont_", s.contactKey(l, 0), 43)
		e.key("contact_name")
		e.str3(fn.n, " ", ln.n)
	} else {
		e.key("contact_id")
		e.null()
		e.key("contact_name")
		e.null()
	}
	e.key("user_id")
	s.userIDOrNull(e, user)
	e.key("user_name")
	if user < 0 {
		e.null()
	} else {
		fn, ln := s.userNames(user)
		e.str3(fn.n, " ", ln.n)
	}
	e.key("status_id")
	s.oppStatusID(e, st)
	e.key("status_label")
	e.str(oppStatuses[st].label)
	e.key("status_type")
	e.str(oppStatuses[st].typ)
	e.key("status_display_name")
	e.str(oppStatuses[st].label)
	e.key("pipeline_id")
	s.pipelineID(e, pl)
	e.key("pipeline_name")
	e.str(pipelines[pl])
	e.key("confidence")
	e.int(conf)
	annual := value
	if period == "monthly" {
		annual = value * 12
	}
	e.key("value")
	e.int(value)
	e.key("value_period")
	e.str(period)
	e.key("value_currency")
	e.str("EUR")
	e.key("value_formatted")
	e.str("€" + strconv.FormatInt(value/100, 10))
	e.key("annualized_value")
	e.int(annual)
	e.key("expected_value")
	e.int(value * conf / 100)
	e.key("annualized_expected_value")
	e.int(annual * conf / 100)
	e.key("date_won")
	if oppStatuses[st].typ == "won" {
		e.date(u)
	} else {
		e.null()
	}
	e.key("date_lost")
	if oppStatuses[st].typ == "lost" {
		e.ts(u)
	} else {
		e.null()
	}
	e.key("note")
	e.str(pick(r, notes))
	e.key("attachments")
	e.emptyArr()
	e.key("integration_links")
	e.emptyArr()
	s.userField2(e, "created_by", "created_by_name", user)
	s.userField2(e, "updated_by", "updated_by_name", user)
	e.key("date_created")
	e.ts(c)
	e.key("date_updated")
	e.ts(u)
	s.writeCustom(e, s.cfByGroup[gOpportunity], uint64(l)*4+uint64(j)+2<<40, l, c, u, cfNested)
	e.end()
}

// userField2 is userField for nested objects (no _fields filtering).
func (s *Server) userField2(e *enc, idKey, nameKey string, u int64) {
	e.key(idKey)
	s.userIDOrNull(e, u)
	e.key(nameKey)
	if u < 0 {
		e.null()
		return
	}
	fn, ln := s.userNames(u)
	e.str3(fn.n, " ", ln.n)
}

func (s *Server) writeLeadTask(e *enc, r *rng, l int64, j int, created int64) {
	c := created + int64(r.Intn(3600))*1000
	assignee := s.userOf(5, uint64(l)*4+uint64(j))
	complete := r.Chance(0.3)
	due := (floorDiv(c, usPerDay) + int64(r.Intn(14))) * usPerDay
	e.obj()
	e.key("id")
	e.id("task_", s.h(hLeadTaskKey, uint64(l)*4+uint64(j)), 43)
	e.key("_type")
	e.str("lead")
	e.key("organization_id")
	s.orgID(e)
	e.key("lead_id")
	s.leadIDVal(e, l)
	e.key("lead_name")
	e.str(s.leadName(l))
	e.key("contact_id")
	e.null()
	e.key("contact_name")
	e.null()
	s.userField2(e, "assigned_to", "assigned_to_name", assignee)
	e.key("text")
	e.str(pick(r, taskTexts))
	e.key("date")
	e.date(due)
	e.key("due_date")
	e.date(due)
	e.key("is_dateless")
	e.null()
	e.key("is_complete")
	e.boolean(complete)
	e.key("view")
	if complete {
		e.str("archive")
	} else if due >= s.epoch {
		e.str("future")
	} else {
		e.str("inbox")
	}
	e.key("object_type")
	e.null()
	e.key("object_id")
	e.null()
	e.key("is_primary_lead_notification")
	e.boolean(j == 0)
	e.key("deduplication_key")
	e.null()
	s.userField2(e, "created_by", "created_by_name", assignee)
	e.key("updated_by")
	e.null()
	e.key("updated_by_name")
	e.null()
	e.key("date_created")
	e.ts(c)
	e.key("date_updated")
	e.ts(c)
	e.end()
}

// ---- users ----

func (s *Server) writeUser(e *enc, gen uint32, ver uint16, created, updated int64, me bool) {
	r := s.recRng(sUsers, gen)
	fn, ln := s.userNames(int64(gen))
	e.obj()
	e.f("id")
	e.id("user_", s.idkey(sUsers, gen), 43)
	e.f("email")
	s.userEmail(e, int64(gen))
	e.f("first_name")
	e.str(fn.n)
	e.f("last_name")
	e.str(ln.n)
	e.f("image")
	e.pre()
	e.b = append(e.b, `"https://secure.gravatar.com/avatar/`...)
	e.b = strconv.AppendUint(e.b, r.Next(), 16)
	e.b = append(e.b, '"')
	e.comma = true
	e.f("organizations")
	e.arr()
	s.orgID(e)
	e.endArr()
	e.f("date_created")
	e.ts(created)
	e.f("date_updated")
	e.ts(updated)
	e.f("email_verified_at")
	if r.Chance(0.3) {
		e.null()
	} else {
		e.ts(created + int64(r.Intn(600000))*1000)
	}
	e.f("google_profile_image_url")
	if r.Chance(0.6) {
		e.null()
	} else {
		e.str("https://lh3.googleusercontent.com/a/" + makeID("", r.Next(), 20) + "=s96-c")
	}
	e.f("last_used_timezone")
	e.strOrNull(timezones[(r.Intn(len(timezones))+int(ver))%len(timezones)])
	if me {
		e.f("email_accounts")
		e.emptyArr()
		e.f("memberships")
		e.arr()
		e.obj()
		e.key("organization_id")
		s.orgID(e)
		e.key("role_id")
		e.str("admin")
		e.end()
		e.endArr()
	}
	e.endRec()
}

// ---- custom fields ----

func (s *Server) writeCF(e *enc, gen uint32, ver uint16, group uint8, created, updated int64) {
	d := s.cfDefOf(gen, group)
	r := s.recRng(sCustomFields, gen)
	creator := s.userOf(6, uint64(gen))
	e.obj()
	e.f("id")
	e.str(d.id)
	e.f("name")
	e.str(d.name)
	e.f("description")
	if (r.Chance(0.3) || d.added) && ver == 0 {
		e.null()
	} else {
		e.edited(pick(&r, []string{"Primary industry of the account", "1-10, filled in after the discovery call", "Wer entscheidet?", "内部メモ"}), ver)
	}
	e.f("type")
	e.str(d.typ)
	e.f("choices")
	if d.choices == nil {
		e.null()
	} else {
		e.arr()
		for _, c := range d.choices {
			e.str(c)
		}
		e.endArr()
	}
	e.f("accepts_multiple_values")
	e.boolean(d.multi)
	e.f("is_shared")
	e.boolean(d.group == gShared)
	e.f("editable_with_roles")
	if r.Chance(0.2) {
		e.arr()
		e.str("admin")
		e.endArr()
	} else {
		e.emptyArr()
	}
	e.f("referenced_custom_type_id")
	e.null()
	e.f("back_reference_is_visible")
	e.null()
	if r.Chance(0.5) { // newer accounts return these too
		e.f("always_visible")
		e.boolean(r.Chance(0.2))
		e.f("enrichment_enabled")
		e.boolean(false)
		e.f("enrichment_options")
		e.null()
	}
	switch d.group {
	case gActivity:
		e.f("custom_activity_type_id")
		s.customActTypeID(e, gen%numCustomActTypes)
		e.f("required")
		e.boolean(r.Chance(0.3))
	case gCustomObject:
		e.f("custom_object_type_id")
		e.id("cotype_", s.h(hMisc+1, uint64(gen)%2), 22)
		e.f("required")
		e.boolean(r.Chance(0.3))
	case gShared:
		e.f("associations")
		e.arr()
		for _, o := range cfObjects {
			if d.assoc&o.bit == 0 {
				continue
			}
			e.obj()
			e.key("object_type")
			e.str(o.assocType)
			if o.bit == oActivity {
				e.key("custom_activity_type_id")
				s.customActTypeID(e, gen%numCustomActTypes)
			}
			e.key("editable_with_roles")
			e.emptyArr()
			e.key("required")
			e.boolean(false)
			e.end()
		}
		e.endArr()
	}
	e.f("created_by")
	s.userIDOrNull(e, creator)
	e.f("updated_by")
	if ver > 0 || updated != created {
		s.userIDOrNull(e, creator)
	} else {
		e.null()
	}
	e.f("organization_id")
	s.orgID(e)
	e.f("date_created")
	e.ts(created)
	e.f("date_updated")
	e.ts(updated)
	e.endRec()
}

// ---- tasks ----

func (s *Server) writeTask(e *enc, gen uint32, ver uint16, kind uint8, created, updated int64) {
	r := s.recRng(sTasks, gen)
	vr := s.verRng(sTasks, gen, ver)
	l := s.leadOf(sTasks, gen)
	tt := taskTypes[kind]
	assignee := s.userOf(7, uint64(gen))
	complete := s.taskComplete(gen, ver)
	date, dateOnly := s.taskDate(gen, created)
	e.obj()
	e.f("id")
	e.id(tt.prefix, s.idkey(sTasks, gen), 43)
	e.f("_type")
	e.str(tt.name)
	e.f("organization_id")
	s.orgID(e)
	e.f("lead_id")
	s.leadIDVal(e, l)
	e.f("lead_name")
	e.strOrNull(s.leadName(l))
	nc := 0
	if l >= 0 {
		nc = s.nContacts(l)
	}
	cj := r.Intn(nc + 1)
	if cj < nc {
		fn, ln := s.contactNames(l, cj)
		e.f("contact_id")
		e.id("cont_", s.contactKey(l, cj), 43)
		e.f("contact_name")
		e.str3(fn.n, " ", ln.n)
	} else {
		e.f("contact_id")
		e.null()
		e.f("contact_name")
		e.null()
	}
	s.userField(e, "assigned_to", "assigned_to_name", assignee)
	e.f("text")
	if kind == tLead || kind == tOutgoingCall {
		e.edited(pick(&r, taskTexts), ver)
	} else {
		e.null()
	}
	for _, k := range []string{"date", "due_date"} {
		e.f(k)
		if dateOnly {
			e.date(date)
		} else {
			e.ts(date)
		}
	}
	if kind == tLead || kind == tOutgoingCall {
		e.f("is_dateless")
		if r.Chance(0.5) {
			e.null()
		} else {
			e.boolean(false)
		}
	}
	e.f("is_complete")
	e.boolean(complete)
	e.f("view")
	switch {
	case complete:
		e.str("archive")
	case date >= s.epoch:
		e.str("future")
	default:
		e.str("inbox")
	}
	e.f("object_type")
	switch kind {
	case tEmailFollowup, tIncomingEmail:
		e.str("emailthread")
	case tOppDue:
		e.str("opportunity")
	case tMissedCall, tVoicemail, tAnsweredDetached:
		e.str("call")
	case tIncomingSMS:
		e.str("sms")
	default:
		if complete {
			e.str("taskcompleted")
		} else {
			e.null()
		}
	}
	e.f("object_id")
	if kind == tLead && !complete {
		e.null()
	} else {
		e.id("acti_", r.Next(), 43)
	}
	e.f("is_primary_lead_notification")
	e.boolean(r.Chance(0.5))
	e.f("deduplication_key")
	e.null()
	if kind == tLead || kind == tOutgoingCall {
		e.f("priority")
		switch r.Intn(3) {
		case 0:
			e.null()
		case 1:
			e.str("high")
		default:
			e.str("medium")
		}
	}
	switch kind {
	case tEmailFollowup, tIncomingEmail:
		e.f("email_id")
		e.id("acti_", r.Next(), 43)
		e.f("subject")
		e.str(pick(&r, subjects))
		e.f("body_preview")
		e.str(pick(&r, notes))
		e.f("total_emails_count_in_thread")
		e.int(int64(1 + r.Intn(4)))
		if kind == tEmailFollowup {
			e.f("cleared_followups")
			e.emptyArr()
		}
	case tMissedCall, tVoicemail, tAnsweredDetached, tIncomingSMS:
		pc := pick(&r, phoneCountries)
		num := r.Next()
		e.f("phone")
		e.phone(pc, num, false)
		e.f("phone_formatted")
		e.phone(pc, num, true)
		e.f("local_phone")
		e.phone(pc, num>>7, false)
		e.f("remote_phone")
		e.phone(pc, num, false)
		e.f("remote_phone_formatted")
		e.phone(pc, num, true)
		e.f("phone_number_description")
		e.null()
		e.f("remote_phone_description")
		e.strOrNull(pick(&r, []string{"", "Mobile", "Büro"}))
		e.f("recording_url")
		e.null()
		e.f("voicemail_url")
		e.null()
		e.f("voicemail_duration")
		if kind == tVoicemail {
			e.int(int64(5 + r.Intn(120)))
		} else {
			e.int(0)
		}
	case tOppDue:
		v := int64(r.Intn(500)+1) * 10000
		e.f("opportunity_value")
		e.int(v)
		e.f("opportunity_value_formatted")
		e.str("€" + strconv.FormatInt(v/100, 10))
		e.f("opportunity_value_period")
		e.str("one_time")
		e.f("opportunity_value_currency")
		e.str("EUR")
		e.f("opportunity_note")
		e.str(pick(&r, notes))
	}
	creator := assignee
	if kind != tLead && kind != tOutgoingCall {
		creator = -1
	}
	s.userField(e, "created_by", "created_by_name", creator)
	upd := int64(-1)
	if ver > 0 {
		upd = s.userOf(8, vr.Next())
	} else if updated != created {
		upd = assignee
	}
	s.userField(e, "updated_by", "updated_by_name", upd)
	e.f("date_created")
	e.ts(created)
	e.f("date_updated")
	e.ts(updated)
	e.endRec()
}

var rfc2822 = "Mon, 02 Jan 2006 15:04:05 -0700"

func appendRFC2822(b []byte, us int64) []byte {
	return time.UnixMicro(us).UTC().AppendFormat(b, rfc2822)
}
