package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koppel/koppel/pkg/adminapi"
)

// adminAPI stands in for the gateway: it records requests and answers from a table.
type adminAPI struct {
	mu       sync.Mutex
	requests []string // "METHOD path body"
	answer   func(method, path string) (int, string)
}

func (a *adminAPI) start(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		a.requests = append(a.requests, r.Method+" "+r.URL.Path+" "+string(body))
		a.mu.Unlock()
		status, out := a.answer(r.Method, r.URL.Path)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, out)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func (a *adminAPI) last(t *testing.T) (method, path string, body map[string]any) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.requests) == 0 {
		t.Fatal("no request")
	}
	parts := strings.SplitN(a.requests[len(a.requests)-1], " ", 3)
	if parts[2] != "" {
		if err := json.Unmarshal([]byte(parts[2]), &body); err != nil {
			t.Fatal(err)
		}
	}
	return parts[0], parts[1], body
}

func ctl(url, stdin string, args ...string) (string, int) {
	var out bytes.Buffer
	code := run(context.Background(), append([]string{"-url", url, "-poll", "5ms"}, args...), strings.NewReader(stdin), &out, &out)
	return out.String(), code
}

func get(m map[string]any, path string) any {
	var v any = m
	for _, p := range strings.Split(path, ".") {
		v = v.(map[string]any)[p]
	}
	return v
}

func TestCredentialsSecretsFromEnvironment(t *testing.T) {
	api := &adminAPI{answer: func(string, string) (int, string) { return 200, `{"id":"acme"}` }}
	url := api.start(t)
	t.Setenv(envEBToken, "eb-token")
	t.Setenv(envTribeSecret, "tribe-secret")
	out, code := ctl(url, "", "tenants", "credentials", "acme", "-eboekhouden-url", "https://eb", "-tribe-url", "https://tribe", "-tribe-client-id", "cid")
	if code != 0 || !strings.Contains(out, "accepted the credentials") {
		t.Fatalf("exit %d: %s", code, out)
	}
	method, path, body := api.last(t)
	if method != "PUT" || path != "/admin/v1/tenants/acme/credentials" {
		t.Fatalf("%s %s", method, path)
	}
	for k, want := range map[string]string{"eboekhouden.base_url": "https://eb", "eboekhouden.token": "eb-token",
		"tribe.base_url": "https://tribe", "tribe.client_id": "cid", "tribe.client_secret": "tribe-secret", "tribe.auth_url": ""} {
		if got := get(body, k); got != want {
			t.Errorf("%s = %v, want %q", k, got, want)
		}
	}
}

func TestCredentialsFromStandardInput(t *testing.T) {
	api := &adminAPI{answer: func(string, string) (int, string) { return 200, `{"id":"acme"}` }}
	url := api.start(t)
	t.Setenv(envEBToken, "")
	t.Setenv(envTribeSecret, "")
	in := `{"eboekhouden":{"base_url":"https://eb","token":"eb-token"},"tribe":{"base_url":"https://tribe","client_id":"cid","client_secret":"s"}}`
	if out, code := ctl(url, in, "tenants", "credentials", "-f", "-", "acme", "-tribe-auth-url", "https://auth"); code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	_, _, body := api.last(t)
	if get(body, "eboekhouden.token") != "eb-token" || get(body, "tribe.auth_url") != "https://auth" {
		t.Fatalf("body %v", body)
	}
}

func TestCredentialsWithoutSecretsIsUsage(t *testing.T) {
	api := &adminAPI{answer: func(string, string) (int, string) { return 200, `{}` }}
	url := api.start(t)
	t.Setenv(envEBToken, "")
	t.Setenv(envTribeSecret, "")
	out, code := ctl(url, "", "tenants", "credentials", "acme", "-eboekhouden-url", "https://eb")
	if code != exitUsage || !strings.Contains(out, envEBToken) {
		t.Fatalf("exit %d: %s", code, out)
	}
	// There is no flag for a secret, so one cannot end up in argv.
	if _, code := ctl(url, "", "tenants", "credentials", "acme", "-eboekhouden-token", "x"); code != exitUsage {
		t.Fatalf("a secret flag was accepted: exit %d", code)
	}
	if len(api.requests) != 0 {
		t.Fatalf("sent %v", api.requests)
	}
}

func TestRefusedCredentialNamed(t *testing.T) {
	api := &adminAPI{answer: func(string, string) (int, string) {
		return 422, `{"error":{"code":"credentials_refused","message":"e-Boekhouden refused the API token","field":"eboekhouden.token"}}`
	}}
	url := api.start(t)
	t.Setenv(envEBToken, "wrong")
	t.Setenv(envTribeSecret, "s")
	out, code := ctl(url, "", "tenants", "credentials", "acme")
	if code != exitFailed || !strings.Contains(out, "field eboekhouden.token") || strings.Contains(out, "wrong") {
		t.Fatalf("exit %d: %s", code, out)
	}
}

