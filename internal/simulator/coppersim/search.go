package coppersim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"slices"
	"sort"
	"strconv"
)

// POST /<entity>/search: body parsing, validation, filtering, paging.

type searchParams struct {
	page, size int
	sortBy     string
	desc       bool
	ids        []int64

	minMod, maxMod, minCreated, maxCreated int64 // math.MinInt64/MaxInt64 when absent
	includeConverted                       bool
	statusIDs, sourceIDs                   []int64 // leads
	oppStatuses                            []string
	pipelineIDs, stageIDs                  []int64 // opportunities
	taskStatuses                           []string

	// activities
	minAct, maxAct int64
	parent         *struct {
		ID   int64  `json:"id"`
		Type string `json:"type"`
	}
	actTypes []struct {
		ID       int64  `json:"id"`
		Category string `json:"category"`
	}
	userIDs []int64
}

type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func invalid(format string, a ...any) *apiError {
	return &apiError{422, "Invalid input: " + fmt.Sprintf(format, a...)}
}

var commonKeys = []string{"page_number", "page_size", "sort_by", "sort_direction", "ids",
	"minimum_created_date", "maximum_created_date", "minimum_modified_date", "maximum_modified_date"}

// allowedKeys per entity. Anything else is answered 422, as third-party
// clients report for unknown attributes.
var allowedKeys = [numEntities][]string{
	entPeople:        commonKeys,
	entCompanies:     commonKeys,
	entLeads:         append(slices.Clone(commonKeys), "include_converted_leads", "status_ids", "customer_source_ids"),
	entOpportunities: append(slices.Clone(commonKeys), "status_ids", "pipeline_ids", "pipeline_stage_ids"),
	entProjects:      commonKeys,
	entTasks:         append(slices.Clone(commonKeys), "statuses"),
	entActivities: {"page_number", "page_size", "sort_by", "sort_direction", "parent", "activity_types",
		"user_ids", "minimum_activity_date", "maximum_activity_date", "full_result"},
	entUsers: {"page_number", "page_size"},
}

// documentedUnsupported are real Copper search parameters this simulator
// does not implement; they get a 422 that says so rather than being ignored.
var documentedUnsupported = []string{"tags", "assignee_ids", "followed", "age", "city", "state",
	"postal_code", "country", "minimum_interaction_date", "maximum_interaction_date",
	"minimum_interaction_count", "maximum_interaction_count", "custom_fields", "fields",
	"loss_reason_ids", "primary_contact_ids", "minimum_close_date", "maximum_close_date",
	"project_ids", "opportunity_ids", "minimum_due_date", "maximum_due_date", "contact_type_ids",
	"name", "emails", "phone_number", "socials", "company_ids", "minimum_value", "maximum_value"}

var oppStatusByID = map[int64]string{0: "Open", 1: "Won", 2: "Lost", 3: "Abandoned"}

func parseInt64(key string, raw json.RawMessage) (int64, *apiError) {
	var f json.Number
	if err := json.Unmarshal(raw, &f); err != nil {
		return 0, invalid("%s must be a number", key)
	}
	if i, err := f.Int64(); err == nil {
		return i, nil
	}
	v, err := f.Float64()
	if err != nil || math.IsInf(v, 0) || v > math.MaxInt64 || v < math.MinInt64 {
		return 0, invalid("%s must be a number", key)
	}
	return int64(v), nil
}

