package ebsim

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// mutIn is a validated-for-shape mutation request, from POST /v1/mutation, a booked invoice or
// the admin API's payment.
type mutIn struct {
	Type                  int
	Date                  time.Time
	LedgerID              int64
	InvoiceNumber         string
	EntryNumber           string
	Description           string
	InExVat               string
	PaymentReference      string
	CheckPaymentReference bool
	TermOfPayment         int64
	RelationID            int64
	Rows                  []mutationRow
}

// parseMutation reads the body of POST /v1/mutation.
func parseMutation(f fields) (*mutIn, *apiError) {
	in := &mutIn{InExVat: "EX"}
	t, ok, e := f.int("type")
	if e != nil {
		return nil, verr("MUTA_009", "type", "Type is unknown.")
	}
	if !ok {
		return nil, verr("MUTA_002", "type", "Type is missing.")
	}
	if t < 1 || t > 7 {
		return nil, verr("MUT_001", "type", "Type is invalid.")
	}
	in.Type = int(t)
	d, ok, bad := f.date("date")
	if bad {
		return nil, verr("MUT_004", "date", "Date is invalid.")
	}
	if !ok {
		return nil, verr("MUT_003", "date", "Date is missing.")
	}
	in.Date = d
	l, ok, e := f.int("ledgerId")
	if e != nil {
		return nil, e
	}
	if !ok || l == 0 {
		return nil, verr("MUTA_001", "ledgerId", "Ledger ID is missing.")
	}
	in.LedgerID = l
	var strs = []struct {
		k string
		p *string
	}{{"invoiceNumber", &in.InvoiceNumber}, {"entryNumber", &in.EntryNumber}, {"description", &in.Description},
		{"paymentReference", &in.PaymentReference}}
	for _, s := range strs {
		v, _, e := f.str(s.k)
		if e != nil {
			return nil, e
		}
		*s.p = v
	}
	if v, ok, e := f.str("inExVat"); e != nil {
		return nil, e
	} else if ok && v != "" {
		if v != "IN" && v != "EX" {
			return nil, verr("MUT_017", "inExVat", "In/Ex VAT must be 'IN' or 'EX'.")
		}
		in.InExVat = v
	}
	if v, _, e := f.bool("checkPaymentReference"); e != nil {
		return nil, e
	} else {
		in.CheckPaymentReference = v
	}
	if v, _, e := f.int("termOfPayment"); e != nil {
		return nil, e
	} else {
		in.TermOfPayment = v
	}
	if v, _, e := f.int("relationId"); e != nil {
		return nil, e
	} else {
		in.RelationID = v
	}
	rows, _, e := f.items("rows")
	if e != nil {
		return nil, e
	}
	for _, rf := range rows {
		var row mutationRow
		var e *apiError
		if row.LedgerID, _, e = rf.int("ledgerId"); e != nil {
			return nil, e
		}
		if row.VATCode, _, e = rf.str("vatCode"); e != nil {
			return nil, e
		}
		amt, ok, e := rf.dec("amount")
		if e != nil {
			return nil, e
		}
		if !ok {
			return nil, verr("ERR_002", "rows.amount", "Amount is missing.")
		}
		row.Amount = money{amt}
		if v, ok, e := rf.dec("vatAmount"); e != nil {
			return nil, e
		} else if ok {
			row.VATAmount = &money{v}
		}
		if row.CostCenterID, _, e = rf.int("costCenterId"); e != nil {
			return nil, e
		}
		if row.Description, _, e = rf.str("description"); e != nil {
			return nil, e
		}
		if row.InvoiceNumber, _, e = rf.str("invoiceNumber"); e != nil {
			return nil, e
		}
		if row.RelationID, _, e = rf.int("relationId"); e != nil {
			return nil, e
		}
		in.Rows = append(in.Rows, row)
	}
	return in, nil
}

// maxMutationRows is the simulator's MUT_101 limit (the real one is undocumented).
const maxMutationRows = 500

