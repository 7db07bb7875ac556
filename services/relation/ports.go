package main

import (
	"context"
	"errors"

	"github.com/koppel/koppel/services/relation/record"
)

// The relation flow talks to the two systems through these ports; the adapters in books.go and
// crm.go implement them on the e-Boekhouden and Tribe clients.

// ErrNotFound is returned by the ports for a record that does not exist.
var ErrNotFound = errors.New("not found")

// ErrRejected wraps a refusal by the other system that retrying cannot fix (a validation error).
var ErrRejected = errors.New("rejected")

// BookEntry is a relation as e-Boekhouden's list endpoint gives it.
type BookEntry struct {
	ID   string
	Kind record.Kind
	Code string
}

// BookRelation is a relation read from e-Boekhouden.
type BookRelation struct {
	ID       string
	Inactive bool
	// Note is e-Boekhouden's note on the relation; koppel writes its marker there when it
	// creates one (see Marker).
	Note     string
	Relation record.Relation
}

// Books is what the relation flow needs of e-Boekhouden.
type Books interface {
	// ListRelations returns every relation of the administration, from the list endpoint only.
	ListRelations(ctx context.Context) ([]BookEntry, error)
	GetRelation(ctx context.Context, id string) (BookRelation, error)
	// FindRelationByCode finds a relation by its code; ErrNotFound when there is none.
	FindRelationByCode(ctx context.Context, code string) (BookEntry, error)
	// CreateRelation creates r with note as its note (koppel's marker).
	CreateRelation(ctx context.Context, r record.Relation, note string) (BookEntry, error)
	UpdateRelation(ctx context.Context, id string, r record.Relation) error
}

// CRMRelation is a relation read from Tribe.
type CRMRelation struct {
	ID   string
	Kind record.Kind
	// EBoekhoudenID is the e-Boekhouden ID stored on the Tribe record (ImportId), "" when none.
	EBoekhoudenID  string
	DebtorNumber   string
	CreditorNumber string
	// Relation is the canonical record with the debtor number as its code; see As.
	Relation record.Relation
	// invoiceAddressID and postalAddressID are the IDs of its addresses, "" when it has none,
	// so a write needs no read first.
	invoiceAddressID, postalAddressID string
}

// As is the canonical record with the code read from the Tribe number that keeps it.
func (c CRMRelation) As(field record.CodeField) record.Relation {
	r := c.Relation
	if field == record.CreditorNumber {
		r.Code = c.CreditorNumber
	} else {
		r.Code = c.DebtorNumber
	}
	return r.Normalize()
}

// Candidate is the relation's keys, for matching.
func (c CRMRelation) Candidate() record.Candidate {
	return record.Candidate{ID: c.ID, EBoekhoudenID: c.EBoekhoudenID, DebtorNumber: c.DebtorNumber, CreditorNumber: c.CreditorNumber}
}

// Created names what CreateCustomer created.
type Created struct {
	RelationID, RelationshipID string
}

// CRM is what the relation flow needs of Tribe.
type CRM interface {
	// GetRelation reads a relation with its addresses: one call.
	GetRelation(ctx context.Context, kind record.Kind, id string) (CRMRelation, error)
	// GetRelations reads several relations of kind with their addresses, a few dozen per call;
	// relations that do not exist are left out.
	GetRelations(ctx context.Context, kind record.Kind, ids []string) ([]CRMRelation, error)
	// IsCustomer reports whether the relation has a customer relationship.
	IsCustomer(ctx context.Context, kind record.Kind, id string) (bool, error)
	// CustomerOf reads the relation a customer relationship belongs to, with its addresses: one
	// call.
	CustomerOf(ctx context.Context, kind record.Kind, relationshipID string) (CRMRelation, error)
	// Candidates lists the keys of every relation of kind, in few large pages.
	Candidates(ctx context.Context, kind record.Kind) ([]record.Candidate, error)
	// FindCandidates lists the keys of the relations of kind that an e-Boekhouden relation
	// could be: those with its ID, or its code as debtor or creditor number. One call.
	FindCandidates(ctx context.Context, kind record.Kind, ebID, code string) ([]record.Candidate, error)
	// CreateCustomer creates the relation with its addresses and a customer relationship, with
	// the e-Boekhouden ID stored on it: one call when Tribe's answer names the new relation.
	CreateCustomer(ctx context.Context, r record.Relation, eboekhoudenID string) (Created, error)
	// UpdateRelation writes r (its code to the number field says, and the e-Boekhouden ID) over
	// cur, the relation as last read, addresses field for field, emptied ones included.
	UpdateRelation(ctx context.Context, cur CRMRelation, r record.Relation, field record.CodeField, eboekhoudenID string) error
	// DebtorNumberInUse reports whether any relation has this debtor number.
	DebtorNumberInUse(ctx context.Context, code string) (bool, error)
}
