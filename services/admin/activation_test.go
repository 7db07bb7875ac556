package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/koppel/koppel/pkg/adminapi"
	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/bustest"
	"github.com/koppel/koppel/pkg/httpapi"
	"github.com/koppel/koppel/pkg/tenantclients"
	"github.com/koppel/koppel/pkg/tenantsettings"
	eventsv1 "github.com/koppel/koppel/proto/koppel/events/v1"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/koppel/koppel/services/mapping/mappingtest"
	"github.com/koppel/koppel/services/sandbox/ebsim"
	"github.com/koppel/koppel/services/sandbox/tribesim"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
)

const adminToken = "admin-token"

// activationEnv is the gateway's admin API on a real mapping service and NATS, with both
// simulators as the tenant's systems.
type activationEnv struct {
	t        *testing.T
	gw       *httptest.Server
	m        *mappingtest.Service
	js       jetstream.JetStream
	eb       *ebsim.Simulator
	ebURL    string
	ebToken  string
	tr       *tribesim.Simulator
	trURL    string
	trEnv    tribesim.EnvironmentInfo
	tenantID string
}

func newActivationEnv(t *testing.T) *activationEnv {
	t.Helper()
	ctx := context.Background()
	m := mappingtest.Start(t)
	b := bustest.Start(t)
	eb := ebsim.New(ebsim.Options{})
	ebSrv := httptest.NewServer(eb)
	t.Cleanup(ebSrv.Close)
	adm, err := eb.CreateAdministration(ebsim.AdminSpec{Company: "Jansen BV"})
	if err != nil {
		t.Fatal(err)
	}
	tr := tribesim.New(tribesim.Options{})
	t.Cleanup(tr.Close)
	trSrv := httptest.NewServer(tr)
	t.Cleanup(trSrv.Close)
	env, err := tr.CreateEnvironment(tribesim.EnvironmentSpec{Name: "Jansen BV"})
	if err != nil {
		t.Fatal(err)
	}

	clients, err := tenantclients.New(m.Client, tenantclients.Options{EBoekhoudenRate: 100, TribeRate: 100})
	if err != nil {
		t.Fatal(err)
	}
	auth, err := httpapi.NewBearerAuth([]string{httpapi.HashToken(adminToken)})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	gw := httptest.NewServer(mux)
	t.Cleanup(gw.Close)
	a := &admin{mapping: m.Client, pub: bus.NewPublisher(b.JS), dlq: bus.NewDeadLetters(b.JS, bus.Shards{}),
		log: slog.New(slog.NewTextHandler(io.Discard, nil)), now: time.Now}
	a.routes(mux, auth)
	(&activation{admin: a, accounts: newClientAccounts(clients), publicURL: gw.URL, loginTimeout: 10 * time.Second}).routes(mux, auth)

	if _, err := m.Client.CreateTenant(ctx, &mappingv1.CreateTenantRequest{Tenant: &mappingv1.Tenant{Id: "acme"}}); err != nil {
		t.Fatal(err)
	}
	return &activationEnv{t: t, gw: gw, m: m, js: b.JS, eb: eb, ebURL: ebSrv.URL, ebToken: adm.AccessToken,
		tr: tr, trURL: trSrv.URL, trEnv: env, tenantID: "acme"}
}

// call sends an admin request and decodes the answer into out (when not nil).
func (e *activationEnv) call(method, path string, body any, out any) (int, httpapi.Error) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.gw.URL+"/admin/v1/tenants/"+e.tenantID+path, rd)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var ae struct {
		Error httpapi.Error `json:"error"`
	}
	if resp.StatusCode >= 300 {
		if err := json.Unmarshal(raw, &ae); err != nil || ae.Error.Code == "" {
			e.t.Fatalf("%s %s: %d without a JSON error: %s", method, path, resp.StatusCode, raw)
		}
	} else if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("%s %s: decode: %v: %s", method, path, err, raw)
		}
	}
	return resp.StatusCode, ae.Error
}

