package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/koppel/koppel/pkg/adminapi"
	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/eboekhouden"
	"github.com/koppel/koppel/pkg/httpapi"
	"github.com/koppel/koppel/pkg/tenantclients"
	"github.com/koppel/koppel/pkg/tenantsettings"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"google.golang.org/protobuf/proto"
)

// Secret names of a tenant. The clients read them through tenantclients.
const (
	SecretEBoekhoudenToken  = tenantclients.SecretEBoekhoudenToken
	SecretTribeClientSecret = tenantclients.SecretTribeClientSecret
)

// ErrBadCredentials is matched by accounts' errors when a system refused the credentials
// themselves (as opposed to being unreachable); see RefusedError.
var ErrBadCredentials = errors.New("credentials refused")

// The admin API's types of activation (pkg/adminapi), by their short names here.
type (
	Credentials   = adminapi.Credentials
	Option        = adminapi.Option
	Configuration = adminapi.Configuration
	Links         = adminapi.Links
)

// Registration is a Tribe webhook registration koppel made.
type Registration struct {
	ID         string
	EntityType string // dotted, e.g. Relation.Organization
	// Secret signs its deliveries; empty when Tribe did not return it.
	Secret string
}

// accounts is what activation needs of the two systems. Errors match ErrBadCredentials (as a
// *RefusedError naming the field) when a system refused the credentials.
type accounts interface {
	// CheckEBoekhouden opens (and closes) a session with the token.
	CheckEBoekhouden(ctx context.Context, tenant, baseURL, token string) error
	// CheckTribe gets an OAuth token with the client credentials and reads the identity.
	CheckTribe(ctx context.Context, tenant, baseURL, authURL, clientID, clientSecret string) error
	// Configuration reads the tenant's ledgers, VAT codes and templates from e-Boekhouden and
	// its VAT groups, units and address types from Tribe.
	Configuration(ctx context.Context, tenant *mappingv1.Tenant) (*Configuration, error)
	// RegisterWebhooks makes Tribe deliver changes of organisations, persons and invoices to
	// url, replacing earlier registrations for that URL.
	RegisterWebhooks(ctx context.Context, tenant *mappingv1.Tenant, url string) ([]Registration, error)
}

// activation is the admin API's activation steps.
type activation struct {
	*admin
	accounts  accounts
	publicURL string
	// loginTimeout bounds checking credentials and reading the configuration (default 30s).
	loginTimeout time.Duration
}

func (a *activation) routes(mux *http.ServeMux, auth *httpapi.BearerAuth) {
	mux.Handle("PUT /admin/v1/tenants/{tenant}/credentials", auth.Wrap(http.HandlerFunc(a.putCredentials)))
	mux.Handle("GET /admin/v1/tenants/{tenant}/configuration", auth.Wrap(http.HandlerFunc(a.getConfiguration)))
	mux.Handle("PUT /admin/v1/tenants/{tenant}/links", auth.Wrap(http.HandlerFunc(a.putLinks)))
	mux.Handle("POST /admin/v1/tenants/{tenant}/activate", auth.Wrap(http.HandlerFunc(a.activate)))
}

func (a *activation) timeout() time.Duration {
	if a.loginTimeout > 0 {
		return a.loginTimeout
	}
	return 30 * time.Second
}

func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("want an absolute http(s) URL")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("want a base URL without user, query or fragment")
	}
	return nil
}

// validate checks the request's form and names the first field at fault, in the order of the
// request.
func validateCredentials(c *Credentials) (field, message string) {
	for _, f := range []struct {
		name, value string
		isURL       bool
	}{
		{"eboekhouden.base_url", c.EBoekhouden.BaseURL, true},
		{"eboekhouden.token", c.EBoekhouden.Token, false},
		{"tribe.base_url", c.Tribe.BaseURL, true},
		{"tribe.auth_url", c.Tribe.AuthURL, true},
		{"tribe.client_id", c.Tribe.ClientID, false},
		{"tribe.client_secret", c.Tribe.ClientSecret, false},
	} {
		switch {
		case f.name == "tribe.auth_url" && f.value == "":
			// Optional: Tribe's token endpoint is on the API host unless said otherwise.
		case strings.TrimSpace(f.value) == "":
			return f.name, "required"
		case f.value != strings.TrimSpace(f.value):
			return f.name, "has leading or trailing white space"
		case f.isURL:
			if err := checkURL(f.value); err != nil {
				return f.name, err.Error()
			}
		case len(f.value) > 1000:
			return f.name, "at most 1000 characters"
		}
	}
	return "", ""
}

