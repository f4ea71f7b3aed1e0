package closesim

import (
	"encoding/base64"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/crmsync/crmsync/internal/simulator/simfault"
)

// route is one endpoint group (rate limits apply per method + group).
type route struct {
	group string
	sid   int  // stream served (for fault mutations); -1 none
	list  bool // a listing (may trigger MutateBetweenPages)
	h     func(s *Server, c *call) error
}

// call is one request being served.
type call struct {
	r    *http.Request
	q    url.Values
	seg  []string // path segments after /api/v1/
	e    *enc
	code int
}

var encPool = sync.Pool{New: func() any { return &enc{b: make([]byte, 0, 64<<10)} }}

func (s *Server) route(path string) *route {
	seg := strings.Split(strings.Trim(path, "/"), "/")
	switch seg[0] {
	case "me":
		if len(seg) == 1 {
			return &route{"/me/", -1, false, (*Server).hMe}
		}
	case "lead":
		return oneOrList(seg, "/lead/", sLeads, (*Server).hLeads)
	case "task":
		return oneOrList(seg, "/task/", sTasks, (*Server).hTasks)
	case "user":
		return oneOrList(seg, "/user/", sUsers, (*Server).hUsers)
	case "event":
		return oneOrList(seg, "/event/", sEvents, (*Server).hEvents)
	case "contact":
		return oneOrList(seg, "/contact/", -1, (*Server).hContacts)
	case "opportunity":
		return oneOrList(seg, "/opportunity/", -1, (*Server).hOpportunities)
	case "activity":
		if len(seg) == 1 {
			return &route{"/activity/", sActivities, true, (*Server).hActivities}
		}
		if strings.HasPrefix(seg[1], "acti_") && len(seg) == 2 {
			return &route{"/activity/{id}/", sActivities, false, (*Server).hActivities}
		}
		sub := strings.Join(seg[1:], "/")
		for _, at := range actTypes {
			if sub == at.path {
				return &route{"/activity/" + at.path + "/", sActivities, true, (*Server).hActivities}
			}
			if rest, ok := strings.CutPrefix(sub, at.path+"/"); ok && strings.HasPrefix(rest, "acti_") && !strings.Contains(rest, "/") {
				return &route{"/activity/" + at.path + "/{id}/", sActivities, false, (*Server).hActivities}
			}
		}
	case "custom_field", "custom_fields": // the plural is the pre-2020 path, still served
		if len(seg) >= 2 && len(seg) <= 3 {
			for _, g := range cfGroups {
				if seg[1] == g.path {
					grp := "/" + seg[0] + "/" + g.path + "/"
					if len(seg) == 3 {
						return &route{grp + "{id}/", sCustomFields, false, (*Server).hCustomFields}
					}
					return &route{grp, sCustomFields, true, (*Server).hCustomFields}
				}
			}
		}
	}
	return nil
}

// GroupKeys lists every endpoint group key accepted by
// Config.GroupRateLimits and used in Stats.ByGroup: the method ("GET" or
// "HEAD"), a space and the route pattern, e.g. "GET /lead/",
// "GET /lead/{id}/", "GET /activity/email/", "GET /custom_field/lead/".
func GroupKeys() []string {
	pats := []string{"/me/"}
	for _, p := range []string{"/lead/", "/task/", "/user/", "/event/", "/activity/", "/contact/", "/opportunity/"} {
		pats = append(pats, p, p+"{id}/")
	}
	for _, at := range actTypes {
		pats = append(pats, "/activity/"+at.path+"/", "/activity/"+at.path+"/{id}/")
	}
	for _, root := range []string{"custom_field", "custom_fields"} {
		for _, g := range cfGroups {
			pats = append(pats, "/"+root+"/"+g.path+"/", "/"+root+"/"+g.path+"/{id}/")
		}
	}
	var keys []string
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		for _, p := range pats {
			keys = append(keys, m+" "+p)
		}
	}
	return keys
}

func oneOrList(seg []string, group string, sid int, h func(*Server, *call) error) *route {
	switch len(seg) {
	case 1:
		return &route{group, sid, true, h}
	case 2:
		return &route{group + "{id}/", sid, false, h}
	}
	return nil
}

