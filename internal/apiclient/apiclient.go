// Package apiclient is the HTTP client every source shares: authentication hook, a token-bucket
// limiter adapted from the server's rate-limit headers, retries with exponential backoff and
// jitter on 429/5xx/network errors/unreadable bodies (honouring Retry-After and reset hints),
// bounded response sizes, and redaction of secrets from every error it returns.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
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
	// RequestsPerSecond paces requests (shared by all streams); zero: unlimited.
	RequestsPerSecond float64
	Burst             int
	// MaxAttempts bounds the tries of one request; zero: 8.
	MaxAttempts int
	// Timeout bounds one attempt; zero: 60s.
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
	// AuthHint is appended to the message of a 401/403, naming the settings to check.
	AuthHint string
}

// Tuning is how a source's client paces and retries; each source's Config embeds it.
type Tuning struct {
	// RequestsPerSecond paces the client; zero: the source's default; negative: unlimited.
	RequestsPerSecond float64
	// Transport overrides HTTP (tests); nil: the default, which honours HTTPS_PROXY/NO_PROXY.
	Transport   http.RoundTripper
	UserAgent   string
	MaxAttempts int           // zero: 8
	BaseBackoff time.Duration // zero: 500ms
	Timeout     time.Duration // per attempt; zero: 60s
}

// Apply returns c with the tuning set; defaultRPS is the source's pace when none is given.
func (t Tuning) Apply(c Config, defaultRPS float64) Config {
	switch rps := t.RequestsPerSecond; {
	case rps == 0:
		c.RequestsPerSecond = defaultRPS
	case rps > 0:
		c.RequestsPerSecond = rps
	}
	c.Burst = 1 // smooth pacing: a burst would overrun rolling-window limits like Copper's
	c.Transport, c.UserAgent, c.MaxAttempts, c.BaseBackoff, c.Timeout = t.Transport, t.UserAgent, t.MaxAttempts, t.BaseBackoff, t.Timeout
	return c
}

// Client sends requests to one API account.
type Client struct {
	cfg     Config
	base    *url.URL
	http    *http.Client
	limiter *rate.Limiter

	mu          sync.Mutex
	pausedUntil time.Time // set from rate-limit headers: nobody sends before this

	requests, retries, limited atomic.Int64
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
	c.clockOffset.Store(int64(d.Sub(time.Now()) - time.Second))
	c.clockKnown.Store(true)
}

// New builds a client.
func New(cfg Config) (*Client, error) {
	base, err := url.Parse(strings.TrimSuffix(cfg.BaseURL, "/"))
	if err != nil || base.Scheme == "" || base.Host == "" {
		return nil, fmt.Errorf("base URL %q must be an absolute URL such as https://api.example.com", cfg.BaseURL)
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 8
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = 64 << 20
	}
	if cfg.BaseBackoff <= 0 {
		cfg.BaseBackoff = 500 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 60 * time.Second
	}
	transport := cfg.Transport
	if transport == nil {
		transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	limiter := rate.NewLimiter(rate.Inf, 0)
	if cfg.RequestsPerSecond > 0 {
		burst := cfg.Burst
		if burst <= 0 {
			burst = 1
		}
		limiter = rate.NewLimiter(rate.Limit(cfg.RequestsPerSecond), burst)
	}
	return &Client{
		cfg:     cfg,
		base:    base,
		http:    &http.Client{Transport: transport, Timeout: cfg.Timeout},
		limiter: limiter,
	}, nil
}

// Stats reports the work done so far.
func (c *Client) Stats() source.RequestStats {
	return source.RequestStats{Requests: c.requests.Load(), Retries: c.retries.Load(), RateLimited: c.limited.Load()}
}

// Request is one API call. Path is relative to the base URL ("/lead/").
type Request struct {
	Method string
	Path   string
	Query  url.Values
	Body   any // JSON-encoded when not nil
}

// Response is a successful answer: status 2xx with its whole body read.
type Response struct {
	Header http.Header
	Body   []byte
}

// StatusError is a final HTTP error answer: a 4xx other than 401, 403 and 429, or a body over the size bound.
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
func (c *Client) Do(ctx context.Context, req Request, decode func(Response) error) error {
	var lastErr error
	for attempt := 1; attempt <= c.cfg.MaxAttempts; attempt++ {
		if attempt > 1 {
			c.retries.Add(1)
		}
		wait, err := c.attempt(ctx, req, decode)
		if err == nil {
			return nil
		}
		var se *StatusError
		var ae *AuthError
		if errors.As(err, &ae) || errors.As(err, &se) || ctx.Err() != nil {
			return c.redactErr(err)
		}
		lastErr = err
		if attempt == c.cfg.MaxAttempts {
			break
		}
		// A host that cannot be reached at all is most likely a wrong setting: say so after a
		// few tries instead of backing off for minutes.
		if unreachable(err) && attempt >= maxUnreachableAttempts {
			return c.redactErr(fmt.Errorf("%s %s: cannot reach the API (check --base-url and the network): %w", req.Method, req.Path, err))
		}
		if wait <= 0 {
			wait = c.backoff(attempt)
		}
		if err := sleep(ctx, wait); err != nil {
			return c.redactErr(err)
		}
	}
	return c.redactErr(fmt.Errorf("%s %s: giving up after %d attempts: %w", req.Method, req.Path, c.cfg.MaxAttempts, lastErr))
}

// attempt sends the request once. It returns the server's wait hint with a failure worth
// retrying; *AuthError and *StatusError are final.
func (c *Client) attempt(ctx context.Context, req Request, decode func(Response) error) (time.Duration, error) {
	if err := c.pace(ctx); err != nil {
		return 0, err
	}
	httpReq, err := c.newRequest(ctx, req)
	if err != nil {
		return 0, err
	}
	c.requests.Add(1)
	resp, err := c.http.Do(httpReq)
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, fmt.Errorf("%s %s: %w", req.Method, req.Path, unwrapURLError(err))
	}
	defer resp.Body.Close()
	body, readErr := io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxResponseBytes+1))
	c.observeRateHeaders(resp.Header)
	c.observeDate(resp.Header)
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return 0, &AuthError{Status: resp.StatusCode, Hint: c.cfg.AuthHint}
	case resp.StatusCode == http.StatusTooManyRequests:
		c.limited.Add(1)
		wait := retryAfter(resp.Header, body)
		if wait > 0 {
			c.pauseFor(wait)
		}
		return wait, fmt.Errorf("%s %s: rate limited (HTTP 429)", req.Method, req.Path)
	case resp.StatusCode >= 500:
		return retryAfter(resp.Header, nil), fmt.Errorf("%s %s: HTTP %d", req.Method, req.Path, resp.StatusCode)
	case resp.StatusCode >= 400 || resp.StatusCode < 200 || resp.StatusCode >= 300:
		return 0, &StatusError{Status: resp.StatusCode, Message: errorMessage(body), Path: req.Path}
	}
	if readErr != nil {
		return 0, fmt.Errorf("%s %s: reading the response: %w", req.Method, req.Path, readErr)
	}
	if int64(len(body)) > c.cfg.MaxResponseBytes {
		return 0, &StatusError{Status: resp.StatusCode, Message: fmt.Sprintf("response larger than %d bytes", c.cfg.MaxResponseBytes), Path: req.Path}
	}
	if err := decode(Response{Header: resp.Header, Body: body}); err != nil {
		return 0, fmt.Errorf("%s %s: unreadable response (%d bytes): %w", req.Method, req.Path, len(body), err)
	}
	return 0, nil
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
			return nil, fmt.Errorf("encode request body: %w", err)
		}
		body = bytes.NewReader(b)
	}
	r, err := http.NewRequestWithContext(ctx, req.Method, u.String(), body)
	if err != nil {
		return nil, err
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
	return r, nil
}

