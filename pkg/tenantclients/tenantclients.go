// Package tenantclients builds and caches the e-Boekhouden and Tribe clients of each tenant from
// its settings and secrets in the mapping service. Clients are kept while the tenant's settings
// are unchanged, so sessions and OAuth tokens are reused across messages; a change of settings
// (new credentials) builds new ones. All of a system's clients share one apicall.Caller, whose
// limiter keeps a separate, adaptive budget per tenant.
package tenantclients

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/koppel/koppel/pkg/apicall"
	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/eboekhouden"
	"github.com/koppel/koppel/pkg/tribe"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
)

// Secret names the clients read.
const (
	SecretEBoekhoudenToken  = "eboekhouden_token"
	SecretTribeClientSecret = "tribe_client_secret"
)

// Source identifies koppel to e-Boekhouden (at most 10 letters, digits or spaces).
const Source = "koppel"

// ErrNotConfigured is returned for a tenant whose credentials are not stored yet.
var ErrNotConfigured = errors.New("tenant has no credentials for this system yet")

// Options tune the clients. Every service that calls the APIs embeds them in its configuration,
// so each one's budget is set the same way.
type Options struct {
	// EBoekhoudenRate is the calls per second each tenant may make to e-Boekhouden at most; the
	// limiter halves it on a 429 and recovers slowly. Default 5.
	EBoekhoudenRate float64 `env:"KOPPEL_EBOEKHOUDEN_RATE" default:"5" help:"Calls per second one tenant may make to e-Boekhouden from one process; halved on a 429, recovering slowly."`
	// TribeRate is the same for Tribe. Default 10.
	TribeRate float64 `env:"KOPPEL_TRIBE_RATE" default:"10" help:"Calls per second one tenant may make to Tribe from one process; halved on a 429, recovering slowly."`
	// OutboundHosts are the origins a tenant's base URLs may name (apicall.NewGuard): the real
	// e-Boekhouden and Tribe hosts by default. With them the clients also refuse inner addresses
	// at dial time (except OutboundNetworks) and follow no redirect. nil, as in a zero Options,
	// means no guard: tests against local servers; every service loads the default.
	OutboundHosts []string `env:"KOPPEL_OUTBOUND_HOSTS" default:"api.e-boekhouden.nl,api.tribecrm.nl,auth.tribecrm.nl" help:"Origins a tenant's e-Boekhouden and Tribe base URLs may name, comma-separated: host (https on 443), host:port (https) or http(s)://host:port."`
	// OutboundNetworks are networks whose addresses may be dialled although they are not public.
	OutboundNetworks []string `env:"KOPPEL_OUTBOUND_NETWORKS" default:"" help:"Networks (CIDR, comma-separated) whose private, loopback or link-local addresses the API clients may connect to nevertheless, such as an egress proxy's; empty: public addresses only."`
}

// Answer limits: what a page of 2,000 records needs, with headroom; a bigger answer is refused
// (apicall.ErrResponseTooLarge) rather than held in memory. e-Boekhouden's pages are at most
// 2,000 items (the API's maximum limit): a page of 2,000 products from the simulator is 0.19 MiB,
// of relations 0.08 MiB (lists carry a few fields; details are read one record at a time).
// Tribe's pages are 100 records by default; 2,000 customer relationships with their organisation
// and its addresses expanded, the widest read, are 5.5 MiB from the simulator, whose records carry
// fewer fields than real ones. TestAnswerLimitsFitAPageOf2000 measures both.
const (
	MaxEBoekhoudenAnswer = 1 << 20
	MaxTribeAnswer       = 16 << 20
)

// maxRate bounds the rates: more calls a second than this for one tenant is a typo.
const maxRate = 10000

// Cache holds the clients of every tenant a process has worked for.
type Cache struct {
	mapping   mappingv1.MappingServiceClient
	ebCall    *apicall.Caller
	tribeCall *apicall.Caller

	mu    sync.Mutex
	eb    map[string]*ebEntry
	tribe map[string]*tribeEntry
}

type ebEntry struct {
	version time.Time
	client  *eboekhouden.Client
}

type tribeEntry struct {
	version time.Time
	client  *tribe.Client
}

