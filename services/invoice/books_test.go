package main

import (
	"strings"
	"testing"
	"time"

	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/eboekhouden"
	"github.com/koppel/koppel/pkg/invoiceretry"
	"github.com/koppel/koppel/pkg/tenantsettings"
	"github.com/koppel/koppel/pkg/tribe"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/koppel/koppel/services/sandbox/tribesim"
	"github.com/shopspring/decimal"
)

// draftLine is one line of an invoice a Tribe user makes.
type draftLine struct {
	desc       string
	qty, price string
	discount   string // the line's own discount percentage
	vatPct     string // the line's VAT percentage; default the group's or the product's
	vatGroup   string // a VAT group code, set on the line itself
	product    string // a product ID (whose VAT group the line takes when it has none)
}

// draft is an invoice a Tribe user makes and sends.
type draft struct {
	lines       []draftLine
	discount    string // invoice discount percentage
	currency    string
	vatIncluded bool
	date, due   *time.Time
}

func dec(s string) *decimal.Decimal {
	if s == "" {
		return nil
	}
	d := decimal.RequireFromString(s)
	return &d
}

// customer is the first organisation customer of the Tribe environment.
func (w *world) customer() tribe.Relationship {
	w.t.Helper()
	list, err := tribe.Collect(w.tr.Relationships(ctx, tribe.SetOrgCustomer, tribe.Q().Expand("Organization").OrderBy("ID")))
	if err != nil || len(list) == 0 {
		w.t.Fatalf("no customer: %v", err)
	}
	return list[0]
}

