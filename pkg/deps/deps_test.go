package deps

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/koppel/koppel/pkg/service"
)

// TestMalformedNATSURLKeepsItsPassword: a bad KOPPEL_NATS_URL fails the start without printing
// the credentials in it.
func TestMalformedNATSURLKeepsItsPassword(t *testing.T) {
	env := &service.Env{Name: "test", Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, raw := range []string{"nats://u:hunter2@bad host:4222", "nats://n1:4222,nats://u:hunter2%zz@n2:4222"} {
		_, err := Connect(context.Background(), env, Config{NATSURL: raw, MappingAddr: "127.0.0.1:1", StreamReplicas: 1})
		if err == nil {
			t.Fatalf("%q: connected", raw)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%q: %q shows the password", raw, err)
		}
	}
}
