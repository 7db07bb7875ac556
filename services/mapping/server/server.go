// Package server implements the koppel.mapping.v1 gRPC API on Redis.
//
// Every key of a tenant carries the tenant in a hash tag (koppel:{acme}:...), so all of a tenant's
// keys live in one Redis Cluster slot and the Lua scripts that keep links unique, sequences gapless
// and leases fenced can touch several keys atomically. The one key without a tag is the tenant
// index.
package server

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/koppel/koppel/pkg/bus"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/koppel/koppel/services/mapping/secretbox"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Limits on what callers may store.
const (
	MaxIDLength     = 200
	MaxSecretBytes  = 64 << 10
	MaxRecordBytes  = 1 << 20
	MaxBatch        = 1000
	maxRunsKept     = 100
	defaultStale    = 10 * time.Minute
	tenantIndexKey  = "koppel:tenants"
	minLeaseTTL     = 100 * time.Millisecond
	maxLeaseTTL     = time.Hour
	defaultRunLimit = 10
)

var (
	kindPattern   = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)
	secretPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
)

// Server is the mapping service.
type Server struct {
	mappingv1.UnimplementedMappingServiceServer
	rdb  redis.UniversalClient
	keys *secretbox.Keyring
	now  func() time.Time
}

// New returns a Server on rdb, sealing secrets with keys.
func New(rdb redis.UniversalClient, keys *secretbox.Keyring) *Server {
	return &Server{rdb: rdb, keys: keys, now: time.Now}
}

func key(tenant string, parts ...string) string {
	k := "koppel:{" + tenant + "}"
	for _, p := range parts {
		k += ":" + p
	}
	return k
}

func invalid(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}

func checkTenant(id string) error {
	if !bus.ValidTenantID(id) {
		return invalid("tenant_id %q: want 1 to 40 lower-case letters, digits or dashes", id)
	}
	return nil
}

func checkKind(kind string) error {
	if !kindPattern.MatchString(kind) {
		return invalid("kind %q: want a lower-case name such as organization", kind)
	}
	return nil
}

func checkID(field, id string) error {
	if id == "" || len(id) > MaxIDLength {
		return invalid("%s: want 1 to %d characters", field, MaxIDLength)
	}
	return nil
}

// internal turns a Redis failure into Unavailable, which callers retry.
func internal(op string, err error) error {
	if s, ok := status.FromError(err); ok && s.Code() != codes.Unknown {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return status.Error(codes.Canceled, op+": canceled")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return status.Error(codes.DeadlineExceeded, op+": deadline exceeded")
	}
	return status.Errorf(codes.Unavailable, "%s: %v", op, err)
}

// Ping reports whether Redis answers; the readiness check uses it.
func (s *Server) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}
