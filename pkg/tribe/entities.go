package tribe

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"time"

	"github.com/shopspring/decimal"
)

// Entity sets koppel uses (underscored names; _Type uses dots).
const (
	SetOrganization   = "Relation_Organization"
	SetPerson         = "Relation_Person"
	SetOrgCustomer    = "Relationship_Organization_CommercialRelationship_Customer"
	SetPersonCustomer = "Relationship_Person_CommercialRelationship_Customer"
	SetOrgSupplier    = "Relationship_Organization_Supplier"
	SetContact        = "Relationship_Person_Contact_Standard"
	SetEmployee       = "Relationship_Person_Contact_Employee"
	SetIdentity       = "Relationship_Organization_Identity"
	SetAddress        = "Address"
	SetProduct        = "Product"
	SetProductLine    = "ProductLine"
	SetInvoice        = "Activity_Invoice"
	SetInvoicePhase   = "Datastore_Phase_ActivityInvoice"
	SetCountry        = "Datastore_Country"
	SetAddressType    = "Datastore_AdressType" // sic
)

// Meta holds the fields every entity has. Unset fields arrive as null and decode to zero values.
type Meta struct {
	ID               string    `json:"ID"`
	Type             string    `json:"_Type"`
	DisplayName      string    `json:"_Name"`
	CreationDate     time.Time `json:"CreationDate"`
	LastMutationDate time.Time `json:"LastMutationDate"`
	IsActive         bool      `json:"IsActive"`
}

// Lookup is a datastore row: phases, countries, address types, units, VAT groups, ledger
// accounts, product groups.
type Lookup struct {
	Meta
	Code string `json:"Code"`
	Name string `json:"Name"`
	// Percentage is a VAT group's rate (field name UNCONFIRMED).
	Percentage decimal.NullDecimal `json:"Percentage"`
}

// Address is an Address record.
type Address struct {
	Meta
	Street            string   `json:"Street"`
	HouseNumber       *float64 `json:"HouseNumber"` // an Edm.Double in Tribe
	HouseNumberSuffix string   `json:"HouseNumberSuffix"`
	Extra             string   `json:"Extra"`
	Postalcode        string   `json:"Postalcode"`
	City              string   `json:"City"`
	Country           *Lookup  `json:"Country"`
	AddressType       *Lookup  `json:"AddressType"`
	Relation          *Meta    `json:"Relation"`
	Organization      *Meta    `json:"Organization"`
	Person            *Meta    `json:"Person"`
}

// relationFields are shared by organisations and persons.
type relationFields struct {
	Number          *int64    `json:"Number"`
	DebtorNumber    string    `json:"DebtorNumber"`
	CreditorNumber  string    `json:"CreditorNumber"`
	IBAN            string    `json:"IBAN"`
	BIC             string    `json:"BIC"`
	BankName        string    `json:"BankName"`
	EmailAddress    string    `json:"EmailAddress"`
	PhoneNumber     string    `json:"PhoneNumber"`
	VisitingAddress *Address  `json:"VisitingAddress"`
	PostalAddress   *Address  `json:"PostalAddress"`
	InvoiceAddress  *Address  `json:"InvoiceAddress"`
	Addresses       []Address `json:"Addresses"`
	// ExternalID is the e-Boekhouden ID stored on the record (Config.ExternalIDField).
	ExternalID string `json:"-"`
}

func (r *relationFields) setExtras(cfg *Config, m map[string]json.RawMessage) {
	r.ExternalID = rawString(m, cfg.ExternalIDField)
}

// Organization is a Relation_Organization.
type Organization struct {
	Meta
	relationFields
	Name                    string `json:"Name"`
	FinancialEmailAddress   string `json:"FinancialEmailAddress"`
	Website                 string `json:"Website"`
	VATNumber               string `json:"VATNumber"`
	ChamberOfCommerceNumber string `json:"ChamberOfCommerceNumber"`
	ChamberOfCommerceName   string `json:"ChamberOfCommerceName"`
}

