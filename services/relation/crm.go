package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/koppel/koppel/pkg/tribe"
	"github.com/koppel/koppel/services/relation/record"
)

// crm implements CRM on the Tribe client.
type crm struct {
	c  *tribe.Client
	lk *tribeLookups
}

// tribeLookups are a tenant's look-ups, read once: country and address-type IDs and the own
// organisation that customer relationships hang from.
type tribeLookups struct {
	mu           sync.Mutex
	loaded       bool
	countries    map[string]string // ISO code -> ID
	addressTypes map[string]string // "Invoice", "Postal" -> ID
	own          string
}

func (l *tribeLookups) load(ctx context.Context, c *tribe.Client) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.loaded {
		return nil
	}
	countries, err := c.Countries(ctx)
	if err != nil {
		return fmt.Errorf("read countries: %w", err)
	}
	l.countries = map[string]string{}
	for _, x := range countries {
		l.countries[strings.ToUpper(x.Code)] = x.ID
	}
	types, err := c.AddressTypes(ctx)
	if err != nil {
		return fmt.Errorf("read address types: %w", err)
	}
	l.addressTypes = map[string]string{}
	for _, x := range types {
		l.addressTypes[x.Code] = x.ID
	}
	id, err := c.Identity(ctx)
	if err != nil {
		return fmt.Errorf("read own organisation: %w", err)
	}
	l.own, l.loaded = id.RelationID, true
	return nil
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

// personAbsent are the canonical fields Tribe does not keep on a person.
var personAbsent = []string{"website", "vat_number", "coc_number"}

func addressQuery() tribe.Query {
	return tribe.Q().Expand("InvoiceAddress", tribe.Q().Expand("Country")).Expand("PostalAddress", tribe.Q().Expand("Country"))
}

func (m crm) fromAddress(a *tribe.Address) record.Address {
	if a == nil {
		return record.Address{}
	}
	n := 0
	if a.HouseNumber != nil {
		n = int(*a.HouseNumber)
	}
	country := ""
	if a.Country != nil {
		country = a.Country.Code
	}
	return record.Address{Line: record.JoinStreetLine(a.Street, n, a.HouseNumberSuffix), PostalCode: a.Postalcode, City: a.City, Country: country}
}

func setOf(kind record.Kind) string {
	if kind == record.Person {
		return tribe.SetPerson
	}
	return tribe.SetOrganization
}

func customerSetOf(kind record.Kind) string {
	if kind == record.Person {
		return tribe.SetPersonCustomer
	}
	return tribe.SetOrgCustomer
}

func (m crm) read(ctx context.Context, kind record.Kind, id string) (CRMRelation, error) {
	var out CRMRelation
	switch kind {
	case record.Person:
		p, err := m.c.Person(ctx, id, addressQuery())
		if err != nil {
			return out, tribeError(err)
		}
		out = CRMRelation{ID: p.ID, Kind: kind, EBoekhoudenID: p.ExternalID, Relation: record.Relation{
			Kind: kind, FirstName: p.FirstName, MiddleName: p.MiddleName, LastName: p.LastName, Code: p.DebtorNumber,
			Phone: p.PhoneNumber, IBAN: p.IBAN, BIC: p.BIC,
			InvoiceAddress: m.fromAddress(p.InvoiceAddress), PostalAddress: m.fromAddress(p.PostalAddress), Absent: personAbsent}}
	default:
		o, err := m.c.Organization(ctx, id, addressQuery())
		if err != nil {
			return out, tribeError(err)
		}
		out = CRMRelation{ID: o.ID, Kind: kind, EBoekhoudenID: o.ExternalID, Relation: record.Relation{
			Kind: kind, Name: o.Name, Code: o.DebtorNumber, Phone: o.PhoneNumber, Website: o.Website,
			VATNumber: o.VATNumber, CoCNumber: o.ChamberOfCommerceNumber, IBAN: o.IBAN, BIC: o.BIC,
			InvoiceAddress: m.fromAddress(o.InvoiceAddress), PostalAddress: m.fromAddress(o.PostalAddress)}}
	}
	out.Relation = out.Relation.Normalize()
	return out, nil
}

