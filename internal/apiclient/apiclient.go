// Package apiclient is the HTTP client every source shares: authentication hook, pacing per
// rate-limit group learned from the server's RateLimit headers (see pacer), retries with
// exponential backoff and jitter on 5xx, network errors, stalled and unreadable answers, waits
// on 429s and 503s that close a group for every request of it without spending the retry
// budget, bounded response sizes, no credential-carrying redirects, and redaction of secrets
// from every error it returns.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/crmsync/crmsync/internal/source"
)

// Config describes one API account.
type Config struct {
	// BaseURL is the API root including its path prefix, e.g. https://api.close.com/api/v1.
	BaseURL string
	// Authorize adds credentials to a request.
	Authorize func(*http.Request)
	// Secrets are redacted from every error message the client returns.
	Secrets []string
	// Group names the rate-limit group of a request; nil: its method and path (Close limits
	// each endpoint group separately). Copper returns one name: one limit per key.
	Group func(Request) string
	// LearnLimits reads each group's limit from RateLimit headers and paces by it.
	LearnLimits bool
	// GroupRate paces each group when the server does not tell its limit (requests/s);
	// zero: unpaced.
	GroupRate float64
	// Ceiling bounds all requests together (the user's --requests-per-second); zero: none.
	Ceiling float64
	// MaxAttempts bounds the tries of one request that fail (rate limits do not count);
	// zero: 8.
	MaxAttempts int
	// RateLimitTimeout bounds how long one request may keep being rate limited; zero: 10 min.
	RateLimitTimeout time.Duration
	// StallTimeout abandons an attempt when no byte arrives for this long (waiting for the
	// headers or within the body); zero: 15 s.
	StallTimeout time.Duration
	// Timeout bounds one whole attempt; zero: 5 min.
	Timeout time.Duration
	// MaxResponseBytes bounds one response body; zero: 64 MiB.
	MaxResponseBytes int64
	// BaseBackoff is the first retry delay; zero: 500ms. MaxBackoff caps it; zero: 60s.
	BaseBackoff, MaxBackoff time.Duration
	// UserAgent is sent on every request.
	UserAgent string
	// Transport overrides the HTTP transport (tests); nil: a clone of the default, which
	// honours HTTPS_PROXY/NO_PROXY.
	Transport http.RoundTripper
	// Clock paces and waits; nil: the system clock.
	Clock Clock
	// AuthHint is appended to the message of a 401/403, naming the settings to check.
	AuthHint string
	// MinBodyRate abandons (and retries) an attempt whose body trickles in: fewer than this
	// many bytes per second over a stretch of StallTimeout; zero: 1 KiB/s.
	MinBodyRate float64
	// Logger gets every retry and rate-limit wait at info, every request at debug (never a
	// secret); nil: no logging.
	Logger *slog.Logger
}

// Tuning is how a source's client paces and retries; each source's Config embeds it.
type Tuning struct {
	// RequestsPerSecond is a ceiling over all requests; zero: none (the server's limits
	// and the source's documented pace apply); negative: no pacing beyond what the server
	// announces.
	RequestsPerSecond float64
	// Transport overrides HTTP (tests); nil: the default, which honours HTTPS_PROXY/NO_PROXY.
	Transport        http.RoundTripper
	Clock            Clock
	UserAgent        string
	MaxAttempts      int           // zero: 8
	BaseBackoff      time.Duration // zero: 500ms
	Timeout          time.Duration // per attempt; zero: 5 min
	StallTimeout     time.Duration // zero: 15 s
	RateLimitTimeout time.Duration // zero: 10 min
	MinBodyRate      float64       // bytes/s; zero: 1 KiB/s
	Logger           *slog.Logger  // nil: none
}

