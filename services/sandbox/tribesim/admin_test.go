package tribesim_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/koppel/koppel/services/sandbox/tribesim"
)

// adminClient calls a simulator's admin API with a bearer token.
type adminClient struct {
	t     *testing.T
	url   string
	token string
}

// call sends body (JSON-encoded unless nil) and decodes the answer into out (when not nil and
// the answer has a body). It returns the status.
func (c adminClient) call(method, path string, body, out any) int {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, c.url+path, r)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Errorf("%s %s: %d %q: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

// apiErr is the admin API's error body.
type apiErr struct {
	Error struct{ Code, Message string }
}

// expectErr calls and wants an error answer with status and code.
func (c adminClient) expectErr(method, path string, body any, status int, code string) {
	c.t.Helper()
	var e apiErr
	if st := c.call(method, path, body, &e); st != status || e.Error.Code != code || e.Error.Message == "" {
		c.t.Errorf("%s %s: %d %+v, want %d %s", method, path, st, e, status, code)
	}
}

// TestAdminRoutes walks every admin route once over HTTP, behind an admin token.
func TestAdminRoutes(t *testing.T) {
	sim := tribesim.New(tribesim.Options{AdminToken: "adm1n"})
	t.Cleanup(sim.Close)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) }))
	t.Cleanup(hooks.Close)
	adm := adminClient{t, srv.URL, "adm1n"}
	const env = "/_sim/environments/w"

	// Environments.
	var info tribesim.EnvironmentInfo
	if st := adm.call("POST", "/_sim/environments", map[string]any{"id": "w", "generate": map[string]any{"organizations": 2}}, &info); st != 201 || info.ID != "w" || info.ClientSecret == "" {
		t.Fatalf("create: %d %+v", st, info)
	}
	adm.expectErr("POST", "/_sim/environments", map[string]any{"id": "w"}, 409, "Conflict")
	adm.expectErr("POST", "/_sim/environments", map[string]any{"nope": 1}, 400, "BadRequest")
	var list []tribesim.EnvironmentInfo
	if st := adm.call("GET", "/_sim/environments", nil, &list); st != 200 || len(list) != 1 || list[0].ID != "w" {
		t.Errorf("list: %d %+v", st, list)
	}
	info = tribesim.EnvironmentInfo{}
	if st := adm.call("GET", env, nil, &info); st != 200 || info.Counts["Relation_Organization"] != 3 {
		t.Errorf("get: %d %+v", st, info)
	}
	adm.expectErr("GET", "/_sim/environments/nope", nil, 404, "NotFound")

	// Generated data and entities.
	if st := adm.call("POST", env+"/generate", map[string]any{"seed": 2, "organizations": 1, "products": 2, "invoices": 3}, nil); st != 204 {
		t.Errorf("generate: %d", st)
	}
	adm.expectErr("POST", env+"/generate", map[string]any{"nope": 1}, 400, "BadRequest")
	entities := func(set string) []map[string]any {
		t.Helper()
		var page struct{ Value []map[string]any }
		if st := adm.call("GET", env+"/entities/"+set, nil, &page); st != 200 {
			t.Fatalf("entities %s: %d", set, st)
		}
		return page.Value
	}
	if orgs := entities("Relation_Organization"); len(orgs) != 4 {
		t.Errorf("%d organisations after generate", len(orgs))
	}
	adm.expectErr("GET", env+"/entities/Nope", nil, 404, "NotFound")

	// Webhooks, registered through the API, and the requests that did it.
	tok := apiToken(t, srv.URL, info)
	if st := apiCall(t, srv.URL, tok, "POST", "/v1/webhooks", map[string]any{"entityType": "Relation.Organization", "webhookUrl": hooks.URL + "/org"}); st != 201 {
		t.Fatalf("register webhook: %d", st)
	}
	var regs []struct{ ID, WebhookURL, Secret string }
	if st := adm.call("GET", env+"/webhooks", nil, &regs); st != 200 || len(regs) != 1 || regs[0].WebhookURL != hooks.URL+"/org" || regs[0].Secret == "" {
		t.Errorf("webhooks: %d %+v", st, regs)
	}
	adm.expectErr("GET", "/_sim/environments/nope/webhooks", nil, 404, "NotFound")
	var reqs []tribesim.Request
	if st := adm.call("GET", env+"/requests", nil, &reqs); st != 200 || len(reqs) != 1 || reqs[0].Path != "/v1/webhooks" || reqs[0].Status != 201 {
		t.Errorf("requests: %d %+v", st, reqs)
	}

	// Writes as a Tribe user, which fire the webhook.
	var org map[string]any
	if st := adm.call("POST", env+"/entities/Relation_Organization", map[string]any{"Name": "Via admin"}, &org); st != 200 || org["Name"] != "Via admin" || org["ID"] == nil {
		t.Fatalf("user create: %d %v", st, org)
	}
	orgID := org["ID"].(string)
	org = nil
	if st := adm.call("PATCH", env+"/entities/Relation_Organization/"+orgID, map[string]any{"PhoneNumber": "020-1234567"}, &org); st != 200 || org["PhoneNumber"] != "020-1234567" || org["Name"] != "Via admin" {
		t.Errorf("user update: %d %v", st, org)
	}
	adm.expectErr("PATCH", env+"/entities/Relation_Organization/b724d383-bb70-480a-b03d-512b9aaec15a", map[string]any{"PhoneNumber": "1"}, 404, "NotFound")
	adm.expectErr("POST", env+"/entities/Relation_Organization", []int{1}, 400, "BadRequest")
	deadline := time.Now().Add(5 * time.Second)
	for {
		var dels []tribesim.Delivery
		if st := adm.call("GET", env+"/deliveries", nil, &dels); st != 200 {
			t.Fatalf("deliveries: %d", st)
		}
		if len(dels) >= 2 && dels[0].Outcome == "delivered" && dels[0].WebhookID == regs[0].ID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries: %+v", dels)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Invoice phases.
	var draft string
	for _, inv := range entities("Activity_Invoice") {
		if inv["Number"] == nil {
			draft = inv["ID"].(string)
		}
	}
	if draft == "" {
		t.Fatal("no draft invoice generated")
	}
	if st := adm.call("POST", env+"/invoices/"+draft+"/phase", map[string]any{"code": "Sent"}, nil); st != 204 {
		t.Errorf("phase: %d", st)
	}
	for _, inv := range entities("Activity_Invoice") {
		if inv["ID"] == draft && inv["Number"] == nil {
			t.Errorf("sent invoice without a number: %v", inv)
		}
	}
	adm.expectErr("POST", env+"/invoices/"+draft+"/phase", map[string]any{"code": "Lost"}, 400, "BadRequest")
	adm.expectErr("POST", env+"/invoices/"+orgID+"/phase", map[string]any{"code": "Sent"}, 404, "NotFound")

	// Faults.
	var f tribesim.Faults
	if st := adm.call("GET", env+"/faults", nil, &f); st != 200 || f.RetryAfterSeconds != 0 {
		t.Errorf("faults: %d %+v", st, f)
	}
	if st := adm.call("PUT", env+"/faults", map[string]any{"retryAfterSeconds": 7}, nil); st != 204 {
		t.Errorf("set faults: %d", st)
	}
	if st := adm.call("GET", env+"/faults", nil, &f); st != 200 || f.RetryAfterSeconds != 7 {
		t.Errorf("faults after set: %d %+v", st, f)
	}
	adm.expectErr("PUT", env+"/faults", map[string]any{"nope": 1}, 400, "BadRequest")
	adm.expectErr("GET", "/_sim/environments/nope/faults", nil, 404, "NotFound")
	adm.expectErr("PUT", "/_sim/environments/nope/faults", map[string]any{}, 404, "NotFound")

	// Tokens.
	if st := adm.call("POST", env+"/tokens/expire", nil, nil); st != 204 {
		t.Errorf("expire: %d", st)
	}
	if st := apiCall(t, srv.URL, tok, "GET", "/v1/odata/Relation_Organization", nil); st != 401 {
		t.Errorf("API call with an expired token: %d", st)
	}
	adm.expectErr("POST", "/_sim/environments/nope/tokens/expire", nil, 404, "NotFound")

	// Every route, with a wrong or no admin token: 401 and nothing done.
	routes := [][2]string{
		{"GET", "/_sim/environments"}, {"POST", "/_sim/environments"}, {"GET", env}, {"DELETE", env},
		{"POST", env + "/reset"}, {"POST", env + "/generate"}, {"GET", env + "/entities/Relation_Organization"},
		{"POST", env + "/entities/Relation_Organization"}, {"PATCH", env + "/entities/Relation_Organization/" + orgID},
		{"POST", env + "/invoices/" + draft + "/phase"}, {"GET", env + "/faults"}, {"PUT", env + "/faults"},
		{"POST", env + "/tokens/expire"}, {"GET", env + "/webhooks"}, {"GET", env + "/deliveries"},
		{"GET", env + "/requests"}, {"GET", "/_sim/nope"}, {"GET", "/_sim"},
	}
	for _, tok := range []string{"", "wrong", "adm1"} {
		c := adminClient{t, srv.URL, tok}
		for _, r := range routes {
			c.expectErr(r[0], r[1], map[string]any{"id": "x", "code": "Paid", "Name": "x"}, 401, "Unauthorized")
		}
	}
	if st := adm.call("GET", env+"/faults", nil, &f); st != 200 || f.RetryAfterSeconds != 7 {
		t.Errorf("faults after unauthorised calls: %d %+v", st, f)
	}

	// Unknown paths and methods.
	for _, r := range [][2]string{{"GET", "/_sim"}, {"GET", "/_sim/"}, {"GET", "/_sim/nope"}, {"GET", "/_sim/environments/w/nope"},
		{"GET", env + "/entities/Relation_Organization/" + orgID + "/x"}, {"GET", env + "/invoices/" + draft}, {"GET", env + "/tokens"},
		{"PUT", "/_sim/environments"}, {"POST", env}, {"DELETE", env + "/faults"}, {"GET", env + "/reset"}, {"GET", env + "/tokens/expire"},
		{"PATCH", env + "/entities/Relation_Organization"}, {"POST", env + "/entities/Relation_Organization/" + orgID}} {
		adm.expectErr(r[0], r[1], nil, 404, "NotFound")
	}

	// Reset and delete.
	if st := adm.call("POST", env+"/reset", nil, nil); st != 204 {
		t.Errorf("reset: %d", st)
	}
	regs = nil
	if st := adm.call("GET", env+"/webhooks", nil, &regs); st != 200 || len(regs) != 0 {
		t.Errorf("webhooks after reset: %d %+v", st, regs)
	}
	adm.expectErr("POST", "/_sim/environments/nope/reset", nil, 404, "NotFound")
	if st := adm.call("DELETE", env, nil, nil); st != 204 {
		t.Errorf("delete: %d", st)
	}
	adm.expectErr("GET", env, nil, 404, "NotFound")
	adm.expectErr("DELETE", env, nil, 404, "NotFound")
	var dels []tribesim.Delivery
	if st := adm.call("GET", env+"/deliveries", nil, &dels); st != 200 || dels != nil {
		t.Errorf("deliveries of a deleted environment: %d %+v", st, dels)
	}
}

func apiToken(t *testing.T, base string, info tribesim.EnvironmentInfo) string {
	t.Helper()
	resp, err := http.PostForm(base+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {info.ClientID}, "client_secret": {info.ClientSecret}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("token: %d %v", resp.StatusCode, err)
	}
	return tok.AccessToken
}

func apiCall(t *testing.T, base, tok, method, path string, body any) int {
	t.Helper()
	return adminClient{t, base, tok}.call(method, path, body, nil)
}
