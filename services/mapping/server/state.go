package server

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func timeFromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// raiseScript sets the sequence to ARGV[1] when it is lower, and returns its value.
var raiseScript = redis.NewScript(`
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = tonumber(ARGV[1])
if cur < floor then
  redis.call('SET', KEYS[1], ARGV[1])
  return floor
end
return cur
`)

func (s *Server) NextNumber(ctx context.Context, req *mappingv1.NextNumberRequest) (*mappingv1.NextNumberResponse, error) {
	if err := checkLinkArgs(req.GetTenantId(), req.GetSequence()); err != nil {
		return nil, err
	}
	n, err := s.rdb.Incr(ctx, key(req.GetTenantId(), "seq", req.GetSequence())).Result()
	if err != nil {
		return nil, internal("next number", err)
	}
	return &mappingv1.NextNumberResponse{Number: n}, nil
}

func (s *Server) RaiseNumber(ctx context.Context, req *mappingv1.RaiseNumberRequest) (*mappingv1.RaiseNumberResponse, error) {
	if err := checkLinkArgs(req.GetTenantId(), req.GetSequence()); err != nil {
		return nil, err
	}
	if req.GetFloor() < 0 {
		return nil, invalid("floor: must not be negative")
	}
	cur, err := raiseScript.Run(ctx, s.rdb, []string{key(req.GetTenantId(), "seq", req.GetSequence())}, req.GetFloor()).Int64()
	if err != nil {
		return nil, internal("raise number", err)
	}
	return &mappingv1.RaiseNumberResponse{Current: cur}, nil
}

func (s *Server) GetCursor(ctx context.Context, req *mappingv1.GetCursorRequest) (*mappingv1.GetCursorResponse, error) {
	if err := checkLinkArgs(req.GetTenantId(), req.GetName()); err != nil {
		return nil, err
	}
	v, err := s.rdb.HGet(ctx, key(req.GetTenantId(), "cursors"), req.GetName()).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, internal("get cursor", err)
	}
	return &mappingv1.GetCursorResponse{Value: v}, nil
}

func (s *Server) SetCursor(ctx context.Context, req *mappingv1.SetCursorRequest) (*mappingv1.SetCursorResponse, error) {
	if err := checkLinkArgs(req.GetTenantId(), req.GetName()); err != nil {
		return nil, err
	}
	if len(req.GetValue()) > 4096 {
		return nil, invalid("value: at most 4096 bytes")
	}
	if err := s.rdb.HSet(ctx, key(req.GetTenantId(), "cursors"), req.GetName(), req.GetValue()).Err(); err != nil {
		return nil, internal("set cursor", err)
	}
	return &mappingv1.SetCursorResponse{}, nil
}

// A lease is a key holding "holder\ntoken" with a TTL. It is taken only when free: not even its
// own holder takes it twice, since one process runs many handlers under one holder name. The
// fencing counter is per tenant and only grows, so a token taken after an expiry is always
// higher than every token before it.
var acquireLeaseScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '\n' .. token, 'PX', ARGV[2])
return token
`)

var renewLeaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`)

var releaseLeaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

func checkLease(tenant, name, holder string, ttlMs int64, needTTL bool) error {
	if err := checkTenant(tenant); err != nil {
		return err
	}
	if err := checkID("name", name); err != nil {
		return err
	}
	if err := checkID("holder", holder); err != nil {
		return err
	}
	if strings.ContainsRune(holder, '\n') {
		return invalid("holder: must not contain a newline")
	}
	ttl := time.Duration(ttlMs) * time.Millisecond
	if needTTL && (ttl < minLeaseTTL || ttl > maxLeaseTTL) {
		return invalid("ttl_ms: want %d to %d", minLeaseTTL.Milliseconds(), maxLeaseTTL.Milliseconds())
	}
	return nil
}

func (s *Server) AcquireLease(ctx context.Context, req *mappingv1.AcquireLeaseRequest) (*mappingv1.AcquireLeaseResponse, error) {
	if err := checkLease(req.GetTenantId(), req.GetName(), req.GetHolder(), req.GetTtlMs(), true); err != nil {
		return nil, err
	}
	keys := []string{key(req.GetTenantId(), "lease", req.GetName()), key(req.GetTenantId(), "fence")}
	tok, err := acquireLeaseScript.Run(ctx, s.rdb, keys, req.GetHolder(), req.GetTtlMs()).Int64()
	if err != nil {
		return nil, internal("acquire lease", err)
	}
	if tok < 0 {
		return nil, status.Errorf(codes.FailedPrecondition, "lease %q is held", req.GetName())
	}
	exp := s.now().Add(time.Duration(req.GetTtlMs()) * time.Millisecond)
	return &mappingv1.AcquireLeaseResponse{FencingToken: tok, ExpiresAt: timestamppb.New(exp)}, nil
}

func leaseValue(holder string, token int64) string {
	return holder + "\n" + strconv.FormatInt(token, 10)
}

func (s *Server) RenewLease(ctx context.Context, req *mappingv1.RenewLeaseRequest) (*mappingv1.RenewLeaseResponse, error) {
	if err := checkLease(req.GetTenantId(), req.GetName(), req.GetHolder(), req.GetTtlMs(), true); err != nil {
		return nil, err
	}
	ok, err := renewLeaseScript.Run(ctx, s.rdb, []string{key(req.GetTenantId(), "lease", req.GetName())},
		leaseValue(req.GetHolder(), req.GetFencingToken()), req.GetTtlMs()).Int()
	if err != nil {
		return nil, internal("renew lease", err)
	}
	if ok != 1 {
		return nil, status.Errorf(codes.FailedPrecondition, "lease %q was lost (expired or taken over)", req.GetName())
	}
	exp := s.now().Add(time.Duration(req.GetTtlMs()) * time.Millisecond)
	return &mappingv1.RenewLeaseResponse{ExpiresAt: timestamppb.New(exp)}, nil
}

func (s *Server) ReleaseLease(ctx context.Context, req *mappingv1.ReleaseLeaseRequest) (*mappingv1.ReleaseLeaseResponse, error) {
	if err := checkLease(req.GetTenantId(), req.GetName(), req.GetHolder(), 0, false); err != nil {
		return nil, err
	}
	if err := releaseLeaseScript.Run(ctx, s.rdb, []string{key(req.GetTenantId(), "lease", req.GetName())},
		leaseValue(req.GetHolder(), req.GetFencingToken())).Err(); err != nil {
		return nil, internal("release lease", err)
	}
	return &mappingv1.ReleaseLeaseResponse{}, nil
}