// Apply returns c with the tuning set; groupRate is the source's pace for a group whose limit
// the server does not announce.
func (t Tuning) Apply(c Config, groupRate float64) Config {
	c.GroupRate = groupRate
	switch rps := t.RequestsPerSecond; {
	case rps > 0:
		c.Ceiling = rps
		c.GroupRate = min(groupRate, rps)
	case rps < 0:
		c.GroupRate = 0
	}
	c.Transport, c.Clock, c.UserAgent = t.Transport, t.Clock, t.UserAgent
	c.MaxAttempts, c.BaseBackoff, c.Timeout, c.StallTimeout, c.RateLimitTimeout = t.MaxAttempts, t.BaseBackoff, t.Timeout, t.StallTimeout, t.RateLimitTimeout
	c.MinBodyRate, c.Logger = t.MinBodyRate, t.Logger
	return c
}

// Client sends requests to one API account.
type Client struct {
	cfg     Config
	base    *url.URL
	http    *http.Client
	clock   Clock
	ceiling *rate.Limiter // nil: none
	log     *slog.Logger

	mu     sync.Mutex
	groups map[string]*pacer
	// waits are the waits under way (rate limits, retry backoffs), by a number of their own.
	waits  map[int64]wait
	waitID int64

	requests, retries, limited, waited atomic.Int64
	// clockOffset is the server's Date minus the local time at arrival, in nanoseconds;
	// clockKnown says whether a Date header was seen.
	clockOffset atomic.Int64
	clockKnown  atomic.Bool
}

// ClockOffset implements source.Clock. The estimate errs towards "server behind" by up to a
// second (Date has one-second precision), which only moves bookmarks earlier: safe.
func (c *Client) ClockOffset() (time.Duration, bool) {
	return time.Duration(c.clockOffset.Load()), c.clockKnown.Load()
}

func (c *Client) observeDate(h http.Header) {
	d, err := http.ParseTime(h.Get("Date"))
	if err != nil {
		return
	}
	c.clockOffset.Store(int64(d.Sub(c.clock.Now()) - time.Second))
	c.clockKnown.Store(true)
}

// New builds a client.
func New(cfg Config) (*Client, error) {
	base, err := url.Parse(strings.TrimSuffix(cfg.BaseURL, "/"))
	if err != nil || base.Scheme == "" || base.Host == "" {
		return nil, fmt.Errorf("base URL %q must be an absolute URL such as https://api.example.com", cfg.BaseURL)
	}
	cfg.MaxAttempts = cmpOr(cfg.MaxAttempts, 8)
	cfg.Timeout = cmpOr(cfg.Timeout, 5*time.Minute)
	cfg.StallTimeout = cmpOr(cfg.StallTimeout, DefaultStallTimeout)
	cfg.RateLimitTimeout = cmpOr(cfg.RateLimitTimeout, DefaultRateLimitTimeout)
	cfg.MaxResponseBytes = cmpOr(cfg.MaxResponseBytes, 64<<20)
	cfg.BaseBackoff = cmpOr(cfg.BaseBackoff, 500*time.Millisecond)
	cfg.MaxBackoff = cmpOr(cfg.MaxBackoff, 60*time.Second)
	if cfg.MinBodyRate <= 0 {
		cfg.MinBodyRate = DefaultMinBodyRate
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	transport := cfg.Transport
	if transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		// The default keeps 2 idle connections per host: with a sync's parallel requests to
		// one API, every other request dialled a new connection (411 dials for a 100k-row
		// Close sync's 901 requests), and against a real API each is a TLS handshake.
		t.MaxIdleConnsPerHost = t.MaxIdleConns
		transport = t
	}
	clock := cfg.Clock
	if clock == nil {
		clock = SystemClock{}
	}
	c := &Client{
		cfg:    cfg,
		base:   base,
		http:   &http.Client{Transport: transport, Timeout: cfg.Timeout, CheckRedirect: checkRedirect},
		clock:  clock,
		log:    log,
		groups: map[string]*pacer{},
		waits:  map[int64]wait{},
	}
	if cfg.Ceiling > 0 {
		c.ceiling = rate.NewLimiter(rate.Limit(cfg.Ceiling), 1)
	}
	return c, nil
}

