package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/koppel/koppel/pkg/eboekhouden"
	"github.com/koppel/koppel/pkg/syncrun"
	"github.com/koppel/koppel/pkg/tenantclients"
	"github.com/koppel/koppel/pkg/tenantsettings"
	eventsv1 "github.com/koppel/koppel/proto/koppel/events/v1"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/koppel/koppel/services/mapping/mappingtest"
	"github.com/koppel/koppel/services/sandbox/ebsim"
	"github.com/koppel/koppel/services/sandbox/tribesim"
	"github.com/shopspring/decimal"
)

// world is one tenant with both simulators and a real mapping service: the product flow runs
// in-process against it through the real clients and adapters.
type world struct {
	t      testing.TB
	m      *mappingtest.Service
	eb     *ebsim.Simulator
	ebURL  string
	ebAdm  ebsim.AdminInfo
	tr     *tribesim.Simulator
	env    tribesim.EnvironmentInfo
	ebc    *eboekhouden.Client
	p      *puller
	tenant string
	units  map[string]int64 // e-Boekhouden unit name -> ID
	token  string           // an e-Boekhouden session for the test's own writes
}

var ctx = context.Background()

// newWorld makes an administration of n generated products, every one with a unit Tribe knows
// (stuk, uur or dag).
func newWorld(t testing.TB, n int) *world {
	t.Helper()
	w := &world{t: t, m: mappingtest.Start(t), tenant: "acme"}
	w.eb = ebsim.New(ebsim.Options{})
	ebSrv := httptest.NewServer(w.eb)
	t.Cleanup(ebSrv.Close)
	w.ebURL = ebSrv.URL
	var err error
	if w.ebAdm, err = w.eb.CreateAdministration(ebsim.AdminSpec{Company: "Jansen BV", Products: n, Seed: 7}); err != nil {
		t.Fatal(err)
	}
	w.tr = tribesim.New(tribesim.Options{})
	t.Cleanup(w.tr.Close)
	trSrv := httptest.NewServer(w.tr)
	t.Cleanup(trSrv.Close)
	if w.env, err = w.tr.CreateEnvironment(tribesim.EnvironmentSpec{ID: "acme", Name: "Koppel Demo B.V."}); err != nil {
		t.Fatal(err)
	}
	// VAT groups linked to VAT codes, as the activation links them.
	links := map[string]string{}
	groups, err := w.tr.Entities(w.env.ID, "Datastore_VatGroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		if code, ok := map[string]string{"HIGH": "HOOG_VERK_21", "LOW": "LAAG_VERK_9", "EXEMPT": "GEEN"}[str(g, "Code")]; ok {
			links[tenantsettings.VATCodePrefix+str(g, "ID")] = code
		}
	}
	settings := &mappingv1.TenantSettings{EboekhoudenBaseUrl: ebSrv.URL, TribeBaseUrl: trSrv.URL, TribeAuthUrl: trSrv.URL, TribeClientId: w.env.ClientID, Links: links}
	if _, err := w.m.Client.CreateTenant(ctx, &mappingv1.CreateTenantRequest{Tenant: &mappingv1.Tenant{Id: w.tenant,
		State: mappingv1.TenantState_TENANT_STATE_ACTIVE, Settings: settings}}); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{tenantclients.SecretEBoekhoudenToken: w.ebAdm.AccessToken, tenantclients.SecretTribeClientSecret: w.env.ClientSecret} {
		if _, err := w.m.Client.PutSecret(ctx, &mappingv1.PutSecretRequest{TenantId: w.tenant, Name: name, Value: []byte(v)}); err != nil {
			t.Fatal(err)
		}
	}
	clients, err := tenantclients.New(w.m.Client, tenantclients.Options{EBoekhoudenRate: 1000, TribeRate: 1000})
	if err != nil {
		t.Fatal(err)
	}
	w.p = &puller{mapping: w.m.Client, connect: connector(clients), holder: "test", log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if w.ebc, err = eboekhouden.New(w.ebAdm.AccessToken, "test", eboekhouden.WithBaseURL(ebSrv.URL)); err != nil {
		t.Fatal(err)
	}
	units, err := eboekhouden.Collect(w.ebc.Units(ctx))
	if err != nil {
		t.Fatal(err)
	}
	w.units = map[string]int64{}
	for _, u := range units {
		w.units[u.Singular] = u.ID
	}
	var sess struct{ Token string }
	w.do("POST", "/v1/session", map[string]any{"accessToken": w.ebAdm.AccessToken, "source": "test"}, &sess)
	w.token = sess.Token
	for _, p := range w.ebProducts() {
		if u := w.unitName(p.UnitID); u != "stuk" && u != "uur" && u != "dag" {
			w.patch(p.ID, map[string]any{"unitId": w.units["stuk"]})
		}
	}
	return w
}

