package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/koppel/koppel/services/admin/internal/console"
	"github.com/koppel/koppel/services/sandbox/ebsim"
)

// The console as an operator uses it over HTTP, on the admin API of a real mapping service and
// NATS with both simulators (the browser test in devstack walks it in Chromium).

// withConsole serves the console beside e's admin API, with key sealing its sessions.
func withConsole(t *testing.T, e *activationEnv, key []byte) {
	t.Helper()
	mux := e.gw.Config.Handler.(*http.ServeMux)
	outs, err := console.NewKVSignOuts(context.Background(), e.js, 1)
	if err != nil {
		t.Fatal(err)
	}
	c, err := console.New(console.Options{API: mux, SessionKey: key, SignOuts: outs, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	c.Routes(mux)
}

// browser is a cookie-keeping HTTP client that reads the console's pages.
type browser struct {
	t    *testing.T
	base string
	http *http.Client
	// last page read
	status int
	body   string
	header http.Header
	url    string
}

func newBrowser(t *testing.T, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, http: &http.Client{Jar: jar}}
}

func (b *browser) get(path string) *browser {
	b.t.Helper()
	resp, err := b.http.Get(b.base + path)
	return b.read(resp, err)
}

var csrfField = regexp.MustCompile(`name="(csrf|nonce)" value="([^"]+)"`)

// post submits a form of the last page read (its CSRF token or sign-in nonce included).
func (b *browser) post(path string, form url.Values) *browser {
	b.t.Helper()
	if m := csrfField.FindStringSubmatch(b.body); m != nil && form.Get(m[1]) == "" {
		form.Set(m[1], m[2])
	}
	resp, err := b.http.PostForm(b.base+path, form)
	return b.read(resp, err)
}

func (b *browser) read(resp *http.Response, err error) *browser {
	b.t.Helper()
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	b.status, b.body, b.header, b.url = resp.StatusCode, string(raw), resp.Header, resp.Request.URL.Path
	return b
}

// expect fails unless the last page has status and shows every text.
func (b *browser) expect(status int, texts ...string) {
	b.t.Helper()
	if b.status != status {
		b.t.Fatalf("%s: status %d, want %d: %s", b.url, b.status, status, b.body)
	}
	for _, s := range texts {
		if !strings.Contains(b.body, s) {
			b.t.Fatalf("%s: the page does not show %q:\n%s", b.url, s, b.body)
		}
	}
}

// fieldError is the error the page shows beside the control of an API field.
func (b *browser) fieldError(field string) string {
	id := "err-f-" + strings.NewReplacer(".", "-", ":", "-").Replace(field)
	m := regexp.MustCompile(`<p class="field-error" id="` + regexp.QuoteMeta(id) + `">([^<]*)</p>`).FindStringSubmatch(b.body)
	if m == nil {
		return ""
	}
	return m[1]
}

func (b *browser) signIn(token string) {
	b.t.Helper()
	b.get("/console/signin").post("/console/signin", url.Values{"token": {token}, "next": {"/console/tenants"}})
}

func TestConsoleSignInSessionAndSignOut(t *testing.T) {
	e := newActivationEnv(t)
	withConsole(t, e, console.NewKey())
	b := newBrowser(t, e.gw.URL)

	b.get("/console/tenants/acme")
	if b.url != "/console/signin" {
		t.Fatalf("a page without a session went to %s, want the sign-in page", b.url)
	}
	csp := b.header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Fatalf("Content-Security-Policy %q: want scripts from the console only, none inline", csp)
	}

	b.signIn("wrong")
	b.expect(http.StatusOK, "That admin token is not accepted")

	b.signIn(adminToken)
	b.expect(http.StatusOK, "acme")
	if b.url != "/console/tenants" {
		t.Fatalf("after sign-in at %s, want /console/tenants", b.url)
	}
	u, _ := url.Parse(e.gw.URL + "/console/")
	var session *http.Cookie
	for _, c := range b.http.Jar.Cookies(u) {
		if c.Name == "koppel_session" {
			session = c
		}
	}
	if session == nil {
		t.Fatal("no session cookie after sign-in")
	}
	if strings.Contains(session.Value, adminToken) {
		t.Fatal("the session cookie carries the admin token in the clear")
	}

	// A form without the session's CSRF token is refused, and does nothing.
	resp, err := b.http.PostForm(e.gw.URL+"/console/tenants", url.Values{"id": {"forged"}})
	b.read(resp, err).expect(http.StatusForbidden, "stale")
	if _, err := e.m.Client.GetTenant(context.Background(), &mappingv1.GetTenantRequest{TenantId: "forged"}); err == nil {
		t.Fatal("a form without the CSRF token created a tenant")
	}

	// Sign-out ends the session: the same cookie, kept by someone, opens nothing after it.
	b.get("/console/tenants").post("/console/signout", url.Values{})
	b.expect(http.StatusOK, "You are signed out")
	stolen := newBrowser(t, e.gw.URL)
	stolen.http.Jar.SetCookies(u, []*http.Cookie{{Name: "koppel_session", Value: session.Value, Path: "/console"}})
	stolen.get("/console/tenants")
	if stolen.url != "/console/signin" {
		t.Fatalf("a signed-out session's cookie opened %s", stolen.url)
	}
	// A form of an ended session leads to the sign-in page, not to an error.
	stolen.post("/console/tenants/acme/sync/relation", url.Values{"csrf": {"whatever"}})
	if stolen.url != "/console/signin" || stolen.status != http.StatusOK {
		t.Fatalf("a form of a signed-out session: %d at %s", stolen.status, stolen.url)
	}

	// Two sign-in tabs: the first one's form still works after the second opened.
	first := newBrowser(t, e.gw.URL)
	first.get("/console/signin")
	firstPage := first.body
	first.get("/console/signin")
	first.body = firstPage
	first.post("/console/signin", url.Values{"token": {adminToken}})
	first.expect(http.StatusOK, "All tenants")
}

