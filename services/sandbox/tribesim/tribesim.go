// Package tribesim is a faithful in-memory simulator of the Tribe CRM API, built from section 7 of
// the team's Tribe reference (../shared/reference/tribe-crm-api.md): the OAuth2 token endpoint, the
// OData v1 service with its query subset and write conventions, invoice phases, webhook
// registration and signed delivery, for many Tribe environments (tenants) in one process. Where the
// reference marks a behaviour UNCONFIRMED, Options makes it configurable so the client can be
// proven against each plausible variant.
//
// The Simulator is an http.Handler serving, at the root of whatever it is mounted on:
//
//	POST /oauth2/token            the auth host (client credentials, refresh token)
//	     /v1/odata/...            the OData service
//	     /v1/webhooks[/{id}]      webhook management
//	     /_sim/...                the admin API (see admin.go)
//
// Mount it under a prefix with http.StripPrefix.
package tribesim

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Options configure a Simulator. The zero value is usable: it gives the defaults documented on
// each field.
type Options struct {
	// Seed seeds the simulator's random sources (IDs, secrets, tokens, probabilistic faults), so a
	// run is reproducible. Default 1.
	Seed uint64
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// TokenLifetime is the expires_in of issued access tokens. Default 3600s.
	TokenLifetime time.Duration
	// AcceptQueryToken also accepts the token as ?access_token= (seen in older client code).
	// Default false: only the Authorization header.
	AcceptQueryToken bool
	// PlusAsSpace decodes '+' in query strings as a space. Default false, as the real server is
	// reported not to (reference 1.3): clients must send %20.
	PlusAsSpace bool
	// ServerPageSize, when positive, caps every list response at that many records and adds an
	// @odata.nextLink. Default 0: no server paging (as the client code seen in the wild assumes).
	ServerPageSize int
	// MaxTop is the largest $top the server serves (UNCONFIRMED for Tribe); 0 serves any.
	MaxTop int
	// MaxTopRefuses makes a larger $top a 400 instead of a page cut to MaxTop without a nextLink.
	MaxTopRefuses bool
	// CreateStatus is the status of a successful create: 200 or 201. Default 201.
	CreateStatus int
	// PlainCreateAnswer answers a deep insert with the created entity alone. Default false: the
	// answer is expanded to the level of the request, as OData 4.0 demands (whether Tribe does
	// is UNCONFIRMED), so the IDs of the records created with it are in it.
	PlainCreateAnswer bool
	// UpdateNoContent answers a successful update with 204 and no body instead of 200 and the entity.
	UpdateNoContent bool
	// PutReplaces makes PUT a full replacement (fields absent from the body become null). Default
	// false: PUT merges, as the reference documents.
	PutReplaces bool
	// Lookups names the datastore sets the reference leaves UNCONFIRMED.
	Lookups LookupSets
	// InvoiceDateField and DueDateField name the invoice's date fields. Defaults "InvoiceDate"
	// and "DueDate".
	InvoiceDateField, DueDateField string
	// InvoiceAmount says whether an invoice's Amount is its total excl. or incl. VAT (the
	// reference leaves it open). Default AmountExclVAT.
	InvoiceAmount InvoiceAmount
	// AdminToken, when set, protects /_sim/ with "Authorization: Bearer <AdminToken>".
	AdminToken string
	// RequireHTTPSWebhooks rejects webhook URLs that are not https, as Tribe does. Default false,
	// so tests can register httptest servers.
	RequireHTTPSWebhooks bool
	// SignatureHeader is the header carrying the webhook signature. Default "X-Tribe-Signature"
	// (the real name is UNCONFIRMED).
	SignatureHeader string
	// SignatureAlgorithm is "sha512" (default) or "sha256".
	SignatureAlgorithm string
	// SignatureEncoding is "base64" (default) or "hex".
	SignatureEncoding string
	// SignatureKeyed selects HMAC (default, "hmac") or a plain hash of secret‖body ("concat").
	SignatureKeyed string
	// MutationTypeKey is the payload key of the mutation discriminator. Default "type".
	MutationTypeKey string
	// MinimalPayload sends only the documented payload keys (discriminator and entityId or
	// relationshipId), without entityType, timestamp and mutationId.
	MinimalPayload bool
	// WebhookTimeout bounds one delivery attempt. Default 10s.
	WebhookTimeout time.Duration
	// WebhookRetryDelays are the waits before each retry of a failed delivery; its length is the
	// number of retries. Default 1s, 5s, 30s, 2m, 10m.
	WebhookRetryDelays []time.Duration
	// WebhookClient sends deliveries. Default a client with WebhookTimeout.
	WebhookClient *http.Client
	// Environments are created at start.
	Environments []EnvironmentSpec
}

