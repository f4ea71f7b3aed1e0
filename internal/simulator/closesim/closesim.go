package closesim

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"time"

	"github.com/crmsync/crmsync/internal/simulator/simfault"
)

// Config sizes and shapes the simulated Close account.
type Config struct {
	Seed int64
	// APIKey is the Basic-auth user name clients must send (password empty,
	// any password is accepted). Wrong or missing → 401 {"error": "..."}.
	APIKey string
	// Epoch anchors the data: every generated timestamp lies in
	// [Epoch-Span, Epoch) (except FutureDated records). Zero → start of the
	// current UTC day (by Now). Same Seed+Epoch+Span+sizes ⇒ identical bytes.
	Epoch time.Time
	// Span is how far back data goes; zero → 2 years. Event-log data lies in
	// the 30 days before Epoch (and is served only while Now()-30d allows).
	Span time.Duration

	Leads, Activities, Tasks, Users, CustomFields, Events int

	// FutureDated leads, activities and tasks (each) get a date_updated
	// after Epoch (activities: date_created too), for bookmark-clamp tests.
	FutureDated int
	// SameTimestamp leads (date_updated) and activities (date_created and
	// date_updated) share one exact timestamp, for page-boundary tests.
	SameTimestamp int

	// MaxSkip is the _skip cap of /lead/, /activity/, /task/ (zero → 250000).
	MaxSkip int
	// RateLimit is requests per second per endpoint group (method + path
	// pattern); 0 = unlimited. Burst = max(1, RateLimit).
	RateLimit float64
	// GroupRateLimits overrides RateLimit for single endpoint groups, keyed
	// "METHOD pattern" exactly as the route table names them: "GET /me/",
	// "GET /lead/", "GET /lead/{id}/", "GET /activity/", "GET /task/",
	// "GET /event/", … (GroupKeys lists them all; HEAD has its own keys).
	// 0 = unlimited for that group. Unknown keys → error from New.
	GroupRateLimits map[string]float64
	// RateWindow zero keeps the token bucket (refill per second, burst
	// max(1, rate)). Non-zero switches to fixed windows (aligned to
	// multiples of RateWindow): at most rate×RateWindow requests per window;
	// RateLimit's limit is that number and reset the time to the window end.
	RateWindow time.Duration
	// FractionalReset prints reset with millisecond decimals (reset=0.347)
	// instead of rounded-up whole seconds: the docs do not settle which.
	FractionalReset bool
	// EnforceResets rejects a request that arrives before an announced
	// reset of its group ran out (a 429's reset — genuine, fault or storm —
	// or a 503's Retry-After) with another 429 carrying the time left, as a
	// server that punishes early retries would. Off, such requests are only
	// counted (Stats.InsideReset) and served normally, which keeps the old
	// behaviour for tests that fire faults under a frozen clock.
	EnforceResets bool
	// MergeEmitsDeleted: a lead merged away gets a "deleted" event besides the "merged"
	// event of the lead it was merged into (the docs leave open which it gets).
	MergeEmitsDeleted bool
	// QueryExactMinute changes the lead query's minute semantics: the value
	// means exactly HH:MM:00.000000 and is compared with the record's full
	// precision timestamp (default: both truncated to the minute).
	QueryExactMinute bool
	// QueryZone is the time zone, as an offset from UTC, in which the lead query reads a
	// date-time without one: the account's, say, where the default is UTC. A request's
	// X-TZ-Offset header (hours) wins over it, as the docs describe for search date filters.
	// The docs leave open which zone applies without the header (reference open question 10).
	QueryZone time.Duration
	// SharedFieldsInTypeLists makes /custom_field/lead/, /custom_field/contact/ (and the
	// other object types' endpoints) also list the shared fields associated with that object
	// type, as the same records with the same ids they have under /custom_field/shared/. The
	// docs leave open whether they do (reference open question 9); default: only /shared/.
	SharedFieldsInTypeLists bool
	// ChunkedAnswers: answers announce no Content-Length and are sent in chunks, as a
	// streaming server or a compressing proxy sends them. The reference does not say which
	// (default: the length is announced).
	ChunkedAnswers bool
	// UnfitCustomValues is the fraction (0..1) of the values of number, date and datetime
	// custom fields that are text no parser of the type accepts ("n/a", "TBD", "sometime in
	// Q3", "31/31/2024"), as a careless import into Close leaves them. Which values are
	// unfit depends only on the seed and the record.
	UnfitCustomValues float64
	// Latency is added to every response.
	Latency time.Duration
	Faults  Faults
	// Now is the clock for rate limiting, retention and fault mutations;
	// nil → time.Now.
	Now func() time.Time
}

