package main

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/koppel/koppel/pkg/tenantsettings"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
)

// vatGroupIDs are the Tribe VAT groups by code.
func (w *world) vatGroupIDs() map[string]string {
	w.t.Helper()
	groups, err := w.tr.Entities(w.env.ID, "Datastore_VatGroup")
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[string]string{}
	for _, g := range groups {
		out[str(g, "Code")] = str(g, "ID")
	}
	return out
}

// linkVAT replaces the tenant's VAT links: Tribe group code -> e-Boekhouden VAT code.
func (w *world) linkVAT(byGroup map[string]string) {
	w.t.Helper()
	ids := w.vatGroupIDs()
	settings := w.tenantRecord().GetSettings()
	settings.Links = map[string]string{}
	for g, code := range byGroup {
		settings.Links[tenantsettings.VATCodePrefix+ids[g]] = code
	}
	if _, err := w.m.Client.UpdateTenantSettings(ctx, &mappingv1.UpdateTenantSettingsRequest{TenantId: w.tenant, Settings: settings}); err != nil {
		w.t.Fatal(err)
	}
}

// The administration sells abroad (BU_EU_VERK), sells without VAT (GEEN) and reverse-charges
// (VERL_VERK): all at 0%. Tribe's groups ZERO and EXEMPT are linked to export and no-VAT at
// activation. Each product must get the group linked to its code, and a code no group is linked
// to must not land on a group that means something else.
func TestProductVATFollowsTheLinkedCode(t *testing.T) {
	w := newWorld(t, 3)
	w.linkVAT(map[string]string{"HIGH": "HOOG_VERK_21", "LOW": "LAAG_VERK_9", "ZERO": "BU_EU_VERK", "EXEMPT": "GEEN"})
	p := w.ebProducts()
	w.patch(p[0].ID, map[string]any{"vat": "BU_EU_VERK"})
	w.patch(p[1].ID, map[string]any{"vat": "GEEN"})
	w.patch(p[2].ID, map[string]any{"vat": "VERL_VERK"})
	if c := w.run("manual"); c.Created != 2 || c.Failed != 1 {
		t.Fatalf("counts %v: want 2 created, 1 failed", c)
	}
	group := func(id int64) string {
		return str(w.navLookup(w.tribeProducts()[strconv.FormatInt(id, 10)], "VatGroup"), "Code")
	}
	if g := group(p[0].ID); g != "ZERO" {
		t.Errorf("export product in VAT group %s, want ZERO", g)
	}
	if g := group(p[1].ID); g != "EXEMPT" {
		t.Errorf("no-VAT product in VAT group %s, want EXEMPT", g)
	}
	if i := w.issues()[issueKey(strconv.FormatInt(p[2].ID, 10), "vat")]; i == nil || i.GetCode() != "unknown_vat" {
		t.Fatalf("reverse-charge product: issues %v", w.issues())
	}

	// Linked to a group of its own, the reverse-charge product syncs at the next pull.
	w.linkVAT(map[string]string{"HIGH": "HOOG_VERK_21", "LOW": "LAAG_VERK_9", "ZERO": "VERL_VERK", "EXEMPT": "GEEN"})
	if c := w.run("schedule"); c.Created != 1 || c.Failed != 0 {
		t.Fatalf("counts after linking: %v", c)
	}
	if g := group(p[2].ID); g != "ZERO" {
		t.Errorf("reverse-charge product in VAT group %s, want ZERO", g)
	}
}

// Without any VAT link, a 0% code fits ZERO and EXEMPT alike: an issue, not a guess.
func TestProductVATPercentageDoesNotGuess(t *testing.T) {
	w := newWorld(t, 2)
	w.linkVAT(nil)
	p := w.ebProducts()
	w.patch(p[0].ID, map[string]any{"vat": "GEEN"})
	w.patch(p[1].ID, map[string]any{"vat": "HOOG_VERK_21"})
	if c := w.run("manual"); c.Created != 1 || c.Failed != 1 {
		t.Fatalf("counts %v: want 1 created (the 21%% one: one group has it), 1 failed", c)
	}
	if i := w.issues()[issueKey(strconv.FormatInt(p[0].ID, 10), "vat")]; i == nil || i.GetCode() != "ambiguous_vat" {
		t.Fatalf("issues %v", w.issues())
	}
}

