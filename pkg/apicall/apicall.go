// Package apicall is koppel's outbound HTTP layer: one logical call to a remote API (e-Boekhouden,
// Tribe) with a per-attempt timeout, retries of 429 and 5xx answers (and of network errors on
// idempotent requests) with capped exponential backoff and full jitter, Retry-After honoured,
// an optional per-tenant adaptive rate limiter, and Prometheus metrics.
//
// The package knows nothing of the remote API's error format: Do returns every HTTP answer it does
// not retry (including the last one when retries run out), and API clients decode it themselves.
// Request bodies are bytes, so every retry sends the same body.
//
// Secrets stay out of logs and errors: errors name the method and route template (never the raw
// URL), and headers are never logged.
package apicall

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ErrTransport marks a failure to get any HTTP answer (connection refused or reset, timeout,
// truncated body). Such failures are transient; errors.Is(err, ErrTransport) tells them apart from
// context cancellation by the caller.
var ErrTransport = errors.New("transport failure")

// ErrResponseTooLarge is returned when an answer's body exceeds the configured maximum.
var ErrResponseTooLarge = errors.New("response body too large")

// Defaults of a Caller's options.
const (
	DefaultTimeout      = 30 * time.Second
	DefaultMaxAttempts  = 4
	DefaultBaseDelay    = 250 * time.Millisecond
	DefaultMaxDelay     = 10 * time.Second
	DefaultMaxRetryWait = 60 * time.Second
	DefaultMaxBodyBytes = 64 << 20
)

// Request is one logical call.
type Request struct {
	// Method is the HTTP method; empty means GET.
	Method string
	// URL is the absolute URL including the query.
	URL string
	// Endpoint is the low-cardinality route template used in metrics and errors, such as
	// "GET /v1/relation/{id}". Empty means Method plus the URL's path, which is only acceptable
	// for paths without IDs.
	Endpoint string
	// Header is sent with every attempt. Authorization lives here; it is never logged.
	Header http.Header
	// Body is sent with every attempt (nil for none).
	Body []byte
	// Idempotent overrides the method's idempotency (GET, HEAD, OPTIONS, PUT, DELETE are
	// idempotent) for the retry of network errors. Set it on a POST that is safe to repeat.
	Idempotent bool
	// Tenant keys the rate limiter; empty shares one bucket.
	Tenant string
}

// Response is the answer that ended the call.
type Response struct {
	StatusCode int
	Header     http.Header
	Body       []byte
	// Attempts is how many HTTP attempts the call made (1 when no retry happened).
	Attempts int
	// RetryAfter is the server's Retry-After on this answer, when it sent a valid one. Callers pass
	// it on (for example as a message's redelivery delay) when the call ended in a 429 or 503.
	RetryAfter    time.Duration
	HasRetryAfter bool
}

// Limiter paces calls per key. AdaptiveLimiter implements it.
type Limiter interface {
	// Wait blocks until a call for key may go, and reports how long it waited.
	Wait(ctx context.Context, key string) (time.Duration, error)
	// Throttled tells the limiter that the server answered 429 for key.
	Throttled(key string)
}

// Option configures a Caller.
type Option func(*Caller)

// WithHTTPClient sets the HTTP client, used as is. Default: a client with its own transport
// (keep-alives, 100 idle connections per host, the Guard's dial check with WithGuard) that
// follows no redirect, and no overall timeout, since WithTimeout bounds each attempt.
func WithHTTPClient(c *http.Client) Option { return func(k *Caller) { k.client = c } }

// WithTimeout bounds each attempt, body read included. Default DefaultTimeout (30 s).
func WithTimeout(d time.Duration) Option { return func(k *Caller) { k.timeout = d } }

// WithMaxAttempts sets the maximum number of attempts of one call, first one included.
// Default DefaultMaxAttempts (4); 1 disables retries.
func WithMaxAttempts(n int) Option { return func(k *Caller) { k.maxAttempts = max(n, 1) } }

// WithBackoff sets the base and the cap of the exponential backoff between attempts: attempt n
// waits a uniformly random time in [0, min(maxDelay, base·2^(n-1))) ("full jitter").
// Defaults DefaultBaseDelay (250 ms) and DefaultMaxDelay (10 s).
func WithBackoff(base, maxDelay time.Duration) Option {
	return func(k *Caller) { k.baseDelay, k.maxDelay = base, maxDelay }
}

// WithMaxRetryWait bounds how long the Caller itself will wait on a Retry-After. A longer
// Retry-After ends the call with that answer, so the caller can reschedule instead of holding a
// worker. Default DefaultMaxRetryWait (60 s).
func WithMaxRetryWait(d time.Duration) Option { return func(k *Caller) { k.maxRetryWait = d } }

// WithLimiter paces calls through l, keyed by Request.Tenant. Default: no limiter.
func WithLimiter(l Limiter) Option { return func(k *Caller) { k.limiter = l } }

// WithRegisterer registers the metrics with r. Default prometheus.DefaultRegisterer. Metrics
// already registered (by another Caller) are shared.
func WithRegisterer(r prometheus.Registerer) Option { return func(k *Caller) { k.registerer = r } }

// WithLogger logs retries at debug level. Default: no logging.
func WithLogger(l *slog.Logger) Option { return func(k *Caller) { k.log = l } }

// WithMaxBodyBytes bounds the size of an answer's body. Default DefaultMaxBodyBytes (64 MiB).
func WithMaxBodyBytes(n int64) Option { return func(k *Caller) { k.maxBody = n } }

// WithRandSeed makes the jitter deterministic, for tests. Default: a random seed.
func WithRandSeed(seed uint64) Option {
	return func(k *Caller) { k.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }
}

// Caller makes calls to one remote system. It is safe for concurrent use.
type Caller struct {
	system       string
	client       *http.Client
	timeout      time.Duration
	maxAttempts  int
	baseDelay    time.Duration
	maxDelay     time.Duration
	maxRetryWait time.Duration
	maxBody      int64
	limiter      Limiter
	guard        *Guard
	registerer   prometheus.Registerer
	log          *slog.Logger
	metrics      *metrics

	rngMu sync.Mutex
	rng   *rand.Rand
}

// New returns a Caller for system ("eboekhouden" or "tribe"), which labels its metrics.
func New(system string, opts ...Option) (*Caller, error) {
	c := &Caller{
		system:       system,
		timeout:      DefaultTimeout,
		maxAttempts:  DefaultMaxAttempts,
		baseDelay:    DefaultBaseDelay,
		maxDelay:     DefaultMaxDelay,
		maxRetryWait: DefaultMaxRetryWait,
		maxBody:      DefaultMaxBodyBytes,
		registerer:   prometheus.DefaultRegisterer,
	}
	for _, o := range opts {
		o(c)
	}
	if system == "" {
		return nil, errors.New("new caller: empty system name")
	}
	if c.client == nil {
		var tr *http.Transport
		if c.guard != nil {
			tr = c.guard.Transport()
		} else {
			tr = http.DefaultTransport.(*http.Transport).Clone()
			tr.MaxIdleConnsPerHost = 100
		}
		// A redirect is answered back, never followed: it would carry the Authorization
		// header, or a token request's body, to wherever it points.
		c.client = &http.Client{Transport: tr, CheckRedirect: noRedirect}
	}
	if c.rng == nil {
		c.rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	m, err := registerMetrics(c.registerer)
	if err != nil {
		return nil, fmt.Errorf("new caller: %w", err)
	}
	c.metrics = m
	return c, nil
}

// System is the system name the Caller labels its metrics with.
func (c *Caller) System() string { return c.system }

// Do makes one logical call. It returns the answer that ended the call, whatever its status; an
// error means no usable answer (transport failure after the allowed attempts, cancelled context,
// body too large). Errors are prefixed with the route template, never the URL.
func (c *Caller) Do(ctx context.Context, req *Request) (*Response, error) {
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	endpoint := req.Endpoint
	if endpoint == "" {
		endpoint = method + " " + pathOf(req.URL)
	}
	idempotent := req.Idempotent || isIdempotentMethod(method)

	var lastErr error
	for attempt := 1; ; attempt++ {
		if c.limiter != nil {
			waited, err := c.limiter.Wait(ctx, req.Tenant)
			if waited > 0 {
				c.metrics.rateWait.WithLabelValues(c.system).Add(waited.Seconds())
			}
			if err != nil {
				return nil, fmt.Errorf("%s: rate limiter: %w", endpoint, err)
			}
		}
		resp, err := c.attempt(ctx, method, endpoint, req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("%s: %w", endpoint, ctx.Err())
			}
			lastErr = err
			if !idempotent || attempt >= c.maxAttempts || !errors.Is(err, ErrTransport) {
				return nil, fmt.Errorf("%s: %w", endpoint, err)
			}
			if err := c.pause(ctx, endpoint, attempt, c.backoff(attempt), false, lastErr); err != nil {
				return nil, err
			}
			continue
		}
		resp.Attempts = attempt
		if !retryableStatus(resp.StatusCode) {
			return resp, nil
		}
		if resp.StatusCode == http.StatusTooManyRequests && c.limiter != nil {
			c.limiter.Throttled(req.Tenant)
		}
		if attempt >= c.maxAttempts {
			return resp, nil
		}
		wait := c.backoff(attempt)
		if resp.HasRetryAfter {
			if resp.RetryAfter > c.maxRetryWait {
				return resp, nil
			}
			wait = max(resp.RetryAfter, wait/4)
		}
		if err := c.pause(ctx, endpoint, attempt, wait, resp.StatusCode == http.StatusTooManyRequests,
			fmt.Errorf("HTTP %d", resp.StatusCode)); err != nil {
			return nil, err
		}
	}
}

// pause waits before the next attempt and counts the retry.
func (c *Caller) pause(ctx context.Context, endpoint string, attempt int, wait time.Duration, throttled bool, cause error) error {
	c.metrics.retries.WithLabelValues(c.system, endpoint).Inc()
	if c.log != nil {
		c.log.LogAttrs(ctx, slog.LevelDebug, "retrying API call",
			slog.String("system", c.system), slog.String("endpoint", endpoint),
			slog.Int("attempt", attempt), slog.Duration("wait", wait), slog.String("cause", cause.Error()))
	}
	if throttled && wait > 0 {
		c.metrics.rateWait.WithLabelValues(c.system).Add(wait.Seconds())
	}
	if wait <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("%s: waiting to retry after %v: %w", endpoint, cause, ctx.Err())
	case <-t.C:
		return nil
	}
}

