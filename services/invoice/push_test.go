package main

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/bustest"
	"github.com/koppel/koppel/pkg/eboekhouden"
	"github.com/koppel/koppel/pkg/tenantclients"
	"github.com/koppel/koppel/pkg/tenantsettings"
	"github.com/koppel/koppel/pkg/tribe"
	eventsv1 "github.com/koppel/koppel/proto/koppel/events/v1"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/koppel/koppel/services/mapping/mappingtest"
	"github.com/koppel/koppel/services/sandbox/ebsim"
	"github.com/koppel/koppel/services/sandbox/tribesim"
	"github.com/nats-io/nats.go/jetstream"
)

var ctx = context.Background()

type world struct {
	t   *testing.T
	m   *mappingtest.Service
	js  jetstream.JetStream
	eb  *eboekhouden.Client
	tr  *tribe.Client
	sim *tribesim.Simulator
	p   *pusher
}

// newWorld is one tenant, linked as activation would link it, with a Tribe environment holding
// customers, products and invoices in every phase, and an empty e-Boekhouden administration.
func newWorld(t *testing.T) *world { return newWorldWith(t, tribesim.Options{}) }

// newWorldWith is newWorld with a Tribe simulator configured by opts.
func newWorldWith(t *testing.T, opts tribesim.Options) *world {
	w := &world{t: t, m: mappingtest.Start(t), js: bustest.Start(t).JS}
	ebs := ebsim.New(ebsim.Options{})
	ebSrv := httptest.NewServer(ebs)
	t.Cleanup(ebSrv.Close)
	adm, err := ebs.CreateAdministration(ebsim.AdminSpec{Company: "Jansen BV"})
	if err != nil {
		t.Fatal(err)
	}
	w.sim = tribesim.New(opts)
	t.Cleanup(w.sim.Close)
	trSrv := httptest.NewServer(w.sim)
	t.Cleanup(trSrv.Close)
	env, err := w.sim.CreateEnvironment(tribesim.EnvironmentSpec{ID: "acme", Generate: &tribesim.GenerateSpec{Organizations: 3, Products: 4, Invoices: 12, Seed: 5}})
	if err != nil {
		t.Fatal(err)
	}
	call, _ := tenantclients.New(w.m.Client, tenantclients.Options{EBoekhoudenRate: 1000, TribeRate: 1000})
	ebCall, trCall := call.Callers()
	if w.eb, err = tenantclients.NewEBoekhouden(ebCall, "acme", ebSrv.URL, adm.AccessToken); err != nil {
		t.Fatal(err)
	}
	if w.tr, err = tenantclients.NewTribe(trCall, "acme", trSrv.URL, trSrv.URL, env.ClientID, env.ClientSecret); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{}
	ledgers, _ := eboekhouden.Collect(w.eb.Ledgers(ctx))
	for _, l := range ledgers {
		if l.Category == eboekhouden.CategoryDebtors && links[tenantsettings.DebtorLedger] == "" {
			links[tenantsettings.DebtorLedger] = strconv.FormatInt(l.ID, 10)
		}
	}
	var revenue string
	for _, l := range ledgers {
		if l.Category == eboekhouden.CategoryPL {
			revenue = strconv.FormatInt(l.ID, 10)
			break
		}
	}
	templates, _ := eboekhouden.Collect(w.eb.InvoiceTemplates(ctx))
	links[tenantsettings.InvoiceTemplate] = strconv.FormatInt(templates[0].ID, 10)
	groups, err := w.tr.VatGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		for _, c := range eboekhouden.VATCodes() {
			if c.Kind == eboekhouden.VATSale && g.Percentage.Valid && c.Rate.Equal(g.Percentage.Decimal) {
				links[tenantsettings.VATCodePrefix+g.ID] = string(c.Code)
			}
		}
		links[tenantsettings.RevenueLedgerPrefix+g.ID] = revenue
	}
	_, err = w.m.Client.CreateTenant(ctx, &mappingv1.CreateTenantRequest{Tenant: &mappingv1.Tenant{Id: "acme",
		State: mappingv1.TenantState_TENANT_STATE_ACTIVE, Settings: &mappingv1.TenantSettings{Links: links}}})
	if err != nil {
		t.Fatal(err)
	}
	w.p = &pusher{mapping: w.m.Client, pub: bus.NewPublisher(w.js), holder: "test", log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		connect: func(context.Context, *mappingv1.Tenant) (*eboekhouden.Client, *tribe.Client, error) {
			return w.eb, w.tr, nil
		}}
	return w
}

func (w *world) tenant() *mappingv1.Tenant {
	res, err := w.m.Client.GetTenant(ctx, &mappingv1.GetTenantRequest{TenantId: "acme"})
	if err != nil {
		w.t.Fatal(err)
	}
	return res.GetTenant()
}

func (w *world) push(id string) error {
	return w.p.push(ctx, w.tenant(), &eventsv1.TribeChange{TenantId: "acme", Entity: bus.EntityInvoice, EntityId: id})
}

func (w *world) invoice(phase string) tribe.Invoice {
	w.t.Helper()
	list, err := tribe.Collect(w.tr.Invoices(ctx, tribe.InvoiceQuery().Filter(tribe.Eq("Phase/Code", phase))))
	if err != nil || len(list) == 0 {
		w.t.Fatalf("no %s invoice: %v", phase, err)
	}
	return list[0]
}

