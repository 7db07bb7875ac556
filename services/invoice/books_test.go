package main

import (
	"testing"
	"time"

	"github.com/koppel/koppel/pkg/eboekhouden"
	"github.com/koppel/koppel/pkg/tribe"
	"github.com/shopspring/decimal"
)

// draftLine is one line of an invoice a Tribe user makes.
type draftLine struct {
	desc            string
	qty, price      string
	discount        string // the line's own discount percentage
	vatPct          string // the line's VAT percentage; default the group's or the product's
	vatGroup        string // a VAT group code, set on the line itself
	product         string // a product ID
	productVATGroup string // ... whose VAT group the line takes (set on the product, not the line)
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
