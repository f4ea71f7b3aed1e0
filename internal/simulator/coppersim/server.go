package coppersim

import (
	"encoding/json"
	"fmt"
	"io"
	"math/bits"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/crmsync/crmsync/internal/simulator/jsonenc"
	"github.com/crmsync/crmsync/internal/simulator/simfault"
)

const apiPrefix = "/developer_api/v1/"

// Server is an in-memory Copper Developer API. It is safe for concurrent use.
type Server struct {
	cfg        Config
	start, end int64 // generated timestamps lie in [start, end): Epoch-Span, Epoch

	mu    sync.RWMutex // guards tabs, small and cf
	tabs  [numEntities]*table
	small map[string][]json.RawMessage // full-table lists, including overrides
	cf    customFields                 // this server's custom field definitions

	stats   simfault.Counter
	faults  *simfault.Injector
	limiter *simfault.Limiter

	bufPool sync.Pool
}

// New builds the dataset. Building 500,000 records takes well under a second.
func New(cfg Config) (*Server, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	// One key: Copper limits the whole API per key, on a rolling window.
	limiter, err := simfault.NewLimiter("coppersim", simfault.Limits{Mode: simfault.RollingWindow, Rate: cfg.RateLimit, Window: cfg.RateWindow})
	if err != nil {
		return nil, err
	}
	faults, err := simfault.NewInjector(faultModel, cfg.Faults)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, faults: faults, limiter: limiter}
	s.end = cfg.Epoch.Unix()
	s.start = s.end - int64(cfg.Span/time.Second)
	s.small = defaultSmallLists()
	s.cf = newCustomFields()
	s.build()
	return s, nil
}

// Config returns the effective configuration (defaults filled in).
func (s *Server) Config() Config { return s.cfg }

// Epoch is the data anchor in effect (Config.Epoch, or the start of the day New ran on when it
// was zero), in whole seconds as Copper stamps: generated timestamps lie before it.
func (s *Server) Epoch() time.Time { return time.Unix(s.end, 0).UTC() }

// SetFaults replaces the fault configuration, restarts its random stream
// and the Every429/Every5xx count. Invalid settings (the rules of New)
// return an error and leave the current faults in effect.
func (s *Server) SetFaults(f Faults) error { return s.faults.Set(f) }

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats { return s.stats.Stats() }

// ResetStats zeroes the counters.
func (s *Server) ResetStats() { s.stats.Reset() }

func (s *Server) countStatus(code int) { s.stats.Update(func(st *Stats) { st.ByStatus[code]++ }) }

var _ simfault.Simulator = (*Server)(nil)

// ---------------------------------------------------------------- HTTP

// response is a handler result before fault post-processing.
type response struct {
	status int
	body   []byte
	total  int // X-PW-TOTAL, -1 for none
	pooled *[]byte
}

// errorBody is Copper's observed error shape.
func errorBody(status int, msg string) []byte {
	b := make([]byte, 0, 64+len(msg))
	b = append(b, `{"success":false,"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"message":`...)
	b = jsonenc.AppendString(b, msg)
	return append(b, '}')
}

func errResp(status int, msg string) response {
	return response{status: status, body: errorBody(status, msg), total: -1}
}

func notFound() response { return errResp(http.StatusNotFound, "Resource not found") }

// pathPattern replaces numeric segments by {id} for Stats.ByPath.
func pathPattern(p string) string {
	if !strings.ContainsAny(p, "0123456789") {
		return p
	}
	parts := strings.Split(p, "/")
	for i, seg := range parts {
		if _, err := strconv.ParseInt(seg, 10, 64); err == nil {
			parts[i] = "{id}"
		}
	}
	return strings.Join(parts, "/")
}

func (s *Server) checkAuth(r *http.Request) string {
	switch {
	case r.Header.Get("X-PW-AccessToken") == "":
		return "Missing X-PW-AccessToken header"
	case r.Header.Get("X-PW-AccessToken") != s.cfg.APIKey:
		return "Invalid API key"
	case r.Header.Get("X-PW-Application") != "developer_api":
		return "X-PW-Application must be developer_api"
	case r.Header.Get("X-PW-UserEmail") == "":
		return "Missing X-PW-UserEmail header"
	case !strings.EqualFold(r.Header.Get("X-PW-UserEmail"), s.cfg.UserEmail):
		return "X-PW-UserEmail does not match the API key's user"
	}
	return ""
}