// New returns an empty cache.
func New(mapping mappingv1.MappingServiceClient, opts Options) (*Cache, error) {
	if opts.EBoekhoudenRate < 0 || opts.EBoekhoudenRate > maxRate {
		return nil, fmt.Errorf("KOPPEL_EBOEKHOUDEN_RATE: want 0 (the default) to %d calls a second, got %v", maxRate, opts.EBoekhoudenRate)
	}
	if opts.TribeRate < 0 || opts.TribeRate > maxRate {
		return nil, fmt.Errorf("KOPPEL_TRIBE_RATE: want 0 (the default) to %d calls a second, got %v", maxRate, opts.TribeRate)
	}
	if opts.EBoekhoudenRate == 0 {
		opts.EBoekhoudenRate = 5
	}
	if opts.TribeRate == 0 {
		opts.TribeRate = 10
	}
	var guard []apicall.Option
	if opts.OutboundHosts != nil {
		g, err := apicall.NewGuard(opts.OutboundHosts, opts.OutboundNetworks)
		if err != nil {
			return nil, fmt.Errorf("KOPPEL_OUTBOUND_HOSTS, KOPPEL_OUTBOUND_NETWORKS: %w", err)
		}
		guard = append(guard, apicall.WithGuard(g))
	}
	ebCall, err := apicall.New("eboekhouden", append(guard, apicall.WithMaxBodyBytes(MaxEBoekhoudenAnswer),
		apicall.WithLimiter(apicall.NewAdaptiveLimiter(opts.EBoekhoudenRate, int(opts.EBoekhoudenRate)*2)))...)
	if err != nil {
		return nil, err
	}
	tribeCall, err := apicall.New("tribe", append(guard, apicall.WithMaxBodyBytes(MaxTribeAnswer),
		apicall.WithLimiter(apicall.NewAdaptiveLimiter(opts.TribeRate, int(opts.TribeRate)*2)))...)
	if err != nil {
		return nil, err
	}
	return &Cache{mapping: mapping, ebCall: ebCall, tribeCall: tribeCall, eb: map[string]*ebEntry{}, tribe: map[string]*tribeEntry{}}, nil
}

func (c *Cache) secret(ctx context.Context, tenant, name string) (string, error) {
	res, err := c.mapping.GetSecret(ctx, &mappingv1.GetSecretRequest{TenantId: tenant, Name: name})
	if err != nil {
		return "", fmt.Errorf("secret %s: %w", name, err)
	}
	return string(res.GetValue()), nil
}

// EBoekhouden returns the tenant's e-Boekhouden client.
func (c *Cache) EBoekhouden(ctx context.Context, t *mappingv1.Tenant) (*eboekhouden.Client, error) {
	version := t.GetUpdatedAt().AsTime()
	c.mu.Lock()
	e := c.eb[t.GetId()]
	c.mu.Unlock()
	if e != nil && e.version.Equal(version) {
		return e.client, nil
	}
	base := t.GetSettings().GetEboekhoudenBaseUrl()
	if base == "" {
		return nil, fmt.Errorf("e-Boekhouden: %w", ErrNotConfigured)
	}
	token, err := c.secret(ctx, t.GetId(), SecretEBoekhoudenToken)
	if err != nil {
		return nil, err
	}
	client, err := NewEBoekhouden(c.ebCall, t.GetId(), base, token)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	old := c.eb[t.GetId()]
	if old != nil && old.version.Equal(version) {
		// Another goroutine built one for the same settings meanwhile: use that, drop ours.
		c.mu.Unlock()
		return old.client, nil
	}
	c.eb[t.GetId()] = &ebEntry{version: version, client: client}
	c.mu.Unlock()
	if old != nil {
		// Settings changed: the old client's session is of old credentials. Calls still in
		// flight on it fail and are retried with the new one.
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = old.client.Close(closeCtx)
		cancel()
	}
	return client, nil
}

// NewEBoekhouden builds an e-Boekhouden client on a shared caller. A base URL the caller's
// guard does not allow is refused (errors.Is(err, apicall.ErrHostNotAllowed)).
func NewEBoekhouden(call *apicall.Caller, tenant, baseURL, token string) (*eboekhouden.Client, error) {
	if err := call.CheckURL(baseURL); err != nil {
		return nil, fmt.Errorf("e-Boekhouden base URL: %w", err)
	}
	return eboekhouden.New(token, Source, eboekhouden.WithBaseURL(baseURL), eboekhouden.WithCaller(call), eboekhouden.WithTenant(tenant))
}