// Defaults of the time bounds, for the settings' documentation.
const (
	DefaultStallTimeout     = 15 * time.Second
	DefaultRateLimitTimeout = 10 * time.Minute
	DefaultMinBodyRate      = 1024 // bytes/s
)

func cmpOr[T int | int64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// checkRedirect follows a redirect only to the same scheme and host with the same method: the
// credential headers (Copper's X-PW-*) would follow it to another host, and Go turns a
// redirected POST search into a GET.
func checkRedirect(req *http.Request, via []*http.Request) error {
	first := via[0]
	status := 0
	if req.Response != nil {
		status = req.Response.StatusCode
	}
	switch {
	case len(via) >= 5:
		return &StatusError{Status: status, Path: first.URL.Path, Message: "too many redirects"}
	case req.URL.Scheme != first.URL.Scheme || req.URL.Host != first.URL.Host:
		return &StatusError{Status: status, Path: first.URL.Path,
			Message: fmt.Sprintf("refusing to follow a redirect to %s://%s: the credentials would go with it (point --base-url at the API's real address)", req.URL.Scheme, req.URL.Host)}
	case req.Method != first.Method:
		return &StatusError{Status: status, Path: first.URL.Path,
			Message: fmt.Sprintf("refusing a redirect that turns %s into %s", first.Method, req.Method)}
	}
	return nil
}

// pacer returns the pacer of the request's rate-limit group.
func (c *Client) pacer(req Request) *pacer {
	name := req.Method + " " + req.Path
	if c.cfg.Group != nil {
		name = c.cfg.Group(req)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.groups[name]
	if p == nil {
		p = newPacer(c.clock, c.cfg.LearnLimits, c.cfg.GroupRate)
		c.groups[name] = p
	}
	return p
}

// Stats reports the work done so far.
func (c *Client) Stats() source.RequestStats {
	return source.RequestStats{Requests: c.requests.Load(), Retries: c.retries.Load(), RateLimited: c.limited.Load(),
		RateLimitWait: time.Duration(c.waited.Load())}
}

// Request is one API call. Path is relative to the base URL ("/lead/").
type Request struct {
	Method string
	Path   string
	Query  url.Values
	Body   any         // JSON-encoded when not nil
	Header http.Header // sent besides the client's own
}

// Response is a successful answer: status 2xx with its whole body read.
type Response struct {
	Header http.Header
	Body   []byte
}

// StatusError is a final HTTP error answer: a 4xx other than 401, 403 and 429, a body over the
// size bound, or a redirect the client refuses to follow.
type StatusError struct {
	Status  int
	Message string // the server's message, redacted and shortened
	Path    string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s: HTTP %d: %s", e.Path, e.Status, e.Message)
}

// AuthError is a 401/403: retrying cannot help, the settings must change.
type AuthError struct {
	Status int
	Hint   string
}

func (e *AuthError) Error() string {
	what := "the API rejected the credentials (HTTP 401)"
	if e.Status == http.StatusForbidden {
		what = "the API refused access (HTTP 403)"
	}
	return what + ": " + e.Hint
}

// Do sends the request with pacing and retries. decode parses a 2xx body; when it fails (a
// truncated or non-JSON answer), the attempt counts as failed and is retried.
//
// Failures (5xx, network errors, stalls, unreadable bodies) are retried up to MaxAttempts
// times. Rate limits are not failures: a 429 (or a 503 with Retry-After) makes the request wait
// with the rest of its group for as long as the server asks, bounded only by RateLimitTimeout.
func (c *Client) Do(ctx context.Context, req Request, decode func(Response) error) error {
	p := c.pacer(req)
	meter := source.MeterFrom(ctx)
	name := req.Method + " " + Redact(req.Path, c.cfg.Secrets...)
	var limitedSince time.Time
	failures := 0
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			c.retries.Add(1)
		}
		stop := func() {}
		if until := p.reopens(); until.After(c.clock.Now()) {
			stop = c.startWait("rate limit, "+name, until)
		}
		waited, err := c.acquire(ctx, p)
		stop()
		meter.AddWait(waited)
		c.waited.Add(int64(waited))
		if err != nil {
			return c.redactErr(err)
		}
		meter.AddRequest()
		res := c.attempt(ctx, req, decode)
		p.done(res.outcome)
		if res.err == nil {
			return nil
		}
		if res.final || ctx.Err() != nil {
			return c.redactErr(res.err)
		}
		if res.limited {
			c.limited.Add(1)
			now := c.clock.Now()
			if limitedSince.IsZero() {
				limitedSince = now
			}
			if now.Sub(limitedSince) >= c.cfg.RateLimitTimeout {
				return c.redactErr(fmt.Errorf("%w: still rate limited after %s (the bound is --rate-limit-timeout)", res.err, c.cfg.RateLimitTimeout))
			}
			c.log.Info("rate limited: waiting before sending again", "request", name, "status", res.status,
				"wait", max(0, p.reopens().Sub(now)).Round(time.Millisecond), "limited_for", now.Sub(limitedSince).Round(time.Millisecond))
			continue // the pacer holds the next attempt until the group reopens
		}
		failures++
		if failures >= c.cfg.MaxAttempts {
			return c.redactErr(fmt.Errorf("%s %s: giving up after %d failed attempts: %w", req.Method, req.Path, failures, res.err))
		}
		// A host that cannot be reached at all is most likely a wrong setting: say so after a
		// few tries instead of backing off for minutes.
		if unreachable(res.err) && failures >= maxUnreachableAttempts {
			return c.redactErr(fmt.Errorf("%s %s: cannot reach the API (check --base-url and the network): %w", req.Method, req.Path, res.err))
		}
		wait := res.retryAfter
		if wait <= 0 {
			wait = c.backoff(failures)
		}
		reason := c.redactErr(res.err).Error()
		c.log.Info("retrying after a failed attempt", "request", name, "attempt", failures+1, "max_attempts", c.cfg.MaxAttempts,
			"wait", wait.Round(time.Millisecond), "reason", reason)
		stop = c.startWait("retry of "+name+" after "+res.short, c.clock.Now().Add(wait))
		err = c.clock.Sleep(ctx, wait)
		stop()
		if err != nil {
			return c.redactErr(err)
		}
	}
}

