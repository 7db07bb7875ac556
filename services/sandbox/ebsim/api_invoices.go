package ebsim

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

var invListParams = map[string]paramKind{"invoiceNumber": pString, "relationId": pInt, "date": pDate}

type invoiceListItem struct {
	ID            int64  `json:"id"`
	InvoiceNumber string `json:"invoiceNumber"`
	RelationID    int64  `json:"relationId"`
	Date          string `json:"date"`
	Reference     string `json:"reference"`
	Text          string `json:"text"`
	URLPDFFile    string `json:"urlPdfFile"`
	TotalExcl     money  `json:"totalExcl"`
	TotalAmount   money  `json:"totalAmount"`
	VATAmount     money  `json:"vatAmount"`
	TermOfPayment int64  `json:"termOfPayment"`
	TemplateID    int64  `json:"templateId"`
	Print         bool   `json:"print"`
}

type invoiceOut struct {
	ID              int64         `json:"id"`
	InvoiceNumber   string        `json:"invoiceNumber"`
	RelationID      int64         `json:"relationId"`
	Date            string        `json:"date"`
	Reference       string        `json:"reference"`
	Text            string        `json:"text"`
	TermOfPayment   int64         `json:"termOfPayment"`
	InExVat         string        `json:"inExVat"`
	TemplateID      int64         `json:"templateId"`
	EmailTemplateID int64         `json:"emailTemplateId,omitempty"`
	TotalExcl       money         `json:"totalExcl"`
	TotalAmount     money         `json:"totalAmount"`
	VATAmount       money         `json:"vatAmount"`
	URLPDFFile      string        `json:"urlPdfFile"`
	Items           []invoiceItem `json:"items"`
}

func (s *Simulator) pdfURL(a *admin, inv *invoice) string {
	return fmt.Sprintf("%s/pdf/%s/%d.pdf", strings.TrimRight(s.opt.PublicURL, "/"), a.guid, inv.ID)
}