// pace waits for the token bucket and for any pause the server asked for.
func (c *Client) pace(ctx context.Context) error {
	for {
		c.mu.Lock()
		until := c.pausedUntil
		c.mu.Unlock()
		d := time.Until(until)
		if d <= 0 {
			break
		}
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
	return c.limiter.Wait(ctx)
}

func (c *Client) pauseFor(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if until := time.Now().Add(d); until.After(c.pausedUntil) {
		c.pausedUntil = until
	}
}

var rateLimitHeader = regexp.MustCompile(`remaining=(\d+)\s*,\s*reset=([\d.]+)`)

// observeRateHeaders pauses proactively when the server says the budget is spent.
func (c *Client) observeRateHeaders(h http.Header) {
	if m := rateLimitHeader.FindStringSubmatch(h.Get("RateLimit")); m != nil {
		if m[1] == "0" {
			if s, err := strconv.ParseFloat(m[2], 64); err == nil {
				c.pauseFor(seconds(s))
			}
		}
		return
	}
	if h.Get("X-Rate-Limit-Remaining") == "0" {
		if s, err := strconv.ParseFloat(h.Get("X-Rate-Limit-Reset"), 64); err == nil {
			c.pauseFor(seconds(s))
		}
	}
}

// retryAfter reads the server's wait hint: RateLimit reset, Retry-After (seconds or HTTP
// date), RateLimit-Reset, X-Rate-Limit-Reset, then a JSON body's rate_reset (top level or
// under "error"; the two Close clients disagree on where it is).
func retryAfter(h http.Header, body []byte) time.Duration {
	if m := rateLimitHeader.FindStringSubmatch(h.Get("RateLimit")); m != nil {
		if s, err := strconv.ParseFloat(m[2], 64); err == nil && s > 0 {
			return seconds(s)
		}
	}
	if v := h.Get("Retry-After"); v != "" {
		if s, err := strconv.ParseFloat(v, 64); err == nil {
			return seconds(s)
		}
		if t, err := http.ParseTime(v); err == nil {
			return time.Until(t)
		}
	}
	for _, k := range []string{"RateLimit-Reset", "X-Rate-Limit-Reset"} {
		if s, err := strconv.ParseFloat(h.Get(k), 64); err == nil && s > 0 {
			return seconds(s)
		}
	}
	if len(body) > 0 {
		var b struct {
			RateReset float64 `json:"rate_reset"`
			Error     struct {
				RateReset float64 `json:"rate_reset"`
			} `json:"error"`
		}
		if json.Unmarshal(body, &b) == nil {
			if b.Error.RateReset > 0 {
				return seconds(b.Error.RateReset)
			}
			if b.RateReset > 0 {
				return seconds(b.RateReset)
			}
		}
	}
	return 0
}

func seconds(s float64) time.Duration {
	d := time.Duration(s * float64(time.Second))
	if d > 10*time.Minute {
		d = 10 * time.Minute // a broken hint must not stall a sync for hours
	}
	return d
}

// backoff is exponential with full jitter.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.cfg.BaseBackoff << (attempt - 1)
	if d > c.cfg.MaxBackoff || d <= 0 {
		d = c.cfg.MaxBackoff
	}
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
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