// The bookkeeper keeps a cake at 10.00 incl. 9% VAT. In Tribe it must stay 10.00 incl. VAT, so
// that 7 cakes on an invoice are 70.00 as Tribe computes the line, not 7 × 9.17 = 69.97.
func TestPriceInclVATStaysInclVATInTribe(t *testing.T) {
	w := newWorld(t, 1)
	cake := w.ebProducts()[0]
	w.patch(cake.ID, map[string]any{"vat": "LAAG_VERK_9", "priceIncl": 10.00})
	if c := w.run("manual"); c.Created != 1 {
		t.Fatalf("counts %v", c)
	}
	e := w.tribeProducts()[strconv.FormatInt(cake.ID, 10)]
	if e["IsVatIncluded"] != true || !dec(t, e["SalesPrice"]).Equal(dec(t, "10")) {
		t.Fatalf("Tribe product: SalesPrice %v, IsVatIncluded %v; want 10.00 incl. VAT", e["SalesPrice"], e["IsVatIncluded"])
	}

	// A Tribe user invoices 7 of them: the invoice takes the product's price and its incl. VAT.
	customers, err := w.tr.Entities(w.env.ID, "Relationship_Organization_CommercialRelationship_Customer")
	if err != nil {
		t.Fatal(err)
	}
	inv, err := w.tr.UserWrite(w.env.ID, "Activity_Invoice", "", map[string]any{"Subject": "Taarten", "IsVatIncluded": e["IsVatIncluded"],
		"Relationship": map[string]any{"ID": customerID(t, w, customers)}})
	if err != nil {
		t.Fatal(err)
	}
	line, err := w.tr.UserWrite(w.env.ID, "ProductLine", "", map[string]any{"Description": "Taart", "Quantity": 7, "Price": e["SalesPrice"],
		"VatPercentage": 9, "Product": map[string]any{"ID": e["ID"]}, "Activity": map[string]any{"ID": inv["ID"]}})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(line["TotalIncludingVat"]); !dec(t, got).Equal(dec(t, "70")) {
		t.Fatalf("Tribe's line total %s incl. VAT, want 70.00", got)
	}

	// Unchanged, it is not written again; back to a price excl. VAT, it follows.
	if c := w.run("manual"); c.Unchanged != 1 {
		t.Fatalf("second pull %v", c)
	}
	w.patch(cake.ID, map[string]any{"priceExcl": 9.50})
	w.run("manual")
	e = w.tribeProducts()[strconv.FormatInt(cake.ID, 10)]
	if e["IsVatIncluded"] != false || !dec(t, e["SalesPrice"]).Equal(dec(t, "9.5")) {
		t.Fatalf("after the change to excl.: SalesPrice %v, IsVatIncluded %v", e["SalesPrice"], e["IsVatIncluded"])
	}
}

func customerID(t *testing.T, w *world, customers []map[string]any) string {
	t.Helper()
	if len(customers) > 0 {
		return str(customers[0], "ID")
	}
	// The product world has no generated customers: make one as a Tribe user would.
	own, _ := w.tr.Environment(w.env.ID)
	c, err := w.tr.UserWrite(w.env.ID, "Relationship_Organization_CommercialRelationship_Customer", "", map[string]any{
		"Relation": map[string]any{"ID": own.OwnOrganizationID}, "Organization": map[string]any{"Name": "Bakkerij Jansen"}})
	if err != nil {
		t.Fatal(err)
	}
	return str(c, "ID")
}

// A pull that crashed between creating a Tribe product and storing its link: the next pull finds
// the product by the e-Boekhouden ID on it, and Tribe never gets it twice.
func TestLostLinkFindsTheProductInsteadOfMakingItAgain(t *testing.T) {
	w := newWorld(t, 2)
	w.run("manual")
	lost := strconv.FormatInt(w.ebProducts()[0].ID, 10)
	tribeID, _ := w.tribeProducts()[lost]["ID"].(string)
	if _, err := w.m.Client.DeleteLink(ctx, &mappingv1.DeleteLinkRequest{TenantId: w.tenant, Kind: kindProduct, TribeId: tribeID}); err != nil {
		t.Fatal(err)
	}
	if c := w.run("manual"); c.Created != 0 || c.Updated != 1 {
		t.Fatalf("counts %v: want the product found (1 updated), none created", c)
	}
	if got := w.tribeProducts()[lost]["ID"]; got != tribeID {
		t.Fatalf("Tribe product %v, want %s", got, tribeID)
	}
}
