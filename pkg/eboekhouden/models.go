package eboekhouden

// RelationType is B (business) or P (private person).
type RelationType string

// Relation types.
const (
	RelationBusiness RelationType = "B"
	RelationPrivate  RelationType = "P"
)

// RelationListItem is what GET /v1/relation returns per relation: nothing but id, type and code.
type RelationListItem struct {
	ID   int64        `json:"id"`
	Type RelationType `json:"type"`
	Code string       `json:"code"`
}

// Relation is a customer and/or supplier (GET /v1/relation/{id}). The API omits empty fields; they
// read as zero values. On create and patch, ID, Date and IsClubOrAssociationMember are not sent.
type Relation struct {
	ID                        int64        `json:"id,omitempty"`
	Type                      RelationType `json:"type,omitempty"`
	Code                      string       `json:"code,omitempty"`
	Date                      Date         `json:"date,omitzero"`
	Name                      string       `json:"name"`
	Salutation                string       `json:"salutation,omitempty"`
	Contact                   string       `json:"contact,omitempty"`
	Gender                    string       `json:"gender,omitempty"`
	Address                   string       `json:"address,omitempty"`
	PostalCode                string       `json:"postalCode,omitempty"`
	City                      string       `json:"city,omitempty"`
	Country                   string       `json:"country,omitempty"`
	Address2                  string       `json:"address2,omitempty"`
	PostalCode2               string       `json:"postalCode2,omitempty"`
	City2                     string       `json:"city2,omitempty"`
	Country2                  string       `json:"country2,omitempty"`
	PhoneNumber               string       `json:"phoneNumber,omitempty"`
	MobilePhoneNumber         string       `json:"mobilePhoneNumber,omitempty"`
	FaxNumber                 string       `json:"faxNumber,omitempty"`
	EmailAddress              string       `json:"emailAddress,omitempty"`
	EmailAddressInvoice       string       `json:"emailAddressInvoice,omitempty"`
	EmailAddressReminder      string       `json:"emailAddressReminder,omitempty"`
	Website                   string       `json:"website,omitempty"`
	Note                      string       `json:"note,omitempty"`
	VATNumber                 string       `json:"vatNumber,omitempty"`
	Inactive                  bool         `json:"inactive"`
	TermOfPayment             *int         `json:"termOfPayment,omitempty"`
	CompanyRegistrationNumber string       `json:"companyRegistrationNumber,omitempty"`
	IBAN                      string       `json:"iban,omitempty"`
	BIC                       string       `json:"bic,omitempty"`
	FreeText1                 string       `json:"freeText1,omitempty"`
	FreeText2                 string       `json:"freeText2,omitempty"`
	FreeText3                 string       `json:"freeText3,omitempty"`
	FreeText4                 string       `json:"freeText4,omitempty"`
	FreeText5                 string       `json:"freeText5,omitempty"`
	FreeText6                 string       `json:"freeText6,omitempty"`
	FreeText7                 string       `json:"freeText7,omitempty"`
	FreeText8                 string       `json:"freeText8,omitempty"`
	FreeText9                 string       `json:"freeText9,omitempty"`
	FreeText10                string       `json:"freeText10,omitempty"`
	IsClubOrAssociationMember FlexInt      `json:"isClubOrAssociationMember,omitempty"`
	// DoNotReceiveNewsletters is an integer when read and a boolean when written.
	DoNotReceiveNewsletters FlexBool `json:"doNotReceiveNewsletters,omitempty"`
	LedgerID                *int64   `json:"ledgerId,omitempty"`
	Mandate                 bool     `json:"mandate,omitempty"`
	MandateType             string   `json:"mandateType,omitempty"`
	MandateID               string   `json:"mandateId,omitempty"`
	MandateSignedDate       Date     `json:"mandateSignedDate,omitzero"`
}

// writable is r as sent on create and patch: without the read-only fields.
func (r Relation) writable() Relation {
	r.ID = 0
	r.Date = Date{}
	r.IsClubOrAssociationMember = 0
	return r
}

// CreatedRelation is the answer to a create: the new ID and the (possibly generated) code.
type CreatedRelation struct {
	ID   int64  `json:"id"`
	Code string `json:"code"`
}