func (e *activationEnv) credentials() map[string]any {
	return map[string]any{
		"eboekhouden": map[string]string{"base_url": e.ebURL, "token": e.ebToken},
		"tribe":       map[string]string{"base_url": e.trURL, "auth_url": e.trURL, "client_id": e.trEnv.ClientID, "client_secret": e.trEnv.ClientSecret},
	}
}

func (e *activationEnv) tenant() *mappingv1.Tenant {
	e.t.Helper()
	res, err := e.m.Client.GetTenant(context.Background(), &mappingv1.GetTenantRequest{TenantId: e.tenantID})
	if err != nil {
		e.t.Fatal(err)
	}
	return res.GetTenant()
}

func (e *activationEnv) secret(name string) string {
	e.t.Helper()
	res, err := e.m.Client.GetSecret(context.Background(), &mappingv1.GetSecretRequest{TenantId: e.tenantID, Name: name})
	if err != nil {
		e.t.Fatalf("secret %s: %v", name, err)
	}
	return string(res.GetValue())
}

func set(m map[string]any, path string, v any) map[string]any {
	parts := strings.Split(path, ".")
	inner := m[parts[0]].(map[string]string)
	inner[parts[1]] = v.(string)
	return m
}

func TestCredentialsNameTheRefusedOne(t *testing.T) {
	e := newActivationEnv(t)
	cases := []struct {
		name   string
		body   map[string]any
		status int
		code   string
		field  string
	}{
		{"wrong e-Boekhouden token", set(e.credentials(), "eboekhouden.token", "not-the-token"), 422, "credentials_refused", "eboekhouden.token"},
		{"wrong Tribe secret", set(e.credentials(), "tribe.client_secret", "not-the-secret"), 422, "credentials_refused", "tribe.client_secret"},
		{"wrong Tribe client", set(e.credentials(), "tribe.client_id", "nobody"), 422, "credentials_refused", "tribe.client_secret"},
		{"both wrong names e-Boekhouden first", set(set(e.credentials(), "tribe.client_secret", "x"), "eboekhouden.token", "y"), 422, "credentials_refused", "eboekhouden.token"},
		{"e-Boekhouden unreachable", set(e.credentials(), "eboekhouden.base_url", "http://127.0.0.1:1"), 502, "unreachable", "eboekhouden.base_url"},
		{"missing token", set(e.credentials(), "eboekhouden.token", ""), 400, "", "eboekhouden.token"},
		{"relative URL", set(e.credentials(), "tribe.base_url", "/tribe"), 400, "", "tribe.base_url"},
	}
	for _, c := range cases {
		status, ae := e.call("PUT", "/credentials", c.body, nil)
		if status != c.status || (c.code != "" && ae.Code != c.code) || ae.Field != c.field {
			t.Errorf("%s: %d %+v, want %d %s field %s", c.name, status, ae, c.status, c.code, c.field)
		}
		if strings.Contains(ae.Message, e.ebToken) || strings.Contains(ae.Message, e.trEnv.ClientSecret) {
			t.Errorf("%s: the answer leaks a secret: %s", c.name, ae.Message)
		}
	}
	if names := e.tenant().GetSecretNames(); len(names) != 0 {
		t.Fatalf("refused credentials were stored: %v", names)
	}
	if status, ae := e.call("PUT", "/credentials", map[string]any{"eboekhouden": map[string]string{}, "extra": 1}, nil); status != 400 {
		t.Fatalf("unknown field: %d %+v", status, ae)
	}

	var got map[string]any
	if status, ae := e.call("PUT", "/credentials", e.credentials(), &got); status != 200 {
		t.Fatalf("right credentials: %d %+v", status, ae)
	}
	st := e.tenant().GetSettings()
	if st.GetEboekhoudenBaseUrl() != e.ebURL || st.GetTribeClientId() != e.trEnv.ClientID || e.secret(SecretEBoekhoudenToken) != e.ebToken || e.secret(SecretTribeClientSecret) != e.trEnv.ClientSecret {
		t.Fatalf("stored settings %v", st)
	}
}