// ServeHTTP serves the Close API under /api/v1/.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	simfault.SetDate(w.Header(), s.now()) // the simulator's clock, so tests can move it
	// Counted before serving: a reset fault closes the connection before serve returns, and
	// a client must find every request it sent counted once it has its answer.
	s.stats.Update(func(st *Stats) {
		st.Requests++
		st.ByPath[r.URL.Path]++
	})
	code := s.serve(w, r)
	s.stats.Update(func(st *Stats) { st.ByStatus[code]++ })
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) int {
	simfault.Sleep(r.Context(), s.cfg.Latency)
	const prefix = "/api/v1/"
	p := r.URL.Path
	if !strings.HasPrefix(p, prefix) && p+"/" != prefix {
		return s.jsonError(w, http.StatusNotFound, "Not found.")
	}
	rest := strings.TrimPrefix(p, "/api/v1")
	if !strings.HasSuffix(rest, "/") {
		// Like the real API: the slash-less form redirects (clients always
		// send the slash; a missing one costs a round trip).
		if s.route(rest+"/") != nil {
			loc := p + "/"
			if r.URL.RawQuery != "" {
				loc += "?" + r.URL.RawQuery
			}
			w.Header().Set("Location", loc)
			return s.jsonError(w, http.StatusMovedPermanently, "Moved permanently.")
		}
		return s.jsonError(w, http.StatusNotFound, "Not found.")
	}
	if !s.authorized(r) {
		return s.jsonError(w, http.StatusUnauthorized, "The API key you provided is invalid or missing. Use HTTP Basic auth with the API key as user name and an empty password.")
	}
	rt := s.route(rest)
	if rt == nil {
		return s.jsonError(w, http.StatusNotFound, "Not found.")
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return s.jsonError(w, http.StatusMethodNotAllowed, "Method not allowed (the simulator is read-only).")
	}

	// Order: a closed group answers first (the client ignored a reset;
	// with EnforceResets), then the storms, the limiter, the random faults.
	key := r.Method + " " + rt.group
	now := s.now()
	s.stats.Update(func(st *Stats) { st.ByGroup[key]++ })
	hit := s.faults.StormHit()
	if left, closed := s.rl.ClosedFor(key, now); closed {
		s.stats.Update(func(st *Stats) {
			st.InsideReset++
			st.InsideResetByGroup[key]++
		})
		if s.cfg.EnforceResets {
			return s.tooMany(w, key, now, left.Seconds())
		}
	}
	switch hit {
	case simfault.HitTooMany:
		s.stats.Fault(simfault.KindStorm429)
		return s.tooMany(w, key, now, s.faults.Current().StormResetDuration().Seconds())
	case simfault.HitBadGateway:
		s.stats.Fault(simfault.KindStorm5xx)
		return s.serverError(w, http.StatusBadGateway)
	}

	rl := s.rl.Take(key, now)
	if rl.Limited {
		w.Header().Set("RateLimit", rateLimitHeader(rl, s.cfg.FractionalReset))
	} else {
		w.Header().Set("RateLimit", "limit=1000, remaining=1000, reset=0")
	}
	if !rl.OK {
		s.stats.Update(func(st *Stats) {
			st.RateLimited++
			st.RateLimitedByGroup[key]++
		})
		return s.tooMany(w, key, now, rl.Wait)
	}

	q := r.URL.Query()
	fd := s.faults.Draw()
	if fd.Kind != simfault.KindNone && !fd.Kind.OnAnswer() {
		s.stats.Fault(fd.Kind)
	}
	switch fd.Kind {
	case simfault.Kind429:
		return s.tooMany(w, key, now, 1)
	case simfault.Kind503RetryAfter:
		retryAfter := fd.Faults.RetryAfterDuration()
		w.Header().Set("Retry-After", strconv.Itoa(simfault.CeilSeconds(retryAfter.Seconds())))
		s.rl.Close(key, now.Add(retryAfter))
		return s.jsonError(w, http.StatusServiceUnavailable, http.StatusText(http.StatusServiceUnavailable))
	case simfault.KindStallHeaders:
		if !simfault.Wait(r, fd.Faults.StallDuration()) {
			return 0
		}
		simfault.SetDate(w.Header(), s.now())
	case simfault.Kind429NoHint:
		w.Header().Del("RateLimit")
		return s.reply(w, http.StatusTooManyRequests, nil, "")
	case simfault.Kind5xx:
		return s.serverError(w, []int{500, 502, 503, 504}[fd.Aux%4])
	case simfault.KindReset:
		simfault.ResetConn(w)
		return 0
	case simfault.KindSlow:
		if !simfault.Sleep(r.Context(), fd.Faults.SlowDelay) {
			return 0
		}
	}
	if rt.list && rt.sid >= 0 {
		s.maybeMutate(rt.sid)
	}

	c := &call{r: r, q: q, seg: strings.Split(strings.Trim(rest, "/"), "/"), e: encPool.Get().(*enc), code: 200}
	defer func() {
		if cap(c.e.b) <= 4<<20 {
			encPool.Put(c.e)
		}
	}()
	c.e.reset()
	if fs := parseFields(q.Get("_fields")); fs != nil {
		c.e.sel = fs
	}
	if err := rt.h(s, c); err != nil {
		ae, ok := err.(*apiError)
		if !ok {
			ae = &apiError{500, err.Error()}
		}
		return s.jsonError(w, ae.status, ae.msg)
	}
	body := c.e.b
	if fd.Kind.OnAnswer() {
		s.stats.Fault(fd.Kind)
	}
	switch fd.Kind {
	case simfault.KindTruncate:
		body = body[:len(body)/2]
	case simfault.KindBadJSON:
		switch fd.Aux % 3 {
		case 0:
			body = []byte(`{"data": [{"id": "lead_`)
		case 1:
			body = nil
		default:
			return s.reply(w, 200, []byte("<!DOCTYPE html><html><head><title>Error</title></head><body><h1>Something went wrong</h1></body></html>"), "text/html; charset=utf-8")
		}
	case simfault.KindStall:
		w.Header().Set("Content-Type", "application/json")
		simfault.WriteStalled(w, r, c.code, body, fd.Faults.StallDuration())
		return c.code
	}
	return s.reply(w, c.code, body, "application/json")
}

