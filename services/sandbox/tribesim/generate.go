package tribesim

import (
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// GenerateSpec asks for generated, realistic Dutch data. The same Seed and counts give the same
// data (IDs come from the simulator's own seeded source, so they are reproducible per Options.Seed
// and call order).
type GenerateSpec struct {
	// Seed of the data. Default 1.
	Seed uint64 `json:"seed"`
	// Organizations with a customer relationship; every fourth is also a supplier. Default 0.
	Organizations int `json:"organizations"`
	// Persons with a B2C customer relationship. Default 0.
	Persons int `json:"persons"`
	// ContactsPerOrganization adds contact persons. Default 0.
	ContactsPerOrganization int `json:"contactsPerOrganization"`
	// Products. Default 0.
	Products int `json:"products"`
	// Invoices, spread over the customers and the phases Draft, Sent and Paid. Needs customers and
	// products. Default 0.
	Invoices int `json:"invoices"`
	// WithoutDebtorNumber leaves every n-th customer without a debtor number (0: all have one),
	// as koppel must handle.
	WithoutDebtorNumber int `json:"withoutDebtorNumber"`
}

var (
	genPrefixes = []string{"Bakkerij", "Installatiebedrijf", "Schildersbedrijf", "Adviesbureau", "Transport", "Hoveniersbedrijf", "Drukkerij", "Autobedrijf", "Architectenbureau", "Zorggroep", "Techniek", "Houthandel"}
	genNames    = []string{"De Vries", "Jansen", "Van den Berg", "Bakker", "Visser", "Smit", "Meijer", "De Boer", "Mulder", "De Groot", "Bos", "Vos", "Peters", "Hendriks", "Van Leeuwen", "Dekker", "'t Hart", "Van Dijk"}
	genSuffixes = []string{"B.V.", "V.O.F.", "& Zn.", "Holding B.V.", "N.V.", ""}
	genFirst    = []string{"Jan", "Pieter", "Sanne", "Lotte", "Daan", "Emma", "Sem", "Julia", "Lucas", "Tess", "Bram", "Fleur", "Thijs", "Anouk", "Ruben", "Noor"}
	genMiddle   = []string{"", "", "van", "de", "van der", "van den", "ter", ""}
	genLast     = []string{"Jansen", "de Jong", "Bakker", "Visser", "Smit", "Meijer", "Mulder", "Bos", "Vos", "Peters", "Hendriks", "Dekker", "Brouwer", "Dijkstra", "Kok"}
	genCities   = []struct{ city, pc string }{{"Amsterdam", "10"}, {"Rotterdam", "30"}, {"Utrecht", "35"}, {"Den Haag", "25"}, {"Eindhoven", "56"}, {"Groningen", "97"}, {"Zwolle", "80"}, {"Arnhem", "68"}, {"Haarlem", "20"}, {"Maastricht", "62"}, {"'s-Hertogenbosch", "52"}, {"Leeuwarden", "89"}}
	genStreets  = []string{"Dorpsstraat", "Kerkstraat", "Stationsweg", "Industrieweg", "Molenweg", "Julianalaan", "Nieuwe Gracht", "Marktplein", "Havenkade", "Beatrixstraat"}
	genBanks    = []struct{ code, bic, name string }{{"INGB", "INGBNL2A", "ING"}, {"RABO", "RABONL2U", "Rabobank"}, {"ABNA", "ABNANL2A", "ABN AMRO"}, {"SNSB", "SNSBNL2A", "SNS"}, {"TRIO", "TRIONL2U", "Triodos"}}
	genProducts = []struct {
		name, unit, vat, group, price string
	}{{"Adviesuur", "HOUR", "HIGH", "SERV", "95.00"}, {"Installatie op locatie", "HOUR", "HIGH", "SERV", "72.50"}, {"Dagdeel training", "DAY", "HIGH", "SERV", "450.00"},
		{"Softwarelicentie per maand", "MONTH", "HIGH", "LIC", "29.95"}, {"Onderhoudscontract", "MONTH", "HIGH", "LIC", "149.00"}, {"Kilometervergoeding", "KM", "HIGH", "SERV", "0.23"},
		{"Vakliteratuur", "PCS", "LOW", "PROD", "34.99"}, {"Hardware kit", "PCS", "HIGH", "PROD", "249.00"}, {"Verzendkosten", "PCS", "HIGH", "PROD", "6.95"}, {"Reparatie", "HOUR", "LOW", "SERV", "55.00"}}
)

// iban builds a valid Dutch IBAN (correct ISO 7064 check digits) for a bank code and account.
func iban(bank string, account uint64) string {
	bban := fmt.Sprintf("%s%010d", bank, account)
	var digits strings.Builder
	for _, c := range bban + "NL00" {
		if c >= 'A' && c <= 'Z' {
			fmt.Fprintf(&digits, "%d", c-'A'+10)
		} else {
			digits.WriteRune(c)
		}
	}
	n, _ := new(big.Int).SetString(digits.String(), 10)
	check := 98 - new(big.Int).Mod(n, big.NewInt(97)).Int64()
	return fmt.Sprintf("NL%02d%s", check, bban)
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func (s *Simulator) lookupID(e *env, set, code string) string {
	for _, id := range e.bySet[set] {
		if str(e.recs[id].f["Code"]) == code {
			return id
		}
	}
	return ""
}

// generateLocked adds the data g asks for. Records are inserted directly (no webhooks), as an
// existing environment's history would be.
func (s *Simulator) generateLocked(e *env, g GenerateSpec) error {
	if g.Seed == 0 {
		g.Seed = 1
	}
	if g.Organizations < 0 || g.Persons < 0 || g.Products < 0 || g.Invoices < 0 || g.Organizations+g.Persons+g.Products+g.Invoices > 200000 {
		return badReq("generate: counts must be between 0 and 200000 in all")
	}
	r := rand.New(rand.NewPCG(g.Seed, 0x6b6f7070656c))
	nl := s.lookupID(e, SetCountry, "NL")
	addrType := func(code string) string { return s.lookupID(e, SetAddressType, code) }
	address := func(owner, ownerNav, typ string) string {
		c := pick(r, genCities)
		f := map[string]any{"Street": pick(r, genStreets), "HouseNumber": json.Number(fmt.Sprint(1 + r.IntN(250))),
			"Postalcode": fmt.Sprintf("%s%02d %c%c", c.pc, r.IntN(100), 'A'+r.IntN(26), 'A'+r.IntN(26)), "City": c.city}
		if r.IntN(5) == 0 {
			f["HouseNumberSuffix"] = string(rune('A' + r.IntN(4)))
		}
		return s.insertLocked(e, SetAddress, f, map[string]string{"Country": nl, "AddressType": addrType(typ), ownerNav: owner, "Relation": owner}).id
	}
	base := len(e.bySet[SetOrgCustomer]) + len(e.bySet[SetPersonCustomer])
	debtor := 10000 + base
	var customers []string
	for i := range g.Organizations {
		bank := pick(r, genBanks)
		name := strings.TrimSpace(fmt.Sprintf("%s %s %s", pick(r, genPrefixes), pick(r, genNames), pick(r, genSuffixes)))
		slug := strings.NewReplacer(" ", "", "'", "", ".", "", "&", "").Replace(strings.ToLower(name))
		f := map[string]any{"Name": name, "IsActive": true, "PhoneNumber": fmt.Sprintf("0%d-%07d", 10+r.IntN(89), r.IntN(10000000)),
			"EmailAddress": "info@" + slug + ".nl", "FinancialEmailAddress": "facturen@" + slug + ".nl", "Website": "https://www." + slug + ".nl",
			"VATNumber": fmt.Sprintf("NL%09dB%02d", r.IntN(1000000000), 1+r.IntN(9)), "ChamberOfCommerceNumber": fmt.Sprintf("%08d", r.IntN(100000000)),
			"ChamberOfCommerceName": name, "IBAN": iban(bank.code, r.Uint64N(10000000000)), "BIC": bank.bic, "BankName": bank.name}
		debtor++
		if g.WithoutDebtorNumber == 0 || (i+1)%g.WithoutDebtorNumber != 0 {
			f["DebtorNumber"] = fmt.Sprint(debtor)
		}
		org := s.insertLocked(e, SetOrganization, f, nil)
		s.setRef(e, org, "VisitingAddress", address(org.id, "Organization", "Visiting"))
		post := address(org.id, "Organization", "Postal")
		s.setRef(e, org, "PostalAddress", post)
		s.setRef(e, org, "InvoiceAddress", post)
		cust := s.insertLocked(e, SetOrgCustomer, map[string]any{"PaymentTermInDays": json.Number(pick(r, []string{"14", "30", "30", "60"})), "IsFormer": false},
			map[string]string{"Relation": e.ownOrg, "Organization": org.id, "AccountManager": e.employee})
		customers = append(customers, cust.id)
		if i%4 == 3 {
			org.f["CreditorNumber"] = fmt.Sprint(20000 + base + i)
			s.insertLocked(e, SetOrgSupplier, map[string]any{"PaymentTermInDays": json.Number("30")}, map[string]string{"Relation": e.ownOrg, "Organization": org.id})
		}
		for range g.ContactsPerOrganization {
			p := s.genPerson(e, r, false)
			s.insertLocked(e, SetContact, map[string]any{"Department": pick(r, []string{"Inkoop", "Administratie", "Directie", "Techniek"}), "EmailAddress": p.f["EmailAddress"]},
				map[string]string{"Relation": org.id, "Person": p.id})
		}
	}
	for i := range g.Persons {
		p := s.genPerson(e, r, true)
		debtor++
		if g.WithoutDebtorNumber == 0 || (i+1)%g.WithoutDebtorNumber != 0 {
			p.f["DebtorNumber"] = fmt.Sprint(debtor)
		}
		s.setRef(e, p, "InvoiceAddress", address(p.id, "Person", "Invoice"))
		cust := s.insertLocked(e, SetPersonCustomer, map[string]any{"PaymentTermInDays": json.Number("14")}, map[string]string{"Relation": e.ownOrg, "Person": p.id})
		customers = append(customers, cust.id)
	}
	lk := s.opts.Lookups
	var products []*record
	for i := range g.Products {
		pr := genProducts[i%len(genProducts)]
		name := pr.name
		if i >= len(genProducts) {
			name = fmt.Sprintf("%s %d", pr.name, i/len(genProducts)+1)
		}
		price := decimal.RequireFromString(pr.price)
		f := map[string]any{"Name": name, "Code": fmt.Sprintf("ART-%04d", len(e.bySet[SetProduct])+1), "Description": name, "SalesPrice": num(price),
			"PurchasePrice": num(price.Mul(decimal.RequireFromString("0.6")).Round(2)), "IsVatIncluded": false, "IsInactive": i%13 == 12,
			"IsPriceEditable": true, "IsVatEditable": true, "IsDescriptionEditable": true, "IsActive": true}
		products = append(products, s.insertLocked(e, SetProduct, f, map[string]string{"Unit": s.lookupID(e, lk.Unit, pr.unit),
			"VatGroup": s.lookupID(e, lk.VatGroup, pr.vat), "ProductGroup": s.lookupID(e, lk.ProductGroup, pr.group), "GeneralLedgerAccount": pick(r, e.bySet[lk.GeneralLedgerAccount])}))
	}
	if g.Invoices > 0 && (len(customers) == 0 || len(products) == 0) {
		if customers = append(e.bySet[SetOrgCustomer][:0:0], e.bySet[SetOrgCustomer]...); len(products) == 0 {
			for _, id := range e.bySet[SetProduct] {
				products = append(products, e.recs[id])
			}
		}
		if len(customers) == 0 || len(products) == 0 {
			return badReq("generate: invoices need customers and products")
		}
	}
	day := s.opts.Now().UTC().Truncate(24 * time.Hour)
	phases := []string{phaseDraft, phaseSent, phasePaid}
	for i := range g.Invoices {
		cust := e.recs[customers[r.IntN(len(customers))]]
		inv := s.insertLocked(e, SetInvoice, map[string]any{"Subject": fmt.Sprintf("%s %s", pick(r, []string{"Werkzaamheden", "Levering", "Abonnement", "Advies"}), day.AddDate(0, -i%12, 0).Format("01-2006")),
			"Currency": "EUR", "IsVatIncluded": false}, map[string]string{"Relationship": cust.id, "Phase": e.phases[phaseDraft]})
		for range 1 + r.IntN(4) {
			p := products[r.IntN(len(products))]
			vat := e.recs[p.refs["VatGroup"]]
			s.insertLocked(e, SetProductLine, map[string]any{"Description": p.f["Name"], "Quantity": json.Number(fmt.Sprint(1 + r.IntN(10))), "Price": p.f["SalesPrice"],
				"VatPercentage": vat.f["Percentage"], "Currency": "EUR", "DiscountPercentage": json.Number("0")}, map[string]string{"Product": p.id, "Activity": inv.id})
		}
		s.computeLocked(e, inv)
		if ph := phases[i%3]; ph != phaseDraft {
			s.setRef(e, inv, "Phase", e.phases[phaseSent])
			s.finalizeLocked(e, inv, day.AddDate(0, 0, -r.IntN(60)))
			s.setRef(e, inv, "Phase", e.phases[ph])
		}
	}
	return nil
}

func (s *Simulator) genPerson(e *env, r *rand.Rand, private bool) *record {
	first, middle, last := pick(r, genFirst), pick(r, genMiddle), pick(r, genLast)
	f := map[string]any{"FirstName": first, "LastName": last, "Initials": first[:1] + ".", "IsActive": true,
		"EmailAddress":      strings.ToLower(strings.ReplaceAll(first+"."+strings.TrimSpace(middle+last), " ", "")) + "@example.nl",
		"MobilePhoneNumber": fmt.Sprintf("06-%08d", r.IntN(100000000))}
	if middle != "" {
		f["MiddleName"] = middle
	}
	if private {
		bank := pick(r, genBanks)
		f["IBAN"], f["BIC"] = iban(bank.code, r.Uint64N(10000000000)), bank.bic
	}
	return s.insertLocked(e, SetPerson, f, nil)
}
