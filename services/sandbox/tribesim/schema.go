package tribesim

import "strings"

// Field kinds. The simulator checks written values against them, as the real (Olingo-based) server
// rejects a string where it expects a Double.
const (
	kString = 's'
	kNumber = 'n' // Edm.Double, kept exactly as written (json.Number)
	kInt    = 'i'
	kBool   = 'b'
	kTime   = 't' // Edm.DateTimeOffset as RFC 3339 text
)

// navDef is a single-valued navigation: a reference to one record of set Target (or of any set below
// it when Target is a base set).
type navDef struct{ Target string }

// collDef is a collection navigation, computed from the back references of Set named in Back.
type collDef struct {
	Set  string
	Back []string
}

// entityType describes one entity set.
type entityType struct {
	Set      string
	Type     string // dotted _Type
	Fields   map[string]byte
	Order    []string // field order, so every record carries every field (explicit nulls)
	Navs     map[string]navDef
	Colls    map[string]collDef
	Required []string
	// Computed fields are set by the server; written values are ignored.
	Computed map[string]bool
	Abstract bool // a base set: lists the records of every set below it, rejects POST
	ReadOnly bool // rejects writes (datastores, identity)
	NoDelete bool // rejects DELETE (employees)
}

func (t *entityType) kind(field string) (byte, bool) {
	k, ok := t.Fields[field]
	return k, ok
}

// LookupSets names the datastore sets whose names the reference leaves UNCONFIRMED.
type LookupSets struct {
	// Unit is the set behind Product.Unit. Default "Datastore_Unit".
	Unit string
	// VatGroup is the set behind Product.VatGroup. Default "Datastore_VatGroup".
	VatGroup string
	// GeneralLedgerAccount is the set behind Product.GeneralLedgerAccount. Default
	// "Datastore_GeneralLedgerAccount".
	GeneralLedgerAccount string
	// ProductGroup is the set behind Product.ProductGroup. Default "ProductGroup".
	ProductGroup string
}

func (l LookupSets) withDefaults() LookupSets {
	if l.Unit == "" {
		l.Unit = "Datastore_Unit"
	}
	if l.VatGroup == "" {
		l.VatGroup = "Datastore_VatGroup"
	}
	if l.GeneralLedgerAccount == "" {
		l.GeneralLedgerAccount = "Datastore_GeneralLedgerAccount"
	}
	if l.ProductGroup == "" {
		l.ProductGroup = "ProductGroup"
	}
	return l
}

// Well-known set names.
const (
	SetOrganization       = "Relation_Organization"
	SetPerson             = "Relation_Person"
	SetOrgCustomer        = "Relationship_Organization_CommercialRelationship_Customer"
	SetPersonCustomer     = "Relationship_Person_CommercialRelationship_Customer"
	SetOrgSupplier        = "Relationship_Organization_Supplier"
	SetContact            = "Relationship_Person_Contact_Standard"
	SetEmployee           = "Relationship_Person_Contact_Employee"
	SetIdentity           = "Relationship_Organization_Identity"
	SetAddress            = "Address"
	SetProduct            = "Product"
	SetProductLine        = "ProductLine"
	SetInvoice            = "Activity_Invoice"
	SetInvoicePhase       = "Datastore_Phase_ActivityInvoice"
	SetCountry            = "Datastore_Country"
	SetAddressType        = "Datastore_AdressType" // sic: the real set has one d
	SetWebhook            = "Webhook"
	phaseDraft, phaseSent = "Draft", "Sent"
	phasePaid             = "Paid"
)

type schema struct {
	types map[string]*entityType
	order []string // concrete set names in a stable order
}

func (s *schema) get(set string) *entityType { return s.types[set] }

// below reports whether concrete set belongs to base (itself included).
func below(set, base string) bool {
	return base == "Entity" || set == base || strings.HasPrefix(set, base+"_")
}

