package console

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/koppel/koppel/pkg/adminapi"
)

// The activation wizard: one screen per step of the product description, each posting to the
// admin API call of that step, so the API's checks decide and its field errors are shown beside
// the field they name.

// Where the real systems are, offered until the tenant has its own base URLs.
const (
	defaultEBoekhoudenURL = "https://api.e-boekhouden.nl"
	defaultTribeURL       = "https://api.tribecrm.nl"
	defaultTribeAuthURL   = "https://auth.tribecrm.nl"
)

// wizardStep is a step as the step list shows it.
type wizardStep struct {
	N       int
	Name    string
	Path    string
	Current bool
}

func steps(tenant string, current int) []wizardStep {
	out := []wizardStep{
		{1, "Credentials", consolePath(tenant, "setup", "credentials"), false},
		{2, "Configuration", consolePath(tenant, "setup", "configuration"), false},
		{3, "Ledgers and VAT", consolePath(tenant, "setup", "links"), false},
		{4, "Review", consolePath(tenant, "setup", "review"), false},
		{5, "Activate", consolePath(tenant, "setup", "review"), false},
	}
	out[current-1].Current = true
	return out
}

type wizardData struct {
	Tenant adminapi.Tenant
	Steps  []wizardStep
	Form   formState
	Config *adminapi.Configuration
	// Groups are the Tribe VAT groups with the choices for each (links step).
	Groups []groupLinks
	// Review lines (review step).
	Review []reviewLine
}

func (c *Console) wizard(w http.ResponseWriter, r *http.Request, p *request, step, status int, tmpl string, d wizardData, msg string) {
	d.Steps = steps(d.Tenant.ID, step)
	c.render(w, r, status, tmpl, page{Title: "Activate " + cmp.Or(d.Tenant.DisplayName, d.Tenant.ID), CSRF: p.csrf, SignedIn: true, Error: msg, Data: d})
}

func (c *Console) tenant(r *http.Request, p *request) (adminapi.Tenant, error) {
	ctx, cancel := c.ctx(r)
	defer cancel()
	var t adminapi.Tenant
	err := p.api.Do(ctx, "GET", tenantPath(r.PathValue("tenant")), nil, &t)
	return t, err
}

// --- step 1: credentials ---

func credentialValues(t adminapi.Tenant) map[string]string {
	s := t.Settings
	return map[string]string{
		"eboekhouden.base_url": cmp.Or(s.EBoekhoudenBaseURL, defaultEBoekhoudenURL),
		"tribe.base_url":       cmp.Or(s.TribeBaseURL, defaultTribeURL),
		"tribe.auth_url":       cmp.Or(s.TribeAuthURL, defaultTribeAuthURL),
		"tribe.client_id":      s.TribeClientID,
	}
}

func (c *Console) credentialsPage(w http.ResponseWriter, r *http.Request, p *request) {
	t, err := c.tenant(r, p)
	if err != nil {
		c.failed(w, r, p, err)
		return
	}
	c.wizard(w, r, p, 1, http.StatusOK, "credentials", wizardData{Tenant: t, Form: formState{Values: credentialValues(t)}}, "")
}

func (c *Console) saveCredentials(w http.ResponseWriter, r *http.Request, p *request) {
	t, err := c.tenant(r, p)
	if err != nil {
		c.failed(w, r, p, err)
		return
	}
	var req adminapi.Credentials
	req.EBoekhouden.BaseURL = r.PostFormValue("eboekhouden.base_url")
	req.EBoekhouden.Token = r.PostFormValue("eboekhouden.token")
	req.Tribe.BaseURL = r.PostFormValue("tribe.base_url")
	req.Tribe.AuthURL = r.PostFormValue("tribe.auth_url")
	req.Tribe.ClientID = r.PostFormValue("tribe.client_id")
	req.Tribe.ClientSecret = r.PostFormValue("tribe.client_secret")
	ctx, cancel := c.ctx(r)
	defer cancel()
	if err := p.api.Do(ctx, "PUT", tenantPath(t.ID, "credentials"), req, nil); err != nil {
		// Shown again without the secrets: they are never put back into a page.
		form := formState{Values: map[string]string{"eboekhouden.base_url": req.EBoekhouden.BaseURL, "tribe.base_url": req.Tribe.BaseURL,
			"tribe.auth_url": req.Tribe.AuthURL, "tribe.client_id": req.Tribe.ClientID}}
		msg := form.fieldError(err, func(f string) bool { return strings.HasPrefix(f, "eboekhouden.") || strings.HasPrefix(f, "tribe.") })
		c.wizard(w, r, p, 1, formRefused, "credentials", wizardData{Tenant: t, Form: form}, msg)
		return
	}
	c.redirectWith(w, r, consolePath(t.ID, "setup", "configuration"), "ok", "Both logins worked; the credentials are stored.")
}

