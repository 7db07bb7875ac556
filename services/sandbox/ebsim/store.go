package ebsim

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shopspring/decimal"
)

// money is an amount written as a JSON number.
type money struct{ decimal.Decimal }

func (m money) MarshalJSON() ([]byte, error) { return []byte(m.Round(2).String()), nil }

// qty is a quantity written as a JSON number with up to four decimals.
type qty struct{ decimal.Decimal }

func (q qty) MarshalJSON() ([]byte, error) { return []byte(q.Round(4).String()), nil }

var hundred = decimal.NewFromInt(100)

func round2(d decimal.Decimal) decimal.Decimal { return d.Round(2) }

// strField describes one free string field of a relation: its JSON name, maximum length and the
// error code for "too long".
type strField struct {
	name   string
	max    int
	tooLng string
}

// Relation string fields, in the order of the REL_0xx codes. Lengths follow the public clients
// (the spec does not preserve maxLength).
var relFields = []strField{
	{"name", 100, "REL_003"},
	{"contact", 50, "REL_009"},
	{"salutation", 50, "REL_010"},
	{"address", 150, "REL_011"},
	{"postalCode", 50, "REL_012"},
	{"city", 50, "REL_013"},
	{"country", 50, "REL_014"},
	{"address2", 150, "REL_015"},
	{"postalCode2", 50, "REL_016"},
	{"city2", 50, "REL_017"},
	{"country2", 50, "REL_018"},
	{"phoneNumber", 50, "REL_019"},
	{"mobilePhoneNumber", 50, "REL_020"},
	{"faxNumber", 50, "REL_021"},
	{"emailAddress", 150, "REL_022"},
	{"emailAddressInvoice", 150, "REL_024"},
	{"emailAddressReminder", 150, "REL_026"},
	{"website", 50, "REL_028"},
	{"iban", 50, "REL_029"},
	{"bic", 20, "REL_032"},
	{"mandateId", 35, "REL_034"},
	{"vatNumber", 50, "REL_035"},
	{"freeText1", 100, "REL_037"},
	{"freeText2", 100, "REL_038"},
	{"freeText3", 100, "REL_039"},
	{"freeText4", 100, "REL_040"},
	{"freeText5", 100, "REL_041"},
	{"freeText6", 100, "REL_042"},
	{"freeText7", 100, "REL_043"},
	{"freeText8", 100, "REL_044"},
	{"freeText9", 100, "REL_045"},
	{"freeText10", 100, "REL_046"},
	{"note", 40000, "REL_047"},
	{"companyRegistrationNumber", 50, "REL_050"},
}

var relFieldIndex = func() map[string]int {
	m := map[string]int{}
	for i, f := range relFields {
		m[f.name] = i
	}
	return m
}()

func fieldIdx(name string) int { return relFieldIndex[name] }

var (
	fName    = fieldIdx("name")
	fContact = fieldIdx("contact")
	fCity    = fieldIdx("city")
	fEmail   = fieldIdx("emailAddress")
	fIBAN    = fieldIdx("iban")
)

type relation struct {
	ID                      int64
	Type                    string
	Code                    string
	Date                    time.Time
	Str                     [34]string // by relFields index
	Inactive                bool
	TermOfPayment           *int64
	LedgerID                *int64
	DoNotReceiveNewsletters bool
	Mandate                 bool
	MandateType             string
	MandateSignedDate       string
	Gender                  string
	// StoredAt is the wall-clock time of the last API write (not the simulator's shiftable
	// clock), for measuring how long a change takes to arrive.
	StoredAt time.Time
}

type product struct {
	ID                int64
	Code              string
	Description       string
	UnitID            int64
	Active            bool
	GroupID           int64
	PurchasePriceExcl *decimal.Decimal
	PriceExcl         *decimal.Decimal
	PriceIncl         *decimal.Decimal
	VAT               string
	LedgerID          int64
	CostCenterID      int64
	InStockManagement bool
}

type ledger struct {
	ID          int64  `json:"id"`
	Code        string `json:"code"`
	Description string `json:"description"`
	Category    string `json:"category"`
	Group       string `json:"group,omitempty"`
}

type unit struct {
	ID       int64  `json:"id"`
	Singular string `json:"singular"`
	Plural   string `json:"plural"`
}

type productGroup struct {
	ID          int64  `json:"id"`
	Code        string `json:"code"`
	Description string `json:"description"`
}

type costCenter struct {
	ID          int64  `json:"id"`
	Description string `json:"description"`
	ParentID    int64  `json:"parentId"`
	Active      bool   `json:"active"`
}

type invoiceTemplate struct {
	ID     int64  `json:"id"`
	Name   string `json:"name"`
	Active bool   `json:"active"`
	Type   string `json:"type"`
}

type emailTemplate struct {
	ID         int64  `json:"id"`
	Name       string `json:"name"`
	UseInvoice bool   `json:"useInvoice"`
	UseQuote   bool   `json:"useQuote"`
	UseMailing bool   `json:"useMailing"`
}