func parseIntList(key string, raw json.RawMessage) ([]int64, *apiError) {
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, invalid("%s must be an array of integers", key)
	}
	out := make([]int64, 0, len(list))
	for _, r := range list {
		v, err := parseInt64(key, r)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// parseSearch validates a search body. Query-string page_number/page_size
// are honoured when the body lacks them (one real client sends them there).
func parseSearch(e entity, body []byte, query url.Values) (*searchParams, *apiError) {
	p := &searchParams{page: 1, size: DefaultPageSize,
		minMod: math.MinInt64, maxMod: math.MaxInt64, minCreated: math.MinInt64, maxCreated: math.MaxInt64,
		minAct: math.MinInt64, maxAct: math.MaxInt64}
	fields := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		if err := dec.Decode(&fields); err != nil || dec.More() {
			return nil, &apiError{400, "Malformed JSON body"}
		}
	}
	for _, k := range []string{"page_number", "page_size"} {
		if _, ok := fields[k]; !ok && query.Get(k) != "" {
			fields[k] = json.RawMessage(query.Get(k))
		}
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic error for several bad keys
	for _, k := range keys {
		raw := fields[k]
		if !slices.Contains(allowedKeys[e], k) {
			if slices.Contains(documentedUnsupported, k) && e != entUsers {
				return nil, invalid("search parameter %q is not implemented by the simulator", k)
			}
			return nil, invalid("unknown attribute %q", k)
		}
		if string(raw) == "null" {
			continue
		}
		var err *apiError
		switch k {
		case "page_number", "page_size":
			var v int64
			if v, err = parseInt64(k, raw); err == nil {
				if k == "page_number" {
					if v < 1 {
						return nil, invalid("page_number must be at least 1")
					}
					p.page = int(min(v, math.MaxInt32))
				} else {
					if v < 1 || v > MaxPageSize {
						return nil, invalid("page_size must be between 1 and %d", MaxPageSize)
					}
					p.size = int(v)
				}
			}
		case "sort_by":
			if json.Unmarshal(raw, &p.sortBy) != nil {
				return nil, invalid("sort_by must be a string")
			}
		case "sort_direction":
			var d string
			if json.Unmarshal(raw, &d) != nil || (d != "asc" && d != "desc") {
				return nil, invalid("sort_direction must be \"asc\" or \"desc\"")
			}
			p.desc = d == "desc"
		case "ids":
			// An empty list is no filter (like an absent one).
			if p.ids, err = parseIntList(k, raw); len(p.ids) == 0 {
				p.ids = nil
			}
		case "minimum_modified_date":
			p.minMod, err = parseInt64(k, raw)
		case "maximum_modified_date":
			p.maxMod, err = parseInt64(k, raw)
		case "minimum_created_date":
			p.minCreated, err = parseInt64(k, raw)
		case "maximum_created_date":
			p.maxCreated, err = parseInt64(k, raw)
		case "minimum_activity_date":
			p.minAct, err = parseInt64(k, raw)
		case "maximum_activity_date":
			p.maxAct, err = parseInt64(k, raw)
		case "include_converted_leads", "full_result":
			var b bool
			if json.Unmarshal(raw, &b) != nil {
				return nil, invalid("%s must be a boolean", k)
			}
			if k == "include_converted_leads" {
				p.includeConverted = b
			} // full_result: accepted, no effect (see doc.go)
		case "status_ids":
			var ids []int64
			if ids, err = parseIntList(k, raw); err == nil {
				if e == entOpportunities {
					for _, id := range ids {
						st, ok := oppStatusByID[id]
						if !ok {
							return nil, invalid("unknown opportunity status id %d", id)
						}
						p.oppStatuses = append(p.oppStatuses, st)
					}
				} else {
					p.statusIDs = ids
				}
			}
		case "customer_source_ids":
			p.sourceIDs, err = parseIntList(k, raw)
		case "pipeline_ids":
			p.pipelineIDs, err = parseIntList(k, raw)
		case "pipeline_stage_ids":
			p.stageIDs, err = parseIntList(k, raw)
		case "statuses":
			if json.Unmarshal(raw, &p.taskStatuses) != nil {
				return nil, invalid("statuses must be an array of strings")
			}
		case "user_ids":
			p.userIDs, err = parseIntList(k, raw)
		case "parent":
			if json.Unmarshal(raw, &p.parent) != nil || p.parent == nil || p.parent.Type == "" {
				return nil, invalid("parent must be {\"id\": int, \"type\": string}")
			}
		case "activity_types":
			if json.Unmarshal(raw, &p.actTypes) != nil {
				return nil, invalid("activity_types must be an array of {id, category}")
			}
		}
		if err != nil {
			return nil, err
		}
	}
	switch e {
	case entActivities, entUsers:
		p.sortBy = "" // activities: always newest first; users: id order
	default:
		if p.sortBy == "" {
			p.sortBy = defaultSort[e]
		}
		if _, ok := sortFields[e][p.sortBy]; !ok {
			return nil, invalid("sort_by %q is not one of the allowed values", p.sortBy)
		}
	}
	return p, nil
}

type cachedScan struct {
	key   string
	slots []int32
}

const maxCachedScans = 4

// predicate builds the filter for everything the chosen order does not
// already restrict. nil means "no filter".
func (s *Server) predicate(t *table, p *searchParams, narrowed indexKind) func(slot int32) bool {
	var preds []func(int32) bool
	recs := t.recs
	if narrowed != idxModified && (p.minMod != math.MinInt64 || p.maxMod != math.MaxInt64) {
		lo, hi := p.minMod, p.maxMod
		preds = append(preds, func(i int32) bool { m := recs[i].modified; return m >= lo && m <= hi })
	}
	if narrowed != idxCreated && (p.minCreated != math.MinInt64 || p.maxCreated != math.MaxInt64) {
		lo, hi := p.minCreated, p.maxCreated
		preds = append(preds, func(i int32) bool { c := recs[i].created; return c >= lo && c <= hi })
	}
	if t.e == entActivities && narrowed != idxModified && (p.minAct != math.MinInt64 || p.maxAct != math.MaxInt64) {
		lo, hi := p.minAct, p.maxAct
		preds = append(preds, func(i int32) bool { m := recs[i].modified; return m >= lo && m <= hi })
	}
	if p.ids != nil {
		set := make(map[int32]bool, len(p.ids))
		for _, id := range p.ids {
			if slot := s.slotOf(t.e, id); slot >= 0 {
				set[slot] = true
			}
		}
		preds = append(preds, func(i int32) bool { return set[i] })
	}
	switch t.e {
	case entLeads:
		if !p.includeConverted {
			preds = append(preds, func(i int32) bool { return recs[i].flags&flConverted == 0 })
		}
		if p.statusIDs != nil || p.sourceIDs != nil {
			preds = append(preds, func(i int32) bool {
				l := s.lead(i, &recs[i])
				return (p.statusIDs == nil || slices.Contains(p.statusIDs, l.status.ID)) &&
					(p.sourceIDs == nil || slices.Contains(p.sourceIDs, l.customerSource))
			})
		}
	case entOpportunities:
		if p.oppStatuses != nil || p.pipelineIDs != nil || p.stageIDs != nil {
			preds = append(preds, func(i int32) bool {
				o := s.opportunity(i, &recs[i])
				return (p.oppStatuses == nil || slices.Contains(p.oppStatuses, o.status)) &&
					(p.pipelineIDs == nil || slices.Contains(p.pipelineIDs, o.pipeline.ID)) &&
					(p.stageIDs == nil || slices.Contains(p.stageIDs, o.stage.ID))
			})
		}
	case entTasks:
		if p.taskStatuses != nil {
			preds = append(preds, func(i int32) bool { return slices.Contains(p.taskStatuses, s.task(i, &recs[i]).status) })
		}
	case entActivities:
		if p.parent != nil || p.actTypes != nil || p.userIDs != nil {
			preds = append(preds, func(i int32) bool { return s.activityMatches(i, p) })
		}
	}
	switch len(preds) {
	case 0:
		return nil
	case 1:
		return preds[0]
	}
	return func(i int32) bool {
		for _, f := range preds {
			if !f(i) {
				return false
			}
		}
		return true
	}
}

func (s *Server) activityMatches(slot int32, p *searchParams) bool {
	h := s.activityHead(slot)
	if p.parent != nil {
		if h.parent.slot < 0 || entities[h.parent.e].kind != p.parent.Type || s.idOf(h.parent.e, h.parent.slot) != p.parent.ID {
			return false
		}
	}
	if p.actTypes != nil {
		cat := "user"
		if h.system {
			cat = "system"
		}
		ok := false
		for _, at := range p.actTypes {
			if at.ID == h.typeID && (at.Category == cat || at.Category == "") {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if p.userIDs != nil && (h.user < 0 || !slices.Contains(p.userIDs, s.idOf(entUsers, h.user))) {
		return false
	}
	return true
}

// scanKey identifies a filtered scan for the cache: everything but paging.
func scanKey(p *searchParams) string {
	q := *p
	q.page, q.size, q.desc = 0, 0, false
	b, _ := json.Marshal(struct {
		A, B, C, D, E, F, G          any
		H, I, J, K, L, M, N, O, P, Q any
	}{q.sortBy, q.ids, q.minMod, q.maxMod, q.minCreated, q.maxCreated, q.includeConverted,
		q.statusIDs, q.sourceIDs, q.oppStatuses, q.pipelineIDs, q.stageIDs, q.taskStatuses,
		[]int64{q.minAct, q.maxAct}, q.parent, q.actTypes, q.userIDs})
	return string(b)
}

// runSearch returns the page's slots (in response order) and the total
// number of matches. Callers hold the server read lock.
func (s *Server) runSearch(t *table, p *searchParams) ([]int32, int) {
	var ord []int32
	var narrowed indexKind = idxLazy
	lo, hi := 0, 0
	desc := p.desc
	switch t.e {
	case entActivities: // newest first, whatever sort_by says
		ord, desc, narrowed = t.byMod, true, idxModified
		lo, hi = t.rangeIdx(ord, keyMod, p.minAct, p.maxAct)
	case entUsers:
		ord = s.order(t, "id", idOrder)
		hi = len(ord)
	default:
		f := sortFields[t.e][p.sortBy]
		ord = s.order(t, p.sortBy, f)
		hi = len(ord)
		switch f.index {
		case idxModified:
			narrowed = idxModified
			lo, hi = t.rangeIdx(ord, keyMod, p.minMod, p.maxMod)
		case idxCreated:
			narrowed = idxCreated
			lo, hi = t.rangeIdx(ord, keyCreated, p.minCreated, p.maxCreated)
		}
	}
	matches := ord[lo:hi]
	if pred := s.predicate(t, p, narrowed); pred != nil {
		matches = s.scan(t, scanKey(p), ord[lo:hi], pred)
	}
	total := len(matches)
	offset := (p.page - 1) * p.size
	if p.page-1 > math.MaxInt32/max(p.size, 1) || offset >= s.cfg.MaxResults || offset >= total {
		return nil, total
	}
	end := min(offset+p.size, s.cfg.MaxResults, total)
	out := make([]int32, 0, end-offset)
	for i := offset; i < end; i++ {
		if desc {
			out = append(out, matches[total-1-i])
		} else {
			out = append(out, matches[i])
		}
	}
	return out, total
}

// scan filters an order through pred, caching the result until the table
// next changes: paging through a filtered search then costs O(page).
func (s *Server) scan(t *table, key string, ord []int32, pred func(int32) bool) []int32 {
	t.cacheMu.Lock()
	defer t.cacheMu.Unlock()
	t.checkCacheLocked()
	for i, c := range t.results {
		if c.key == key {
			// move to front (LRU)
			copy(t.results[1:i+1], t.results[:i])
			t.results[0] = c
			return c.slots
		}
	}
	var out []int32
	for _, slot := range ord {
		if pred(slot) {
			out = append(out, slot)
		}
	}
	t.results = append([]cachedScan{{key, out}}, t.results...)
	if len(t.results) > maxCachedScans {
		t.results = t.results[:maxCachedScans]
	}
	return out
}

// appendPage writes a bare JSON array of records.
func (s *Server) appendPage(b []byte, e entity, slots []int32) []byte {
	b = append(b, '[')
	for i, slot := range slots {
		if i > 0 {
			b = append(b, ',')
		}
		if s.tabs[e].recs[slot].flags&flDeleted != 0 { // Config.DeletedActivitiesInSearch
			b = append(strconv.AppendInt(append(b, `{"id":`...), s.idOf(e, slot), 10), `,"is_deleted":true}`...)
			continue
		}
		b = s.appendRecord(b, e, slot)
	}
	return append(b, ']')
}
