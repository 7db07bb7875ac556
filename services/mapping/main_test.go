package main

import (
	"context"
	"strings"
	"testing"

	"github.com/koppel/koppel/pkg/service"
	"github.com/koppel/koppel/services/mapping/mappingtest"
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