// startWait records a wait under way until stop is called (see Waiting).
func (c *Client) startWait(reason string, until time.Time) (stop func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waitID++
	id := c.waitID
	c.waits[id] = wait{reason, until}
	return func() {
		c.mu.Lock()
		delete(c.waits, id)
		c.mu.Unlock()
	}
}

type wait struct {
	reason string
	until  time.Time
}

// Waiting reports the wait under way that ends last (a rate limit, or the backoff before a
// retry): why, and how long it has still to go; zero when nothing waits.
func (c *Client) Waiting() (reason string, left time.Duration) {
	now := c.clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range c.waits {
		if d := w.until.Sub(now); d > left {
			reason, left = w.reason, d
		}
	}
	return reason, left
}

// acquire waits for the request's group and for the overall ceiling.
func (c *Client) acquire(ctx context.Context, p *pacer) (time.Duration, error) {
	waited, err := p.acquire(ctx)
	if err != nil || c.ceiling == nil {
		return waited, err
	}
	now := c.clock.Now()
	d := c.ceiling.ReserveN(now, 1).DelayFrom(now)
	if err := c.clock.Sleep(ctx, d); err != nil {
		p.done(outcome{}) // let go of the group's slot (and its probe) unsent
		return waited, err
	}
	return waited + d, nil
}

