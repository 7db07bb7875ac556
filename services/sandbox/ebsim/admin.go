package ebsim

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/koppel/koppel/services/sandbox/ebsim/gen"
	"github.com/shopspring/decimal"
)

// AdminSpec describes an administration to create.
type AdminSpec struct {
	// Company is the administration's name. Default "Sandbox B.V.".
	Company string `json:"company,omitempty"`
	// AccessToken is the API token clients exchange for sessions. Default: a random token.
	AccessToken string `json:"accessToken,omitempty"`
	// AccessTokenExpiresAt makes POST /v1/session answer API_SESSION_004 from then on. Default:
	// never expires.
	AccessTokenExpiresAt time.Time `json:"accessTokenExpiresAt,omitzero"`
	// Seed seeds the generator of relations and products. Default 1.
	Seed uint64 `json:"seed,omitempty"`
	// Relations and Products are how many generated records to seed. Default 0.
	Relations int `json:"relations,omitempty"`
	Products  int `json:"products,omitempty"`
	// NoOpeningBalance leaves out the opening-balance row (mutation ID 0, type 0).
	NoOpeningBalance bool `json:"noOpeningBalance,omitempty"`
}

// AdminInfo describes an existing administration.
type AdminInfo struct {
	ID          string `json:"id"`
	GUID        string `json:"guid"`
	Company     string `json:"company"`
	AccessToken string `json:"accessToken"`
	Relations   int    `json:"relations"`
	Products    int    `json:"products"`
	Invoices    int    `json:"invoices"`
	Mutations   int    `json:"mutations"`
	OpenItems   int    `json:"openItems"`
}

// Errors of the Go admin API.
var (
	ErrNoAdministration = errors.New("no such administration")
	ErrTokenTaken       = errors.New("access token already in use")
)

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func randomGUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// CreateAdministration creates an administration with a standard Dutch chart of ledgers, units,
// templates and cost centres, and the generated relations and products spec asks for.
func (s *Simulator) CreateAdministration(spec AdminSpec) (AdminInfo, error) {
	if spec.Company == "" {
		spec.Company = "Sandbox B.V."
	}
	if spec.AccessToken == "" {
		spec.AccessToken = randomToken()
	}
	if spec.Seed == 0 {
		spec.Seed = 1
	}
	if spec.Relations < 0 || spec.Products < 0 || spec.Relations > 1_000_000 || spec.Products > 1_000_000 {
		return AdminInfo{}, fmt.Errorf("create administration: relations and products must be 0..1000000")
	}
	s.mu.Lock()
	if s.byToken[spec.AccessToken] != nil {
		s.mu.Unlock()
		return AdminInfo{}, fmt.Errorf("create administration: %w", ErrTokenTaken)
	}
	s.nextAdm++
	a := &admin{id: fmt.Sprintf("adm%d", s.nextAdm), guid: randomGUID(), accessToken: spec.AccessToken}
	s.admins[a.id] = a
	s.byToken[a.accessToken] = a
	s.mu.Unlock()

	a.mu.Lock()
	defer a.mu.Unlock()
	s.populate(a, spec)
	return a.info(), nil
}

func (a *admin) info() AdminInfo {
	return AdminInfo{ID: a.id, GUID: a.guid, Company: a.company, AccessToken: a.accessToken,
		Relations: len(a.relations), Products: len(a.products), Invoices: len(a.invoices),
		Mutations: len(a.mutations), OpenItems: len(a.openItems)}
}

