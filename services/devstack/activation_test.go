package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/koppel/koppel/pkg/adminapi"
)

// Activation end to end: an administration and an environment in the sandbox, then every step
// through the admin API and koppelctl, with every service a real process.
func TestActivationEndToEnd(t *testing.T) {
	s := startStack(t, "scheduler")
	sandbox := "http://" + s.Addrs["sandbox"]
	adminURL := "http://" + s.Addrs["admin"]
	admin := &client{t: t, base: adminURL, token: s.AdminToken}

	simPost := func(path string, body, out any) {
		t.Helper()
		b, _ := json.Marshal(body)
		resp, err := http.Post(sandbox+path, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode >= 300 {
			t.Fatalf("POST %s: %d", path, resp.StatusCode)
		}
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
	}
	var adm struct {
		AccessToken string `json:"accessToken"`
	}
	simPost("/eboekhouden/_sim/admins", map[string]any{"company": "Jansen BV", "relations": 5}, &adm)
	var env struct {
		ID           string `json:"id"`
		ClientID     string `json:"clientId"`
		ClientSecret string `json:"clientSecret"`
	}
	simPost("/tribe/_sim/environments", map[string]any{"name": "Jansen BV"}, &env)

	if code, body := admin.do("POST", "/admin/v1/tenants", map[string]string{"id": "jansen", "display_name": "Jansen BV"}); code != 201 {
		t.Fatalf("create tenant: %d %v", code, body)
	}
	creds := func(ebToken, tribeSecret string) map[string]any {
		return map[string]any{
			"eboekhouden": map[string]string{"base_url": sandbox + "/eboekhouden", "token": ebToken},
			"tribe":       map[string]string{"base_url": sandbox + "/tribe", "auth_url": sandbox + "/tribe", "client_id": env.ClientID, "client_secret": tribeSecret},
		}
	}
	field := func(body map[string]any) string {
		e, _ := body["error"].(map[string]any)
		f, _ := e["field"].(string)
		return f
	}

	// Step 1: each wrong credential is named.
	if code, body := admin.do("PUT", "/admin/v1/tenants/jansen/credentials", creds("wrong-token", env.ClientSecret)); code != 422 || field(body) != "eboekhouden.token" {
		t.Fatalf("wrong e-Boekhouden token: %d %v", code, body)
	}
	if code, body := admin.do("PUT", "/admin/v1/tenants/jansen/credentials", creds(adm.AccessToken, "wrong-secret")); code != 422 || field(body) != "tribe.client_secret" {
		t.Fatalf("wrong Tribe secret: %d %v", code, body)
	}
	// The right ones through koppelctl, the secrets in its environment.
	url := adminURL
	t.Setenv("KOPPEL_EBOEKHOUDEN_TOKEN", adm.AccessToken)
	t.Setenv("KOPPEL_TRIBE_CLIENT_SECRET", env.ClientSecret)
	if out, code := koppelctl(t, url, s.AdminToken, "", "tenants", "credentials", "jansen", "-eboekhouden-url", sandbox+"/eboekhouden",
		"-tribe-url", sandbox+"/tribe", "-tribe-client-id", env.ClientID); code != 0 {
		t.Fatalf("koppelctl credentials: exit %d: %s", code, out)
	}

	// Step 2: the configuration of both systems.
	out, code := koppelctl(t, url, s.AdminToken, "", "-o", "json", "tenants", "configuration", "jansen")
	type option struct{ ID, Code, Category string }
	var cfg struct {
		Ledgers          []option `json:"ledgers"`
		VATCodes         []option `json:"vat_codes"`
		InvoiceTemplates []option `json:"invoice_templates"`
		VATGroups        []option `json:"vat_groups"`
		Units            []option `json:"units"`
		AddressTypes     []option `json:"address_types"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &cfg) != nil {
		t.Fatalf("koppelctl configuration: exit %d: %s", code, out)
	}
	if len(cfg.Ledgers) == 0 || len(cfg.VATCodes) == 0 || len(cfg.InvoiceTemplates) == 0 || len(cfg.VATGroups) == 0 || len(cfg.Units) == 0 || len(cfg.AddressTypes) == 0 {
		t.Fatalf("configuration: %s", out)
	}
	template := cfg.InvoiceTemplates[0].ID

	// Step 3: links that do not fit are refused, naming the field.
	links := func(debtor, group, vat string) map[string]any {
		return map[string]any{"debtor_ledger": debtor, "invoice_template": template,
			"revenue_ledgers": map[string]string{group: "8000"}, "vat_codes": map[string]string{group: vat}}
	}
	for _, c := range []struct {
		name  string
		links map[string]any
		field string
	}{
		{"bank ledger as debtors", links("1100", "HIGH", "HOOG_VERK_21"), "debtor_ledger"},
		{"unknown VAT group", links("1300", "NOPE", "HOOG_VERK_21"), "revenue_ledgers.NOPE"},
		{"purchase VAT code", links("1300", "HIGH", "HOOG_INK_21"), "vat_codes.HIGH"},
	} {
		if code, body := admin.do("PUT", "/admin/v1/tenants/jansen/links", c.links); code != 400 || field(body) != c.field {
			t.Errorf("%s: %d %v, want 400 naming %s", c.name, code, body, c.field)
		}
	}
	if out, code := koppelctl(t, url, s.AdminToken, "", "tenants", "links", "jansen", "-debtor-ledger", "1300", "-invoice-template", template,
		"-revenue", "HIGH=8000", "-revenue", "LOW=8010", "-vat", "HIGH=HOOG_VERK_21", "-vat", "LOW=LAAG_VERK_9",
		"-auto-debtor-numbers", "-debtor-number-start", "20000"); code != 0 {
		t.Fatalf("koppelctl links: exit %d: %s", code, out)
	}

	// Step 4: activate registers the webhooks in Tribe and starts the import at once.
	out, code = koppelctl(t, url, s.AdminToken, "", "tenants", "activate", "jansen")
	if code != 0 || !strings.Contains(out, "initial import started") {
		t.Fatalf("koppelctl activate: exit %d: %s", code, out)
	}
	resp, err := http.Get(sandbox + "/tribe/_sim/environments/" + env.ID + "/webhooks")
	if err != nil {
		t.Fatal(err)
	}
	var hooks []struct {
		EntityType string `json:"entityType"`
		WebhookURL string `json:"webhookUrl"`
	}
	err = json.NewDecoder(resp.Body).Decode(&hooks)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]bool{}
	for _, h := range hooks {
		if h.WebhookURL != "http://"+s.Addrs["gateway"]+"/webhooks/tribe/jansen" {
			t.Errorf("webhook %s to %s", h.EntityType, h.WebhookURL)
		}
		types[h.EntityType] = true
	}
	for _, want := range []string{"Relation.Organization", "Relation.Person", "Activity.Invoice"} {
		if !types[want] {
			t.Errorf("no webhook for %s in Tribe: %v", want, hooks)
		}
	}
	if code, body := admin.do("GET", "/admin/v1/tenants/jansen", nil); code != 200 || body["state"] != adminapi.StateActive {
		t.Fatalf("tenant after activation: %d %v", code, body)
	}
	eventually(t, "an import run in the tenant's status", 30*time.Second, func() bool {
		_, st := admin.do("GET", "/admin/v1/tenants/jansen/status", nil)
		runs, _ := st["runs"].(map[string]any)
		for _, list := range []string{"current", "finished"} {
			items, _ := runs[list].([]any)
			for _, r := range items {
				if m, _ := r.(map[string]any); m["kind"] == "import" {
					return true
				}
			}
		}
		return false
	})
}
