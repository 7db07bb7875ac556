package record

import (
	"slices"
	"testing"
)

func base() Relation {
	return Relation{Kind: Organization, Name: "Jansen Installatietechniek B.V.", Code: "10042", Phone: "020-1234567",
		Website: "https://www.jansen.nl/", VATNumber: "NL 8012.34.567 B01", CoCNumber: "12345678",
		IBAN: "NL91 ABNA 0417 1643 00", BIC: "abnanl2a",
		InvoiceAddress: Address{Line: "Kerkstraat  12 A", PostalCode: "1234ab", City: "Amsterdam", Country: "nl"}}
}

func TestNormalizeMakesEquivalentFormsEqual(t *testing.T) {
	a := base()
	b := base()
	b.Website = "www.jansen.nl"
	b.IBAN = "nl91abna0417164300"
	b.InvoiceAddress.PostalCode = "1234 AB"
	b.InvoiceAddress.Line = "Kerkstraat 12 A"
	if d := Diff(a, b); len(d) != 0 {
		t.Fatalf("equivalent forms differ in %v", d)
	}
	n := a.Normalize()
	if n.IBAN != "NL91ABNA0417164300" || n.BIC != "ABNANL2A" || n.InvoiceAddress.Country != "NL" || n.Website != "www.jansen.nl" {
		t.Fatalf("normalised = %+v", n)
	}
	p := Relation{Kind: Person, FirstName: "Joost", MiddleName: "de", LastName: "Tester"}.Normalize()
	if p.Name != "Joost de Tester" {
		t.Fatalf("person name = %q", p.Name)
	}
}

func TestMergeKeepsOneSidedChanges(t *testing.T) {
	b := base()
	tr, eb := base(), base()
	tr.Phone = "06-11112222"
	eb.IBAN = "NL02RABO0123456789"
	m, conflicts := Merge(b, tr, eb)
	if len(conflicts) != 0 {
		t.Fatalf("conflicts = %v", conflicts)
	}
	if m.Phone != "06-11112222" || m.IBAN != "NL02RABO0123456789" || m.Name != b.Normalize().Name {
		t.Fatalf("merged = %+v", m)
	}
}

func TestMergeSettlesTwoSidedChangesByOwner(t *testing.T) {
	b := base()
	tr, eb := base(), base()
	tr.Name, eb.Name = "Jansen Techniek BV", "Jansen Install BV"
	tr.IBAN, eb.IBAN = "NL02RABO0123456789", "NL20INGB0001234567"
	tr.InvoiceAddress.City, eb.InvoiceAddress.City = "Haarlem", "Utrecht"
	m, conflicts := Merge(b, tr, eb)
	if m.Name != "Jansen Techniek BV" || m.IBAN != "NL20INGB0001234567" || m.InvoiceAddress.City != "Haarlem" {
		t.Fatalf("merged = %+v", m)
	}
	var got []string
	for _, c := range conflicts {
		got = append(got, c.Field+"="+string(c.Winner))
	}
	want := []string{"name=tribe", "iban=eboekhouden", "invoice_address.city=tribe"}
	if !slices.Equal(got, want) {
		t.Fatalf("conflicts = %v, want %v", got, want)
	}
}

func TestMergeWithoutBase(t *testing.T) {
	tr, eb := base(), base()
	tr.Code, eb.Code = "", "10042"
	tr.Phone, eb.Phone = "06-1", "06-2"
	m, conflicts := Merge(Relation{}, tr, eb)
	// An empty field is no change, so the code fills in; both sides have a phone, so Tribe's wins.
	if m.Code != "10042" || m.Phone != "06-1" || len(conflicts) != 1 || conflicts[0].Field != "phone" {
		t.Fatalf("merged %+v, conflicts %v", m, conflicts)
	}
}

func TestStreetLine(t *testing.T) {
	for _, c := range []struct {
		line, street string
		number       int
		suffix       string
	}{
		{"Kerkstraat 12 A", "Kerkstraat", 12, "A"},
		{"Kerkstraat 12A", "Kerkstraat", 12, "A"},
		{"Laan van Meerdervoort 1001-3", "Laan van Meerdervoort", 1001, "-3"},
		{"Postbus", "Postbus", 0, ""},
		{"2e Hugo de Grootstraat 7", "2e Hugo de Grootstraat", 7, ""},
	} {
		s, n, x := SplitStreetLine(c.line)
		if s != c.street || n != c.number || x != c.suffix {
			t.Errorf("%q: got %q %d %q", c.line, s, n, x)
		}
		if c.number > 0 {
			if back := JoinStreetLine(s, n, x); !sameStreetLine(back, c.line) {
				t.Errorf("%q: round trip gave %q", c.line, back)
			}
		}
	}
}

// sameStreetLine compares two lines by their parts.
func sameStreetLine(a, b string) bool {
	s1, n1, x1 := SplitStreetLine(a)
	s2, n2, x2 := SplitStreetLine(b)
	return s1 == s2 && n1 == n2 && x1 == x2
}

func TestEncodeDecode(t *testing.T) {
	r := base()
	got, err := Decode(r.Encode())
	if err != nil || len(Diff(got, r)) != 0 {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	if z, err := Decode(nil); err != nil || z.Name != "" {
		t.Fatal("empty record")
	}
}

func TestAbsentFieldsNeverWipeTheOtherSide(t *testing.T) {
	b := Relation{Kind: Person, FirstName: "Joost", MiddleName: "de", LastName: "Tester", Phone: "06-1", VATNumber: "NL1"}.Normalize()
	tr := b
	tr.Phone = "06-2"
	// e-Boekhouden keeps only the full name; a Tribe person here has no VAT number field.
	eb := Relation{Kind: Person, Name: "Joost de Tester", Phone: "06-1", VATNumber: "NL1", Absent: []string{"first_name", "middle_name", "last_name"}}
	tr.VATNumber, tr.Absent = "", []string{"vat_number"}
	m, conflicts := Merge(b, tr, eb)
	if len(conflicts) != 0 || m.FirstName != "Joost" || m.LastName != "Tester" || m.VATNumber != "NL1" || m.Phone != "06-2" {
		t.Fatalf("merged %+v conflicts %v", m, conflicts)
	}
	// The full name changed in e-Boekhouden: Tribe's parts follow.
	eb.Name = "Joost van der Tester"
	m, _ = Merge(b, b, eb)
	if m.FirstName != "Joost" || m.MiddleName != "van der" || m.LastName != "Tester" || m.Name != "Joost van der Tester" {
		t.Fatalf("renamed: %+v", m)
	}
}