// ProductListItem is one product in GET /v1/product.
type ProductListItem struct {
	ID          int64  `json:"id"`
	Code        string `json:"code"`
	Description string `json:"description"`
	UnitID      int64  `json:"unitId"`
	Active      bool   `json:"active"`
}

// Product is GET /v1/product/{id}. Exactly one of PriceExcl and PriceIncl is normally set.
type Product struct {
	ID                int64   `json:"id,omitempty"`
	Code              string  `json:"code"`
	Description       string  `json:"description"`
	UnitID            int64   `json:"unitId,omitempty"`
	Active            bool    `json:"active"`
	GroupID           int64   `json:"groupId,omitempty"`
	PurchasePriceExcl *Amount `json:"purchasePriceExcl,omitempty"`
	PriceExcl         *Amount `json:"priceExcl,omitempty"`
	PriceIncl         *Amount `json:"priceIncl,omitempty"`
	VAT               VATCode `json:"vat"`
	LedgerID          int64   `json:"ledgerId"`
	CostCenterID      int64   `json:"costCenterId,omitempty"`
	InStockManagement bool    `json:"inStockManagement,omitempty"`
}

// ProductGroup is one entry of GET /v1/product/groups.
type ProductGroup struct {
	ID          int64  `json:"id"`
	Code        string `json:"code"`
	Description string `json:"description"`
}

// Unit is a unit of measure (GET /v1/unit).
type Unit struct {
	ID       int64  `json:"id"`
	Singular string `json:"singular"`
	Plural   string `json:"plural"`
}

// LedgerCategory is a ledger account's category.
type LedgerCategory string

// Ledger categories. Only BAL, VW, FIN, DEB and CRED may be written.
const (
	CategoryBalance   LedgerCategory = "BAL"
	CategoryPL        LedgerCategory = "VW"
	CategoryFinancial LedgerCategory = "FIN"
	CategoryDebtors   LedgerCategory = "DEB"
	CategoryCreditors LedgerCategory = "CRED"
	CategoryVATLow    LedgerCategory = "AF6"
	CategoryVATHigh   LedgerCategory = "AF19"
	CategoryVATOther  LedgerCategory = "AFOVERIG"
	CategoryVATInput  LedgerCategory = "VOOR"
	CategoryVATRC     LedgerCategory = "BTWRC"
	CategoryVAT       LedgerCategory = "AF"
)

// Ledger is a ledger account (GET /v1/ledger and /v1/ledger/{id}).
type Ledger struct {
	ID          int64          `json:"id"`
	Code        string         `json:"code"`
	Description string         `json:"description"`
	Category    LedgerCategory `json:"category"`
	Group       string         `json:"group,omitempty"`
}

// LedgerBalance is GET /v1/ledger/{id}/balance.
type LedgerBalance struct {
	Code    string `json:"code"`
	Type    string `json:"type"`
	Balance Amount `json:"balance"`
}

// InvoiceTemplate is GET /v1/invoicetemplate; Type is E (editor) or A (advanced).
type InvoiceTemplate struct {
	ID     int64  `json:"id"`
	Name   string `json:"name"`
	Active bool   `json:"active"`
	Type   string `json:"type"`
}

// EmailTemplate is GET /v1/emailtemplate.
type EmailTemplate struct {
	ID         int64    `json:"id"`
	Name       string   `json:"name"`
	UseInvoice FlexBool `json:"useInvoice"`
	UseQuote   FlexBool `json:"useQuote"`
	UseMailing FlexBool `json:"useMailing"`
}

// CostCenter is GET /v1/costcenter(/{id}); FullPath only on detail.
type CostCenter struct {
	ID          int64  `json:"id"`
	Description string `json:"description"`
	ParentID    int64  `json:"parentId,omitempty"`
	Active      bool   `json:"active"`
	FullPath    string `json:"fullPath,omitempty"`
}

// InExVat says whether line amounts include VAT ("IN") or exclude it ("EX").
type InExVat string