// do calls the e-Boekhouden simulator as a user of the administration would.
func (w *world) do(method, path string, body, out any) {
	w.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, w.ebURL+path, r)
	req.Header.Set("Content-Type", "application/json")
	if w.token != "" {
		req.Header.Set("Authorization", w.token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 300 {
		w.t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			w.t.Fatal(err)
		}
	}
}

func (w *world) patch(id int64, f map[string]any) {
	w.do("PATCH", fmt.Sprintf("/v1/product/%d", id), f, nil)
}

func (w *world) unitName(id int64) string {
	for name, uid := range w.units {
		if uid == id {
			return name
		}
	}
	return ""
}

func (w *world) tenantRecord() *mappingv1.Tenant {
	res, err := w.m.Client.GetTenant(ctx, &mappingv1.GetTenantRequest{TenantId: w.tenant})
	if err != nil {
		w.t.Fatal(err)
	}
	return res.GetTenant()
}

var runs int

// run does one product run fired by trigger ("schedule" or "manual") and returns its counts.
func (w *world) run(trigger string) *mappingv1.RunCounts {
	w.t.Helper()
	runs++
	id := fmt.Sprintf("run-%d", runs)
	r, err := syncrun.Start(ctx, w.m.Client, w.tenant, kindProduct, id, trigger)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := w.p.pull(ctx, w.tenantRecord(), &eventsv1.SyncCommand{TenantId: w.tenant, Kind: kindProduct, RunId: id, Trigger: trigger}, r); err != nil {
		w.t.Fatalf("product run: %v", err)
	}
	if err := r.Finish(ctx, nil); err != nil {
		w.t.Fatal(err)
	}
	res, err := w.m.Client.ListRuns(ctx, &mappingv1.ListRunsRequest{TenantId: w.tenant, Kind: kindProduct, Limit: 1})
	if err != nil || len(res.GetFinished()) == 0 {
		w.t.Fatalf("finished run: %v", err)
	}
	return res.GetFinished()[0].GetCounts()
}

func (w *world) ebProducts() []eboekhouden.Product {
	w.t.Helper()
	items, err := eboekhouden.Collect(w.ebc.Products(ctx))
	if err != nil {
		w.t.Fatal(err)
	}
	var out []eboekhouden.Product
	for _, it := range items {
		p, err := w.ebc.GetProduct(ctx, it.ID)
		if err != nil {
			w.t.Fatal(err)
		}
		out = append(out, *p)
	}
	return out
}

// tribeProducts gives Tribe's products by the e-Boekhouden ID stored on them.
func (w *world) tribeProducts() map[string]map[string]any {
	w.t.Helper()
	list, err := w.tr.Entities(w.env.ID, tribesim.SetProduct)
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, e := range list {
		if id, _ := e["ImportId"].(string); id != "" {
			if out[id] != nil {
				w.t.Fatalf("e-Boekhouden product %s is in Tribe twice", id)
			}
			out[id] = e
		}
	}
	return out
}

func (w *world) lookup(id string) map[string]any {
	w.t.Helper()
	e, ok := w.tr.Entity(w.env.ID, id)
	if !ok {
		w.t.Fatalf("no Tribe record %s", id)
	}
	return e
}

func (w *world) navLookup(e map[string]any, nav string) map[string]any {
	w.t.Helper()
	ref, _ := e[nav].(map[string]any)
	id, _ := ref["ID"].(string)
	if id == "" {
		w.t.Fatalf("product %v has no %s", e["Code"], nav)
	}
	return w.lookup(id)
}

func str(m map[string]any, k string) string { s, _ := m[k].(string); return s }

func dec(t testing.TB, v any) decimal.Decimal {
	t.Helper()
	d, err := decimal.NewFromString(fmt.Sprint(v))
	if err != nil {
		t.Fatalf("number %v: %v", v, err)
	}
	return d
}