// --- step 2: configuration ---

func (c *Console) configuration(r *http.Request, p *request, tenant string) (*adminapi.Configuration, error) {
	ctx, cancel := c.ctx(r)
	defer cancel()
	var cfg adminapi.Configuration
	if err := p.api.Do(ctx, "GET", tenantPath(tenant, "configuration"), nil, &cfg); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// tenantAndConfiguration reads the tenant and what its systems offer to link; when either cannot
// be read it has answered (the configuration step with the reason) and ok is false.
func (c *Console) tenantAndConfiguration(w http.ResponseWriter, r *http.Request, p *request) (t adminapi.Tenant, cfg *adminapi.Configuration, ok bool) {
	t, err := c.tenant(r, p)
	if err != nil {
		c.failed(w, r, p, err)
		return t, nil, false
	}
	if cfg, err = c.configuration(r, p, t.ID); err != nil {
		c.wizard(w, r, p, 2, formRefused, "configuration", wizardData{Tenant: t}, configurationError(err))
		return t, nil, false
	}
	return t, cfg, true
}

func (c *Console) configurationPage(w http.ResponseWriter, r *http.Request, p *request) {
	t, cfg, ok := c.tenantAndConfiguration(w, r, p)
	if !ok {
		return
	}
	c.wizard(w, r, p, 2, http.StatusOK, "configuration", wizardData{Tenant: t, Config: cfg}, "")
}

// --- step 3: links ---

// groupLinks is a Tribe VAT group with the fields that link it.
type groupLinks struct {
	Group                       adminapi.Option
	LedgerField, VATCodeField   string
	LedgerChoice, VATCodeChoice string
}

func linkGroups(cfg *adminapi.Configuration, values map[string]string) []groupLinks {
	out := make([]groupLinks, 0, len(cfg.VATGroups))
	for _, g := range cfg.VATGroups {
		gl := groupLinks{Group: g, LedgerField: "revenue_ledgers." + g.ID, VATCodeField: "vat_codes." + g.ID}
		gl.LedgerChoice, gl.VATCodeChoice = values[gl.LedgerField], values[gl.VATCodeField]
		out = append(out, gl)
	}
	return out
}

// storedLinks are the tenant's links as the links form's values.
func storedLinks(t adminapi.Tenant) map[string]string {
	v := map[string]string{}
	for k, id := range t.Settings.Links {
		switch {
		case k == "debtor_ledger" || k == "invoice_template":
			v[k] = id
		case strings.HasPrefix(k, "revenue_ledger:"):
			v["revenue_ledgers."+strings.TrimPrefix(k, "revenue_ledger:")] = id
		case strings.HasPrefix(k, "vat_code:"):
			v["vat_codes."+strings.TrimPrefix(k, "vat_code:")] = id
		}
	}
	if t.Settings.AutoDebtorNumbers {
		v["auto_debtor_numbers"] = "on"
		v["debtor_number_start"] = strconv.FormatInt(t.Settings.DebtorNumberStart, 10)
	}
	return v
}

func (c *Console) linksPage(w http.ResponseWriter, r *http.Request, p *request) {
	t, cfg, ok := c.tenantAndConfiguration(w, r, p)
	if !ok {
		return
	}
	values := storedLinks(t)
	c.wizard(w, r, p, 3, http.StatusOK, "links", wizardData{Tenant: t, Config: cfg, Form: formState{Values: values}, Groups: linkGroups(cfg, values)}, "")
}

func (c *Console) saveLinks(w http.ResponseWriter, r *http.Request, p *request) {
	t, cfg, ok := c.tenantAndConfiguration(w, r, p)
	if !ok {
		return
	}
	values := map[string]string{}
	for k, vs := range r.PostForm {
		if k != "csrf" && len(vs) > 0 {
			values[k] = strings.TrimSpace(vs[0])
		}
	}
	req := adminapi.Links{DebtorLedger: values["debtor_ledger"], InvoiceTemplate: values["invoice_template"],
		RevenueLedgers: map[string]string{}, VATCodes: map[string]string{}, AutoDebtorNumbers: values["auto_debtor_numbers"] != ""}
	for _, g := range cfg.VATGroups {
		if v := values["revenue_ledgers."+g.ID]; v != "" {
			req.RevenueLedgers[g.ID] = v
		}
		if v := values["vat_codes."+g.ID]; v != "" {
			req.VATCodes[g.ID] = v
		}
	}
	form := formState{Values: values}
	if s := values["debtor_number_start"]; s != "" && req.AutoDebtorNumbers {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			form.Errors = map[string]string{"debtor_number_start": "want a whole number"}
			c.wizard(w, r, p, 3, formRefused, "links", wizardData{Tenant: t, Config: cfg, Form: form, Groups: linkGroups(cfg, values)}, "")
			return
		}
		req.DebtorNumberStart = n
	}
	ctx, cancel := c.ctx(r)
	defer cancel()
	var stored adminapi.LinksStored
	if err := p.api.Do(ctx, "PUT", tenantPath(t.ID, "links"), req, &stored); err != nil {
		msg := form.fieldError(err, func(f string) bool {
			_, shown := values[f]
			return shown || f == "debtor_ledger" || f == "invoice_template" || f == "debtor_number_start" || f == "revenue_ledgers" ||
				strings.HasPrefix(f, "revenue_ledgers.") || strings.HasPrefix(f, "vat_codes.")
		})
		c.wizard(w, r, p, 3, formRefused, "links", wizardData{Tenant: t, Config: cfg, Form: form, Groups: linkGroups(cfg, values)}, msg)
		return
	}
	c.redirectWith(w, r, consolePath(t.ID, "setup", "review"), "ok", "The links are stored.")
}