// putCredentials checks both logins and only then stores the credentials, so a stored set is
// always one that worked.
func (a *activation) putCredentials(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("tenant")
	ctx := r.Context()
	var c Credentials
	if !httpapi.DecodeJSON(w, r, &c) {
		return
	}
	if field, msg := validateCredentials(&c); field != "" {
		httpapi.WriteFieldError(w, field, msg)
		return
	}
	c.EBoekhouden.BaseURL = strings.TrimRight(c.EBoekhouden.BaseURL, "/")
	c.Tribe.BaseURL = strings.TrimRight(c.Tribe.BaseURL, "/")
	c.Tribe.AuthURL = strings.TrimRight(c.Tribe.AuthURL, "/")
	if uc, ok := a.accounts.(urlChecker); ok {
		// Before either login: a refused URL must not let the other system be called either.
		err := uc.CheckURLs([][2]string{{"eboekhouden.base_url", c.EBoekhouden.BaseURL}, {"tribe.base_url", c.Tribe.BaseURL}, {"tribe.auth_url", c.Tribe.AuthURL}})
		if err != nil {
			a.loginFailed(w, r, err, nil)
			return
		}
	}
	t, err := a.mapping.GetTenant(ctx, &mappingv1.GetTenantRequest{TenantId: id})
	if err != nil {
		a.writeGRPCError(w, r, err)
		return
	}

	// Both logins at once; each failure names its own credential.
	loginCtx, cancel := context.WithTimeout(ctx, a.timeout())
	defer cancel()
	var wg sync.WaitGroup
	var ebErr, tribeErr error
	wg.Go(func() { ebErr = a.accounts.CheckEBoekhouden(loginCtx, id, c.EBoekhouden.BaseURL, c.EBoekhouden.Token) })
	wg.Go(func() {
		tribeErr = a.accounts.CheckTribe(loginCtx, id, c.Tribe.BaseURL, c.Tribe.AuthURL, c.Tribe.ClientID, c.Tribe.ClientSecret)
	})
	wg.Wait()
	if ebErr != nil || tribeErr != nil {
		a.loginFailed(w, r, ebErr, tribeErr)
		return
	}

	// Secrets first: the settings update below changes the tenant's version, which is what
	// makes every service's client cache build clients with the new secrets.
	for _, s := range []struct{ name, value string }{
		{SecretEBoekhoudenToken, c.EBoekhouden.Token}, {SecretTribeClientSecret, c.Tribe.ClientSecret},
	} {
		if _, err := a.mapping.PutSecret(ctx, &mappingv1.PutSecretRequest{TenantId: id, Name: s.name, Value: []byte(s.value)}); err != nil {
			a.writeGRPCError(w, r, err)
			return
		}
	}
	settings := settingsOf(t.GetTenant())
	settings.EboekhoudenBaseUrl = c.EBoekhouden.BaseURL
	settings.TribeBaseUrl = c.Tribe.BaseURL
	settings.TribeAuthUrl = c.Tribe.AuthURL
	settings.TribeClientId = c.Tribe.ClientID
	res, err := a.mapping.UpdateTenantSettings(ctx, &mappingv1.UpdateTenantSettingsRequest{TenantId: id, Settings: settings})
	if err != nil {
		a.writeGRPCError(w, r, err)
		return
	}
	a.log.InfoContext(ctx, "credentials stored", "tenant", id)
	httpapi.WriteJSON(w, http.StatusOK, apiTenant(res.GetTenant()))
}

// settingsOf returns a copy of the tenant's settings to change, never nil.
func settingsOf(t *mappingv1.Tenant) *mappingv1.TenantSettings {
	if st := t.GetSettings(); st != nil {
		return proto.Clone(st).(*mappingv1.TenantSettings)
	}
	return &mappingv1.TenantSettings{}
}