// book validates in against the administration and books it. The caller holds a.mu for writing.
func (s *Simulator) book(a *admin, in *mutIn) (*mutation, *apiError) {
	hdr := a.ledgerByID[in.LedgerID]
	if hdr == nil {
		return nil, verr("MUT_007", "ledgerId", "Unknown ledger.")
	}
	switch in.Type {
	case 1:
		if hdr.Category != "CRED" {
			return nil, verr("MUT_010", "ledgerId", "Ledger must be of category creditor.")
		}
	case 2:
		if hdr.Category != "DEB" {
			return nil, verr("MUT_011", "ledgerId", "Ledger must be of category debtor.")
		}
	case 3, 4, 5, 6:
		if hdr.Category != "FIN" {
			return nil, verr("MUT_009", "ledgerId", "Invalid ledger category.")
		}
	}
	if in.Type <= 2 {
		if in.RelationID == 0 {
			return nil, verr("MUT_012", "relationId", "Relation is missing.")
		}
		if strings.TrimSpace(in.InvoiceNumber) == "" {
			return nil, verr("MUT_002", "invoiceNumber", "Invoice number is missing.")
		}
	}
	if in.RelationID != 0 && a.relByID[in.RelationID] == nil {
		return nil, verr("MUT_013", "relationId", "Relation not found.")
	}
	if runeLen(in.InvoiceNumber) > 50 {
		return nil, verr("MUT_018", "invoiceNumber", "Invoice number is too long.")
	}
	switch in.Type {
	case 2:
		if a.mutInvoices[strings.ToUpper(in.InvoiceNumber)] {
			return nil, verr("MUT_019", "invoiceNumber", "Invoice number already exists.")
		}
	case 1:
		if a.openByKey[openKey("C", in.InvoiceNumber, in.RelationID)] != nil {
			return nil, verr("MUT_020", "invoiceNumber", "Combination relation/invoice number already exists.")
		}
	}
	if in.CheckPaymentReference && in.PaymentReference != "" && a.payRefs[in.PaymentReference] {
		return nil, verr("MUTA_008", "paymentReference", "Payment reference already exists.")
	}
	if len(in.Rows) == 0 {
		return nil, verr("MUT_100", "rows", "Rows are missing.")
	}
	if len(in.Rows) > maxMutationRows {
		return nil, verr("MUT_101", "rows", "Too many rows.")
	}
	type payment struct {
		item   *openItem
		amount decimal.Decimal
	}
	var pays []payment
	for i := range in.Rows {
		row := &in.Rows[i]
		info, ok := vatTable[row.VATCode]
		if !ok {
			return nil, verr("MUT_109", "rows.vatCode", "Invalid VAT code.")
		}
		if in.Type == 1 && info.kind == vatSale {
			return nil, verr("MUT_110", "rows.vatCode", "VAT code must be of type purchase.")
		}
		if in.Type == 2 && info.kind == vatPurchase {
			return nil, verr("MUT_111", "rows.vatCode", "VAT code must be of type sale.")
		}
		if row.VATAmount != nil && row.VATCode != "AFW" && row.VATCode != "AFW_VERK" {
			return nil, verr("MUTA_003", "rows.vatAmount", "VAT amount only with 'AFW'/'AFW_VERK'.")
		}
		needLedger := in.Type != 3 && in.Type != 4
		if row.LedgerID == 0 && needLedger {
			return nil, verr("MUTA_004", "rows.ledgerId", "Row ledger ID is missing.")
		}
		if row.LedgerID != 0 {
			l := a.ledgerByID[row.LedgerID]
			if l == nil {
				return nil, verr("MUT_104", "rows.ledgerId", "Row ledger is unknown.")
			}
			switch in.Type {
			case 1, 2, 5, 6:
				if l.Category == "FIN" || l.Category == "CRED" || l.Category == "DEB" {
					return nil, verr("MUT_106", "rows.ledgerId", "Row ledger has an invalid category.")
				}
			case 3:
				if l.Category != "DEB" {
					return nil, verr("MUT_108", "rows.ledgerId", "Row ledger must be of category debtor.")
				}
			case 4:
				if l.Category != "CRED" {
					return nil, verr("MUT_107", "rows.ledgerId", "Row ledger must be of category creditor.")
				}
			}
		}
		if row.CostCenterID != 0 && !slices.ContainsFunc(a.costCenters, func(c costCenter) bool { return c.ID == row.CostCenterID }) {
			return nil, verr("MUT_117", "rows.costCenterId", "Cost center not found.")
		}
		if row.RelationID != 0 && a.relByID[row.RelationID] == nil {
			return nil, verr("MUT_113", "rows.relationId", "Relation not found.")
		}
		// Split the row amount into excl. and VAT.
		rate := vatRate(row.VATCode, in.Date)
		amt := row.Amount.Decimal
		switch {
		case row.VATAmount != nil:
			row.vat = row.VATAmount.Decimal
		case in.InExVat == "IN":
			row.vat = round2(amt.Mul(rate).Div(hundred.Add(rate)))
		default:
			row.vat = round2(amt.Mul(rate).Div(hundred))
		}
		row.excl = amt
		if in.InExVat == "IN" {
			row.excl = amt.Sub(row.vat)
		}
		if in.Type == 3 || in.Type == 4 {
			if strings.TrimSpace(row.InvoiceNumber) == "" {
				return nil, verr("MUT_120", "rows.invoiceNumber", "Row invoice number is missing.")
			}
			rid := row.RelationID
			if rid == 0 {
				rid = in.RelationID
			}
			if rid == 0 {
				return nil, verr("MUT_112", "rows.relationId", "Row relation is missing.")
			}
			side := "D"
			if in.Type == 4 {
				side = "C"
			}
			item := a.openByKey[openKey(side, row.InvoiceNumber, rid)]
			if item == nil {
				return nil, verr("MUT_115", "rows.invoiceNumber", "Invoice not found.")
			}
			if item.RelationID != rid {
				return nil, verr("MUT_116", "rows.invoiceNumber", "Invoice not permitted.")
			}
			paid := row.excl.Add(row.vat)
			if s.opt.RejectOverpayment {
				left := item.Total.Sub(item.Paid)
				for _, p := range pays {
					if p.item == item {
						left = left.Sub(p.amount)
					}
				}
				if paid.GreaterThan(left) {
					return nil, verr("MUT_116", "rows.amount", "Invoice not permitted: amount exceeds the open amount.")
				}
			}
			pays = append(pays, payment{item, paid})
		}
	}
	m := &mutation{
		ID: s.nextID(), Type: in.Type, Date: in.Date, Description: in.Description,
		TermOfPayment: in.TermOfPayment, LedgerID: in.LedgerID, RelationID: in.RelationID,
		InExVat: in.InExVat, InvoiceNumber: in.InvoiceNumber, EntryNumber: in.EntryNumber,
		PaymentReference: in.PaymentReference, Rows: in.Rows, Total: decimal.Zero,
	}
	for _, row := range m.Rows {
		m.Total = m.Total.Add(row.excl).Add(row.vat)
	}
	a.mutations = insertSorted(a.mutations, m, func(m *mutation) int64 { return m.ID })
	a.mutByID[m.ID] = m
	if in.PaymentReference != "" {
		a.payRefs[in.PaymentReference] = true
	}
	switch in.Type {
	case 1, 2:
		side := "D"
		if in.Type == 1 {
			side = "C"
		} else {
			a.mutInvoices[strings.ToUpper(in.InvoiceNumber)] = true
		}
		item := &openItem{Side: side, MutationID: m.ID, InvoiceNumber: in.InvoiceNumber, RelationID: in.RelationID,
			Date: in.Date, Total: m.Total, Paid: decimal.Zero}
		a.openItems = append(a.openItems, item)
		a.openByKey[openKey(side, in.InvoiceNumber, in.RelationID)] = item
	}
	for _, p := range pays {
		p.item.Paid = p.item.Paid.Add(p.amount)
	}
	return m, nil
}