// Person is a Relation_Person. Name and SortName are computed by Tribe.
type Person struct {
	Meta
	relationFields
	FirstName         string `json:"FirstName"`
	MiddleName        string `json:"MiddleName"`
	LastName          string `json:"LastName"`
	Initials          string `json:"Initials"`
	Title             string `json:"Title"`
	Name              string `json:"Name"`
	SortName          string `json:"SortName"`
	MobilePhoneNumber string `json:"MobilePhoneNumber"`
}

// KeyRow is a relation's keys, as a listing for matching selects them (ID, debtor and creditor
// number, the external ID).
type KeyRow struct {
	Meta
	DebtorNumber   string `json:"DebtorNumber"`
	CreditorNumber string `json:"CreditorNumber"`
	ExternalID     string `json:"-"`
}

func (r *KeyRow) setExtras(cfg *Config, m map[string]json.RawMessage) {
	r.ExternalID = rawString(m, cfg.ExternalIDField)
}

// ExternalIDField is the field that holds the e-Boekhouden ID on Tribe records.
func (c *Client) ExternalIDField() string { return c.cfg.ExternalIDField }

// Relationship is any relationship record (customer, supplier, contact, employee, identity):
// Relation is the parent (usually the own organisation), Organization or Person the child.
type Relationship struct {
	Meta
	Name              string        `json:"Name"`
	IsFormer          bool          `json:"IsFormer"`
	PaymentTermInDays *int          `json:"PaymentTermInDays"`
	Department        string        `json:"Department"`
	Relation          *Organization `json:"Relation"`
	Organization      *Organization `json:"Organization"`
	Person            *Person       `json:"Person"`
	AccountManager    *Relationship `json:"AccountManager"`
	ExternalID        string        `json:"-"`
}

func (r *Relationship) setExtras(cfg *Config, m map[string]json.RawMessage) {
	r.ExternalID = rawString(m, cfg.ExternalIDField)
}

// Product is a Product. Prices are exact decimals.
type Product struct {
	Meta
	Name                  string          `json:"Name"`
	Code                  string          `json:"Code"`
	Description           string          `json:"Description"`
	SalesPrice            decimal.Decimal `json:"SalesPrice"`
	PurchasePrice         decimal.Decimal `json:"PurchasePrice"`
	IsVatIncluded         bool            `json:"IsVatIncluded"`
	IsInactive            bool            `json:"IsInactive"`
	IsPriceEditable       bool            `json:"IsPriceEditable"`
	IsVatEditable         bool            `json:"IsVatEditable"`
	IsDescriptionEditable bool            `json:"IsDescriptionEditable"`
	Unit                  *Lookup         `json:"Unit"`
	VatGroup              *Lookup         `json:"VatGroup"`
	ProductGroup          *Lookup         `json:"ProductGroup"`
	GeneralLedgerAccount  *Lookup         `json:"GeneralLedgerAccount"`
	ExternalID            string          `json:"-"`
}

func (p *Product) setExtras(cfg *Config, m map[string]json.RawMessage) {
	p.ExternalID = rawString(m, cfg.ExternalIDField)
}

// ProductLine is a line of an activity (invoice).
type ProductLine struct {
	Meta
	Description        string          `json:"Description"`
	Quantity           decimal.Decimal `json:"Quantity"`
	Price              decimal.Decimal `json:"Price"`
	DiscountPercentage decimal.Decimal `json:"DiscountPercentage"`
	VatPercentage      decimal.Decimal `json:"VatPercentage"`
	VatAmount          decimal.Decimal `json:"VatAmount"`
	Total              decimal.Decimal `json:"Total"`
	TotalExcludingVat  decimal.Decimal `json:"TotalExcludingVat"`
	TotalIncludingVat  decimal.Decimal `json:"TotalIncludingVat"`
	Currency           string          `json:"Currency"`
	Product            *Product        `json:"Product"`
	VatGroup           *Lookup         `json:"VatGroup"`
}

