// Package eboekhouden is a client of the e-Boekhouden.nl REST API (https://api.e-boekhouden.nl/v1).
//
// A Client holds one administration's session: it exchanges the API token for a short-lived session
// token, refreshes it before it expires, opens a new one once when a call is answered 401, and
// revokes it on Close. Calls go through pkg/apicall, so they are retried on 429 and 5xx, paced
// per tenant and counted in Prometheus.
//
// Money and quantities are decimals (Amount, Quantity), never floats. Decoders are lenient where
// the API is known to drift (mutation types as numbers or strings, dates with a time part, ints for
// booleans, null for absent values); lists are paged until a short page, never trusting "count".
package eboekhouden

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/koppel/koppel/pkg/apicall"
)

// Defaults of a Client's options.
const (
	DefaultBaseURL = "https://api.e-boekhouden.nl"
	// DefaultPageSize is below the spec's maximum (2000) because one public client reports a cap
	// of 500 on some lists; a smaller page is never wrong, only slower.
	DefaultPageSize = 500
	// DefaultRefreshMargin is how long before expiry a session is renewed; for short sessions a
	// quarter of the lifetime is used when that is less.
	DefaultRefreshMargin = 60 * time.Second
)

var sourcePattern = regexp.MustCompile(`^[\p{L}\p{N}_ ]{1,10}$`)

// ValidSource reports whether source is accepted by the API: 1 to 10 word characters or spaces.
func ValidSource(source string) bool { return sourcePattern.MatchString(source) }

// Option configures a Client.
type Option func(*Client)

// WithBaseURL sets the API's base URL (without /v1). Default DefaultBaseURL.
func WithBaseURL(u string) Option { return func(c *Client) { c.base = strings.TrimRight(u, "/") } }

// WithCaller makes calls through k. Default: a Caller for system "eboekhouden" with apicall's
// defaults, registered on prometheus.DefaultRegisterer.
func WithCaller(k *apicall.Caller) Option { return func(c *Client) { c.caller = k } }

// WithTenant sets the tenant that keys the Caller's rate limiter. Default "".
func WithTenant(t string) Option { return func(c *Client) { c.tenant = t } }

// WithPageSize sets the page size of the iterators (1..2000). Default DefaultPageSize.
func WithPageSize(n int) Option { return func(c *Client) { c.pageSize = min(max(n, 1), 2000) } }

// WithBearer sends "Authorization: Bearer <token>" instead of the raw token the spec documents.
// Default false (raw token).
func WithBearer(b bool) Option { return func(c *Client) { c.bearer = b } }

// WithRefreshMargin sets how long before expiry a session is renewed. Default
// DefaultRefreshMargin, capped at a quarter of the session's lifetime.
func WithRefreshMargin(d time.Duration) Option { return func(c *Client) { c.margin = d } }

// WithClock sets the clock used for session expiry, for tests. Default time.Now.
func WithClock(now func() time.Time) Option { return func(c *Client) { c.now = now } }

// Client is a session with one administration. It is safe for concurrent use.
type Client struct {
	base     string
	caller   *apicall.Caller
	tenant   string
	pageSize int
	bearer   bool
	margin   time.Duration
	now      func() time.Time

	accessToken string
	source      string

	mu      sync.Mutex
	token   string
	expires time.Time
	flight  *sessionFlight
	closed  bool
}

type sessionFlight struct {
	done chan struct{}
	err  error
}

// New returns a client of the administration whose API token is accessToken. source identifies
// the integration to e-Boekhouden and must match ^[\w ]{1,10}$. No call is made until the first
// request.
func New(accessToken, source string, opts ...Option) (*Client, error) {
	c := &Client{
		base:        DefaultBaseURL,
		pageSize:    DefaultPageSize,
		margin:      DefaultRefreshMargin,
		now:         time.Now,
		accessToken: accessToken,
		source:      source,
	}
	for _, o := range opts {
		o(c)
	}
	if !ValidSource(source) {
		return nil, fmt.Errorf("new e-boekhouden client: %w", ErrInvalidSource)
	}
	if accessToken == "" {
		return nil, errors.New("new e-boekhouden client: empty access token")
	}
	if c.caller == nil {
		k, err := apicall.New("eboekhouden")
		if err != nil {
			return nil, fmt.Errorf("new e-boekhouden client: %w", err)
		}
		c.caller = k
	}
	return c, nil
}

type sessionRequest struct {
	AccessToken string `json:"accessToken"`
	Source      string `json:"source"`
}

type sessionResponse struct {
	Token     string  `json:"token"`
	ExpiresIn FlexInt `json:"expiresIn"`
}