// ServeHTTP serves the API; mount it at the root (paths are /developer_api/v1/...).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	simfault.SetDate(w.Header(), s.cfg.Now()) // the simulator's clock, so tests can move it
	path := pathPattern(r.URL.Path)
	s.stats.Update(func(st *Stats) {
		st.Requests++
		st.ByPath[path]++
	})
	simfault.Sleep(r.Context(), s.cfg.Latency)
	if msg := s.checkAuth(r); msg != "" {
		s.write(w, errResp(http.StatusUnauthorized, msg))
		return
	}
	// Storms come before the limiter: like rejected requests, they do not
	// use up the window.
	switch s.faults.StormHit() {
	case simfault.HitTooMany:
		s.stats.Fault(simfault.KindStorm429)
		s.write(w, errResp(http.StatusTooManyRequests, "Rate limit exceeded"))
		return
	case simfault.HitBadGateway:
		s.stats.Fault(simfault.KindStorm5xx)
		s.write5xx(w, 1) // 502
		return
	}
	if !s.limiter.Take("", s.cfg.Now()).OK {
		// Copper documents no rate-limit headers and no Retry-After.
		s.stats.Update(func(st *Stats) { st.RateLimited++ })
		s.write(w, errResp(http.StatusTooManyRequests, "Rate limit exceeded"))
		return
	}
	fd := s.faults.Draw()
	variant := int(fd.Aux >> 48) // the 16 bits coppersim always chose variants by
	if fd.Slow {
		s.stats.Fault(simfault.KindSlow)
		simfault.Sleep(r.Context(), fd.Faults.SlowDelay)
	}
	if fd.Kind != simfault.KindNone && !fd.Kind.OnAnswer() {
		s.stats.Fault(fd.Kind)
	}
	switch fd.Kind {
	case simfault.Kind429:
		w.Header().Set("Retry-After", "1")
		s.write(w, errResp(http.StatusTooManyRequests, "Rate limit exceeded"))
		return
	case simfault.Kind429NoHint:
		s.write(w, errResp(http.StatusTooManyRequests, "Rate limit exceeded"))
		return
	case simfault.Kind5xx:
		s.write5xx(w, variant)
		return
	case simfault.KindReset:
		simfault.ResetConn(w)
		return
	case simfault.KindStallHeaders:
		if !simfault.Wait(r, fd.Faults.StallDuration()) {
			return // the client went away: no response
		}
		simfault.SetDate(w.Header(), s.cfg.Now())
	}
	resp := s.route(r)
	defer s.release(resp)
	if resp.status == http.StatusOK && fd.Kind.OnAnswer() {
		s.stats.Fault(fd.Kind)
		switch fd.Kind {
		case simfault.KindTruncate:
			s.writeTruncated(w, resp)
		case simfault.KindBadJSON:
			s.writeBadJSON(w, resp, variant)
		case simfault.KindStall:
			s.setHeaders(w, resp)
			s.countStatus(resp.status)
			simfault.WriteStalled(w, r, resp.status, resp.body, fd.Faults.StallDuration())
		}
		return
	}
	s.write(w, resp)
}

func (s *Server) write(w http.ResponseWriter, resp response) {
	s.setHeaders(w, resp)
	s.countStatus(resp.status)
	w.WriteHeader(resp.status)
	if s.cfg.ChunkedAnswers {
		http.NewResponseController(w).Flush() // the headers go first, so the body is chunked
	}
	_, _ = w.Write(resp.body)
}

func (s *Server) setHeaders(w http.ResponseWriter, resp response) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	if !s.cfg.ChunkedAnswers {
		h.Set("Content-Length", strconv.Itoa(len(resp.body)))
	}
	if resp.total >= 0 {
		h["X-PW-TOTAL"] = []string{strconv.Itoa(resp.total)} // Copper's spelling, not canonicalised
	}
}

func (s *Server) write5xx(w http.ResponseWriter, variant int) {
	codes := []int{500, 502, 503, 504}
	code := codes[variant%len(codes)]
	if code == 502 || code == 504 { // gateways answer in HTML
		w.Header().Set("Content-Type", "text/html")
		s.countStatus(code)
		w.WriteHeader(code)
		fmt.Fprintf(w, "<html><head><title>%d %s</title></head><body><center><h1>%d %s</h1></center></body></html>\n",
			code, http.StatusText(code), code, http.StatusText(code))
		return
	}
	s.write(w, errResp(code, http.StatusText(code)))
}

// writeTruncated declares the full Content-Length, sends half the body and
// closes the connection: the client sees an unexpected EOF.
func (s *Server) writeTruncated(w http.ResponseWriter, resp response) {
	s.setHeaders(w, resp)
	s.countStatus(resp.status)
	w.WriteHeader(resp.status)
	_, _ = w.Write(resp.body[:len(resp.body)/2])
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	simfault.ResetConn(w)
}