// loginFailed answers 400 naming a base URL on a host koppel may not call, 422 naming the
// refused credential (the e-Boekhouden one first when both are), or 502 naming the system that
// could not be asked. The answer says which, never what the system answered: that is in the log
// only, or the gateway would show an admin whatever a base URL points at.
func (a *activation) loginFailed(w http.ResponseWriter, r *http.Request, ebErr, tribeErr error) {
	a.log.WarnContext(r.Context(), "login failed", "tenant", r.PathValue("tenant"), "eboekhouden_error", ebErr, "tribe_error", tribeErr)
	for _, err := range []error{ebErr, tribeErr} {
		var ue *URLRefusedError
		if errors.As(err, &ue) {
			httpapi.WriteFieldError(w, ue.Field, "koppel does not call this host: a base URL must be one of the allowed e-Boekhouden and Tribe hosts (KOPPEL_OUTBOUND_HOSTS)")
			return
		}
	}
	var msgs []string
	var refused, unreachable string
	for _, e := range []struct {
		err                 error
		refusedMsg, downMsg string
		urlField            string
	}{
		{ebErr, "e-Boekhouden refused the API token", "e-Boekhouden could not be reached", "eboekhouden.base_url"},
		{tribeErr, "Tribe refused the OAuth client (client ID or secret)", "Tribe could not be reached", "tribe.base_url"},
	} {
		if e.err == nil {
			continue
		}
		var re *RefusedError
		if errors.As(e.err, &re) {
			msgs = append(msgs, e.refusedMsg)
			if refused == "" {
				refused = re.Field
			}
			continue
		}
		msgs = append(msgs, e.downMsg)
		if unreachable == "" {
			unreachable = e.urlField
		}
	}
	msg := strings.Join(msgs, "; ") + " (the gateway's log has the details)"
	if refused != "" {
		writeError(w, http.StatusUnprocessableEntity, httpapi.Error{Code: "credentials_refused", Message: msg, Field: refused})
		return
	}
	writeError(w, http.StatusBadGateway, httpapi.Error{Code: "unreachable", Message: msg, Field: unreachable})
}

func writeError(w http.ResponseWriter, status int, e httpapi.Error) {
	httpapi.WriteJSON(w, status, map[string]httpapi.Error{"error": e})
}

// accountsFailed answers an error of accounts: 422 when credentials stored earlier are refused
// now (revoked, say), else 502.
func (a *activation) accountsFailed(w http.ResponseWriter, r *http.Request, what string, err error) {
	a.log.WarnContext(r.Context(), what, "tenant", r.PathValue("tenant"), "error", err)
	var re *RefusedError
	if errors.As(err, &re) {
		writeError(w, http.StatusUnprocessableEntity, httpapi.Error{Code: "credentials_refused",
			Message: what + ": the stored credentials were refused; store new ones (PUT .../credentials)", Field: re.Field})
		return
	}
	httpapi.WriteError(w, http.StatusBadGateway, "unreachable", what+": e-Boekhouden or Tribe could not be asked (the gateway's log has the details)")
}

func (a *activation) tenantWithCredentials(w http.ResponseWriter, r *http.Request) (*mappingv1.Tenant, bool) {
	res, err := a.mapping.GetTenant(r.Context(), &mappingv1.GetTenantRequest{TenantId: r.PathValue("tenant")})
	if err != nil {
		a.writeGRPCError(w, r, err)
		return nil, false
	}
	st := res.GetTenant().GetSettings()
	if st.GetEboekhoudenBaseUrl() == "" || st.GetTribeBaseUrl() == "" {
		httpapi.WriteError(w, http.StatusConflict, "no_credentials", "store the credentials first (PUT .../credentials)")
		return nil, false
	}
	return res.GetTenant(), true
}

func (a *activation) loadConfiguration(w http.ResponseWriter, r *http.Request) (*mappingv1.Tenant, *Configuration, bool) {
	t, ok := a.tenantWithCredentials(w, r)
	if !ok {
		return nil, nil, false
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.timeout())
	defer cancel()
	cfg, err := a.accounts.Configuration(ctx, t)
	if err != nil {
		a.accountsFailed(w, r, "retrieve the configuration", err)
		return nil, nil, false
	}
	return t, cfg, true
}

