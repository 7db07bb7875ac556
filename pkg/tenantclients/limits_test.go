package tenantclients

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/koppel/koppel/pkg/tribe"
	"github.com/koppel/koppel/services/sandbox/ebsim"
	"github.com/koppel/koppel/services/sandbox/tribesim"
)

// pageRecords is the page the answer limits are sized for: e-Boekhouden's maximum limit.
const pageRecords = 2000

// TestAnswerLimitsFitAPageOf2000: the largest answers koppel asks for, pages of 2,000 records
// from the simulators, fit the answer limits with at least twice their size to spare, and the
// limits are not far above what such a page needs (README: Outbound calls has the figures).
func TestAnswerLimitsFitAPageOf2000(t *testing.T) {
	eb := measureEBoekhouden(t)
	tr := measureTribe(t)
	for _, c := range []struct {
		system string
		limit  int
		pages  map[string]int
	}{{"e-Boekhouden", MaxEBoekhoudenAnswer, eb}, {"Tribe", MaxTribeAnswer, tr}} {
		largest := 0
		for what, n := range c.pages {
			t.Logf("%s: a page of %d %s is %.2f MiB", c.system, pageRecords, what, float64(n)/(1<<20))
			if 2*n > c.limit {
				t.Errorf("%s: a page of %d %s (%d bytes) leaves less than its size to spare under the limit of %d", c.system, pageRecords, what, n, c.limit)
			}
			largest = max(largest, n)
		}
		if c.limit > 8*largest {
			t.Errorf("%s: answer limit %d bytes is over 8 times the largest page (%d bytes)", c.system, c.limit, largest)
		}
	}
}

func get(t *testing.T, h http.Handler, req *http.Request) []byte {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("%s %s: %d %s", req.Method, req.URL, rec.Code, rec.Body.String())
	}
	return rec.Body.Bytes()
}

func measureEBoekhouden(t *testing.T) map[string]int {
	t.Helper()
	sim := ebsim.New(ebsim.Options{})
	adm, err := sim.CreateAdministration(ebsim.AdminSpec{Relations: pageRecords, Products: pageRecords})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"accessToken": adm.AccessToken, "source": Source})
	req := httptest.NewRequest("POST", "/v1/session", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	var session struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(get(t, sim, req), &session); err != nil {
		t.Fatal(err)
	}
	call := func(path string) []byte {
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("Authorization", session.Token)
		return get(t, sim, req)
	}
	pages := map[string]int{
		"relations (list)": len(call("/v1/relation?limit=2000")),
		"products (list)":  len(call("/v1/product?limit=2000")),
	}
	return pages
}

func measureTribe(t *testing.T) map[string]int {
	t.Helper()
	sim := tribesim.New(tribesim.Options{})
	t.Cleanup(sim.Close)
	env, err := sim.CreateEnvironment(tribesim.EnvironmentSpec{ID: "measure"})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Generate(env.ID, tribesim.GenerateSpec{Organizations: pageRecords, Persons: pageRecords, Products: 50}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {env.ClientID}, "client_secret": {env.ClientSecret}}
	resp, err := http.Post(srv.URL+"/oauth2/token", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("token: %v", err)
	}
	call := func(set string, q tribe.Query) int {
		req, _ := http.NewRequestWithContext(context.Background(), "GET", srv.URL+"/v1/odata/"+set+"?"+q.Top(pageRecords).Encode(), nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", set, resp.StatusCode, b)
		}
		var page struct {
			Value []json.RawMessage `json:"value"`
		}
		if err := json.Unmarshal(b, &page); err != nil || len(page.Value) != pageRecords {
			t.Fatalf("%s: %d records, %v", set, len(page.Value), err)
		}
		return len(b)
	}
	// The widest reads koppel makes: relations with their invoice and postal addresses and
	// countries (services/relation), customer relationships with their relation expanded.
	addr := tribe.Q().Expand("Country")
	return map[string]int{
		"organisations with addresses": call(tribe.SetOrganization, tribe.Q().Expand("InvoiceAddress", addr).Expand("PostalAddress", addr)),
		"persons with addresses":       call(tribe.SetPerson, tribe.Q().Expand("InvoiceAddress", addr).Expand("PostalAddress", addr)),
		"customer relationships with their organisation": call(tribe.SetOrgCustomer,
			tribe.Q().Expand("Organization", tribe.Q().Expand("InvoiceAddress", addr).Expand("PostalAddress", addr))),
	}
}
