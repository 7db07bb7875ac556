// Package gen generates realistic Dutch administrations for the e-Boekhouden simulator: companies
// and private persons with plausible KvK numbers, VAT numbers, valid IBANs with the matching BIC,
// addresses, e-mail addresses and phone numbers, and products with units, VAT codes and prices.
// The output depends only on the seed, so a test or a benchmark can ask for the same 100,000
// relations twice.
package gen

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"strings"
)

// Relation is one generated customer or supplier.
type Relation struct {
	Type                      string // "B" company, "P" private person
	Code                      string
	Name                      string
	Contact                   string
	Gender                    string // m, v or "" for companies
	Address                   string
	PostalCode                string
	City                      string
	Country                   string
	PhoneNumber               string
	MobilePhoneNumber         string
	EmailAddress              string
	Website                   string
	VATNumber                 string
	CompanyRegistrationNumber string
	IBAN                      string
	BIC                       string
	TermOfPayment             int
	Inactive                  bool
}

// Product is one generated article.
type Product struct {
	Code          string
	Description   string
	Unit          string // singular unit name: stuk, uur, doos, kg, m2, licentie
	GroupCode     string
	VATCode       string // HOOG_VERK_21, LAAG_VERK_9 or GEEN
	PriceExcl     string // decimal with 2 places
	PurchasePrice string
	Active        bool
}

// Generator produces deterministic records from a seed. It is not safe for concurrent use.
type Generator struct {
	rng *rand.Rand
	n   int
}

// New returns a generator for seed.
func New(seed uint64) *Generator {
	return &Generator{rng: rand.New(rand.NewPCG(seed, seed^0x5deece66d))}
}

// InactiveShare is the fraction of generated relations and products that are inactive.
const InactiveShare = 0.07

// Relations returns n relations with codes 1001, 1002, ... (about 70 % companies).
func (g *Generator) Relations(n int) []Relation {
	out := make([]Relation, 0, n)
	for range n {
		out = append(out, g.Relation())
	}
	return out
}

// Relation returns the next relation.
func (g *Generator) Relation() Relation {
	g.n++
	r := Relation{Code: fmt.Sprint(1000 + g.n), Country: "NL", TermOfPayment: g.pick14()}
	city := cities[g.rng.IntN(len(cities))]
	r.City = city.name
	r.PostalCode = fmt.Sprintf("%04d %s", city.pc+g.rng.IntN(90), g.letters())
	r.Address = fmt.Sprintf("%s %d", streets[g.rng.IntN(len(streets))], 1+g.rng.IntN(240))
	if g.rng.IntN(6) == 0 {
		r.Address += strings.ToUpper(string(rune('a' + g.rng.IntN(4))))
	}
	first := firstNames[g.rng.IntN(len(firstNames))]
	last := g.surname()
	r.Gender = first.gender
	r.Contact = first.name + " " + last
	r.IBAN, r.BIC = g.IBAN()
	r.PhoneNumber = fmt.Sprintf("0%d-%07d", city.area, g.rng.IntN(10_000_000))
	if g.rng.IntN(3) > 0 {
		r.MobilePhoneNumber = fmt.Sprintf("06-%08d", g.rng.IntN(100_000_000))
	}
	if g.rng.Float64() < 0.7 {
		r.Type = "B"
		r.Name = g.companyName(last)
		domain := slug(r.Name) + ".nl"
		r.Website = "www." + domain
		r.EmailAddress = []string{"info@", "administratie@", "facturen@"}[g.rng.IntN(3)] + domain
		r.CompanyRegistrationNumber = fmt.Sprintf("%08d", 10_000_000+g.rng.IntN(89_999_999))
		r.VATNumber = fmt.Sprintf("NL%09dB%02d", g.rng.IntN(1_000_000_000), 1+g.rng.IntN(3))
	} else {
		r.Type = "P"
		r.Name = r.Contact
		r.EmailAddress = slug(first.name) + "." + slug(last) + "@" + []string{"gmail.com", "hotmail.com", "ziggo.nl", "kpnmail.nl", "outlook.com"}[g.rng.IntN(5)]
	}
	r.Inactive = g.rng.Float64() < InactiveShare
	return r
}

func (g *Generator) pick14() int { return []int{14, 14, 30, 30, 30, 8, 60}[g.rng.IntN(7)] }