func (a *activation) getConfiguration(w http.ResponseWriter, r *http.Request) {
	if _, cfg, ok := a.loadConfiguration(w, r); ok {
		httpapi.WriteJSON(w, http.StatusOK, cfg)
	}
}

func find(opts []Option, id string) (Option, bool) {
	for _, o := range opts {
		if o.ID == id {
			return o, true
		}
	}
	for _, o := range opts {
		if o.Code != "" && strings.EqualFold(o.Code, id) {
			return o, true
		}
	}
	return Option{}, false
}

// resolved are links checked against the configuration, by ID.
type resolved struct {
	debtorLedger, invoiceTemplate string
	revenueLedgers, vatCodes      map[string]string
}

// validate checks every link against the configuration and names the first field that does not
// fit, in a stable order.
func validateLinks(l *Links, cfg *Configuration) (res resolved, field, message string) {
	led, ok := find(cfg.Ledgers, l.DebtorLedger)
	switch {
	case l.DebtorLedger == "":
		return res, "debtor_ledger", "required"
	case !ok:
		return res, "debtor_ledger", fmt.Sprintf("no ledger %q in e-Boekhouden", l.DebtorLedger)
	case led.Category != string(eboekhouden.CategoryDebtors):
		return res, "debtor_ledger", fmt.Sprintf("ledger %s is of category %s; open items need a debtors (DEB) ledger", led.Code, led.Category)
	}
	res.debtorLedger = led.ID
	tpl, ok := find(cfg.InvoiceTemplates, l.InvoiceTemplate)
	switch {
	case l.InvoiceTemplate == "":
		return res, "invoice_template", "required"
	case !ok:
		return res, "invoice_template", fmt.Sprintf("no active invoice template %q in e-Boekhouden", l.InvoiceTemplate)
	}
	res.invoiceTemplate = tpl.ID

	if len(l.RevenueLedgers) == 0 {
		return res, "revenue_ledgers", "required: a revenue ledger per Tribe VAT group"
	}
	res.revenueLedgers, field, message = resolveGroups("revenue_ledgers", l.RevenueLedgers, cfg, cfg.Ledgers, "ledger", func(led Option) string {
		if led.Category != string(eboekhouden.CategoryPL) {
			return fmt.Sprintf("ledger %s is of category %s; revenue needs a profit-and-loss (VW) ledger", led.Code, led.Category)
		}
		return ""
	})
	if field != "" {
		return res, field, message
	}
	res.vatCodes, field, message = resolveGroups("vat_codes", l.VATCodes, cfg, cfg.VATCodes, "VAT code", func(vc Option) string {
		if vc.Category != vatKindSale && vc.Category != vatKindBoth {
			return fmt.Sprintf("VAT code %s is a %s code; invoices need a sale code", vc.ID, vc.Category)
		}
		return ""
	})
	if field != "" {
		return res, field, message
	}
	// An invoice line of a group needs both, so a group with only one of them is a mistake.
	for _, g := range slices.Sorted(maps.Keys(res.revenueLedgers)) {
		if _, ok := res.vatCodes[g]; !ok {
			return res, "vat_codes." + g, "required: VAT group " + g + " has a revenue ledger but no VAT code"
		}
	}
	for _, g := range slices.Sorted(maps.Keys(res.vatCodes)) {
		if _, ok := res.revenueLedgers[g]; !ok {
			return res, "revenue_ledgers." + g, "required: VAT group " + g + " has a VAT code but no revenue ledger"
		}
	}

	switch {
	case l.DebtorNumberStart < 0:
		return res, "debtor_number_start", "must not be negative"
	case l.AutoDebtorNumbers && l.DebtorNumberStart == 0:
		return res, "debtor_number_start", "required with auto_debtor_numbers: the first number to give"
	case !l.AutoDebtorNumbers && l.DebtorNumberStart != 0:
		return res, "debtor_number_start", "only with auto_debtor_numbers"
	}
	for _, kind := range slices.Sorted(maps.Keys(l.ScheduleSeconds)) {
		secs := l.ScheduleSeconds[kind]
		if !runNowKinds[kind] || kind == bus.KindImport {
			return res, "schedule_seconds." + kind, "want relation, relation-scan, tribe-scan, product or payment"
		}
		if secs < 0 || (secs != 0 && secs < 60) {
			return res, "schedule_seconds." + kind, "want 0 (the default) or at least 60"
		}
	}
	return res, "", ""
}