func (m crm) GetRelation(ctx context.Context, kind record.Kind, id string) (CRMRelation, error) {
	cr, err := m.read(ctx, kind, id)
	if err != nil {
		return cr, err
	}
	field := "Organization/ID"
	if kind == record.Person {
		field = "Person/ID"
	}
	rels, err := tribe.Collect(m.c.Relationships(ctx, customerSetOf(kind), tribe.Q().Filter(tribe.Eq(field, tribe.GUID(id))).Select("ID").Top(1)))
	if err != nil {
		return cr, fmt.Errorf("read customer relationship: %w", tribeError(err))
	}
	cr.Customer = len(rels) > 0
	return cr, nil
}

func (m crm) FindRelation(ctx context.Context, kind record.Kind, ebID, code string) (CRMRelation, error) {
	set := setOf(kind)
	type idOnly struct {
		tribe.Meta
	}
	byExternal, err := tribe.FindByExternalID[idOnly](ctx, m.c, set, ebID, tribe.Q().Select("ID"))
	if err != nil {
		return CRMRelation{}, tribeError(err)
	}
	if len(byExternal) > 0 {
		return m.GetRelation(ctx, kind, byExternal[0].ID)
	}
	if code == "" {
		return CRMRelation{}, ErrNotFound
	}
	byCode, err := tribe.Collect(tribe.List[idOnly](ctx, m.c, set, tribe.Q().Filter(tribe.Eq("DebtorNumber", code)).Select("ID").Top(1)))
	if err != nil {
		return CRMRelation{}, tribeError(err)
	}
	if len(byCode) == 0 {
		return CRMRelation{}, ErrNotFound
	}
	return m.GetRelation(ctx, kind, byCode[0].ID)
}

func str(s string) *string { return &s }

func (m crm) orgInput(r record.Relation, ebID string) tribe.OrganizationInput {
	in := tribe.OrganizationInput{Name: str(r.Name), DebtorNumber: str(r.Code), PhoneNumber: str(r.Phone), Website: str(r.Website),
		VATNumber: str(r.VATNumber), ChamberOfCommerceNumber: str(r.CoCNumber), IBAN: str(r.IBAN), BIC: str(r.BIC)}
	if ebID != "" {
		in.ExternalID = str(ebID)
	}
	return in
}

func (m crm) personInput(r record.Relation, ebID string) tribe.PersonInput {
	first, middle, last := r.FirstName, r.MiddleName, r.LastName
	if last == "" {
		first, middle, last = record.SplitPersonName(r.Name)
	}
	in := tribe.PersonInput{FirstName: str(first), MiddleName: str(middle), LastName: str(last), DebtorNumber: str(r.Code),
		PhoneNumber: str(r.Phone), IBAN: str(r.IBAN), BIC: str(r.BIC)}
	if ebID != "" {
		in.ExternalID = str(ebID)
	}
	return in
}

func (m crm) CreateCustomer(ctx context.Context, r record.Relation, ebID string) (string, error) {
	if err := m.lk.load(ctx, m.c); err != nil {
		return "", err
	}
	r = r.Normalize()
	in := tribe.RelationshipInput{Relation: &tribe.Ref{ID: m.lk.own}}
	if r.Kind == record.Person {
		p := m.personInput(r, ebID)
		in.NewPerson = &p
	} else {
		o := m.orgInput(r, ebID)
		in.NewOrganization = &o
	}
	set := customerSetOf(r.Kind)
	relID, err := m.c.CreateRelationship(ctx, set, in)
	if err != nil {
		return "", tribeError(err)
	}
	nav := "Organization"
	if r.Kind == record.Person {
		nav = "Person"
	}
	rel, err := m.c.Relationship(ctx, set, relID, tribe.Q().Expand(nav))
	if err != nil {
		return "", fmt.Errorf("read the new customer relationship: %w", tribeError(err))
	}
	id := ""
	if rel.Organization != nil {
		id = rel.Organization.ID
	} else if rel.Person != nil {
		id = rel.Person.ID
	}
	if id == "" {
		return "", errors.New("the new customer relationship has no relation")
	}
	if err := m.writeAddresses(ctx, r.Kind, id, r, nil, nil); err != nil {
		return id, err
	}
	return id, nil
}