// letters returns two postcode letters; SA, SD and SS are not issued.
func (g *Generator) letters() string {
	for {
		s := string([]byte{byte('A' + g.rng.IntN(26)), byte('A' + g.rng.IntN(26))})
		if s != "SA" && s != "SD" && s != "SS" {
			return s
		}
	}
}

func (g *Generator) surname() string {
	s := surnames[g.rng.IntN(len(surnames))]
	if g.rng.IntN(4) == 0 {
		s = prefixes[g.rng.IntN(len(prefixes))] + " " + s
	}
	return s
}

func (g *Generator) companyName(last string) string {
	switch g.rng.IntN(4) {
	case 0:
		return capitalise(last) + " " + trades[g.rng.IntN(len(trades))] + " B.V."
	case 1:
		return capitalise(last) + " & " + surnames[g.rng.IntN(len(surnames))] + " " + []string{"VOF", "B.V.", "Advocaten", "Accountants"}[g.rng.IntN(4)]
	case 2:
		return brands[g.rng.IntN(len(brands))] + " " + trades[g.rng.IntN(len(trades))]
	}
	return capitalise(last) + " " + []string{"Holding B.V.", "B.V.", "Groep", "& Zn."}[g.rng.IntN(4)]
}

// Banks are real Dutch bank codes with their BIC.
var banks = []struct{ code, bic string }{
	{"ABNA", "ABNANL2A"}, {"RABO", "RABONL2U"}, {"INGB", "INGBNL2A"}, {"SNSB", "SNSBNL2A"},
	{"ASNB", "ASNBNL21"}, {"TRIO", "TRIONL2U"}, {"KNAB", "KNABNL2H"}, {"BUNQ", "BUNQNL2A"},
	{"RBRB", "RBRBNL21"},
}

// IBAN returns a Dutch IBAN with valid check digits and the bank's BIC.
func (g *Generator) IBAN() (iban, bic string) {
	b := banks[g.rng.IntN(len(banks))]
	acct := fmt.Sprintf("%010d", g.rng.Int64N(10_000_000_000))
	return "NL" + IBANCheckDigits("NL", b.code+acct) + b.code + acct, b.bic
}

// IBANCheckDigits computes the two ISO 13616 check digits of country and bban (98 − mod 97).
func IBANCheckDigits(country, bban string) string {
	var digits strings.Builder
	for _, c := range strings.ToUpper(bban + country + "00") {
		if c >= 'A' && c <= 'Z' {
			fmt.Fprintf(&digits, "%d", c-'A'+10)
		} else {
			digits.WriteRune(c)
		}
	}
	n, ok := new(big.Int).SetString(digits.String(), 10)
	if !ok {
		return "00"
	}
	mod := new(big.Int).Mod(n, big.NewInt(97)).Int64()
	return fmt.Sprintf("%02d", 98-mod)
}

// ValidIBAN reports whether iban (spaces allowed) has valid mod-97 check digits.
func ValidIBAN(iban string) bool {
	s := strings.ToUpper(strings.ReplaceAll(iban, " ", ""))
	if len(s) < 15 || len(s) > 34 {
		return false
	}
	for _, c := range s {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return IBANCheckDigits(s[:2], s[4:]) == s[2:4]
}

// Products returns n products with codes P0001, P0002, ...
func (g *Generator) Products(n int) []Product {
	out := make([]Product, 0, n)
	for i := range n {
		a := articles[g.rng.IntN(len(articles))]
		price := a.price * (0.6 + g.rng.Float64()*0.8)
		p := Product{
			Code:          fmt.Sprintf("P%04d", i+1),
			Description:   a.desc + " " + variants[g.rng.IntN(len(variants))],
			Unit:          a.unit,
			GroupCode:     a.group,
			VATCode:       a.vat,
			PriceExcl:     fmt.Sprintf("%.2f", price),
			PurchasePrice: fmt.Sprintf("%.2f", price*0.55),
			Active:        g.rng.Float64() >= InactiveShare,
		}
		out = append(out, p)
	}
	return out
}

func slug(s string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			b.WriteRune(c)
		case c == 'é', c == 'ë':
			b.WriteRune('e')
		}
	}
	return b.String()
}

