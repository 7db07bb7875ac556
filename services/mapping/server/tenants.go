package server

import (
	"context"
	"errors"
	"slices"
	"unicode/utf8"

	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func checkSettings(st *mappingv1.TenantSettings) error {
	for kind, secs := range st.GetScheduleSeconds() {
		if err := checkKind(kind); err != nil {
			return err
		}
		if secs < 0 || (secs > 0 && secs < 60) {
			return invalid("settings.schedule_seconds[%s]: want 0 (default) or at least 60", kind)
		}
	}
	if st.GetDebtorNumberStart() < 0 {
		return invalid("settings.debtor_number_start: must not be negative")
	}
	for k, v := range st.GetLinks() {
		if k == "" || len(k) > 100 || len(v) > 200 {
			return invalid("settings.links[%q]: key 1 to 100 and value at most 200 characters", k)
		}
	}
	return nil
}

func (s *Server) CreateTenant(ctx context.Context, req *mappingv1.CreateTenantRequest) (*mappingv1.CreateTenantResponse, error) {
	t := proto.Clone(req.GetTenant()).(*mappingv1.Tenant)
	if t == nil {
		return nil, invalid("tenant: required")
	}
	if err := checkTenant(t.GetId()); err != nil {
		return nil, err
	}
	if n := utf8.RuneCountInString(t.GetDisplayName()); n > 200 {
		return nil, invalid("display_name: at most 200 characters")
	}
	if err := checkSettings(t.GetSettings()); err != nil {
		return nil, err
	}
	now := timestamppb.New(s.now())
	t.CreatedAt, t.UpdatedAt, t.SecretNames = now, now, nil
	if t.State == mappingv1.TenantState_TENANT_STATE_UNSPECIFIED {
		t.State = mappingv1.TenantState_TENANT_STATE_SETUP
	}
	if t.Settings == nil {
		t.Settings = &mappingv1.TenantSettings{}
	}
	blob, err := proto.Marshal(t)
	if err != nil {
		return nil, internal("marshal tenant", err)
	}
	// Index first: an index entry without a tenant is skipped by ListTenants, while a tenant
	// without an index entry would be invisible to the scheduler.
	if err := s.rdb.SAdd(ctx, tenantIndexKey, t.Id).Err(); err != nil {
		return nil, internal("index tenant", err)
	}
	ok, err := s.rdb.SetNX(ctx, key(t.Id, "tenant"), blob, 0).Result()
	if err != nil {
		return nil, internal("create tenant", err)
	}
	if !ok {
		return nil, status.Errorf(codes.AlreadyExists, "tenant %q already exists", t.Id)
	}
	return &mappingv1.CreateTenantResponse{Tenant: t}, nil
}

func (s *Server) loadTenant(ctx context.Context, id string) (*mappingv1.Tenant, error) {
	if err := checkTenant(id); err != nil {
		return nil, err
	}
	blob, err := s.rdb.Get(ctx, key(id, "tenant")).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, status.Errorf(codes.NotFound, "tenant %q not found", id)
	}
	if err != nil {
		return nil, internal("get tenant", err)
	}
	t := &mappingv1.Tenant{}
	if err := proto.Unmarshal(blob, t); err != nil {
		return nil, internal("decode tenant", err)
	}
	names, err := s.rdb.HKeys(ctx, key(id, "secrets")).Result()
	if err != nil {
		return nil, internal("list secret names", err)
	}
	slices.Sort(names)
	t.SecretNames = names
	return t, nil
}

// updateTenant applies change to the stored tenant optimistically (WATCH), so concurrent updates
// of settings and state do not overwrite each other.
func (s *Server) updateTenant(ctx context.Context, id string, change func(*mappingv1.Tenant) error) (*mappingv1.Tenant, error) {
	if err := checkTenant(id); err != nil {
		return nil, err
	}
	k := key(id, "tenant")
	var out *mappingv1.Tenant
	for range 10 {
		err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			blob, err := tx.Get(ctx, k).Bytes()
			if errors.Is(err, redis.Nil) {
				return status.Errorf(codes.NotFound, "tenant %q not found", id)
			}
			if err != nil {
				return err
			}
			t := &mappingv1.Tenant{}
			if err := proto.Unmarshal(blob, t); err != nil {
				return err
			}
			if err := change(t); err != nil {
				return err
			}
			t.UpdatedAt = timestamppb.New(s.now())
			t.SecretNames = nil
			nb, err := proto.Marshal(t)
			if err != nil {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error { p.Set(ctx, k, nb, 0); return nil })
			out = t
			return err
		}, k)
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		if err != nil {
			return nil, internal("update tenant", err)
		}
		return s.loadTenant(ctx, out.Id)
	}
	return nil, status.Error(codes.Aborted, "update tenant: too much contention, try again")
}

