package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/koppel/koppel/pkg/apicall"
	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/eboekhouden"
	"github.com/koppel/koppel/pkg/tenantclients"
	"github.com/koppel/koppel/pkg/tribe"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
)

// RefusedError says a system refused a credential itself (as opposed to being unreachable).
// errors.Is(err, ErrBadCredentials) holds for it.
type RefusedError struct {
	// Field names the refused credential as the credentials request spells it, e.g.
	// "eboekhouden.token".
	Field string
	Err   error
}

func (e *RefusedError) Error() string   { return e.Err.Error() }
func (e *RefusedError) Unwrap() error   { return e.Err }
func (e *RefusedError) Is(t error) bool { return t == ErrBadCredentials }

// Fields of the credentials request that a refusal names. Tribe does not say whether the ID or
// the secret is wrong, so a refusal names the secret, the one more often mistyped.
const (
	fieldEBToken     = "eboekhouden.token"
	fieldTribeSecret = "tribe.client_secret"
)

// ebRefused reports whether err means e-Boekhouden refused the API token: 403 on opening the
// session (the documented answer), 401 after a fresh session, or the 400 variants that name the
// access token (unknown to some releases, expired).
func ebRefused(err error) bool {
	if errors.Is(err, eboekhouden.ErrForbidden) || errors.Is(err, eboekhouden.ErrUnauthorized) {
		return true
	}
	var ae *eboekhouden.APIError
	return errors.As(err, &ae) && (ae.Code == "API_SESSION_003" || ae.Code == "API_SESSION_004")
}

func ebError(err error) error {
	if ebRefused(err) {
		return &RefusedError{Field: fieldEBToken, Err: fmt.Errorf("e-Boekhouden: %w", err)}
	}
	return fmt.Errorf("e-Boekhouden: %w", err)
}

func tribeError(err error) error {
	if errors.Is(err, tribe.ErrInvalidCredentials) {
		return &RefusedError{Field: fieldTribeSecret, Err: fmt.Errorf("tribe: %w", err)}
	}
	return fmt.Errorf("tribe: %w", err)
}

// clientAccounts is accounts on the real clients, built by tenantclients.
type clientAccounts struct {
	clients *tenantclients.Cache
	// entityTypes are the dotted Tribe types to register webhooks for.
	entityTypes []string
}

func newClientAccounts(clients *tenantclients.Cache) *clientAccounts {
	types := make([]string, 0, len(bus.EntityTypes))
	for typ := range bus.EntityTypes {
		types = append(types, typ)
	}
	slices.Sort(types)
	return &clientAccounts{clients: clients, entityTypes: types}
}

// URLRefusedError says a base URL names a host koppel may not call (KOPPEL_OUTBOUND_HOSTS):
// refused before any connection.
type URLRefusedError struct {
	// Field names the URL as the credentials request spells it, e.g. "tribe.auth_url".
	Field string
	Err   error
}

func (e *URLRefusedError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *URLRefusedError) Unwrap() error { return e.Err }

// urlChecker is implemented by accounts that refuse some base URLs outright; activation asks
// it before logging in to either system, so a refused URL stops the request before any call.
type urlChecker interface {
	// CheckURLs returns a *URLRefusedError for the first of the URLs, by field, that may not
	// be called.
	CheckURLs(urls [][2]string) error
}

// CheckURLs checks base URLs (field, URL) against the outbound guard of the callers.
func (a *clientAccounts) CheckURLs(urls [][2]string) error {
	eb, tr := a.clients.Callers()
	for _, u := range urls {
		call := tr
		if strings.HasPrefix(u[0], "eboekhouden.") {
			call = eb
		}
		if u[1] == "" {
			continue
		}
		if err := call.CheckURL(u[1]); err != nil {
			return &URLRefusedError{Field: u[0], Err: err}
		}
	}
	return nil
}

func (a *clientAccounts) CheckEBoekhouden(ctx context.Context, tenant, baseURL, token string) error {
	call, _ := a.clients.Callers()
	c, err := tenantclients.NewEBoekhouden(call, tenant, baseURL, token)
	if errors.Is(err, apicall.ErrHostNotAllowed) {
		return &URLRefusedError{Field: "eboekhouden.base_url", Err: err}
	}
	if err != nil {
		return fmt.Errorf("e-Boekhouden client: %w", err)
	}
	// The smallest call that needs a session: opening one is the login.
	_, err = c.ListRelations(ctx, eboekhouden.Page{Limit: 1})
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = c.Close(closeCtx)
	if err != nil {
		return ebError(err)
	}
	return nil
}

func (a *clientAccounts) CheckTribe(ctx context.Context, tenant, baseURL, authURL, clientID, clientSecret string) error {
	_, call := a.clients.Callers()
	for _, u := range []struct{ field, url string }{{"tribe.base_url", baseURL}, {"tribe.auth_url", authURL}} {
		if u.url == "" {
			continue
		}
		if err := call.CheckURL(u.url); err != nil {
			return &URLRefusedError{Field: u.field, Err: err}
		}
	}
	c, err := tenantclients.NewTribe(call, tenant, baseURL, authURL, clientID, clientSecret)
	if err != nil {
		return fmt.Errorf("tribe client: %w", err)
	}
	if err := c.Ping(ctx); err != nil {
		return tribeError(err)
	}
	return nil
}

