package closesim

import "github.com/crmsync/crmsync/internal/simulator/simfault"

// Event-log records. An event points at an object (stream, gen, version);
// "data" is that object as the API returned it after the change and, for
// deletions, "previous_data" is the object as it was.

func (s *Server) objectType(sid int, kind uint8) string {
	switch sid {
	case sLeads:
		return "lead"
	case sActivities:
		return actTypes[kind].objType
	case sTasks:
		return "task." + taskTypes[kind].name
	case sUsers:
		return "membership"
	case sCustomFields:
		return cfGroups[kind].objType
	case sContacts:
		return "contact"
	case sOpps:
		return "opportunity"
	}
	return ""
}

func (s *Server) apiPath(sid int, kind uint8) string {
	switch sid {
	case sLeads:
		return "/api/v1/lead/"
	case sActivities:
		return "/api/v1/activity/" + actTypes[kind].path + "/"
	case sTasks:
		return "/api/v1/task/"
	case sUsers:
		return "/api/v1/user/"
	case sCustomFields:
		return "/api/v1/custom_field/" + cfGroups[kind].path + "/"
	case sContacts:
		return "/api/v1/contact/"
	case sOpps:
		return "/api/v1/opportunity/"
	}
	return "/api/v1/"
}

var changedFields = [numStreams + 2][]string{
	sLeads:        {"date_updated", "description", "status_id", "status_label", "updated_by"},
	sActivities:   {"date_updated", "updated_by"},
	sTasks:        {"date_updated", "is_complete", "updated_by", "view"},
	sUsers:        {"date_updated", "last_used_timezone"},
	sCustomFields: {"date_updated", "description", "updated_by"},
	sContacts:     {"date_updated"},
	sOpps:         {"date_updated"},
}

// targetCreated is the date_created of an event's object.
func (s *Server) targetCreated(ref *evRef) int64 {
	if ref.tgen >= ghostBase {
		if ref.action == actCreated {
			return ref.tupd
		}
		return ref.tprev - int64(s.h(hGhost, uint64(ref.tgen))%uint64(30*usPerDay/1000))*1000
	}
	if int(ref.tstream) >= numStreams { // a contact or opportunity: placed by its lead
		l, _ := splitSub(ref.tgen)
		r := &s.st[sLeads].recs[l]
		sr := s.subRng(int(ref.tstream), l, int(ref.tgen%4))
		c, _ := subTimesOf(&sr, r.ver, r.created, r.updated)
		return c
	}
	return s.st[ref.tstream].recs[ref.tgen].created
}

func (s *Server) writeEvent(e *enc, gen uint32) {
	ev := &s.st[sEvents].recs[gen]
	ref := &s.evRefs[gen]
	r := s.rngFor(hEvent, uint64(gen))
	ts := int(ref.tstream)
	prefix := s.idPrefix(ts, ref.tkind)
	var tkey uint64
	if ts >= numStreams {
		prefix, tkey = s.subKey(ts, ref.tgen)
	} else {
		tkey = simfault.Mix64(uint64(ref.tgen) + s.st[ts].salt)
	}
	path := s.apiPath(ts, ref.tkind)
	e.obj()
	e.f("id")
	e.id("ev_", s.idkey(sEvents, gen), 22)
	e.f("object_type")
	e.str(s.objectType(ts, ref.tkind))
	e.f("object_id")
	e.id(prefix, tkey, 43)
	e.f("lead_id")
	s.leadIDVal(e, s.leadOf(sEvents, gen))
	e.f("action")
	e.str(actionNames[ref.action])
	e.f("organization_id")
	s.orgID(e)
	e.f("user_id")
	s.userIDOrNull(e, s.userOf(12, uint64(gen)))
	e.f("api_key_id")
	if r.Chance(0.5) {
		e.null()
	} else {
		e.id("api_", s.h(hMisc+3, r.Next()%3), 22)
	}
	e.f("request_id")
	e.id("req_", s.h(hMisc+4, uint64(gen)), 22)
	e.f("date_created")
	e.tsNaive(ev.created)
	e.f("date_updated")
	e.tsNaive(ev.updated)
	e.f("changed_fields")
	if ref.action == actUpdated {
		fields := changedFields[ts]
		if ref.changed != chDefault {
			fields = cfChangedFields[ref.changed]
		}
		e.arr()
		for _, f := range fields {
			e.str(f)
		}
		e.endArr()
	} else {
		e.emptyArr()
	}
	e.f("meta")
	e.obj()
	e.key("request_path")
	e.pre()
	e.b = append(e.b, '"')
	e.b = append(e.b, path...)
	if ref.action != actCreated {
		e.b = appendID(e.b, prefix, tkey, 43)
		e.b = append(e.b, '/')
	}
	e.b = append(e.b, '"')
	e.comma = true
	e.key("request_method")
	e.str([...]string{"POST", "PUT", "DELETE", "POST"}[ref.action])
	if ref.action == actMerged {
		e.key("merge_source_lead_id")
		e.str(s.recID(sLeads, ref.msrc, 0))
		e.key("merge_destination_lead_id")
		e.str(s.recID(sLeads, ref.tgen, 0))
	}
	e.end()

	created := s.targetCreated(ref)
	sel := e.sel // nested objects are written whole: no selection inside
	e.f("data")
	if ref.action == actDeleted {
		e.null()
	} else {
		e.sel = nil
		s.writeObj(e, ts, ref.tgen, ref.tver, ref.tkind, created, ref.tupd)
		e.sel = sel
	}
	e.f("previous_data")
	switch ref.action {
	case actCreated, actMerged:
		e.emptyObj()
	case actUpdated:
		e.obj()
		e.key("date_updated")
		e.ts(ref.tprev)
		e.end()
	default:
		e.sel = nil
		s.writeObj(e, ts, ref.tgen, ref.tver, ref.tkind, created, ref.tprev)
		e.sel = sel
	}
	e.endRec()
}
