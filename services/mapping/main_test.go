package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/koppel/koppel/pkg/localinfra"
	"github.com/koppel/koppel/pkg/mapping"
	"github.com/koppel/koppel/pkg/service"
	"github.com/koppel/koppel/pkg/telemetry"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/koppel/koppel/services/mapping/mappingtest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestMalformedRedisURLKeepsItsPassword: the mapping service names a bad KOPPEL_REDIS_URL
// without printing the password in it.
func TestMalformedRedisURLKeepsItsPassword(t *testing.T) {
	for _, raw := range []string{"redis://:hunter2@bad host:6379/0", "redis://u:hunter2%zz@redis:6379/0", "redis://:hunter2@redis:6379/x"} {
		cfg := &config{EncryptionKeys: mappingtest.TestKeys, RedisURL: raw}
		err := realMain(context.Background(), &service.Env{Name: "mapping"}, cfg)
		if err == nil || !strings.Contains(err.Error(), "KOPPEL_REDIS_URL") {
			t.Fatalf("%q: %v, want an error naming KOPPEL_REDIS_URL", raw, err)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%q: %q shows the password", raw, err)
		}
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestUnauthenticatedCallsAreRefused runs the mapping service as its main does, with callers'
// tokens: an anonymous call, or one with an unknown token, is refused before it reads anything;
// the scheduler, whose code never reads secrets, may not call GetSecret; the admin service may.
func TestUnauthenticatedCallsAreRefused(t *testing.T) {
	rs, err := localinfra.StartRedisServer(t.TempDir())
	if err != nil {
		t.Fatalf("needs a real redis-server: %v", err)
	}
	t.Cleanup(rs.Stop)
	port, err := localinfra.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config{Common: service.Common{ShutdownTimeout: 5 * time.Second}, GRPCAddr: fmt.Sprintf("127.0.0.1:%d", port),
		RedisURL: "redis://" + rs.Addr + "/0", EncryptionKeys: mappingtest.TestKeys,
		CallerTokenHashes: []string{"admin:" + sha256Hex("admin-token"), "scheduler:" + sha256Hex("sched-token")}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ops, err := telemetry.NewOpsServer("127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- realMain(ctx, &service.Env{Name: "mapping", Log: log, Ops: ops, Common: cfg.Common}, cfg)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("mapping: %v", err)
		}
	})

	dial := func(opts ...mapping.DialOption) *mapping.Client {
		c, err := mapping.Dial(cfg.GRPCAddr, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	admin := dial(mapping.WithToken("admin-token"))
	// Wait for the service, and store a secret worth stealing.
	deadline := time.Now().Add(30 * time.Second)
	for admin.Ready(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the mapping service did not come up")
		}
		runtime.Gosched()
	}
	if _, err := admin.CreateTenant(ctx, &mappingv1.CreateTenantRequest{Tenant: &mappingv1.Tenant{Id: "acme"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.PutSecret(ctx, &mappingv1.PutSecretRequest{TenantId: "acme", Name: "webhook_secret", Value: []byte("whsec")}); err != nil {
		t.Fatal(err)
	}
	get := &mappingv1.GetSecretRequest{TenantId: "acme", Name: "webhook_secret"}
	for name, c := range map[string]*mapping.Client{"anonymous": dial(), "unknown token": dial(mapping.WithToken("guess"))} {
		res, err := c.GetSecret(ctx, get)
		if status.Code(err) != codes.Unauthenticated || res.GetValue() != nil {
			t.Errorf("%s GetSecret: %v %q, want Unauthenticated", name, err, res.GetValue())
		}
		if _, err := c.UpdateTenantSettings(ctx, &mappingv1.UpdateTenantSettingsRequest{TenantId: "acme", Settings: &mappingv1.TenantSettings{EboekhoudenBaseUrl: "https://evil.example"}}); status.Code(err) != codes.Unauthenticated {
			t.Errorf("%s UpdateTenantSettings: %v, want Unauthenticated", name, err)
		}
		if err := c.Ready(ctx); status.Code(errors.Unwrap(err)) != codes.Unauthenticated {
			t.Errorf("%s health check: %v, want Unauthenticated", name, err)
		}
	}
	scheduler := dial(mapping.WithToken("sched-token"))
	if _, err := scheduler.GetSecret(ctx, get); status.Code(err) != codes.PermissionDenied {
		t.Errorf("scheduler GetSecret: %v, want PermissionDenied", err)
	}
	if _, err := scheduler.ListTenants(ctx, &mappingv1.ListTenantsRequest{}); err != nil {
		t.Errorf("scheduler ListTenants: %v", err)
	}
	if res, err := admin.GetSecret(ctx, get); err != nil || string(res.GetValue()) != "whsec" {
		t.Errorf("admin GetSecret: %v", err)
	}

	open := &config{RedisURL: cfg.RedisURL, EncryptionKeys: mappingtest.TestKeys}
	if err := open.Validate(); err == nil {
		t.Error("a mapping service without caller authentication was configured")
	}
}