func (a *clientAccounts) Configuration(ctx context.Context, t *mappingv1.Tenant) (*Configuration, error) {
	eb, err := a.clients.EBoekhouden(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("e-Boekhouden: %w", err)
	}
	tr, err := a.clients.Tribe(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("tribe: %w", err)
	}
	cfg := &Configuration{VATCodes: vatCodeOptions()}
	// The two systems are independent: ask both at once, the operator is waiting.
	var wg sync.WaitGroup
	var ebErr, tribeErr error
	wg.Go(func() { ebErr = ebConfiguration(ctx, eb, cfg) })
	wg.Go(func() { tribeErr = tribeConfiguration(ctx, tr, cfg) })
	wg.Wait()
	if ebErr != nil {
		return nil, ebError(ebErr)
	}
	if tribeErr != nil {
		return nil, tribeError(tribeErr)
	}
	return cfg, nil
}

func ebConfiguration(ctx context.Context, c *eboekhouden.Client, cfg *Configuration) error {
	ledgers, err := eboekhouden.Collect(c.Ledgers(ctx))
	if err != nil {
		return fmt.Errorf("ledgers: %w", err)
	}
	cfg.Ledgers = make([]Option, 0, len(ledgers))
	for _, l := range ledgers {
		cfg.Ledgers = append(cfg.Ledgers, Option{ID: strconv.FormatInt(l.ID, 10), Code: l.Code, Description: l.Description, Category: string(l.Category)})
	}
	templates, err := eboekhouden.Collect(c.InvoiceTemplates(ctx))
	if err != nil {
		return fmt.Errorf("invoice templates: %w", err)
	}
	cfg.InvoiceTemplates = []Option{}
	for _, tp := range templates {
		// An inactive template cannot be used for new invoices, so it is no choice.
		if tp.Active {
			cfg.InvoiceTemplates = append(cfg.InvoiceTemplates, Option{ID: strconv.FormatInt(tp.ID, 10), Description: tp.Name, Category: tp.Type})
		}
	}
	return nil
}

// vatCodeOptions lists e-Boekhouden's VAT codes: the API has no endpoint for them, they are a
// fixed list.
func vatCodeOptions() []Option {
	kinds := map[eboekhouden.VATKind]string{eboekhouden.VATSale: vatKindSale, eboekhouden.VATPurchase: vatKindPurchase, eboekhouden.VATBoth: vatKindBoth}
	var out []Option
	for _, v := range eboekhouden.VATCodes() {
		out = append(out, Option{ID: string(v.Code), Code: string(v.Code), Description: v.Description, Category: kinds[v.Kind], Percentage: v.Rate.String()})
	}
	return out
}

// VAT code kinds, as Option.Category.
const (
	vatKindSale     = "sale"
	vatKindPurchase = "purchase"
	vatKindBoth     = "both"
)

func tribeConfiguration(ctx context.Context, c *tribe.Client, cfg *Configuration) error {
	for _, set := range []struct {
		name string
		read func(context.Context) ([]tribe.Lookup, error)
		into *[]Option
	}{
		{"VAT groups", c.VatGroups, &cfg.VATGroups},
		{"units", c.Units, &cfg.Units},
		{"address types", c.AddressTypes, &cfg.AddressTypes},
	} {
		rows, err := set.read(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", set.name, err)
		}
		*set.into = make([]Option, 0, len(rows))
		for _, r := range rows {
			o := Option{ID: r.ID, Code: r.Code, Description: r.Name}
			if r.Percentage.Valid {
				o.Percentage = r.Percentage.Decimal.String()
			}
			*set.into = append(*set.into, o)
		}
	}
	return nil
}

func (a *clientAccounts) RegisterWebhooks(ctx context.Context, t *mappingv1.Tenant, url string) ([]Registration, error) {
	tr, err := a.clients.Tribe(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("tribe: %w", err)
	}
	existing, err := tr.ListWebhooks(ctx)
	if err != nil {
		return nil, tribeError(fmt.Errorf("list webhooks: %w", err))
	}
	// Create the new registrations before removing the old ones, so no change goes unannounced
	// in between; the intake collapses an event delivered by both.
	var created []Registration
	for _, typ := range a.entityTypes {
		w, err := tr.CreateWebhook(ctx, typ, url, nil)
		if err != nil {
			a.dropWebhooks(ctx, tr, created)
			return nil, tribeError(fmt.Errorf("create webhook for %s: %w", typ, err))
		}
		created = append(created, Registration{ID: w.ID, EntityType: typ, Secret: w.Secret})
	}
	for _, w := range existing {
		if w.URL != url {
			continue // not koppel's, or another tenant's gateway: leave it
		}
		if err := tr.DeleteWebhook(ctx, w.ID); err != nil && !tribe.IsNotFound(err) {
			return nil, tribeError(fmt.Errorf("delete old webhook %s: %w", w.ID, err))
		}
	}
	return created, nil
}

// dropWebhooks removes registrations of a failed attempt; a leftover is harmless, the next
// attempt replaces it by URL.
func (a *clientAccounts) dropWebhooks(ctx context.Context, tr *tribe.Client, regs []Registration) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for _, r := range regs {
		_ = tr.DeleteWebhook(ctx, r.ID)
	}
}
