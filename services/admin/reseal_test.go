package main

import (
	"strings"
	"testing"

	"github.com/koppel/koppel/services/mapping/mappingtest"
)

// The reseal endpoint reports which key seals each secret and never shows a value; the rotation
// itself is tested in the mapping service against two keyrings.
func TestResealSecretsEndpoint(t *testing.T) {
	e := newActivationEnv(t)
	if status, ae := e.call("PUT", "/secrets/webhook_secret", map[string]string{"value": "s3cret-value"}, nil); status != 204 {
		t.Fatalf("put secret: %d %+v", status, ae)
	}
	var res struct {
		PrimaryKeyID string `json:"primary_key_id"`
		Secrets      []struct {
			Name     string `json:"name"`
			KeyID    string `json:"key_id"`
			Resealed bool   `json:"resealed"`
			Value    string `json:"value"`
		} `json:"secrets"`
	}
	if status, ae := e.call("POST", "/secrets/reseal", map[string]bool{"dry_run": true}, &res); status != 200 {
		t.Fatalf("reseal: %d %+v", status, ae)
	}
	primary, _, _ := strings.Cut(mappingtest.TestKeys, ":")
	if res.PrimaryKeyID != primary || len(res.Secrets) != 1 || res.Secrets[0].Name != "webhook_secret" ||
		res.Secrets[0].KeyID != primary || res.Secrets[0].Resealed || res.Secrets[0].Value != "" {
		t.Fatalf("reseal answer: %+v", res)
	}
	if status, ae := e.call("POST", "/secrets/reseal", map[string]any{"dry_run": "yes"}, nil); status != 400 {
		t.Errorf("malformed body: %d %+v", status, ae)
	}
	e.tenantID = "nobody"
	if status, ae := e.call("POST", "/secrets/reseal", map[string]bool{}, nil); status != 404 {
		t.Errorf("unknown tenant: %d %+v", status, ae)
	}
}