// linkDebtor puts the invoice's customer in e-Boekhouden, as the relation flow would.
func (w *world) linkDebtor(inv tribe.Invoice) int64 {
	w.t.Helper()
	org := inv.Relationship.Organization
	created, err := w.eb.CreateRelation(ctx, eboekhouden.Relation{Type: eboekhouden.RelationBusiness, Name: org.Name, Code: "D" + org.ID[:8]})
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.m.Client.CreateLink(ctx, &mappingv1.CreateLinkRequest{TenantId: "acme", Kind: "organization", TribeId: org.ID, EboekhoudenId: strconv.FormatInt(created.ID, 10)}); err != nil {
		w.t.Fatal(err)
	}
	return created.ID
}

func (w *world) booked(number string) []eboekhouden.InvoiceListItem {
	list, err := eboekhouden.Collect(w.eb.Invoices(ctx, eboekhouden.Eq("invoiceNumber", number)))
	if err != nil {
		w.t.Fatal(err)
	}
	return list
}

func TestSentInvoiceIsBookedOnceAsAnOpenItem(t *testing.T) {
	w := newWorld(t)
	inv := w.invoice("Sent")
	if inv.Relationship == nil || inv.Relationship.Organization == nil {
		t.Fatalf("generated invoice without an organisation customer: %+v", inv.Relationship)
	}

	// The debtor is not in e-Boekhouden yet: the relation flow is asked, the invoice waits.
	err := w.push(inv.ID)
	if err == nil || bus.IsPermanent(err) {
		t.Fatalf("push before the debtor is synced: %v", err)
	}
	s, _ := w.js.Stream(ctx, bus.StreamTribeEvents)
	if info, _ := s.Info(ctx); info.State.Msgs != 1 {
		t.Fatalf("relation events published: %d, want 1", info.State.Msgs)
	}

	relID := w.linkDebtor(inv)
	if err := w.push(inv.ID); err != nil {
		t.Fatal(err)
	}
	booked := w.booked(inv.Number)
	if len(booked) != 1 || booked[0].RelationID != relID {
		t.Fatalf("booked %+v", booked)
	}
	detail, err := w.eb.GetInvoice(ctx, booked[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(detail.Items) != len(inv.ProductLines) || detail.TermOfPayment <= 0 {
		t.Fatalf("booked invoice: %d items for %d lines, term %d", len(detail.Items), len(inv.ProductLines), detail.TermOfPayment)
	}
	open, err := eboekhouden.Collect(w.eb.Outstanding(ctx, eboekhouden.Debtors, eboekhouden.Eq("invoiceNumber", inv.Number)))
	if err != nil || len(open) != 1 || !open[0].OutstandingAmount.Equal(detail.TotalAmount) {
		t.Fatalf("open item %+v, %v", open, err)
	}
	issues, _ := w.m.Client.ListIssues(ctx, &mappingv1.ListIssuesRequest{TenantId: "acme"})
	for _, i := range issues.GetIssues() {
		if i.GetCode() == "totals_differ" {
			t.Fatalf("totals differ: %s", i.GetMessage())
		}
	}

	// Redelivered, and after a crash between create and link: still one invoice.
	if err := w.push(inv.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := w.m.Client.DeleteLink(ctx, &mappingv1.DeleteLinkRequest{TenantId: "acme", Kind: "invoice", TribeId: inv.ID}); err != nil {
		t.Fatal(err)
	}
	if err := w.push(inv.ID); err != nil {
		t.Fatal(err)
	}
	if n := len(w.booked(inv.Number)); n != 1 {
		t.Fatalf("%d e-Boekhouden invoices for one Tribe invoice", n)
	}
}

func TestDraftInvoiceIsNotBooked(t *testing.T) {
	w := newWorld(t)
	inv := w.invoice("Draft")
	if err := w.push(inv.ID); err != nil {
		t.Fatal(err)
	}
	all, _ := eboekhouden.Collect(w.eb.Invoices(ctx))
	if len(all) != 0 {
		t.Fatalf("a draft was booked: %+v", all)
	}
}

func TestUnmappedVATGroupIsAnIssue(t *testing.T) {
	w := newWorld(t)
	inv := w.invoice("Sent")
	w.linkDebtor(inv)
	settings := w.tenant().GetSettings()
	for k := range settings.Links {
		if len(k) > len(tenantsettings.VATCodePrefix) && k[:len(tenantsettings.VATCodePrefix)] == tenantsettings.VATCodePrefix {
			delete(settings.Links, k)
		}
	}
	if _, err := w.m.Client.UpdateTenantSettings(ctx, &mappingv1.UpdateTenantSettingsRequest{TenantId: "acme", Settings: settings}); err != nil {
		t.Fatal(err)
	}
	err := w.push(inv.ID)
	issue, ok := bus.IssueOf(err)
	if !ok || issue.GetCode() != "unmapped_vat_group" {
		t.Fatalf("push: %v", err)
	}
	if n := len(w.booked(inv.Number)); n != 0 {
		t.Fatalf("booked with an unmapped VAT group")
	}
}