// Faults and Stats are the simulators' shared ones (see simfault). Close can show every
// Faults field.
type (
	Faults = simfault.Faults
	Stats  = simfault.Stats
)

// faultModel keeps the PRNG salt closesim always had, so seeds draw the same faults.
var faultModel = simfault.Model{Name: "closesim", Salt: 0xFA17}

// Server is the fake Close API. It is an http.Handler for the root of a
// host: paths are /api/v1/... .
type Server struct {
	cfg    Config
	seed   uint64
	epoch  int64 // unix micros
	span   int64
	now    func() time.Time
	org    string
	maxSk  int
	n0     [numStreams]int // initial sizes: references are drawn from these
	sameTS int64

	mu        sync.RWMutex
	st        [numStreams]*stream
	evRefs    []evRef
	pendingEv []int32
	// moved maps (stream<<32 | gen) of activities and tasks moved by a lead merge to their
	// new lead's generator index.
	moved map[uint64]int64
	// gone holds the deleted contacts and opportunities (virtual stream<<32 | gen).
	gone     map[uint64]bool
	subCache [2]subList
	mrng     rng
	// Value tables: the custom field definitions whose values leads, contacts and
	// opportunities (cfByGroup) and custom activities of each type (cfByAct) carry.
	cfByGroup [3][]cfDef
	cfByAct   [numCustomActTypes][]cfDef
	// cfEdited holds the definitions that differ from the generated ones (renamed, options
	// renamed, added), by generator index.
	cfEdited map[uint32]cfDef

	urefs        []userRef
	statusIDs    [6]string
	oppStatusIDs [5]string

	cacheMu   sync.Mutex
	cache     map[string]cacheEntry
	cacheKeys []string
	cacheIDs  int

	faults *simfault.Injector
	rl     *simfault.Limiter
	stats  simfault.Counter
}

const maxRecords = 1 << 30

// New builds the dataset. A 1,000,000-record dataset takes about a second.
func New(cfg Config) (*Server, error) {
	if cfg.APIKey == "" {
		return nil, errors.New("closesim: Config.APIKey is required")
	}
	for _, n := range []int{cfg.Leads, cfg.Activities, cfg.Tasks, cfg.Users, cfg.CustomFields, cfg.Events, cfg.FutureDated, cfg.SameTimestamp} {
		if n < 0 || n > maxRecords {
			return nil, fmt.Errorf("closesim: dataset size %d out of range", n)
		}
	}
	if cfg.Span < 0 || cfg.MaxSkip < 0 {
		return nil, errors.New("closesim: negative Span or MaxSkip")
	}
	if !(cfg.UnfitCustomValues >= 0 && cfg.UnfitCustomValues <= 1) { // also refuses NaN
		return nil, fmt.Errorf("closesim: UnfitCustomValues %v outside [0, 1]", cfg.UnfitCustomValues)
	}
	mode := simfault.TokenBucket
	if cfg.RateWindow != 0 {
		mode = simfault.FixedWindow
	}
	rl, err := simfault.NewLimiter("closesim", simfault.Limits{Mode: mode, Rate: cfg.RateLimit, Rates: cfg.GroupRateLimits,
		Keys: GroupKeys(), Window: cfg.RateWindow})
	if err != nil {
		return nil, err
	}
	faults, err := simfault.NewInjector(faultModel, cfg.Faults)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, now: cfg.Now, cache: map[string]cacheEntry{}, faults: faults, rl: rl}
	if s.now == nil {
		s.now = time.Now
	}
	if cfg.Epoch.IsZero() {
		cfg.Epoch = s.now().UTC().Truncate(24 * time.Hour)
		s.cfg.Epoch = cfg.Epoch
	}
	if cfg.Span == 0 {
		cfg.Span = 2 * 365 * 24 * time.Hour
		s.cfg.Span = cfg.Span
	}
	s.maxSk = cfg.MaxSkip
	if s.maxSk == 0 {
		s.maxSk = 250000
	}
	s.seed = simfault.Mix64(uint64(cfg.Seed) ^ 0xC105E51A)
	s.epoch = cfg.Epoch.UnixMicro()
	s.span = max(cfg.Span.Microseconds(), 1000)
	s.mrng = simfault.NewRand(s.h(hMisc+5, 0))
	s.org = makeID("orga_", s.h(hOrg, 0), 43)
	s.n0 = [numStreams]int{cfg.Leads, cfg.Activities, cfg.Tasks, cfg.Users, cfg.CustomFields, cfg.Events}
	s.build()
	return s, nil
}

