package main

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
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

// books is one tenant's two systems and the payment flow, with sent Tribe invoices and an
// e-Boekhouden administration in which the test books them, as the invoice flow would.
type books struct {
	t                 *testing.T
	m                 *mappingtest.Service
	ebs               *ebsim.Simulator
	adm               ebsim.AdminInfo
	eb                *eboekhouden.Client
	tr                *tribe.Client
	sent              []tribe.Invoice
	rel, deb, revenue int64
	template          int64
	p                 *puller
	runs              int
}

func newBooks(t *testing.T, opts ebsim.Options) *books {
	b := &books{t: t, m: mappingtest.Start(t), ebs: ebsim.New(opts)}
	ebSrv := httptest.NewServer(b.ebs)
	t.Cleanup(ebSrv.Close)
	var err error
	if b.adm, err = b.ebs.CreateAdministration(ebsim.AdminSpec{Company: "Jansen BV"}); err != nil {
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
	cache, _ := tenantclients.New(b.m.Client, tenantclients.Options{EBoekhoudenRate: 1000, TribeRate: 1000})
	ebCall, trCall := cache.Callers()
	b.eb, _ = tenantclients.NewEBoekhouden(ebCall, "acme", ebSrv.URL, b.adm.AccessToken)
	b.tr, _ = tenantclients.NewTribe(trCall, "acme", trSrv.URL, trSrv.URL, env.ClientID, env.ClientSecret)
	if _, err := b.m.Client.CreateTenant(ctx, &mappingv1.CreateTenantRequest{Tenant: &mappingv1.Tenant{Id: "acme", State: mappingv1.TenantState_TENANT_STATE_ACTIVE}}); err != nil {
		t.Fatal(err)
	}
	if b.sent, err = tribe.Collect(b.tr.Invoices(ctx, tribe.Q().Filter(tribe.Eq("Phase/Code", "Sent")).OrderBy("Number"))); err != nil || len(b.sent) < 3 {
		t.Fatalf("sent invoices: %d, %v", len(b.sent), err)
	}
	ledgers, _ := eboekhouden.Collect(b.eb.Ledgers(ctx))
	for _, l := range ledgers {
		switch {
		case l.Category == eboekhouden.CategoryDebtors && b.deb == 0:
			b.deb = l.ID
		case l.Category == eboekhouden.CategoryPL && b.revenue == 0:
			b.revenue = l.ID
		}
	}
	templates, _ := eboekhouden.Collect(b.eb.InvoiceTemplates(ctx))
	b.template = templates[0].ID
	rel, err := b.eb.CreateRelation(ctx, eboekhouden.Relation{Type: eboekhouden.RelationBusiness, Name: "Jansen Installaties"})
	if err != nil {
		t.Fatal(err)
	}
	b.rel = rel.ID
	b.p = &puller{mapping: b.m.Client, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		connect: func(context.Context, *mappingv1.Tenant) (*eboekhouden.Client, *tribe.Client, error) {
			return b.eb, b.tr, nil
		}}
	return b
}

// book books a sent Tribe invoice as one line of qty × 100.00 + 21% VAT, linked when link is set.
func (b *books) book(inv tribe.Invoice, qty string, link bool) {
	b.t.Helper()
	q, _ := eboekhouden.NewQuantity(qty)
	price, _ := eboekhouden.NewAmount("100.00")
	created, err := b.eb.CreateInvoice(ctx, eboekhouden.NewInvoice{RelationID: b.rel, InvoiceNumber: inv.Number, TermOfPayment: 30, TemplateID: b.template,
		Items:    []eboekhouden.InvoiceItem{{Quantity: q, Description: "Werkzaamheden", PricePerUnit: price, VATCode: eboekhouden.VATHighSale21, LedgerID: b.revenue}},
		Mutation: &eboekhouden.InvoiceMutation{LedgerID: b.deb}})
	if err != nil {
		b.t.Fatal(err)
	}
	if !link {
		return
	}
	if _, err := b.m.Client.CreateLink(ctx, &mappingv1.CreateLinkRequest{TenantId: "acme", Kind: "invoice", TribeId: inv.ID,
		EboekhoudenId: strconv.FormatInt(created.ID, 10), Record: []byte(`{"number":"` + inv.Number + `"}`)}); err != nil {
		b.t.Fatal(err)
	}
}

func (b *books) pay(number, amount string) {
	b.t.Helper()
	if _, err := b.ebs.BookPayment(b.adm.ID, ebsim.Payment{InvoiceNumber: number, Amount: amount}); err != nil {
		b.t.Fatal(err)
	}
}

func (b *books) pull() *mappingv1.RunCounts {
	b.t.Helper()
	b.runs++
	id := "r" + strconv.Itoa(b.runs)
	r, err := syncrun.Start(ctx, b.m.Client, "acme", bus.KindPayment, id, "test")
	if err != nil {
		b.t.Fatal(err)
	}
	ten, _ := b.m.Client.GetTenant(ctx, &mappingv1.GetTenantRequest{TenantId: "acme"})
	if err := b.p.pull(ctx, ten.GetTenant(), &eventsv1.SyncCommand{TenantId: "acme", Kind: bus.KindPayment, RunId: id}, r); err != nil {
		b.t.Fatal(err)
	}
	if err := r.Finish(ctx, nil); err != nil {
		b.t.Fatal(err)
	}
	res, _ := b.m.Client.ListRuns(ctx, &mappingv1.ListRunsRequest{TenantId: "acme", Kind: bus.KindPayment, Limit: 1})
	return res.GetFinished()[0].GetCounts()
}

func (b *books) phase(id string) string {
	b.t.Helper()
	got, err := b.tr.Invoice(ctx, id, tribe.Q().Expand("Phase"))
	if err != nil {
		b.t.Fatal(err)
	}
	return got.Phase.Code
}

func (b *books) notes(id string) []string {
	b.t.Helper()
	list, err := tribe.Collect(tribe.List[tribe.Note](ctx, b.tr, tribe.SetNote, tribe.Q().Filter(tribe.Eq("Entity/ID", id))))
	if err != nil {
		b.t.Fatal(err)
	}
	var out []string
	for _, n := range list {
		out = append(out, n.Content)
	}
	return out
}

// A credit note of -121.00 owes the customer money: it stays Sent until the refund is booked,
// whether or not e-Boekhouden keeps settled items in its list (UNCONFIRMED).
func TestCreditNoteIsPaidOnlyWhenRefunded(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run("keep_paid="+strconv.FormatBool(keep), func(t *testing.T) {
			b := newBooks(t, ebsim.Options{KeepPaidOutstanding: keep})
			credit := b.sent[0]
			b.book(credit, "-1", true)
			if c := b.pull(); c.GetUpdated() != 0 || b.phase(credit.ID) != "Sent" {
				t.Fatalf("unrefunded credit note: %v, phase %s", c, b.phase(credit.ID))
			}
			b.pay(credit.Number, "-50.00")
			if c := b.pull(); c.GetUpdated() != 1 || b.phase(credit.ID) != "Sent" {
				t.Fatalf("partly refunded: %v, phase %s", c, b.phase(credit.ID))
			}
			b.pay(credit.Number, "")
			if c := b.pull(); c.GetUpdated() != 1 || b.phase(credit.ID) != "Paid" {
				t.Fatalf("refunded: %v, phase %s", c, b.phase(credit.ID))
			}
		})
	}
}

