package main

import (
	"encoding/json"

	"github.com/shopspring/decimal"
)

// Product is the canonical product record: what koppel last synced of one e-Boekhouden product,
// stored on its link. Prices and the VAT percentage are decimal strings with two decimals, so a
// record reads back exactly as it was written.
type Product struct {
	Code string `json:"code"`
	Name string `json:"name"`
	// UnitID is e-Boekhouden's unit ID ("" when the product has none); Unit its singular name.
	UnitID string `json:"unit_id,omitempty"`
	Unit   string `json:"unit,omitempty"`
	// VATCode is the e-Boekhouden VAT code; VAT its percentage.
	VATCode       string `json:"vat_code"`
	VAT           string `json:"vat"`
	PurchasePrice string `json:"purchase_price"`
	// SalesPrice is incl. VAT when VATIncluded (a price the bookkeeper keeps incl. VAT stays
	// so in Tribe: converting it loses cents on every multiple), else excl. VAT.
	SalesPrice  string `json:"sales_price"`
	VATIncluded bool   `json:"vat_included,omitempty"`
	Active      bool   `json:"active"`
}

// money is the canonical form of an amount or percentage.
func money(d decimal.Decimal) string { return d.StringFixed(2) }

// Encode gives the record as stored on the link.
func (p Product) Encode() []byte {
	b, _ := json.Marshal(p)
	return b
}

// decodeProduct reads a stored record; an empty or unreadable one is the zero Product, so the
// product is read and written again.
func decodeProduct(b []byte) Product {
	var p Product
	if len(b) > 0 {
		_ = json.Unmarshal(b, &p)
	}
	return p
}

// listed reports whether the fields the list endpoint carries equal the record's.
func (p Product) listed(e BookEntry) bool {
	return p.Code == e.Code && p.Name == e.Description && p.UnitID == e.UnitID && p.Active == e.Active
}
