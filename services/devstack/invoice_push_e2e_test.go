package main

import (
	"context"
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/koppel/koppel/pkg/adminapi"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
)

// linkVAT stores VAT links (Tribe VAT group ID -> VAT code) on the tenant, as PUT .../links does.
func (st *sandboxTenant) linkVAT(t *testing.T, byGroup map[string]string) {
	t.Helper()
	ctx := context.Background()
	res, err := st.m.GetTenant(ctx, &mappingv1.GetTenantRequest{TenantId: st.id})
	if err != nil {
		t.Fatal(err)
	}
	settings := res.GetTenant().GetSettings()
	if settings.Links == nil {
		settings.Links = map[string]string{}
	}
	for g, code := range byGroup {
		settings.Links["vat_code:"+g] = code
	}
	if _, err := st.m.UpdateTenantSettings(ctx, &mappingv1.UpdateTenantSettingsRequest{TenantId: st.id, Settings: settings}); err != nil {
		t.Fatal(err)
	}
}

// storedLinks reads a tenant's links back into the body of PUT .../links.
func storedLinks(t *testing.T, st *sandboxTenant) map[string]any {
	t.Helper()
	res, err := st.m.GetTenant(context.Background(), &mappingv1.GetTenantRequest{TenantId: st.id})
	if err != nil {
		t.Fatal(err)
	}
	settings := res.GetTenant().GetSettings()
	revenue, codes := map[string]string{}, map[string]string{}
	for k, v := range settings.GetLinks() {
		if g, ok := strings.CutPrefix(k, "revenue_ledger:"); ok {
			revenue[g] = v
		}
		if g, ok := strings.CutPrefix(k, "vat_code:"); ok {
			codes[g] = v
		}
	}
	return map[string]any{"debtor_ledger": settings.GetLinks()["debtor_ledger"], "invoice_template": settings.GetLinks()["invoice_template"],
		"revenue_ledgers": revenue, "vat_codes": codes, "auto_debtor_numbers": settings.GetAutoDebtorNumbers(), "debtor_number_start": settings.GetDebtorNumberStart()}
}

// sendOneLineInvoice makes an invoice of one line as a Tribe user would and sends it (Tribe's webhook
// tells koppel); it returns the invoice's ID.
func sendOneLineInvoice(t *testing.T, sb func(method, path string, body, out any), env, customer, currency, vatGroup string) string {
	t.Helper()
	var inv map[string]any
	sb("POST", "/tribe/_sim/environments/"+env+"/entities/Activity_Invoice", map[string]any{"Subject": "Vakboeken", "Currency": currency,
		"Relationship": map[string]any{"ID": customer}, "DueDate": time.Now().AddDate(0, 0, 30).UTC().Format(time.RFC3339)}, &inv)
	id, _ := inv["ID"].(string)
	if id == "" {
		t.Fatalf("invoice not made: %v", inv)
	}
	sb("POST", "/tribe/_sim/environments/"+env+"/entities/ProductLine", map[string]any{"Description": "Vakboek boekhouden", "Quantity": 2, "Price": 30,
		"VatPercentage": 9, "VatGroup": map[string]any{"ID": vatGroup}, "Activity": map[string]any{"ID": id}}, nil)
	sb("POST", "/tribe/_sim/environments/"+env+"/invoices/"+id+"/phase", map[string]string{"code": "Sent"}, nil)
	return id
}