func (w *world) issues() map[string]*mappingv1.Issue {
	w.t.Helper()
	res, err := w.m.Client.ListIssues(ctx, &mappingv1.ListIssuesRequest{TenantId: w.tenant})
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[string]*mappingv1.Issue{}
	for _, i := range res.GetIssues() {
		out[i.GetKey()] = i
	}
	return out
}

func TestFirstPullCreatesEveryProduct(t *testing.T) {
	w := newWorld(t, 30)
	eb := w.ebProducts()
	inactive := 0
	for _, p := range eb {
		if !p.Active {
			inactive++
		}
	}
	if inactive == 0 {
		t.Fatal("the generated administration has no inactive product")
	}
	c := w.run("schedule")
	if int(c.Created) != len(eb) || c.Failed != 0 || c.Updated != 0 {
		t.Fatalf("counts %v: want %d created", c, len(eb))
	}
	tr := w.tribeProducts()
	if len(tr) != len(eb) {
		t.Fatalf("Tribe has %d products, want %d", len(tr), len(eb))
	}
	pct := map[eboekhouden.VATCode]string{"HOOG_VERK_21": "21", "LAAG_VERK_9": "9", "GEEN": "0"}
	for _, p := range eb {
		e := tr[strconv.FormatInt(p.ID, 10)]
		if e == nil {
			t.Fatalf("product %s not in Tribe", p.Code)
		}
		if str(e, "Code") != p.Code || str(e, "Name") != p.Description {
			t.Errorf("product %d: Tribe %q %q, e-Boekhouden %q %q", p.ID, e["Code"], e["Name"], p.Code, p.Description)
		}
		if !dec(t, e["SalesPrice"]).Equal(p.PriceExcl.Decimal) || !dec(t, e["PurchasePrice"]).Equal(p.PurchasePriceExcl.Decimal) {
			t.Errorf("product %s: Tribe prices %v / %v, e-Boekhouden %v / %v", p.Code, e["SalesPrice"], e["PurchasePrice"], p.PriceExcl, p.PurchasePriceExcl)
		}
		if e["IsInactive"] != !p.Active || e["IsVatIncluded"] != false {
			t.Errorf("product %s: IsInactive %v IsVatIncluded %v, active in e-Boekhouden %v", p.Code, e["IsInactive"], e["IsVatIncluded"], p.Active)
		}
		if e["IsPriceEditable"] != true || e["IsVatEditable"] != true || e["IsDescriptionEditable"] != true {
			t.Errorf("product %s: editable flags %v %v %v", p.Code, e["IsPriceEditable"], e["IsVatEditable"], e["IsDescriptionEditable"])
		}
		if unit := str(w.navLookup(e, "Unit"), "Name"); !equalFold(unit, w.unitName(p.UnitID)) {
			t.Errorf("product %s: Tribe unit %q, e-Boekhouden %q", p.Code, unit, w.unitName(p.UnitID))
		}
		if got := dec(t, w.navLookup(e, "VatGroup")["Percentage"]); got.String() != pct[p.VAT] {
			t.Errorf("product %s: Tribe VAT %v%%, e-Boekhouden %s", p.Code, got, p.VAT)
		}
		w.navLookup(e, "ProductGroup")
	}

	// A second pull writes nothing, scheduled (list only) or manual (every detail read).
	for _, trigger := range []string{"schedule", "manual"} {
		if c := w.run(trigger); int(c.Unchanged) != len(eb) || c.Created+c.Updated+c.Failed != 0 {
			t.Fatalf("%s pull after the first: counts %v, want all unchanged", trigger, c)
		}
	}
	for id, e := range w.tribeProducts() {
		if fmt.Sprint(e["LastMutationDate"]) != fmt.Sprint(tr[id]["LastMutationDate"]) {
			t.Fatalf("product %s was written again", id)
		}
	}
}

func equalFold(a, b string) bool {
	return len(a) == len(b) && (a == b || bytes.EqualFold([]byte(a), []byte(b)))
}

