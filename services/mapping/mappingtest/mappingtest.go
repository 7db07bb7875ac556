// Package mappingtest runs a real mapping service in-process for other packages' tests: a
// redis-server child process and the gRPC server on a loopback port.
package mappingtest

import (
	"encoding/base64"
	"net"
	"testing"

	"github.com/koppel/koppel/pkg/localinfra"
	"github.com/koppel/koppel/pkg/mapping"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/koppel/koppel/services/mapping/secretbox"
	"github.com/koppel/koppel/services/mapping/server"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// TestKeys is a keyring spec for tests (KOPPEL_ENCRYPTION_KEYS).
var TestKeys = "test:" + base64.StdEncoding.EncodeToString([]byte("koppel-test-key-0123456789abcdef"))

// Service is a running mapping service.
type Service struct {
	Addr   string
	Redis  *localinfra.Redis
	Client *mapping.Client
}

// Start starts redis-server and the mapping service; both stop when the test ends.
func Start(t testing.TB) *Service {
	t.Helper()
	rs, err := localinfra.StartRedisServer(t.TempDir())
	if err != nil {
		t.Fatalf("mapping needs a real redis-server (apt-get install redis-server): %v", err)
	}
	t.Cleanup(rs.Stop)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	t.Cleanup(func() { _ = rdb.Close() })
	keys, err := secretbox.ParseKeyring(TestKeys)
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	mappingv1.RegisterMappingServiceServer(gs, server.New(rdb, keys))
	healthpb.RegisterHealthServer(gs, health.NewServer())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)
	c, err := mapping.Dial(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &Service{Addr: ln.Addr().String(), Redis: rs, Client: c}
}