func (s *Server) writeBadJSON(w http.ResponseWriter, resp response, variant int) {
	var body []byte
	ctype := "application/json; charset=utf-8"
	switch variant % 3 {
	case 0: // well-framed but syntactically broken JSON
		body = append([]byte(nil), resp.body[:len(resp.body)/3]...)
		body = append(body, `,"oops`...)
	case 1: // empty body
	default: // an HTML error page from a proxy, with status 200
		ctype = "text/html"
		body = []byte("<!DOCTYPE html><html><head><title>Error</title></head><body><h1>Something went wrong</h1><p>Please try again later.</p></body></html>\n")
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	s.countStatus(http.StatusOK)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

func (s *Server) getBuf() *[]byte {
	if b, ok := s.bufPool.Get().(*[]byte); ok {
		*b = (*b)[:0]
		return b
	}
	b := make([]byte, 0, 64<<10)
	return &b
}

func (s *Server) release(resp response) {
	if resp.pooled != nil && cap(*resp.pooled) <= 4<<20 {
		s.bufPool.Put(resp.pooled)
	}
}

// smallLists served by GET /<name>.
var smallListNames = []string{"contact_types", "custom_field_definitions", "customer_sources",
	"lead_statuses", "loss_reasons", "pipeline_stages", "pipelines", "tags"}

func (s *Server) route(r *http.Request) response {
	if !strings.HasPrefix(r.URL.Path, apiPrefix) {
		return notFound()
	}
	parts := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, apiPrefix), "/"), "/")
	get, post := r.Method == http.MethodGet, r.Method == http.MethodPost
	switch {
	case len(parts) == 1 && get:
		switch parts[0] {
		case "account":
			return s.jsonResp(s.accountJSON())
		case "activity_types":
			return s.jsonResp(json.Marshal(map[string][]activityType{"user": userActivityTypes, "system": systemActivityTypes}))
		case "custom_activity_types":
			return s.jsonResp(json.Marshal(customActivityTypes))
		case "lead_statuses":
			if !s.cfg.leadsEnabled() {
				return errResp(http.StatusForbidden, "Leads are not enabled for this account")
			}
		}
		for _, name := range smallListNames {
			if parts[0] == name {
				return s.jsonResp(s.smallListJSON(name))
			}
		}
	case len(parts) == 2 && post && parts[1] == "search":
		if e, ok := entityByPath(parts[0]); ok {
			return s.search(r, e)
		}
	case len(parts) == 2 && get && parts[0] == "users" && parts[1] == "me":
		return s.single(entUsers, s.idOf(entUsers, 0))
	case len(parts) == 2 && get:
		if e, ok := entityByPath(parts[0]); ok {
			id, err := strconv.ParseInt(parts[1], 10, 64)
			if err != nil {
				return notFound()
			}
			return s.single(e, id)
		}
	case len(parts) == 3 && get && parts[0] == "pipeline_stages" && parts[1] == "pipeline":
		id, err := strconv.ParseInt(parts[2], 10, 64)
		if err != nil {
			return notFound()
		}
		return s.stagesOf(id)
	}
	return notFound()
}

func (s *Server) jsonResp(b []byte, err error) response {
	if err != nil {
		return errResp(http.StatusInternalServerError, err.Error())
	}
	return response{status: http.StatusOK, body: b, total: -1}
}

func (s *Server) search(r *http.Request, e entity) response {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return errResp(http.StatusBadRequest, "Could not read body")
	}
	p, aerr := parseSearch(e, body, r.URL.Query())
	if aerr != nil {
		return errResp(aerr.status, aerr.msg)
	}
	if s.faults.Mutate(strconv.Itoa(int(e)), nil) {
		s.stats.Fault(simfault.KindMutate)
		s.mutateBetweenPages(e)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	t := s.tabs[e]
	slots, total := s.runSearch(t, p)
	buf := s.getBuf()
	*buf = s.appendPage(*buf, e, slots)
	return response{status: http.StatusOK, body: *buf, total: total, pooled: buf}
}

// mutateBetweenPages updates two records, inserts one and deletes one, all
// at the current time, as concurrent users of the account would.
func (s *Server) mutateBetweenPages(e entity) {
	at := s.cfg.Now().Unix()
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tabs[e]
	s.updateLocked(t, 2, at)
	s.addLocked(t, 1, at)
	if t.live > 1 {
		s.deleteLocked(t, 1)
	}
}