func (s *Server) GetTenant(ctx context.Context, req *mappingv1.GetTenantRequest) (*mappingv1.GetTenantResponse, error) {
	t, err := s.loadTenant(ctx, req.GetTenantId())
	if err != nil {
		return nil, err
	}
	return &mappingv1.GetTenantResponse{Tenant: t}, nil
}

func (s *Server) ListTenants(ctx context.Context, _ *mappingv1.ListTenantsRequest) (*mappingv1.ListTenantsResponse, error) {
	ids, err := s.rdb.SMembers(ctx, tenantIndexKey).Result()
	if err != nil {
		return nil, internal("list tenants", err)
	}
	slices.Sort(ids)
	out := &mappingv1.ListTenantsResponse{}
	for _, id := range ids {
		t, err := s.loadTenant(ctx, id)
		if status.Code(err) == codes.NotFound {
			continue
		}
		if err != nil {
			return nil, err
		}
		out.Tenants = append(out.Tenants, t)
	}
	return out, nil
}

func (s *Server) UpdateTenantSettings(ctx context.Context, req *mappingv1.UpdateTenantSettingsRequest) (*mappingv1.UpdateTenantSettingsResponse, error) {
	if req.GetSettings() == nil {
		return nil, invalid("settings: required")
	}
	if err := checkSettings(req.GetSettings()); err != nil {
		return nil, err
	}
	t, err := s.updateTenant(ctx, req.GetTenantId(), func(t *mappingv1.Tenant) error {
		t.Settings = req.GetSettings()
		if req.GetDisplayName() != "" {
			t.DisplayName = req.GetDisplayName()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &mappingv1.UpdateTenantSettingsResponse{Tenant: t}, nil
}

func (s *Server) SetTenantState(ctx context.Context, req *mappingv1.SetTenantStateRequest) (*mappingv1.SetTenantStateResponse, error) {
	if _, ok := mappingv1.TenantState_name[int32(req.GetState())]; !ok || req.GetState() == mappingv1.TenantState_TENANT_STATE_UNSPECIFIED {
		return nil, invalid("state: want SETUP, ACTIVE or PAUSED")
	}
	t, err := s.updateTenant(ctx, req.GetTenantId(), func(t *mappingv1.Tenant) error {
		t.State = req.GetState()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &mappingv1.SetTenantStateResponse{Tenant: t}, nil
}

func secretAAD(tenant, name string) []byte { return []byte(tenant + "/" + name) }

func (s *Server) PutSecret(ctx context.Context, req *mappingv1.PutSecretRequest) (*mappingv1.PutSecretResponse, error) {
	if !secretPattern.MatchString(req.GetName()) {
		return nil, invalid("name %q: want a lower-case name such as eboekhouden_token", req.GetName())
	}
	if len(req.GetValue()) == 0 || len(req.GetValue()) > MaxSecretBytes {
		return nil, invalid("value: want 1 to %d bytes", MaxSecretBytes)
	}
	if _, err := s.loadTenant(ctx, req.GetTenantId()); err != nil {
		return nil, err
	}
	sealed, err := s.keys.Seal(req.GetValue(), secretAAD(req.GetTenantId(), req.GetName()))
	if err != nil {
		return nil, internal("seal secret", err)
	}
	if err := s.rdb.HSet(ctx, key(req.GetTenantId(), "secrets"), req.GetName(), sealed).Err(); err != nil {
		return nil, internal("put secret", err)
	}
	return &mappingv1.PutSecretResponse{}, nil
}

func (s *Server) GetSecret(ctx context.Context, req *mappingv1.GetSecretRequest) (*mappingv1.GetSecretResponse, error) {
	if err := checkTenant(req.GetTenantId()); err != nil {
		return nil, err
	}
	if !secretPattern.MatchString(req.GetName()) {
		return nil, invalid("name %q: want a lower-case name such as eboekhouden_token", req.GetName())
	}
	sealed, err := s.rdb.HGet(ctx, key(req.GetTenantId(), "secrets"), req.GetName()).Result()
	if errors.Is(err, redis.Nil) {
		return nil, status.Errorf(codes.NotFound, "secret %q of tenant %q is not set", req.GetName(), req.GetTenantId())
	}
	if err != nil {
		return nil, internal("get secret", err)
	}
	plain, err := s.keys.Open(sealed, secretAAD(req.GetTenantId(), req.GetName()))
	if err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "secret %q of tenant %q: %v", req.GetName(), req.GetTenantId(), err)
	}
	return &mappingv1.GetSecretResponse{Value: plain}, nil
}