func (s *Simulator) createMutation(w http.ResponseWriter, r *http.Request, a *admin) {
	f, e := decodeBody(r)
	if e != nil {
		writeErr(w, e)
		return
	}
	in, e := parseMutation(f)
	if e != nil {
		writeErr(w, e)
		return
	}
	a.mu.Lock()
	m, e := s.book(a, in)
	a.mu.Unlock()
	if e != nil {
		writeErr(w, e)
		return
	}
	s.created(w, map[string]any{"id": m.ID})
}

type mutListItem struct {
	ID            int64  `json:"id"`
	Type          int    `json:"type"`
	Date          string `json:"date"`
	InvoiceNumber string `json:"invoiceNumber"`
	LedgerID      int64  `json:"ledgerId"`
	Amount        money  `json:"amount"`
	EntryNumber   string `json:"entryNumber"`
}

var mutListParams = map[string]paramKind{"type": pInt, "id": pInt, "description": pString, "invoiceNumber": pString, "date": pDate}

func (s *Simulator) listMutations(w http.ResponseWriter, r *http.Request, a *admin) {
	q, e := s.parseList(r, mutListParams)
	if e != nil {
		writeErr(w, e)
		return
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	items := a.mutations
	if a.opening != nil {
		items = append([]*mutation{a.opening}, items...)
	}
	env := pageOf(s, q, items, func(m *mutation) bool {
		return q.matchAll(func(f string) string {
			if f == "description" {
				return m.Description
			}
			return m.InvoiceNumber
		}, func(f string) int64 {
			switch f {
			case "type":
				return int64(m.Type)
			case "id":
				return m.ID
			}
			return dateKey(m.Date)
		})
	}, func(m *mutation) mutListItem {
		return mutListItem{m.ID, m.Type, m.Date.Format(time.DateOnly), m.InvoiceNumber, m.LedgerID, money{m.Total}, m.EntryNumber}
	})
	writeJSON(w, http.StatusOK, env)
}

type vatTotal struct {
	VATCode string `json:"vatCode"`
	Amount  money  `json:"amount"`
}

func (s *Simulator) getMutation(w http.ResponseWriter, r *http.Request, a *admin) {
	id, e := pathID(r)
	if e != nil {
		writeErr(w, e)
		return
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	m := a.mutByID[id]
	if m == nil {
		writeErr(w, notFound("MUT_300", "Mutation not found."))
		return
	}
	var vats []vatTotal
	for _, row := range m.Rows {
		i := slices.IndexFunc(vats, func(v vatTotal) bool { return v.VATCode == row.VATCode })
		if i < 0 {
			vats = append(vats, vatTotal{row.VATCode, money{decimal.Zero}})
			i = len(vats) - 1
		}
		vats[i].Amount = money{vats[i].Amount.Add(row.vat)}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": m.ID, "type": m.Type, "date": m.Date.Format(time.DateOnly), "description": m.Description,
		"termOfPayment": m.TermOfPayment, "ledgerId": m.LedgerID, "relationId": m.RelationID,
		"inExVat": m.InExVat, "invoiceNumber": m.InvoiceNumber, "entryNumber": m.EntryNumber,
		"rows": m.Rows, "vat": vats,
	})
}

type outstandingItem struct {
	Date              string `json:"date"`
	MutationID        int64  `json:"mutationId"`
	InvoiceNumber     string `json:"invoiceNumber"`
	RelationID        int64  `json:"relationId"`
	RelationCode      string `json:"relationCode"`
	Company           string `json:"company"`
	TotalAmount       money  `json:"totalAmount"`
	PaidAmount        money  `json:"paidAmount"`
	OutstandingAmount money  `json:"outstandingAmount"`
}

func (s *Simulator) listOutstanding(w http.ResponseWriter, r *http.Request, a *admin) {
	side := r.URL.Query().Get("credDeb")
	if side == "" {
		writeErr(w, verr("ERR_002", "credDeb", "credDeb is required."))
		return
	}
	if side != "C" && side != "D" {
		writeErr(w, errBadValue("credDeb"))
		return
	}
	q, e := s.parseList(r, map[string]paramKind{"invoiceNumber": pString})
	if e != nil {
		writeErr(w, e)
		return
	}
	q.always = true // the side and paid rules filter even without parameter conditions
	a.mu.RLock()
	defer a.mu.RUnlock()
	env := pageOf(s, q, a.openItems, func(it *openItem) bool {
		if it.Side != side {
			return false
		}
		if !s.opt.KeepPaidOutstanding && it.Total.Sub(it.Paid).IsZero() {
			return false
		}
		return s.opt.IgnoreOutstandingNumberFilter || q.matchAll(func(string) string { return it.InvoiceNumber }, nil)
	}, func(it *openItem) outstandingItem {
		o := outstandingItem{Date: it.Date.Format(time.DateOnly), MutationID: it.MutationID, InvoiceNumber: it.InvoiceNumber,
			RelationID: it.RelationID, TotalAmount: money{it.Total}, PaidAmount: money{it.Paid},
			OutstandingAmount: money{it.Total.Sub(it.Paid)}}
		if rel := a.relByID[it.RelationID]; rel != nil {
			o.RelationCode, o.Company = rel.Code, rel.Str[fName]
		}
		return o
	})
	writeJSON(w, http.StatusOK, env)
}