// ---- building ----

func (s *Server) build() {
	for sid := 0; sid < numStreams; sid++ {
		s.st[sid] = &stream{id: sid, salt: simfault.Mix64(s.seed ^ uint64(sid+1)*0x9E3779B97F4A7C15)}
	}
	s.buildUserRefs()
	fields := map[int][]int{
		sLeads:        {fID, fCreated, fUpdated},
		sActivities:   {fID, fCreated},
		sTasks:        {fID, fCreated, fUpdated, fDate},
		sUsers:        {fID},
		sCustomFields: {fID},
		sEvents:       {fUpdated},
	}
	for sid := 0; sid < sEvents; sid++ {
		s.genStream(sid)
	}
	s.sortAll(fields, sEvents)
	s.buildCFTables()
	s.genEvents()
	s.sortAll(fields, sEvents+1)
}

func (s *Server) sortAll(fields map[int][]int, upto int) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for sid := 0; sid < upto; sid++ {
		st := s.st[sid]
		if st.idx != nil {
			continue
		}
		for _, f := range fields[sid] {
			ix := &index{field: f, ids: make([]int32, len(st.recs))}
			for i := range ix.ids {
				ix.ids[i] = int32(i)
			}
			st.idx = append(st.idx, ix)
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				s.sortIDs(st, ix.field, ix.ids)
				<-sem
			}()
		}
	}
	wg.Wait()
}

func (s *Server) genStream(sid int) {
	st := s.st[sid]
	n := s.n0[sid]
	st.recs = make([]rec, n)
	st.live = n
	lo := s.epoch - s.span
	loMs := floorDiv(lo+999, 1000) * 1000
	s.sameTS = floorDiv(s.epoch-s.span/4, usPerSec)*usPerSec + 250000
	if s.sameTS < loMs {
		s.sameTS = loMs
	}
	fd := min(s.cfg.FutureDated, n)
	same := min(s.cfg.SameTimestamp, n-fd)
	for g := 0; g < n; g++ {
		r := s.rngFor(hMeta+uint64(sid)<<8, uint64(g))
		created := max(msTime(&r, lo+r.Int63n(s.span)), loMs)
		var updated int64
		switch sid {
		case sLeads, sTasks:
			if r.Chance(0.3) {
				updated = created
			} else {
				f := r.Float()
				updated = created + int64(f*f*float64(s.epoch-created))
			}
		case sActivities:
			updated = created
			if r.Chance(0.4) {
				updated += usPerSec + r.Int63n(3*usPerHour)
			}
		default:
			updated = created + int64(r.Float()*float64(s.epoch-created))
		}
		updated = msTime(&r, updated)
		if updated < created || updated >= s.epoch {
			updated = created
		}
		if created >= s.epoch { // tiny spans only
			created, updated = s.epoch-1, s.epoch-1
		}
		switch {
		case g < same && sid == sLeads:
			updated = s.sameTS
			created = min(created, s.sameTS)
		case g < same && sid == sActivities:
			created, updated = s.sameTS, s.sameTS
		case g >= n-fd && (sid == sLeads || sid == sActivities || sid == sTasks):
			future := s.epoch + usPerHour + floorDiv(r.Int63n(30*usPerDay), 1000)*1000
			updated = future
			if sid == sActivities {
				created = future
			}
		}
		st.recs[g] = rec{created: created, updated: updated, kind: s.kindFor(sid, uint32(g))}
	}
}

