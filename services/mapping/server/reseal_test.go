package server_test

import (
	"encoding/base64"
	"testing"

	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/koppel/koppel/services/mapping/secretbox"
	"github.com/koppel/koppel/services/mapping/server"
	"github.com/redis/go-redis/v9"
)

func serverWithKeys(t *testing.T, rdb *redis.Client, spec string) *server.Server {
	t.Helper()
	keys, err := secretbox.ParseKeyring(spec)
	if err != nil {
		t.Fatal(err)
	}
	return server.New(rdb, keys)
}

// Rotating the encryption key: secrets sealed under k1 are sealed again under k2 while both are
// in the ring, after which a ring of k2 alone opens them all.
func TestResealSecretsRotatesTheKey(t *testing.T) {
	old, rdb, _ := newServer(t) // ring k1
	if _, err := old.CreateTenant(ctx, &mappingv1.CreateTenantRequest{Tenant: &mappingv1.Tenant{Id: "acme"}}); err != nil {
		t.Fatal(err)
	}
	values := map[string]string{"eboekhouden_token": "eb-secret", "tribe_client_secret": "tribe-secret"}
	for name, v := range values {
		if _, err := old.PutSecret(ctx, &mappingv1.PutSecretRequest{TenantId: "acme", Name: name, Value: []byte(v)}); err != nil {
			t.Fatal(err)
		}
	}
	k2 := "k2:" + base64.StdEncoding.EncodeToString([]byte("fedcba9876543210fedcba9876543210"))
	both := serverWithKeys(t, rdb, k2+",k1:"+testKey)
	onlyNew := serverWithKeys(t, rdb, k2)

	dry, err := both.ResealSecrets(ctx, &mappingv1.ResealSecretsRequest{TenantId: "acme", DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if dry.GetPrimaryKeyId() != "k2" || len(dry.GetSecrets()) != 2 {
		t.Fatalf("dry run: %v", dry)
	}
	for _, s := range dry.GetSecrets() {
		if s.GetKeyId() != "k1" || !s.GetResealed() || s.GetProblem() != "" {
			t.Errorf("dry run %s: %v", s.GetName(), s)
		}
	}
	if _, err := onlyNew.GetSecret(ctx, &mappingv1.GetSecretRequest{TenantId: "acme", Name: "eboekhouden_token"}); err == nil {
		t.Fatal("a dry run resealed a secret")
	}

	if _, err := both.ResealSecrets(ctx, &mappingv1.ResealSecretsRequest{TenantId: "acme"}); err != nil {
		t.Fatal(err)
	}
	for name, v := range values {
		got, err := onlyNew.GetSecret(ctx, &mappingv1.GetSecretRequest{TenantId: "acme", Name: name})
		if err != nil || string(got.GetValue()) != v {
			t.Errorf("%s after the reseal under k2 alone: %q, %v", name, got.GetValue(), err)
		}
	}
	again, err := both.ResealSecrets(ctx, &mappingv1.ResealSecretsRequest{TenantId: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range again.GetSecrets() {
		if s.GetKeyId() != "k2" || s.GetResealed() {
			t.Errorf("second reseal %s: %v", s.GetName(), s)
		}
	}

	// A ring that lacks the secrets' key reports them and leaves them as they are.
	k3 := "k3:" + base64.StdEncoding.EncodeToString([]byte("0123456789ABCDEF0123456789ABCDEF"))
	lost, err := serverWithKeys(t, rdb, k3).ResealSecrets(ctx, &mappingv1.ResealSecretsRequest{TenantId: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range lost.GetSecrets() {
		if s.GetProblem() == "" || s.GetResealed() {
			t.Errorf("unopenable %s: %v", s.GetName(), s)
		}
	}
	if _, err := onlyNew.GetSecret(ctx, &mappingv1.GetSecretRequest{TenantId: "acme", Name: "tribe_client_secret"}); err != nil {
		t.Errorf("a secret its ring cannot open was changed: %v", err)
	}
}
