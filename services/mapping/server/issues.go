package server

import (
	"context"
	"errors"
	"slices"
	"strings"

	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Open issues are a hash of the tenant (issues), key -> encoded Issue.

func (s *Server) RecordIssue(ctx context.Context, req *mappingv1.RecordIssueRequest) (*mappingv1.RecordIssueResponse, error) {
	if err := checkTenant(req.GetTenantId()); err != nil {
		return nil, err
	}
	in := req.GetIssue()
	if err := checkID("issue.key", in.GetKey()); err != nil {
		return nil, err
	}
	if in.GetCode() == "" || in.GetMessage() == "" {
		return nil, invalid("issue.code and issue.message: required")
	}
	if len(in.GetMessage()) > 2000 || len(in.GetAction()) > 2000 {
		return nil, invalid("issue.message and issue.action: at most 2000 bytes")
	}
	if len(in.GetDetails()) > 20 {
		return nil, invalid("issue.details: at most 20")
	}
	for k, v := range in.GetDetails() {
		if len(k) > 100 || len(v) > 1000 {
			return nil, invalid("issue.details: keys at most 100 bytes, values at most 1000")
		}
	}
	k := key(req.GetTenantId(), "issues")
	now := timestamppb.New(s.now())
	var out *mappingv1.Issue
	for range 10 {
		err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			issue := proto.Clone(in).(*mappingv1.Issue)
			issue.FirstSeen, issue.LastSeen, issue.Occurrences = now, now, 1
			prev, err := tx.HGet(ctx, k, in.GetKey()).Bytes()
			switch {
			case errors.Is(err, redis.Nil):
			case err != nil:
				return err
			default:
				old := &mappingv1.Issue{}
				if err := proto.Unmarshal(prev, old); err == nil {
					issue.FirstSeen = old.GetFirstSeen()
					issue.Occurrences = old.GetOccurrences() + 1
				}
			}
			blob, err := proto.Marshal(issue)
			if err != nil {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error { p.HSet(ctx, k, in.GetKey(), blob); return nil })
			out = issue
			return err
		}, k)
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		if err != nil {
			return nil, internal("record issue", err)
		}
		return &mappingv1.RecordIssueResponse{Issue: out}, nil
	}
	return nil, status.Error(codes.Aborted, "record issue: too much contention, try again")
}

func (s *Server) ResolveIssue(ctx context.Context, req *mappingv1.ResolveIssueRequest) (*mappingv1.ResolveIssueResponse, error) {
	if err := checkTenant(req.GetTenantId()); err != nil {
		return nil, err
	}
	if err := checkID("key", req.GetKey()); err != nil {
		return nil, err
	}
	if err := s.rdb.HDel(ctx, key(req.GetTenantId(), "issues"), req.GetKey()).Err(); err != nil {
		return nil, internal("resolve issue", err)
	}
	return &mappingv1.ResolveIssueResponse{}, nil
}

func (s *Server) ListIssues(ctx context.Context, req *mappingv1.ListIssuesRequest) (*mappingv1.ListIssuesResponse, error) {
	if err := checkTenant(req.GetTenantId()); err != nil {
		return nil, err
	}
	blobs, err := s.rdb.HVals(ctx, key(req.GetTenantId(), "issues")).Result()
	if err != nil {
		return nil, internal("list issues", err)
	}
	out := &mappingv1.ListIssuesResponse{}
	for _, b := range blobs {
		issue := &mappingv1.Issue{}
		if err := proto.Unmarshal([]byte(b), issue); err != nil {
			return nil, internal("decode issue", err)
		}
		out.Issues = append(out.Issues, issue)
	}
	slices.SortFunc(out.Issues, func(a, b *mappingv1.Issue) int {
		if c := b.GetLastSeen().AsTime().Compare(a.GetLastSeen().AsTime()); c != 0 {
			return c
		}
		return strings.Compare(a.GetKey(), b.GetKey())
	})
	return out, nil
}

const maxHistory = 1000

func (s *Server) RecordHistory(ctx context.Context, req *mappingv1.RecordHistoryRequest) (*mappingv1.RecordHistoryResponse, error) {
	if err := checkTenant(req.GetTenantId()); err != nil {
		return nil, err
	}
	e := proto.Clone(req.GetEntry()).(*mappingv1.HistoryEntry)
	if e == nil || e.GetCode() == "" || e.GetMessage() == "" {
		return nil, invalid("entry.code and entry.message: required")
	}
	if len(e.GetMessage()) > 2000 || len(e.GetDetails()) > 20 {
		return nil, invalid("entry: message at most 2000 bytes, at most 20 details")
	}
	if e.At == nil {
		e.At = timestamppb.New(s.now())
	}
	blob, err := proto.Marshal(e)
	if err != nil {
		return nil, internal("encode history", err)
	}
	k := key(req.GetTenantId(), "history")
	pipe := s.rdb.TxPipeline()
	pipe.LPush(ctx, k, blob)
	pipe.LTrim(ctx, k, 0, maxHistory-1)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, internal("record history", err)
	}
	return &mappingv1.RecordHistoryResponse{}, nil
}

func (s *Server) ListHistory(ctx context.Context, req *mappingv1.ListHistoryRequest) (*mappingv1.ListHistoryResponse, error) {
	if err := checkTenant(req.GetTenantId()); err != nil {
		return nil, err
	}
	limit := int64(req.GetLimit())
	if limit <= 0 {
		limit = 50
	}
	if limit > maxHistory {
		return nil, invalid("limit: at most %d", maxHistory)
	}
	blobs, err := s.rdb.LRange(ctx, key(req.GetTenantId(), "history"), 0, limit-1).Result()
	if err != nil {
		return nil, internal("list history", err)
	}
	out := &mappingv1.ListHistoryResponse{}
	for _, b := range blobs {
		e := &mappingv1.HistoryEntry{}
		if err := proto.Unmarshal([]byte(b), e); err != nil {
			return nil, internal("decode history", err)
		}
		out.Entries = append(out.Entries, e)
	}
	return out, nil
}