func (s *Server) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	v, ok := strings.CutPrefix(h, "Basic ")
	if !ok {
		return false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
	if err != nil {
		return false
	}
	user, _, _ := strings.Cut(string(raw), ":")
	return user == s.cfg.APIKey
}

func (s *Server) reply(w http.ResponseWriter, code int, body []byte, ctype string) int {
	if ctype != "" {
		w.Header().Set("Content-Type", ctype)
	}
	if s.cfg.ChunkedAnswers {
		w.WriteHeader(code)
		http.NewResponseController(w).Flush() // the headers go first, so the body is chunked
	} else {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(code)
	}
	w.Write(body)
	return code
}

func (s *Server) jsonError(w http.ResponseWriter, code int, msg string) int {
	var e enc
	e.obj()
	e.key("error")
	e.str(msg)
	e.end()
	return s.reply(w, code, e.b, "application/json")
}

func (s *Server) serverError(w http.ResponseWriter, code int) int {
	switch code {
	case 502, 504: // what a proxy in front of the API answers
		return s.reply(w, code, []byte("<html><body><h1>"+strconv.Itoa(code)+" "+http.StatusText(code)+"</h1></body></html>"), "text/html")
	default:
		return s.jsonError(w, code, http.StatusText(code))
	}
}

// tooMany answers 429 with RateLimit, Retry-After and the legacy body
// {"error": {"rate_reset": s, "message": ...}} (deprecated but still sent),
// and closes the group for wait seconds. Every hint is rounded up, so a
// client that honours any of them is never early.
func (s *Server) tooMany(w http.ResponseWriter, key string, now time.Time, wait float64) int {
	wait = math.Max(wait, 0.001)
	s.rl.Close(key, now.Add(simfault.Seconds(wait)))
	w.Header().Set("RateLimit", "limit="+strconv.Itoa(s.announcedLimit(key))+", remaining=0, reset="+simfault.FormatReset(wait, s.cfg.FractionalReset))
	w.Header().Set("Retry-After", strconv.Itoa(simfault.CeilSeconds(wait)))
	var e enc
	e.obj()
	e.key("error")
	e.obj()
	e.key("rate_reset")
	e.raw(strconv.FormatFloat(simfault.CeilMillis(wait), 'f', -1, 64))
	e.key("message")
	e.str("API call count exceeded for this period")
	e.end()
	e.end()
	return s.reply(w, http.StatusTooManyRequests, e.b, "application/json")
}