func TestLinksFromFlags(t *testing.T) {
	api := &adminAPI{answer: func(string, string) (int, string) {
		return 200, `{"id":"acme","settings":{"auto_debtor_numbers":true,"debtor_number_start":10000,"links":{"debtor_ledger":"7","webhook:x":"Relation.Person"}}}`
	}}
	url := api.start(t)
	out, code := ctl(url, "", "tenants", "links", "acme", "-debtor-ledger", "1300", "-invoice-template", "3",
		"-revenue", "HIGH=8000", "-revenue", "LOW=8010", "-vat", "HIGH=HOOG_VERK_21", "-vat", "LOW=LAAG_VERK_9",
		"-auto-debtor-numbers", "-debtor-number-start", "10000")
	if code != 0 || !strings.Contains(out, "debtor_ledger") || strings.Contains(out, "webhook:x") {
		t.Fatalf("exit %d: %s", code, out)
	}
	method, path, body := api.last(t)
	if method != "PUT" || path != "/admin/v1/tenants/acme/links" {
		t.Fatalf("%s %s", method, path)
	}
	want := map[string]any{"debtor_ledger": "1300", "invoice_template": "3", "revenue_ledgers.LOW": "8010",
		"vat_codes.HIGH": "HOOG_VERK_21", "auto_debtor_numbers": true, "debtor_number_start": float64(10000)}
	for k, v := range want {
		if got := get(body, k); got != v {
			t.Errorf("%s = %v, want %v", k, got, v)
		}
	}
	if _, code := ctl(url, "", "tenants", "links", "acme", "-revenue", "HIGH"); code != exitUsage {
		t.Fatalf("bad pair: exit %d", code)
	}
}

func TestConfigurationTables(t *testing.T) {
	api := &adminAPI{answer: func(string, string) (int, string) {
		return 200, `{"ledgers":[{"id":"7","code":"1300","description":"Debiteuren","category":"DEB"}],
		"vat_codes":[{"id":"HOOG_VERK_21","code":"HOOG_VERK_21","description":"Sale, high","category":"sale","percentage":"21"}],
		"invoice_templates":[{"id":"3","description":"Standaard","category":"E"}],
		"vat_groups":[{"id":"g-1","code":"HIGH","description":"Hoog 21%","percentage":"21"}],
		"units":[],"address_types":[{"id":"a-1","code":"Postal","description":"Postadres"}]}`
	}}
	url := api.start(t)
	out, code := ctl(url, "", "tenants", "configuration", "acme")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	for _, want := range []string{"ledger accounts", "1300", "DEB", "HOOG_VERK_21", "Standaard", "Tribe VAT groups", "g-1", "Tribe units", "(none)", "Postadres"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestActivateWatchFollowsTheImport(t *testing.T) {
	var polls atomic.Int32
	api := &adminAPI{answer: func(method, path string) (int, string) {
		if method == "POST" {
			return 202, `{"state":"active","import_run_id":"activation:acme:import:1","webhooks":[{"id":"w1","entity_type":"Relation.Organization"}]}`
		}
		// The run appears only once a worker took it, then runs, then finishes.
		switch polls.Add(1) {
		case 1:
			return 200, `{"tenant":{"id":"acme"},"runs":{}}`
		case 2:
			return 200, `{"tenant":{"id":"acme"},"runs":{"current":[{"id":"activation:acme:import:1","kind":"import","done":5,"total":10}]}}`
		default:
			return 200, `{"tenant":{"id":"acme"},"runs":{"finished":[{"id":"activation:acme:import:1","kind":"import","status":"succeeded"}]}}`
		}
	}}
	url := api.start(t)
	var out bytes.Buffer
	c := &cli{api: &adminapi.Client{Base: url}, out: &out, pollEvery: time.Millisecond}
	if err := c.dispatch(context.Background(), []string{"tenants", "activate", "acme", "-watch"}); err != nil {
		t.Fatal(err)
	}
	if polls.Load() != 3 || !strings.Contains(out.String(), "run activation:acme:import:1") || !strings.Contains(out.String(), "5/10") {
		t.Fatalf("%d polls:\n%s", polls.Load(), out.String())
	}
	method, path, _ := api.last(t)
	if method != "GET" || path != "/admin/v1/tenants/acme/status" {
		t.Fatalf("last request %s %s", method, path)
	}
}

func TestActivateWithoutWatchAndResume(t *testing.T) {
	api := &adminAPI{answer: func(method, path string) (int, string) {
		if strings.HasSuffix(path, "/activate") {
			return 202, `{"state":"active","import_run_id":"r-9"}`
		}
		return 200, `{"id":"acme","state":"active"}`
	}}
	url := api.start(t)
	if out, code := ctl(url, "", "tenants", "activate", "acme"); code != 0 || !strings.Contains(out, "run r-9") {
		t.Fatalf("activate: exit %d: %s", code, out)
	}
	if method, path, _ := api.last(t); method != "POST" || path != "/admin/v1/tenants/acme/activate" {
		t.Fatalf("activate sent %s %s", method, path)
	}
	if out, code := ctl(url, "", "tenants", "resume", "acme"); code != 0 || !strings.Contains(out, "is active") {
		t.Fatalf("resume: exit %d: %s", code, out)
	}
	if method, path, body := api.last(t); method != "PUT" || path != "/admin/v1/tenants/acme/state" || body["state"] != "active" {
		t.Fatalf("resume sent %s %s %v", method, path, body)
	}
}