// result is what one attempt came to.
type result struct {
	err        error
	final      bool          // retrying cannot help: *AuthError, *StatusError, *RequestError
	status     int           // the HTTP status; 0: none came
	short      string        // the failure in a few words, for the progress line
	limited    bool          // a rate limit, not a failure
	retryAfter time.Duration // the server's wait hint on a failure
	outcome    outcome       // for the pacer
	bytes      int           // body bytes read
}

// errStalled cancels an attempt whose answer stopped arriving.
var errStalled = errors.New("stalled")

// attempt sends the request once. *AuthError and *StatusError are final.
func (c *Client) attempt(ctx context.Context, req Request, decode func(Response) error) (res result) {
	httpReq, err := c.newRequest(ctx, req)
	if err != nil {
		return result{err: err, final: true}
	}
	// A stalled answer is abandoned: the timer cancels the attempt unless bytes keep coming.
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stall := time.AfterFunc(c.cfg.StallTimeout, func() { cancel(errStalled) })
	defer stall.Stop()
	httpReq = httpReq.WithContext(actx)

	c.requests.Add(1)
	sent := time.Now()
	defer func() { c.logAttempt(req, res, sent) }()
	resp, err := c.http.Do(httpReq)
	if err != nil {
		if ctx.Err() != nil {
			return result{err: ctx.Err()}
		}
		if context.Cause(actx) == errStalled {
			return result{err: fmt.Errorf("%s %s: no answer for %s (abandoned; the bound is --stall-timeout)", req.Method, req.Path, c.cfg.StallTimeout), short: "no answer"}
		}
		err = unwrapURLError(err)
		var se *StatusError
		if errors.As(err, &se) { // a redirect refused
			return result{err: err, final: true}
		}
		if strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
			// An https base URL on a plain-HTTP port: no retry will change the protocol.
			return result{err: &RequestError{Path: req.Path, Message: "the server answers plain HTTP, but the base URL says https: check its scheme and port (--base-url)"}, final: true}
		}
		return result{err: fmt.Errorf("%s %s: %w", req.Method, req.Path, err), short: "a network error"}
	}
	defer resp.Body.Close()
	res.status = resp.StatusCode
	br := &bodyReader{r: resp.Body, timer: stall, idle: c.cfg.StallTimeout, minRate: c.cfg.MinBodyRate, since: time.Now()}
	body, readErr := readBody(br, resp.ContentLength, c.cfg.MaxResponseBytes+1)
	if readErr != nil && ctx.Err() != nil {
		return result{err: ctx.Err()}
	}
	if readErr != nil && context.Cause(actx) == errStalled {
		readErr = fmt.Errorf("no data for %s after %d bytes (abandoned; the bound is --stall-timeout)", c.cfg.StallTimeout, len(body))
	}
	res.bytes = len(body)
	now := c.clock.Now()
	res.outcome.answered = true
	res.outcome.budget, res.outcome.hasLimit = parseBudget(resp.Header)
	c.observeDate(resp.Header)
	res.short = fmt.Sprintf("HTTP %d", resp.StatusCode)
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		res.err, res.final = &AuthError{Status: resp.StatusCode, Hint: c.cfg.AuthHint}, true
	case resp.StatusCode == http.StatusTooManyRequests,
		// A 503 that says when to come back closes the group like a 429.
		resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "":
		res.limited = true
		if res.outcome.closeFor = resetHint(res.outcome.budget, res.outcome.hasLimit, resp.Header, body, now); res.outcome.closeFor <= 0 {
			res.outcome.noHint = true
		}
		res.err = fmt.Errorf("%s %s: rate limited (HTTP %d)", req.Method, req.Path, resp.StatusCode)
	case resp.StatusCode >= 500:
		res.retryAfter = resetHint(res.outcome.budget, res.outcome.hasLimit, resp.Header, nil, now)
		res.err = fmt.Errorf("%s %s: HTTP %d", req.Method, req.Path, resp.StatusCode)
	case resp.StatusCode < 200 || resp.StatusCode >= 300:
		res.err, res.final = &StatusError{Status: resp.StatusCode, Message: errorMessage(body), Path: req.Path}, true
	case readErr != nil:
		res.err, res.short = fmt.Errorf("%s %s: reading the response: %w", req.Method, req.Path, readErr), "an unfinished answer"
	case int64(len(body)) > c.cfg.MaxResponseBytes:
		res.err, res.final = &StatusError{Status: resp.StatusCode, Message: fmt.Sprintf("response larger than %d bytes", c.cfg.MaxResponseBytes), Path: req.Path}, true
	default:
		if err := decode(Response{Header: resp.Header, Body: body}); err != nil {
			res.err, res.short = fmt.Errorf("%s %s: unreadable response (%d bytes): %w", req.Method, req.Path, len(body), err), "an unreadable answer"
		}
	}
	return res
}

