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
	Relation record.Relation
}

// Books is what the relation flow needs of e-Boekhouden.
type Books interface {
	// ListRelations returns every relation of the administration, from the list endpoint only.
	ListRelations(ctx context.Context) ([]BookEntry, error)
	GetRelation(ctx context.Context, id string) (BookRelation, error)
	// FindRelationByCode finds a relation by its code; ErrNotFound when there is none.
	FindRelationByCode(ctx context.Context, code string) (BookEntry, error)
	CreateRelation(ctx context.Context, r record.Relation) (BookEntry, error)
	UpdateRelation(ctx context.Context, id string, r record.Relation) error
}

// CRMRelation is a relation read from Tribe.
type CRMRelation struct {
	ID   string
	Kind record.Kind
	// EBoekhoudenID is the e-Boekhouden ID stored on the Tribe record (ImportId), "" when none.
	EBoekhoudenID string
	// Customer is true when the relation has a customer relationship.
	Customer bool
	Relation record.Relation
}

// CRM is what the relation flow needs of Tribe.
type CRM interface {
	GetRelation(ctx context.Context, kind record.Kind, id string) (CRMRelation, error)
	// FindRelation finds a relation of kind by the e-Boekhouden ID stored on it, else by its
	// debtor number; ErrNotFound when neither matches.
	FindRelation(ctx context.Context, kind record.Kind, eboekhoudenID, code string) (CRMRelation, error)
	// CreateCustomer creates the relation with a customer relationship and the e-Boekhouden ID
	// stored on it, and returns its ID.
	CreateCustomer(ctx context.Context, r record.Relation, eboekhoudenID string) (string, error)
	// UpdateRelation writes r (and the e-Boekhouden ID) to an existing relation.
	UpdateRelation(ctx context.Context, kind record.Kind, id string, r record.Relation, eboekhoudenID string) error
	// CustomerOf returns the relation a customer relationship belongs to.
	CustomerOf(ctx context.Context, kind record.Kind, relationshipID string) (string, error)
	// DebtorNumberInUse reports whether any relation has this debtor number.
	DebtorNumberInUse(ctx context.Context, code string) (bool, error)
}
