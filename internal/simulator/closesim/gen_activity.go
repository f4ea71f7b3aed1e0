package closesim

import (
	"strconv"

	"github.com/crmsync/crmsync/internal/simulator/jsonenc"
)

// writeActivity writes one activity with the common fields and the fields
// of its _type (see close/activities.json).
func (s *Server) writeActivity(e *enc, gen uint32, ver uint16, kind uint8, created, updated int64) {
	r := s.recRng(sActivities, gen)
	vr := s.verRng(sActivities, gen, ver)
	l := s.leadOf(sActivities, gen)
	nc := 0
	if l >= 0 {
		nc = s.nContacts(l)
	}
	cj := r.Intn(nc + 1) // == nc: no contact
	if kind == aNote || kind == aMeeting || kind == aLeadStatus || kind == aOppStatus || kind == aTaskCompleted || kind == aCreated {
		cj = nc
	}
	user := s.userOf(9, uint64(gen))
	creator, updater := user, user
	if kind == aMeeting && r.Chance(0.5) { // synced from a calendar: no author
		creator, updater = -1, -1
	}
	if ver > 0 {
		// another user edits it, so even types without editable text change
		updater = s.userOf(10, vr.Next())
		if updater == user && s.n0[sUsers] > 1 {
			updater = (updater + 1) % int64(s.n0[sUsers])
		}
	}
	at := s.actType(kind)

	e.obj()
	e.f("id")
	e.id("acti_", s.idkey(sActivities, gen), 43)
	e.f("_type")
	e.str(at.name)
	e.f("organization_id")
	s.orgID(e)
	e.f("lead_id")
	s.leadIDVal(e, l)
	e.f("contact_id")
	if cj < nc {
		e.id("cont_", s.contactKey(l, cj), 43)
	} else {
		e.null()
	}
	s.userField(e, "user_id", "user_name", user)
	e.f("users")
	if kind == aMeeting && user >= 0 {
		e.arr()
		s.userIDOrNull(e, user)
		s.userIDOrNull(e, s.userOf(11, uint64(gen)))
		e.endArr()
	} else {
		e.emptyArr()
	}
	s.userField(e, "created_by", "created_by_name", creator)
	s.userField(e, "updated_by", "updated_by_name", updater)
	e.f("date_created")
	e.ts(created)
	e.f("date_updated")
	e.ts(updated)
	e.f("activity_at")
	e.ts(created)

	switch kind {
	case aCall:
		s.writeCall(e, &r, ver, gen, created)
	case aEmail:
		s.writeEmail(e, &r, ver, gen, l, cj, nc, user, created)
	case aNote:
		note := pick(&r, notes)
		e.f("note")
		e.edited(note, ver)
		e.f("note_html")
		e.pre()
		e.b = append(e.b, `"<body><p>`...)
		e.b = jsonenc.AppendEscaped(e.b, note)
		e.b = append(e.b, `</p></body>"`...)
		e.comma = true
		e.f("attachments")
		e.emptyArr()
		e.f("note_mentions")
		e.emptyArr()
		e.f("pinned_at")
		if r.Intn(10) == 0 {
			e.ts(created + 60*usPerSec)
		} else {
			e.null()
		}
	case aSMS:
		pc := pick(&r, phoneCountries)
		local, remote := r.Next(), r.Next()
		e.f("direction")
		e.str(pick(&r, []string{"inbound", "outbound"}))
		e.f("status")
		e.str(pick(&r, []string{"sent", "sent", "inbox", "error", "scheduled"}))
		e.f("text")
		e.edited(pick(&r, smsTexts), ver)
		e.f("source")
		e.str("Close.io")
		e.f("local_phone")
		e.phone(pc, local, false)
		e.f("local_phone_formatted")
		e.phone(pc, local, true)
		e.f("local_country_iso")
		e.str(pc.iso)
		e.f("remote_phone")
		e.phone(pc, remote, false)
		e.f("remote_phone_formatted")
		e.phone(pc, remote, true)
		e.f("remote_country_iso")
		e.str(pc.iso)
		e.f("date_sent")
		e.ts(created + int64(r.Intn(9000))*1000)
		e.f("date_scheduled")
		e.null()
		e.f("attachments")
		e.emptyArr()
		e.f("cost")
		e.str(strconv.Itoa(1 + r.Intn(3)))
		e.f("error_message")
		e.null()
		e.f("template_id")
		e.null()
		s.nullSequence(e)
	case aMeeting:
		s.writeMeeting(e, &r, ver, gen, l, nc, user, created)
	case aLeadStatus:
		o := r.Intn(len(leadStatusLabels))
		n := (o + 1 + r.Intn(len(leadStatusLabels)-1)) % len(leadStatusLabels)
		e.f("old_status_id")
		s.statusID(e, o)
		e.f("old_status_label")
		e.str(leadStatusLabels[o])
		e.f("new_status_id")
		s.statusID(e, n)
		e.f("new_status_label")
		e.str(leadStatusLabels[n])
	case aOppStatus:
		o := r.Intn(len(oppStatuses))
		n := (o + 1) % len(oppStatuses)
		pl := r.Intn(len(pipelines))
		v := int64(r.Intn(300)+1) * 10000
		e.f("opportunity_id")
		e.id("oppo_", s.h(hOppKey, uint64(max(l, 0))*4), 43)
		for _, side := range []struct {
			p string
			i int
		}{{"old_", o}, {"new_", n}} {
			e.f(side.p + "status_id")
			s.oppStatusID(e, side.i)
			e.f(side.p + "status_label")
			e.str(oppStatuses[side.i].label)
			e.f(side.p + "status_type")
			e.str(oppStatuses[side.i].typ)
		}
		e.f("old_pipeline_id")
		s.pipelineID(e, pl)
		e.f("old_pipeline_name")
		e.str(pipelines[pl])
		e.f("new_pipeline_id")
		s.pipelineID(e, pl)
		e.f("new_pipeline_name")
		e.str(pipelines[pl])
		e.f("opportunity_value")
		e.int(v)
		e.f("opportunity_value_currency")
		e.str("EUR")
		e.f("opportunity_value_formatted")
		e.str("€" + strconv.FormatInt(v/100, 10))
		e.f("opportunity_value_period")
		e.str(pick(&r, []string{"one_time", "monthly", "annual"}))
		e.f("opportunity_confidence")
		e.int(int64(r.Intn(101)))
		e.f("opportunity_date_won")
		if oppStatuses[n].typ == "won" {
			e.date(created)
		} else {
			e.null()
		}
	case aTaskCompleted:
		e.f("task_id")
		e.id("task_", r.Next(), 43)
		e.f("task_text")
		e.str(pick(&r, taskTexts))
		s.userField(e, "task_assigned_to", "task_assigned_to_name", user)
	case aCustom:
		t := uint32(s.h(hCustomAct, uint64(gen)) % numCustomActTypes)
		e.f("custom_activity_type_id")
		s.customActTypeID(e, t)
		e.f("status")
		if r.Intn(10) == 0 {
			e.str("draft")
		} else {
			e.str("published")
		}
		// Activities are read by date_created only, so an activity field added later shows
		// on the activities created since.
		s.writeCustom(e, s.cfByAct[t], uint64(gen)+3<<40, l, created, created, cfTop)
	case aCreated:
		e.f("source")
		src := pick(&r, []string{"ui", "api", "import"})
		e.str(src)
		e.f("import_id")
		if src == "import" {
			e.id("import_", r.Next(), 43)
		} else {
			e.null()
		}
	}
	e.endRec()
}

