// Package tribe is koppel's client of the Tribe CRM API: OAuth2 client credentials against the
// auth host, typed access to the OData v1 entity sets koppel syncs (organisations, persons, their
// customer and supplier relationships, addresses, products, invoices with product lines and
// phases, and the datastore look-ups), a query builder with correct OData literals, paging by
// $top/$skip or @odata.nextLink, writes (create, partial update by PUT or by POST with an ID,
// links by {"ID": …}), and webhook management.
//
// Calls go through pkg/apicall (timeouts, retries of 429 and 5xx honouring Retry-After, metrics
// with system="tribe"). Where the team's reference marks Tribe's behaviour UNCONFIRMED, the client
// accepts each plausible variant (see Config). Secrets never appear in errors or logs.
package tribe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/koppel/koppel/pkg/apicall"
)

// Defaults of Config.
const (
	DefaultBaseURL  = "https://api.tribecrm.nl"
	DefaultAuthURL  = "https://auth.tribecrm.nl"
	DefaultPageSize = 100
	// DefaultBulkPageSize is the $top of a bulk listing (Query.Bulk). Tribe's largest page is
	// UNCONFIRMED: a server that refuses it (400) or quietly sends fewer is handled, see List.
	DefaultBulkPageSize = 1000
	DefaultCallTimeout  = 2 * time.Minute
	// DefaultExternalIDField holds the e-Boekhouden ID on Tribe records (C5 uses ImportId the
	// same way), so links can be rebuilt from Tribe alone.
	DefaultExternalIDField = "ImportId"
)

// UpdateStyle selects how partial updates are sent; Tribe documents both (reference 1.3).
type UpdateStyle int

// Update styles.
const (
	// UpdateByPut sends PUT /Set(id) with the changed fields, falling back to POST with the ID
	// when the server answers 405 (and keeping to POST from then on).
	UpdateByPut UpdateStyle = iota
	// UpdateByPost sends POST /Set with "ID" in the body.
	UpdateByPost
)

// LookupSets name the datastore sets the reference leaves UNCONFIRMED.
type LookupSets struct {
	Unit                 string // default "Datastore_Unit"
	VatGroup             string // default "Datastore_VatGroup"
	GeneralLedgerAccount string // default "Datastore_GeneralLedgerAccount"
	ProductGroup         string // default "ProductGroup"
}

// Config configures a Client.
type Config struct {
	// BaseURL of the API host. Default DefaultBaseURL (staging: https://api-staging.tribecrm.nl).
	BaseURL string
	// AuthURL of the auth host; the token endpoint is AuthURL + "/oauth2/token". Default
	// DefaultAuthURL.
	AuthURL string
	// ClientID and ClientSecret of the Tribe application (client credentials flow). Required.
	ClientID     string
	ClientSecret string
	// Scopes to request. Default read and write; "offline" yields invalid_grant unless the
	// application has it (C2).
	Scopes []string
	// Caller makes the API calls. Required: one per process, built with apicall.New("tribe", …).
	Caller *apicall.Caller
	// Tenant keys the Caller's rate limiter.
	Tenant string
	// TokenHTTPClient fetches tokens. Default a client with a 30 s timeout that follows no
	// redirect (a redirect would carry the client secret in the request body to wherever it
	// points); tenantclients passes one on the Caller's guarded transport.
	TokenHTTPClient *http.Client
	// CallTimeout bounds one logical call, retries included. Default DefaultCallTimeout.
	CallTimeout time.Duration
	// PageSize is the $top of each page when listing. Default DefaultPageSize.
	PageSize int
	// BulkPageSize is the $top of each page of a bulk listing (Query.Bulk), which reads a whole
	// set once instead of querying it record by record. Default DefaultBulkPageSize.
	BulkPageSize int
	// ExternalIDField is the field holding the e-Boekhouden ID. Default DefaultExternalIDField;
	// a custom field name ("_<guid with __>") works too.
	ExternalIDField string
	// InvoiceDateField and DueDateField name the invoice's date fields (UNCONFIRMED). Defaults
	// "InvoiceDate" and "DueDate".
	InvoiceDateField, DueDateField string
	// UpdateStyle of partial updates. Default UpdateByPut.
	UpdateStyle UpdateStyle
	// Lookups names the look-up sets.
	Lookups LookupSets
}

// Client talks to one Tribe environment. It is safe for concurrent use.
type Client struct {
	cfg    Config
	base   *url.URL
	cc     clientcredentials.Config
	caller *apicall.Caller

	mu  sync.Mutex
	tok *oauth2.Token

	postUpdates atomic.Bool
	// bulkCap is the largest page the server was seen to give a bulk listing, once it refused or
	// cut a larger one; 0 until then.
	bulkCap atomic.Int64
}

