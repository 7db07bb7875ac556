package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The running run of a kind is a hash (run:K) whose counters workers bump atomically; finished
// runs are a capped list of encoded Runs (runs:K), newest first. kinds is the set of kinds seen.

// startRunScript starts run ARGV[1] unless another run is in progress and was updated less than
// ARGV[4] ms before ARGV[3] (now), or the run finished before (KEYS[3], a sorted set of finished
// run IDs). Returns 1 when started, 0 when that run already runs, -1 when another run is in
// progress, 3 when it finished, -2 (with the kind and ID) when a run of an exclusive kind
// (KEYS[4] onwards, their kinds in ARGV[6] onwards) is in progress. A stale run's hash is returned
// to the caller for the history as {2, fields...}.
var startRunScript = redis.NewScript(`
if redis.call('ZSCORE', KEYS[3], ARGV[1]) then return {3} end
for i = 4, #KEYS do
  local other = redis.call('HGET', KEYS[i], 'id')
  if other then
    local updated = tonumber(redis.call('HGET', KEYS[i], 'updated') or '0')
    if tonumber(ARGV[3]) - updated < tonumber(ARGV[4]) then return {-2, ARGV[i + 2], other} end
  end
end
local cur = redis.call('HGET', KEYS[1], 'id')
local stale = nil
if cur then
  if cur == ARGV[1] then return {0} end
  local updated = tonumber(redis.call('HGET', KEYS[1], 'updated') or '0')
  if tonumber(ARGV[3]) - updated < tonumber(ARGV[4]) then return {-1, cur} end
  stale = redis.call('HGETALL', KEYS[1])
  redis.call('DEL', KEYS[1])
end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'trigger', ARGV[2], 'started', ARGV[3], 'updated', ARGV[3],
  'created', 0, 'updated_n', 0, 'unchanged', 0, 'skipped', 0, 'failed', 0, 'done', 0, 'total', 0)
redis.call('SADD', KEYS[2], ARGV[5])
if stale then return {2, stale} end
return {1}
`)

var updateRunScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'id') ~= ARGV[1] then return nil end
redis.call('HINCRBY', KEYS[1], 'created', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'updated_n', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'unchanged', ARGV[4])
redis.call('HINCRBY', KEYS[1], 'skipped', ARGV[5])
redis.call('HINCRBY', KEYS[1], 'failed', ARGV[6])
redis.call('HINCRBY', KEYS[1], 'done', ARGV[7])
if tonumber(ARGV[8]) > 0 then redis.call('HSET', KEYS[1], 'total', ARGV[8]) end
redis.call('HSET', KEYS[1], 'updated', ARGV[9])
return redis.call('HGETALL', KEYS[1])
`)

// finishRunScript moves the run to the history when it is the running one, and remembers its ID
// (the newest 1000) so a redelivered command does not start it again.
var finishRunScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'id') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[3]) - 1)
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -1001)
return 1
`)

func runFromFields(kind string, flat []any) *mappingv1.Run {
	f := map[string]string{}
	for i := 0; i+1 < len(flat); i += 2 {
		k, _ := flat[i].(string)
		v, _ := flat[i+1].(string)
		f[k] = v
	}
	num := func(name string) int64 { n, _ := strconv.ParseInt(f[name], 10, 64); return n }
	ts := func(name string) *timestamppb.Timestamp {
		if f[name] == "" {
			return nil
		}
		return timestamppb.New(timeFromMillis(num(name)))
	}
	return &mappingv1.Run{
		Id: f["id"], Kind: kind, Status: mappingv1.RunStatus_RUN_STATUS_RUNNING, Trigger: f["trigger"],
		StartedAt: ts("started"), UpdatedAt: ts("updated"),
		Counts: &mappingv1.RunCounts{Created: num("created"), Updated: num("updated_n"), Unchanged: num("unchanged"),
			Skipped: num("skipped"), Failed: num("failed")},
		Done: num("done"), Total: num("total"),
	}
}

func checkRun(tenant, kind, runID string) error {
	if err := checkLinkArgs(tenant, kind); err != nil {
		return err
	}
	return checkID("run_id", runID)
}

