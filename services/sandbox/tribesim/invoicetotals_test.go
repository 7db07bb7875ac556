package tribesim_test

import (
	"fmt"
	"testing"

	"github.com/koppel/koppel/services/sandbox/tribesim"
)

// draftInvoice makes a draft invoice for the first customer with the given fields and lines and
// returns its ID.
func (h *harness) draftInvoice(fields map[string]any, lines ...map[string]any) string {
	h.t.Helper()
	st, list := h.do("GET", "/v1/odata/Relationship_Organization_CommercialRelationship_Customer?$top=1", nil)
	if st != 200 || len(list["value"].([]any)) == 0 {
		h.t.Fatalf("customers: %d %v", st, list)
	}
	cust := list["value"].([]any)[0].(map[string]any)["ID"]
	body := map[string]any{"Subject": "Test", "Relationship": map[string]any{"ID": cust}}
	for k, v := range fields {
		body[k] = v
	}
	st, inv := h.do("POST", "/v1/odata/Activity_Invoice", body)
	if st >= 300 {
		h.t.Fatalf("create invoice: %d %v", st, inv)
	}
	for _, l := range lines {
		l["Activity"] = map[string]any{"ID": inv["ID"]}
		if st, b := h.do("POST", "/v1/odata/ProductLine", l); st >= 300 {
			h.t.Fatalf("create line: %d %v", st, b)
		}
	}
	return inv["ID"].(string)
}

func (h *harness) get(set, id string, query string) map[string]any {
	h.t.Helper()
	st, b := h.do("GET", fmt.Sprintf("/v1/odata/%s(%s)%s", set, id, query), nil)
	if st != 200 {
		h.t.Fatalf("get %s %s: %d %v", set, id, st, b)
	}
	return b
}

// A price kept incl. VAT: 7 × 10.00 incl. 9% is 70.00 incl., of which 5.78 VAT.
func TestLinePricesInclVAT(t *testing.T) {
	h := start(t, tribesim.Options{}, tribesim.EnvironmentSpec{Generate: &tribesim.GenerateSpec{Organizations: 1}})
	id := h.draftInvoice(map[string]any{"IsVatIncluded": true},
		map[string]any{"Description": "Taart", "Quantity": 7, "Price": 10.00, "VatPercentage": 9})
	inv := h.get("Activity_Invoice", id, "?$expand=ProductLines")
	l := inv["ProductLines"].([]any)[0].(map[string]any)
	if fmt.Sprint(l["TotalIncludingVat"], " ", l["VatAmount"], " ", l["TotalExcludingVat"]) != "70 5.78 64.22" {
		t.Fatalf("line totals incl %v vat %v excl %v", l["TotalIncludingVat"], l["VatAmount"], l["TotalExcludingVat"])
	}
	if fmt.Sprint(inv["Amount"]) != "64.22" {
		t.Fatalf("Amount %v, want 64.22 (excl. VAT)", inv["Amount"])
	}
}

// The invoice discount is in Amount, per line; Amount is excl. or incl. VAT as configured.
func TestInvoiceAmountHasTheDiscount(t *testing.T) {
	for _, c := range []struct {
		amount tribesim.InvoiceAmount
		want   string
	}{{tribesim.AmountExclVAT, "135"}, {tribesim.AmountInclVAT, "163.35"}} {
		t.Run(string(c.amount), func(t *testing.T) {
			h := start(t, tribesim.Options{InvoiceAmount: c.amount}, tribesim.EnvironmentSpec{Generate: &tribesim.GenerateSpec{Organizations: 1}})
			id := h.draftInvoice(map[string]any{"DiscountPercentage": 10},
				map[string]any{"Description": "Advies", "Quantity": 1, "Price": 100, "VatPercentage": 21},
				map[string]any{"Description": "Uren", "Quantity": 2, "Price": 25, "VatPercentage": 21})
			if got := fmt.Sprint(h.get("Activity_Invoice", id, "")["Amount"]); got != c.want {
				t.Fatalf("Amount %s, want %s", got, c.want)
			}
			// Changing the discount on the draft changes the Amount.
			if st, b := h.do("PUT", "/v1/odata/Activity_Invoice("+id+")", map[string]any{"DiscountPercentage": 0}); st >= 300 {
				t.Fatalf("update: %d %v", st, b)
			}
			if got := fmt.Sprint(h.get("Activity_Invoice", id, "")["Amount"]); got == c.want {
				t.Fatalf("Amount %s did not change without the discount", got)
			}
		})
	}
}

// A note can be added to a sent invoice, which is otherwise frozen.
func TestNoteOnASentInvoice(t *testing.T) {
	h := start(t, tribesim.Options{}, tribesim.EnvironmentSpec{Generate: &tribesim.GenerateSpec{Organizations: 1}})
	id := h.draftInvoice(nil, map[string]any{"Description": "Advies", "Quantity": 1, "Price": 100, "VatPercentage": 21})
	if err := h.sim.MoveInvoiceToPhase(h.env.ID, id, "Sent"); err != nil {
		t.Fatal(err)
	}
	if st, b := h.do("PUT", "/v1/odata/Activity_Invoice("+id+")", map[string]any{"Subject": "Changed"}); st != 400 {
		t.Fatalf("a sent invoice was changed: %d %v", st, b)
	}
	st, note := h.do("POST", "/v1/odata/Note", map[string]any{"Subject": "Betaling", "Content": "21.00 betaald", "ImportId": "n1", "Entity": map[string]any{"ID": id}})
	if st >= 300 {
		t.Fatalf("note: %d %v", st, note)
	}
	notes := h.get("Activity_Invoice", id, "?$expand=Notes")["Notes"].([]any)
	if len(notes) != 1 || notes[0].(map[string]any)["Content"] != "21.00 betaald" {
		t.Fatalf("notes %v", notes)
	}
}
