// Package fakeclock is a settable clock for tests: time moves only when the test advances it,
// or when code under test sleeps on it (a sleep advances instead of waiting). It serves as an
// apiclient.Clock, an engine's Options.Now and a simulator's Config.Now, so pacing, windows and
// rate limits are tested without waiting for them.
package fakeclock

import (
	"context"
	"sync"
	"time"
)

// Clock is safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New returns a clock reading t.
func New(t time.Time) *Clock { return &Clock{t: t} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Set moves the clock to t (backwards too: a test of clock skew).
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// Sleep advances the clock by d at once; it fails only when ctx is done.
func (c *Clock) Sleep(ctx context.Context, d time.Duration) error {
	if d > 0 {
		c.Advance(d)
	}
	return ctx.Err()
}

// Since is the clock time passed since t.
func (c *Clock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }
