// Package invoicelink is the state an invoice link keeps in the mapping service: the invoice
// number it was booked under and what is known to be paid of it. The invoice flow writes it when
// it books an invoice, the payment flow when a payment comes in, and a rebuild when it finds the
// link again; all three read and write it through this package.
package invoicelink

import (
	"encoding/json"
	"fmt"
)

// Kind is the link kind (and issue kind) of invoices.
const Kind = "invoice"

// PaidInFull is State.Paid of an invoice paid in full.
const PaidInFull = "full"

// State is the stored record of an invoice link.
type State struct {
	// Number is the invoice number, the same in both systems.
	Number string `json:"number"`
	// Paid is what is known to be paid: "" nothing, an amount to the cent ("125.00") part of it,
	// PaidInFull all of it.
	Paid string `json:"paid,omitempty"`
}

// Encode is the stored form of s.
func (s State) Encode() []byte {
	b, _ := json.Marshal(s)
	return b
}

// Decode reads a stored State; an empty record is the zero State.
func Decode(b []byte) (State, error) {
	var s State
	if len(b) == 0 {
		return s, nil
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return State{}, fmt.Errorf("decode invoice link: %w", err)
	}
	return s, nil
}
