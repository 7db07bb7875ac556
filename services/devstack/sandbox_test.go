package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/koppel/koppel/pkg/eboekhouden"
)

// The sandbox binary serves both simulators, each with its admin API.
func TestSandboxServesBothSimulators(t *testing.T) {
	s := startStack(t, "scheduler", "relation", "product", "invoice", "payment")
	base := "http://" + s.Addrs["sandbox"]

	post := func(path string, body any, out any) {
		t.Helper()
		b, _ := json.Marshal(body)
		resp, err := http.Post(base+path, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode >= 300 {
			t.Fatalf("POST %s: %d", path, resp.StatusCode)
		}
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
	}

	var admin struct {
		AccessToken string `json:"accessToken"`
	}
	post("/eboekhouden/_sim/admins", map[string]any{"company": "Jansen BV", "relations": 25}, &admin)
	eb, err := eboekhouden.New(admin.AccessToken, "koppel", eboekhouden.WithBaseURL(base+"/eboekhouden"))
	if err != nil {
		t.Fatal(err)
	}
	rels, err := eboekhouden.Collect(eb.Relations(context.Background()))
	if err != nil || len(rels) != 25 {
		t.Fatalf("e-Boekhouden relations: %d, %v", len(rels), err)
	}

	var env struct {
		ClientID     string `json:"clientId"`
		ClientSecret string `json:"clientSecret"`
	}
	post("/tribe/_sim/environments", map[string]any{"name": "Jansen BV"}, &env)
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {env.ClientID}, "client_secret": {env.ClientSecret}}
	resp, err := http.Post(base+"/tribe/oauth2/token", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Tribe token: %d", resp.StatusCode)
	}
}
