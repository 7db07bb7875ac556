package tribesim_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koppel/koppel/pkg/tribe/webhook"
	"github.com/koppel/koppel/services/sandbox/tribesim"
)

type harness struct {
	t   *testing.T
	sim *tribesim.Simulator
	srv *httptest.Server
	env tribesim.EnvironmentInfo
	tok string
}

func start(t *testing.T, opts tribesim.Options, spec tribesim.EnvironmentSpec) *harness {
	t.Helper()
	sim := tribesim.New(opts)
	t.Cleanup(sim.Close)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	env, err := sim.CreateEnvironment(spec)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, sim: sim, srv: srv, env: env}
	status, body := h.token(env.ClientID, env.ClientSecret, "")
	if status != 200 {
		t.Fatalf("token: %d %v", status, body)
	}
	h.tok = body["access_token"].(string)
	return h
}

func (h *harness) token(id, secret, scope string) (int, map[string]any) {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
	if scope != "" {
		form.Set("scope", scope)
	}
	resp, err := http.PostForm(h.srv.URL+"/oauth2/token", form)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// do calls the API with a raw path and query (encoded as given).
func (h *harness) do(method, pathQuery string, body any) (int, map[string]any) {
	h.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, h.srv.URL+pathQuery, r)
	req.Header.Set("Authorization", "Bearer "+h.tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func (h *harness) list(filterAndMore string) []map[string]any {
	h.t.Helper()
	st, m := h.do("GET", filterAndMore, nil)
	if st != 200 {
		h.t.Fatalf("GET %s: %d %v", filterAndMore, st, m)
	}
	var out []map[string]any
	for _, v := range m["value"].([]any) {
		out = append(out, v.(map[string]any))
	}
	return out
}

func q(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }

func TestAuth(t *testing.T) {
	h := start(t, tribesim.Options{}, tribesim.EnvironmentSpec{ID: "a", Scopes: []string{"read"}})
	if st, m := h.token(h.env.ClientID, "nope", ""); st != 401 || m["error"] != "invalid_client" {
		t.Errorf("bad secret: %d %v", st, m)
	}
	if st, m := h.token(h.env.ClientID, h.env.ClientSecret, "read write"); st != 400 || m["error"] != "invalid_grant" {
		t.Errorf("ungranted scope: %d %v", st, m)
	}
	if st, m := h.token(h.env.ClientID, h.env.ClientSecret, "read"); st != 200 || m["token_type"] != "bearer" || m["expires_in"] != 3600.0 {
		t.Errorf("token: %d %v", st, m)
	}
	if st, _ := h.do("POST", "/v1/odata/Relation_Organization", map[string]any{"Name": "x"}); st != 403 {
		t.Errorf("write with a read-only token: %d", st)
	}
	req, _ := http.NewRequest("GET", h.srv.URL+"/v1/odata/Relation_Organization", nil)
	if resp, _ := http.DefaultClient.Do(req); resp.StatusCode != 401 {
		t.Errorf("no token: %d", resp.StatusCode)
	}
	_ = h.sim.ExpireTokens("a")
	if st, _ := h.do("GET", "/v1/odata/Relation_Organization", nil); st != 401 {
		t.Errorf("expired token: %d", st)
	}
	// Environments are isolated: another tenant's token sees its own data only.
	other, _ := h.sim.CreateEnvironment(tribesim.EnvironmentSpec{ID: "b", Name: "Ander B.V."})
	_, m := h.token(other.ClientID, other.ClientSecret, "")
	h.tok = m["access_token"].(string)
	if got := h.list("/v1/odata/Relationship_Organization_Identity?$expand=Relation"); len(got) != 1 || got[0]["Relation"].(map[string]any)["Name"] != "Ander B.V." {
		t.Errorf("identity of b: %v", got)
	}
}

func TestODataSubset(t *testing.T) {
	h := start(t, tribesim.Options{}, tribesim.EnvironmentSpec{ID: "o", Generate: &tribesim.GenerateSpec{Seed: 3, Organizations: 30, Persons: 5, Products: 12, Invoices: 9}})
	orgs := h.list("/v1/odata/Relation_Organization")
	if len(orgs) != 31 {
		t.Fatalf("%d organisations", len(orgs))
	}
	// Every field present, unset ones as null; PascalCase; dotted _Type.
	first := orgs[0]
	if v, ok := first["DebtorNumber"]; !ok || v != nil || first["_Type"] != "Relation.Organization" {
		t.Errorf("own organisation wire form: %v", first)
	}
	name := orgs[5]["Name"].(string)
	cases := []struct {
		filter string
		check  func([]map[string]any) bool
	}{
		{"Name eq '" + strings.ReplaceAll(name, "'", "''") + "'", func(r []map[string]any) bool { return len(r) >= 1 && r[0]["Name"] == name }},
		{"contains(Name,'" + strings.ToUpper(strings.ReplaceAll(name[:5], "'", "''")) + "')", func(r []map[string]any) bool { return len(r) >= 1 }},
		{"startswith(Website,'https://') and not (DebtorNumber eq null)", func(r []map[string]any) bool { return len(r) == 30 }},
		{"endswith(EmailAddress,'.NL') or Name eq 'x'", func(r []map[string]any) bool { return len(r) == 30 }},
		{"CreationDate ge 2000-01-01T00:00:00+01:00", func(r []map[string]any) bool { return len(r) == 31 }},
		{"CreationDate lt 2000-01-01T00:00:00Z", func(r []map[string]any) bool { return len(r) == 0 }},
		{"ID eq " + orgs[3]["ID"].(string), func(r []map[string]any) bool { return len(r) == 1 && r[0]["ID"] == orgs[3]["ID"] }},
		{"VisitingAddress/Country/Code eq 'NL' and VisitingAddress/City ne 'Nergenshuizen'", func(r []map[string]any) bool { return len(r) == 30 }},
		{"(Number eq null)", func(r []map[string]any) bool { return len(r) == 31 }},
	}
	for _, c := range cases {
		if got := h.list("/v1/odata/Relation_Organization?$filter=" + q(c.filter)); !c.check(got) {
			t.Errorf("%s: %d results", c.filter, len(got))
		}
	}
	for _, bad := range []string{"Name in ('a','b')", "Labels has 'x'", "Name eq", "Nope eq 1", "Name eq 'unterminated", "length(Name) eq 3", "Name eq 5", "Addresses/City eq 'x'"} {
		if st, m := h.do("GET", "/v1/odata/Relation_Organization?$filter="+q(bad), nil); st != 400 || m["error"] == nil {
			t.Errorf("%s: %d %v", bad, st, m)
		}
	}
	// '+' is not a space: a filter sent with '+' fails, %20 works.
	if st, _ := h.do("GET", "/v1/odata/Relation_Organization?$filter=Name+eq+'x'", nil); st != 400 {
		t.Errorf("'+' decoded as a space: %d", st)
	}

	// $select keeps ID; nested $expand with ; and $select.
	got := h.list("/v1/odata/Relationship_Organization_CommercialRelationship_Customer?$top=2&$select=" + q("PaymentTermInDays") + "&$expand=" +
		q("Organization($select=Name;$expand=VisitingAddress($select=Postalcode;$expand=Country($select=Code,Name)))"))
	if len(got) != 2 {
		t.Fatal(len(got))
	}
	org := got[0]["Organization"].(map[string]any)
	addr := org["VisitingAddress"].(map[string]any)
	if _, ok := got[0]["Name"]; ok || got[0]["ID"] == nil || org["Name"] == nil || org["ID"] == nil || addr["Postalcode"] == nil || addr["Country"].(map[string]any)["Code"] != "NL" || addr["@odata.id"] == nil {
		t.Errorf("select/expand: %v", got[0])
	}
	if st, _ := h.do("GET", "/v1/odata/Relation_Organization?$expand=Nope", nil); st != 400 {
		t.Errorf("unknown expand: %d", st)
	}

	// $orderby with several keys, $top/$skip, $count.
	ordered := h.list("/v1/odata/Relation_Person?$orderby=" + q("LastName desc,FirstName"))
	for i := 1; i < len(ordered); i++ {
		a, b := ordered[i-1], ordered[i]
		if a["LastName"].(string) < b["LastName"].(string) || a["LastName"] == b["LastName"] && a["FirstName"].(string) > b["FirstName"].(string) {
			t.Errorf("order broken at %d", i)
		}
	}
	st, m := h.do("GET", "/v1/odata/Relation_Organization?$top=5&$skip=28&$count=true", nil)
	if st != 200 || len(m["value"].([]any)) != 3 || m["@odata.count"] != 31.0 {
		t.Errorf("top/skip/count: %v", m)
	}
	// Base sets list the sets below them and refuse writes.
	if got := h.list("/v1/odata/Relationship_Organization_CommercialRelationship"); len(got) < 30 {
		t.Errorf("base set: %d", len(got))
	}
	if st, _ := h.do("POST", "/v1/odata/Relation", map[string]any{"Name": "x"}); st != 405 {
		t.Errorf("POST to a base set: %d", st)
	}
	// Single entity, unknown ID.
	if st, m := h.do("GET", "/v1/odata/Relation_Organization("+orgs[1]["ID"].(string)+")", nil); st != 200 || m["ID"] != orgs[1]["ID"] {
		t.Errorf("single: %d", st)
	}
	if st, _ := h.do("GET", "/v1/odata/Relation_Organization(b724d383-bb70-480a-b03d-512b9aaec15a)", nil); st != 404 {
		t.Errorf("unknown: %d", st)
	}
}

func TestServerPaging(t *testing.T) {
	h := start(t, tribesim.Options{ServerPageSize: 7}, tribesim.EnvironmentSpec{ID: "p", Generate: &tribesim.GenerateSpec{Organizations: 20}})
	var ids []string
	link := "/v1/odata/Relation_Organization?$orderby=Name"
	for pages := 0; link != ""; pages++ {
		if pages > 10 {
			t.Fatal("no end")
		}
		st, m := h.do("GET", link, nil)
		if st != 200 {
			t.Fatal(st, m)
		}
		for _, v := range m["value"].([]any) {
			ids = append(ids, v.(map[string]any)["ID"].(string))
		}
		link = ""
		if next, ok := m["@odata.nextLink"].(string); ok {
			link = strings.TrimPrefix(next, h.srv.URL)
		}
	}
	if len(ids) != 21 {
		t.Errorf("%d records over pages", len(ids))
	}
}

func TestWritesAndPhases(t *testing.T) {
	h := start(t, tribesim.Options{CreateStatus: 200}, tribesim.EnvironmentSpec{ID: "w", Generate: &tribesim.GenerateSpec{Organizations: 2, Products: 2}})
	st, org := h.do("POST", "/v1/odata/Relation_Organization", map[string]any{"Name": "ACME", "ImportId": "eb:1", "_9ecc8d21__f69a__4f4c__a239__5db7a5f21ddd": "900"})
	if st != 200 || org["ID"] == nil || org["_9ecc8d21__f69a__4f4c__a239__5db7a5f21ddd"] != "900" {
		t.Fatalf("create: %d %v", st, org)
	}
	id := org["ID"].(string)
	for _, bad := range []map[string]any{{"Nope": 1}, {"Name": 5}, {"VisitingAddress": map[string]any{"ID": "b724d383-bb70-480a-b03d-512b9aaec15a"}}, {"VisitingAddress": "x"}} {
		if st, _ := h.do("PUT", "/v1/odata/Relation_Organization("+id+")", bad); st != 400 {
			t.Errorf("bad write %v: %d", bad, st)
		}
	}
	if st, m := h.do("PUT", "/v1/odata/Relation_Organization("+id+")", map[string]any{"Website": "https://acme.nl"}); st != 200 || m["Name"] != "ACME" || m["Website"] != "https://acme.nl" {
		t.Errorf("PUT merge: %d %v", st, m)
	}
	if st, m := h.do("POST", "/v1/odata/Relation_Organization", map[string]any{"ID": id, "PhoneNumber": "010-1234567"}); st != 200 || m["Website"] != "https://acme.nl" || m["PhoneNumber"] != "010-1234567" {
		t.Errorf("POST with ID: %d %v", st, m)
	}
	for _, f := range []string{"ImportId eq 'eb:1'", "contains(ImportId,'EB:')"} {
		if got := h.list("/v1/odata/Relation_Organization?$filter=" + q(f)); len(got) != 1 {
			t.Errorf("%s: %d", f, len(got))
		}
	}
	// Deleting a relationship leaves the organisation.
	st, rel := h.do("POST", "/v1/odata/Relationship_Organization_Supplier", map[string]any{"Relation": map[string]any{"ID": h.env.OwnOrganizationID}, "Organization": map[string]any{"ID": id}})
	if st != 200 {
		t.Fatal(st, rel)
	}
	if st, _ := h.do("DELETE", "/v1/odata/Relationship_Organization_Supplier("+rel["ID"].(string)+")", nil); st != 204 {
		t.Errorf("delete relationship: %d", st)
	}
	if st, _ := h.do("GET", "/v1/odata/Relation_Organization("+id+")", nil); st != 200 {
		t.Errorf("organisation gone with its relationship")
	}
	if st, _ := h.do("DELETE", "/v1/odata/Relationship_Person_Contact_Employee("+h.env.EmployeeID+")", nil); st != 405 {
		t.Errorf("employee delete: %d", st)
	}

	// Invoice: Draft, then Sent (number, date), then frozen.
	custs := h.list("/v1/odata/Relationship_Organization_CommercialRelationship_Customer")
	st, inv := h.do("POST", "/v1/odata/Activity_Invoice", map[string]any{"Subject": "Test", "Relationship": map[string]any{"ID": custs[0]["ID"]},
		"ProductLines": []any{map[string]any{"Description": "x", "Quantity": 2, "Price": 10.05, "VatPercentage": 21, "DiscountPercentage": 10}}})
	if st != 200 || inv["Number"] != nil || inv["InvoiceDate"] != nil || inv["Amount"] != 18.09 {
		t.Fatalf("draft: %d %v", st, inv)
	}
	invID := inv["ID"].(string)
	if err := h.sim.MoveInvoiceToPhase("w", invID, "Sent"); err != nil {
		t.Fatal(err)
	}
	_, inv = h.do("GET", "/v1/odata/Activity_Invoice("+invID+")?$expand=Phase,ProductLines", nil)
	if inv["Number"] == nil || inv["InvoiceDate"] == nil || inv["DueDate"] == nil || inv["Phase"].(map[string]any)["Code"] != "Sent" {
		t.Fatalf("sent: %v", inv)
	}
	line := inv["ProductLines"].([]any)[0].(map[string]any)
	if line["TotalExcludingVat"] != 18.09 || line["VatAmount"] != 3.8 || line["TotalIncludingVat"] != 21.89 {
		t.Errorf("line totals: %v", line)
	}
	if st, m := h.do("PUT", "/v1/odata/Activity_Invoice("+invID+")", map[string]any{"Subject": "changed"}); st != 400 || m["error"].(map[string]any)["code"] != "InvoiceFinalized" {
		t.Errorf("frozen invoice changed: %d", st)
	}
	if st, _ := h.do("PUT", "/v1/odata/ProductLine("+line["ID"].(string)+")", map[string]any{"Quantity": 3}); st != 400 {
		t.Errorf("frozen line changed: %d", st)
	}
	if err := h.sim.MoveInvoiceToPhase("w", invID, "Draft"); err == nil {
		t.Error("sent invoice went back to Draft")
	}
	if err := h.sim.MoveInvoiceToPhase("w", invID, "Paid"); err != nil {
		t.Errorf("Sent → Paid: %v", err)
	}
	number := inv["Number"]
	_, inv = h.do("GET", "/v1/odata/Activity_Invoice("+invID+")", nil)
	if inv["Number"] != number {
		t.Error("number changed on Paid")
	}

	// Module gating.
	g := start(t, tribesim.Options{}, tribesim.EnvironmentSpec{ID: "g", InvoicingDisabled: true})
	if st, m := g.do("GET", "/v1/odata/Activity_Invoice", nil); st != 404 || !strings.Contains(m["error"].(map[string]any)["message"].(string), "entity type not found") {
		t.Errorf("module gating: %d %v", st, m)
	}
}

// receiver records signed deliveries.
type receiver struct {
	mu     sync.Mutex
	bodies [][]byte
	sigs   []string
	fail   int // answer 500 to this many first requests
	got    chan struct{}
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	if r.fail > 0 {
		r.fail--
		r.mu.Unlock()
		w.WriteHeader(500)
		return
	}
	r.bodies = append(r.bodies, b)
	r.sigs = append(r.sigs, req.Header.Get("X-Tribe-Signature")+"|"+req.Header.Get("X-Api-Key"))
	r.mu.Unlock()
	w.WriteHeader(204)
	r.got <- struct{}{}
}

func (r *receiver) wait(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for range n {
		select {
		case <-r.got:
		case <-timeout:
			t.Fatalf("waited for %d deliveries", n)
		}
	}
}

func (r *receiver) events(t *testing.T, secret string) []webhook.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, _ := webhook.NewVerifier(webhook.Options{})
	var out []webhook.Event
	for i, b := range r.bodies {
		sig, key, _ := strings.Cut(r.sigs[i], "|")
		if err := v.Verify([]byte(secret), b, sig); err != nil {
			t.Errorf("delivery %d: %v", i, err)
		}
		if key != "k1" {
			t.Errorf("custom header missing")
		}
		evs, err := webhook.Decode(b)
		if err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
		out = append(out, evs...)
	}
	return out
}

func TestWebhookDelivery(t *testing.T) {
	h := start(t, tribesim.Options{WebhookRetryDelays: []time.Duration{time.Millisecond, time.Millisecond}}, tribesim.EnvironmentSpec{ID: "h", Generate: &tribesim.GenerateSpec{Organizations: 1, Products: 1, Invoices: 1}})
	rcv := &receiver{got: make(chan struct{}, 100), fail: 2}
	rs := httptest.NewServer(rcv)
	t.Cleanup(rs.Close)
	st, reg := h.do("POST", "/v1/webhooks", map[string]any{"entityType": "Relation.Organization", "webhookUrl": rs.URL + "/hook", "headers": []any{map[string]any{"name": "X-Api-Key", "value": "k1"}}})
	if st != 201 {
		t.Fatal(st, reg)
	}
	secret := reg["secret"].(string)
	st, inv := h.do("POST", "/v1/webhooks", map[string]any{"entityType": "Activity.Invoice", "webhookUrl": rs.URL + "/inv", "headers": []any{map[string]any{"name": "X-Api-Key", "value": "k1"}}})
	if st != 201 {
		t.Fatal(st)
	}
	if got := h.list("/v1/odata/Webhook"); len(got) != 2 {
		t.Errorf("Webhook set: %v", got)
	}

	// Failure then retries: the first two attempts get 500.
	_, org := h.do("POST", "/v1/odata/Relation_Organization", map[string]any{"Name": "Hook B.V."})
	rcv.wait(t, 1)
	evs := rcv.events(t, secret)
	if len(evs) != 1 || evs[0].Action != webhook.ActionCreate || evs[0].EntityID != org["ID"] || evs[0].EntityType != "Relation.Organization" || evs[0].WebhookID != reg["id"] {
		t.Fatalf("events: %+v", evs)
	}
	var failed int
	for _, d := range h.sim.Deliveries("h") {
		if d.Outcome == "failed" {
			failed++
		}
	}
	if failed != 2 {
		t.Errorf("%d failed attempts logged", failed)
	}

	// Duplicate and reorder.
	id := org["ID"].(string)
	_ = h.sim.SetFaults("h", tribesim.Faults{DuplicateNext: 1})
	h.do("PUT", "/v1/odata/Relation_Organization("+id+")", map[string]any{"Website": "https://a.nl"})
	rcv.wait(t, 2)
	evs = rcv.events(t, secret)
	if evs[1].Key() != evs[2].Key() {
		t.Error("duplicate has a different key")
	}
	_ = h.sim.SetFaults("h", tribesim.Faults{ReorderBatch: 2})
	h.do("PUT", "/v1/odata/Relation_Organization("+id+")", map[string]any{"Website": "https://b.nl"})
	h.do("DELETE", "/v1/odata/Relation_Organization("+id+")", nil)
	rcv.wait(t, 2)
	evs = rcv.events(t, secret)
	if evs[3].Action != webhook.ActionDelete || evs[4].Action != webhook.ActionUpdate {
		t.Errorf("not reordered: %v %v", evs[3].Action, evs[4].Action)
	}

	// Drop: logged, never sent. Then an invoice phase change arrives as an update.
	_ = h.sim.SetFaults("h", tribesim.Faults{DropNext: 1})
	h.do("POST", "/v1/odata/Relation_Organization", map[string]any{"Name": "Dropped"})
	invs := h.list("/v1/odata/Activity_Invoice?$filter=" + q("Phase/Code eq 'Draft'"))
	if err := h.sim.MoveInvoiceToPhase("h", invs[0]["ID"].(string), "Sent"); err != nil {
		t.Fatal(err)
	}
	rcv.wait(t, 1)
	rcv.mu.Lock()
	last := rcv.bodies[len(rcv.bodies)-1]
	rcv.mu.Unlock()
	ev, err := webhook.Decode(last)
	if err != nil || ev[0].EntityID != invs[0]["ID"] || ev[0].Mutation != "EntityUpdateMutation" || ev[0].WebhookID != inv["id"] {
		t.Errorf("phase event: %+v %v", ev, err)
	}
	dropped := 0
	for _, d := range h.sim.Deliveries("h") {
		if d.Outcome == "dropped" {
			dropped++
		}
	}
	if dropped != 1 {
		t.Errorf("%d dropped", dropped)
	}
}

func TestSignatureVariants(t *testing.T) {
	h := start(t, tribesim.Options{SignatureHeader: "X-Sig", SignatureAlgorithm: "sha256", SignatureEncoding: "hex", MutationTypeKey: "mutationType", MinimalPayload: true},
		tribesim.EnvironmentSpec{ID: "v"})
	got := make(chan [2]string, 4)
	rs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- [2]string{string(b), r.Header.Get("X-Sig")}
	}))
	t.Cleanup(rs.Close)
	_, reg := h.do("POST", "/v1/webhooks", map[string]any{"entityType": "Relationship", "webhookUrl": rs.URL})
	_, _ = h.do("POST", "/v1/odata/Relationship_Organization_Supplier", map[string]any{"Relation": map[string]any{"ID": h.env.OwnOrganizationID}, "Organization": map[string]any{"Name": "Leverancier B.V."}})
	var d [2]string
	select {
	case d = <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("no delivery")
	}
	if err := webhook.Verify([]byte(reg["secret"].(string)), []byte(d[0]), d[1], webhook.Options{HeaderName: "X-Sig", Algorithm: webhook.SHA256, Encoding: webhook.Hex}); err != nil {
		t.Error(err)
	}
	evs, err := webhook.DecodeWith([]byte(d[0]), webhook.DecodeOptions{TypeKey: "mutationType"})
	if err != nil || evs[0].Kind != webhook.KindRelationship || evs[0].EventID != "" || !evs[0].Timestamp.IsZero() {
		t.Errorf("minimal payload: %s → %+v %v", d[0], evs, err)
	}
}