type invoiceItem struct {
	Quantity           qty    `json:"quantity"`
	UnitID             int64  `json:"unitId,omitempty"`
	Code               string `json:"code,omitempty"`
	ProductID          int64  `json:"productId,omitempty"`
	Description        string `json:"description"`
	PricePerUnit       money  `json:"pricePerUnit"`
	VATCode            string `json:"vatCode"`
	VATAmount          *money `json:"vatAmount,omitempty"`
	LedgerID           int64  `json:"ledgerId"`
	CostCenterID       int64  `json:"costCenterId,omitempty"`
	DiscountAmount     *money `json:"discountAmount,omitempty"`
	DiscountPercentage *money `json:"discountPercentage,omitempty"`
	excl, vat          decimal.Decimal
}

type invoice struct {
	ID              int64
	InvoiceNumber   string
	RelationID      int64
	Date            time.Time
	Reference       string
	Text            string
	TermOfPayment   int64
	InExVat         string
	TemplateID      int64
	EmailTemplateID int64
	Print           bool
	TotalExcl       decimal.Decimal
	VATAmount       decimal.Decimal
	Items           []invoiceItem
	MutationID      int64
	// StoredAt is the wall-clock time the invoice was stored (not the simulator's shiftable
	// clock): the admin state shows it so a benchmark can measure latency up to the booking.
	StoredAt time.Time
}

type mutationRow struct {
	LedgerID      int64           `json:"ledgerId,omitempty"`
	VATCode       string          `json:"vatCode"`
	VATAmount     *money          `json:"vatAmount,omitempty"`
	Amount        money           `json:"amount"`
	CostCenterID  int64           `json:"costCenterId,omitempty"`
	Description   string          `json:"description,omitempty"`
	InvoiceNumber string          `json:"invoiceNumber,omitempty"`
	RelationID    int64           `json:"relationId,omitempty"`
	excl, vat     decimal.Decimal // computed
}

type mutation struct {
	ID               int64
	Type             int
	Date             time.Time
	Description      string
	TermOfPayment    int64
	LedgerID         int64
	RelationID       int64
	InExVat          string
	InvoiceNumber    string
	EntryNumber      string
	PaymentReference string
	Rows             []mutationRow
	Total            decimal.Decimal // incl. VAT
}

// openItem is an invoice booked as a type-1 (C) or type-2 (D) mutation and what was paid on it.
type openItem struct {
	Side          string // "D" or "C"
	MutationID    int64
	InvoiceNumber string
	RelationID    int64
	Date          time.Time
	Total         decimal.Decimal
	Paid          decimal.Decimal
}

// admin is one administration with all its records. Records are kept in ID order (IDs only
// grow), with maps for lookups by ID and unique key, so 100,000 relations page and search fast.
type admin struct {
	mu sync.RWMutex

	id          string
	guid        string
	company     string
	accessToken string
	tokenExpiry time.Time
	spec        AdminSpec

	relations   []*relation
	relByID     map[int64]*relation
	relByCode   map[string]*relation // upper-cased code
	nextRelCode int64

	products  []*product
	prodByID  map[int64]*product
	prodCodes map[string]int64

	ledgers    []*ledger
	ledgerByID map[int64]*ledger

	units          []unit
	groups         []productGroup
	costCenters    []costCenter
	invTemplates   []invoiceTemplate
	emailTemplates []emailTemplate

	invoices    []*invoice
	invByID     map[int64]*invoice
	invByNumber map[string]*invoice // upper-cased
	nextInvNo   int64

	mutations   []*mutation
	mutByID     map[int64]*mutation
	payRefs     map[string]bool
	openItems   []*openItem
	openByKey   map[string]*openItem // side + "|" + upper(invoice number) (+ "|" + relation for C)
	opening     *mutation            // ID 0
	mutInvoices map[string]bool      // upper(invoice number) of type-2 mutations
}

func openKey(side, number string, relationID int64) string {
	k := side + "|" + strings.ToUpper(number)
	if side == "C" {
		k += "|" + itoa(relationID)
	}
	return k
}

func (a *admin) ledgerByCode(code string) *ledger {
	for _, l := range a.ledgers {
		if l.Code == code {
			return l
		}
	}
	return nil
}

func (a *admin) firstLedger(cat string) *ledger {
	for _, l := range a.ledgers {
		if l.Category == cat {
			return l
		}
	}
	return nil
}

// insertSorted keeps records in ID order even for IDs handed out concurrently by another
// administration (IDs are global).
func insertSorted[T any](s []T, v T, id func(T) int64) []T {
	n := len(s)
	if n == 0 || id(s[n-1]) < id(v) {
		return append(s, v)
	}
	i, _ := slices.BinarySearchFunc(s, id(v), func(e T, t int64) int {
		switch {
		case id(e) < t:
			return -1
		case id(e) > t:
			return 1
		}
		return 0
	})
	return slices.Insert(s, i, v)
}