func (m crm) UpdateRelation(ctx context.Context, kind record.Kind, id string, r record.Relation, ebID string) error {
	r = r.Normalize()
	var err error
	var invoice, postal *tribe.Address
	if kind == record.Person {
		p, gerr := m.c.Person(ctx, id, addressQuery())
		if gerr != nil {
			return tribeError(gerr)
		}
		invoice, postal = p.InvoiceAddress, p.PostalAddress
		err = m.c.UpdatePerson(ctx, id, m.personInput(r, ebID))
	} else {
		o, gerr := m.c.Organization(ctx, id, addressQuery())
		if gerr != nil {
			return tribeError(gerr)
		}
		invoice, postal = o.InvoiceAddress, o.PostalAddress
		err = m.c.UpdateOrganization(ctx, id, m.orgInput(r, ebID))
	}
	if err != nil {
		return tribeError(err)
	}
	return m.writeAddresses(ctx, kind, id, r, invoice, postal)
}

// writeAddresses brings the invoice and postal addresses of a relation to r's, creating them
// when missing. The visit address is never touched.
func (m crm) writeAddresses(ctx context.Context, kind record.Kind, id string, r record.Relation, invoice, postal *tribe.Address) error {
	if err := m.lk.load(ctx, m.c); err != nil {
		return err
	}
	for _, a := range []struct {
		nav, typ string
		want     record.Address
		have     *tribe.Address
	}{{"InvoiceAddress", "Invoice", r.InvoiceAddress, invoice}, {"PostalAddress", "Postal", r.PostalAddress, postal}} {
		if a.want == (record.Address{}) || (a.have != nil && m.fromAddress(a.have) == a.want.Normalize()) {
			continue
		}
		in := m.addressInput(a.want, a.typ)
		if a.have != nil {
			if err := m.c.UpdateAddress(ctx, a.have.ID, in); err != nil {
				return fmt.Errorf("update %s: %w", a.nav, tribeError(err))
			}
			continue
		}
		if kind == record.Person {
			in.Person = &tribe.Ref{ID: id}
		} else {
			in.Organization = &tribe.Ref{ID: id}
		}
		addrID, err := m.c.CreateAddress(ctx, in)
		if err != nil {
			return fmt.Errorf("create %s: %w", a.nav, tribeError(err))
		}
		link := tribe.Fields{a.nav: tribe.Ref{ID: addrID}}
		if err := m.c.Update(ctx, setOf(kind), id, link); err != nil {
			return fmt.Errorf("link %s: %w", a.nav, tribeError(err))
		}
	}
	return nil
}

func (m crm) addressInput(a record.Address, typ string) tribe.AddressInput {
	street, number, suffix := record.SplitStreetLine(a.Line)
	in := tribe.AddressInput{Street: str(street), HouseNumberSuffix: str(suffix), Postalcode: str(a.PostalCode), City: str(a.City)}
	if number > 0 {
		f := float64(number)
		in.HouseNumber = &f
	}
	if id, ok := m.lk.countries[strings.ToUpper(a.Country)]; ok {
		in.Country = &tribe.Ref{ID: id}
	}
	if id, ok := m.lk.addressTypes[typ]; ok {
		in.AddressType = &tribe.Ref{ID: id}
	}
	return in
}

func (m crm) DebtorNumberInUse(ctx context.Context, code string) (bool, error) {
	type idOnly struct {
		tribe.Meta
	}
	for _, set := range []string{tribe.SetOrganization, tribe.SetPerson} {
		found, err := tribe.Collect(tribe.List[idOnly](ctx, m.c, set, tribe.Q().Filter(tribe.Eq("DebtorNumber", code)).Select("ID").Top(1)))
		if err != nil {
			return false, tribeError(err)
		}
		if len(found) > 0 {
			return true, nil
		}
	}
	return false, nil
}

func (m crm) CustomerOf(ctx context.Context, kind record.Kind, relationshipID string) (string, error) {
	nav := "Organization"
	if kind == record.Person {
		nav = "Person"
	}
	rel, err := m.c.Relationship(ctx, customerSetOf(kind), relationshipID, tribe.Q().Expand(nav, tribe.Q().Select("ID")))
	if err != nil {
		return "", tribeError(err)
	}
	switch {
	case rel.Organization != nil && rel.Organization.ID != "":
		return rel.Organization.ID, nil
	case rel.Person != nil && rel.Person.ID != "":
		return rel.Person.ID, nil
	}
	return "", ErrNotFound
}