func TestGeneratorDeterministicAndAdmin(t *testing.T) {
	spec := tribesim.EnvironmentSpec{ID: "d", Generate: &tribesim.GenerateSpec{Seed: 9, Organizations: 10, Persons: 3, ContactsPerOrganization: 1, Products: 11, Invoices: 12, WithoutDebtorNumber: 4}}
	fixed := func() time.Time { return time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC) }
	a, b := tribesim.New(tribesim.Options{Seed: 5, Now: fixed}), tribesim.New(tribesim.Options{Seed: 5, Now: fixed})
	defer a.Close()
	defer b.Close()
	_, _ = a.CreateEnvironment(spec)
	_, _ = b.CreateEnvironment(spec)
	for _, set := range []string{"Relation_Organization", "Activity_Invoice", "ProductLine", "Product"} {
		x, _ := a.Entities("d", set)
		y, _ := b.Entities("d", set)
		if !reflect.DeepEqual(x, y) {
			t.Errorf("%s differs between equal seeds", set)
		}
	}
	invs, _ := a.Entities("d", "Activity_Invoice")
	phases := map[any]int{}
	info, _ := a.Environment("d")
	byID := map[string]string{}
	for code, id := range info.Phases {
		byID[id] = code
	}
	for _, inv := range invs {
		phases[byID[inv["Phase"].(map[string]any)["ID"].(string)]]++
		if (inv["Number"] == nil) != (byID[inv["Phase"].(map[string]any)["ID"].(string)] == "Draft") {
			t.Errorf("number vs phase: %v", inv)
		}
	}
	if phases["Draft"] != 4 || phases["Sent"] != 4 || phases["Paid"] != 4 {
		t.Errorf("phases %v", phases)
	}

	// Admin API over HTTP.
	srv := httptest.NewServer(a)
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/_sim/environments", "application/json", strings.NewReader(`{"id":"e2","generate":{"organizations":2}}`))
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("create env: %v %v", resp.StatusCode, err)
	}
	var created tribesim.EnvironmentInfo
	_ = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if created.ClientSecret == "" || created.Counts["Relation_Organization"] != 3 {
		t.Errorf("created %+v", created)
	}
	req, _ := http.NewRequest("PUT", srv.URL+"/_sim/environments/e2/faults", strings.NewReader(`{"next5xx":1}`))
	if resp, _ := http.DefaultClient.Do(req); resp.StatusCode != 204 {
		t.Errorf("faults: %d", resp.StatusCode)
	}
	resp, _ = http.Post(srv.URL+"/_sim/environments/e2/reset", "application/json", nil)
	if resp.StatusCode != 204 {
		t.Errorf("reset: %d", resp.StatusCode)
	}
	resp, _ = http.Get(srv.URL + "/_sim/environments/e2/entities/Relation_Organization")
	var dump struct{ Value []map[string]any }
	_ = json.NewDecoder(resp.Body).Decode(&dump)
	resp.Body.Close()
	if len(dump.Value) != 3 {
		t.Errorf("after reset %d organisations", len(dump.Value))
	}
	resp, _ = http.Post(srv.URL+"/_sim/environments/e2/entities/Relation_Organization", "application/json", strings.NewReader(`{"Name":"Via admin"}`))
	if resp.StatusCode != 200 {
		t.Errorf("user write: %d", resp.StatusCode)
	}
}