// Invoice is an Activity_Invoice. Number and InvoiceDate are assigned when it becomes Sent.
type Invoice struct {
	Meta
	Subject            string          `json:"Subject"`
	Number             string          `json:"Number"`
	Amount             decimal.Decimal `json:"Amount"`
	Currency           string          `json:"Currency"`
	IsVatIncluded      bool            `json:"IsVatIncluded"`
	DiscountPercentage decimal.Decimal `json:"DiscountPercentage"`
	Phase              *Lookup         `json:"Phase"`
	Relationship       *Relationship   `json:"Relationship"`
	Contact            *Relationship   `json:"Contact"`
	ProductLines       []ProductLine   `json:"ProductLines"`
	// InvoiceDate and DueDate come from the configured field names; nil when unset.
	InvoiceDate *time.Time `json:"-"`
	DueDate     *time.Time `json:"-"`
	ExternalID  string     `json:"-"`
}

func (i *Invoice) setExtras(cfg *Config, m map[string]json.RawMessage) {
	i.ExternalID = rawString(m, cfg.ExternalIDField)
	i.InvoiceDate = rawTime(m, cfg.InvoiceDateField)
	i.DueDate = rawTime(m, cfg.DueDateField)
}

// Inputs: nil fields are left out of the body (unchanged on update). Extra carries fields the
// struct lacks (custom fields).

// OrganizationInput creates or changes an organisation.
type OrganizationInput struct {
	Name, PhoneNumber, EmailAddress, FinancialEmailAddress, Website, VATNumber *string
	ChamberOfCommerceNumber, ChamberOfCommerceName, IBAN, BIC, BankName        *string
	DebtorNumber, CreditorNumber                                               *string
	VisitingAddress, PostalAddress, InvoiceAddress                             *Ref
	// NewPostalAddress and NewInvoiceAddress create the address in the same call (deep insert);
	// set either the Ref or the New one of a kind, not both.
	NewPostalAddress  *AddressInput `tribe:"PostalAddress"`
	NewInvoiceAddress *AddressInput `tribe:"InvoiceAddress"`
	ExternalID        *string       `tribe:"$external"`
	Extra             Fields
}

// PersonInput creates or changes a person. LastName is required on create.
type PersonInput struct {
	FirstName, MiddleName, LastName, Initials, Title, Suffix *string
	EmailAddress, PhoneNumber, MobilePhoneNumber, IBAN, BIC  *string
	DebtorNumber, CreditorNumber                             *string
	VisitingAddress, PostalAddress, InvoiceAddress           *Ref
	// NewPostalAddress and NewInvoiceAddress create the address in the same call (deep insert).
	NewPostalAddress  *AddressInput `tribe:"PostalAddress"`
	NewInvoiceAddress *AddressInput `tribe:"InvoiceAddress"`
	ExternalID        *string       `tribe:"$external"`
	Extra             Fields
}

// RelationshipInput creates or changes a relationship. Link an existing child with Organization
// or Person, or create it in the same call with NewOrganization or NewPerson (deep insert).
type RelationshipInput struct {
	Relation, Organization, Person, AccountManager *Ref
	NewOrganization                                *OrganizationInput `tribe:"Organization"`
	NewPerson                                      *PersonInput       `tribe:"Person"`
	Name                                           *string
	PaymentTermInDays                              *int
	IsFormer                                       *bool
	Department                                     *string
	ExternalID                                     *string `tribe:"$external"`
	Extra                                          Fields
}

// AddressInput creates or changes an address.
type AddressInput struct {
	Street, HouseNumberSuffix, Extra, Postalcode, City *string
	HouseNumber                                        *float64
	Country, AddressType                               *Ref
	Relation, Organization, Person                     *Ref
	Fields                                             Fields
}

// ProductInput creates or changes a product.
type ProductInput struct {
	Name, Code, Description                               *string
	SalesPrice, PurchasePrice                             *decimal.Decimal
	IsVatIncluded, IsInactive                             *bool
	IsPriceEditable, IsVatEditable, IsDescriptionEditable *bool
	Unit, VatGroup, ProductGroup, GeneralLedgerAccount    *Ref
	ExternalID                                            *string `tribe:"$external"`
	Extra                                                 Fields
}