// populate (re)builds a's records from spec. The caller holds a.mu.
func (s *Simulator) populate(a *admin, spec AdminSpec) {
	a.spec = spec
	a.company = spec.Company
	a.tokenExpiry = spec.AccessTokenExpiresAt
	a.relations, a.relByID, a.relByCode, a.nextRelCode = nil, map[int64]*relation{}, map[string]*relation{}, 1000
	a.products, a.prodByID, a.prodCodes = nil, map[int64]*product{}, map[string]int64{}
	a.invoices, a.invByID, a.invByNumber, a.nextInvNo = nil, map[int64]*invoice{}, map[string]*invoice{}, 0
	a.mutations, a.mutByID, a.payRefs = nil, map[int64]*mutation{}, map[string]bool{}
	a.openItems, a.openByKey, a.mutInvoices, a.opening = nil, map[string]*openItem{}, map[string]bool{}, nil

	a.ledgers, a.ledgerByID = nil, map[int64]*ledger{}
	for _, l := range chart {
		l := &ledger{ID: s.nextID(), Code: l[0], Description: l[1], Category: l[2], Group: l[3]}
		a.ledgers = append(a.ledgers, l)
		a.ledgerByID[l.ID] = l
	}
	a.units = nil
	for _, u := range [][2]string{{"stuk", "stuks"}, {"uur", "uren"}, {"doos", "dozen"}, {"kg", "kg"},
		{"m", "m"}, {"m2", "m2"}, {"licentie", "licenties"}, {"dag", "dagen"}} {
		a.units = append(a.units, unit{s.nextID(), u[0], u[1]})
	}
	a.groups = nil
	for _, g := range [][2]string{{"DIENST", "Diensten"}, {"SOFTWARE", "Software"}, {"MATERIAAL", "Materialen"},
		{"LEVENSMIDDELEN", "Levensmiddelen"}, {"BOEKEN", "Boeken"}, {"OVERIG", "Overig"}, {"OPLEIDING", "Opleidingen"}} {
		a.groups = append(a.groups, productGroup{s.nextID(), g[0], g[1]})
	}
	general, projects := s.nextID(), s.nextID()
	a.costCenters = []costCenter{
		{general, "Algemeen", 0, true}, {projects, "Projecten", 0, true},
		{s.nextID(), "Project Noord", projects, true}, {s.nextID(), "Oude vestiging", 0, false},
	}
	a.invTemplates = []invoiceTemplate{{s.nextID(), "Standaard", true, "E"}, {s.nextID(), "Modern", true, "A"},
		{s.nextID(), "Oud sjabloon", false, "E"}}
	a.emailTemplates = []emailTemplate{{s.nextID(), "Factuur standaard", true, false, false},
		{s.nextID(), "Offerte", false, true, false}, {s.nextID(), "Nieuwsbrief", false, false, true}}
	if !spec.NoOpeningBalance {
		now := s.Now()
		bank := a.ledgerByCode("1100")
		equity := a.ledgerByCode("0500")
		a.opening = &mutation{ID: 0, Type: 0, Date: time.Date(now.Year()-1, 12, 31, 0, 0, 0, 0, time.UTC),
			LedgerID: bank.ID, Description: "Beginbalans", InExVat: "EX", Total: decimal.NewFromInt(12500),
			Rows: []mutationRow{{LedgerID: equity.ID, VATCode: "GEEN", Amount: money{decimal.NewFromInt(12500)},
				excl: decimal.NewFromInt(12500)}}}
	}
	s.seed(a, spec.Seed, spec.Relations, spec.Products)
}

// seed adds generated relations and products. The caller holds a.mu.
func (s *Simulator) seed(a *admin, seed uint64, relations, products int) {
	g := gen.New(seed + uint64(len(a.relations))*7919)
	today := dateOnly(s.Now())
	for _, gr := range g.Relations(relations) {
		rel := &relation{ID: s.nextID(), Type: gr.Type, Code: gr.Code, Date: today, Inactive: gr.Inactive, Gender: gr.Gender}
		if a.relByCode[strings.ToUpper(rel.Code)] != nil {
			rel.Code = a.newRelationCode()
		}
		set := func(name, v string) { rel.Str[fieldIdx(name)] = v }
		set("name", gr.Name)
		set("contact", gr.Contact)
		set("address", gr.Address)
		set("postalCode", gr.PostalCode)
		set("city", gr.City)
		set("country", gr.Country)
		set("phoneNumber", gr.PhoneNumber)
		set("mobilePhoneNumber", gr.MobilePhoneNumber)
		set("emailAddress", gr.EmailAddress)
		set("website", gr.Website)
		set("vatNumber", gr.VATNumber)
		set("companyRegistrationNumber", gr.CompanyRegistrationNumber)
		set("iban", gr.IBAN)
		set("bic", gr.BIC)
		top := int64(gr.TermOfPayment)
		rel.TermOfPayment = &top
		a.addRelation(rel)
		var n int64
		if _, err := fmt.Sscan(rel.Code, &n); err == nil && n > a.nextRelCode {
			a.nextRelCode = n
		}
	}
	revenue := map[string]*ledger{SaleVATCode("21"): a.ledgerByCode("8000"), SaleVATCode("9"): a.ledgerByCode("8010"), SaleVATCode("0"): a.ledgerByCode("8020")}
	for i, gp := range g.Products(products) {
		p := &product{ID: s.nextID(), Code: gp.Code, Description: gp.Description, Active: gp.Active, VAT: gp.VATCode}
		if _, taken := a.prodCodes[strings.ToUpper(p.Code)]; taken {
			p.Code = fmt.Sprintf("P%d-%d", len(a.products), i)
		}
		if l := revenue[gp.VATCode]; l != nil {
			p.LedgerID = l.ID
		}
		for _, u := range a.units {
			if u.Singular == gp.Unit {
				p.UnitID = u.ID
			}
		}
		for _, gr := range a.groups {
			if gr.Code == gp.GroupCode {
				p.GroupID = gr.ID
			}
		}
		price := decimal.RequireFromString(gp.PriceExcl)
		purchase := decimal.RequireFromString(gp.PurchasePrice)
		p.PriceExcl, p.PurchasePriceExcl = &price, &purchase
		a.addProduct(p)
	}
}

