package closesim

import (
	"strconv"

	"github.com/crmsync/crmsync/internal/simulator/simfault"
)

// maybeMutate applies MutateBetweenPages before a listing (not the stream's first): 1–3
// records of the listed stream are updated, added or deleted at Now().
// Event-log walks get lead updates (which emit new events).
func (s *Server) maybeMutate(sid int) {
	var op string
	var n int
	// op and n are drawn whether or not it fires, as they always were: seeds keep their faults.
	fire := s.faults.Mutate(strconv.Itoa(sid), func(r *simfault.Rand) {
		op = []string{"update", "add", "delete"}[r.Intn(3)]
		n = 1 + r.Intn(3)
	})
	if !fire {
		return
	}
	if sid == sEvents {
		sid, op = sLeads, "update"
	}
	s.stats.Fault(simfault.KindMutate)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mutate(sid, op, n, s.now().UnixMicro())
}

// rateLimitHeader is the RateLimit header of an answer the limiter admitted or refused.
func rateLimitHeader(r simfault.Taken, frac bool) string {
	return "limit=" + strconv.Itoa(r.Limit) + ", remaining=" + strconv.Itoa(r.Remaining) + ", reset=" + simfault.FormatReset(r.Reset, frac)
}

// announcedLimit is what a 429's RateLimit says for the group: unlimited groups advertise
// 1000, as they always have.
func (s *Server) announcedLimit(key string) int {
	if n := s.rl.Limit(key); n > 0 {
		return n
	}
	return 1000
}