func TestChangesReachTribeWithinOnePull(t *testing.T) {
	w := newWorld(t, 12)
	w.run("schedule")
	var active, other eboekhouden.Product
	for _, p := range w.ebProducts() {
		if p.Active && active.ID == 0 {
			active = p
		} else if other.ID == 0 {
			other = p
		}
	}
	w.patch(active.ID, map[string]any{"active": false})
	w.patch(other.ID, map[string]any{"description": "Nieuwe omschrijving"})
	c := w.run("schedule")
	if c.Updated != 2 || c.Created+c.Failed != 0 {
		t.Fatalf("counts %v: want 2 updated", c)
	}
	tr := w.tribeProducts()
	if e := tr[strconv.FormatInt(active.ID, 10)]; e["IsInactive"] != true {
		t.Errorf("deactivated product is %v in Tribe", e["IsInactive"])
	}
	if e := tr[strconv.FormatInt(other.ID, 10)]; str(e, "Name") != "Nieuwe omschrijving" {
		t.Errorf("renamed product is %q in Tribe", e["Name"])
	}

	// A price change is not in the list: a scheduled pull within the hour misses it, a manual
	// one (or the hourly full pull) brings it.
	w.patch(other.ID, map[string]any{"priceExcl": 123.45})
	if c := w.run("schedule"); c.Updated != 0 {
		t.Fatalf("scheduled pull read details: %v", c)
	}
	if c := w.run("manual"); c.Updated != 1 {
		t.Fatalf("manual pull: %v, want 1 updated", c)
	}
	if e := w.tribeProducts()[strconv.FormatInt(other.ID, 10)]; !dec(t, e["SalesPrice"]).Equal(decimal.RequireFromString("123.45")) {
		t.Errorf("sales price in Tribe %v, want 123.45", e["SalesPrice"])
	}
}

func TestDeleteInEBoekhoudenLeavesTribeAlone(t *testing.T) {
	w := newWorld(t, 5)
	w.run("schedule")
	gone := w.ebProducts()[0]
	w.do("DELETE", fmt.Sprintf("/v1/product/%d", gone.ID), nil, nil)
	if c := w.run("manual"); c.Created+c.Updated+c.Failed != 0 || c.Unchanged != 4 {
		t.Fatalf("counts %v: want 4 unchanged", c)
	}
	e := w.tribeProducts()[strconv.FormatInt(gone.ID, 10)]
	if e == nil || e["IsInactive"] != !gone.Active {
		t.Fatalf("product deleted in e-Boekhouden is %v in Tribe", e)
	}
}

func TestUnmatchedVATRecordsAnIssueAndTheOthersSync(t *testing.T) {
	w := newWorld(t, 6)
	bad := w.ebProducts()[2]
	w.patch(bad.ID, map[string]any{"vat": "LAAG_VERK"}) // 6%: Tribe has no such group
	c := w.run("schedule")
	if c.Created != 5 || c.Failed != 1 {
		t.Fatalf("counts %v: want 5 created, 1 failed", c)
	}
	badID := strconv.FormatInt(bad.ID, 10)
	if w.tribeProducts()[badID] != nil {
		t.Fatal("the product without a VAT match was created")
	}
	issue := w.issues()[issueKey(badID, "vat")]
	if issue == nil || issue.GetCode() != "unknown_vat" {
		t.Fatalf("issues %v: want unknown_vat for %s", w.issues(), badID)
	}

	// Fixed in e-Boekhouden: the next pull creates it and the issue is resolved.
	w.patch(bad.ID, map[string]any{"vat": "LAAG_VERK_9"})
	if c := w.run("schedule"); c.Created != 1 || c.Failed != 0 {
		t.Fatalf("counts after the fix %v: want 1 created", c)
	}
	if w.issues()[issueKey(badID, "vat")] != nil {
		t.Fatal("the VAT issue is still open")
	}
}

func TestUnmatchedUnitRecordsAnIssue(t *testing.T) {
	w := newWorld(t, 3)
	bad := w.ebProducts()[0]
	w.patch(bad.ID, map[string]any{"unitId": w.units["doos"]})
	if c := w.run("schedule"); c.Created != 2 || c.Failed != 1 {
		t.Fatalf("counts %v: want 2 created, 1 failed", c)
	}
	if i := w.issues()[issueKey(strconv.FormatInt(bad.ID, 10), "unit")]; i == nil || i.GetCode() != "unknown_unit" {
		t.Fatalf("issues %v: want unknown_unit", w.issues())
	}
}