// session returns a valid session token, opening one if needed. Concurrent callers share one
// session request in flight.
func (c *Client) session(ctx context.Context) (string, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return "", ErrClosed
		}
		if c.token != "" && c.now().Before(c.expires) {
			t := c.token
			c.mu.Unlock()
			return t, nil
		}
		if f := c.flight; f != nil {
			c.mu.Unlock()
			select {
			case <-f.done:
				if f.err != nil {
					return "", f.err
				}
				continue
			case <-ctx.Done():
				return "", ctx.Err()
			}
		}
		f := &sessionFlight{done: make(chan struct{})}
		c.flight = f
		c.mu.Unlock()

		// The session is shared, so one caller's cancellation must not fail the others' wait.
		tok, ttl, err := c.openSession(context.WithoutCancel(ctx))
		c.mu.Lock()
		c.flight = nil
		if err == nil {
			c.token = tok
			margin := min(c.margin, ttl/4)
			c.expires = c.now().Add(ttl - margin)
		}
		f.err = err
		close(f.done)
		c.mu.Unlock()
		if err != nil {
			return "", err
		}
		return tok, nil
	}
}

func (c *Client) openSession(ctx context.Context) (string, time.Duration, error) {
	body, err := json.Marshal(sessionRequest{AccessToken: c.accessToken, Source: c.source})
	if err != nil {
		return "", 0, fmt.Errorf("open session: %w", err)
	}
	resp, err := c.caller.Do(ctx, &apicall.Request{
		Method: http.MethodPost, URL: c.base + "/v1/session", Endpoint: "POST /v1/session",
		Header: jsonHeader(), Body: body, Tenant: c.tenant,
		// Opening a session twice is harmless.
		Idempotent: true,
	})
	if err != nil {
		return "", 0, fmt.Errorf("open session: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return "", 0, fmt.Errorf("open session: %w", decodeAPIError(resp))
	}
	var s sessionResponse
	if err := json.Unmarshal(resp.Body, &s); err != nil {
		return "", 0, fmt.Errorf("open session: decode answer: %w", err)
	}
	if s.Token == "" {
		return "", 0, errors.New("open session: answer without token")
	}
	ttl := time.Duration(s.ExpiresIn) * time.Second
	if ttl <= 0 {
		// The lifetime is undocumented; clients fall back to 30 minutes.
		ttl = 30 * time.Minute
	}
	return s.Token, ttl, nil
}

// dropSession forgets tok if it is still the current session, so the next call opens a new one.
func (c *Client) dropSession(tok string) {
	c.mu.Lock()
	if c.token == tok {
		c.token = ""
	}
	c.mu.Unlock()
}

// Close revokes the session (DELETE /v1/session). Further calls fail with ErrClosed.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	tok := c.token
	c.token = ""
	c.closed = true
	c.mu.Unlock()
	if tok == "" {
		return nil
	}
	resp, err := c.caller.Do(ctx, &apicall.Request{
		Method: http.MethodDelete, URL: c.base + "/v1/session", Endpoint: "DELETE /v1/session",
		Header: c.authHeader(tok), Tenant: c.tenant,
	})
	if err != nil {
		return fmt.Errorf("close session: %w", err)
	}
	if resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusUnauthorized {
		return fmt.Errorf("close session: %w", decodeAPIError(resp))
	}
	return nil
}

func jsonHeader() http.Header {
	return http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json"}}
}

func (c *Client) authHeader(tok string) http.Header {
	h := jsonHeader()
	if c.bearer {
		h.Set("Authorization", "Bearer "+tok)
	} else {
		h.Set("Authorization", tok)
	}
	return h
}

// call makes one authorised API call. endpoint is the route template for metrics; in is encoded
// as the JSON body when not nil; out receives the decoded answer when not nil.
func (c *Client) call(ctx context.Context, method, path, endpoint string, query string, in, out any) error {
	var body []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = b
	}
	u := c.base + path
	if query != "" {
		u += "?" + query
	}
	for attempt := 0; ; attempt++ {
		tok, err := c.session(ctx)
		if err != nil {
			return err
		}
		resp, err := c.caller.Do(ctx, &apicall.Request{
			Method: method, URL: u, Endpoint: endpoint, Header: c.authHeader(tok), Body: body, Tenant: c.tenant,
		})
		if err != nil {
			return err
		}
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
			// The session expired or was revoked early: open a new one and try once more.
			c.dropSession(tok)
			continue
		}
		if resp.StatusCode/100 != 2 {
			return decodeAPIError(resp)
		}
		if out == nil || len(bytes.TrimSpace(resp.Body)) == 0 {
			return nil
		}
		if err := json.Unmarshal(resp.Body, out); err != nil {
			return fmt.Errorf("decode answer: %w", err)
		}
		return nil
	}
}