func (s *Server) single(e entity, id int64) response {
	s.mu.RLock()
	defer s.mu.RUnlock()
	slot := s.slotOf(e, id)
	if slot < 0 {
		return notFound()
	}
	if s.tabs[e].recs[slot].flags&flDeleted != 0 {
		if e == entActivities { // deleted activities stay readable as stubs
			return response{status: http.StatusOK, body: []byte(`{"id":` + strconv.FormatInt(id, 10) + `,"is_deleted":true}`), total: -1}
		}
		return notFound()
	}
	return response{status: http.StatusOK, body: s.appendRecord(nil, e, slot), total: -1}
}

func (s *Server) accountJSON() ([]byte, error) {
	s.mu.RLock()
	rows, ok := s.small["account"]
	s.mu.RUnlock()
	if ok && len(rows) > 0 {
		return rows[0], nil
	}
	return json.Marshal(struct {
		ID              int64  `json:"id"`
		Name            string `json:"name"`
		PrimaryTimezone string `json:"primary_timezone"`
		Settings        struct {
			TeamPermissions bool `json:"setting_team_permissions_enabled"`
			EnableLeads     bool `json:"setting_enable_leads"`
		} `json:"settings"`
	}{ID: accountID, Name: "Northwind Outfitters", PrimaryTimezone: "America/Chicago",
		Settings: struct {
			TeamPermissions bool `json:"setting_team_permissions_enabled"`
			EnableLeads     bool `json:"setting_enable_leads"`
		}{true, s.cfg.leadsEnabled()}})
}

func joinRaw(rows []json.RawMessage) []byte {
	b := []byte{'['}
	for i, r := range rows {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, r...)
	}
	return append(b, ']')
}

func (s *Server) smallListJSON(name string) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if rows, ok := s.small[name]; ok {
		return joinRaw(rows), nil
	}
	switch name {
	case "tags":
		return s.tagsJSON(), nil
	case "custom_field_definitions": // unless SetSmallList overrode it
		return s.cf.listJSON()
	}
	return nil, fmt.Errorf("no list %q", name)
}

func (s *Server) stagesOf(pipelineID int64) response {
	s.mu.RLock()
	defer s.mu.RUnlock()
	found := false
	for _, raw := range s.small["pipelines"] {
		var p struct{ ID int64 }
		if json.Unmarshal(raw, &p) == nil && p.ID == pipelineID {
			found = true
		}
	}
	if !found {
		return notFound()
	}
	out := []json.RawMessage{}
	for _, raw := range s.small["pipeline_stages"] {
		var st struct {
			PipelineID int64 `json:"pipeline_id"`
		}
		if json.Unmarshal(raw, &st) == nil && st.PipelineID == pipelineID {
			out = append(out, raw)
		}
	}
	return response{status: http.StatusOK, body: joinRaw(out), total: -1}
}

// tagsJSON serves tag counts computed from the live records. Callers hold
// the read lock.
var taggedEntities = []entity{entPeople, entLeads, entCompanies, entOpportunities, entProjects, entTasks}

func (s *Server) tagsJSON() []byte {
	var counts [6][]int64
	for i, e := range taggedEntities {
		counts[i] = s.tagCounts(s.tabs[e])
	}
	b := []byte{'['}
	for ti, name := range tagNames {
		if ti > 0 {
			b = append(b, ',')
		}
		var total int64
		for i := range counts {
			total += counts[i][ti]
		}
		b = append(b, `{"name":`...)
		b = jsonenc.AppendString(b, name)
		b = append(b, `,"count":`...)
		b = jsonenc.AppendInt(b, total)
		for i, key := range []string{"count_people", "count_leads", "count_companies", "count_opportunities", "count_projects", "count_tasks"} {
			b = append(b, `,"`...)
			b = append(b, key...)
			b = append(b, `":`...)
			b = jsonenc.AppendInt(b, counts[i][ti])
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

func (s *Server) tagCounts(t *table) []int64 {
	t.cacheMu.Lock()
	defer t.cacheMu.Unlock()
	t.checkCacheLocked()
	if t.tagCounts != nil {
		return t.tagCounts
	}
	c := make([]int64, len(tagNames))
	for i := range t.recs {
		rc := &t.recs[i]
		if rc.flags&flDeleted != 0 {
			continue
		}
		m := s.tagMask(t.e, int32(i), rc.version)
		for m != 0 {
			j := bits.TrailingZeros16(m)
			m &^= 1 << j
			c[j]++
		}
	}
	t.tagCounts = c
	return c
}