// genEvents creates the seeded event log: mostly created/updated events of
// records whose last change lies in the 30 days before Epoch (so an event
// agrees with its object), plus some "deleted" events of objects that no
// longer exist (ghosts), never of live records.
func (s *Server) genEvents() {
	n := s.n0[sEvents]
	ev := s.st[sEvents]
	ev.recs = make([]rec, n)
	ev.live = n
	s.evRefs = make([]evRef, n)
	win := s.epoch - 30*usPerDay
	// Candidates: records whose last change lies in the window, visited in
	// a seeded random order so events hit distinct objects while they last.
	type cand struct {
		sid int
		i   int32
	}
	var cands []cand
	for _, c := range []struct{ sid, field int }{{sLeads, fUpdated}, {sActivities, fCreated}, {sTasks, fUpdated}} {
		st := s.st[c.sid]
		for _, i := range s.subrange(st, st.index(c.field), span{win, s.epoch}) {
			cands = append(cands, cand{c.sid, i})
		}
	}
	cr := s.rngFor(hEvent+2, 0)
	for j := len(cands) - 1; j > 0; j-- {
		k := cr.Intn(j + 1)
		cands[j], cands[k] = cands[k], cands[j]
	}
	next := 0
	for g := 0; g < n; g++ {
		r := s.rngFor(hEvent+1, uint64(g))
		var ref evRef
		var at int64
		if next >= len(cands) || r.Intn(100) < 7 {
			// An object that does not exist (any more): deleted, or created /
			// updated and then deleted before the dataset's present.
			sid := []int{sLeads, sActivities, sTasks}[r.Intn(3)]
			tgen := uint32(ghostBase + g)
			at = msTime(&r, win+r.Int63n(s.epoch-win))
			if at < win {
				at += usPerSec
			}
			ref = evRef{tgen: tgen, tstream: uint8(sid), action: actDeleted, tkind: s.kindFor(sid, tgen), tupd: at,
				tprev: at - usPerHour - floorDiv(r.Int63n(60*usPerDay), 1000)*1000}
			if next >= len(cands) {
				switch v := r.Intn(10); {
				case v < 3:
					ref.action, ref.tprev = actCreated, at
				case v < 7:
					ref.action = actUpdated
				}
			}
		} else {
			c := cands[next]
			next++
			t := s.st[c.sid].recs[c.i]
			ref = evRef{tgen: uint32(c.i), tstream: uint8(c.sid), tkind: t.kind}
			if c.sid == sActivities || t.updated == t.created || t.updated < win {
				ref.action, ref.tupd, ref.tprev = actCreated, t.created, t.created
			} else {
				ref.action, ref.tupd, ref.tprev = actUpdated, t.updated, t.created
			}
			at = ref.tupd + int64(5+r.Intn(40))*1000
			if at >= s.epoch {
				at = ref.tupd
			}
		}
		created := at
		if r.Intn(10) == 0 { // consolidated event: first seen earlier
			created = max(at-int64(1+r.Intn(60))*usPerSec, win)
		}
		ev.recs[g] = rec{created: created, updated: at}
		s.evRefs[g] = ref
	}
}

// ---- public API: ground truth and mutations ----