// ---- handlers ----

func (s *Server) hMe(c *call) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	created := s.epoch - s.span
	if st := s.st[sUsers]; len(st.recs) > 0 {
		created = st.recs[0].created
		s.writeUser(c.e, 0, st.recs[0].ver, created, st.recs[0].updated, true)
		return nil
	}
	s.writeUser(c.e, 0, 0, created, created, true)
	return nil
}

func (s *Server) getOne(c *call, sid int, id string) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	i, ok := s.lookupID(sid, id)
	if !ok {
		return &apiError{404, "Object not found: " + id}
	}
	s.writeRec(c.e, sid, i)
	return nil
}

// writePage writes {"has_more": …, ["total_results": …,] "data": [...]}.
func (s *Server) writePage(c *call, sid int, res result, skip, limit int, total bool) {
	e := c.e
	sel := e.sel
	e.sel = nil
	e.obj()
	n := res.len()
	e.key("has_more")
	e.boolean(skip+limit < n)
	if total {
		e.key("total_results")
		e.int(int64(n))
	}
	e.key("data")
	e.arr()
	e.sel = sel
	for j := skip; j < min(skip+limit, n); j++ {
		s.writeRec(e, sid, res.at(j))
	}
	e.sel = nil
	e.endArr()
	e.end()
}

func (s *Server) hLeads(c *call) error {
	if len(c.seg) == 2 {
		return s.getOne(c, sLeads, c.seg[1])
	}
	skip, limit, err := s.paging(c.q, 200, true)
	if err != nil {
		return err
	}
	qr := newQuery(sLeads)
	zone := s.cfg.QueryZone
	if h := c.r.Header.Get("X-TZ-Offset"); h != "" {
		hours, err := strconv.ParseFloat(h, 64)
		if err != nil || math.Abs(hours) > 14 {
			return badRequest("Invalid X-TZ-Offset: %q.", h)
		}
		zone = time.Duration(hours * float64(time.Hour))
	}
	qr.created, qr.updated, qr.order, qr.desc, err = parseLeadQuery(c.q.Get("query"), s.cfg.QueryExactMinute, zone)
	if err != nil {
		return err
	}
	qr.cacheable = true
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.writePage(c, sLeads, s.run(qr), skip, limit, true)
	return nil
}

func (s *Server) hActivities(c *call) error {
	last := c.seg[len(c.seg)-1]
	if strings.HasPrefix(last, "acti_") {
		return s.getOne(c, sActivities, last)
	}
	skip, limit, err := s.paging(c.q, 100, true)
	if err != nil {
		return err
	}
	if v := c.q.Get("id__in"); v != "" {
		return s.activitiesByID(c, strings.Split(v, ","), skip, limit)
	}
	qr := newQuery(sActivities)
	if qr.created, err = rangeParams(c.q, "date_created"); err != nil {
		return err
	}
	if v := c.q.Get("lead_id"); v != "" {
		qr.leadGen = -2
		if g, ok := s.leadGenOf(v); ok {
			qr.leadGen = g
		}
		// _type (and _type__in) only filter together with lead_id, as documented.
		if qr.kinds, err = kindParams(c.q, actTypeNames, ""); err != nil {
			return err
		}
	}
	if len(c.seg) > 1 { // per-type path
		sub := strings.Join(c.seg[1:], "/")
		for k, at := range actTypes {
			if at.path == sub {
				qr.kinds = 1 << k
			}
		}
	}
	switch ob := c.q.Get("_order_by"); ob {
	case "":
	case "date_created", "-date_created":
		qr.order, qr.desc = fCreated, ob[0] == '-'
	case "activity_at", "-activity_at":
		if qr.leadGen == -1 {
			return badRequest("Sorting by activity_at requires lead_id.")
		}
		qr.order, qr.desc = fCreated, ob[0] == '-' // activity_at == date_created here
	default:
		return badRequest("Invalid _order_by: %q.", ob)
	}
	qr.cacheable = true
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.writePage(c, sActivities, s.run(qr), skip, limit, false)
	return nil
}