func (s *Server) actType(kind uint8) actType { return actTypes[kind] }

// customActTypeID writes the id of custom activity type t.
func (s *Server) customActTypeID(e *enc, t uint32) { e.id("actitype_", s.h(hMisc, uint64(t)), 22) }

func (s *Server) nullSequence(e *enc) {
	for _, k := range []string{"sequence_id", "sequence_name", "sequence_subscription_id"} {
		e.f(k)
		e.null()
	}
}

func (s *Server) writeCall(e *enc, r *rng, ver uint16, gen uint32, created int64) {
	pc := pick(r, phoneCountries)
	local, remote := r.Next(), r.Next()
	status := pick(r, []string{"completed", "completed", "completed", "no-answer", "busy", "failed", "cancel"})
	answered := status == "completed"
	dur := int64(0)
	if answered {
		dur = int64(5 + r.Intn(1800))
	}
	note := pick(r, notes)
	rec := answered && r.Chance(0.5)
	e.f("direction")
	e.str(pick(r, []string{"inbound", "outbound"}))
	e.f("status")
	e.str(status)
	e.f("disposition")
	switch {
	case answered:
		e.str("answered")
	case status == "no-answer" && r.Chance(0.5):
		e.str("vm-left")
	default:
		e.null()
	}
	e.f("duration")
	e.int(dur)
	e.f("call_method")
	e.str(pick(r, []string{"regular", "regular", "predictive_dialer", "power_dialer"}))
	e.f("source")
	e.str(pick(r, []string{"Close.io", "Close.io", "External"}))
	e.f("phone")
	e.phone(pc, remote, false)
	e.f("local_phone")
	e.phone(pc, local, false)
	e.f("local_phone_formatted")
	e.phone(pc, local, true)
	e.f("local_country_iso")
	e.str(pc.iso)
	e.f("remote_phone")
	e.phone(pc, remote, false)
	e.f("remote_phone_formatted")
	e.phone(pc, remote, true)
	e.f("remote_country_iso")
	e.str(pc.iso)
	e.f("date_answered")
	if answered {
		e.ts(created + int64(r.Intn(20000))*1000)
	} else {
		e.null()
	}
	e.f("note")
	e.edited(note, ver)
	e.f("note_html")
	e.pre()
	e.b = append(e.b, `"<body><p>`...)
	e.b = jsonenc.AppendEscaped(e.b, note)
	e.b = append(e.b, `</p></body>"`...)
	e.comma = true
	e.f("has_recording")
	e.boolean(rec)
	e.f("recording_url")
	if rec {
		e.pre()
		e.b = append(e.b, `"https://api.close.com/call/`...)
		e.b = appendID(e.b, "acti_", s.idkey(sActivities, gen), 43)
		e.b = append(e.b, `/recording/"`...)
		e.comma = true
	} else {
		e.null()
	}
	e.f("recording_duration")
	if rec {
		e.int(max(dur-4, 1))
	} else {
		e.null()
	}
	e.f("recording_expires_at")
	e.null()
	e.f("voicemail_url")
	e.null()
	e.f("voicemail_duration")
	e.int(0)
	e.f("is_forwarded")
	e.boolean(false)
	e.f("forwarded_to")
	e.null()
	e.f("is_joinable")
	e.boolean(false)
	e.f("is_to_group_number")
	e.boolean(r.Intn(10) == 0)
	for _, k := range []string{"transferred_from", "transferred_to", "transferred_from_user_id", "transferred_to_user_id"} {
		e.f(k)
		e.null()
	}
	e.f("coach_legs")
	e.emptyArr()
	e.f("cost")
	if r.Chance(0.3) {
		e.null()
	} else {
		e.str(strconv.Itoa(r.Intn(12)))
	}
	e.f("dialer_id")
	e.null()
	e.f("dialer_saved_search_id")
	e.null()
	s.nullSequence(e)
	e.f("outcome_id")
	e.null()
}