// New returns a client; it does not call Tribe (Ping does).
func New(cfg Config) (*Client, error) {
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("new tribe client: client id and secret are required")
	}
	if cfg.Caller == nil {
		return nil, errors.New("new tribe client: an apicall.Caller is required")
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	if cfg.AuthURL == "" {
		cfg.AuthURL = DefaultAuthURL
	}
	if cfg.Scopes == nil {
		cfg.Scopes = []string{"read", "write"}
	}
	if cfg.TokenHTTPClient == nil {
		cfg.TokenHTTPClient = &http.Client{Timeout: 30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	if cfg.BulkPageSize <= 0 {
		cfg.BulkPageSize = DefaultBulkPageSize
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = DefaultPageSize
	}
	if cfg.ExternalIDField == "" {
		cfg.ExternalIDField = DefaultExternalIDField
	}
	if cfg.InvoiceDateField == "" {
		cfg.InvoiceDateField = "InvoiceDate"
	}
	if cfg.DueDateField == "" {
		cfg.DueDateField = "DueDate"
	}
	l := &cfg.Lookups
	for p, d := range map[*string]string{&l.Unit: "Datastore_Unit", &l.VatGroup: "Datastore_VatGroup", &l.GeneralLedgerAccount: "Datastore_GeneralLedgerAccount", &l.ProductGroup: "ProductGroup"} {
		if *p == "" {
			*p = d
		}
	}
	base, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil || base.Scheme == "" || base.Host == "" {
		return nil, errors.New("new tribe client: BaseURL must be an absolute URL")
	}
	c := &Client{cfg: cfg, base: base, caller: cfg.Caller}
	c.cc = clientcredentials.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
		TokenURL: strings.TrimRight(cfg.AuthURL, "/") + "/oauth2/token", Scopes: cfg.Scopes}
	c.postUpdates.Store(cfg.UpdateStyle == UpdateByPost)
	return c, nil
}

// ErrInvalidCredentials means Tribe refused the client id, secret or scopes: activation should say
// "the Tribe credentials are wrong". errors.Is finds it in an *AuthError.
var ErrInvalidCredentials = errors.New("the Tribe credentials are wrong")

// AuthError is a failed token request, with the OAuth error body.
type AuthError struct {
	StatusCode  int
	Code        string // invalid_client, invalid_grant, …
	Description string
}

func (e *AuthError) Error() string {
	s := fmt.Sprintf("tribe token: HTTP %d", e.StatusCode)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Description != "" {
		s += ": " + e.Description
	}
	return s
}

// Is makes errors.Is(err, ErrInvalidCredentials) true for credential and scope refusals.
func (e *AuthError) Is(target error) bool {
	if target != ErrInvalidCredentials {
		return false
	}
	switch e.Code {
	case "invalid_client", "invalid_grant", "unauthorized_client", "invalid_scope":
		return true
	}
	return e.StatusCode == http.StatusUnauthorized
}

// tokenEndpoint names the token request in the API metrics.
const tokenEndpoint = "POST /oauth2/token"

// token returns a valid access token, refreshing it a minute before it expires (C1, C5).
func (c *Client) token(ctx context.Context, force bool) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !force && c.tok != nil && time.Until(c.tok.Expiry) > time.Minute {
		return c.tok.AccessToken, nil
	}
	tctx := context.WithValue(ctx, oauth2.HTTPClient, c.cfg.TokenHTTPClient)
	start := time.Now()
	tok, err := c.cc.Token(tctx)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			ae := &AuthError{Code: re.ErrorCode, Description: re.ErrorDescription}
			if re.Response != nil {
				ae.StatusCode = re.Response.StatusCode
			}
			// Counted like any API call, so a refused client secret shows in the alerts.
			c.caller.Observe(tokenEndpoint, ae.StatusCode, start)
			return "", ae
		}
		c.caller.Observe(tokenEndpoint, 0, start)
		if ctx.Err() != nil {
			return "", fmt.Errorf("tribe token: %w", ctx.Err())
		}
		// Strip the URL-bearing wrapper: the token request carries the secret in its body, never
		// in the URL, but keep errors uniform with apicall's.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", fmt.Errorf("tribe token: %w: %w", apicall.ErrTransport, err)
	}
	c.caller.Observe(tokenEndpoint, http.StatusOK, start)
	if tok.Expiry.IsZero() {
		// No expires_in: assume an hour (the lifetime is UNCONFIRMED).
		tok.Expiry = time.Now().Add(time.Hour)
	}
	c.tok = tok
	return tok.AccessToken, nil
}