// Tribe returns the tenant's Tribe client.
func (c *Cache) Tribe(ctx context.Context, t *mappingv1.Tenant) (*tribe.Client, error) {
	version := t.GetUpdatedAt().AsTime()
	c.mu.Lock()
	e := c.tribe[t.GetId()]
	c.mu.Unlock()
	if e != nil && e.version.Equal(version) {
		return e.client, nil
	}
	st := t.GetSettings()
	if st.GetTribeBaseUrl() == "" || st.GetTribeClientId() == "" {
		return nil, fmt.Errorf("tribe: %w", ErrNotConfigured)
	}
	secret, err := c.secret(ctx, t.GetId(), SecretTribeClientSecret)
	if err != nil {
		return nil, err
	}
	client, err := NewTribe(c.tribeCall, t.GetId(), st.GetTribeBaseUrl(), st.GetTribeAuthUrl(), st.GetTribeClientId(), secret)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.tribe[t.GetId()]; old != nil && old.version.Equal(version) {
		return old.client, nil
	}
	c.tribe[t.GetId()] = &tribeEntry{version: version, client: client}
	return client, nil
}

// NewTribe builds a Tribe client on a shared caller. An empty authURL means the API host. Base
// URLs the caller's guard does not allow are refused (errors.Is(err, apicall.ErrHostNotAllowed));
// token requests go through the caller's transport, so the guard holds for them too.
func NewTribe(call *apicall.Caller, tenant, baseURL, authURL, clientID, clientSecret string) (*tribe.Client, error) {
	if authURL == "" {
		authURL = baseURL
	}
	if err := call.CheckURL(baseURL); err != nil {
		return nil, fmt.Errorf("tribe base URL: %w", err)
	}
	if err := call.CheckURL(authURL); err != nil {
		return nil, fmt.Errorf("tribe auth URL: %w", err)
	}
	return tribe.New(tribe.Config{BaseURL: baseURL, AuthURL: authURL, ClientID: clientID, ClientSecret: clientSecret, Caller: call, Tenant: tenant,
		TokenHTTPClient: call.HTTPClient(30 * time.Second)})
}

// Callers returns the shared callers, for one-off clients (such as checking credentials).
func (c *Cache) Callers() (eb, tr *apicall.Caller) { return c.ebCall, c.tribeCall }

// Close ends every session.
func (c *Cache) Close(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, e := range c.eb {
		_ = e.client.Close(ctx)
		delete(c.eb, id)
	}
}

// Both returns the tenant's e-Boekhouden and Tribe clients; missing credentials come back as a
// permanent failure with an issue for the tenant (AsIssue).
func (c *Cache) Both(ctx context.Context, t *mappingv1.Tenant) (*eboekhouden.Client, *tribe.Client, error) {
	eb, err := c.EBoekhouden(ctx, t)
	if err != nil {
		return nil, nil, AsIssue(t, err)
	}
	tr, err := c.Tribe(ctx, t)
	if err != nil {
		return nil, nil, AsIssue(t, err)
	}
	return eb, tr, nil
}

// AsIssue turns ErrNotConfigured, and a stored base URL that the outbound allow-list refuses,
// into a permanent failure with an issue that tells the tenant what to do; other errors pass
// unchanged (they are transient).
func AsIssue(t *mappingv1.Tenant, err error) error {
	if errors.Is(err, ErrNotConfigured) {
		return bus.Permanent(err, &mappingv1.Issue{Key: "tenant/credentials", Code: "not_configured",
			Message: "koppel has no credentials for e-Boekhouden or Tribe for this tenant.",
			Action:  "Enter the credentials (koppelctl tenants credentials " + t.GetId() + ")."})
	}
	if errors.Is(err, apicall.ErrHostNotAllowed) {
		return bus.Permanent(err, &mappingv1.Issue{Key: "tenant/credentials", Code: "host_not_allowed",
			Message: "A stored e-Boekhouden or Tribe base URL names a host koppel may not call.",
			Action:  "Enter the credentials with the real e-Boekhouden and Tribe URLs (koppelctl tenants credentials " + t.GetId() + "), or have the operators allow the host (KOPPEL_OUTBOUND_HOSTS)."})
	}
	return err
}