func TestConsoleSessionsHoldAcrossReplicasWithOneKey(t *testing.T) {
	key := console.NewKey()
	a, b := newActivationEnv(t), newActivationEnv(t)
	withConsole(t, a, key)
	withConsole(t, b, key)
	other := newActivationEnv(t)
	withConsole(t, other, console.NewKey())

	br := newBrowser(t, a.gw.URL)
	br.signIn(adminToken)
	br.expect(http.StatusOK)
	ua, _ := url.Parse(a.gw.URL + "/console/")
	cookies := br.http.Jar.Cookies(ua)
	for _, env := range []struct {
		e    *activationEnv
		want string
	}{{b, "/console/tenants"}, {other, "/console/signin"}} {
		next := newBrowser(t, env.e.gw.URL)
		u, _ := url.Parse(env.e.gw.URL + "/console/")
		next.http.Jar.SetCookies(u, cookies)
		next.get("/console/tenants")
		if next.url != env.want {
			t.Fatalf("the session of one replica at another: %s, want %s", next.url, env.want)
		}
	}
}

func TestConsoleLimitsWrongTokens(t *testing.T) {
	e := newActivationEnv(t)
	withConsole(t, e, console.NewKey())
	b := newBrowser(t, e.gw.URL)
	for range 5 {
		b.signIn("guess")
		b.expect(http.StatusOK, "not accepted")
	}
	// The sixth try within the minute is refused before the token is looked at, even the right one.
	b.signIn(adminToken)
	b.expect(http.StatusTooManyRequests, "Too many wrong tokens")
}

