// Package record is the relation flow's domain: the canonical relation that both systems are
// compared through, its normalisation, and the three-way merge that settles changes made on both
// sides since the last sync. It knows nothing of HTTP, Tribe's OData or e-Boekhouden's JSON; the
// adapters convert to and from it.
package record

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// Kind tells organisations from persons.
type Kind string

// Kinds of relation. e-Boekhouden calls them B (business) and P (private).
const (
	Organization Kind = "organization"
	Person       Kind = "person"
)

// Address is one address as e-Boekhouden keeps it: a single street line.
type Address struct {
	Line       string `json:"line,omitempty"` // street, house number and suffix: "Kerkstraat 12 A"
	PostalCode string `json:"postal_code,omitempty"`
	City       string `json:"city,omitempty"`
	Country    string `json:"country,omitempty"` // ISO 3166-1 alpha-2, upper case
}

// Relation is the canonical relation: exactly the fields koppel synchronises (DESIGN section 1).
// The visit address is deliberately absent: it is never synchronised.
type Relation struct {
	Kind Kind `json:"kind"`
	// Name is the organisation name, or a person's full name.
	Name string `json:"name"`
	// Persons only: the parts of the name, as Tribe keeps them.
	FirstName  string `json:"first_name,omitempty"`
	MiddleName string `json:"middle_name,omitempty"`
	LastName   string `json:"last_name,omitempty"`
	// Code is the debtor number in Tribe and the relation code in e-Boekhouden.
	Code           string  `json:"code,omitempty"`
	Phone          string  `json:"phone,omitempty"`
	Website        string  `json:"website,omitempty"`
	VATNumber      string  `json:"vat_number,omitempty"`
	CoCNumber      string  `json:"coc_number,omitempty"`
	BIC            string  `json:"bic,omitempty"`
	IBAN           string  `json:"iban,omitempty"`
	InvoiceAddress Address `json:"invoice_address"`
	PostalAddress  Address `json:"postal_address"`

	// Absent lists the fields (by JSON name, such as "first_name" or "invoice_address.city")
	// that the system this record was read from does not keep. The merge takes them as
	// unchanged, so a field one side cannot hold never wipes the other side's value.
	Absent []string `json:"-"`
}

var spaces = regexp.MustCompile(`\s+`)

func text(s string) string { return strings.TrimSpace(spaces.ReplaceAllString(s, " ")) }

// compact removes all white space and upper-cases: IBAN, BIC, VAT and CoC numbers are written
// with and without spaces, in any case, and mean the same.
func compact(s string) string {
	return strings.ToUpper(strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s))
}

func postalCode(s string) string {
	s = strings.ToUpper(text(s))
	// Dutch postcodes are written "1234AB" and "1234 AB": keep one form.
	if m := dutchPostcode.FindStringSubmatch(s); m != nil {
		return m[1] + " " + m[2]
	}
	return s
}

var dutchPostcode = regexp.MustCompile(`^(\d{4})\s*([A-Z]{2})$`)

func website(s string) string {
	s = strings.TrimSpace(s)
	lower := strings.ToLower(s)
	for _, p := range []string{"https://", "http://"} {
		if strings.HasPrefix(lower, p) {
			s = s[len(p):]
			break
		}
	}
	return strings.TrimSuffix(s, "/")
}

// Normalize returns r in canonical form, so two records that mean the same compare equal.
func (r Relation) Normalize() Relation {
	r.Name = text(r.Name)
	r.FirstName, r.MiddleName, r.LastName = text(r.FirstName), text(r.MiddleName), text(r.LastName)
	r.Code = text(r.Code)
	r.Phone = text(r.Phone)
	r.Website = website(r.Website)
	r.VATNumber = compact(r.VATNumber)
	r.CoCNumber = compact(r.CoCNumber)
	r.BIC = compact(r.BIC)
	r.IBAN = compact(r.IBAN)
	r.InvoiceAddress = r.InvoiceAddress.Normalize()
	r.PostalAddress = r.PostalAddress.Normalize()
	if r.Kind == Person && r.Name == "" {
		r.Name = text(strings.Join([]string{r.FirstName, r.MiddleName, r.LastName}, " "))
	}
	return r
}

// WithNameParts returns r with a person's first, middle and last name split from its full name
// when it has none, as Tribe will keep them once written there.
func (r Relation) WithNameParts() Relation {
	if r.Kind == Person && r.LastName == "" {
		r.FirstName, r.MiddleName, r.LastName = SplitPersonName(r.Name)
	}
	return r
}

// Normalize returns a in canonical form. The street line is rebuilt from its parts, so a line
// that went through Tribe (street, house number and suffix apart) compares equal to the line it
// came from: "Kerkstraat 12A" and "Kerkstraat 12 A" are one address.
func (a Address) Normalize() Address {
	return Address{Line: JoinStreetLine(SplitStreetLine(a.Line)), PostalCode: postalCode(a.PostalCode), City: text(a.City), Country: strings.ToUpper(text(a.Country))}
}

// Encode is the stored form of a last-synced record.
func (r Relation) Encode() []byte {
	b, _ := json.Marshal(r.Normalize())
	return b
}

// Decode reads a stored record; an empty one decodes to the zero Relation.
func Decode(b []byte) (Relation, error) {
	var r Relation
	if len(b) == 0 {
		return r, nil
	}
	err := json.Unmarshal(b, &r)
	return r, err
}

var streetLine = regexp.MustCompile(`^(.*?)\s+(\d+)\s*(\S.*)?$`)

// SplitStreetLine splits "Kerkstraat 12 A" into street "Kerkstraat", number 12 and suffix "A", as
// Tribe keeps addresses. A line without a house number is all street.
func SplitStreetLine(line string) (street string, number int, suffix string) {
	line = text(line)
	m := streetLine.FindStringSubmatch(line)
	if m == nil {
		return line, 0, ""
	}
	n := 0
	for _, c := range m[2] {
		n = n*10 + int(c-'0')
		if n > 1_000_000 {
			return line, 0, ""
		}
	}
	return m[1], n, strings.TrimSpace(m[3])
}

// JoinStreetLine is the inverse of SplitStreetLine. A suffix that starts with a letter or digit
// is set apart ("12 A", "12 bis"), one that starts with punctuation is not ("1001-3", "12/2").
func JoinStreetLine(street string, number int, suffix string) string {
	line := text(street)
	if number > 0 {
		line = text(line + " " + strconv.Itoa(number))
	}
	if s := text(suffix); s != "" {
		if r := []rune(s)[0]; unicode.IsLetter(r) || unicode.IsDigit(r) {
			line += " "
		}
		line = text(line + s)
	}
	return line
}
