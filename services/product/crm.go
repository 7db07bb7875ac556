package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/koppel/koppel/pkg/tribe"
	"github.com/shopspring/decimal"
)

// crm implements CRM on the Tribe client.
type crm struct {
	c *tribe.Client
}

// tribeError maps the client's errors onto the ports' sentinels.
func tribeError(err error) error {
	if err == nil {
		return nil
	}
	if tribe.IsNotFound(err) {
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	var api *tribe.APIError
	if errors.As(err, &api) && api.StatusCode == http.StatusBadRequest {
		return fmt.Errorf("%w: %v", ErrRejected, err)
	}
	return err
}

func lookups(in []tribe.Lookup) []Lookup {
	out := make([]Lookup, 0, len(in))
	for _, l := range in {
		x := Lookup{ID: l.ID, Code: l.Code, Name: l.Name}
		if l.Percentage.Valid {
			d := l.Percentage.Decimal
			x.Percentage = &d
		}
		out = append(out, x)
	}
	return out
}

func (m crm) Lookups(ctx context.Context) (CRMLookups, error) {
	units, err := m.c.Units(ctx)
	if err != nil {
		return CRMLookups{}, fmt.Errorf("read Tribe units: %w", tribeError(err))
	}
	vat, err := m.c.VatGroups(ctx)
	if err != nil {
		return CRMLookups{}, fmt.Errorf("read Tribe VAT groups: %w", tribeError(err))
	}
	groups, err := m.c.ProductGroups(ctx)
	if err != nil {
		return CRMLookups{}, fmt.Errorf("read Tribe product groups: %w", tribeError(err))
	}
	return CRMLookups{Units: lookups(units), VATGroups: lookups(vat), ProductGroups: lookups(groups)}, nil
}

func (m crm) FindProduct(ctx context.Context, eboekhoudenID string) (string, error) {
	// No $select: the match is checked on the external ID field, which a select of ID alone
	// leaves out of the answer (and every lost create would then be made again).
	found, err := tribe.FindByExternalID[tribe.Product](ctx, m.c, tribe.SetProduct, eboekhoudenID, tribe.Q())
	if err != nil {
		return "", fmt.Errorf("find Tribe product %s: %w", eboekhoudenID, tribeError(err))
	}
	if len(found) == 0 {
		return "", ErrNotFound
	}
	return found[0].ID, nil
}

func ref(id string) *tribe.Ref {
	if id == "" {
		return nil
	}
	return tribe.Link(id)
}

// input gives the synchronised fields of p.
func input(p CRMProduct, eboekhoudenID string) tribe.ProductInput {
	name, code := p.Name, p.Code
	sales, _ := decimal.NewFromString(p.SalesPrice)
	purchase, _ := decimal.NewFromString(p.PurchasePrice)
	inactive, vatIncluded := !p.Active, p.VATIncluded
	return tribe.ProductInput{Name: &name, Code: &code, SalesPrice: &sales, PurchasePrice: &purchase,
		IsVatIncluded: &vatIncluded, IsInactive: &inactive, Unit: ref(p.UnitID), VatGroup: ref(p.VATGroupID),
		ExternalID: &eboekhoudenID}
}

func (m crm) CreateProduct(ctx context.Context, p CRMProduct, group, eboekhoudenID string) (string, error) {
	in := input(p, eboekhoudenID)
	editable := true
	in.IsPriceEditable, in.IsVatEditable, in.IsDescriptionEditable = &editable, &editable, &editable
	in.ProductGroup = ref(group)
	id, err := m.c.CreateProduct(ctx, in)
	return id, tribeError(err)
}

func (m crm) UpdateProduct(ctx context.Context, id string, p CRMProduct, eboekhoudenID string) error {
	return tribeError(m.c.UpdateProduct(ctx, id, input(p, eboekhoudenID)))
}