// isLinkKey reports whether a settings link is one PUT /links owns.
// resolveGroups resolves the choice of each Tribe VAT group (the field prefix.<group>) against
// opts (named what), each checked by fit, which says why an option does not fit ("" when it does).
// It returns the choices by group ID and option ID, or the first field at fault and why.
func resolveGroups(prefix string, choices map[string]string, cfg *Configuration, opts []Option, what string, fit func(Option) string) (byGroup map[string]string, field, message string) {
	byGroup = map[string]string{}
	for _, group := range slices.Sorted(maps.Keys(choices)) {
		field := prefix + "." + group
		g, ok := find(cfg.VATGroups, group)
		if !ok {
			return nil, field, fmt.Sprintf("no VAT group %q in Tribe", group)
		}
		o, ok := find(opts, choices[group])
		if !ok {
			return nil, field, fmt.Sprintf("no %s %q in e-Boekhouden", what, choices[group])
		}
		if why := fit(o); why != "" {
			return nil, field, why
		}
		if _, dup := byGroup[g.ID]; dup {
			return nil, field, fmt.Sprintf("VAT group %s is linked twice", g.ID)
		}
		byGroup[g.ID] = o.ID
	}
	return byGroup, "", ""
}

func isLinkKey(k string) bool {
	return k == tenantsettings.DebtorLedger || k == tenantsettings.InvoiceTemplate || strings.HasPrefix(k, tenantsettings.RevenueLedgerPrefix) || strings.HasPrefix(k, tenantsettings.VATCodePrefix)
}

func (a *activation) putLinks(w http.ResponseWriter, r *http.Request) {
	var l Links
	if !httpapi.DecodeJSON(w, r, &l) {
		return
	}
	t, cfg, ok := a.loadConfiguration(w, r)
	if !ok {
		return
	}
	res, field, msg := validateLinks(&l, cfg)
	if field != "" {
		httpapi.WriteFieldError(w, field, msg)
		return
	}
	settings := settingsOf(t)
	// Replace the links this call owns; keep the others (webhook registrations, say).
	links := map[string]string{}
	for k, v := range settings.GetLinks() {
		if !isLinkKey(k) {
			links[k] = v
		}
	}
	links[tenantsettings.DebtorLedger] = res.debtorLedger
	links[tenantsettings.InvoiceTemplate] = res.invoiceTemplate
	for g, led := range res.revenueLedgers {
		links[tenantsettings.RevenueLedgerPrefix+g] = led
	}
	for g, code := range res.vatCodes {
		links[tenantsettings.VATCodePrefix+g] = code
	}
	settings.Links = links
	settings.AutoDebtorNumbers = l.AutoDebtorNumbers
	settings.DebtorNumberStart = l.DebtorNumberStart
	if l.ScheduleSeconds != nil {
		settings.ScheduleSeconds = l.ScheduleSeconds
	}
	up, err := a.mapping.UpdateTenantSettings(r.Context(), &mappingv1.UpdateTenantSettingsRequest{TenantId: t.GetId(), Settings: settings})
	if err != nil {
		a.writeGRPCError(w, r, err)
		return
	}
	a.log.InfoContext(r.Context(), "links stored", "tenant", t.GetId())
	// Invoices that waited for a link are booked now, not when they change (a sent one never does).
	retried := a.retryWaitingOnLinks(r.Context(), t.GetId())
	httpapi.WriteJSON(w, http.StatusOK, adminapi.LinksStored{Tenant: apiTenant(up.GetTenant()), InvoicesRetried: retried})
}