func FuzzFilterParser(f *testing.F) {
	sim := tribesim.New(tribesim.Options{})
	defer sim.Close()
	_, _ = sim.CreateEnvironment(tribesim.EnvironmentSpec{ID: "f", Generate: &tribesim.GenerateSpec{Organizations: 3}})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	info, _ := sim.Environment("f")
	resp, err := http.PostForm(srv.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {info.ClientID}, "client_secret": {info.ClientSecret}})
	if err != nil {
		f.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	for _, s := range []string{"Name eq 'a''b'", "not (contains(Name,'x') or Number gt 5.5e3)", "VisitingAddress/Country/Code eq 'NL'",
		"CreationDate ge 2024-01-01T00:00:00+01:00", "ID eq b724d383-bb70-480a-b03d-512b9aaec15a", "((((", "Name in ('a')", "tolower(Name) eq 'x'", "-1 eq -1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, filter string) {
		req, _ := http.NewRequest("GET", srv.URL+"/v1/odata/Relation_Organization?$filter="+q(filter), nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 && resp.StatusCode != 400 {
			t.Fatalf("%q: status %d", filter, resp.StatusCode)
		}
	})
}

func TestMountedBelowPrefix(t *testing.T) {
	sim := tribesim.New(tribesim.Options{ServerPageSize: 2})
	defer sim.Close()
	info, _ := sim.CreateEnvironment(tribesim.EnvironmentSpec{ID: "m"})
	mux := http.NewServeMux()
	mux.Handle("/tribe/", http.StripPrefix("/tribe", sim))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := http.PostForm(srv.URL+"/tribe/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {info.ClientID}, "client_secret": {info.ClientSecret}})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("token below prefix: %v", err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/tribe/v1/odata/Datastore_Phase_ActivityInvoice", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, _ = http.DefaultClient.Do(req)
	var page map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&page)
	resp.Body.Close()
	if next, _ := page["@odata.nextLink"].(string); !strings.HasPrefix(next, srv.URL+"/tribe/v1/odata/") {
		t.Errorf("nextLink %q lost the prefix", next)
	}
}
