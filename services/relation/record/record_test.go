package record

import (
	"errors"
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
	o := Merge(Synced{Relation: b}, tr, eb)
	m, conflicts := o.Synced.Relation, o.Conflicts
	if len(conflicts) != 0 {
		t.Fatalf("conflicts = %v", conflicts)
	}
	if len(Diff(o.Tribe, m)) != 0 || len(Diff(o.EBoekhouden, m)) != 0 {
		t.Fatalf("both systems must hold the merged record: %+v / %+v", o.Tribe, o.EBoekhouden)
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
	o := Merge(Synced{Relation: b}, tr, eb)
	m, conflicts := o.Synced.Relation, o.Conflicts
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

// The import finds "Bos Groep" in the books and "Afkorting" with the same debtor number in Tribe.
// Nothing says which name is right, so neither system is overwritten; Tribe's empty website takes
// the books' one; the differences are held until a user settles them.
func TestFirstContactNeverWritesTheBooks(t *testing.T) {
	eb := Relation{Kind: Organization, Name: "Bos Groep", Code: "1001", Website: "www.bosgroep.nl", IBAN: "NL91ABNA0417164300",
		InvoiceAddress: Address{Line: "Hoofdweg 17", PostalCode: "1234AB", City: "Zwolle"}}
	tr := Relation{Kind: Organization, Name: "Afkorting", Code: "1001", Phone: "020-5550100",
		InvoiceAddress: Address{Line: "Hoofdweg 17", PostalCode: "1234 AB", City: "Zwolle"}}
	o := FirstContact(tr, eb, DebtorNumber)
	if d := Diff(o.EBoekhouden, eb); len(d) != 0 {
		t.Fatalf("first contact would write e-Boekhouden: %v", d)
	}
	if o.Tribe.Name != "Afkorting" || o.Tribe.Phone != "020-5550100" || o.Tribe.Website != "www.bosgroep.nl" || o.Tribe.IBAN != "NL91ABNA0417164300" {
		t.Fatalf("Tribe gets %+v", o.Tribe)
	}
	if got := o.Synced.HeldFields(); !slices.Equal(got, []string{"name", "phone"}) {
		t.Fatalf("held %v, want name and phone", got)
	}
	if d := Diff(o.Synced.TribeView(), o.Tribe); len(d) != 0 {
		t.Fatalf("the echo of Tribe's write would look like a change: %v", d)
	}

	// Nobody touched either: nothing moves, however often it is merged.
	again := Merge(o.Synced, o.Tribe, eb)
	if len(Diff(again.EBoekhouden, eb)) != 0 || len(Diff(again.Tribe, o.Tribe)) != 0 || len(again.Synced.Held) != 2 {
		t.Fatalf("an untouched held field moved: %+v", again)
	}
	// The user corrects the name in Tribe: that edit wins and goes to the books. The phone stays held.
	edited := o.Tribe
	edited.Name = "Bos Groep B.V."
	next := Merge(o.Synced, edited, eb)
	if next.EBoekhouden.Name != "Bos Groep B.V." || next.EBoekhouden.Phone != "" || !slices.Equal(next.Settled, []string{"name"}) || !slices.Equal(next.Synced.HeldFields(), []string{"phone"}) {
		t.Fatalf("after the Tribe edit: books %+v, settled %v, held %v", next.EBoekhouden, next.Settled, next.Synced.HeldFields())
	}
	// The bookkeeper types the same phone number in the books: settled, nothing to write.
	eb2 := next.EBoekhouden
	eb2.Phone = "020 5550100"
	last := Merge(next.Synced, next.Tribe, eb2)
	if len(last.Synced.Held) != 0 || last.Tribe.Phone != "020 5550100" && last.Tribe.Phone != "020-5550100" || len(last.Conflicts) != 0 {
		t.Fatalf("after the books agree: %+v", last)
	}
}

func TestFirstContactOfPersons(t *testing.T) {
	tr := Relation{Kind: Person, FirstName: "Anna Maria", LastName: "Jansen", Absent: []string{"website", "vat_number", "coc_number"}}
	eb := Relation{Kind: Person, Name: "Anna Maria Jansen", Website: "annajansen.nl", Absent: []string{"first_name", "middle_name", "last_name"}}
	o := FirstContact(tr, eb, DebtorNumber)
	if len(o.Synced.Held) != 0 {
		t.Fatalf("equal full names and a field Tribe has no place for are no differences: held %v", o.Synced.Held)
	}
	if o.Tribe.FirstName != "Anna Maria" || o.Tribe.MiddleName != "" {
		t.Fatalf("Tribe's name parts were re-split: %+v", o.Tribe)
	}
}

func TestHeldFieldChangedOnBothSidesGoesToItsOwner(t *testing.T) {
	base := Synced{Relation: Relation{Kind: Organization, Name: "A", IBAN: "NL1"}, Held: map[string]Held{"iban": {Tribe: "NL2", EBoekhouden: "NL1"}}}
	o := Merge(base, Relation{Kind: Organization, Name: "A", IBAN: "NL3"}, Relation{Kind: Organization, Name: "A", IBAN: "NL4"})
	if o.Synced.IBAN != "NL4" || len(o.Conflicts) != 1 || o.Conflicts[0].Winner != EBoekhouden || len(o.Synced.Held) != 0 {
		t.Fatalf("%+v", o)
	}
}

func TestMatchOrder(t *testing.T) {
	cands := []Candidate{
		{ID: "supplier", CreditorNumber: "1001"},
		{ID: "customer", DebtorNumber: "2001"},
		{ID: "imported", EBoekhoudenID: "77", DebtorNumber: "3001"},
		{ID: "twin-a", DebtorNumber: "4001"}, {ID: "twin-b", DebtorNumber: "4001"},
		{ID: "both", DebtorNumber: "5001"}, {ID: "other-supplier", CreditorNumber: "5001"},
	}
	for _, c := range []struct {
		ebID, code, want string
		field            CodeField
	}{
		{"1", "1001", "supplier", CreditorNumber},
		{"2", "2001", "customer", DebtorNumber},
		{"77", "9999", "imported", DebtorNumber},
		{"3", "5001", "both", DebtorNumber},
		{"4", "6001", "", ""},
	} {
		got, field, found, err := Match(cands, c.ebID, c.code)
		if err != nil || got.ID != c.want || field != c.field || found != (c.want != "") {
			t.Errorf("match %s/%s: %v %q %v %v", c.ebID, c.code, got.ID, field, found, err)
		}
	}
	if _, _, _, err := Match(cands, "5", "4001"); !errors.Is(err, ErrAmbiguous) {
		t.Fatalf("two relations with one debtor number: %v", err)
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
		{"Laan van Meerdervoort 1001 -3", "Laan van Meerdervoort", 1001, "-3"},
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

// A line that went through Tribe's parts compares equal to the line it came from, so no echo
// rewrites the bookkeeper's address.
func TestStreetLineFormsAreOneAddress(t *testing.T) {
	for _, pair := range [][2]string{{"Kerkstraat 12A", "Kerkstraat 12 A"}, {"Laan 1001-3", "Laan 1001 -3"}, {"Postbus  40", "Postbus 40"}} {
		a, b := Address{Line: pair[0]}.Normalize(), Address{Line: pair[1]}.Normalize()
		if a != b {
			t.Errorf("%q and %q normalise to %q and %q", pair[0], pair[1], a.Line, b.Line)
		}
		s, n, x := SplitStreetLine(a.Line)
		if JoinStreetLine(s, n, x) != a.Line {
			t.Errorf("%q does not survive Tribe's parts", a.Line)
		}
	}
}

func TestSyncedDecodesOldRecords(t *testing.T) {
	old := base().Encode()
	s, err := DecodeSynced(old)
	if err != nil || s.Name != base().Normalize().Name || s.Held != nil || s.CodeField != DebtorNumber {
		t.Fatalf("old record: %+v %v", s, err)
	}
	s.Held = map[string]Held{"name": {Tribe: "x", EBoekhouden: "y"}}
	s.CodeField = CreditorNumber
	back, err := DecodeSynced(s.Encode())
	if err != nil || back.Held["name"].Tribe != "x" || back.CodeField != CreditorNumber {
		t.Fatalf("round trip: %+v %v", back, err)
	}
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
	o := Merge(Synced{Relation: b}, tr, eb)
	m, conflicts := o.Synced.Relation, o.Conflicts
	if len(conflicts) != 0 || m.FirstName != "Joost" || m.LastName != "Tester" || m.VATNumber != "NL1" || m.Phone != "06-2" {
		t.Fatalf("merged %+v conflicts %v", m, conflicts)
	}
	// The full name changed in e-Boekhouden: Tribe's parts follow.
	eb.Name = "Joost van der Tester"
	m = Merge(Synced{Relation: b}, b, eb).Synced.Relation
	if m.FirstName != "Joost" || m.MiddleName != "van der" || m.LastName != "Tester" || m.Name != "Joost van der Tester" {
		t.Fatalf("renamed: %+v", m)
	}
}
