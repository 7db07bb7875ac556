package tribesim

import (
	"encoding/json"

	"github.com/shopspring/decimal"
)

// InvoiceAmount says what Activity_Invoice.Amount holds; the reference names the field (a Double)
// but not whether VAT is in it.
type InvoiceAmount string

// Meanings of Amount.
const (
	// AmountExclVAT: the invoice total excluding VAT, after the invoice discount. Default.
	AmountExclVAT InvoiceAmount = "excl"
	// AmountInclVAT: the invoice total including VAT, after the invoice discount.
	AmountInclVAT InvoiceAmount = "incl"
)

// SetNote is the set of notes; every entity has a Notes navigation (S17, S19), a note's fields
// and set name are UNCONFIRMED: here Subject and Content, linked to its record through Entity.
const SetNote = "Note"

var hundred = decimal.NewFromInt(100)

// computeLineLocked sets a product line's totals from its quantity, price, own discount and VAT
// percentage. The price is incl. VAT when the line's invoice says IsVatIncluded (as a product kept
// incl. VAT is put on an invoice): then the total incl. VAT is what the price says, and the VAT is
// taken out of it, to the cent.
func (s *Simulator) computeLineLocked(e *env, r *record) {
	qty, price, rate := dec(r.f["Quantity"]), dec(r.f["Price"]), dec(r.f["VatPercentage"])
	gross := qty.Mul(price).Mul(hundred.Sub(dec(r.f["DiscountPercentage"]))).Div(hundred).Round(2)
	var excl, vat decimal.Decimal
	if inv := e.recs[r.refs["Activity"]]; inv != nil && inv.set == SetInvoice && inv.f["IsVatIncluded"] == true {
		vat = gross.Mul(rate).Div(hundred.Add(rate)).Round(2)
		excl = gross.Sub(vat)
	} else {
		excl = gross
		vat = excl.Mul(rate).Div(hundred).Round(2)
	}
	r.f["Total"], r.f["TotalExcludingVat"], r.f["VatAmount"], r.f["TotalIncludingVat"] = num(excl), num(excl), num(vat), num(excl.Add(vat))
}

// computeInvoiceLocked recomputes an invoice's lines (their totals depend on its IsVatIncluded)
// and its Amount: per line, the invoice discount applied to the line's total (Tribe keeps the
// VAT "including discount" per line, VatAmountIncludingDiscount), excl. or incl. VAT as
// Options.InvoiceAmount says.
func (s *Simulator) computeInvoiceLocked(e *env, r *record) {
	disc := dec(r.f["DiscountPercentage"])
	sum := decimal.Zero
	for _, l := range e.children(r.id, collDef{SetProductLine, []string{"Activity"}}) {
		s.computeLineLocked(e, l)
		rate := dec(l.f["VatPercentage"])
		var excl, vat decimal.Decimal
		if r.f["IsVatIncluded"] == true {
			incl := dec(l.f["TotalIncludingVat"]).Mul(hundred.Sub(disc)).Div(hundred).Round(2)
			vat = incl.Mul(rate).Div(hundred.Add(rate)).Round(2)
			excl = incl.Sub(vat)
		} else {
			excl = dec(l.f["TotalExcludingVat"]).Mul(hundred.Sub(disc)).Div(hundred).Round(2)
			vat = excl.Mul(rate).Div(hundred).Round(2)
		}
		if s.opts.InvoiceAmount == AmountInclVAT {
			sum = sum.Add(excl).Add(vat)
		} else {
			sum = sum.Add(excl)
		}
	}
	r.f["Amount"] = json.Number(sum.String())
}