// ProductLineInput creates or changes a product line; Activity links it to its invoice.
type ProductLineInput struct {
	Description                                        *string
	Quantity, Price, DiscountPercentage, VatPercentage *decimal.Decimal
	Product, Activity, VatGroup                        *Ref
	Extra                                              Fields
}

// InvoiceInput creates or changes a (draft) invoice; ProductLines are created with it.
type InvoiceInput struct {
	Subject, Currency            *string
	IsVatIncluded                *bool
	DiscountPercentage           *decimal.Decimal
	Relationship, Contact, Phase *Ref
	InvoiceDate                  *time.Time `tribe:"$invoiceDate"`
	DueDate                      *time.Time `tribe:"$dueDate"`
	ProductLines                 []ProductLineInput
	ExternalID                   *string `tribe:"$external"`
	Extra                        Fields
}

// Invoice phase codes (Datastore_Phase_ActivityInvoice; C1 filters on 'Sent' and 'Paid', the
// exact strings are UNCONFIRMED).
const (
	PhaseDraft = "Draft"
	PhaseSent  = "Sent"
	PhasePaid  = "Paid"
)

// Typed access. Each set has a list iterator, a get by ID, and writes.

// Organizations lists organisations.
func (c *Client) Organizations(ctx context.Context, q Query) iter.Seq2[Organization, error] {
	return List[Organization](ctx, c, SetOrganization, q)
}

// Organization reads one organisation.
func (c *Client) Organization(ctx context.Context, id string, q Query) (Organization, error) {
	return Get[Organization](ctx, c, SetOrganization, id, q)
}

// CreateOrganization creates an organisation and returns its ID.
func (c *Client) CreateOrganization(ctx context.Context, in OrganizationInput) (string, error) {
	return c.Create(ctx, SetOrganization, in)
}

// UpdateOrganization changes the given fields of an organisation.
func (c *Client) UpdateOrganization(ctx context.Context, id string, in OrganizationInput) error {
	return c.Update(ctx, SetOrganization, id, in)
}

// Persons lists persons.
func (c *Client) Persons(ctx context.Context, q Query) iter.Seq2[Person, error] {
	return List[Person](ctx, c, SetPerson, q)
}

// Person reads one person.
func (c *Client) Person(ctx context.Context, id string, q Query) (Person, error) {
	return Get[Person](ctx, c, SetPerson, id, q)
}

// CreatePerson creates a person and returns its ID.
func (c *Client) CreatePerson(ctx context.Context, in PersonInput) (string, error) {
	return c.Create(ctx, SetPerson, in)
}

// UpdatePerson changes the given fields of a person.
func (c *Client) UpdatePerson(ctx context.Context, id string, in PersonInput) error {
	return c.Update(ctx, SetPerson, id, in)
}

// Relationships lists the relationships of set (SetOrgCustomer, SetPersonCustomer, SetOrgSupplier,
// SetContact, or a base set such as "Relationship_Organization_CommercialRelationship").
func (c *Client) Relationships(ctx context.Context, set string, q Query) iter.Seq2[Relationship, error] {
	return List[Relationship](ctx, c, set, q)
}

// Relationship reads one relationship of set.
func (c *Client) Relationship(ctx context.Context, set, id string, q Query) (Relationship, error) {
	return Get[Relationship](ctx, c, set, id, q)
}

// CreateRelationship creates a relationship of set and returns it as Tribe answered. After a
// deep insert (NewOrganization, NewPerson) OData 4.0 has the answer expanded to the level of the
// request, so Organization or Person carries the new relation's ID; whether Tribe does so is
// UNCONFIRMED, so either may be nil, and the caller reads the relationship when it needs them.
func (c *Client) CreateRelationship(ctx context.Context, set string, in RelationshipInput) (Relationship, error) {
	endpoint := "POST " + odataPath + set
	body, err := c.write(ctx, http.MethodPost, set, "", in, endpoint)
	if err != nil {
		return Relationship{}, err
	}
	r, err := decodeEntity[Relationship](&c.cfg, body)
	if err != nil || !reGUID.MatchString(r.ID) {
		return Relationship{}, fmt.Errorf("%s: the answer carries no ID", endpoint)
	}
	return r, nil
}