func (s *Server) StartRun(ctx context.Context, req *mappingv1.StartRunRequest) (*mappingv1.StartRunResponse, error) {
	if err := checkRun(req.GetTenantId(), req.GetKind(), req.GetRunId()); err != nil {
		return nil, err
	}
	stale := time.Duration(req.GetStaleAfterMs()) * time.Millisecond
	if stale <= 0 {
		stale = defaultStale
	}
	now := s.now().UnixMilli()
	keys := []string{key(req.GetTenantId(), "run", req.GetKind()), key(req.GetTenantId(), "kinds"), key(req.GetTenantId(), "runids", req.GetKind())}
	args := []any{req.GetRunId(), req.GetTrigger(), now, stale.Milliseconds(), req.GetKind()}
	for _, k := range req.GetExclusiveKinds() {
		if k == req.GetKind() {
			continue
		}
		if err := checkID("exclusive_kinds", k); err != nil {
			return nil, err
		}
		keys = append(keys, key(req.GetTenantId(), "run", k))
		args = append(args, k)
	}
	res, err := startRunScript.Run(ctx, s.rdb, keys, args...).Slice()
	if err != nil {
		return nil, internal("start run", err)
	}
	switch res[0].(int64) {
	case 3:
		return nil, status.Errorf(codes.AlreadyExists, "%s run %q has finished", req.GetKind(), req.GetRunId())
	case -1:
		return nil, status.Errorf(codes.FailedPrecondition, "%s %s run (%v) is already in progress", article(req.GetKind()), req.GetKind(), res[1])
	case -2:
		return nil, status.Errorf(codes.Aborted, "%s %v run (%v) is in progress, and %s runs wait for it", article(fmt.Sprint(res[1])), res[1], res[2], req.GetKind())
	case 2:
		abandoned := runFromFields(req.GetKind(), res[1].([]any))
		abandoned.Status = mappingv1.RunStatus_RUN_STATUS_FAILED
		abandoned.Message = "abandoned: no progress for " + stale.String()
		abandoned.FinishedAt = timestamppb.New(timeFromMillis(now))
		if err := s.pushHistory(ctx, req.GetTenantId(), abandoned); err != nil {
			return nil, err
		}
	}
	return s.currentRun(ctx, req.GetTenantId(), req.GetKind())
}

func (s *Server) currentRun(ctx context.Context, tenant, kind string) (*mappingv1.StartRunResponse, error) {
	fields, err := s.rdb.HGetAll(ctx, key(tenant, "run", kind)).Result()
	if err != nil {
		return nil, internal("get run", err)
	}
	flat := make([]any, 0, 2*len(fields))
	for k, v := range fields {
		flat = append(flat, k, v)
	}
	return &mappingv1.StartRunResponse{Run: runFromFields(kind, flat)}, nil
}

func (s *Server) pushHistory(ctx context.Context, tenant string, run *mappingv1.Run) error {
	blob, err := proto.Marshal(run)
	if err != nil {
		return internal("encode run", err)
	}
	k := key(tenant, "runs", run.Kind)
	pipe := s.rdb.TxPipeline()
	pipe.LPush(ctx, k, blob)
	pipe.LTrim(ctx, k, 0, maxRunsKept-1)
	if _, err := pipe.Exec(ctx); err != nil {
		return internal("record run", err)
	}
	return nil
}

func (s *Server) UpdateRun(ctx context.Context, req *mappingv1.UpdateRunRequest) (*mappingv1.UpdateRunResponse, error) {
	if err := checkRun(req.GetTenantId(), req.GetKind(), req.GetRunId()); err != nil {
		return nil, err
	}
	a := req.GetAdd()
	for _, n := range []int64{a.GetCreated(), a.GetUpdated(), a.GetUnchanged(), a.GetSkipped(), a.GetFailed(), req.GetAddDone(), req.GetTotal()} {
		if n < 0 {
			return nil, invalid("counts must not be negative")
		}
	}
	res, err := updateRunScript.Run(ctx, s.rdb, []string{key(req.GetTenantId(), "run", req.GetKind())}, req.GetRunId(),
		a.GetCreated(), a.GetUpdated(), a.GetUnchanged(), a.GetSkipped(), a.GetFailed(), req.GetAddDone(), req.GetTotal(),
		s.now().UnixMilli()).Slice()
	if errors.Is(err, redis.Nil) {
		return nil, status.Errorf(codes.NotFound, "%s run %q is not running", req.GetKind(), req.GetRunId())
	}
	if err != nil {
		return nil, internal("update run", err)
	}
	return &mappingv1.UpdateRunResponse{Run: runFromFields(req.GetKind(), res)}, nil
}