// chart is the seeded chart of ledgers: code, description, category, group.
var chart = [][4]string{
	{"0100", "Inventaris", "BAL", "Vaste activa"},
	{"0200", "Vervoermiddelen", "BAL", "Vaste activa"},
	{"0500", "Eigen vermogen", "BAL", "Eigen vermogen"},
	{"0900", "Lening u/g", "BAL", "Langlopende schulden"},
	{"1000", "Kas", "FIN", "Liquide middelen"},
	{"1100", "Bank", "FIN", "Liquide middelen"},
	{"1110", "Spaarrekening", "FIN", "Liquide middelen"},
	{"1300", "Debiteuren", "DEB", "Vorderingen"},
	{"1600", "Crediteuren", "CRED", "Kortlopende schulden"},
	{"1500", "Voorbelasting", "VOOR", "BTW"},
	{"1510", "Af te dragen BTW hoog", "AF19", "BTW"},
	{"1520", "Af te dragen BTW laag", "AF6", "BTW"},
	{"1530", "Af te dragen BTW overig", "AFOVERIG", "BTW"},
	{"1540", "BTW rekening courant", "BTWRC", "BTW"},
	{"2000", "Tussenrekening", "BAL", "Overlopende posten"},
	{"4000", "Lonen en salarissen", "VW", "Personeelskosten"},
	{"4100", "Huisvestingskosten", "VW", "Huisvesting"},
	{"4200", "Autokosten", "VW", "Vervoer"},
	{"4300", "Kantoorkosten", "VW", "Kantoor"},
	{"4400", "Verkoopkosten", "VW", "Verkoop"},
	{"7000", "Inkoopwaarde van de omzet", "VW", "Inkoop"},
	{"8000", "Omzet hoog tarief", "VW", "Omzet"},
	{"8010", "Omzet laag tarief", "VW", "Omzet"},
	{"8020", "Omzet onbelast", "VW", "Omzet"},
	{"8100", "Omzet diensten", "VW", "Omzet"},
	{"9000", "Bankkosten", "VW", "Financieel"},
}

func (s *Simulator) admin(id string) (*admin, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	a := s.admins[id]
	if a == nil {
		return nil, fmt.Errorf("administration %q: %w", id, ErrNoAdministration)
	}
	return a, nil
}