// A bookkeeper sends an invoice with a 9% line before the 9% VAT group is linked. koppelctl
// shows why it is not booked, a push without a fix ends in the same issue (exit 1), storing the
// links books it by itself, and a push of a booked invoice says so at once. An invoice in dollars
// is refused with its issue. Every service a real process, Tribe's own webhooks.
func TestInvoicePushAndLinksEndToEnd(t *testing.T) {
	s := startStackEnv(t, map[string]string{"KOPPEL_TRIBE_RATE": "1000", "KOPPEL_EBOEKHOUDEN_RATE": "1000"}, "scheduler")
	ctx := context.Background()
	if err := seedTenant(ctx, s, sandboxSpec{id: "shop", name: "Boekhandel B.V.", company: "Boekhandel Boekhouding", relations: 4, products: 2, seed: 3}); err != nil {
		t.Fatal(err)
	}
	m, err := s.DialMapping()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	st := &sandboxTenant{s: s, id: "shop", tribeEnv: "shop", m: m}
	eventually(t, "the import", 60*time.Second, func() bool {
		r := st.run(t, "import")
		return r != nil && r.Status == mappingv1.RunStatus_RUN_STATUS_SUCCEEDED
	})
	admin := &client{t: t, base: "http://" + s.Addrs["admin"], token: s.AdminToken}
	url := "http://" + s.Addrs["admin"]
	ctl := func(args ...string) (string, int) { return koppelctl(t, url, s.AdminToken, "", args...) }
	sb := func(method, path string, body, out any) { sandboxJSON(t, s, method, path, body, out) }
	show := func(id string) adminapi.InvoiceState {
		t.Helper()
		out, code := ctl("-o", "json", "invoices", "show", "shop", id)
		var got adminapi.InvoiceState
		if code != 0 || json.Unmarshal([]byte(out), &got) != nil {
			t.Fatalf("invoices show: exit %d: %s", code, out)
		}
		return got
	}
	hasIssue := func(id, code string) func() bool {
		return func() bool {
			for _, i := range show(id).Issues {
				if i.Code == code {
					return true
				}
			}
			return false
		}
	}

	// The 9% group is not linked yet.
	full := storedLinks(t, st)
	vat := lookupIDs(t, s, "shop", "Datastore_VatGroup")
	partial := maps.Clone(full)
	for _, k := range []string{"revenue_ledgers", "vat_codes"} {
		m := maps.Clone(full[k].(map[string]string))
		delete(m, vat["LOW"])
		partial[k] = m
	}
	if code, body := admin.do("PUT", "/admin/v1/tenants/shop/links", partial); code != 200 {
		t.Fatalf("links without LOW: %d %v", code, body)
	}
	customers := tribeEntities(t, s, "shop", "Relationship_Organization_CommercialRelationship_Customer")
	if len(customers) == 0 {
		t.Fatal("the import made no customers")
	}
	customer := customers[0]["ID"].(string)
	id := sendOneLineInvoice(t, sb, "shop", customer, "EUR", vat["LOW"])
	eventually(t, "the invoice's issue", 60*time.Second, hasIssue(id, "unmapped_vat_group"))
	if got := show(id); got.Booked || got.Issues[0].Details["retry_on"] != "links" {
		t.Fatalf("invoice %+v", got)
	}

	// Pushed again without a fix: the same issue once more, exit 1.
	if out, code := ctl("invoices", "push", "shop", id, "-timeout", "60s"); code != 1 || !strings.Contains(out, "unmapped_vat_group") {
		t.Fatalf("push without a fix: exit %d: %s", code, out)
	}

	// The bookkeeper links the group: the invoice is booked by itself.
	if code, body := admin.do("PUT", "/admin/v1/tenants/shop/links", full); code != 200 || body["invoices_retried"] != float64(1) {
		t.Fatalf("links: %d %v", code, body)
	}
	eventually(t, "the invoice booked", 60*time.Second, func() bool { return show(id).Booked })
	got := show(id)
	if len(got.Issues) != 0 || got.EBoekhoudenID == "" || got.Number == "" {
		t.Fatalf("booked invoice %+v", got)
	}
	var invoices []struct {
		InvoiceNumber string `json:"invoiceNumber"`
	}
	var admins []struct{ ID string }
	sb("GET", "/eboekhouden/_sim/admins", nil, &admins)
	sb("GET", "/eboekhouden/_sim/admins/"+admins[0].ID+"/state?kind=invoices", nil, &invoices)
	n := 0
	for _, inv := range invoices {
		if inv.InvoiceNumber == got.Number {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d e-Boekhouden invoices numbered %s", n, got.Number)
	}
	if out, code := ctl("invoices", "push", "shop", id); code != 0 || !strings.Contains(out, "is booked: e-Boekhouden invoice "+got.EBoekhoudenID) {
		t.Fatalf("push of a booked invoice: exit %d: %s", code, out)
	}

	// An invoice in dollars: never booked; the push ends in its issue, which says how to go on.
	usd := sendOneLineInvoice(t, sb, "shop", customer, "USD", vat["LOW"])
	eventually(t, "the dollar invoice's issue", 60*time.Second, hasIssue(usd, "unsupported_currency"))
	out, code := ctl("invoices", "push", "shop", usd, "-timeout", "60s")
	if code != 1 || !strings.Contains(out, "unsupported_currency") || !strings.Contains(out, "koppelctl invoices push shop "+usd) {
		t.Fatalf("push of the dollar invoice: exit %d: %s", code, out)
	}
	if out, code := ctl("invoices", "push", "nobody", usd); code != 3 {
		t.Fatalf("unknown tenant: exit %d: %s", code, out)
	}
}