func (s *Server) writeEmail(e *enc, r *rng, ver uint16, gen uint32, l int64, cj, nc int, user int64, created int64) {
	incoming := r.Chance(0.35)
	subject := pick(r, subjects)
	note := pick(r, notes)
	status := "sent"
	if incoming {
		status = "inbox"
	} else if v := r.Intn(20); v == 0 {
		status = "draft"
	} else if v == 1 {
		status = "error"
	}
	var cf, cl name2
	hasContact := nc > 0
	if hasContact {
		cf, cl = s.contactNames(l, min(cj, nc-1))
	} else {
		cf, cl = name2{"Unknown", "unknown"}, name2{"Sender", "sender"}
	}
	var uf, ul name2
	if user >= 0 {
		uf, ul = s.userNames(user)
	} else {
		uf, ul = name2{"Sales", "sales"}, name2{"Team", "team"}
	}
	threadKey := r.Next()
	msgNum := r.Next() % 1_000_000_000_000
	sent := created + int64(r.Intn(5000))*1000

	// writes "Name <addr>" or just the address
	addr := func(fn, ln name2, dom string) {
		e.b = jsonenc.AppendEscaped(e.b, fn.ascii)
		e.b = append(e.b, '.')
		e.b = jsonenc.AppendEscaped(e.b, ln.ascii)
		e.b = append(e.b, '@')
		e.b = append(e.b, dom...)
	}
	contactDom, userDom := "customer.example", "northwind-robotics.example"
	fromF, fromL, fromD, toF, toL, toD := uf, ul, userDom, cf, cl, contactDom
	if incoming {
		fromF, fromL, fromD, toF, toL, toD = cf, cl, contactDom, uf, ul, userDom
	}
	person := func(fn, ln name2, dom string) {
		e.obj()
		e.key("name")
		e.str3(fn.n, " ", ln.n)
		e.key("email")
		e.pre()
		e.b = append(e.b, '"')
		addr(fn, ln, dom)
		e.b = append(e.b, '"')
		e.comma = true
		e.end()
	}
	body := func(html bool) {
		e.pre()
		e.b = append(e.b, '"')
		br := "\n"
		if html {
			e.b = append(e.b, "<div>"...)
			br = "<br>"
		}
		e.b = append(e.b, "Hi "...)
		e.b = jsonenc.AppendEscaped(e.b, toF.n)
		e.b = append(e.b, ","...)
		e.b = jsonenc.AppendEscaped(e.b, br+br)
		e.b = jsonenc.AppendEscaped(e.b, note)
		e.b = jsonenc.AppendEscaped(e.b, br+br+"Best,"+br)
		e.b = jsonenc.AppendEscaped(e.b, fromF.n)
		if html {
			e.b = append(e.b, "</div>"...)
		}
		e.b = append(e.b, '"')
		e.comma = true
	}
	msgID := func() {
		e.pre()
		e.b = append(e.b, `"<`...)
		e.b = strconv.AppendUint(e.b, msgNum, 10)
		e.b = append(e.b, ".4411."...)
		e.b = strconv.AppendUint(e.b, uint64(gen), 10)
		e.b = append(e.b, "@mail.example>\""...)
		e.comma = true
	}

	e.f("direction")
	if incoming {
		e.str("incoming")
	} else {
		e.str("outgoing")
	}
	e.f("status")
	e.str(status)
	e.f("subject")
	e.str(subject)
	e.f("sender")
	e.pre()
	e.b = append(e.b, '"')
	e.b = jsonenc.AppendEscaped(e.b, fromF.n+" "+fromL.n)
	e.b = append(e.b, " <"...)
	addr(fromF, fromL, fromD)
	e.b = append(e.b, `>"`...)
	e.comma = true
	e.f("to")
	e.arr()
	e.pre()
	e.b = append(e.b, '"')
	addr(toF, toL, toD)
	e.b = append(e.b, '"')
	e.comma = true
	e.endArr()
	e.f("cc")
	e.emptyArr()
	e.f("bcc")
	e.emptyArr()
	e.f("body_text")
	if ver > 0 {
		e.edited(note, ver)
	} else {
		body(false)
	}
	e.f("body_html")
	body(true)
	e.f("body_preview")
	e.str(note)
	e.f("body_text_quoted")
	e.arr()
	e.obj()
	e.key("expand")
	e.boolean(true)
	e.key("text")
	body(false)
	e.end()
	e.endArr()
	e.f("body_html_quoted")
	e.arr()
	e.obj()
	e.key("expand")
	e.boolean(true)
	e.key("html")
	body(true)
	e.end()
	e.endArr()
	e.f("attachments")
	if r.Intn(4) == 0 {
		e.arr()
		e.obj()
		e.key("filename")
		e.str(pick(r, []string{"pilot-pricing-v2.pdf", "Angebot_Q3.pdf", "見積書.xlsx", "photo 📷.jpg"}))
		e.key("content_type")
		e.str("application/pdf")
		e.key("size")
		e.int(int64(1000 + r.Intn(5_000_000)))
		e.key("url")
		e.pre()
		e.b = append(e.b, `"https://app.close.com/go/email/attachment/`...)
		e.b = strconv.AppendUint(e.b, uint64(gen), 10)
		e.b = append(e.b, `/"`...)
		e.comma = true
		e.key("thumbnail_url")
		e.null()
		e.end()
		e.endArr()
	} else {
		e.emptyArr()
	}
	e.f("envelope")
	e.obj()
	e.key("from")
	e.arr()
	person(fromF, fromL, fromD)
	e.endArr()
	e.key("sender")
	e.arr()
	person(fromF, fromL, fromD)
	e.endArr()
	e.key("to")
	e.arr()
	person(toF, toL, toD)
	e.endArr()
	e.key("cc")
	e.emptyArr()
	e.key("bcc")
	e.emptyArr()
	e.key("reply_to")
	e.emptyArr()
	e.key("date")
	e.pre()
	e.b = append(e.b, '"')
	e.b = appendRFC2822(e.b, sent)
	e.b = append(e.b, '"')
	e.comma = true
	e.key("subject")
	e.str(subject)
	e.key("message_id")
	msgID()
	e.key("in_reply_to")
	e.null()
	e.key("is_autoreply")
	e.boolean(false)
	e.end()
	e.f("message_ids")
	e.arr()
	msgID()
	e.endArr()
	e.f("references")
	e.emptyArr()
	e.f("thread_id")
	e.id("acti_", threadKey, 43)
	e.f("in_reply_to_id")
	e.null()
	e.f("email_account_id")
	e.id("emailacct_", s.h(hMisc+2, uint64(max(user, 0))), 43)
	e.f("template_id")
	e.null()
	e.f("template_name")
	e.null()
	opened := !incoming && status == "sent" && r.Chance(0.5)
	e.f("opens")
	if opened {
		e.arr()
		e.obj()
		e.key("opened_by")
		e.pre()
		e.b = append(e.b, '"')
		addr(toF, toL, toD)
		e.b = append(e.b, '"')
		e.comma = true
		e.key("opened_at")
		e.ts(sent + int64(r.Intn(7200000))*1000)
		e.key("ip_address")
		e.str("203.0.113.24")
		e.key("user_agent")
		e.str("Mozilla/5.0")
		e.end()
		e.endArr()
	} else {
		e.emptyArr()
	}
	e.f("opens_summary")
	if opened {
		e.str3("Opened 1 time by ", toF.n+" ", toL.n)
	} else {
		e.null()
	}
	e.f("has_reply")
	e.boolean(r.Chance(0.2))
	e.f("need_smtp_credentials")
	e.boolean(false)
	e.f("send_attempts")
	e.emptyArr()
	e.f("date_sent")
	if status == "sent" {
		e.ts(sent)
	} else {
		e.null()
	}
	e.f("date_scheduled")
	e.null()
	e.f("send_as_id")
	e.null()
	e.f("bulk_email_action_id")
	e.null()
	s.nullSequence(e)
	e.f("followup_sequence_id")
	e.null()
	e.f("followup_sequence_delay")
	e.null()
	e.f("followup_sequence_add_cc_bcc")
	e.boolean(false)
}