// --- steps 4 and 5: review, activate ---

type reviewLine struct {
	What, Value string
}

func describe(opts []adminapi.Option, id string) string {
	if id == "" {
		return "not linked"
	}
	i := slices.IndexFunc(opts, func(o adminapi.Option) bool { return o.ID == id })
	if i < 0 {
		return id + " (not in the configuration any more)"
	}
	o := opts[i]
	if o.Code != "" {
		return o.Code + " " + o.Description
	}
	return o.Description
}

func (c *Console) reviewPage(w http.ResponseWriter, r *http.Request, p *request) {
	t, cfg, ok := c.tenantAndConfiguration(w, r, p)
	if !ok {
		return
	}
	s := t.Settings
	lines := []reviewLine{
		{"e-Boekhouden", s.EBoekhoudenBaseURL},
		{"Tribe", s.TribeBaseURL + " (client " + s.TribeClientID + ")"},
	}
	if s.Links["debtor_ledger"] != "" {
		lines = append(lines, reviewLine{"Debtors ledger", describe(cfg.Ledgers, s.Links["debtor_ledger"])},
			reviewLine{"Invoice template", describe(cfg.InvoiceTemplates, s.Links["invoice_template"])})
		for _, g := range cfg.VATGroups {
			lines = append(lines, reviewLine{"VAT group " + g.Description, "revenue " + describe(cfg.Ledgers, s.Links["revenue_ledger:"+g.ID]) +
				", VAT code " + describe(cfg.VATCodes, s.Links["vat_code:"+g.ID])})
		}
	}
	numbering := "off: new Tribe customers need a debtor number before they are pushed"
	if s.AutoDebtorNumbers {
		numbering = "on, from " + strconv.FormatInt(s.DebtorNumberStart, 10)
	}
	lines = append(lines, reviewLine{"Automatic debtor numbers", numbering})
	msg := ""
	if s.Links["debtor_ledger"] == "" {
		msg = "The ledgers are not linked yet: go back to step 3."
	}
	c.wizard(w, r, p, 4, http.StatusOK, "review", wizardData{Tenant: t, Config: cfg, Review: lines}, msg)
}

func (c *Console) activate(w http.ResponseWriter, r *http.Request, p *request) {
	tenant := r.PathValue("tenant")
	ctx, cancel := c.ctx(r)
	defer cancel()
	var act adminapi.Activated
	if err := p.api.Do(ctx, "POST", tenantPath(tenant, "activate"), nil, &act); err != nil {
		c.redirectWith(w, r, consolePath(tenant, "setup", "review"), "error", "Not activated: "+errText(err))
		return
	}
	msg := "Activated: the initial import is running."
	if len(act.Notes) > 0 {
		msg += " " + strings.Join(act.Notes, " ")
	}
	c.redirectWith(w, r, consolePath(tenant), "ok", msg)
}

// configurationError says why the configuration could not be read, in the wizard's words.
func configurationError(err error) string {
	if e := apiError(err); e != nil && e.Code == "no_credentials" {
		return "Enter the credentials first (step 1)."
	}
	return "The configuration could not be retrieved: " + errText(err)
}
