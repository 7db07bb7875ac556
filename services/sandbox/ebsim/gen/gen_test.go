package gen

import (
	"reflect"
	"regexp"
	"testing"
)

var (
	postcodeRE = regexp.MustCompile(`^[1-9][0-9]{3} [A-Z]{2}$`)
	kvkRE      = regexp.MustCompile(`^[0-9]{8}$`)
	vatRE      = regexp.MustCompile(`^NL[0-9]{9}B[0-9]{2}$`)
)

func TestDeterministicAndPlausible(t *testing.T) {
	a, b := New(42).Relations(2000), New(42).Relations(2000)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed, different relations")
	}
	if reflect.DeepEqual(a[:10], New(43).Relations(10)) {
		t.Fatal("different seeds, same relations")
	}
	var companies, inactive int
	for _, r := range a {
		if !ValidIBAN(r.IBAN) || r.BIC == "" || r.IBAN[4:8] != r.BIC[:4] {
			t.Fatalf("IBAN %s / BIC %s", r.IBAN, r.BIC)
		}
		if !postcodeRE.MatchString(r.PostalCode) || r.City == "" || r.Address == "" || r.EmailAddress == "" {
			t.Fatalf("address %+v", r)
		}
		if r.Type == "B" {
			companies++
			if !kvkRE.MatchString(r.CompanyRegistrationNumber) || !vatRE.MatchString(r.VATNumber) {
				t.Fatalf("company numbers %+v", r)
			}
		}
		if r.Inactive {
			inactive++
		}
	}
	if companies < 1200 || companies > 1600 || inactive == 0 {
		t.Errorf("companies %d, inactive %d of 2000", companies, inactive)
	}
	if !ValidIBAN("NL91 ABNA 0417 1643 00") || ValidIBAN("NL92ABNA0417164300") {
		t.Error("ValidIBAN on the textbook example")
	}
	ps := New(1).Products(50)
	if len(ps) != 50 || ps[0].Code != "P0001" || ps[0].PriceExcl == "" {
		t.Errorf("products: %+v", ps[0])
	}
}
