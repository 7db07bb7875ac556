package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/koppel/koppel/services/devstack/internal/stack"
)

// bookkeeper works in an e-Boekhouden administration of the simulator through its public API,
// as a person in e-Boekhouden's own screens would.
type bookkeeper struct{ *client }

func newBookkeeper(t *testing.T, s *stack.Stack, ebAdmin string) bookkeeper {
	t.Helper()
	var adm struct{ AccessToken string }
	sandboxJSON(t, s, "GET", "/eboekhouden/_sim/admins/"+ebAdmin, nil, &adm)
	b := bookkeeper{&client{t: t, base: "http://" + s.Addrs["sandbox"] + "/eboekhouden"}}
	b.token, _ = b.call("POST", "/v1/session", map[string]string{"accessToken": adm.AccessToken, "source": "boekhouder"})["token"].(string)
	return b
}

// call sends one API request and fails the test on anything but a 2xx.
func (b bookkeeper) call(method, path string, body any) map[string]any {
	b.t.Helper()
	code, out := b.do(method, path, body)
	if code >= 300 {
		b.t.Fatalf("e-Boekhouden %s %s: %d %v", method, path, code, out)
	}
	return out
}

// ids maps the codes (or, for units, the singular names) of a list endpoint's items to their IDs.
func (b bookkeeper) ids(path, key string) map[string]int64 {
	b.t.Helper()
	items, _ := b.call("GET", path, nil)["items"].([]any)
	out := map[string]int64{}
	for _, it := range items {
		m := it.(map[string]any)
		out[fmt.Sprint(m[key])] = int64(m["id"].(float64))
	}
	return out
}

// createProduct creates a product and returns its ID as koppel stores it (ImportId).
func (b bookkeeper) createProduct(p map[string]any) string {
	b.t.Helper()
	id, _ := b.call("POST", "/v1/product", p)["id"].(float64)
	return strconv.FormatInt(int64(id), 10)
}

// ebProducts is the e-Boekhouden product list with every field, as raw JSON, and how often the
// product write routes were called: what koppel must never change.
func ebProducts(t *testing.T, s *stack.Stack, ebAdmin string) (json.RawMessage, [3]float64) {
	var raw json.RawMessage
	sandboxJSON(t, s, "GET", "/eboekhouden/_sim/admins/"+ebAdmin+"/state?kind=products", nil, &raw)
	var stats map[string]float64
	sandboxJSON(t, s, "GET", "/eboekhouden/_sim/stats", nil, &stats)
	return raw, [3]float64{stats["POST /v1/product"], stats["PATCH /v1/product/{id}"], stats["DELETE /v1/product/{id}"]}
}

// lookupIDs maps the codes of a Tribe look-up set to their IDs.
func lookupIDs(t *testing.T, s *stack.Stack, env, set string) map[string]string {
	out := map[string]string{}
	for _, e := range tribeEntities(t, s, env, set) {
		out[e["Code"].(string)] = e["ID"].(string)
	}
	return out
}

// tribeProducts maps the Tribe products that carry an e-Boekhouden ID (ImportId) to it.
func tribeProducts(t *testing.T, s *stack.Stack, env string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, p := range tribeEntities(t, s, env, "Product") {
		if id, _ := p["ImportId"].(string); id != "" {
			if out[id] != nil {
				t.Fatalf("two Tribe products carry e-Boekhouden ID %s", id)
			}
			out[id] = p
		}
	}
	return out
}

func navID(v any) string {
	m, _ := v.(map[string]any)
	id, _ := m["ID"].(string)
	return id
}

// runProducts starts a product pull through the admin API, as an operator's "sync now", and
// returns the finished run.
func runProducts(t *testing.T, admin *client, st *sandboxTenant) *mappingv1.Run {
	t.Helper()
	code, body := admin.do("POST", "/admin/v1/tenants/"+st.id+"/sync/product", nil)
	runID, _ := body["run_id"].(string)
	if code != 202 || runID == "" {
		t.Fatalf("run products: %d %v", code, body)
	}
	var run *mappingv1.Run
	eventually(t, "product run "+runID, 30*time.Second, func() bool {
		run = st.run(t, "product")
		return run != nil && run.Id == runID && run.Status != mappingv1.RunStatus_RUN_STATUS_RUNNING
	})
	return run
}