// activitiesByID serves id__in: the live activities among ids, by date_created (ids of
// deleted or unknown activities are left out, as the API does).
func (s *Server) activitiesByID(c *call, ids []string, skip, limit int) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.st[sActivities]
	var gens []int32
	for _, id := range ids {
		if g, ok := s.lookupID(sActivities, strings.TrimSpace(id)); ok && !slices.Contains(gens, g) {
			gens = append(gens, g)
		}
	}
	s.sortIDs(st, fCreated, gens)
	s.writePage(c, sActivities, result{ids: gens}, skip, limit, false)
	return nil
}

var actTypeNames, taskTypeNames []string

func init() {
	for _, a := range actTypes {
		actTypeNames = append(actTypeNames, a.name)
	}
	for _, t := range taskTypes {
		taskTypeNames = append(taskTypeNames, t.name)
	}
}

// kindParams reads _type / _type__in; "all" (when allowed) means every kind.
func kindParams(q url.Values, names []string, all string) (uint64, error) {
	var vals []string
	if v := q.Get("_type"); v != "" {
		vals = append(vals, v)
	}
	if v := q.Get("_type__in"); v != "" {
		vals = append(vals, strings.Split(v, ",")...)
	}
	var mask uint64
	for _, v := range vals {
		v = strings.TrimSpace(v)
		if all != "" && v == all {
			return 0, nil
		}
		k := slices.Index(names, v)
		if k < 0 {
			return 0, badRequest("Invalid _type: %q.", v)
		}
		mask |= 1 << k
	}
	return mask, nil
}

func (s *Server) hTasks(c *call) error {
	if len(c.seg) == 2 {
		return s.getOne(c, sTasks, c.seg[1])
	}
	skip, limit, err := s.paging(c.q, 1000, true)
	if err != nil {
		return err
	}
	qr := newQuery(sTasks)
	if qr.created, err = rangeParams(c.q, "date_created"); err != nil {
		return err
	}
	if qr.updated, err = rangeParams(c.q, "date_updated"); err != nil {
		return err
	}
	_, hasType := c.q["_type"]
	_, hasTypeIn := c.q["_type__in"]
	if !hasType && !hasTypeIn {
		qr.kinds = 1 << tLead // the trap: no _type → lead tasks only
	} else if qr.kinds, err = kindParams(c.q, taskTypeNames, "all"); err != nil {
		return err
	}
	if v := c.q.Get("lead_id"); v != "" {
		qr.leadGen = -2
		if g, ok := s.leadGenOf(v); ok {
			qr.leadGen = g
		}
	}
	switch v := c.q.Get("is_complete"); strings.ToLower(v) {
	case "":
	case "true", "1":
		qr.complete = 1
	case "false", "0":
		qr.complete = 0
	default:
		return badRequest("Invalid is_complete: %q.", v)
	}
	switch ob := c.q.Get("_order_by"); ob {
	case "":
	case "date", "-date":
		qr.order, qr.desc = fDate, ob[0] == '-'
	case "date_created", "-date_created":
		qr.order, qr.desc = fCreated, ob[0] == '-'
	default:
		return badRequest("Invalid _order_by: %q. Allowed: date, -date, date_created, -date_created.", ob)
	}
	qr.cacheable = true
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.writePage(c, sTasks, s.run(qr), skip, limit, false)
	return nil
}