// InExVat values.
const (
	IncludingVAT InExVat = "IN"
	ExcludingVAT InExVat = "EX"
)

// InvoiceListItem is one invoice in GET /v1/invoice.
type InvoiceListItem struct {
	ID            int64    `json:"id"`
	InvoiceNumber string   `json:"invoiceNumber"`
	RelationID    int64    `json:"relationId"`
	Date          Date     `json:"date"`
	Reference     string   `json:"reference,omitempty"`
	Text          string   `json:"text,omitempty"`
	URLPDFFile    string   `json:"urlPdfFile,omitempty"`
	TotalExcl     Amount   `json:"totalExcl"`
	TotalAmount   Amount   `json:"totalAmount"`
	VATAmount     Amount   `json:"vatAmount"`
	TermOfPayment int      `json:"termOfPayment"`
	TemplateID    int64    `json:"templateId"`
	Print         FlexBool `json:"print"`
}

// Invoice is GET /v1/invoice/{id}. It carries no payment status: see Outstanding.
type Invoice struct {
	ID              int64         `json:"id"`
	InvoiceNumber   string        `json:"invoiceNumber"`
	RelationID      int64         `json:"relationId"`
	Date            Date          `json:"date"`
	Reference       string        `json:"reference,omitempty"`
	Text            string        `json:"text,omitempty"`
	TermOfPayment   int           `json:"termOfPayment"`
	InExVat         InExVat       `json:"inExVat"`
	TemplateID      int64         `json:"templateId"`
	EmailTemplateID int64         `json:"emailTemplateId,omitempty"`
	TotalExcl       Amount        `json:"totalExcl"`
	TotalAmount     Amount        `json:"totalAmount"`
	VATAmount       Amount        `json:"vatAmount"`
	URLPDFFile      string        `json:"urlPdfFile,omitempty"`
	Items           []InvoiceItem `json:"items"`
}

// InvoiceItem is one invoice line, read or written.
type InvoiceItem struct {
	Quantity       Quantity `json:"quantity"`
	UnitID         int64    `json:"unitId,omitempty"`
	Code           string   `json:"code,omitempty"`
	ProductID      int64    `json:"productId,omitempty"`
	Description    string   `json:"description"`
	PricePerUnit   Amount   `json:"pricePerUnit"`
	VATCode        VATCode  `json:"vatCode"`
	VATAmount      *Amount  `json:"vatAmount,omitempty"`
	LedgerID       int64    `json:"ledgerId"`
	CostCenterID   int64    `json:"costCenterId,omitempty"`
	DiscountAmount *Amount  `json:"discountAmount,omitempty"`
	// DiscountPercentage is exclusive with DiscountAmount (FACT_ITEM_013).
	DiscountPercentage *Percentage `json:"discountPercentage,omitempty"`
}

// InvoiceMutation, sent with an invoice, books it at once: the invoice becomes a type-2 mutation
// on the debtor ledger LedgerID and an open item.
type InvoiceMutation struct {
	LedgerID              int64  `json:"ledgerId"`
	Description           string `json:"description,omitempty"`
	PaymentReference      string `json:"paymentReference,omitempty"`
	CheckPaymentReference bool   `json:"checkPaymentReference,omitempty"`
}

// NewInvoice is the body of POST /v1/invoice. InvoiceNumber empty lets e-Boekhouden number it.
type NewInvoice struct {
	RelationID      int64            `json:"relationId"`
	InvoiceNumber   string           `json:"invoiceNumber,omitempty"`
	Date            Date             `json:"date,omitzero"`
	TermOfPayment   int              `json:"termOfPayment"`
	InExVat         InExVat          `json:"inExVat,omitempty"`
	TemplateID      int64            `json:"templateId"`
	EmailTemplateID int64            `json:"emailTemplateId,omitempty"`
	Reference       string           `json:"reference,omitempty"`
	Text            string           `json:"text,omitempty"`
	Print           bool             `json:"print,omitempty"`
	Items           []InvoiceItem    `json:"items"`
	Mutation        *InvoiceMutation `json:"mutation,omitempty"`
}