func (o Options) withDefaults() Options {
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.TokenLifetime <= 0 {
		o.TokenLifetime = time.Hour
	}
	if o.CreateStatus == 0 {
		o.CreateStatus = http.StatusCreated
	}
	o.Lookups = o.Lookups.withDefaults()
	if o.InvoiceDateField == "" {
		o.InvoiceDateField = "InvoiceDate"
	}
	if o.DueDateField == "" {
		o.DueDateField = "DueDate"
	}
	if o.SignatureHeader == "" {
		o.SignatureHeader = "X-Tribe-Signature"
	}
	if o.SignatureAlgorithm == "" {
		o.SignatureAlgorithm = "sha512"
	}
	if o.SignatureEncoding == "" {
		o.SignatureEncoding = "base64"
	}
	if o.SignatureKeyed == "" {
		o.SignatureKeyed = "hmac"
	}
	if o.MutationTypeKey == "" {
		o.MutationTypeKey = "type"
	}
	if o.WebhookTimeout <= 0 {
		o.WebhookTimeout = 10 * time.Second
	}
	if o.WebhookRetryDelays == nil {
		o.WebhookRetryDelays = []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute}
	}
	if o.WebhookClient == nil {
		o.WebhookClient = &http.Client{Timeout: o.WebhookTimeout}
	}
	return o
}

// Simulator is an in-memory Tribe CRM. It is safe for concurrent use.
type Simulator struct {
	opts   Options
	schema *schema

	mu     sync.Mutex
	rng    *rand.Rand
	envs   map[string]*env
	envOrd []string
	tokens map[string]*tokenInfo
	// refresh tokens, to access-token info templates
	refresh map[string]*tokenInfo

	// dls are the webhook deliverers, one per environment (see deliverer), made at its first
	// webhook.
	dls      []*deliverer
	closed   bool
	admin    *http.ServeMux
	startErr []error
}

// New returns a simulator; Close stops its webhook deliverers. Environments in
// opts that fail to be created are reported by Err.
func New(opts Options) *Simulator {
	opts = opts.withDefaults()
	s := &Simulator{
		opts:    opts,
		schema:  buildSchema(opts.Lookups, opts.InvoiceDateField, opts.DueDateField),
		rng:     rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x7269626573696d)),
		envs:    map[string]*env{},
		tokens:  map[string]*tokenInfo{},
		refresh: map[string]*tokenInfo{},
	}
	s.admin = s.adminRoutes()
	for _, spec := range opts.Environments {
		if _, err := s.CreateEnvironment(spec); err != nil {
			s.startErr = append(s.startErr, err)
		}
	}
	return s
}

// Err reports why environments given in Options could not be created, if any.
func (s *Simulator) Err() error {
	if len(s.startErr) == 0 {
		return nil
	}
	return fmt.Errorf("tribesim: %v", s.startErr)
}

// Close stops webhook delivery and waits for the deliverers to finish.
func (s *Simulator) Close() {
	s.mu.Lock()
	dls := s.dls
	s.dls, s.closed = nil, true
	s.mu.Unlock()
	for _, d := range dls {
		d.close()
	}
}

// ServeHTTP routes to the auth host, the API and the admin API.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/oauth2/token" || p == "/oauth2/token/":
		s.serveToken(w, r)
	case strings.HasPrefix(p, "/_sim/") || p == "/_sim":
		s.serveAdmin(w, r)
	case strings.HasPrefix(p, "/v1/"):
		s.serveAPI(w, r)
	default:
		writeODataError(w, http.StatusNotFound, "NotFound", "no such path")
	}
}

// apiError is an error answered to the client.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func errf(status int, code, format string, args ...any) *apiError {
	return &apiError{status, code, fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeODataError answers the OData error body the reference assumes (1.5).
func writeODataError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg}})
}

func writeErr(w http.ResponseWriter, err error) {
	if ae, ok := err.(*apiError); ok {
		writeODataError(w, ae.status, ae.code, ae.msg)
		return
	}
	writeODataError(w, http.StatusInternalServerError, "InternalError", err.Error())
}

// newID returns a random (seeded) version-4 UUID. Callers hold s.mu.
func (s *Simulator) newID() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(s.rng.UintN(256))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func (s *Simulator) randHex(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(s.rng.UintN(256))
	}
	return fmt.Sprintf("%x", b)
}