// logAttempt logs one attempt at debug: what was asked (without secrets), what came back, how
// long it took.
func (c *Client) logAttempt(req Request, res result, sent time.Time) {
	if !c.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	attrs := []any{"method", req.Method, "path", Redact(req.Path, c.cfg.Secrets...), "status", res.status,
		"bytes", res.bytes, "duration", time.Since(sent).Round(time.Millisecond)}
	if len(req.Query) > 0 {
		attrs = append(attrs, "query", Redact(req.Query.Encode(), c.cfg.Secrets...))
	}
	if res.err != nil {
		attrs = append(attrs, "error", c.redactErr(res.err).Error())
	}
	c.log.Debug("request", attrs...)
}

// RequestError is a request that cannot be sent as built (a header value HTTP forbids, such as
// a key ending in a line break): no retry can help, a setting must change.
type RequestError struct {
	Path    string
	Message string
}

func (e *RequestError) Error() string { return e.Path + ": " + e.Message }

// withHint appends the settings to check to a message about a request that cannot be sent.
func withHint(msg, hint string) string {
	if hint == "" {
		return msg
	}
	return msg + "; a setting holds it: " + hint
}

// readBody reads at most limit bytes of r into a buffer sized by the announced length, where
// io.ReadAll would grow it step by step, copying and clearing as it goes (3 % of a Close
// sync's CPU). A length that lies, or none (a chunked or compressed answer), only costs the
// growth it saved.
func readBody(r io.Reader, announced, limit int64) ([]byte, error) {
	var buf bytes.Buffer
	if announced > 0 {
		buf.Grow(int(min(announced, limit)) + bytes.MinRead) // ReadFrom reads on only with MinRead free
	}
	_, err := buf.ReadFrom(io.LimitReader(r, limit))
	return buf.Bytes(), err
}

// bodyReader restarts the stall timer whenever bytes arrive, and fails a body that trickles:
// fewer than minRate bytes per second over a stretch of idle.
type bodyReader struct {
	r       io.Reader
	timer   *time.Timer
	idle    time.Duration
	minRate float64
	since   time.Time // the current stretch began
	got     int64     // bytes within the stretch
}

func (r *bodyReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.timer.Reset(r.idle)
	}
	r.got += int64(n)
	if el := time.Since(r.since); err == nil && el >= r.idle {
		if rate := float64(r.got) / el.Seconds(); rate < r.minRate {
			return n, fmt.Errorf("the answer trickles in at %.0f bytes/s (abandoned below %.0f bytes/s)", rate, r.minRate)
		}
		r.since, r.got = time.Now(), 0
	}
	return n, err
}