// CreatedInvoice is the answer to POST /v1/invoice.
type CreatedInvoice struct {
	ID            int64   `json:"id"`
	InvoiceNumber string  `json:"invoiceNumber"`
	InExVat       InExVat `json:"inExVat"`
}

// MutationListItem is one booking in GET /v1/mutation: no relation, description or rows.
// Opening balances appear with ID 0 and Type 0.
type MutationListItem struct {
	ID            int64        `json:"id"`
	Type          MutationType `json:"type"`
	Date          Date         `json:"date"`
	InvoiceNumber string       `json:"invoiceNumber,omitempty"`
	LedgerID      int64        `json:"ledgerId"`
	Amount        Amount       `json:"amount"`
	EntryNumber   string       `json:"entryNumber,omitempty"`
}

// Mutation is a booking with its rows (GET /v1/mutation/{id}).
type Mutation struct {
	ID            int64         `json:"id"`
	Type          MutationType  `json:"type"`
	Date          Date          `json:"date"`
	Description   string        `json:"description,omitempty"`
	TermOfPayment int           `json:"termOfPayment,omitempty"`
	LedgerID      int64         `json:"ledgerId"`
	RelationID    int64         `json:"relationId,omitempty"`
	InExVat       InExVat       `json:"inExVat,omitempty"`
	InvoiceNumber string        `json:"invoiceNumber,omitempty"`
	EntryNumber   string        `json:"entryNumber,omitempty"`
	Rows          []MutationRow `json:"rows"`
	VAT           []MutationVAT `json:"vat,omitempty"`
}

// MutationRow is one line of a booking. For payments (types 3, 4) InvoiceNumber names the paid
// invoice.
type MutationRow struct {
	LedgerID      int64   `json:"ledgerId,omitempty"`
	VATCode       VATCode `json:"vatCode"`
	VATAmount     *Amount `json:"vatAmount,omitempty"`
	Amount        Amount  `json:"amount"`
	CostCenterID  int64   `json:"costCenterId,omitempty"`
	Description   string  `json:"description,omitempty"`
	InvoiceNumber string  `json:"invoiceNumber,omitempty"`
	RelationID    int64   `json:"relationId,omitempty"`
}

// MutationVAT is the VAT total of one code in a booking.
type MutationVAT struct {
	VATCode VATCode `json:"vatCode"`
	Amount  Amount  `json:"amount"`
}

// NewMutation is the body of POST /v1/mutation.
type NewMutation struct {
	Type                  MutationType  `json:"type"`
	Date                  Date          `json:"date"`
	LedgerID              int64         `json:"ledgerId"`
	InvoiceNumber         string        `json:"invoiceNumber,omitempty"`
	EntryNumber           string        `json:"entryNumber,omitempty"`
	TermOfPayment         int           `json:"termOfPayment,omitempty"`
	CheckPaymentReference bool          `json:"checkPaymentReference,omitempty"`
	PaymentReference      string        `json:"paymentReference,omitempty"`
	InExVat               InExVat       `json:"inExVat,omitempty"`
	Description           string        `json:"description,omitempty"`
	RelationID            int64         `json:"relationId,omitempty"`
	Rows                  []MutationRow `json:"rows"`
}

// CreditDebit selects the outstanding items of debtors (D) or creditors (C).
type CreditDebit string

// Outstanding item sides.
const (
	Debtors   CreditDebit = "D"
	Creditors CreditDebit = "C"
)

// OutstandingInvoice is an open item (GET /v1/mutation/invoice/outstanding).
type OutstandingInvoice struct {
	Date              Date   `json:"date"`
	MutationID        int64  `json:"mutationId"`
	InvoiceNumber     string `json:"invoiceNumber"`
	RelationID        int64  `json:"relationId"`
	RelationCode      string `json:"relationCode,omitempty"`
	Company           string `json:"company,omitempty"`
	TotalAmount       Amount `json:"totalAmount"`
	PaidAmount        Amount `json:"paidAmount"`
	OutstandingAmount Amount `json:"outstandingAmount"`
}

// Administration is an entry of GET /v1/administration(/linked).
type Administration struct {
	GUID    string `json:"guid"`
	Company string `json:"company"`
}