// wantProduct is what one Tribe product must hold.
type wantProduct struct {
	code, name, purchase, sales, unit, vat string
	inactive                               bool
}

func TestProductsPulledFromEBoekhoudenEndToEnd(t *testing.T) {
	s := startStackEnv(t, map[string]string{"KOPPEL_TRIBE_RATE": "1000", "KOPPEL_EBOEKHOUDEN_RATE": "1000"}, "scheduler")
	st := newSandboxTenant(t, s, "acme", 0)
	admin := &client{t: t, base: "http://" + s.Addrs["admin"], token: s.AdminToken}
	bk := newBookkeeper(t, s, st.ebAdmin)
	units := bk.ids("/v1/unit", "singular")
	ledgers := bk.ids("/v1/ledger", "code")
	product := func(code, desc, unit, vat string, prices map[string]any) map[string]any {
		p := map[string]any{"code": code, "description": desc, "unitId": units[unit], "vat": vat, "ledgerId": ledgers["8000"]}
		for k, v := range prices {
			p[k] = v
		}
		return p
	}
	advice := bk.createProduct(product("ADV-01", "Adviesuur senior", "uur", "HOOG_VERK_21", map[string]any{"priceExcl": 95, "purchasePriceExcl": 40.5}))
	// A price kept incl. VAT stays incl. VAT in Tribe (IsVatIncluded), so multiples lose no cents.
	book := bk.createProduct(product("BOEK-7", "Vakboek boekhouden", "stuk", "LAAG_VERK_9", map[string]any{"priceIncl": 32.70, "purchasePriceExcl": 18.25}))
	// No purchase price; GEEN goes to the VAT group linked to it (EXEMPT), not just any 0% group.
	training := bk.createProduct(product("TRAIN-1", "Trainingsdag", "dag", "GEEN", map[string]any{"priceExcl": 450}))
	old := bk.createProduct(product("OUD-1", "Oud artikel", "stuk", "HOOG_VERK_21", map[string]any{"priceExcl": 12.5, "active": false}))
	doomed := bk.createProduct(product("WEG-1", "Wordt verwijderd", "stuk", "HOOG_VERK_21", map[string]any{"priceExcl": 1.99, "purchasePriceExcl": 0.99}))
	// Tribe has no unit "doos": not synced, an issue on the tenant.
	box := bk.createProduct(product("DOOS-1", "Doos schroeven", "doos", "HOOG_VERK_21", map[string]any{"priceExcl": 8}))

	tribeUnits := lookupIDs(t, s, "acme", "Datastore_Unit")
	tribeVAT := lookupIDs(t, s, "acme", "Datastore_VatGroup")
	tribeGroups := lookupIDs(t, s, "acme", "ProductGroup")
	// The tenant's VAT groups are linked to VAT codes, as at activation; ZERO is left unlinked.
	st.linkVAT(t, map[string]string{tribeVAT["HIGH"]: "HOOG_VERK_21", tribeVAT["LOW"]: "LAAG_VERK_9", tribeVAT["EXEMPT"]: "GEEN"})
	want := map[string]wantProduct{
		advice:   {"ADV-01", "Adviesuur senior", "40.50", "95.00", "HOUR", "HIGH", false},
		book:     {"BOEK-7", "Vakboek boekhouden", "18.25", "32.70", "PCS", "LOW", false},
		training: {"TRAIN-1", "Trainingsdag", "0.00", "450.00", "DAY", "EXEMPT", false},
		old:      {"OUD-1", "Oud artikel", "0.00", "12.50", "PCS", "HIGH", true},
		doomed:   {"WEG-1", "Wordt verwijderd", "0.99", "1.99", "PCS", "HIGH", false},
	}
	check := func(products map[string]map[string]any) {
		t.Helper()
		if len(products) != len(want) {
			t.Errorf("Tribe has %d products from e-Boekhouden, want %d", len(products), len(want))
		}
		for ebID, w := range want {
			p := products[ebID]
			if p == nil {
				t.Errorf("e-Boekhouden product %s (%s) is not in Tribe", ebID, w.code)
				continue
			}
			got := wantProduct{fmt.Sprint(p["Code"]), fmt.Sprint(p["Name"]), fmt.Sprintf("%.2f", p["PurchasePrice"]), fmt.Sprintf("%.2f", p["SalesPrice"]),
				"", "", p["IsInactive"] == true}
			for code, id := range tribeUnits {
				if id == navID(p["Unit"]) {
					got.unit = code
				}
			}
			for code, id := range tribeVAT {
				if id == navID(p["VatGroup"]) {
					got.vat = code
				}
			}
			if got != w {
				t.Errorf("Tribe product of %s:\n got %+v\nwant %+v", ebID, got, w)
			}
			if p["IsVatIncluded"] != (w.code == "BOEK-7") {
				t.Errorf("product %s: IsVatIncluded %v", w.code, p["IsVatIncluded"])
			}
			for _, f := range []string{"IsPriceEditable", "IsVatEditable", "IsDescriptionEditable"} {
				if p[f] != true {
					t.Errorf("product %s: %s %v, want true", w.code, f, p[f])
				}
			}
			// New products go to the first product group by code (there is no "e-Boekhouden" group).
			if navID(p["ProductGroup"]) != tribeGroups["LIC"] {
				t.Errorf("product %s: product group %v, want LIC", w.code, p["ProductGroup"])
			}
		}
	}

	ebBefore, writesBefore := ebProducts(t, s, st.ebAdmin)
	run := runProducts(t, admin, st)
	if c := run.Counts; run.Status != mappingv1.RunStatus_RUN_STATUS_PARTIAL || c.Created != 5 || c.Failed != 1 || c.Updated+c.Unchanged+c.Skipped != 0 {
		t.Fatalf("first pull: %v %v %q", run.Status, run.Counts, run.Message)
	}
	first := tribeProducts(t, s, "acme")
	check(first)
	if first[box] != nil {
		t.Errorf("the product with an unknown unit reached Tribe: %v", first[box])
	}
	if _, body := admin.do("GET", "/admin/v1/tenants/acme/status", nil); !strings.Contains(fmt.Sprint(body["issues"]), "unknown_unit") {
		t.Errorf("status lacks the unknown_unit issue: %v", body["issues"])
	}
	if ebAfter, writesAfter := ebProducts(t, s, st.ebAdmin); !bytes.Equal(ebBefore, ebAfter) || writesAfter != writesBefore {
		t.Fatalf("the pull changed e-Boekhouden: writes %v -> %v\nbefore %s\nafter  %s", writesBefore, writesAfter, ebBefore, ebAfter)
	}

	// The bookkeeper raises a price, deactivates a product and deletes another.
	bk.call("PATCH", "/v1/product/"+advice, map[string]any{"priceExcl": 99.5})
	bk.call("PATCH", "/v1/product/"+book, map[string]any{"active": false})
	bk.call("DELETE", "/v1/product/"+doomed, nil)
	w := want[advice]
	w.sales = "99.50"
	want[advice] = w
	w = want[book]
	w.inactive = true
	want[book] = w

	ebBefore, writesBefore = ebProducts(t, s, st.ebAdmin)
	run = runProducts(t, admin, st)
	if c := run.Counts; c.Updated != 2 || c.Unchanged != 2 || c.Failed != 1 || c.Created+c.Skipped != 0 {
		t.Fatalf("second pull: %v %v %q", run.Status, run.Counts, run.Message)
	}
	second := tribeProducts(t, s, "acme")
	check(second)
	// Unchanged products are not written (the same record, modification date included), and
	// the product deleted in e-Boekhouden stays in Tribe as it was.
	for _, id := range []string{training, old, doomed} {
		if !reflect.DeepEqual(first[id], second[id]) {
			t.Errorf("Tribe product of %s was written:\nbefore %v\nafter  %v", id, first[id], second[id])
		}
	}
	if ebAfter, writesAfter := ebProducts(t, s, st.ebAdmin); !bytes.Equal(ebBefore, ebAfter) || writesAfter != writesBefore {
		t.Fatalf("the pull changed e-Boekhouden: writes %v -> %v\nbefore %s\nafter  %s", writesBefore, writesAfter, ebBefore, ebAfter)
	}
}
