package ebsim

import (
	"net/http"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

var productListParams = map[string]paramKind{"code": pString, "groupCode": pString}

type productListItem struct {
	ID          int64  `json:"id"`
	Code        string `json:"code"`
	Description string `json:"description"`
	UnitID      int64  `json:"unitId"`
	Active      bool   `json:"active"`
}

type productOut struct {
	ID                int64  `json:"id"`
	Code              string `json:"code"`
	Description       string `json:"description"`
	UnitID            int64  `json:"unitId,omitempty"`
	Active            bool   `json:"active"`
	GroupID           int64  `json:"groupId,omitempty"`
	PurchasePriceExcl *money `json:"purchasePriceExcl,omitempty"`
	PriceExcl         *money `json:"priceExcl,omitempty"`
	PriceIncl         *money `json:"priceIncl,omitempty"`
	VAT               string `json:"vat"`
	LedgerID          int64  `json:"ledgerId"`
	CostCenterID      int64  `json:"costCenterId,omitempty"`
	InStockManagement bool   `json:"inStockManagement"`
}

func optMoney(d *decimal.Decimal) *money {
	if d == nil {
		return nil
	}
	return &money{*d}
}

func (s *Simulator) listProducts(w http.ResponseWriter, r *http.Request, a *admin) {
	q, e := s.parseList(r, productListParams)
	if e != nil {
		writeErr(w, e)
		return
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	env := pageOf(s, q, a.products, func(p *product) bool {
		return q.matchAll(func(field string) string {
			if field == "code" {
				return p.Code
			}
			for _, g := range a.groups {
				if g.ID == p.GroupID {
					return g.Code
				}
			}
			return ""
		}, nil)
	}, func(p *product) productListItem {
		return productListItem{p.ID, p.Code, p.Description, p.UnitID, p.Active}
	})
	writeJSON(w, http.StatusOK, env)
}

func (s *Simulator) getProduct(w http.ResponseWriter, r *http.Request, a *admin) {
	id, e := pathID(r)
	if e != nil {
		writeErr(w, e)
		return
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	p := a.prodByID[id]
	if p == nil {
		writeErr(w, notFound("ART_001", "Product not found."))
		return
	}
	writeJSON(w, http.StatusOK, productOut{p.ID, p.Code, p.Description, p.UnitID, p.Active, p.GroupID,
		optMoney(p.PurchasePriceExcl), optMoney(p.PriceExcl), optMoney(p.PriceIncl), p.VAT, p.LedgerID,
		p.CostCenterID, p.InStockManagement})
}

var priceBound = decimal.RequireFromString("999999999999.00")

// applyProduct validates f onto p; create applies the required-field rules of POST.
func (s *Simulator) applyProduct(a *admin, f fields, p *product, create bool) *apiError {
	if v, ok, e := f.str("code"); e != nil {
		return e
	} else if ok || create {
		if strings.TrimSpace(v) == "" {
			return verr("ART_004", "code", "Code is missing.")
		}
		if runeLen(v) > 50 {
			return verr("ART_007", "code", "Code is too long.")
		}
		p.Code = v
	}
	if v, ok, e := f.str("description"); e != nil {
		return e
	} else if ok || create {
		if strings.TrimSpace(v) == "" {
			return verr("ART_005", "description", "Description is missing.")
		}
		if runeLen(v) > 200 {
			return verr("ART_008", "description", "Description is too long.")
		}
		p.Description = v
	}
	if v, ok, e := f.str("vat"); e != nil {
		return e
	} else if ok || create {
		if v == "" {
			if create {
				return verr("ART_017", "vat", "VAT code is required.")
			}
			return verr("ART_022", "vat", "VAT code cannot be null or empty.")
		}
		info, known := vatTable[v]
		if !known {
			return verr("ART_013", "vat", "VAT code not found.")
		}
		if info.kind == vatPurchase {
			return verr("ART_023", "vat", "This VAT code cannot be used.")
		}
		p.VAT = v
	}
	if v, ok, e := f.int("ledgerId"); e != nil {
		return e
	} else if ok || create {
		if !ok {
			return verr("ART_006", "ledgerId", "Ledger ID is missing.")
		}
		l := a.ledgerByID[v]
		if l == nil {
			return verr("ART_009", "ledgerId", "Ledger not found.")
		}
		if l.Category != "BAL" && l.Category != "VW" {
			return verr("ART_028", "ledgerId", "Ledger category must be 'BAL' or 'VW'.")
		}
		p.LedgerID = v
	}
	if v, ok, e := f.int("unitId"); e != nil {
		return e
	} else if ok && v != 0 {
		found := false
		for _, u := range a.units {
			found = found || u.ID == v
		}
		if !found {
			return verr("ART_011", "unitId", "Unit not found.")
		}
		p.UnitID = v
	}
	if v, ok, e := f.int("groupId"); e != nil {
		return e
	} else if ok && v != 0 {
		found := false
		for _, g := range a.groups {
			found = found || g.ID == v
		}
		if !found {
			return verr("ART_012", "groupId", "Group not found.")
		}
		p.GroupID = v
	}
	if v, ok, e := f.int("costCenterId"); e != nil {
		return e
	} else if ok && v != 0 {
		var cc *costCenter
		for i := range a.costCenters {
			if a.costCenters[i].ID == v {
				cc = &a.costCenters[i]
			}
		}
		if cc == nil {
			return verr("ART_015", "costCenterId", "Cost center not found.")
		}
		if !cc.Active {
			return verr("ART_010", "costCenterId", "Cost center is inactive.")
		}
		p.CostCenterID = v
	}
	excl, exclOK, e := f.dec("priceExcl")
	if e != nil {
		return e
	}
	incl, inclOK, e := f.dec("priceIncl")
	if e != nil {
		return e
	}
	switch {
	case exclOK && inclOK:
		return verr("ART_016", "priceIncl", "PriceIncl cannot have a value when PriceExcl is passed.")
	case exclOK:
		if excl.GreaterThan(priceBound) {
			return verr("ART_025", "priceExcl", "PriceExcl exceeds 999999999999.00.")
		}
		if excl.LessThan(priceBound.Neg()) {
			return verr("ART_030", "priceExcl", "PriceExcl is below -999999999999.00.")
		}
		p.PriceExcl, p.PriceIncl = &excl, nil
	case inclOK:
		if incl.GreaterThan(priceBound) {
			return verr("ART_024", "priceIncl", "PriceIncl exceeds 999999999999.00.")
		}
		if incl.LessThan(priceBound.Neg()) {
			return verr("ART_029", "priceIncl", "PriceIncl is below -999999999999.00.")
		}
		p.PriceIncl, p.PriceExcl = &incl, nil
	case create:
		return verr("ART_018", "priceExcl", "Either priceExcl or priceIncl is required.")
	}
	if v, ok, e := f.dec("purchasePriceExcl"); e != nil {
		return e
	} else if ok {
		if v.GreaterThan(priceBound) {
			return verr("ART_027", "purchasePriceExcl", "PurchasePriceExcl exceeds 999999999999.00.")
		}
		if v.LessThan(priceBound.Neg()) {
			return verr("ART_032", "purchasePriceExcl", "PurchasePriceExcl is below -999999999999.00.")
		}
		p.PurchasePriceExcl = &v
	}
	if v, ok, e := f.bool("active"); e != nil {
		return e
	} else if ok {
		p.Active = v
	} else if create {
		p.Active = true
	}
	if v, ok, e := f.bool("inStockManagement"); e != nil {
		return e
	} else if ok {
		p.InStockManagement = v
	}
	return nil
}

func (s *Simulator) createProduct(w http.ResponseWriter, r *http.Request, a *admin) {
	f, e := decodeBody(r)
	if e != nil {
		writeErr(w, e)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	p := &product{}
	if e := s.applyProduct(a, f, p, true); e != nil {
		writeErr(w, e)
		return
	}
	p.ID = s.nextID()
	a.addProduct(p)
	s.created(w, map[string]any{"id": p.ID})
}

func (a *admin) addProduct(p *product) {
	a.products = insertSorted(a.products, p, func(p *product) int64 { return p.ID })
	a.prodByID[p.ID] = p
	a.prodCodes[strings.ToUpper(p.Code)] = p.ID
}

func (s *Simulator) patchProduct(w http.ResponseWriter, r *http.Request, a *admin) {
	id, e := pathID(r)
	if e != nil {
		writeErr(w, e)
		return
	}
	f, e := decodeBody(r)
	if e != nil {
		writeErr(w, e)
		return
	}
	if v, ok, e := f.int("updateSubscriptions"); e != nil || (ok && (v < 0 || v > 2)) {
		writeErr(w, verr("ART_014", "updateSubscriptions", "Invalid UpdateSubscriptions."))
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	cur := a.prodByID[id]
	if cur == nil {
		writeErr(w, notFound("ART_001", "Product not found."))
		return
	}
	next := *cur
	if e := s.applyProduct(a, f, &next, false); e != nil {
		writeErr(w, e)
		return
	}
	delete(a.prodCodes, strings.ToUpper(cur.Code))
	a.prodCodes[strings.ToUpper(next.Code)] = cur.ID
	*cur = next
	s.noContent(w)
}

func (s *Simulator) deleteProduct(w http.ResponseWriter, r *http.Request, a *admin) {
	id, e := pathID(r)
	if e != nil {
		writeErr(w, e)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.prodByID[id]
	if p == nil {
		writeErr(w, notFound("ART_001", "Product not found."))
		return
	}
	// Simulator rule (the real reason for ART_003 is undocumented): products on an invoice stay.
	for _, inv := range a.invoices {
		for _, it := range inv.Items {
			if it.ProductID == id {
				writeErr(w, verr("ART_003", "id", "Product could not be deleted."))
				return
			}
		}
	}
	delete(a.prodByID, id)
	delete(a.prodCodes, strings.ToUpper(p.Code))
	for i, q := range a.products {
		if q.ID == id {
			a.products = append(a.products[:i], a.products[i+1:]...)
			break
		}
	}
	s.noContent(w)
}

func (s *Simulator) listProductGroups(w http.ResponseWriter, r *http.Request, a *admin) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	writeJSON(w, http.StatusOK, envelope[productGroup]{Items: a.groups, Count: len(a.groups)})
}

// Reference data

func (s *Simulator) listLedgers(w http.ResponseWriter, r *http.Request, a *admin) {
	q, e := s.parseList(r, map[string]paramKind{"code": pString, "category": pString})
	if e != nil {
		writeErr(w, e)
		return
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	writeJSON(w, http.StatusOK, pageOf(s, q, a.ledgers, func(l *ledger) bool {
		return q.matchAll(func(f string) string {
			if f == "code" {
				return l.Code
			}
			return l.Category
		}, nil)
	}, func(l *ledger) *ledger { return l }))
}

func (s *Simulator) getLedger(w http.ResponseWriter, r *http.Request, a *admin) {
	id, e := pathID(r)
	if e != nil {
		writeErr(w, e)
		return
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	l := a.ledgerByID[id]
	if l == nil {
		writeErr(w, notFound("LEDG_011", "Ledger not found."))
		return
	}
	writeJSON(w, http.StatusOK, l)
}

func (s *Simulator) ledgerBalance(w http.ResponseWriter, r *http.Request, a *admin) {
	id, e := pathID(r)
	if e != nil {
		writeErr(w, e)
		return
	}
	var from, to int64
	if v := r.URL.Query().Get("from"); v != "" {
		var ok bool
		if from, ok = parseDateVal(v); !ok {
			writeErr(w, errBadValue("from"))
			return
		}
	}
	to = 99991231
	if v := r.URL.Query().Get("to"); v != "" {
		var ok bool
		if to, ok = parseDateVal(v); !ok {
			writeErr(w, errBadValue("to"))
			return
		}
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	l := a.ledgerByID[id]
	if l == nil {
		writeErr(w, notFound("LEDG_011", "Ledger not found."))
		return
	}
	bal := decimal.Zero
	all := a.mutations
	if a.opening != nil {
		all = append([]*mutation{a.opening}, all...)
	}
	for _, m := range all {
		if k := dateKey(m.Date); k < from || k > to {
			continue
		}
		for _, p := range a.postings(m) {
			if p.ledger == id {
				bal = bal.Add(p.amount)
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"code": l.Code, "type": l.Category, "balance": money{bal}})
}

type posting struct {
	ledger int64
	amount decimal.Decimal // debit positive
}

// postings is the double entry of m, debit positive, as the balance endpoint sums it.
func (a *admin) postings(m *mutation) []posting {
	var out []posting
	sign := decimal.NewFromInt(1)
	switch m.Type {
	case 1, 4, 6: // money or a claim leaves the header account
		sign = sign.Neg()
	}
	out = append(out, posting{m.LedgerID, m.Total.Mul(sign)})
	for _, row := range m.Rows {
		target := row.LedgerID
		if target == 0 {
			side := "DEB"
			if m.Type == 4 {
				side = "CRED"
			}
			if l := a.firstLedger(side); l != nil {
				target = l.ID
			}
		}
		out = append(out, posting{target, row.excl.Add(row.vat).Mul(sign.Neg())})
	}
	return out
}

func (s *Simulator) listUnits(w http.ResponseWriter, r *http.Request, a *admin) {
	q, e := s.parseList(r, map[string]paramKind{"singular": pString, "plural": pString})
	if e != nil {
		writeErr(w, e)
		return
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	writeJSON(w, http.StatusOK, pageOf(s, q, a.units, func(u unit) bool {
		return q.matchAll(func(f string) string {
			if f == "singular" {
				return u.Singular
			}
			return u.Plural
		}, nil)
	}, func(u unit) unit { return u }))
}

func (s *Simulator) listCostCenters(w http.ResponseWriter, r *http.Request, a *admin) {
	q, e := s.parseList(r, map[string]paramKind{"parentId": pInt, "description": pString})
	if e != nil {
		writeErr(w, e)
		return
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	writeJSON(w, http.StatusOK, pageOf(s, q, a.costCenters, func(c costCenter) bool {
		return q.matchAll(func(string) string { return c.Description }, func(string) int64 { return c.ParentID })
	}, func(c costCenter) costCenter { return c }))
}

func (s *Simulator) getCostCenter(w http.ResponseWriter, r *http.Request, a *admin) {
	id, e := pathID(r)
	if e != nil {
		writeErr(w, e)
		return
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	byID := map[int64]costCenter{}
	for _, c := range a.costCenters {
		byID[c.ID] = c
	}
	c, ok := byID[id]
	if !ok {
		writeErr(w, notFound("COST_001", "Cost center not found."))
		return
	}
	path := c.Description
	for p, seen := c.ParentID, 0; p != 0 && seen < 16; seen++ {
		parent := byID[p]
		path = parent.Description + "/" + path
		p = parent.ParentID
	}
	writeJSON(w, http.StatusOK, struct {
		costCenter
		FullPath string `json:"fullPath"`
	}{c, path})
}

func (s *Simulator) listInvoiceTemplates(w http.ResponseWriter, r *http.Request, a *admin) {
	q, e := s.parseList(r, map[string]paramKind{"name": pString, "type": pString, "active": pBool})
	if e != nil {
		writeErr(w, e)
		return
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	writeJSON(w, http.StatusOK, pageOf(s, q, a.invTemplates, func(t invoiceTemplate) bool {
		return q.matchAll(func(f string) string {
			if f == "name" {
				return t.Name
			}
			return t.Type
		}, func(string) int64 {
			if t.Active {
				return 1
			}
			return 0
		})
	}, func(t invoiceTemplate) invoiceTemplate { return t }))
}

func (s *Simulator) listEmailTemplates(w http.ResponseWriter, r *http.Request, a *admin) {
	q, e := s.parseList(r, nil)
	if e != nil {
		writeErr(w, e)
		return
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	writeJSON(w, http.StatusOK, pageOf(s, q, a.emailTemplates, func(emailTemplate) bool { return true },
		func(t emailTemplate) emailTemplate { return t }))
}

func (s *Simulator) listAdministrations(w http.ResponseWriter, r *http.Request, a *admin) {
	writeErr(w, verr("EP_001", "", "This endpoint is only available to accountants."))
}

func (s *Simulator) listLinkedAdministrations(w http.ResponseWriter, r *http.Request, a *admin) {
	q, e := s.parseList(r, nil)
	if e != nil {
		writeErr(w, e)
		return
	}
	type adm struct {
		GUID    string `json:"guid"`
		Company string `json:"company"`
	}
	a.mu.RLock()
	items := []adm{{a.guid, a.company}}
	a.mu.RUnlock()
	writeJSON(w, http.StatusOK, pageOf(s, q, items, func(adm) bool { return true }, func(x adm) adm { return x }))
}

// VAT codes: no endpoint exists; the table drives validation and invoice totals.

type vatKind int

const (
	vatSale vatKind = iota + 1
	vatPurchase
	vatBoth
)

type vatInfo struct {
	kind vatKind
	rate decimal.Decimal
}

var vatTable = map[string]vatInfo{
	"LAAG_VERK": {vatSale, decimal.NewFromInt(6)}, "LAAG_VERK_9": {vatSale, decimal.NewFromInt(9)},
	"HOOG_VERK_21": {vatSale, decimal.NewFromInt(21)}, "AFW_VERK": {vatSale, decimal.Zero},
	"VERL_VERK": {vatSale, decimal.Zero}, "VERL_VERK_L9": {vatSale, decimal.Zero},
	"BU_EU_VERK": {vatSale, decimal.Zero}, "AFST_VERK": {vatSale, decimal.Zero},
	"BI_EU_VERK_D": {vatSale, decimal.Zero},
	"LAAG_INK":     {vatPurchase, decimal.NewFromInt(6)}, "LAAG_INK_9": {vatPurchase, decimal.NewFromInt(9)},
	"HOOG_INK_21": {vatPurchase, decimal.NewFromInt(21)}, "AFW": {vatPurchase, decimal.Zero},
	"VERL_INK_L9": {vatPurchase, decimal.Zero}, "VERL_INK_L": {vatPurchase, decimal.Zero},
	"VERL_INK": {vatPurchase, decimal.Zero}, "BU_EU_INK": {vatPurchase, decimal.Zero},
	"BI_EU_VERK": {vatPurchase, decimal.Zero}, "BI_EU_INK": {vatPurchase, decimal.Zero},
	"GEEN": {vatBoth, decimal.Zero},
}

// vatRate is the rate of code on date: the 6 % codes became 9 % codes on 2019-01-01, and the old
// ones are refused after it by the VAT-code checks of mutations (not modelled further).
func vatRate(code string, _ time.Time) decimal.Decimal { return vatTable[code].rate }