func (s *Server) hUsers(c *call) error {
	if len(c.seg) == 2 {
		return s.getOne(c, sUsers, c.seg[1])
	}
	skip, limit, err := s.paging(c.q, 1000, false)
	if err != nil {
		return err
	}
	qr := newQuery(sUsers)
	switch ob := c.q.Get("_order_by"); ob {
	case "":
	case "last_name,first_name":
		qr.order = orderLastFirst
	case "first_name,last_name":
		qr.order = orderFirstLast
	default:
		return badRequest("Invalid _order_by: %q.", ob)
	}
	qr.cacheable = true
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.writePage(c, sUsers, s.run(qr), skip, limit, false)
	return nil
}

func (s *Server) sortUsers(ids []int32, order int) {
	type key struct {
		a, b string
		k    uint64
		i    int32
	}
	keys := make([]key, len(ids))
	for j, i := range ids {
		fn, ln := s.userNames(int64(i))
		k := key{a: ln.n, b: fn.n, k: s.tiebreak(s.st[sUsers], i), i: i}
		if order == orderFirstLast {
			k.a, k.b = k.b, k.a
		}
		keys[j] = k
	}
	slices.SortFunc(keys, func(x, y key) int {
		if c := strings.Compare(x.a, y.a); c != 0 {
			return c
		}
		if c := strings.Compare(x.b, y.b); c != 0 {
			return c
		}
		if x.k < y.k {
			return -1
		}
		return 1
	})
	for j := range keys {
		ids[j] = keys[j].i
	}
}

func (s *Server) hCustomFields(c *call) error {
	if len(c.seg) == 3 {
		return s.getOne(c, sCustomFields, c.seg[2])
	}
	skip, limit, err := s.paging(c.q, 1000, false)
	if err != nil {
		return err
	}
	qr := newQuery(sCustomFields)
	group := uint8(0)
	for k, g := range cfGroups {
		if g.path == c.seg[1] {
			qr.kinds, group = 1<<k, uint8(k)
		}
	}
	qr.cacheable = true
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.cfg.SharedFieldsInTypeLists && group <= gActivity {
		s.writePage(c, sCustomFields, result{ids: s.cfListing(group)}, skip, limit, false)
		return nil
	}
	s.writePage(c, sCustomFields, s.run(qr), skip, limit, false)
	return nil
}

// ---- event log ----

// Allowed filter combinations (date_updated may be added to any).
var eventCombos = []string{
	"", "object_type,object_id", "object_type,action", "object_id,action", "lead_id", "lead_id,object_type",
	"lead_id,object_type,action", "lead_id,user_id", "lead_id,user_id,object_type", "lead_id,user_id,object_type,action",
	"user_id", "user_id,object_id", "user_id,object_id,action", "user_id,object_type", "user_id,object_type,action",
	"request_id", "object_type,object_id,action",
}

var eventFilterOrder = []string{"lead_id", "user_id", "object_type", "object_id", "action", "request_id"}