// Snapshot returns every live record of stream exactly as the API serves it
// (decoded JSON), in the API's default order (by id; event_log newest
// first, and only what retention keeps). Unknown stream → nil.
func (s *Server) Snapshot(stream string) []map[string]any {
	sid := streamID(stream)
	if sub, ok := subName[stream]; ok {
		sid = sub
	}
	if sid < 0 {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []map[string]any
	var e enc
	add := func() {
		var m map[string]any
		if err := json.Unmarshal(e.b, &m); err != nil {
			panic("closesim: generated invalid JSON: " + err.Error())
		}
		out = append(out, m)
	}
	if sid >= numStreams {
		for _, x := range s.subs(sid) {
			e.reset()
			l, _ := splitSub(x.gen)
			r := &s.st[sLeads].recs[l]
			s.writeSub(&e, sid, x.gen, r.ver, r.created, r.updated)
			add()
		}
		return out
	}
	for _, i := range s.liveOrder(sid) {
		e.reset()
		s.writeRec(&e, sid, i)
		add()
	}
	return out
}

// liveOrder lists live records in default API order.
func (s *Server) liveOrder(sid int) []int32 {
	st := s.st[sid]
	if sid != sEvents {
		return st.idx[0].ids
	}
	ids := s.subrange(st, st.idx[0], span{s.retentionStart(), math.MaxInt64})
	out := make([]int32, len(ids))
	for j := range ids {
		out[j] = ids[len(ids)-1-j]
	}
	return out
}

func (s *Server) retentionStart() int64 { return s.now().UnixMicro() - 30*usPerDay }

// Count is the number of live records (event_log: those retention keeps).
func (s *Server) Count(stream string) int {
	sid := streamID(stream)
	if sub, ok := subName[stream]; ok {
		s.mu.RLock()
		defer s.mu.RUnlock()
		return len(s.subs(sub))
	}
	if sid < 0 {
		return 0
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if sid == sEvents {
		st := s.st[sid]
		return len(s.subrange(st, st.idx[0], span{s.retentionStart(), math.MaxInt64}))
	}
	return s.st[sid].live
}

// UpdateRecords bumps date_updated of n random live records to at, changes
// a field of each (version counter), and emits "updated" events. For
// activities date_created stays: the API cannot filter on date_updated.
// Returns the ids. Deterministic given the seed and the call sequence.
func (s *Server) UpdateRecords(stream string, n int, at time.Time) []string {
	return s.mutatePublic(stream, "update", n, at)
}

// AddRecords creates n records with date_created = date_updated = at and
// emits "created" events. Returns the new ids.
func (s *Server) AddRecords(stream string, n int, at time.Time) []string {
	return s.mutatePublic(stream, "add", n, at)
}

// DeleteRecords hard-deletes n random live records and emits "deleted"
// events (previous_data = the last version). Returns the ids.
func (s *Server) DeleteRecords(stream string, n int, at time.Time) []string {
	return s.mutatePublic(stream, "delete", n, at)
}

// MergeLeads merges n pairs of random live leads at at (see merge) and returns the ids of the
// leads merged away.
func (s *Server) MergeLeads(n int, at time.Time) []string {
	if n <= 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.merge(n, at.UnixMicro())
}

func (s *Server) mutatePublic(stream, op string, n int, at time.Time) []string {
	if sub, ok := subName[stream]; ok && n > 0 {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.mutateSubs(sub, op, n, at.UnixMicro())
	}
	sid := streamID(stream)
	if sid < 0 || sid == sEvents || n <= 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mutate(sid, op, n, at.UnixMicro())
}

// Epoch returns the data anchor in effect (useful when Config.Epoch was zero).
func (s *Server) Epoch() time.Time { return time.UnixMicro(s.epoch).UTC() }

// SameTimestamp returns the timestamp shared by Config.SameTimestamp records.
func (s *Server) SameTimestamp() time.Time { return time.UnixMicro(s.sameTS).UTC() }

// ---- stats and faults ----

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats { return s.stats.Stats() }

// ResetStats zeroes the counters.
func (s *Server) ResetStats() { s.stats.Reset() }

// SetFaults replaces the fault configuration (goroutine-safe), reseeds the fault PRNG from
// f.Seed and restarts the Every429/Every5xx count. Invalid settings (the rules of New) return
// an error and leave the current faults in effect.
func (s *Server) SetFaults(f Faults) error { return s.faults.Set(f) }

var _ simfault.Simulator = (*Server)(nil)
