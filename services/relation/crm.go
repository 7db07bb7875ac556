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
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	var api *tribe.APIError
	if errors.As(err, &api) && api.StatusCode == http.StatusBadRequest {
		return fmt.Errorf("%w: %w", ErrRejected, err)
	}
	return err
}

// personAbsent are the canonical fields Tribe does not keep on a person.
var personAbsent = []string{"website", "vat_number", "coc_number"}

func addressQuery() tribe.Query {
	return tribe.Q().Expand("InvoiceAddress", tribe.Q().Expand("Country")).Expand("PostalAddress", tribe.Q().Expand("Country"))
}

func fromAddress(a *tribe.Address) record.Address {
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
	return record.Address{Line: record.JoinStreetLine(a.Street, n, a.HouseNumberSuffix), PostalCode: a.Postalcode, City: a.City, Country: country}.Normalize()
}

func addressID(a *tribe.Address) string {
	if a == nil {
		return ""
	}
	return a.ID
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

func childNav(kind record.Kind) string {
	if kind == record.Person {
		return "Person"
	}
	return "Organization"
}

func fromPerson(p *tribe.Person) CRMRelation {
	return CRMRelation{ID: p.ID, Kind: record.Person, EBoekhoudenID: p.ExternalID, DebtorNumber: p.DebtorNumber, CreditorNumber: p.CreditorNumber,
		Relation: record.Relation{Kind: record.Person, FirstName: p.FirstName, MiddleName: p.MiddleName, LastName: p.LastName, Code: p.DebtorNumber,
			Phone: p.PhoneNumber, IBAN: p.IBAN, BIC: p.BIC,
			InvoiceAddress: fromAddress(p.InvoiceAddress), PostalAddress: fromAddress(p.PostalAddress), Absent: personAbsent}.Normalize(),
		invoiceAddressID: addressID(p.InvoiceAddress), postalAddressID: addressID(p.PostalAddress)}
}

func fromOrganization(o *tribe.Organization) CRMRelation {
	return CRMRelation{ID: o.ID, Kind: record.Organization, EBoekhoudenID: o.ExternalID, DebtorNumber: o.DebtorNumber, CreditorNumber: o.CreditorNumber,
		Relation: record.Relation{Kind: record.Organization, Name: o.Name, Code: o.DebtorNumber, Phone: o.PhoneNumber, Website: o.Website,
			VATNumber: o.VATNumber, CoCNumber: o.ChamberOfCommerceNumber, IBAN: o.IBAN, BIC: o.BIC,
			InvoiceAddress: fromAddress(o.InvoiceAddress), PostalAddress: fromAddress(o.PostalAddress)}.Normalize(),
		invoiceAddressID: addressID(o.InvoiceAddress), postalAddressID: addressID(o.PostalAddress)}
}

func (m crm) GetRelation(ctx context.Context, kind record.Kind, id string) (CRMRelation, error) {
	if kind == record.Person {
		p, err := m.c.Person(ctx, id, addressQuery())
		if err != nil {
			return CRMRelation{}, tribeError(err)
		}
		return fromPerson(&p), nil
	}
	o, err := m.c.Organization(ctx, id, addressQuery())
	if err != nil {
		return CRMRelation{}, tribeError(err)
	}
	return fromOrganization(&o), nil
}

// relationsPerQuery bounds the IDs of one GetRelations query, keeping its URL short.
const relationsPerQuery = 40

func (m crm) GetRelations(ctx context.Context, kind record.Kind, ids []string) ([]CRMRelation, error) {
	var out []CRMRelation
	for start := 0; start < len(ids); start += relationsPerQuery {
		var any []tribe.Filter
		for _, id := range ids[start:min(start+relationsPerQuery, len(ids))] {
			any = append(any, tribe.Eq("ID", tribe.GUID(id)))
		}
		q := addressQuery().Filter(tribe.Or(any...))
		if kind == record.Person {
			persons, err := tribe.Collect(m.c.Persons(ctx, q))
			if err != nil {
				return nil, tribeError(err)
			}
			for i := range persons {
				out = append(out, fromPerson(&persons[i]))
			}
			continue
		}
		orgs, err := tribe.Collect(m.c.Organizations(ctx, q))
		if err != nil {
			return nil, tribeError(err)
		}
		for i := range orgs {
			out = append(out, fromOrganization(&orgs[i]))
		}
	}
	return out, nil
}

func (m crm) IsCustomer(ctx context.Context, kind record.Kind, id string) (bool, error) {
	rels, err := tribe.Collect(m.c.Relationships(ctx, customerSetOf(kind),
		tribe.Q().Filter(tribe.Eq(childNav(kind)+"/ID", tribe.GUID(id))).Select("ID").Top(1)))
	if err != nil {
		return false, fmt.Errorf("read customer relationship: %w", tribeError(err))
	}
	return len(rels) > 0, nil
}

func (m crm) CustomerOf(ctx context.Context, kind record.Kind, relationshipID string) (CRMRelation, error) {
	rel, err := m.c.Relationship(ctx, customerSetOf(kind), relationshipID, tribe.Q().Select("ID").Expand(childNav(kind), addressQuery()))
	if err != nil {
		return CRMRelation{}, tribeError(err)
	}
	switch {
	case kind == record.Person && rel.Person != nil && rel.Person.ID != "":
		return fromPerson(rel.Person), nil
	case kind != record.Person && rel.Organization != nil && rel.Organization.ID != "":
		return fromOrganization(rel.Organization), nil
	}
	return CRMRelation{}, ErrNotFound
}

func (m crm) candidates(ctx context.Context, kind record.Kind, q tribe.Query) ([]record.Candidate, error) {
	q = q.Select("ID", "DebtorNumber", "CreditorNumber", m.c.ExternalIDField())
	var out []record.Candidate
	for row, err := range tribe.List[tribe.KeyRow](ctx, m.c, setOf(kind), q) {
		if err != nil {
			return nil, tribeError(err)
		}
		out = append(out, record.Candidate{ID: row.ID, EBoekhoudenID: row.ExternalID, DebtorNumber: row.DebtorNumber, CreditorNumber: row.CreditorNumber})
	}
	return out, nil
}

func (m crm) Candidates(ctx context.Context, kind record.Kind) ([]record.Candidate, error) {
	return m.candidates(ctx, kind, tribe.Q().Bulk())
}

func (m crm) FindCandidates(ctx context.Context, kind record.Kind, ebID, code string) ([]record.Candidate, error) {
	var any []tribe.Filter
	if ebID != "" {
		// contains, as the external ID may not support eq (UNCONFIRMED); Match keeps exact ones.
		any = append(any, tribe.Contains(m.c.ExternalIDField(), ebID))
	}
	if code != "" {
		any = append(any, tribe.Eq("DebtorNumber", code), tribe.Eq("CreditorNumber", code))
	}
	if len(any) == 0 {
		return nil, nil
	}
	return m.candidates(ctx, kind, tribe.Q().Filter(tribe.Or(any...)))
}

func str(s string) *string { return &s }

// fieldSet says which canonical fields an input carries; nil carries every one (a create).
type fieldSet map[string]bool

func (f fieldSet) has(name string) bool { return f == nil || f[name] }

func (m crm) orgInput(r record.Relation, field record.CodeField, ebID string, only fieldSet) tribe.OrganizationInput {
	var in tribe.OrganizationInput
	set := func(name, v string, dst **string) {
		if only.has(name) {
			*dst = str(v)
		}
	}
	set("name", r.Name, &in.Name)
	set("phone", r.Phone, &in.PhoneNumber)
	set("website", r.Website, &in.Website)
	set("vat_number", r.VATNumber, &in.VATNumber)
	set("coc_number", r.CoCNumber, &in.ChamberOfCommerceNumber)
	set("iban", r.IBAN, &in.IBAN)
	set("bic", r.BIC, &in.BIC)
	if field == record.CreditorNumber {
		set("code", r.Code, &in.CreditorNumber)
	} else {
		set("code", r.Code, &in.DebtorNumber)
	}
	if ebID != "" {
		in.ExternalID = str(ebID)
	}
	return in
}

func (m crm) personInput(r record.Relation, field record.CodeField, ebID string, only fieldSet) tribe.PersonInput {
	first, middle, last := r.FirstName, r.MiddleName, r.LastName
	if last == "" {
		first, middle, last = record.SplitPersonName(r.Name)
	}
	var in tribe.PersonInput
	set := func(name, v string, dst **string) {
		if only.has(name) {
			*dst = str(v)
		}
	}
	if only.has("name") || only.has("first_name") || only.has("middle_name") || only.has("last_name") {
		in.FirstName, in.MiddleName, in.LastName = str(first), str(middle), str(last)
	}
	set("phone", r.Phone, &in.PhoneNumber)
	set("iban", r.IBAN, &in.IBAN)
	set("bic", r.BIC, &in.BIC)
	if field == record.CreditorNumber {
		set("code", r.Code, &in.CreditorNumber)
	} else {
		set("code", r.Code, &in.DebtorNumber)
	}
	if ebID != "" {
		in.ExternalID = str(ebID)
	}
	return in
}

// newAddress is the deep insert of an address, or nil for an empty one.
func (m crm) newAddress(a record.Address, typ string) *tribe.AddressInput {
	if a.Normalize() == (record.Address{}) {
		return nil
	}
	in := m.addressInput(a, typ)
	return &in
}

func (m crm) CreateCustomer(ctx context.Context, r record.Relation, ebID string) (Created, error) {
	if err := m.lk.load(ctx, m.c); err != nil {
		return Created{}, err
	}
	r = r.Normalize()
	in := tribe.RelationshipInput{Relation: &tribe.Ref{ID: m.lk.own}}
	invoice, postal := m.newAddress(r.InvoiceAddress, "Invoice"), m.newAddress(r.PostalAddress, "Postal")
	if r.Kind == record.Person {
		p := m.personInput(r, record.DebtorNumber, ebID, nil)
		p.NewInvoiceAddress, p.NewPostalAddress = invoice, postal
		in.NewPerson = &p
	} else {
		o := m.orgInput(r, record.DebtorNumber, ebID, nil)
		o.NewInvoiceAddress, o.NewPostalAddress = invoice, postal
		in.NewOrganization = &o
	}
	set := customerSetOf(r.Kind)
	rel, err := m.c.CreateRelationship(ctx, set, in)
	if err != nil {
		return Created{}, tribeError(err)
	}
	out := Created{RelationshipID: rel.ID}
	if r.Kind == record.Person && rel.Person != nil {
		out.RelationID = rel.Person.ID
	} else if r.Kind != record.Person && rel.Organization != nil {
		out.RelationID = rel.Organization.ID
	}
	if out.RelationID == "" {
		// Tribe answered with the relationship alone: ask it for its relation.
		got, err := m.c.Relationship(ctx, set, rel.ID, tribe.Q().Select("ID").Expand(childNav(r.Kind), tribe.Q().Select("ID")))
		if err != nil {
			return out, fmt.Errorf("read the new customer relationship: %w", tribeError(err))
		}
		if r.Kind == record.Person && got.Person != nil {
			out.RelationID = got.Person.ID
		} else if r.Kind != record.Person && got.Organization != nil {
			out.RelationID = got.Organization.ID
		}
	}
	if out.RelationID == "" {
		return out, errors.New("the new customer relationship has no relation")
	}
	return out, nil
}

func (m crm) UpdateRelation(ctx context.Context, cur CRMRelation, r record.Relation, field record.CodeField, ebID string) error {
	r = r.Normalize()
	addresses := []struct {
		nav, typ string
		id       string
		have     record.Address
		want     record.Address
	}{
		{"InvoiceAddress", "Invoice", cur.invoiceAddressID, cur.Relation.InvoiceAddress, r.InvoiceAddress},
		{"PostalAddress", "Postal", cur.postalAddressID, cur.Relation.PostalAddress, r.PostalAddress},
	}
	if err := m.lk.load(ctx, m.c); err != nil {
		return err
	}
	// New addresses go in with the relation (deep insert); existing ones are written field for
	// field, emptied fields included, so a cleared line or house number is cleared in Tribe too.
	var newInvoice, newPostal *tribe.AddressInput
	for _, a := range addresses {
		if a.have == a.want {
			continue
		}
		if a.id == "" {
			if a.nav == "InvoiceAddress" {
				newInvoice = m.newAddress(a.want, a.typ)
			} else {
				newPostal = m.newAddress(a.want, a.typ)
			}
			continue
		}
		if err := m.c.UpdateAddress(ctx, a.id, m.addressInput(a.want, a.typ)); err != nil {
			return fmt.Errorf("update %s: %w", a.nav, tribeError(err))
		}
	}
	// Only the fields that differ are written: a user's edit made since cur was read is never
	// overwritten with cur's value.
	curRec := cur.As(field)
	curRec.InvoiceAddress, curRec.PostalAddress = r.InvoiceAddress, r.PostalAddress
	changed := fieldSet{}
	for _, f := range record.Diff(curRec.FillFrom(r), r) {
		changed[f] = true
	}
	writeID := ebID
	if cur.EBoekhoudenID == ebID {
		writeID = ""
	}
	if len(changed) == 0 && writeID == "" && newInvoice == nil && newPostal == nil {
		return nil
	}
	var err error
	if cur.Kind == record.Person {
		in := m.personInput(r, field, writeID, changed)
		in.NewInvoiceAddress, in.NewPostalAddress = newInvoice, newPostal
		err = m.c.UpdatePerson(ctx, cur.ID, in)
	} else {
		in := m.orgInput(r, field, writeID, changed)
		in.NewInvoiceAddress, in.NewPostalAddress = newInvoice, newPostal
		err = m.c.UpdateOrganization(ctx, cur.ID, in)
	}
	return tribeError(err)
}

// addressInput is the whole address as Tribe keeps it: every field is sent, an empty one as
// null, so writing an address never leaves an old house number or country behind.
func (m crm) addressInput(a record.Address, typ string) tribe.AddressInput {
	a = a.Normalize()
	street, number, suffix := record.SplitStreetLine(a.Line)
	in := tribe.AddressInput{Fields: tribe.Fields{}}
	set := func(name, v string, dst **string) {
		if v == "" {
			in.Fields[name] = nil
			return
		}
		*dst = str(v)
	}
	set("Street", street, &in.Street)
	set("HouseNumberSuffix", suffix, &in.HouseNumberSuffix)
	set("Postalcode", a.PostalCode, &in.Postalcode)
	set("City", a.City, &in.City)
	if number > 0 {
		f := float64(number)
		in.HouseNumber = &f
	} else {
		in.Fields["HouseNumber"] = nil
	}
	if id, ok := m.lk.countries[strings.ToUpper(a.Country)]; ok {
		in.Country = &tribe.Ref{ID: id}
	} else {
		in.Fields["Country"] = nil
	}
	if id, ok := m.lk.addressTypes[typ]; ok {
		in.AddressType = &tribe.Ref{ID: id}
	}
	return in
}

func (m crm) DebtorNumberInUse(ctx context.Context, code string) (bool, error) {
	for _, set := range []string{tribe.SetOrganization, tribe.SetPerson} {
		found, err := tribe.Collect(tribe.List[tribe.Meta](ctx, m.c, set, tribe.Q().Filter(tribe.Eq("DebtorNumber", code)).Select("ID").Top(1)))
		if err != nil {
			return false, tribeError(err)
		}
		if len(found) > 0 {
			return true, nil
		}
	}
	return false, nil
}

var _ CRM = crm{}