func TestStepsBeforeCredentialsConflict(t *testing.T) {
	e := newActivationEnv(t)
	if status, ae := e.call("GET", "/configuration", nil, nil); status != 409 || ae.Code != "no_credentials" {
		t.Fatalf("configuration: %d %+v", status, ae)
	}
	if status, ae := e.call("POST", "/activate", nil, nil); status != 409 || ae.Code != "no_credentials" {
		t.Fatalf("activate: %d %+v", status, ae)
	}
	e.tenantID = "nobody"
	if status, ae := e.call("GET", "/configuration", nil, nil); status != 404 {
		t.Fatalf("unknown tenant: %d %+v", status, ae)
	}
}

func optionByCode(opts []Option, code string) Option {
	for _, o := range opts {
		if o.Code == code {
			return o
		}
	}
	return Option{}
}

func TestActivation(t *testing.T) {
	e := newActivationEnv(t)
	if status, ae := e.call("PUT", "/credentials", e.credentials(), nil); status != 200 {
		t.Fatalf("credentials: %d %+v", status, ae)
	}
	var cfg Configuration
	if status, ae := e.call("GET", "/configuration", nil, &cfg); status != 200 {
		t.Fatalf("configuration: %d %+v", status, ae)
	}
	if len(cfg.Ledgers) == 0 || len(cfg.VATCodes) == 0 || len(cfg.InvoiceTemplates) == 0 || len(cfg.VATGroups) != 4 || len(cfg.Units) == 0 || len(cfg.AddressTypes) != 3 {
		t.Fatalf("configuration: %+v", cfg)
	}
	high := optionByCode(cfg.VATGroups, "HIGH")
	if high.ID == "" || high.Percentage != "21" {
		t.Fatalf("VAT group HIGH: %+v", high)
	}
	debtors := optionByCode(cfg.Ledgers, "1300")
	if status, ae := e.call("POST", "/activate", nil, nil); status != 409 || ae.Code != "no_links" {
		t.Fatalf("activate before links: %d %+v", status, ae)
	}

	links := func(change func(l *Links)) *Links {
		l := &Links{DebtorLedger: "1300", InvoiceTemplate: cfg.InvoiceTemplates[0].ID,
			RevenueLedgers: map[string]string{"HIGH": "8000", "LOW": "8010"},
			VATCodes:       map[string]string{"HIGH": "HOOG_VERK_21", "LOW": "LAAG_VERK_9"}}
		if change != nil {
			change(l)
		}
		return l
	}
	refused := []struct {
		name  string
		links *Links
		field string
	}{
		{"bank as debtor ledger", links(func(l *Links) { l.DebtorLedger = "1100" }), "debtor_ledger"},
		{"unknown ledger", links(func(l *Links) { l.DebtorLedger = "9999" }), "debtor_ledger"},
		{"no template", links(func(l *Links) { l.InvoiceTemplate = "" }), "invoice_template"},
		{"unknown VAT group", links(func(l *Links) { l.RevenueLedgers["NOPE"] = "8000" }), "revenue_ledgers.NOPE"},
		{"balance ledger as revenue", links(func(l *Links) { l.RevenueLedgers["LOW"] = "0100" }), "revenue_ledgers.LOW"},
		{"purchase VAT code", links(func(l *Links) { l.VATCodes["HIGH"] = "HOOG_INK_21" }), "vat_codes.HIGH"},
		{"unknown VAT code", links(func(l *Links) { l.VATCodes["HIGH"] = "NOPE" }), "vat_codes.HIGH"},
		{"VAT code missing", links(func(l *Links) { delete(l.VATCodes, "LOW") }), "vat_codes." + optionByCode(cfg.VATGroups, "LOW").ID},
		{"auto numbers without start", links(func(l *Links) { l.AutoDebtorNumbers = true }), "debtor_number_start"},
		{"bad schedule", links(func(l *Links) { l.ScheduleSeconds = map[string]int64{"import": 3600} }), "schedule_seconds.import"},
	}
	for _, c := range refused {
		if status, ae := e.call("PUT", "/links", c.links, nil); status != 400 || ae.Field != c.field {
			t.Errorf("%s: %d %+v, want 400 naming %s", c.name, status, ae, c.field)
		}
	}
	ok := links(func(l *Links) { l.AutoDebtorNumbers, l.DebtorNumberStart = true, 10000 })
	if status, ae := e.call("PUT", "/links", ok, nil); status != 200 {
		t.Fatalf("links: %d %+v", status, ae)
	}
	st := e.tenant().GetSettings()
	want := map[string]string{tenantsettings.DebtorLedger: debtors.ID, tenantsettings.InvoiceTemplate: cfg.InvoiceTemplates[0].ID,
		tenantsettings.RevenueLedgerPrefix + high.ID: optionByCode(cfg.Ledgers, "8000").ID, tenantsettings.VATCodePrefix + high.ID: "HOOG_VERK_21"}
	for k, v := range want {
		if st.GetLinks()[k] != v {
			t.Errorf("link %s = %q, want %q (links stored by ID)", k, st.GetLinks()[k], v)
		}
	}
	if !st.GetAutoDebtorNumbers() || st.GetDebtorNumberStart() != 10000 {
		t.Errorf("debtor numbering: %v from %d", st.GetAutoDebtorNumbers(), st.GetDebtorNumberStart())
	}

	var res adminapi.Activated
	if status, ae := e.call("POST", "/activate", nil, &res); status != 202 {
		t.Fatalf("activate: %d %+v", status, ae)
	}
	if res.ImportRunID == "" || len(res.Webhooks) != len(bus.EntityTypes) {
		t.Fatalf("activate answer: %+v", res)
	}
	t1 := e.tenant()
	if t1.GetState() != mappingv1.TenantState_TENANT_STATE_ACTIVE {
		t.Fatalf("state %v", t1.GetState())
	}
	regs := e.simWebhooks()
	if len(regs) != len(bus.EntityTypes) {
		t.Fatalf("Tribe has %d registrations, want 3", len(regs))
	}
	for _, r := range regs {
		if r.WebhookURL != e.gw.URL+"/webhooks/tribe/acme" {
			t.Errorf("registration %s: URL %s", r.ID, r.WebhookURL)
		}
		if got := t1.GetSettings().GetLinks()[tenantsettings.WebhookPrefix+r.ID]; got != r.EntityType {
			t.Errorf("link of registration %s = %q, want %q", r.ID, got, r.EntityType)
		}
		if got := e.secret(tenantsettings.WebhookSecret(r.ID)); got != r.Secret {
			t.Errorf("secret of registration %s not stored", r.ID)
		}
		if r.EntityType == "Relation.Organization" && e.secret(tenantsettings.SecretWebhook) != r.Secret {
			t.Errorf("the intake's secret is not the organisation registration's")
		}
	}
	// The other links survive the activation.
	if t1.GetSettings().GetLinks()[tenantsettings.DebtorLedger] != debtors.ID {
		t.Errorf("activation dropped the links: %v", t1.GetSettings().GetLinks())
	}
	cmd := e.importCommand()
	if cmd.GetRunId() != res.ImportRunID || cmd.GetTrigger() != "activation" || cmd.GetKind() != bus.KindImport {
		t.Fatalf("import command %v, want run %s", cmd, res.ImportRunID)
	}

	// Activating again replaces the registrations instead of adding to them, and keeps the
	// links of the new ones only.
	if status, ae := e.call("POST", "/activate", nil, &res); status != 202 {
		t.Fatalf("activate again: %d %+v", status, ae)
	}
	if n := len(e.simWebhooks()); n != len(bus.EntityTypes) {
		t.Fatalf("after a second activation Tribe has %d registrations, want 3", n)
	}
	webhookLinks := 0
	for k := range e.tenant().GetSettings().GetLinks() {
		if strings.HasPrefix(k, tenantsettings.WebhookPrefix) {
			webhookLinks++
		}
	}
	if webhookLinks != len(bus.EntityTypes) {
		t.Fatalf("%d webhook links, want 3", webhookLinks)
	}
}