// UpdateRelationship changes the given fields of a relationship.
func (c *Client) UpdateRelationship(ctx context.Context, set, id string, in RelationshipInput) error {
	return c.Update(ctx, set, id, in)
}

// Addresses lists addresses.
func (c *Client) Addresses(ctx context.Context, q Query) iter.Seq2[Address, error] {
	return List[Address](ctx, c, SetAddress, q)
}

// CreateAddress creates an address and returns its ID.
func (c *Client) CreateAddress(ctx context.Context, in AddressInput) (string, error) {
	return c.Create(ctx, SetAddress, in)
}

// UpdateAddress changes the given fields of an address.
func (c *Client) UpdateAddress(ctx context.Context, id string, in AddressInput) error {
	return c.Update(ctx, SetAddress, id, in)
}

// Products lists products.
func (c *Client) Products(ctx context.Context, q Query) iter.Seq2[Product, error] {
	return List[Product](ctx, c, SetProduct, q)
}

// Product reads one product.
func (c *Client) Product(ctx context.Context, id string, q Query) (Product, error) {
	return Get[Product](ctx, c, SetProduct, id, q)
}

// CreateProduct creates a product and returns its ID.
func (c *Client) CreateProduct(ctx context.Context, in ProductInput) (string, error) {
	return c.Create(ctx, SetProduct, in)
}

// UpdateProduct changes the given fields of a product.
func (c *Client) UpdateProduct(ctx context.Context, id string, in ProductInput) error {
	return c.Update(ctx, SetProduct, id, in)
}

// InvoiceQuery expands what an invoice push needs: phase, lines with their products, and the
// customer relationship with its organisation or person and their invoice addresses.
func InvoiceQuery() Query {
	addr := Q().Expand("InvoiceAddress", Q().Expand("Country"))
	return Q().Expand("Phase").
		Expand("ProductLines", Q().Expand("Product").Expand("VatGroup")).
		Expand("Relationship", Q().Expand("Organization", addr).Expand("Person", addr))
}

// Invoices lists invoices.
func (c *Client) Invoices(ctx context.Context, q Query) iter.Seq2[Invoice, error] {
	return List[Invoice](ctx, c, SetInvoice, q)
}

// Invoice reads one invoice.
func (c *Client) Invoice(ctx context.Context, id string, q Query) (Invoice, error) {
	return Get[Invoice](ctx, c, SetInvoice, id, q)
}

// CreateInvoice creates an invoice (Draft unless in.Phase says otherwise) and returns its ID.
func (c *Client) CreateInvoice(ctx context.Context, in InvoiceInput) (string, error) {
	return c.Create(ctx, SetInvoice, in)
}

// UpdateInvoice changes the given fields of a draft invoice; Tribe refuses changes to a Sent one.
func (c *Client) UpdateInvoice(ctx context.Context, id string, in InvoiceInput) error {
	return c.Update(ctx, SetInvoice, id, in)
}

// SetInvoicePhase moves an invoice to a phase: POST with the ID, as S17 documents.
func (c *Client) SetInvoicePhase(ctx context.Context, invoiceID, phaseID string) error {
	endpoint := "POST " + odataPath + SetInvoice + " (phase)"
	if !reGUID.MatchString(invoiceID) || !reGUID.MatchString(phaseID) {
		return fmt.Errorf("%s: IDs must be GUIDs", endpoint)
	}
	_, err := c.write(ctx, http.MethodPost, SetInvoice, invoiceID, Fields{"Phase": map[string]any{"ID": phaseID}}, endpoint)
	return err
}