// Administration returns the counts and token of administration id.
func (s *Simulator) Administration(id string) (AdminInfo, error) {
	a, err := s.admin(id)
	if err != nil {
		return AdminInfo{}, err
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.info(), nil
}

// Administrations lists all administrations, ordered by ID.
func (s *Simulator) Administrations() []AdminInfo {
	s.mu.RLock()
	all := make([]*admin, 0, len(s.admins))
	for _, a := range s.admins {
		all = append(all, a)
	}
	s.mu.RUnlock()
	out := make([]AdminInfo, 0, len(all))
	for _, a := range all {
		a.mu.RLock()
		out = append(out, a.info())
		a.mu.RUnlock()
	}
	slices.SortFunc(out, func(x, y AdminInfo) int { return strings.Compare(x.ID, y.ID) })
	return out
}

// DeleteAdministration removes an administration and its sessions.
func (s *Simulator) DeleteAdministration(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.admins[id]
	if a == nil {
		return fmt.Errorf("delete administration %q: %w", id, ErrNoAdministration)
	}
	delete(s.admins, id)
	delete(s.byToken, a.accessToken)
	for k, v := range s.sessions {
		if v.adm == a {
			delete(s.sessions, k)
		}
	}
	return nil
}

// ResetAdministration drops every record of administration id and seeds it again from its spec;
// the token stays, sessions stay valid.
func (s *Simulator) ResetAdministration(id string) error {
	a, err := s.admin(id)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s.populate(a, a.spec)
	return nil
}

// Seed adds generated relations and products to administration id.
func (s *Simulator) Seed(id string, seed uint64, relations, products int) error {
	a, err := s.admin(id)
	if err != nil {
		return err
	}
	if relations < 0 || products < 0 || relations > 1_000_000 || products > 1_000_000 {
		return fmt.Errorf("seed %q: relations and products must be 0..1000000", id)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s.seed(a, seed, relations, products)
	return nil
}

// ExpireSessions ends every session of administration id ("" = all), as if they timed out.
func (s *Simulator) ExpireSessions(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.sessions {
		if id == "" || v.adm.id == id {
			delete(s.sessions, k)
		}
	}
}

// Reset removes every administration, session, fault and the clock offset.
func (s *Simulator) Reset() {
	s.mu.Lock()
	s.admins, s.byToken, s.sessions = map[string]*admin{}, map[string]*admin{}, map[string]*session{}
	s.mu.Unlock()
	s.ClearFaults()
	s.faultMu.Lock()
	s.limiters = map[string]*tokenBucket{}
	s.faultMu.Unlock()
	s.clockMu.Lock()
	s.offset = 0
	s.clockMu.Unlock()
}

// Payment is a customer payment as a bookkeeper books it from a bank statement.
type Payment struct {
	// InvoiceNumber is the paid invoice (an open debtor item).
	InvoiceNumber string `json:"invoiceNumber"`
	// Amount paid, such as "50.00"; partial payments are allowed. Default: the open amount.
	Amount string `json:"amount,omitempty"`
	// Date of the payment, "YYYY-MM-DD". Default: the simulator's today.
	Date string `json:"date,omitempty"`
	// LedgerCode is the bank ledger (category FIN). Default "1100".
	LedgerCode string `json:"ledgerCode,omitempty"`
	// Description of the bank line. Default "Betaling <invoice number>".
	Description string `json:"description,omitempty"`
}

// BookPayment books p as a type-3 mutation against the open item of its invoice, with the same
// rules as POST /v1/mutation, and returns the mutation ID.
func (s *Simulator) BookPayment(id string, p Payment) (int64, error) {
	a, err := s.admin(id)
	if err != nil {
		return 0, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	item := a.openByKey[openKey("D", p.InvoiceNumber, 0)]
	if item == nil {
		return 0, fmt.Errorf("book payment: invoice %q: MUT_115 Invoice not found", p.InvoiceNumber)
	}
	amount := item.Total.Sub(item.Paid)
	if p.Amount != "" {
		if amount, err = decimal.NewFromString(p.Amount); err != nil {
			return 0, fmt.Errorf("book payment: amount: %w", err)
		}
	}
	date := dateOnly(s.Now())
	if p.Date != "" {
		if date, err = time.Parse(time.DateOnly, p.Date); err != nil {
			return 0, fmt.Errorf("book payment: date: %w", err)
		}
	}
	if p.LedgerCode == "" {
		p.LedgerCode = "1100"
	}
	bank := a.ledgerByCode(p.LedgerCode)
	if bank == nil {
		return 0, fmt.Errorf("book payment: ledger %q: MUT_007 Unknown ledger", p.LedgerCode)
	}
	if p.Description == "" {
		p.Description = "Betaling " + p.InvoiceNumber
	}
	deb := a.firstLedger("DEB")
	in := &mutIn{Type: 3, Date: date, LedgerID: bank.ID, InvoiceNumber: p.InvoiceNumber, Description: p.Description,
		InExVat: "EX", RelationID: item.RelationID, Rows: []mutationRow{{LedgerID: deb.ID, VATCode: "GEEN",
			Amount: money{amount}, InvoiceNumber: p.InvoiceNumber, RelationID: item.RelationID, Description: p.Description}}}
	m, e := s.book(a, in)
	if e != nil {
		return 0, fmt.Errorf("book payment: %w", e)
	}
	return m.ID, nil
}

// SaleVATCode is the sale VAT code of an administration the simulator makes for a VAT
// percentage ("21", "9", "0"): what an operator links a Tribe VAT group of that rate to.
func SaleVATCode(percentage string) string {
	switch percentage {
	case "9":
		return "LAAG_VERK_9"
	case "0":
		return "GEEN"
	default:
		return "HOOG_VERK_21"
	}
}