// buildSchema declares the entity sets of section 7 of the reference. Field lists follow the
// reference; where it lists a field only as seen in client code, it is here too.
func buildSchema(lk LookupSets, invoiceDate, dueDate string) *schema {
	s := &schema{types: map[string]*entityType{}}
	base := "ID:s _Type:s _Name:s SortIndex:n CreationDate:t LastMutationDate:t IsActive:b IsClosed:b"
	add := func(set, typ, fields string, navs map[string]navDef, colls map[string]collDef, req ...string) *entityType {
		t := &entityType{Set: set, Type: typ, Fields: map[string]byte{}, Navs: navs, Colls: colls, Required: req,
			Computed: map[string]bool{"ID": true, "_Type": true, "_Name": true, "CreationDate": true, "LastMutationDate": true}}
		if t.Navs == nil {
			t.Navs = map[string]navDef{}
		}
		if t.Colls == nil {
			t.Colls = map[string]collDef{}
		}
		for _, f := range strings.Fields(base + " " + fields) {
			name, k, _ := strings.Cut(f, ":")
			if _, dup := t.Fields[name]; dup {
				continue
			}
			t.Fields[name] = k[0]
			t.Order = append(t.Order, name)
		}
		s.types[set] = t
		s.order = append(s.order, set)
		return t
	}
	abstract := func(set, typ string) {
		t := add(set, typ, "", nil, nil)
		t.Abstract, t.ReadOnly = true, true
		s.order = s.order[:len(s.order)-1]
	}
	for _, b := range [][2]string{{"Entity", "Entity"}, {"Relation", "Relation"}, {"Relationship", "Relationship"},
		{"Relationship_Organization_CommercialRelationship", "Relationship.Organization.CommercialRelationship"},
		{"Activity", "Activity"}, {"Datastore", "Datastore"}, {"Datastore_Phase", "Datastore.Phase"}} {
		abstract(b[0], b[1])
	}

	relation := "Number:i DebtorNumber:s CreditorNumber:s IBAN:s BIC:s BankName:s EmailAddress:s PhoneNumber:s ImportId:s"
	addrNavs := func() map[string]navDef {
		return map[string]navDef{"VisitingAddress": {SetAddress}, "PostalAddress": {SetAddress}, "InvoiceAddress": {SetAddress}}
	}
	addrColl := map[string]collDef{"Addresses": {SetAddress, []string{"Relation", "Organization", "Person"}}}
	add(SetOrganization, "Relation.Organization", relation+" Name:s FinancialEmailAddress:s Website:s VATNumber:s ChamberOfCommerceNumber:s ChamberOfCommerceName:s EstablishmentNumber:i RSIN:i",
		addrNavs(), addrColl, "Name")
	p := add(SetPerson, "Relation.Person", relation+" FirstName:s MiddleName:s LastName:s Initials:s Title:s Suffix:s Name:s SortName:s BirthDate:t MobilePhoneNumber:s",
		addrNavs(), addrColl, "LastName")
	p.Computed["Name"], p.Computed["SortName"] = true, true

	rel := "Name:s IsFormer:b FormerDate:t ImportId:s"
	relNavs := func(child, childSet string) map[string]navDef {
		m := map[string]navDef{"Relation": {"Relation"}, "AccountManager": {SetEmployee}}
		if child != "" {
			m[child] = navDef{childSet}
		}
		return m
	}
	commercial := rel + " PaymentTermInDays:i MailingOptOut:b IsMasterAccount:b"
	add(SetOrgCustomer, "Relationship.Organization.CommercialRelationship.Customer", commercial, relNavs("Organization", SetOrganization), nil, "Relation", "Organization")
	add(SetPersonCustomer, "Relationship.Person.CommercialRelationship.Customer", commercial, relNavs("Person", SetPerson), nil, "Relation", "Person")
	add(SetOrgSupplier, "Relationship.Organization.Supplier", commercial, relNavs("Organization", SetOrganization), nil, "Relation", "Organization")
	add(SetContact, "Relationship.Person.Contact.Standard", rel+" Department:s EmailAddress:s PhoneNumber:s MobilePhoneNumber:s", relNavs("Person", SetPerson), nil, "Relation", "Person")
	add(SetEmployee, "Relationship.Person.Contact.Employee", rel+" EmailAddress:s PhoneNumber:s", relNavs("Person", SetPerson), nil, "Relation", "Person").NoDelete = true
	add(SetIdentity, "Relationship.Organization.Identity", rel, relNavs("Organization", SetOrganization), nil).ReadOnly = true

	add(SetAddress, "Address", "Street:s HouseNumber:n HouseNumberSuffix:s Extra:s Postalcode:s City:s Latitude:n Longitude:n ImportId:s",
		map[string]navDef{"Country": {SetCountry}, "AddressType": {SetAddressType}, "Relation": {"Relation"}, "Person": {SetPerson}, "Organization": {SetOrganization}}, nil)

	ds := "Code:s Name:s"
	for _, set := range []string{SetCountry, SetAddressType, SetInvoicePhase, lk.Unit, lk.GeneralLedgerAccount} {
		add(set, strings.ReplaceAll(set, "_", "."), ds, nil, nil).ReadOnly = true
	}
	add(lk.VatGroup, strings.ReplaceAll(lk.VatGroup, "_", "."), ds+" Percentage:n", nil, nil).ReadOnly = true
	add(lk.ProductGroup, strings.ReplaceAll(lk.ProductGroup, "_", "."), ds+" Description:s", nil, nil).ReadOnly = true

	add(SetProduct, "Product", "Name:s LocalizedName:s Code:s Description:s SalesPrice:n PurchasePrice:n StockLevel:n IsVatIncluded:b IsInactive:b IsDividable:b IsPriceEditable:b IsVatEditable:b IsDescriptionEditable:b ImportId:s",
		map[string]navDef{"Unit": {lk.Unit}, "VatGroup": {lk.VatGroup}, "GeneralLedgerAccount": {lk.GeneralLedgerAccount}, "ProductGroup": {lk.ProductGroup}}, nil, "Name")

	inv := add(SetInvoice, "Activity.Invoice", "Subject:s Number:s Amount:n Currency:s IsVatIncluded:b DiscountPercentage:n RelationDescription:s ImportId:s "+invoiceDate+":t "+dueDate+":t",
		map[string]navDef{"Relationship": {"Relationship"}, "Contact": {SetContact}, "Phase": {SetInvoicePhase}},
		map[string]collDef{"ProductLines": {SetProductLine, []string{"Activity"}}, "Notes": {SetNote, []string{"Entity"}}})
	inv.Computed["Number"], inv.Computed["Amount"] = true, true
	pl := add(SetProductLine, "ProductLine", "Description:s ExtraDescription:s Quantity:n Price:n PurchasePrice:n DiscountPercentage:n Currency:s VatPercentage:n VatAmount:n Total:n TotalExcludingVat:n TotalIncludingVat:n IsBilled:b StartDate:t EndDate:t",
		map[string]navDef{"Product": {SetProduct}, "Activity": {"Activity"}, "VatGroup": {lk.VatGroup}}, nil)
	for _, f := range []string{"VatAmount", "Total", "TotalExcludingVat", "TotalIncludingVat"} {
		pl.Computed[f] = true
	}
	add(SetNote, "Note", "Subject:s Content:s ImportId:s", map[string]navDef{"Entity": {"Entity"}}, nil)
	w := add(SetWebhook, "Webhook", "EntityType:s WebhookUrl:s", nil, nil)
	w.ReadOnly = true
	return s
}
