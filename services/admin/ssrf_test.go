package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/bustest"
	"github.com/koppel/koppel/pkg/httpapi"
	"github.com/koppel/koppel/pkg/tenantclients"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/koppel/koppel/services/mapping/mappingtest"
	"github.com/koppel/koppel/services/sandbox/ebsim"
	"github.com/koppel/koppel/services/sandbox/tribesim"
)

// syncBuffer is a log sink safe for the handlers' goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// counted serves h and counts its requests.
func counted(t *testing.T, h http.Handler) (string, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &n
}

// guardedGateway is the admin API with the outbound guard of opts; its log goes to the
// returned buffer.
func guardedGateway(t *testing.T, opts tenantclients.Options) (string, *syncBuffer) {
	t.Helper()
	m := mappingtest.Start(t)
	b := bustest.Start(t)
	clients, err := tenantclients.New(m.Client, opts)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := httpapi.NewBearerAuth([]string{httpapi.HashToken(adminToken)})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	mux := http.NewServeMux()
	gw := httptest.NewServer(mux)
	t.Cleanup(gw.Close)
	a := &admin{mapping: m.Client, pub: bus.NewPublisher(b.JS), dlq: bus.NewDeadLetters(b.JS, bus.Shards{}),
		log: slog.New(slog.NewTextHandler(logs, nil)), now: time.Now, clients: opts}
	a.routes(mux, auth)
	(&activation{admin: a, accounts: newClientAccounts(clients), publicURL: gw.URL, loginTimeout: 10 * time.Second}).routes(mux, auth)
	if _, err := m.Client.CreateTenant(context.Background(), &mappingv1.CreateTenantRequest{Tenant: &mappingv1.Tenant{Id: "acme"}}); err != nil {
		t.Fatal(err)
	}
	return gw.URL, logs
}

func putCredentials(t *testing.T, gw, ebURL, trURL, authURL string) (int, httpapi.Error, string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"eboekhouden": map[string]string{"base_url": ebURL, "token": "eb-token"},
		"tribe":       map[string]string{"base_url": trURL, "auth_url": authURL, "client_id": "cid", "client_secret": "tribe-secret"},
	})
	req, _ := http.NewRequest("PUT", gw+"/admin/v1/tenants/acme/credentials", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var ae struct {
		Error httpapi.Error `json:"error"`
	}
	_ = json.Unmarshal(raw, &ae)
	return resp.StatusCode, ae.Error, string(raw)
}

// TestCredentialURLsCannotReachInside: base URLs off the allow-list are refused before any
// call, naming the field; an allowed host that is an inner address is refused at dial time;
// neither a redirect nor an upstream's answer reaches the admin, and the log keeps the details.
func TestCredentialURLsCannotReachInside(t *testing.T) {
	eb := ebsim.New(ebsim.Options{})
	ebURL, ebHits := counted(t, eb)
	tr := tribesim.New(tribesim.Options{})
	t.Cleanup(tr.Close)
	trURL, trHits := counted(t, tr)
	// An upstream that answers with what it should not: the admin must not read it.
	leaky, _ := counted(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"type":"validation","title":"INTERNAL-MARKER ami-id i-0abc","status":400,"code":"ERR_X"}`))
	}))
	// An auth host that sends the token request on to a collector.
	collector, stolen := counted(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	redirecting, _ := counted(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, collector+r.URL.Path, http.StatusTemporaryRedirect)
	}))

	// Off the allow-list: refused by field, nothing called.
	gw, _ := guardedGateway(t, tenantclients.Options{OutboundHosts: []string{ebURL, trURL}, OutboundNetworks: []string{"127.0.0.0/8"}})
	for _, c := range []struct{ eb, tr, auth, field string }{
		{"http://169.254.169.254/latest/meta-data", trURL, trURL, "eboekhouden.base_url"},
		{ebURL, "https://kubernetes.default.svc", trURL, "tribe.base_url"},
		{ebURL, trURL, "http://10.0.0.1:8080", "tribe.auth_url"},
		{"https://api.e-boekhouden.nl.evil.example", trURL, trURL, "eboekhouden.base_url"},
	} {
		code, ae, _ := putCredentials(t, gw, c.eb, c.tr, c.auth)
		if code != http.StatusBadRequest || ae.Field != c.field {
			t.Errorf("%s %s %s: %d %+v, want 400 naming %s", c.eb, c.tr, c.auth, code, ae, c.field)
		}
	}
	if ebHits.Load()+trHits.Load() != 0 {
		t.Fatalf("refused URLs were called: e-Boekhouden %d, Tribe %d", ebHits.Load(), trHits.Load())
	}

	// On the list, but loopback is not public: refused when dialling, the simulators hear nothing.
	gw, _ = guardedGateway(t, tenantclients.Options{OutboundHosts: []string{ebURL, trURL}})
	if code, ae, _ := putCredentials(t, gw, ebURL, trURL, trURL); code != http.StatusBadGateway || ae.Code != "unreachable" {
		t.Errorf("inner addresses: %d %+v, want 502 unreachable", code, ae)
	}
	if ebHits.Load()+trHits.Load() != 0 {
		t.Fatalf("inner addresses were dialled: e-Boekhouden %d, Tribe %d", ebHits.Load(), trHits.Load())
	}

	// Allowed and reachable, but answering what the admin must not see, or redirecting.
	gw, logs := guardedGateway(t, tenantclients.Options{OutboundHosts: []string{leaky, redirecting, collector}, OutboundNetworks: []string{"127.0.0.0/8"}})
	code, _, raw := putCredentials(t, gw, leaky, redirecting, redirecting)
	if code < 400 || strings.Contains(raw, "INTERNAL-MARKER") || strings.Contains(raw, "127.0.0.1") {
		t.Errorf("answer %d %s: it shows what the upstream said or where it is", code, raw)
	}
	if !strings.Contains(logs.String(), "INTERNAL-MARKER") {
		t.Errorf("the log lacks the upstream's answer:\n%s", logs.String())
	}
	if stolen.Load() != 0 {
		t.Fatalf("the redirect of the token request was followed %d times", stolen.Load())
	}
}