func (c *Caller) attempt(ctx context.Context, method, endpoint string, req *Request) (*Response, error) {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var body io.Reader
	if req.Body != nil {
		body = bytes.NewReader(req.Body)
	}
	hr, err := http.NewRequestWithContext(actx, method, req.URL, body)
	if err != nil {
		// A malformed URL is a programming error, not a transport failure: no retry.
		return nil, fmt.Errorf("build request: %w", stripURL(err))
	}
	if err := c.CheckURL(req.URL); err != nil {
		return nil, err
	}
	for k, vs := range req.Header {
		hr.Header[k] = vs
	}
	start := time.Now()
	hresp, err := c.client.Do(hr)
	if err != nil {
		c.observe(endpoint, "error", start)
		if errors.Is(err, ErrAddressNotAllowed) {
			// Refused by policy, not by the network: trying again changes nothing.
			return nil, stripURL(err)
		}
		return nil, fmt.Errorf("%w: %w", ErrTransport, stripURL(err))
	}
	defer hresp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(hresp.Body, c.maxBody+1))
	if err != nil {
		c.observe(endpoint, "error", start)
		return nil, fmt.Errorf("%w: read body: %w", ErrTransport, stripURL(err))
	}
	c.observe(endpoint, strconv.Itoa(hresp.StatusCode), start)
	if int64(len(b)) > c.maxBody {
		return nil, fmt.Errorf("%w (more than %d bytes)", ErrResponseTooLarge, c.maxBody)
	}
	resp := &Response{StatusCode: hresp.StatusCode, Header: hresp.Header, Body: b}
	if ra := hresp.Header.Get("Retry-After"); ra != "" {
		resp.RetryAfter, resp.HasRetryAfter = ParseRetryAfter(ra, time.Now())
	}
	return resp, nil
}

