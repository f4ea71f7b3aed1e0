package simfault

import (
	"maps"
	"sync"
)

// Stats counts what a simulator saw since New or ResetStats (closesim.Stats and
// coppersim.Stats are this type). Every map is non-nil.
type Stats struct {
	Requests int64
	// ByStatus counts the statuses answered. Close counts a connection reset as status 0;
	// Copper does not count it.
	ByStatus map[int]int64
	// ByPath counts requests by path: Close the URL path without query, Copper the path with
	// ids replaced by {id}.
	ByPath map[string]int64
	// Faults counts injected faults by Kind name: 429, 429_nohint, 5xx, truncate, bad_json,
	// reset, slow, 503_retry_after, stall, stall_headers, mutate, storm_429, storm_5xx.
	Faults map[string]int64
	// RateLimited counts genuine 429s from the limiter (not faults, not InsideReset).
	RateLimited int64

	// The rest is per endpoint group ("GET /lead/"), which only Close has; Copper leaves it
	// empty.
	RateLimitedByGroup map[string]int64
	ByGroup            map[string]int64
	// InsideReset counts requests that arrived while their group was closed by an announced
	// reset (a 429's reset or a 503's Retry-After), whether or not they were refused for it.
	InsideReset        int64
	InsideResetByGroup map[string]int64
}

func newStats() Stats {
	return Stats{ByStatus: map[int]int64{}, ByPath: map[string]int64{}, Faults: map[string]int64{},
		RateLimitedByGroup: map[string]int64{}, ByGroup: map[string]int64{}, InsideResetByGroup: map[string]int64{}}
}

// Counter keeps a simulator's Stats; its zero value is ready and it is safe for concurrent
// use.
type Counter struct {
	mu sync.Mutex
	s  Stats
}

// Update changes the counts under the lock.
func (c *Counter) Update(fn func(s *Stats)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.s.ByStatus == nil {
		c.s = newStats()
	}
	fn(&c.s)
}

// Fault counts one injected fault.
func (c *Counter) Fault(k Kind) { c.Update(func(s *Stats) { s.Faults[k.String()]++ }) }

// Stats returns a copy of the counts.
func (c *Counter) Stats() Stats {
	var out Stats
	c.Update(func(s *Stats) {
		out = *s
		out.ByStatus = maps.Clone(s.ByStatus)
		out.ByPath = maps.Clone(s.ByPath)
		out.Faults = maps.Clone(s.Faults)
		out.RateLimitedByGroup = maps.Clone(s.RateLimitedByGroup)
		out.ByGroup = maps.Clone(s.ByGroup)
		out.InsideResetByGroup = maps.Clone(s.InsideResetByGroup)
	})
	return out
}

// Reset zeroes the counts.
func (c *Counter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.s = newStats()
}
