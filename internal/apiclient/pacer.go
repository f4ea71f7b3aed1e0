package apiclient

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// pacer spaces the requests of one rate-limit group: an endpoint group on Close (method and
// path: each has its own limit), the whole account on Copper (one limit per key). It learns the
// group's limit from RateLimit headers and paces just under it, and it holds every request of
// the group while the server has said the group is closed — by a 429 or 503 with a reset hint,
// or a budget that in-flight requests will use up. Requests already sent cannot be recalled;
// none is sent after the client has learned of a closed window.
type pacer struct {
	clock Clock
	// learn: read RateLimit headers. Until the first answer tells, one request at a time
	// goes out (a probe), so a burst of parallel readers cannot overrun an unknown limit.
	learn bool
	// fallback is the pace (requests/s) when the server tells nothing; 0: unpaced.
	fallback float64

	mu          sync.Mutex
	rate        float64   // current pace; 0: unpaced
	last        time.Time // when the last request was let go
	closedUntil time.Time // nobody sends before this
	window      time.Duration
	told        bool          // an answer has told the limit, or that the server tells nothing
	probe       chan struct{} // open while the probe is out
	inflight    int
	strikes     int // consecutive 429s without a hint
}

func newPacer(clock Clock, learn bool, fallback float64) *pacer {
	return &pacer{clock: clock, learn: learn, fallback: fallback, rate: fallback, told: !learn}
}

// acquire waits until a request may be sent and returns how long it waited.
func (p *pacer) acquire(ctx context.Context) (time.Duration, error) {
	var waited time.Duration
	for {
		p.mu.Lock()
		now := p.clock.Now()
		var wait time.Duration
		switch {
		case now.Before(p.closedUntil):
			wait = p.closedUntil.Sub(now)
		case p.probe != nil:
			probe := p.probe
			p.mu.Unlock()
			select {
			case <-probe:
			case <-ctx.Done():
				return waited, ctx.Err()
			}
			waited += p.clock.Now().Sub(now)
			continue
		case p.rate > 0 && now.Before(p.nextSend()):
			wait = p.nextSend().Sub(now)
		}
		if wait > 0 {
			p.mu.Unlock()
			if err := p.clock.Sleep(ctx, wait); err != nil {
				return waited, err
			}
			waited += wait
			continue
		}
		if !p.told {
			p.probe = make(chan struct{})
		}
		p.last = now
		p.inflight++
		p.mu.Unlock()
		return waited, nil
	}
}

// reopens is when the group opens again after a rate limit closed it (in the past when open).
func (p *pacer) reopens() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closedUntil
}

// nextSend is when the pace lets the next request go. Caller holds p.mu.
func (p *pacer) nextSend() time.Time {
	return p.last.Add(time.Duration(float64(time.Second) / p.rate))
}

// outcome is what one attempt told the pacer.
type outcome struct {
	answered bool // an HTTP response arrived (not a network error)
	budget   budget
	hasLimit bool          // budget was in the headers
	closeFor time.Duration // the server closed the group for this long (429/503 hint)
	noHint   bool          // a 429 without any hint
}

// pacingShare is the share of the announced limit the client uses: a margin for requests whose
// answers are still in flight when the window turns.
const pacingShare = 0.95

// done records an attempt's outcome; every acquire is followed by one done.
func (p *pacer) done(o outcome) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inflight--
	now := p.clock.Now()
	if o.hasLimit {
		if p.learn {
			// The reset of a full budget is the limit's window; the longest reset seen
			// estimates it (a token bucket that refills in a second says reset=1, a fixed
			// minute counts down from 60). At least a second: no API states limits per
			// shorter window.
			p.window = max(p.window, o.budget.reset, time.Second)
			p.rate = pacingShare * float64(o.budget.limit) / p.window.Seconds()
		}
		// The requests still in flight spend the budget too.
		if o.budget.remaining <= p.inflight {
			p.closeFor(now, max(o.budget.reset, 50*time.Millisecond))
		}
	}
	if o.answered && !p.told {
		p.told = true
		if !o.hasLimit {
			p.rate = p.fallback // the server does not say: the source's documented pace
		}
	}
	if p.probe != nil {
		close(p.probe) // answered or not, the next request may go (and probe again if needed)
		p.probe = nil
	}
	switch {
	case o.closeFor > 0:
		p.strikes = 0
		p.closeFor(now, o.closeFor)
	case o.noHint:
		// No hint (Copper's rolling minute says nothing): back off briefly, doubling while
		// 429s follow each other, instead of sitting out a whole window on every one.
		p.strikes++
		d := min(noHintBase<<(p.strikes-1), noHintMax)
		p.closeFor(now, d/2+rand.N(d/2+1))
	case o.answered:
		p.strikes = 0
	}
}

// Backoff of a group after 429s without a hint: 0.5 s, 1 s, 2 s, … up to 30 s (jittered down
// by up to half, so readers of one account do not return in lockstep).
const (
	noHintBase = 500 * time.Millisecond
	noHintMax  = 30 * time.Second
)

func (p *pacer) closeFor(now time.Time, d time.Duration) {
	if until := now.Add(d); until.After(p.closedUntil) {
		p.closedUntil = until
	}
}