// Observe counts a call made outside Do (such as an OAuth token request, which its library makes)
// in the same metrics: status is the HTTP status, or 0 when no answer came.
func (c *Caller) Observe(endpoint string, status int, start time.Time) {
	label := "error"
	if status > 0 {
		label = strconv.Itoa(status)
	}
	c.observe(endpoint, label, start)
}

func (c *Caller) observe(endpoint, status string, start time.Time) {
	c.metrics.requests.WithLabelValues(c.system, endpoint, status).Inc()
	c.metrics.duration.WithLabelValues(c.system, endpoint).Observe(time.Since(start).Seconds())
}

// backoff is the full-jitter delay before attempt+1.
func (c *Caller) backoff(attempt int) time.Duration {
	ceil := c.baseDelay
	for i := 1; i < attempt && ceil < c.maxDelay; i++ {
		ceil *= 2
	}
	ceil = min(ceil, c.maxDelay)
	if ceil <= 0 {
		return 0
	}
	c.rngMu.Lock()
	defer c.rngMu.Unlock()
	return time.Duration(c.rng.Int64N(int64(ceil)))
}

func retryableStatus(code int) bool {
	return code == http.StatusTooManyRequests || (code >= 500 && code <= 599 && code != http.StatusNotImplemented)
}

func isIdempotentMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// stripURL drops the URL from *url.Error: a query may hold personal data, and this layer promises
// errors without raw URLs.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func pathOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "?"
	}
	return u.Path
}

// ParseRetryAfter reads a Retry-After header, either delay-seconds or an HTTP-date, relative to
// now. A date in the past yields 0. It reports false for an empty or malformed value.
func ParseRetryAfter(header string, now time.Time) (time.Duration, bool) {
	if header == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(header, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		// Cap absurd values so the multiplication cannot overflow.
		secs = min(secs, int64(365*24*time.Hour/time.Second))
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(header)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// IsTransient reports whether err from Do is worth trying again later: a transport failure or a
// timeout of an attempt (not a cancellation by the caller).
func IsTransient(err error) bool {
	if errors.Is(err, ErrTransport) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