func (s *Server) writeMeeting(e *enc, r *rng, ver uint16, gen uint32, l int64, nc int, user int64, created int64) {
	dur := int64(15*(1+r.Intn(8))) * 60
	title := pick(r, subjects)
	e.f("title")
	e.str(title)
	e.f("status")
	e.str(pick(r, []string{"completed", "completed", "upcoming", "canceled"}))
	e.f("source")
	e.str(pick(r, []string{"calendar", "manual"}))
	e.f("location")
	e.strOrNull(pick(r, []string{"Google Meet", "Zoom", "", "Büro Hamburg"}))
	e.f("starts_at")
	e.ts(created)
	e.f("ends_at")
	e.ts(created + dur*usPerSec)
	e.f("duration")
	e.int(dur)
	e.f("actual_duration")
	e.null()
	e.f("is_recurring")
	e.boolean(r.Intn(8) == 0)
	e.f("calendar_event_uids")
	e.arr()
	e.pre()
	e.b = append(e.b, '"')
	e.b = strconv.AppendUint(e.b, r.Next(), 36)
	e.b = append(e.b, '"')
	e.comma = true
	e.endArr()
	e.f("calendar_event_link")
	e.null()
	e.f("connected_account_id")
	e.id("emailacct_", s.h(hMisc+2, uint64(max(user, 0))), 43)
	for _, k := range []string{"conference_links", "integrations", "attached_call_ids"} {
		e.f(k)
		e.emptyArr()
	}
	e.f("note")
	e.str("")
	e.f("user_note")
	if ver > 0 {
		e.edited(pick(r, notes), ver)
	} else {
		e.null()
	}
	e.f("user_note_html")
	e.null()
	e.f("user_note_mentions")
	e.emptyArr()
	e.f("attendees")
	e.arr()
	if nc > 0 {
		fn, ln := s.contactNames(l, 0)
		e.obj()
		e.key("name")
		e.str3(fn.n, " ", ln.n)
		e.key("email")
		e.str3(fn.ascii+"."+ln.ascii, "@", "customer.example")
		e.key("contact_id")
		e.id("cont_", s.contactKey(l, 0), 43)
		e.key("user_id")
		e.null()
		e.key("status")
		e.str(pick(r, []string{"yes", "no", "maybe", "noreply"}))
		e.key("is_organizer")
		e.boolean(false)
		e.end()
	}
	if user >= 0 {
		fn, ln := s.userNames(user)
		e.obj()
		e.key("name")
		e.str3(fn.n, " ", ln.n)
		e.key("email")
		s.userEmail(e, user)
		e.key("contact_id")
		e.null()
		e.key("user_id")
		s.userIDOrNull(e, user)
		e.key("status")
		e.str("yes")
		e.key("is_organizer")
		e.boolean(true)
		e.end()
	}
	e.endArr()
}