// CreateProductLine creates a product line and returns its ID.
func (c *Client) CreateProductLine(ctx context.Context, in ProductLineInput) (string, error) {
	return c.Create(ctx, SetProductLine, in)
}

// Lookups reads a whole datastore set (they are small).
func (c *Client) Lookups(ctx context.Context, set string) ([]Lookup, error) {
	return Collect(List[Lookup](ctx, c, set, Q()))
}

// LookupSets returns the configured look-up set names.
func (c *Client) LookupSets() LookupSets { return c.cfg.Lookups }

// Phases reads the invoice phases (Draft, Sent, Paid).
func (c *Client) Phases(ctx context.Context) ([]Lookup, error) {
	return c.Lookups(ctx, SetInvoicePhase)
}

// PhaseByCode finds an invoice phase by its Code.
func (c *Client) PhaseByCode(ctx context.Context, code string) (Lookup, error) {
	phases, err := Collect(List[Lookup](ctx, c, SetInvoicePhase, Q().Filter(Eq("Code", code))))
	if err != nil {
		return Lookup{}, err
	}
	if len(phases) == 0 {
		return Lookup{}, fmt.Errorf("phase by code: no invoice phase %q", code)
	}
	return phases[0], nil
}

// Countries, AddressTypes, Units, VatGroups, ProductGroups and GeneralLedgerAccounts read the
// look-ups koppel maps.
func (c *Client) Countries(ctx context.Context) ([]Lookup, error) { return c.Lookups(ctx, SetCountry) }
func (c *Client) AddressTypes(ctx context.Context) ([]Lookup, error) {
	return c.Lookups(ctx, SetAddressType)
}
func (c *Client) Units(ctx context.Context) ([]Lookup, error) {
	return c.Lookups(ctx, c.cfg.Lookups.Unit)
}
func (c *Client) VatGroups(ctx context.Context) ([]Lookup, error) {
	return c.Lookups(ctx, c.cfg.Lookups.VatGroup)
}
func (c *Client) ProductGroups(ctx context.Context) ([]Lookup, error) {
	return c.Lookups(ctx, c.cfg.Lookups.ProductGroup)
}
func (c *Client) GeneralLedgerAccounts(ctx context.Context) ([]Lookup, error) {
	return c.Lookups(ctx, c.cfg.Lookups.GeneralLedgerAccount)
}

// Identity is the environment's own organisation.
type Identity struct {
	Name string
	// RelationID is the own organisation: the parent (Relation) of customer and supplier
	// relationships.
	RelationID string
}

// Identity reads the own organisation (S6) and checks there is exactly one (as C5 does).
func (c *Client) Identity(ctx context.Context) (Identity, error) {
	rows, err := Collect(List[Relationship](ctx, c, SetIdentity, Q().Select("Name").Expand("Relation", Q().Select("ID"))))
	if err != nil {
		return Identity{}, err
	}
	ids := map[string]bool{}
	var out Identity
	for _, r := range rows {
		if r.Relation != nil {
			ids[r.Relation.ID] = true
			out = Identity{Name: r.Name, RelationID: r.Relation.ID}
		}
	}
	if len(ids) != 1 {
		return Identity{}, fmt.Errorf("identity: expected one own organisation, found %d", len(ids))
	}
	return out, nil
}

// CurrentEmployee reads the (virtual) employee the credentials act as, with its Person.
func (c *Client) CurrentEmployee(ctx context.Context) (Relationship, error) {
	endpoint := "GET " + odataPath + "GetCurrentEmployee()"
	body, _, err := c.do(ctx, call{method: http.MethodGet, path: odataPath + "GetCurrentEmployee()", query: encodeParams(Q().Expand("Person").params(0, 0, false)), endpoint: endpoint})
	if err != nil {
		return Relationship{}, err
	}
	r, err := decodeEntity[Relationship](&c.cfg, body)
	if err != nil {
		return Relationship{}, fmt.Errorf("%s: decode: %w", endpoint, err)
	}
	return r, nil
}