func (c *Client) newRequest(ctx context.Context, req Request) (*http.Request, error) {
	u := *c.base
	u.Path = c.base.Path + req.Path
	if len(req.Query) > 0 {
		u.RawQuery = req.Query.Encode()
	}
	var body io.Reader
	if req.Body != nil {
		b, err := json.Marshal(req.Body)
		if err != nil {
			return nil, &RequestError{Path: req.Path, Message: fmt.Sprintf("encode request body: %v", err)}
		}
		body = bytes.NewReader(b)
	}
	r, err := http.NewRequestWithContext(ctx, req.Method, u.String(), body)
	if err != nil {
		return nil, &RequestError{Path: req.Path, Message: err.Error()}
	}
	for k, vs := range req.Header {
		r.Header[k] = append([]string(nil), vs...)
	}
	if req.Body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	r.Header.Set("Accept", "application/json")
	if c.cfg.UserAgent != "" {
		r.Header.Set("User-Agent", c.cfg.UserAgent)
	}
	if c.cfg.Authorize != nil {
		c.cfg.Authorize(r)
	}
	for name, vs := range r.Header {
		for _, v := range vs {
			if i := strings.IndexFunc(v, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }); i >= 0 {
				return nil, &RequestError{Path: req.Path, Message: withHint(fmt.Sprintf(
					"the %s header would hold a control character (%q at byte %d), which HTTP forbids", name, v[i], i), c.cfg.AuthHint)}
			}
		}
	}
	return r, nil
}

// backoff is exponential with equal jitter: between half and all of base × 2^(n-1), capped.
func (c *Client) backoff(failures int) time.Duration {
	d := c.cfg.BaseBackoff << (failures - 1)
	if d > c.cfg.MaxBackoff || d <= 0 {
		d = c.cfg.MaxBackoff
	}
	return d/2 + rand.N(d/2+1)
}

// errorMessage extracts a short message from an error body (JSON "error"/"message" or text).
func errorMessage(body []byte) string {
	var b map[string]any
	if json.Unmarshal(body, &b) == nil {
		for _, k := range []string{"error", "message", "errors", "field-errors"} {
			if v, ok := b[k]; ok {
				if s, ok := v.(string); ok {
					return shorten(s)
				}
				j, _ := json.Marshal(v)
				return shorten(string(j))
			}
		}
	}
	return shorten(strings.TrimSpace(string(body)))
}

func shorten(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

// maxUnreachableAttempts bounds the tries when no connection can be made at all.
const maxUnreachableAttempts = 3

// unreachable reports a failure to connect (refused, no route, unknown host), as opposed to a
// connection that broke.
func unreachable(err error) bool {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return true
	}
	var opErr *net.OpError
	return errors.As(err, &opErr) && opErr.Op == "dial"
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		var ne net.Error
		if errors.As(ue.Err, &ne) && ne.Timeout() {
			return fmt.Errorf("timed out: %w", ue.Err)
		}
		return ue.Err
	}
	return err
}

// redactErr replaces every secret in the error text. The error chain is flattened on purpose:
// a wrapped error could otherwise print a secret later.
func (c *Client) redactErr(err error) error {
	if err == nil {
		return nil
	}
	msg := Redact(err.Error(), c.cfg.Secrets...)
	var ae *AuthError
	if errors.As(err, &ae) {
		return &AuthError{Status: ae.Status, Hint: Redact(ae.Hint, c.cfg.Secrets...)}
	}
	var se *StatusError
	if errors.As(err, &se) {
		return &StatusError{Status: se.Status, Message: Redact(se.Message, c.cfg.Secrets...), Path: Redact(se.Path, c.cfg.Secrets...)}
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", msg, context.Canceled)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", msg, context.DeadlineExceeded)
	}
	return errors.New(msg)
}

// Redact replaces each non-empty secret (and its URL-escaped form) in s.
func Redact(s string, secrets ...string) string {
	for _, sec := range secrets {
		if len(sec) < 4 {
			continue // too short to redact without mangling ordinary text
		}
		s = strings.ReplaceAll(s, sec, "[REDACTED]")
		if esc := url.QueryEscape(sec); esc != sec {
			s = strings.ReplaceAll(s, esc, "[REDACTED]")
		}
	}
	return s
}