func (s *Server) hEvents(c *call) error {
	if len(c.seg) == 2 {
		s.mu.RLock()
		defer s.mu.RUnlock()
		i, ok := s.lookupID(sEvents, c.seg[1])
		if !ok || s.st[sEvents].recs[i].updated < s.retentionStart() {
			return &apiError{404, "Object not found: " + c.seg[1]}
		}
		s.writeEvent(c.e, uint32(i))
		return nil
	}
	if _, ok := c.q["_skip"]; ok {
		return badRequest("_skip is not supported on this endpoint; page with _cursor.")
	}
	limit, err := intParam(c.q, "_limit", 50)
	if err != nil {
		return err
	}
	if limit == 0 {
		limit = 50
	}
	if limit > 50 {
		return badRequest("Invalid _limit: it must be less than or equal to 50.")
	}
	win, err := rangeParams(c.q, "date_updated")
	if err != nil {
		return err
	}
	var used []string
	filt := map[string]string{}
	for _, f := range eventFilterOrder {
		if v := c.q.Get(f); v != "" {
			filt[f] = v
		}
	}
	// canonical combination, in eventCombos' spelling
	for _, combo := range eventCombos {
		parts := strings.Split(combo, ",")
		if combo == "" {
			parts = nil
		}
		if len(parts) != len(filt) {
			continue
		}
		okAll := true
		for _, p := range parts {
			if _, ok := filt[p]; !ok {
				okAll = false
			}
		}
		if okAll {
			used = parts
			break
		}
	}
	if used == nil && len(filt) > 0 {
		keys := make([]string, 0, len(filt))
		for k := range filt {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return badRequest("This combination of filters is not supported: %s.", strings.Join(keys, ", "))
	}
	var cur *evCursor
	if v := c.q.Get("_cursor"); v != "" {
		cc, err := decodeCursor(v)
		if err != nil {
			return badRequest("Invalid _cursor.")
		}
		cur = &cc
		win = cc.win // the walk keeps the window it started with
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.st[sEvents]
	ix := st.idx[0]
	eff := win.and(span{s.retentionStart(), math.MaxInt64})
	ids := s.subrange(st, ix, eff)
	j := len(ids) - 1
	if cur != nil {
		// first position at or after the cursor; continue strictly below it
		pos := sortSearch(len(ids), func(k int) bool {
			r := st.recs[ids[k]]
			return r.updated > cur.t || (r.updated == cur.t && int64(ids[k]) >= cur.g)
		})
		j = pos - 1
	}
	m := s.eventMatcher(filt)
	if m == nil {
		j = -1
	}
	e := c.e
	sel := e.sel
	e.sel = nil
	e.obj()
	e.key("data")
	e.arr()
	e.sel = sel
	n := 0
	var last int32 = -1
	more := false
	for ; j >= 0; j-- {
		i := ids[j]
		if !m(i) {
			continue
		}
		if n == limit {
			more = true
			break
		}
		s.writeEvent(e, uint32(i))
		last = i
		n++
	}
	e.sel = nil
	e.endArr()
	e.key("cursor_next")
	if more {
		e.str(evCursor{t: st.recs[last].updated, g: int64(last), win: win}.encode())
	} else {
		e.null()
	}
	e.key("cursor_previous")
	e.null()
	e.end()
	return nil
}

// eventMatcher returns the filter predicate, or nil if nothing can match.
func (s *Server) eventMatcher(f map[string]string) func(int32) bool {
	var preds []func(int32) bool
	var buf []byte
	if v, ok := f["object_type"]; ok {
		preds = append(preds, func(i int32) bool {
			ref := &s.evRefs[i]
			return s.objectType(int(ref.tstream), ref.tkind) == v
		})
	}
	if v, ok := f["action"]; ok {
		preds = append(preds, func(i int32) bool { return actionNames[s.evRefs[i].action] == v })
	}
	if v, ok := f["object_id"]; ok {
		preds = append(preds, func(i int32) bool {
			ref := &s.evRefs[i]
			ts := int(ref.tstream)
			buf = appendID(buf[:0], s.idPrefix(ts, ref.tkind), simfault.Mix64(uint64(ref.tgen)+s.st[ts].salt), 43)
			return string(buf) == v
		})
	}
	if v, ok := f["lead_id"]; ok {
		k, ok := parseIDKey(v, "lead_", 43)
		if !ok {
			return nil
		}
		g := int64(unmix64(k) - s.st[sLeads].salt)
		if g < 0 || makeID("lead_", k, 43) != v {
			return nil
		}
		preds = append(preds, func(i int32) bool { return s.leadOf(sEvents, uint32(i)) == g })
	}
	if v, ok := f["user_id"]; ok {
		preds = append(preds, func(i int32) bool {
			u := s.userOf(12, uint64(i))
			return u >= 0 && makeID("user_", s.idkey(sUsers, uint32(u)), 43) == v
		})
	}
	if v, ok := f["request_id"]; ok {
		preds = append(preds, func(i int32) bool { return makeID("req_", s.h(hMisc+4, uint64(i)), 22) == v })
	}
	return func(i int32) bool {
		for _, p := range preds {
			if !p(i) {
				return false
			}
		}
		return true
	}
}