// A customer pays part of an invoice: Tribe shows it on the invoice (a note, since a sent
// invoice is frozen), once, however often the payment run looks.
func TestPartialPaymentIsANoteOnTheInvoice(t *testing.T) {
	b := newBooks(t, ebsim.Options{})
	inv := b.sent[0]
	b.book(inv, "1", true)
	b.pay(inv.Number, "21.00")
	b.pull()
	b.pull()
	notes := b.notes(inv.ID)
	if len(notes) != 1 || !strings.Contains(notes[0], "21.00 of 121.00 paid, 100.00 open") {
		t.Fatalf("notes on the invoice: %q", notes)
	}
	b.pay(inv.Number, "50.00")
	b.pull()
	if notes := b.notes(inv.ID); len(notes) != 2 || !strings.Contains(strings.Join(notes, "|"), "71.00 of 121.00 paid, 50.00 open") {
		t.Fatalf("notes after the second payment: %q", notes)
	}
}

// e-Boekhouden may answer the by-number question with other invoices' items (whether it applies
// the filter is UNCONFIRMED): an invoice paid in full and gone from the list must not take
// another invoice's open item for its own.
func TestByNumberLookupChecksTheNumber(t *testing.T) {
	b := newBooks(t, ebsim.Options{IgnoreOutstandingNumberFilter: true})
	inv, other := b.sent[0], b.sent[1]
	b.book(inv, "1", true)
	b.book(other, "2", false) // not koppel's: still open, partly paid
	b.pay(other.Number, "10.00")
	b.pay(inv.Number, "")
	b.pull()
	if b.phase(inv.ID) != "Paid" {
		t.Fatalf("invoice paid in full is %s", b.phase(inv.ID))
	}
	h, _ := b.m.Client.ListHistory(ctx, &mappingv1.ListHistoryRequest{TenantId: "acme"})
	for _, e := range h.GetEntries() {
		if e.GetCode() == "partial_payment" {
			t.Fatalf("another invoice's payment was recorded: %s", e.GetMessage())
		}
	}
}