func (s *Simulator) listInvoices(w http.ResponseWriter, r *http.Request, a *admin) {
	q, e := s.parseList(r, invListParams)
	if e != nil {
		writeErr(w, e)
		return
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	env := pageOf(s, q, a.invoices, func(inv *invoice) bool {
		return q.matchAll(func(string) string { return inv.InvoiceNumber }, func(f string) int64 {
			if f == "relationId" {
				return inv.RelationID
			}
			return dateKey(inv.Date)
		})
	}, func(inv *invoice) invoiceListItem {
		return invoiceListItem{inv.ID, inv.InvoiceNumber, inv.RelationID, inv.Date.Format(time.DateOnly), inv.Reference,
			inv.Text, s.pdfURL(a, inv), money{inv.TotalExcl}, money{inv.TotalExcl.Add(inv.VATAmount)},
			money{inv.VATAmount}, inv.TermOfPayment, inv.TemplateID, inv.Print}
	})
	writeJSON(w, http.StatusOK, env)
}

func (s *Simulator) getInvoice(w http.ResponseWriter, r *http.Request, a *admin) {
	id, e := pathID(r)
	if e != nil {
		writeErr(w, e)
		return
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	inv := a.invByID[id]
	if inv == nil {
		writeErr(w, notFound("FACT_021", "Invoice not found."))
		return
	}
	writeJSON(w, http.StatusOK, invoiceOut{inv.ID, inv.InvoiceNumber, inv.RelationID, inv.Date.Format(time.DateOnly),
		inv.Reference, inv.Text, inv.TermOfPayment, inv.InExVat, inv.TemplateID, inv.EmailTemplateID,
		money{inv.TotalExcl}, money{inv.TotalExcl.Add(inv.VATAmount)}, money{inv.VATAmount}, s.pdfURL(a, inv), inv.Items})
}

// parseInvoiceItem reads and checks one line against the administration.
func parseInvoiceItem(a *admin, f fields) (invoiceItem, *apiError) {
	var it invoiceItem
	var e *apiError
	q, ok, e := f.dec("quantity")
	if e != nil {
		return it, e
	}
	if !ok {
		// "amount" is the deprecated name of quantity.
		if q, ok, e = f.dec("amount"); e != nil {
			return it, e
		}
	}
	if !ok {
		q = decimal.NewFromInt(1)
	}
	it.Quantity = qty{q}
	if it.Description, _, e = f.str("description"); e != nil {
		return it, e
	}
	if strings.TrimSpace(it.Description) == "" {
		return it, verr("FACT_ITEM_001", "items.description", "Item description is missing.")
	}
	if runeLen(it.Description) > 1000 {
		return it, verr("FACT_ITEM_002", "items.description", "Item description is too long.")
	}
	if it.Code, _, e = f.str("code"); e != nil {
		return it, e
	}
	if runeLen(it.Code) > 50 {
		return it, verr("FACT_ITEM_003", "items.code", "Item code is too long.")
	}
	price, ok, e := f.dec("pricePerUnit")
	if e != nil {
		return it, e
	}
	if !ok {
		return it, verr("FACT_ITEM_004", "items.pricePerUnit", "Price per unit is missing.")
	}
	it.PricePerUnit = money{price}
	if it.VATCode, _, e = f.str("vatCode"); e != nil {
		return it, e
	}
	if it.VATCode == "" {
		return it, verr("FACT_ITEM_006", "items.vatCode", "VAT code is missing.")
	}
	if info, ok := vatTable[it.VATCode]; !ok || info.kind == vatPurchase {
		return it, verr("FACT_ITEM_014", "items.vatCode", "Invalid VAT code.")
	}
	if v, ok, e := f.dec("vatAmount"); e != nil {
		return it, e
	} else if ok {
		if it.VATCode != "AFW_VERK" {
			return it, verr("FACT_ITEM_015", "items.vatAmount", "VAT amount only with 'AFW_VERK'.")
		}
		it.VATAmount = &money{v}
	}
	l, ok, e := f.int("ledgerId")
	if e != nil {
		return it, e
	}
	if !ok || l == 0 {
		return it, verr("FACT_ITEM_007", "items.ledgerId", "Ledger ID is missing.")
	}
	if a.ledgerByID[l] == nil {
		return it, verr("FACT_ITEM_012", "items.ledgerId", "Ledger account not found.")
	}
	it.LedgerID = l
	if it.UnitID, _, e = f.int("unitId"); e != nil {
		return it, e
	}
	if it.UnitID != 0 && !slices.ContainsFunc(a.units, func(u unit) bool { return u.ID == it.UnitID }) {
		return it, verr("FACT_ITEM_010", "items.unitId", "Unit not found.")
	}
	if it.ProductID, _, e = f.int("productId"); e != nil {
		return it, e
	}
	if it.ProductID != 0 {
		p := a.prodByID[it.ProductID]
		if p == nil {
			return it, verr("FACT_ITEM_011", "items.productId", "Product not found.")
		}
		it.Code = p.Code // "If given, Code is ignored."
	}
	if it.CostCenterID, _, e = f.int("costCenterId"); e != nil {
		return it, e
	}
	da, daOK, e := f.dec("discountAmount")
	if e != nil {
		return it, e
	}
	dp, dpOK, e := f.dec("discountPercentage")
	if e != nil {
		return it, e
	}
	if daOK && dpOK {
		return it, verr("FACT_ITEM_013", "items.discountAmount", "Discount amount and percentage cannot both be passed.")
	}
	if daOK {
		it.DiscountAmount = &money{da}
	}
	if dpOK {
		it.DiscountPercentage = &money{dp}
	}
	return it, nil
}

var maxInvoiceTotal = decimal.RequireFromString("999999999999.99")

func (s *Simulator) createInvoice(w http.ResponseWriter, r *http.Request, a *admin) {
	inv := s.storeInvoice(w, r, a)
	if inv == nil {
		return
	}
	// Stored: a held answer (Faults.HoldAfterCreate) leaves the client unsure whether it was.
	s.holdAnswer(r, HeldAnswer{AdminID: a.id, Route: "POST /v1/invoice", ID: inv.ID, InvoiceNumber: inv.InvoiceNumber})
	s.created(w, map[string]any{"id": inv.ID, "invoiceNumber": inv.InvoiceNumber, "inExVat": inv.InExVat})
}

// storeInvoice validates and stores a new invoice with its booking; on a refusal it answers the
// error itself and returns nil.
func (s *Simulator) storeInvoice(w http.ResponseWriter, r *http.Request, a *admin) *invoice {
	f, e := decodeBody(r)
	if e != nil {
		writeErr(w, e)
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	inv, mut, e := s.parseInvoice(a, f)
	if e != nil {
		writeErr(w, e)
		return nil
	}
	if inv.InvoiceNumber == "" {
		inv.InvoiceNumber = a.newInvoiceNumber(inv.Date)
	}
	if mut != nil {
		in := &mutIn{Type: 2, Date: inv.Date, LedgerID: mut.ledgerID, InvoiceNumber: inv.InvoiceNumber,
			Description: mut.description, InExVat: "EX", PaymentReference: mut.paymentRef,
			CheckPaymentReference: mut.checkRef, TermOfPayment: inv.TermOfPayment, RelationID: inv.RelationID}
		for _, it := range inv.Items {
			in.Rows = append(in.Rows, mutationRow{LedgerID: it.LedgerID, VATCode: it.VATCode, Amount: money{it.excl},
				VATAmount: vatOverride(it), CostCenterID: it.CostCenterID, Description: it.Description})
		}
		m, e := s.book(a, in)
		if e != nil {
			writeErr(w, e)
			return nil
		}
		// Use the invoice's own VAT (its rounding mode) on the booking, so the open item equals it.
		m.Total = inv.TotalExcl.Add(inv.VATAmount)
		if item := a.openByKey[openKey("D", inv.InvoiceNumber, inv.RelationID)]; item != nil {
			item.Total = m.Total
		}
		inv.MutationID = m.ID
	}
	inv.ID = s.nextID()
	inv.StoredAt = time.Now()
	a.invoices = insertSorted(a.invoices, inv, func(i *invoice) int64 { return i.ID })
	a.invByID[inv.ID] = inv
	a.invByNumber[strings.ToUpper(inv.InvoiceNumber)] = inv
	return inv
}

// vatOverride passes a line's VAT to its booking row, so the row needs no recomputation.
func vatOverride(it invoiceItem) *money {
	if it.VATCode == "AFW_VERK" || it.VATCode == "AFW" {
		return &money{it.vat}
	}
	return nil
}

type invoiceMutation struct {
	ledgerID    int64
	description string
	paymentRef  string
	checkRef    bool
}

func (s *Simulator) parseInvoice(a *admin, f fields) (*invoice, *invoiceMutation, *apiError) {
	inv := &invoice{InExVat: "EX"}
	rid, ok, e := f.int("relationId")
	if e != nil {
		return nil, nil, e
	}
	if !ok || rid == 0 {
		return nil, nil, verr("FACT_001", "relationId", "Relation ID is missing.")
	}
	rel := a.relByID[rid]
	if rel == nil {
		return nil, nil, verr("FACT_002", "relationId", "Relation not found.")
	}
	if rel.Inactive {
		return nil, nil, verr("FACT_003", "relationId", "Relation is inactive.")
	}
	inv.RelationID = rid
	top, ok, e := f.int("termOfPayment")
	if e != nil {
		return nil, nil, e
	}
	if !ok {
		return nil, nil, verr("FACT_015", "termOfPayment", "Term of payment is missing.")
	}
	if top < 0 || top > 999 {
		return nil, nil, verr("FACT_016", "termOfPayment", "Term of payment is out of range.")
	}
	inv.TermOfPayment = top
	tid, ok, e := f.int("templateId")
	if e != nil {
		return nil, nil, e
	}
	if !ok || !slices.ContainsFunc(a.invTemplates, func(t invoiceTemplate) bool { return t.ID == tid }) {
		return nil, nil, verr("FACT_018", "templateId", "Invoice template not found.")
	}
	inv.TemplateID = tid
	if eid, ok, e := f.int("emailTemplateId"); e != nil {
		return nil, nil, e
	} else if ok && eid != 0 {
		if !slices.ContainsFunc(a.emailTemplates, func(t emailTemplate) bool { return t.ID == eid }) {
			return nil, nil, verr("FACT_020", "emailTemplateId", "Email template not found.")
		}
		inv.EmailTemplateID = eid
	}
	if v, ok, e := f.str("inExVat"); e != nil {
		return nil, nil, e
	} else if ok && v != "" {
		if v != "IN" && v != "EX" {
			return nil, nil, verr("FACT_010", "inExVat", "VAT must be IN or EX.")
		}
		inv.InExVat = v
	}
	inv.Date = dateOnly(s.Now())
	if d, ok, bad := f.date("date"); bad {
		return nil, nil, verr("FACT_012", "date", "Date is invalid.")
	} else if ok {
		if d.Year() < 1900 || d.Year() > 2100 {
			return nil, nil, verr("FACT_013", "date", "Date is out of range.")
		}
		inv.Date = d
	}
	if num, ok, e := f.str("invoiceNumber"); e != nil {
		return nil, nil, e
	} else if ok && num != "" {
		if runeLen(num) > 50 {
			return nil, nil, verr("FACT_007", "invoiceNumber", "Invoice number is too long.")
		}
		if c := num[len(num)-1]; c < '0' || c > '9' {
			return nil, nil, verr("FACT_009", "invoiceNumber", "Invoice number does not end with a digit.")
		}
		if a.invByNumber[strings.ToUpper(num)] != nil || a.mutInvoices[strings.ToUpper(num)] {
			return nil, nil, verr("FACT_101", "invoiceNumber", "Invoice number is in use.")
		}
		inv.InvoiceNumber = num
	}
	var e2 *apiError
	if inv.Reference, _, e2 = f.str("reference"); e2 != nil {
		return nil, nil, e2
	}
	if inv.Text, _, e2 = f.str("text"); e2 != nil {
		return nil, nil, e2
	}
	if runeLen(inv.Text) > 35000 {
		return nil, nil, verr("FACT_017", "text", "Text is too long.")
	}
	if inv.Print, _, e2 = f.bool("print"); e2 != nil {
		return nil, nil, e2
	}
	items, _, e := f.items("items")
	if e != nil {
		return nil, nil, e
	}
	if len(items) == 0 {
		return nil, nil, verr("FACT_019", "items", "Items are missing.")
	}
	for _, itf := range items {
		it, e := parseInvoiceItem(a, itf)
		if e != nil {
			return nil, nil, e
		}
		inv.Items = append(inv.Items, it)
	}
	s.computeTotals(inv)
	if inv.TotalExcl.Add(inv.VATAmount).Abs().GreaterThan(maxInvoiceTotal) {
		return nil, nil, verr("FACT_004", "items", "Total is too high.")
	}
	mf, ok, e := f.object("mutation")
	if e != nil || !ok {
		return inv, nil, e
	}
	mut := &invoiceMutation{}
	if mut.ledgerID, _, e = mf.int("ledgerId"); e != nil {
		return nil, nil, e
	}
	if mut.description, _, e = mf.str("description"); e != nil {
		return nil, nil, e
	}
	if runeLen(mut.description) > 200 {
		return nil, nil, verr("FACT_VERWERK_002", "mutation.description", "Description is too long.")
	}
	if mut.paymentRef, _, e = mf.str("paymentReference"); e != nil {
		return nil, nil, e
	}
	if runeLen(mut.paymentRef) > 50 {
		return nil, nil, verr("FACT_VERWERK_003", "mutation.paymentReference", "Payment reference is too long.")
	}
	if mut.checkRef, _, e = mf.bool("checkPaymentReference"); e != nil {
		return nil, nil, e
	}
	if mut.checkRef && mut.paymentRef != "" && a.payRefs[mut.paymentRef] {
		return nil, nil, verr("FACT_VERWERK_004", "mutation.paymentReference", "Payment reference already exists.")
	}
	l := a.ledgerByID[mut.ledgerID]
	if l == nil {
		return nil, nil, verr("MUT_007", "mutation.ledgerId", "Unknown ledger.")
	}
	if l.Category != "DEB" {
		return nil, nil, verr("MUT_011", "mutation.ledgerId", "Ledger must be of category debtor.")
	}
	return inv, mut, nil
}

// computeTotals fills each line's excl. amount and VAT and the invoice totals, rounding per line
// or per invoice (Options.Rounding).
func (s *Simulator) computeTotals(inv *invoice) {
	inv.TotalExcl, inv.VATAmount = decimal.Zero, decimal.Zero
	unrounded := map[string]decimal.Decimal{}
	for i := range inv.Items {
		it := &inv.Items[i]
		line := it.Quantity.Mul(it.PricePerUnit.Decimal)
		if it.DiscountAmount != nil {
			line = line.Sub(it.DiscountAmount.Decimal)
		}
		if it.DiscountPercentage != nil {
			line = line.Mul(hundred.Sub(it.DiscountPercentage.Decimal)).Div(hundred)
		}
		line = round2(line)
		rate := vatRate(it.VATCode, inv.Date)
		var vat decimal.Decimal
		if inv.InExVat == "IN" {
			vat = line.Mul(rate).Div(hundred.Add(rate))
		} else {
			vat = line.Mul(rate).Div(hundred)
		}
		if it.VATAmount != nil {
			vat = it.VATAmount.Decimal
		}
		unrounded[it.VATCode] = unrounded[it.VATCode].Add(vat)
		it.vat = round2(vat)
		it.excl = line
		if inv.InExVat == "IN" {
			it.excl = line.Sub(it.vat)
		}
		inv.TotalExcl = inv.TotalExcl.Add(it.excl)
		inv.VATAmount = inv.VATAmount.Add(it.vat)
	}
	if s.opt.Rounding == RoundPerInvoice && inv.InExVat == "EX" {
		inv.VATAmount = decimal.Zero
		for _, v := range unrounded {
			inv.VATAmount = inv.VATAmount.Add(round2(v))
		}
	}
}

// newInvoiceNumber generates the next free number "F<year><seq:04>" (the real format is
// undocumented; it ends with a digit as FACT_009 demands).
func (a *admin) newInvoiceNumber(d time.Time) string {
	for {
		a.nextInvNo++
		n := fmt.Sprintf("F%d%04d", d.Year(), a.nextInvNo)
		if a.invByNumber[n] == nil && !a.mutInvoices[n] {
			return n
		}
	}
}