// maxReport bounds a finished run's report: the finished runs of a kind are kept in one list.
const maxReport = 256 << 10

func (s *Server) FinishRun(ctx context.Context, req *mappingv1.FinishRunRequest) (*mappingv1.FinishRunResponse, error) {
	if err := checkRun(req.GetTenantId(), req.GetKind(), req.GetRunId()); err != nil {
		return nil, err
	}
	switch req.GetStatus() {
	case mappingv1.RunStatus_RUN_STATUS_SUCCEEDED, mappingv1.RunStatus_RUN_STATUS_PARTIAL, mappingv1.RunStatus_RUN_STATUS_FAILED:
	default:
		return nil, invalid("status: want SUCCEEDED, PARTIAL or FAILED")
	}
	if len(req.GetReport()) > maxReport {
		return nil, invalid("report: at most %d bytes", maxReport)
	}
	cur, err := s.currentRun(ctx, req.GetTenantId(), req.GetKind())
	if err != nil {
		return nil, err
	}
	run := cur.Run
	if run.Id != req.GetRunId() {
		return nil, status.Errorf(codes.NotFound, "%s run %q is not running", req.GetKind(), req.GetRunId())
	}
	run.Status = req.GetStatus()
	run.Message = req.GetMessage()
	run.Report = req.GetReport()
	if run.Status == mappingv1.RunStatus_RUN_STATUS_SUCCEEDED && run.GetCounts().GetFailed() > 0 {
		// The counts are the run's, over every delivery of its command: failed records make it
		// partial whatever the last delivery saw.
		run.Status = mappingv1.RunStatus_RUN_STATUS_PARTIAL
		run.Message = strings.TrimPrefix(run.Message+"; ", "; ") + fmt.Sprintf("%d records failed; see the open issues", run.GetCounts().GetFailed())
	}
	run.FinishedAt = timestamppb.New(s.now())
	blob, err := proto.Marshal(run)
	if err != nil {
		return nil, internal("encode run", err)
	}
	keys := []string{key(req.GetTenantId(), "run", req.GetKind()), key(req.GetTenantId(), "runs", req.GetKind()), key(req.GetTenantId(), "runids", req.GetKind())}
	ok, err := finishRunScript.Run(ctx, s.rdb, keys, req.GetRunId(), blob, maxRunsKept, s.now().UnixMilli()).Int()
	if err != nil {
		return nil, internal("finish run", err)
	}
	if ok != 1 {
		return nil, status.Errorf(codes.NotFound, "%s run %q is not running", req.GetKind(), req.GetRunId())
	}
	return &mappingv1.FinishRunResponse{Run: run}, nil
}

func (s *Server) ListRuns(ctx context.Context, req *mappingv1.ListRunsRequest) (*mappingv1.ListRunsResponse, error) {
	if err := checkTenant(req.GetTenantId()); err != nil {
		return nil, err
	}
	limit := int64(req.GetLimit())
	if limit <= 0 {
		limit = defaultRunLimit
	}
	if limit > maxRunsKept {
		return nil, invalid("limit: at most %d", maxRunsKept)
	}
	kinds := []string{req.GetKind()}
	if req.GetKind() == "" {
		var err error
		if kinds, err = s.rdb.SMembers(ctx, key(req.GetTenantId(), "kinds")).Result(); err != nil {
			return nil, internal("list run kinds", err)
		}
		slices.Sort(kinds)
	} else if err := checkKind(req.GetKind()); err != nil {
		return nil, err
	}
	out := &mappingv1.ListRunsResponse{}
	for _, kind := range kinds {
		cur, err := s.currentRun(ctx, req.GetTenantId(), kind)
		if err != nil {
			return nil, err
		}
		if cur.Run.Id != "" {
			out.Current = append(out.Current, cur.Run)
		}
		blobs, err := s.rdb.LRange(ctx, key(req.GetTenantId(), "runs", kind), 0, limit-1).Result()
		if err != nil {
			return nil, internal("list runs", err)
		}
		for _, b := range blobs {
			r := &mappingv1.Run{}
			if err := proto.Unmarshal([]byte(b), r); err != nil {
				return nil, internal("decode run", err)
			}
			out.Finished = append(out.Finished, r)
		}
	}
	return out, nil
}

// article is the indefinite article before a run kind ("an import run", "a relation run").
func article(kind string) string {
	if kind != "" && strings.ContainsRune("aeiou", rune(kind[0])) {
		return "an"
	}
	return "a"
}