// The wizard as an operator walks it: a wrong ledger is named beside its field, and activation
// leads to the tenant's status with its import.
func TestConsoleActivationWizard(t *testing.T) {
	e := newActivationEnv(t)
	withConsole(t, e, console.NewKey())
	b := newBrowser(t, e.gw.URL)
	b.signIn(adminToken)

	b.get("/console/tenants/acme/setup/credentials")
	b.expect(http.StatusOK, "Beheer → Inrichting → Koppelingen → API", "Configuration → Applications")
	creds := url.Values{"eboekhouden.base_url": {e.ebURL}, "eboekhouden.token": {"not-the-token"}, "tribe.base_url": {e.trURL},
		"tribe.auth_url": {e.trURL}, "tribe.client_id": {e.trEnv.ClientID}, "tribe.client_secret": {e.trEnv.ClientSecret}}
	b.post("/console/tenants/acme/setup/credentials", creds)
	if msg := b.fieldError("eboekhouden.token"); b.status != http.StatusOK || msg == "" {
		t.Fatalf("a wrong e-Boekhouden token: status %d, error beside the token %q", b.status, msg)
	}
	if strings.Contains(b.body, e.trEnv.ClientSecret) {
		t.Fatal("the page shown again carries the Tribe client secret")
	}
	creds.Set("eboekhouden.token", e.ebToken)
	b.post("/console/tenants/acme/setup/credentials", creds)
	b.expect(http.StatusOK, "Both logins worked", "VAT groups in Tribe")

	b.get("/console/tenants/acme/setup/links")
	b.expect(http.StatusOK, "Debtors ledger")
	var cfg Configuration
	e.call("GET", "/configuration", nil, &cfg)
	bank, debtors, revenue := optionByCode(cfg.Ledgers, "1100"), optionByCode(cfg.Ledgers, "1300"), optionByCode(cfg.Ledgers, "8000")
	form := url.Values{"debtor_ledger": {bank.ID}, "invoice_template": {cfg.InvoiceTemplates[0].ID}, "auto_debtor_numbers": {"on"}, "debtor_number_start": {"5000"}}
	for _, g := range cfg.VATGroups {
		form.Set("revenue_ledgers."+g.ID, revenue.ID)
		form.Set("vat_codes."+g.ID, ebsim.SaleVATCode(g.Percentage))
	}
	b.post("/console/tenants/acme/setup/links", form)
	if msg := b.fieldError("debtor_ledger"); !strings.Contains(msg, "debtors (DEB) ledger") {
		t.Fatalf("the bank ledger as debtors ledger: error beside the field %q, want it to ask for a debtors ledger\n%s", msg, b.body)
	}
	form.Set("debtor_ledger", debtors.ID)
	b.post("/console/tenants/acme/setup/links", form)
	b.expect(http.StatusOK, "The links are stored", "on, from 5000", "Activate and start the initial import")

	b.post("/console/tenants/acme/setup/activate", url.Values{})
	b.expect(http.StatusOK, "Activated: the initial import is running", `id="tenant-state">active`)
	if b.url != "/console/tenants/acme" {
		t.Fatalf("after activation at %s, want the tenant's status", b.url)
	}

	// The relation service takes the import's command (no worker runs here: the test does what
	// it would) and has done 30 of 120 relations.
	cmd := e.importCommand()
	ctx := context.Background()
	if _, err := e.m.Client.StartRun(ctx, &mappingv1.StartRunRequest{TenantId: "acme", Kind: "import", RunId: cmd.GetRunId(), Trigger: cmd.GetTrigger()}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Client.UpdateRun(ctx, &mappingv1.UpdateRunRequest{TenantId: "acme", Kind: "import", RunId: cmd.GetRunId(), AddDone: 30, Total: 120,
		Add: &mappingv1.RunCounts{Created: 30}}); err != nil {
		t.Fatal(err)
	}
	b.get("/console/tenants/acme")
	b.expect(http.StatusOK, `<progress id="progress-import" max="100" value="25">`, `<span data-field="done">30</span> of <span data-field="total">120</span>`)
	var progress struct {
		Runs []struct {
			Kind    string `json:"kind"`
			Percent int64  `json:"percent"`
		} `json:"runs"`
	}
	b.get("/console/tenants/acme/progress")
	if err := json.Unmarshal([]byte(b.body), &progress); err != nil || len(progress.Runs) != 1 || progress.Runs[0].Percent != 25 {
		t.Fatalf("progress the page polls: %v %s", err, b.body)
	}

	// Run now while the import runs: refused, and said so.
	b.get("/console/tenants/acme").post("/console/tenants/acme/sync/relation", url.Values{})
	b.expect(http.StatusOK, "Already running: the import run")
}