// vatGroup finds a Tribe VAT group by code.
func (w *world) vatGroup(code string) tribe.Lookup {
	w.t.Helper()
	groups, err := w.tr.VatGroups(ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, g := range groups {
		if g.Code == code {
			return g
		}
	}
	w.t.Fatalf("no VAT group %s", code)
	return tribe.Lookup{}
}

// send makes the invoice as a Tribe user would, sends it (Tribe numbers and dates it) and
// returns it as the invoice flow reads it.
func (w *world) send(d draft) tribe.Invoice {
	w.t.Helper()
	cust := w.customer()
	cur := d.currency
	if cur == "" {
		cur = "EUR"
	}
	in := tribe.InvoiceInput{Subject: ptr("Werkzaamheden maart"), Currency: &cur, IsVatIncluded: &d.vatIncluded,
		DiscountPercentage: dec(d.discount), Relationship: tribe.Link(cust.ID), InvoiceDate: d.date, DueDate: d.due}
	id, err := w.tr.CreateInvoice(ctx, in)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, l := range d.lines {
		desc := l.desc
		if desc == "" {
			desc = "Werkzaamheden"
		}
		li := tribe.ProductLineInput{Description: &desc, Quantity: dec(l.qty), Price: dec(l.price), DiscountPercentage: dec(l.discount),
			VatPercentage: dec(l.vatPct), Activity: tribe.Link(id)}
		if l.vatGroup != "" {
			g := w.vatGroup(l.vatGroup)
			li.VatGroup = tribe.Link(g.ID)
			if li.VatPercentage == nil {
				li.VatPercentage = &g.Percentage.Decimal
			}
		}
		if l.product != "" {
			li.Product = tribe.Link(l.product)
		}
		if _, err := w.tr.CreateProductLine(ctx, li); err != nil {
			w.t.Fatal(err)
		}
	}
	if err := w.sim.MoveInvoiceToPhase("acme", id, "Sent"); err != nil {
		w.t.Fatal(err)
	}
	inv, err := w.tr.Invoice(ctx, id, tribe.InvoiceQuery())
	if err != nil {
		w.t.Fatal(err)
	}
	return inv
}

func ptr[T any](v T) *T { return &v }

// bookedInvoice is the one e-Boekhouden invoice of a number.
func (w *world) bookedInvoice(number string) *eboekhouden.Invoice {
	w.t.Helper()
	list := w.booked(number)
	if len(list) != 1 {
		w.t.Fatalf("%d e-Boekhouden invoices numbered %s", len(list), number)
	}
	inv, err := w.eb.GetInvoice(ctx, list[0].ID)
	if err != nil {
		w.t.Fatal(err)
	}
	return inv
}

// The bookkeeper's customers pay in 30 days. An invoice sent on 20 March is due on 19 April:
// Tribe writes both dates as instants (midnight in Amsterdam, in UTC), and summer time starts in
// between. The books must show 20 March and 30 days, not 19 March and 29.
func TestPaymentTermCountsCalendarDaysAcrossTheClockChange(t *testing.T) {
	w := newWorld(t)
	ams, _ := time.LoadLocation("Europe/Amsterdam")
	date := time.Date(2026, 3, 20, 0, 0, 0, 0, ams).UTC() // 2026-03-19T23:00:00Z
	due := time.Date(2026, 4, 19, 0, 0, 0, 0, ams).UTC()  // 2026-04-18T22:00:00Z
	inv := w.send(draft{date: &date, due: &due, lines: []draftLine{{qty: "1", price: "100", vatGroup: "HIGH"}}})
	w.linkDebtor(inv)
	if err := w.push(inv.ID); err != nil {
		t.Fatal(err)
	}
	got := w.bookedInvoice(inv.Number)
	if got.Date.String() != "2026-03-20" || got.TermOfPayment != 30 {
		t.Fatalf("booked on %s with a term of %d days, want 2026-03-20 and 30", got.Date, got.TermOfPayment)
	}
	open, err := eboekhouden.Collect(w.eb.Outstanding(ctx, eboekhouden.Debtors, eboekhouden.Eq("invoiceNumber", inv.Number)))
	if err != nil || len(open) != 1 || open[0].Date.String() != "2026-03-20" {
		t.Fatalf("open item %+v, %v: want dated 2026-03-20", open, err)
	}
}

// setLinks changes some of the tenant's links (a value "" removes one), as PUT .../links would.
func (w *world) setLinks(change map[string]string) {
	w.t.Helper()
	settings := w.tenant().GetSettings()
	for k, v := range change {
		if v == "" {
			delete(settings.Links, k)
		} else {
			settings.Links[k] = v
		}
	}
	if _, err := w.m.Client.UpdateTenantSettings(ctx, &mappingv1.UpdateTenantSettingsRequest{TenantId: "acme", Settings: settings}); err != nil {
		w.t.Fatal(err)
	}
}

// issueOf is the open issue of the invoice that keeps it from being booked, or nil.
func (w *world) issueOf(id string) *mappingv1.Issue {
	w.t.Helper()
	res, err := w.m.Client.ListIssues(ctx, &mappingv1.ListIssuesRequest{TenantId: "acme"})
	if err != nil {
		w.t.Fatal(err)
	}
	for _, i := range res.GetIssues() {
		if i.GetKind() == "invoice" && i.GetEntityId() == id && i.GetCode() != "totals_differ" {
			return i
		}
	}
	return nil
}

// pushFails pushes an invoice that must not be booked, records its issue as the consume loop
// would, and returns the issue.
func (w *world) pushFails(inv tribe.Invoice) *mappingv1.Issue {
	w.t.Helper()
	err := w.push(inv.ID)
	issue, ok := bus.IssueOf(err)
	if !ok {
		w.t.Fatalf("push of %s: %v, want a permanent failure with an issue", inv.Number, err)
	}
	if _, err := w.m.Client.RecordIssue(ctx, &mappingv1.RecordIssueRequest{TenantId: "acme", Issue: issue}); err != nil {
		w.t.Fatal(err)
	}
	if n := len(w.booked(inv.Number)); n != 0 {
		w.t.Fatalf("invoice %s was booked (%s)", inv.Number, issue.GetCode())
	}
	return issue
}

// A 10% invoice discount on top of a 5% line discount: the books must show what Tribe's invoice
// total says, whether Tribe's Amount holds the total excl. or incl. VAT (UNCONFIRMED).
func TestInvoiceDiscountIsBooked(t *testing.T) {
	for _, amount := range []tribesim.InvoiceAmount{tribesim.AmountExclVAT, tribesim.AmountInclVAT} {
		t.Run(string(amount), func(t *testing.T) {
			w := newWorldWith(t, tribesim.Options{InvoiceAmount: amount})
			inv := w.send(draft{discount: "10", lines: []draftLine{
				{desc: "Advies", qty: "1", price: "100", vatGroup: "HIGH"},
				{desc: "Uren", qty: "2", price: "25", discount: "5", vatGroup: "HIGH"},
			}})
			w.linkDebtor(inv)
			if err := w.push(inv.ID); err != nil {
				t.Fatal(err)
			}
			got := w.bookedInvoice(inv.Number)
			// 100 × 0.9 = 90.00 and 50 × 0.95 × 0.9 = 42.75: 132.75 excl., 160.63 incl. VAT.
			if got.TotalExcl.StringFixed(2) != "132.75" || got.TotalAmount.StringFixed(2) != "160.63" {
				t.Fatalf("booked %s excl. / %s incl. VAT, want 132.75 / 160.63", got.TotalExcl.StringFixed(2), got.TotalAmount.StringFixed(2))
			}
			if i := w.issueOf(inv.ID); i != nil {
				t.Fatalf("issue %s: %s", i.GetCode(), i.GetMessage())
			}
			res, _ := w.m.Client.ListIssues(ctx, &mappingv1.ListIssuesRequest{TenantId: "acme"})
			for _, i := range res.GetIssues() {
				if i.GetCode() == "totals_differ" {
					t.Fatalf("totals differ from Tribe's %s: %s", inv.Amount, i.GetMessage())
				}
			}
		})
	}
}

// An invoice in dollars: e-Boekhouden books euros only. It must never be booked as if the
// amounts were euros; the tenant sees why, and how to go on.
func TestForeignCurrencyIsAnIssueNeverABooking(t *testing.T) {
	w := newWorld(t)
	inv := w.send(draft{currency: "USD", lines: []draftLine{{qty: "1", price: "100", vatGroup: "HIGH"}}})
	w.linkDebtor(inv)
	issue := w.pushFails(inv)
	if issue.GetCode() != "unsupported_currency" || issue.GetDetails()[invoiceretry.DetailRetryOn] != invoiceretry.RetryOnManual ||
		!strings.Contains(issue.GetMessage(), "USD") || !strings.Contains(issue.GetAction(), "koppelctl invoices push acme "+inv.ID) {
		t.Fatalf("issue %v", issue)
	}
}

// A VAT group linked to the divergent code AFW_VERK: koppel cannot give e-Boekhouden the VAT,
// so the booking would have none. With Tribe's total incl. VAT, the difference shows before
// anything is booked.
func TestBookingThatIsNotTribesTotalIsRefused(t *testing.T) {
	w := newWorldWith(t, tribesim.Options{InvoiceAmount: tribesim.AmountInclVAT})
	high := w.vatGroup("HIGH")
	w.setLinks(map[string]string{tenantsettings.VATCodePrefix + high.ID: "AFW_VERK"})
	inv := w.send(draft{lines: []draftLine{{qty: "1", price: "100", vatGroup: "HIGH"}}})
	w.linkDebtor(inv)
	issue := w.pushFails(inv)
	if issue.GetCode() != "totals_differ" || !strings.Contains(issue.GetMessage(), "121.00") {
		t.Fatalf("issue %v", issue)
	}
}

// The administration books exports, reverse charge and exempt sales apart, all at 0%. Tribe has
// the VAT groups ZERO (export) and EXEMPT, both 0%, linked to their own codes: every line must
// be booked with its group's code, never with the first 0% code that comes along.
func TestVATMeaningSurvivesOnInvoices(t *testing.T) {
	w := newWorld(t)
	zero, exempt, high := w.vatGroup("ZERO"), w.vatGroup("EXEMPT"), w.vatGroup("HIGH")
	w.setLinks(map[string]string{tenantsettings.VATCodePrefix + zero.ID: "BU_EU_VERK", tenantsettings.VATCodePrefix + exempt.ID: "GEEN"})
	export, err := w.tr.CreateProduct(ctx, tribe.ProductInput{Name: ptr("Machine (export)"), SalesPrice: dec("500"), VatGroup: tribe.Link(zero.ID)})
	if err != nil {
		t.Fatal(err)
	}
	inv := w.send(draft{lines: []draftLine{
		{desc: "Cursus", qty: "1", price: "200", vatGroup: "EXEMPT"},            // the line's own group
		{desc: "Machine", qty: "1", price: "500", vatPct: "0", product: export}, // its product's group
		{desc: "Advies", qty: "1", price: "100", vatGroup: "HIGH"},
	}})
	w.linkDebtor(inv)
	if err := w.push(inv.ID); err != nil {
		t.Fatal(err)
	}
	got := w.bookedInvoice(inv.Number)
	codes := map[string]eboekhouden.VATCode{}
	for _, it := range got.Items {
		codes[it.Description] = it.VATCode
	}
	if codes["Cursus"] != "GEEN" || codes["Machine"] != "BU_EU_VERK" || codes["Advies"] != "HOOG_VERK_21" {
		t.Fatalf("booked VAT codes %v", codes)
	}

	// A 0% line with neither a group nor a product: ZERO and EXEMPT would book it differently,
	// so it is an issue, not a guess; linking them alike decides it.
	guess := w.send(draft{lines: []draftLine{{desc: "Los", qty: "1", price: "50", vatPct: "0"}}})
	issue := w.pushFails(guess)
	if issue.GetCode() != "ambiguous_vat" || issue.GetDetails()[invoiceretry.DetailRetryOn] != invoiceretry.RetryOnLinks {
		t.Fatalf("issue %v", issue)
	}
	w.setLinks(map[string]string{tenantsettings.VATCodePrefix + zero.ID: "GEEN"})
	if err := w.push(guess.ID); err != nil {
		t.Fatal(err)
	}
	if c := w.bookedInvoice(guess.Number).Items[0].VATCode; c != "GEEN" {
		t.Fatalf("booked with %s", c)
	}

	// A 21% group linked to a reverse-charge code would book no VAT on a 21% line.
	w.setLinks(map[string]string{tenantsettings.VATCodePrefix + high.ID: "VERL_VERK"})
	wrong := w.send(draft{lines: []draftLine{{desc: "Advies", qty: "1", price: "100", vatGroup: "HIGH"}}})
	if issue := w.pushFails(wrong); issue.GetCode() != "vat_rate_differs" {
		t.Fatalf("issue %v", issue)
	}
}

// A product kept incl. VAT (10.00 incl. 9%) sold 7 times on an invoice kept incl. VAT: Tribe's
// line says 70.00, and so must the books (not 7 × 9.17 = 64.19 + 5.78 = 69.97).
func TestPricesInclVATBookTribesLineTotals(t *testing.T) {
	w := newWorld(t)
	low := w.vatGroup("LOW")
	cake, err := w.tr.CreateProduct(ctx, tribe.ProductInput{Name: ptr("Taart"), SalesPrice: dec("10.00"), IsVatIncluded: ptr(true), VatGroup: tribe.Link(low.ID)})
	if err != nil {
		t.Fatal(err)
	}
	inv := w.send(draft{vatIncluded: true, lines: []draftLine{{desc: "Taart", qty: "7", price: "10.00", vatGroup: "LOW", product: cake}}})
	if l := inv.ProductLines[0]; l.TotalIncludingVat.StringFixed(2) != "70.00" {
		t.Fatalf("Tribe's line total %s", l.TotalIncludingVat.StringFixed(2))
	}
	w.linkDebtor(inv)
	if err := w.push(inv.ID); err != nil {
		t.Fatal(err)
	}
	got := w.bookedInvoice(inv.Number)
	if got.TotalAmount.StringFixed(2) != inv.ProductLines[0].TotalIncludingVat.StringFixed(2) || got.VATAmount.StringFixed(2) != inv.ProductLines[0].VatAmount.StringFixed(2) {
		t.Fatalf("booked %s incl. (VAT %s); Tribe's line %s incl. (VAT %s)", got.TotalAmount.StringFixed(2), got.VATAmount.StringFixed(2),
			inv.ProductLines[0].TotalIncludingVat.StringFixed(2), inv.ProductLines[0].VatAmount.StringFixed(2))
	}
}

// A credit note (negative lines) is booked as a credit: a negative open item.
func TestCreditNoteIsBookedAsACredit(t *testing.T) {
	w := newWorld(t)
	inv := w.send(draft{lines: []draftLine{{desc: "Creditering", qty: "-1", price: "100", vatGroup: "HIGH"}}})
	w.linkDebtor(inv)
	if err := w.push(inv.ID); err != nil {
		t.Fatal(err)
	}
	got := w.bookedInvoice(inv.Number)
	open, err := eboekhouden.Collect(w.eb.Outstanding(ctx, eboekhouden.Debtors, eboekhouden.Eq("invoiceNumber", inv.Number)))
	if err != nil || got.TotalAmount.StringFixed(2) != "-121.00" || len(open) != 1 || open[0].OutstandingAmount.StringFixed(2) != "-121.00" {
		t.Fatalf("booked %s, open items %+v (%v)", got.TotalAmount.StringFixed(2), open, err)
	}
}