// activate registers the webhooks, makes the tenant active and starts the initial import at once.
func (a *activation) activate(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("tenant")
	t, ok := a.tenantWithCredentials(w, r)
	if !ok {
		return
	}
	if t.GetSettings().GetLinks()[tenantsettings.DebtorLedger] == "" {
		httpapi.WriteError(w, http.StatusConflict, "no_links", "link the ledgers first (PUT .../links)")
		return
	}
	// A second activation re-registers the webhooks, but must not start a second import.
	runs, err := a.mapping.ListRuns(ctx, &mappingv1.ListRunsRequest{TenantId: id, Kind: bus.KindImport, Limit: 1})
	if err != nil {
		a.writeGRPCError(w, r, err)
		return
	}
	if cur := runs.GetCurrent(); len(cur) > 0 && a.now().Sub(cur[0].GetUpdatedAt().AsTime()) < staleRun {
		httpapi.WriteError(w, http.StatusConflict, "run_in_progress", fmt.Sprintf("the import (%s) is in progress", cur[0].GetId()))
		return
	}

	hookURL := strings.TrimRight(a.publicURL, "/") + "/webhooks/tribe/" + id
	regCtx, cancel := context.WithTimeout(ctx, a.timeout())
	defer cancel()
	regs, err := a.accounts.RegisterWebhooks(regCtx, t, hookURL)
	if err != nil {
		a.accountsFailed(w, r, "register the Tribe webhooks", err)
		return
	}
	out := adminapi.Activated{State: "active", Status: "/admin/v1/tenants/" + id + "/status", Webhooks: []adminapi.Webhook{}}
	secrets := 0
	var primary string
	for _, reg := range regs {
		out.Webhooks = append(out.Webhooks, adminapi.Webhook{ID: reg.ID, EntityType: reg.EntityType})
		if reg.Secret == "" {
			continue
		}
		secrets++
		if _, err := a.mapping.PutSecret(ctx, &mappingv1.PutSecretRequest{TenantId: id, Name: tenantsettings.WebhookSecret(reg.ID), Value: []byte(reg.Secret)}); err != nil {
			a.writeGRPCError(w, r, err)
			return
		}
		if primary == "" || reg.EntityType == "Relation.Organization" {
			primary = reg.Secret
		}
	}
	// The intake verifies a delivery with its registration's secret (webhook_secret_<id>);
	// webhook_secret is the fallback for registrations it does not know.
	if primary != "" {
		if _, err := a.mapping.PutSecret(ctx, &mappingv1.PutSecretRequest{TenantId: id, Name: tenantsettings.SecretWebhook, Value: []byte(primary)}); err != nil {
			a.writeGRPCError(w, r, err)
			return
		}
	}
	if secrets < len(regs) {
		out.Notes = append(out.Notes, "Tribe did not return every webhook secret: copy it from Tribe's webhook page into the tenant secret "+tenantsettings.SecretWebhook)
	}

	// Record which entity type each registration delivers, for payloads that do not say.
	settings := settingsOf(t)
	links := map[string]string{}
	for k, v := range settings.GetLinks() {
		if !strings.HasPrefix(k, tenantsettings.WebhookPrefix) {
			links[k] = v
		}
	}
	for _, reg := range regs {
		links[tenantsettings.WebhookPrefix+reg.ID] = reg.EntityType
	}
	settings.Links = links
	if _, err := a.mapping.UpdateTenantSettings(ctx, &mappingv1.UpdateTenantSettingsRequest{TenantId: id, Settings: settings}); err != nil {
		a.writeGRPCError(w, r, err)
		return
	}
	// Active last: a tenant is only active once everything it needs is stored.
	if _, err := a.mapping.SetTenantState(ctx, &mappingv1.SetTenantStateRequest{TenantId: id, State: mappingv1.TenantState_TENANT_STATE_ACTIVE}); err != nil {
		a.writeGRPCError(w, r, err)
		return
	}
	out.ImportRunID, err = startSync(ctx, a.pub, id, bus.KindImport, bus.TriggerActivation, a.now())
	if err != nil {
		a.log.ErrorContext(ctx, "publish import", "tenant", id, "error", err)
		httpapi.WriteError(w, http.StatusServiceUnavailable, "unavailable", "activated, but the import could not be started; start it with POST .../sync/import")
		return
	}
	a.log.InfoContext(ctx, "tenant activated", "tenant", id, "import_run", out.ImportRunID, "webhooks", len(regs))
	httpapi.WriteJSON(w, http.StatusAccepted, out)
}