func capitalise(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

var cities = []struct {
	name     string
	pc, area int
}{
	{"Amsterdam", 1011, 20}, {"Rotterdam", 3011, 10}, {"Den Haag", 2511, 70}, {"Utrecht", 3511, 30},
	{"Eindhoven", 5611, 40}, {"Groningen", 9711, 50}, {"Tilburg", 5011, 13}, {"Almere", 1311, 36},
	{"Breda", 4811, 76}, {"Nijmegen", 6511, 24}, {"Apeldoorn", 7311, 55}, {"Haarlem", 2011, 23},
	{"Arnhem", 6811, 26}, {"Enschede", 7511, 53}, {"Amersfoort", 3811, 33}, {"Zwolle", 8011, 38},
	{"Leeuwarden", 8911, 58}, {"Maastricht", 6211, 43}, {"Leiden", 2311, 71}, {"Dordrecht", 3311, 78},
	{"Deventer", 7411, 570}, {"Delft", 2611, 15}, {"Alkmaar", 1811, 72}, {"Venlo", 5911, 77},
	{"Middelburg", 4331, 118}, {"Assen", 9401, 592}, {"'s-Hertogenbosch", 5211, 73}, {"Hilversum", 1211, 35},
}

var streets = []string{
	"Kerkstraat", "Dorpsstraat", "Molenweg", "Stationsweg", "Schoolstraat", "Julianastraat",
	"Beatrixlaan", "Wilhelminastraat", "Nieuwstraat", "Industrieweg", "Marktplein", "Hoofdstraat",
	"Eikenlaan", "Lindelaan", "Prinses Irenestraat", "Oranjestraat", "Havenweg", "Kanaaldijk",
	"Herengracht", "Keizersgracht", "Bredeweg", "Parallelweg", "Energieweg", "Ambachtsweg",
}

var firstNames = []struct{ name, gender string }{
	{"Jan", "m"}, {"Pieter", "m"}, {"Daan", "m"}, {"Sem", "m"}, {"Lucas", "m"}, {"Bram", "m"},
	{"Kees", "m"}, {"Henk", "m"}, {"Ruben", "m"}, {"Thijs", "m"}, {"Emma", "v"}, {"Sophie", "v"},
	{"Julia", "v"}, {"Anna", "v"}, {"Lotte", "v"}, {"Fleur", "v"}, {"Sanne", "v"}, {"Ingrid", "v"},
	{"Marieke", "v"}, {"Anouk", "v"},
}

var surnames = []string{
	"Jansen", "Bakker", "Visser", "Smit", "Meijer", "Mulder", "Bos", "Vos", "Peters", "Hendriks",
	"Dekker", "Brouwer", "Dijkstra", "Koster", "Prins", "Huisman", "Kok", "Willems", "Verhoeven",
	"Kuipers", "Postma", "Scholten", "Hoekstra", "Vermeulen", "Schouten", "Jacobs", "Wouters",
}

var prefixes = []string{"de", "van", "van der", "van den", "ter", "van de"}

var trades = []string{
	"Installatietechniek", "Bouw", "Schilderwerken", "Transport", "ICT", "Advies", "Hoveniers",
	"Metaal", "Elektro", "Interieur", "Makelaardij", "Catering", "Fysiotherapie", "Logistiek",
}

var brands = []string{"Noordzee", "Polder", "Delta", "Oranje", "Tulp", "Molen", "Duin", "Zuidas", "Veluwe", "Waddenzee"}

var articles = []struct {
	desc, unit, group, vat string
	price                  float64
}{
	{"Consultancy", "uur", "DIENST", "HOOG_VERK_21", 95},
	{"Installatie", "uur", "DIENST", "HOOG_VERK_21", 65},
	{"Onderhoudscontract", "stuk", "DIENST", "HOOG_VERK_21", 450},
	{"Softwarelicentie", "licentie", "SOFTWARE", "HOOG_VERK_21", 29},
	{"Kabel", "m", "MATERIAAL", "HOOG_VERK_21", 3.5},
	{"Tegels", "m2", "MATERIAAL", "HOOG_VERK_21", 42},
	{"Koffiebonen", "kg", "LEVENSMIDDELEN", "LAAG_VERK_9", 18},
	{"Vakliteratuur", "stuk", "BOEKEN", "LAAG_VERK_9", 39},
	{"Verzendkosten", "stuk", "OVERIG", "HOOG_VERK_21", 6.95},
	{"Cursus", "stuk", "OPLEIDING", "GEEN", 395},
	{"Schroeven", "doos", "MATERIAAL", "HOOG_VERK_21", 12.5},
}

var variants = []string{"basis", "standaard", "plus", "premium", "klein", "groot", "type A", "type B", "2026"}
