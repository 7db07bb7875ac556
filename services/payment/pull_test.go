package main

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/eboekhouden"
	"github.com/koppel/koppel/pkg/syncrun"
	"github.com/koppel/koppel/pkg/tenantclients"
	"github.com/koppel/koppel/pkg/tribe"
	eventsv1 "github.com/koppel/koppel/proto/koppel/events/v1"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/koppel/koppel/services/mapping/mappingtest"
	"github.com/koppel/koppel/services/sandbox/ebsim"
	"github.com/koppel/koppel/services/sandbox/tribesim"
)

var ctx = context.Background()

// TestPaymentsReachTribe books a sent Tribe invoice in e-Boekhouden as the invoice flow would,
// then pays it in two parts the way a bookkeeper processing bank statements would.
func TestPaymentsReachTribe(t *testing.T) {
	// Whether e-Boekhouden keeps paid items in its open-item list is UNCONFIRMED: both ways.
	for _, keep := range []bool{false, true} {
		t.Run("keep_paid="+strconv.FormatBool(keep), func(t *testing.T) { paymentsReachTribe(t, keep) })
	}
}

func paymentsReachTribe(t *testing.T, keepPaid bool) {
	m := mappingtest.Start(t)
	ebs := ebsim.New(ebsim.Options{KeepPaidOutstanding: keepPaid})
	ebSrv := httptest.NewServer(ebs)
	t.Cleanup(ebSrv.Close)
	adm, err := ebs.CreateAdministration(ebsim.AdminSpec{Company: "Jansen BV"})
	if err != nil {
		t.Fatal(err)
	}
	sim := tribesim.New(tribesim.Options{})
	t.Cleanup(sim.Close)
	trSrv := httptest.NewServer(sim)
	t.Cleanup(trSrv.Close)
	env, err := sim.CreateEnvironment(tribesim.EnvironmentSpec{ID: "acme", Generate: &tribesim.GenerateSpec{Organizations: 2, Products: 3, Invoices: 9, Seed: 5}})
	if err != nil {
		t.Fatal(err)
	}
	cache, _ := tenantclients.New(m.Client, tenantclients.Options{EBoekhoudenRate: 1000, TribeRate: 1000})
	ebCall, trCall := cache.Callers()
	eb, _ := tenantclients.NewEBoekhouden(ebCall, "acme", ebSrv.URL, adm.AccessToken)
	tr, _ := tenantclients.NewTribe(trCall, "acme", trSrv.URL, trSrv.URL, env.ClientID, env.ClientSecret)
	if _, err := m.Client.CreateTenant(ctx, &mappingv1.CreateTenantRequest{Tenant: &mappingv1.Tenant{Id: "acme", State: mappingv1.TenantState_TENANT_STATE_ACTIVE}}); err != nil {
		t.Fatal(err)
	}

	sent, err := tribe.Collect(tr.Invoices(ctx, tribe.InvoiceQuery().Filter(tribe.Eq("Phase/Code", "Sent"))))
	if err != nil || len(sent) < 2 {
		t.Fatalf("sent invoices: %d, %v", len(sent), err)
	}
	inv, other := sent[0], sent[1]

	// Book inv in e-Boekhouden as an open item of 121.00, and link it.
	ledgers, _ := eboekhouden.Collect(eb.Ledgers(ctx))
	var debtors, revenue int64
	for _, l := range ledgers {
		switch {
		case l.Category == eboekhouden.CategoryDebtors && debtors == 0:
			debtors = l.ID
		case l.Category == eboekhouden.CategoryPL && revenue == 0:
			revenue = l.ID
		}
	}
	templates, _ := eboekhouden.Collect(eb.InvoiceTemplates(ctx))
	rel, err := eb.CreateRelation(ctx, eboekhouden.Relation{Type: eboekhouden.RelationBusiness, Name: "Jansen Installaties"})
	if err != nil {
		t.Fatal(err)
	}
	qty, _ := eboekhouden.NewQuantity("1")
	price, _ := eboekhouden.NewAmount("100.00")
	created, err := eb.CreateInvoice(ctx, eboekhouden.NewInvoice{RelationID: rel.ID, InvoiceNumber: inv.Number, TermOfPayment: 30, TemplateID: templates[0].ID,
		Items:    []eboekhouden.InvoiceItem{{Quantity: qty, Description: "Werkzaamheden", PricePerUnit: price, VATCode: eboekhouden.VATHighSale21, LedgerID: revenue}},
		Mutation: &eboekhouden.InvoiceMutation{LedgerID: debtors}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Client.CreateLink(ctx, &mappingv1.CreateLinkRequest{TenantId: "acme", Kind: "invoice", TribeId: inv.ID,
		EboekhoudenId: strconv.FormatInt(created.ID, 10), Record: []byte(`{"number":"` + inv.Number + `"}`)}); err != nil {
		t.Fatal(err)
	}

	p := &puller{mapping: m.Client, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		connect: func(context.Context, *mappingv1.Tenant) (*eboekhouden.Client, *tribe.Client, error) {
			return eb, tr, nil
		}}
	runs := 0
	pull := func() *mappingv1.Run {
		t.Helper()
		runs++
		id := "r" + strconv.Itoa(runs)
		r, err := syncrun.Start(ctx, m.Client, "acme", bus.KindPayment, id, "test")
		if err != nil {
			t.Fatal(err)
		}
		ten, _ := m.Client.GetTenant(ctx, &mappingv1.GetTenantRequest{TenantId: "acme"})
		if err := p.pull(ctx, ten.GetTenant(), &eventsv1.SyncCommand{TenantId: "acme", Kind: bus.KindPayment, RunId: id}, r); err != nil {
			t.Fatal(err)
		}
		if err := r.Finish(ctx, nil); err != nil {
			t.Fatal(err)
		}
		res, _ := m.Client.ListRuns(ctx, &mappingv1.ListRunsRequest{TenantId: "acme", Kind: bus.KindPayment, Limit: 1})
		return res.GetFinished()[0]
	}
	phase := func(id string) string {
		got, err := tr.Invoice(ctx, id, tribe.Q().Expand("Phase"))
		if err != nil {
			t.Fatal(err)
		}
		return got.Phase.Code
	}

	// Nothing paid: nothing changes.
	if r := pull(); r.GetCounts().GetUpdated() != 0 || phase(inv.ID) != "Sent" {
		t.Fatalf("unpaid: %v, phase %s", r.GetCounts(), phase(inv.ID))
	}
	// A partial payment is tracked, and the invoice is not marked paid.
	if _, err := ebs.BookPayment(adm.ID, ebsim.Payment{InvoiceNumber: inv.Number, Amount: "21.00"}); err != nil {
		t.Fatal(err)
	}
	if r := pull(); r.GetCounts().GetUpdated() != 1 || phase(inv.ID) != "Sent" {
		t.Fatalf("partly paid: %v, phase %s", r.GetCounts(), phase(inv.ID))
	}
	h, _ := m.Client.ListHistory(ctx, &mappingv1.ListHistoryRequest{TenantId: "acme"})
	if len(h.GetEntries()) != 1 || h.GetEntries()[0].GetDetails()["open"] != "100.00" {
		t.Fatalf("history: %v", h.GetEntries())
	}
	if r := pull(); r.GetCounts().GetUpdated() != 0 {
		t.Fatalf("a repeated pull changed %d", r.GetCounts().GetUpdated())
	}
	// The rest: the invoice is Paid in Tribe; the unlinked one is left alone.
	if _, err := ebs.BookPayment(adm.ID, ebsim.Payment{InvoiceNumber: inv.Number}); err != nil {
		t.Fatal(err)
	}
	if r := pull(); r.GetCounts().GetUpdated() != 1 || phase(inv.ID) != "Paid" {
		t.Fatalf("paid: %v, phase %s", r.GetCounts(), phase(inv.ID))
	}
	if phase(other.ID) != "Sent" {
		t.Fatalf("an invoice koppel did not book was marked %s", phase(other.ID))
	}
}