// Ping fetches a token and reads the current employee: the credential test of C2.
func (c *Client) Ping(ctx context.Context) error {
	if _, err := c.CurrentEmployee(ctx); err != nil {
		return fmt.Errorf("tribe ping: %w", err)
	}
	return nil
}

// APIError is an error answer of the API, with the OData error body when there was one.
type APIError struct {
	StatusCode int
	Code       string
	Message    string
	// Endpoint is the route template of the call, e.g. "GET /v1/odata/Relation_Organization({id})".
	Endpoint string
	// RetryAfter is the server's hint on 429/503, when sent.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("%s: HTTP %d", e.Endpoint, e.StatusCode)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// ErrModuleNotEnabled marks "entity type not found" on the invoice sets: the environment lacks the
// Billing/Invoicing module (C2).
var ErrModuleNotEnabled = errors.New("tribe: the invoicing module is not enabled")

// Is makes errors.Is(err, ErrModuleNotEnabled) work.
func (e *APIError) Is(target error) bool {
	return target == ErrModuleNotEnabled && e.Code == "EntityTypeNotFound"
}

// IsNotFound reports whether err is a 404 for a record (not for a whole entity type).
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.StatusCode == http.StatusNotFound && ae.Code != "EntityTypeNotFound"
}

// IsRetryable reports whether trying again later may succeed: 429, 5xx (except 501), 401 after a
// refused refresh is not; transport failures and timeouts are.
func IsRetryable(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.StatusCode == http.StatusTooManyRequests || ae.StatusCode >= 500 && ae.StatusCode != http.StatusNotImplemented
	}
	var au *AuthError
	if errors.As(err, &au) {
		return au.StatusCode == http.StatusTooManyRequests || au.StatusCode >= 500
	}
	return apicall.IsTransient(err) || errors.Is(err, context.DeadlineExceeded)
}

// call is one API call.
type call struct {
	method   string
	path     string // below BaseURL, e.g. /v1/odata/Product
	rawURL   string // absolute URL instead of path (nextLink)
	query    string
	endpoint string
	body     any
}

// do makes a call and returns the answer's body for 2xx. It retries once with a fresh token on
// 401, since a token can be revoked before its expiry.
func (c *Client) do(ctx context.Context, k call) ([]byte, int, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	var body []byte
	if k.body != nil {
		var err error
		if body, err = json.Marshal(k.body); err != nil {
			return nil, 0, fmt.Errorf("%s: encode body: %w", k.endpoint, err)
		}
	}
	u := k.rawURL
	if u == "" {
		u = c.base.String() + k.path
		if k.query != "" {
			u += "?" + k.query
		}
	}
	for attempt := 0; ; attempt++ {
		tok, err := c.token(ctx, attempt > 0)
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", k.endpoint, err)
		}
		h := http.Header{}
		h.Set("Authorization", "Bearer "+tok)
		h.Set("Accept", "application/json")
		if body != nil {
			h.Set("Content-Type", "application/json")
		}
		resp, err := c.caller.Do(ctx, &apicall.Request{Method: k.method, URL: u, Endpoint: k.endpoint, Header: h, Body: body, Tenant: c.cfg.Tenant})
		if err != nil {
			return nil, 0, err
		}
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
			continue
		}
		if resp.StatusCode >= 400 {
			return nil, resp.StatusCode, decodeError(k.endpoint, resp)
		}
		return resp.Body, resp.StatusCode, nil
	}
}

func decodeError(endpoint string, resp *apicall.Response) error {
	e := &APIError{StatusCode: resp.StatusCode, Endpoint: endpoint}
	if resp.HasRetryAfter {
		e.RetryAfter = resp.RetryAfter
	}
	var od struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(resp.Body, &od) == nil && len(od.Error) > 0 {
		var inner struct {
			Code    any    `json:"code"`
			Message string `json:"message"`
		}
		if json.Unmarshal(od.Error, &inner) == nil {
			if inner.Code != nil {
				e.Code = fmt.Sprint(inner.Code)
			}
			e.Message = inner.Message
		} else {
			// An OAuth-style body: {"error":"…","error_description":"…"}.
			var o struct {
				Error string `json:"error"`
				Desc  string `json:"error_description"`
			}
			_ = json.Unmarshal(resp.Body, &o)
			e.Code, e.Message = o.Error, o.Desc
		}
	}
	if len(e.Message) > 500 {
		e.Message = e.Message[:500] + "…"
	}
	return e
}

// decodeJSON decodes with numbers kept exact.
func decodeJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}
