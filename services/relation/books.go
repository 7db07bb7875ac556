package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/koppel/koppel/pkg/eboekhouden"
	"github.com/koppel/koppel/services/relation/record"
)

// books implements Books on the e-Boekhouden client.
type books struct {
	c *eboekhouden.Client
}

// ebAbsent are the canonical fields e-Boekhouden does not keep: it has one name field.
var ebAbsent = []string{"first_name", "middle_name", "last_name"}

func kindOfType(t eboekhouden.RelationType) record.Kind {
	if t == eboekhouden.RelationPrivate {
		return record.Person
	}
	return record.Organization
}

func typeOfKind(k record.Kind) eboekhouden.RelationType {
	if k == record.Person {
		return eboekhouden.RelationPrivate
	}
	return eboekhouden.RelationBusiness
}

func parseID(id string) (int64, error) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("e-Boekhouden relation ID %q: %w", id, ErrNotFound)
	}
	return n, nil
}

// ebError maps the client's errors onto the ports' sentinels.
func ebError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, eboekhouden.ErrNotFound) {
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	var api *eboekhouden.APIError
	if errors.As(err, &api) && (api.StatusCode == http.StatusBadRequest || errors.Is(err, eboekhouden.ErrConflict)) {
		return fmt.Errorf("%w: %v", ErrRejected, err)
	}
	return err
}

func fromBook(r *eboekhouden.Relation) record.Relation {
	return record.Relation{
		Kind: kindOfType(r.Type), Name: r.Name, Code: r.Code, Phone: r.PhoneNumber, Website: r.Website,
		VATNumber: r.VATNumber, CoCNumber: r.CompanyRegistrationNumber, IBAN: r.IBAN, BIC: r.BIC,
		InvoiceAddress: record.Address{Line: r.Address, PostalCode: r.PostalCode, City: r.City, Country: r.Country},
		PostalAddress:  record.Address{Line: r.Address2, PostalCode: r.PostalCode2, City: r.City2, Country: r.Country2},
		Absent:         ebAbsent,
	}.Normalize()
}

// toBook writes the synchronised fields of rec onto r, leaving the others as they are.
func toBook(rec record.Relation, r *eboekhouden.Relation) {
	rec = rec.Normalize()
	r.Name, r.Code, r.PhoneNumber, r.Website = rec.Name, rec.Code, rec.Phone, rec.Website
	r.VATNumber, r.CompanyRegistrationNumber, r.IBAN, r.BIC = rec.VATNumber, rec.CoCNumber, rec.IBAN, rec.BIC
	r.Address, r.PostalCode, r.City, r.Country = rec.InvoiceAddress.Line, rec.InvoiceAddress.PostalCode, rec.InvoiceAddress.City, rec.InvoiceAddress.Country
	r.Address2, r.PostalCode2, r.City2, r.Country2 = rec.PostalAddress.Line, rec.PostalAddress.PostalCode, rec.PostalAddress.City, rec.PostalAddress.Country
}

func (b books) ListRelations(ctx context.Context) ([]BookEntry, error) {
	var out []BookEntry
	for item, err := range b.c.Relations(ctx) {
		if err != nil {
			return nil, ebError(err)
		}
		out = append(out, BookEntry{ID: strconv.FormatInt(item.ID, 10), Kind: kindOfType(item.Type), Code: item.Code})
	}
	return out, nil
}

func (b books) GetRelation(ctx context.Context, id string) (BookRelation, error) {
	n, err := parseID(id)
	if err != nil {
		return BookRelation{}, err
	}
	r, err := b.c.GetRelation(ctx, n)
	if err != nil {
		return BookRelation{}, ebError(err)
	}
	return BookRelation{ID: id, Inactive: r.Inactive, Note: r.Note, Relation: fromBook(r)}, nil
}

func (b books) FindRelationByCode(ctx context.Context, code string) (BookEntry, error) {
	item, err := b.c.FindRelationByCode(ctx, code)
	if err != nil {
		return BookEntry{}, ebError(err)
	}
	if item == nil {
		return BookEntry{}, ErrNotFound
	}
	return BookEntry{ID: strconv.FormatInt(item.ID, 10), Kind: kindOfType(item.Type), Code: item.Code}, nil
}

func (b books) CreateRelation(ctx context.Context, rec record.Relation, note string) (BookEntry, error) {
	r := eboekhouden.Relation{Type: typeOfKind(rec.Kind), Note: note}
	toBook(rec, &r)
	created, err := b.c.CreateRelation(ctx, r)
	if err != nil {
		return BookEntry{}, ebError(err)
	}
	return BookEntry{ID: strconv.FormatInt(created.ID, 10), Kind: rec.Kind, Code: created.Code}, nil
}

func (b books) UpdateRelation(ctx context.Context, id string, rec record.Relation) error {
	n, err := parseID(id)
	if err != nil {
		return err
	}
	_, err = b.c.UpdateRelation(ctx, n, func(r *eboekhouden.Relation) error {
		toBook(rec, r)
		return nil
	})
	return ebError(err)
}
