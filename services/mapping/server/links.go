package server

import (
	"context"
	"errors"
	"strconv"

	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// A link of kind K is kept in four hashes of the tenant, all keyed by field:
//
//	link:K:t  tribe ID -> e-Boekhouden ID
//	link:K:e  e-Boekhouden ID -> tribe ID
//	rec:K     tribe ID -> last-synced record
//	meta:K    tribe ID -> "version:syncedAtMillis"
type linkKeys struct{ t, e, rec, meta string }

func linkKeysOf(tenant, kind string) linkKeys {
	return linkKeys{
		t:    key(tenant, "link", kind, "t"),
		e:    key(tenant, "link", kind, "e"),
		rec:  key(tenant, "rec", kind),
		meta: key(tenant, "meta", kind),
	}
}

func (k linkKeys) list() []string { return []string{k.t, k.e, k.rec, k.meta} }

// createLinkScript links ARGV[1] (tribe) and ARGV[2] (e-Boekhouden) unless either is linked to
// something else. Returns 1 when created, 0 when the same pair already existed, -1 on conflict.
var createLinkScript = redis.NewScript(`
local e = redis.call('HGET', KEYS[1], ARGV[1])
local t = redis.call('HGET', KEYS[2], ARGV[2])
if e == ARGV[2] and t == ARGV[1] then return 0 end
if e or t then return -1 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
  redis.call('HSET', KEYS[4], ARGV[1], '1:' .. ARGV[4])
end
return 1
`)

// saveRecordScript stores a record when the link exists and the version matches ARGV[3]
// (-1: any). Returns the new version, -2 when there is no link, -1 on a version mismatch.
var saveRecordScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return -2 end
local meta = redis.call('HGET', KEYS[4], ARGV[1])
local version = 0
if meta then version = tonumber(string.match(meta, '^(%d+):')) end
local expected = tonumber(ARGV[3])
if expected >= 0 and expected ~= version then return -1 end
version = version + 1
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[4], ARGV[1], version .. ':' .. ARGV[4])
return version
`)

// deleteLinkScript removes a link by its tribe ID.
var deleteLinkScript = redis.NewScript(`
local e = redis.call('HGET', KEYS[1], ARGV[1])
if not e then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], e)
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
return 1
`)

func (s *Server) CreateLink(ctx context.Context, req *mappingv1.CreateLinkRequest) (*mappingv1.CreateLinkResponse, error) {
	if err := checkLinkArgs(req.GetTenantId(), req.GetKind()); err != nil {
		return nil, err
	}
	if err := checkID("tribe_id", req.GetTribeId()); err != nil {
		return nil, err
	}
	if err := checkID("eboekhouden_id", req.GetEboekhoudenId()); err != nil {
		return nil, err
	}
	if len(req.GetRecord()) > MaxRecordBytes {
		return nil, invalid("record: at most %d bytes", MaxRecordBytes)
	}
	k := linkKeysOf(req.GetTenantId(), req.GetKind())
	now := s.now().UnixMilli()
	res, err := createLinkScript.Run(ctx, s.rdb, k.list(), req.GetTribeId(), req.GetEboekhoudenId(), req.GetRecord(), now).Int()
	if err != nil {
		return nil, internal("create link", err)
	}
	if res < 0 {
		return nil, status.Errorf(codes.AlreadyExists, "%s link: tribe %q or e-Boekhouden %q is already linked to another record",
			req.GetKind(), req.GetTribeId(), req.GetEboekhoudenId())
	}
	link, err := s.readLinks(ctx, req.GetTenantId(), req.GetKind(), []string{req.GetTribeId()}, true)
	if err != nil {
		return nil, err
	}
	if len(link) == 0 {
		return nil, status.Error(codes.Aborted, "create link: deleted concurrently, try again")
	}
	return &mappingv1.CreateLinkResponse{Link: link[0]}, nil
}

func checkLinkArgs(tenant, kind string) error {
	if err := checkTenant(tenant); err != nil {
		return err
	}
	return checkKind(kind)
}

func (s *Server) GetLink(ctx context.Context, req *mappingv1.GetLinkRequest) (*mappingv1.GetLinkResponse, error) {
	if err := checkLinkArgs(req.GetTenantId(), req.GetKind()); err != nil {
		return nil, err
	}
	if (req.GetTribeId() == "") == (req.GetEboekhoudenId() == "") {
		return nil, invalid("want exactly one of tribe_id and eboekhouden_id")
	}
	var (
		links []*mappingv1.Link
		err   error
	)
	if req.GetTribeId() != "" {
		links, err = s.readLinks(ctx, req.GetTenantId(), req.GetKind(), []string{req.GetTribeId()}, true)
	} else {
		links, err = s.readLinksByEboekhouden(ctx, req.GetTenantId(), req.GetKind(), []string{req.GetEboekhoudenId()}, true)
	}
	if err != nil {
		return nil, err
	}
	if len(links) == 0 {
		return nil, status.Errorf(codes.NotFound, "no %s link for tribe %q / e-Boekhouden %q", req.GetKind(), req.GetTribeId(), req.GetEboekhoudenId())
	}
	return &mappingv1.GetLinkResponse{Link: links[0]}, nil
}

func (s *Server) BatchGetLinks(ctx context.Context, req *mappingv1.BatchGetLinksRequest) (*mappingv1.BatchGetLinksResponse, error) {
	if err := checkLinkArgs(req.GetTenantId(), req.GetKind()); err != nil {
		return nil, err
	}
	if n := len(req.GetTribeIds()) + len(req.GetEboekhoudenIds()); n > MaxBatch {
		return nil, invalid("at most %d IDs per batch, got %d", MaxBatch, n)
	}
	out := &mappingv1.BatchGetLinksResponse{}
	if len(req.GetTribeIds()) > 0 {
		links, err := s.readLinks(ctx, req.GetTenantId(), req.GetKind(), req.GetTribeIds(), req.GetWithRecords())
		if err != nil {
			return nil, err
		}
		out.Links = append(out.Links, links...)
	}
	if len(req.GetEboekhoudenIds()) > 0 {
		links, err := s.readLinksByEboekhouden(ctx, req.GetTenantId(), req.GetKind(), req.GetEboekhoudenIds(), req.GetWithRecords())
		if err != nil {
			return nil, err
		}
		out.Links = append(out.Links, links...)
	}
	return out, nil
}

func (s *Server) readLinksByEboekhouden(ctx context.Context, tenant, kind string, ebIDs []string, withRecords bool) ([]*mappingv1.Link, error) {
	k := linkKeysOf(tenant, kind)
	vals, err := s.rdb.HMGet(ctx, k.e, ebIDs...).Result()
	if err != nil {
		return nil, internal("get links", err)
	}
	var tribeIDs []string
	for _, v := range vals {
		if id, ok := v.(string); ok {
			tribeIDs = append(tribeIDs, id)
		}
	}
	if len(tribeIDs) == 0 {
		return nil, nil
	}
	return s.readLinks(ctx, tenant, kind, tribeIDs, withRecords)
}

// readLinks reads links by tribe ID in one round trip; unknown IDs are left out.
func (s *Server) readLinks(ctx context.Context, tenant, kind string, tribeIDs []string, withRecords bool) ([]*mappingv1.Link, error) {
	k := linkKeysOf(tenant, kind)
	pipe := s.rdb.Pipeline()
	ebs := pipe.HMGet(ctx, k.t, tribeIDs...)
	metas := pipe.HMGet(ctx, k.meta, tribeIDs...)
	var recs *redis.SliceCmd
	if withRecords {
		recs = pipe.HMGet(ctx, k.rec, tribeIDs...)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, internal("get links", err)
	}
	var out []*mappingv1.Link
	for i, id := range tribeIDs {
		eb, ok := ebs.Val()[i].(string)
		if !ok {
			continue
		}
		l := &mappingv1.Link{Kind: kind, TribeId: id, EboekhoudenId: eb}
		if meta, ok := metas.Val()[i].(string); ok {
			l.Version, l.SyncedAt = parseMeta(meta)
		}
		if recs != nil {
			if rec, ok := recs.Val()[i].(string); ok {
				l.Record = []byte(rec)
			}
		}
		out = append(out, l)
	}
	return out, nil
}

func parseMeta(meta string) (int64, *timestamppb.Timestamp) {
	for i := range len(meta) {
		if meta[i] == ':' {
			v, _ := strconv.ParseInt(meta[:i], 10, 64)
			ms, _ := strconv.ParseInt(meta[i+1:], 10, 64)
			return v, timestamppb.New(timeFromMillis(ms))
		}
	}
	return 0, nil
}

func (s *Server) SaveSyncedRecord(ctx context.Context, req *mappingv1.SaveSyncedRecordRequest) (*mappingv1.SaveSyncedRecordResponse, error) {
	if err := checkLinkArgs(req.GetTenantId(), req.GetKind()); err != nil {
		return nil, err
	}
	if err := checkID("tribe_id", req.GetTribeId()); err != nil {
		return nil, err
	}
	if len(req.GetRecord()) == 0 || len(req.GetRecord()) > MaxRecordBytes {
		return nil, invalid("record: want 1 to %d bytes", MaxRecordBytes)
	}
	if req.GetExpectedVersion() < -1 {
		return nil, invalid("expected_version: want -1 or a version")
	}
	k := linkKeysOf(req.GetTenantId(), req.GetKind())
	res, err := saveRecordScript.Run(ctx, s.rdb, k.list(), req.GetTribeId(), req.GetRecord(), req.GetExpectedVersion(), s.now().UnixMilli()).Int64()
	if err != nil {
		return nil, internal("save record", err)
	}
	switch res {
	case -2:
		return nil, status.Errorf(codes.NotFound, "no %s link for tribe %q", req.GetKind(), req.GetTribeId())
	case -1:
		return nil, status.Errorf(codes.FailedPrecondition, "%s %q: record changed since version %d", req.GetKind(), req.GetTribeId(), req.GetExpectedVersion())
	}
	links, err := s.readLinks(ctx, req.GetTenantId(), req.GetKind(), []string{req.GetTribeId()}, true)
	if err != nil {
		return nil, err
	}
	if len(links) == 0 {
		return nil, status.Error(codes.Aborted, "save record: link deleted concurrently")
	}
	return &mappingv1.SaveSyncedRecordResponse{Link: links[0]}, nil
}

func (s *Server) DeleteLink(ctx context.Context, req *mappingv1.DeleteLinkRequest) (*mappingv1.DeleteLinkResponse, error) {
	if err := checkLinkArgs(req.GetTenantId(), req.GetKind()); err != nil {
		return nil, err
	}
	if err := checkID("tribe_id", req.GetTribeId()); err != nil {
		return nil, err
	}
	k := linkKeysOf(req.GetTenantId(), req.GetKind())
	if err := deleteLinkScript.Run(ctx, s.rdb, k.list(), req.GetTribeId()).Err(); err != nil {
		return nil, internal("delete link", err)
	}
	return &mappingv1.DeleteLinkResponse{}, nil
}