type simWebhook struct {
	ID         string `json:"id"`
	EntityType string `json:"entityType"`
	WebhookURL string `json:"webhookUrl"`
	Secret     string `json:"secret"`
}

func (e *activationEnv) simWebhooks() []simWebhook {
	e.t.Helper()
	resp, err := http.Get(e.trURL + "/_sim/environments/" + e.trEnv.ID + "/webhooks")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []simWebhook
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// importCommand reads the first import command of the tenant from the bus.
func (e *activationEnv) importCommand() *eventsv1.SyncCommand {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	subject, err := bus.SyncCommandSubject(e.tenantID, bus.KindImport)
	if err != nil {
		e.t.Fatal(err)
	}
	c, err := e.js.OrderedConsumer(ctx, bus.StreamSyncCommands, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		e.t.Fatal(err)
	}
	msg, err := c.Next(jetstream.FetchContext(ctx))
	if err != nil {
		e.t.Fatalf("no import command on the bus: %v", err)
	}
	var cmd eventsv1.SyncCommand
	if err := proto.Unmarshal(msg.Data(), &cmd); err != nil {
		e.t.Fatal(err)
	}
	return &cmd
}

func TestActivateRefusesWhileImportRuns(t *testing.T) {
	e := newActivationEnv(t)
	ctx := context.Background()
	if status, ae := e.call("PUT", "/credentials", e.credentials(), nil); status != 200 {
		t.Fatalf("credentials: %d %+v", status, ae)
	}
	var cfg Configuration
	e.call("GET", "/configuration", nil, &cfg)
	l := &Links{DebtorLedger: "1300", InvoiceTemplate: cfg.InvoiceTemplates[0].ID,
		RevenueLedgers: map[string]string{"HIGH": "8000"}, VATCodes: map[string]string{"HIGH": "HOOG_VERK_21"}}
	if status, ae := e.call("PUT", "/links", l, nil); status != 200 {
		t.Fatalf("links: %d %+v", status, ae)
	}
	if _, err := e.m.Client.StartRun(ctx, &mappingv1.StartRunRequest{TenantId: e.tenantID, Kind: bus.KindImport, RunId: "r1", Trigger: "manual"}); err != nil {
		t.Fatal(err)
	}
	if status, ae := e.call("POST", "/activate", nil, nil); status != 409 || ae.Code != "run_in_progress" {
		t.Fatalf("activate during an import: %d %+v", status, ae)
	}
	if n := len(e.simWebhooks()); n != 0 {
		t.Fatalf("registered %d webhooks though refused", n)
	}
}

func TestRevokedTokenNamesItAtConfiguration(t *testing.T) {
	e := newActivationEnv(t)
	if status, ae := e.call("PUT", "/credentials", e.credentials(), nil); status != 200 {
		t.Fatalf("credentials: %d %+v", status, ae)
	}
	// The token is revoked after it was stored.
	if _, err := e.m.Client.PutSecret(context.Background(), &mappingv1.PutSecretRequest{TenantId: e.tenantID, Name: SecretEBoekhoudenToken, Value: []byte("revoked")}); err != nil {
		t.Fatal(err)
	}
	st := e.tenant().GetSettings()
	if _, err := e.m.Client.UpdateTenantSettings(context.Background(), &mappingv1.UpdateTenantSettingsRequest{TenantId: e.tenantID, Settings: st}); err != nil {
		t.Fatal(err)
	}
	if status, ae := e.call("GET", "/configuration", nil, nil); status != 422 || ae.Field != "eboekhouden.token" {
		t.Fatalf("configuration with a revoked token: %d %+v", status, ae)
	}
}

func TestWebhookSecretName(t *testing.T) {
	for id, want := range map[string]string{
		"3F2504E0-4F89-11D3-9A0C-0305E82C3301": "webhook_secret_3f2504e04f8911d39a0c0305e82c3301",
		"wh/1":                                 "webhook_secret_wh1",
	} {
		if got := tenantsettings.WebhookSecret(id); got != want {
			t.Errorf("%s: %s, want %s", id, got, want)
		}
	}
}

func ctx() context.Context { return context.Background() }
