package main

import (
	"context"
	"errors"

	"github.com/shopspring/decimal"
)

// The product flow talks to the two systems through these ports; books.go and crm.go implement
// them on the e-Boekhouden and Tribe clients.

// ErrNotFound is returned by the ports for a record that does not exist.
var ErrNotFound = errors.New("not found")

// ErrRejected wraps a refusal by the other system that retrying cannot fix (a validation error).
var ErrRejected = errors.New("rejected")

// BookEntry is a product as e-Boekhouden's list endpoint gives it.
type BookEntry struct {
	ID          string
	Code        string
	Description string
	UnitID      string
	Active      bool
}

// Books is what the product flow needs of e-Boekhouden.
type Books interface {
	// ListProducts returns every product of the administration, from the list endpoint only.
	ListProducts(ctx context.Context) ([]BookEntry, error)
	// GetProduct reads one product's details into its canonical record, the unit's name
	// included. A VAT code koppel does not know is returned as is, with an empty percentage.
	GetProduct(ctx context.Context, id string) (Product, error)
}

// CRMLookups are the Tribe look-ups a product refers to, read once per run.
type CRMLookups struct {
	Units         []Lookup
	VATGroups     []Lookup
	ProductGroups []Lookup
}

// Lookup is one Tribe look-up row.
type Lookup struct {
	ID, Code, Name string
	// Percentage is a VAT group's rate; nil for other look-ups or when Tribe gives none.
	Percentage *decimal.Decimal
}

// CRMProduct is what koppel writes to a Tribe product: the record and the resolved look-ups.
type CRMProduct struct {
	Product
	UnitID, VATGroupID string
}

// CRM is what the product flow needs of Tribe.
type CRM interface {
	Lookups(ctx context.Context) (CRMLookups, error)
	// FindProduct finds the product with this e-Boekhouden ID stored on it (ImportId), which a
	// create whose link was never stored leaves; ErrNotFound when there is none.
	FindProduct(ctx context.Context, eboekhoudenID string) (string, error)
	// CreateProduct creates the product in group with the e-Boekhouden ID on it, the price,
	// description and VAT editable on invoice lines, and returns its ID.
	CreateProduct(ctx context.Context, p CRMProduct, group, eboekhoudenID string) (string, error)
	// UpdateProduct writes the synchronised fields of p; the group and editable flags stay.
	UpdateProduct(ctx context.Context, id string, p CRMProduct, eboekhoudenID string) error
}
