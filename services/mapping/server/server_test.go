package server_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koppel/koppel/pkg/localinfra"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/koppel/koppel/services/mapping/secretbox"
	"github.com/koppel/koppel/services/mapping/server"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

type harness struct {
	client mappingv1.MappingServiceClient
	rdb    *redis.Client
	redis  *localinfra.Redis
}

var testKey = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

// newServer starts a redis-server of the test's own and returns a mapping server on it.
func newServer(t testing.TB) (*server.Server, *redis.Client, *localinfra.Redis) {
	t.Helper()
	rs, err := localinfra.StartRedisServer(t.TempDir())
	if err != nil {
		t.Fatalf("these tests need a real redis-server (apt-get install redis-server): %v", err)
	}
	t.Cleanup(rs.Stop)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	t.Cleanup(func() { rdb.Close() })
	keys, err := secretbox.ParseKeyring("k1:" + testKey)
	if err != nil {
		t.Fatal(err)
	}
	return server.New(rdb, keys), rdb, rs
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	srv, rdb, rs := newServer(t)
	gs := grpc.NewServer()
	mappingv1.RegisterMappingServiceServer(gs, srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &harness{client: mappingv1.NewMappingServiceClient(conn), rdb: rdb, redis: rs}
}

func wantCode(t *testing.T, err error, code codes.Code) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("want %s, got %v", code, err)
	}
}

var ctx = context.Background()

func (h *harness) tenant(t testing.TB, id string) {
	t.Helper()
	_, err := h.client.CreateTenant(ctx, &mappingv1.CreateTenantRequest{Tenant: &mappingv1.Tenant{Id: id, DisplayName: "Acme BV"}})
	if err != nil {
		t.Fatal(err)
	}
}

func TestTenantsAndSecrets(t *testing.T) {
	h := newHarness(t)
	h.tenant(t, "acme")
	_, err := h.client.CreateTenant(ctx, &mappingv1.CreateTenantRequest{Tenant: &mappingv1.Tenant{Id: "acme"}})
	wantCode(t, err, codes.AlreadyExists)
	_, err = h.client.CreateTenant(ctx, &mappingv1.CreateTenantRequest{Tenant: &mappingv1.Tenant{Id: "Bad Tenant"}})
	wantCode(t, err, codes.InvalidArgument)
	_, err = h.client.GetTenant(ctx, &mappingv1.GetTenantRequest{TenantId: "nobody"})
	wantCode(t, err, codes.NotFound)

	if _, err := h.client.PutSecret(ctx, &mappingv1.PutSecretRequest{TenantId: "acme", Name: "eboekhouden_token", Value: []byte("s3cret-token")}); err != nil {
		t.Fatal(err)
	}
	_, err = h.client.PutSecret(ctx, &mappingv1.PutSecretRequest{TenantId: "nobody", Name: "eboekhouden_token", Value: []byte("x")})
	wantCode(t, err, codes.NotFound)
	got, err := h.client.GetSecret(ctx, &mappingv1.GetSecretRequest{TenantId: "acme", Name: "eboekhouden_token"})
	if err != nil || string(got.Value) != "s3cret-token" {
		t.Fatalf("secret = %q, %v", got.GetValue(), err)
	}
	_, err = h.client.GetSecret(ctx, &mappingv1.GetSecretRequest{TenantId: "acme", Name: "webhook_secret"})
	wantCode(t, err, codes.NotFound)

	// At rest the secret is sealed: no trace of it in Redis.
	keys, _ := h.rdb.Keys(ctx, "*").Result()
	for _, k := range keys {
		if typ, _ := h.rdb.Type(ctx, k).Result(); typ == "hash" {
			vals, _ := h.rdb.HVals(ctx, k).Result()
			for _, v := range vals {
				if strings.Contains(v, "s3cret-token") {
					t.Fatalf("plaintext secret in %s", k)
				}
			}
		}
		if !strings.HasPrefix(k, "koppel:{acme}:") && k != "koppel:tenants" {
			t.Errorf("key %q lacks the tenant hash tag", k)
		}
	}

	list, err := h.client.ListTenants(ctx, &mappingv1.ListTenantsRequest{})
	if err != nil || len(list.Tenants) != 1 {
		t.Fatalf("list = %v, %v", list, err)
	}
	if names := list.Tenants[0].SecretNames; !slices.Equal(names, []string{"eboekhouden_token"}) {
		t.Fatalf("secret names = %v", names)
	}
	if strings.Contains(list.String(), "s3cret") {
		t.Fatal("list returns a secret value")
	}

	upd, err := h.client.UpdateTenantSettings(ctx, &mappingv1.UpdateTenantSettingsRequest{TenantId: "acme",
		Settings: &mappingv1.TenantSettings{AutoDebtorNumbers: true, ScheduleSeconds: map[string]int64{"relation": 3600}}})
	if err != nil || !upd.Tenant.Settings.AutoDebtorNumbers || upd.Tenant.DisplayName != "Acme BV" {
		t.Fatalf("update = %v, %v", upd, err)
	}
	_, err = h.client.UpdateTenantSettings(ctx, &mappingv1.UpdateTenantSettingsRequest{TenantId: "acme",
		Settings: &mappingv1.TenantSettings{ScheduleSeconds: map[string]int64{"relation": 5}}})
	wantCode(t, err, codes.InvalidArgument)
	st, err := h.client.SetTenantState(ctx, &mappingv1.SetTenantStateRequest{TenantId: "acme", State: mappingv1.TenantState_TENANT_STATE_ACTIVE})
	if err != nil || st.Tenant.State != mappingv1.TenantState_TENANT_STATE_ACTIVE || !st.Tenant.Settings.AutoDebtorNumbers {
		t.Fatalf("state = %v, %v", st, err)
	}
}

func TestSecretSurvivesKeyRotation(t *testing.T) {
	h := newHarness(t)
	h.tenant(t, "acme")
	if _, err := h.client.PutSecret(ctx, &mappingv1.PutSecretRequest{TenantId: "acme", Name: "webhook_secret", Value: []byte("w")}); err != nil {
		t.Fatal(err)
	}
	newKey := base64.StdEncoding.EncodeToString([]byte("fedcba9876543210fedcba9876543210"))
	rotated, _ := secretbox.ParseKeyring("k2:" + newKey + ",k1:" + testKey)
	res, err := server.New(h.rdb, rotated).GetSecret(ctx, &mappingv1.GetSecretRequest{TenantId: "acme", Name: "webhook_secret"})
	if err != nil || string(res.Value) != "w" {
		t.Fatalf("after rotation: %v %v", res, err)
	}
}

func TestLinksAreUniqueInBothDirections(t *testing.T) {
	h := newHarness(t)
	link := func(tribe, eb string) error {
		_, err := h.client.CreateLink(ctx, &mappingv1.CreateLinkRequest{TenantId: "acme", Kind: "organization", TribeId: tribe, EboekhoudenId: eb, Record: []byte(`{"name":"x"}`)})
		return err
	}
	if err := link("t1", "e1"); err != nil {
		t.Fatal(err)
	}
	if err := link("t1", "e1"); err != nil {
		t.Fatalf("linking the same pair again must succeed: %v", err)
	}
	wantCode(t, link("t1", "e2"), codes.AlreadyExists)
	wantCode(t, link("t2", "e1"), codes.AlreadyExists)
	wantCode(t, link("", "e1"), codes.InvalidArgument)

	got, err := h.client.GetLink(ctx, &mappingv1.GetLinkRequest{TenantId: "acme", Kind: "organization", EboekhoudenId: "e1"})
	if err != nil || got.Link.TribeId != "t1" || string(got.Link.Record) != `{"name":"x"}` || got.Link.Version != 1 {
		t.Fatalf("get = %v, %v", got, err)
	}
	_, err = h.client.GetLink(ctx, &mappingv1.GetLinkRequest{TenantId: "acme", Kind: "person", TribeId: "t1"})
	wantCode(t, err, codes.NotFound)
	_, err = h.client.GetLink(ctx, &mappingv1.GetLinkRequest{TenantId: "acme", Kind: "organization"})
	wantCode(t, err, codes.InvalidArgument)

	if err := link("t3", "e3"); err != nil {
		t.Fatal(err)
	}
	batch, err := h.client.BatchGetLinks(ctx, &mappingv1.BatchGetLinksRequest{TenantId: "acme", Kind: "organization",
		TribeIds: []string{"t1", "missing"}, EboekhoudenIds: []string{"e3"}})
	if err != nil || len(batch.Links) != 2 || batch.Links[0].EboekhoudenId != "e1" || batch.Links[1].TribeId != "t3" || batch.Links[0].Record != nil {
		t.Fatalf("batch = %v, %v", batch, err)
	}

	if _, err := h.client.DeleteLink(ctx, &mappingv1.DeleteLinkRequest{TenantId: "acme", Kind: "organization", TribeId: "t1"}); err != nil {
		t.Fatal(err)
	}
	if err := link("t9", "e1"); err != nil {
		t.Fatalf("e1 is free after the delete: %v", err)
	}
}

func TestConcurrentLinkOfSameRecordHasOneWinner(t *testing.T) {
	h := newHarness(t)
	for round := range 20 {
		eb := fmt.Sprintf("e%d", round)
		var wg sync.WaitGroup
		codesSeen := make([]codes.Code, 2)
		for i := range 2 {
			wg.Go(func() {
				_, err := h.client.CreateLink(ctx, &mappingv1.CreateLinkRequest{TenantId: "acme", Kind: "organization",
					TribeId: fmt.Sprintf("t%d-%d", round, i), EboekhoudenId: eb})
				codesSeen[i] = status.Code(err)
			})
		}
		wg.Wait()
		slices.Sort(codesSeen)
		if !slices.Equal(codesSeen, []codes.Code{codes.OK, codes.AlreadyExists}) {
			t.Fatalf("round %d: codes %v, want one OK and one AlreadyExists", round, codesSeen)
		}
	}
}

func TestSyncedRecordVersions(t *testing.T) {
	h := newHarness(t)
	save := func(rec string, expected int64) (*mappingv1.SaveSyncedRecordResponse, error) {
		return h.client.SaveSyncedRecord(ctx, &mappingv1.SaveSyncedRecordRequest{TenantId: "acme", Kind: "product", TribeId: "p1", Record: []byte(rec), ExpectedVersion: expected})
	}
	_, err := save("{}", -1)
	wantCode(t, err, codes.NotFound)
	if _, err := h.client.CreateLink(ctx, &mappingv1.CreateLinkRequest{TenantId: "acme", Kind: "product", TribeId: "p1", EboekhoudenId: "42"}); err != nil {
		t.Fatal(err)
	}
	r, err := save(`{"v":1}`, 0)
	if err != nil || r.Link.Version != 1 || r.Link.SyncedAt == nil {
		t.Fatalf("first save = %v, %v", r, err)
	}
	_, err = save(`{"v":2}`, 0)
	wantCode(t, err, codes.FailedPrecondition)
	r, err = save(`{"v":2}`, -1)
	if err != nil || r.Link.Version != 2 || string(r.Link.Record) != `{"v":2}` {
		t.Fatalf("overwrite = %v, %v", r, err)
	}
}

func TestDebtorNumbersHaveNoGapsOrDuplicates(t *testing.T) {
	h := newHarness(t)
	if _, err := h.client.RaiseNumber(ctx, &mappingv1.RaiseNumberRequest{TenantId: "acme", Sequence: "debtor", Floor: 1000}); err != nil {
		t.Fatal(err)
	}
	const n = 50
	got := make([]int64, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r, err := h.client.NextNumber(ctx, &mappingv1.NextNumberRequest{TenantId: "acme", Sequence: "debtor"})
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = r.Number
		})
	}
	wg.Wait()
	slices.Sort(got)
	for i, v := range got {
		if v != int64(1001+i) {
			t.Fatalf("numbers %v: want 1001..1050 without gap or duplicate", got)
		}
	}
	// Raising never lowers.
	r, err := h.client.RaiseNumber(ctx, &mappingv1.RaiseNumberRequest{TenantId: "acme", Sequence: "debtor", Floor: 10})
	if err != nil || r.Current != 1050 {
		t.Fatalf("raise below = %v, %v", r, err)
	}
	r, err = h.client.RaiseNumber(ctx, &mappingv1.RaiseNumberRequest{TenantId: "acme", Sequence: "debtor", Floor: 2000})
	if err != nil || r.Current != 2000 {
		t.Fatalf("raise = %v, %v", r, err)
	}
	next, _ := h.client.NextNumber(ctx, &mappingv1.NextNumberRequest{TenantId: "acme", Sequence: "debtor"})
	if next.GetNumber() != 2001 {
		t.Fatalf("next after raise = %d", next.GetNumber())
	}
}

func TestLeaseTakenOverOnlyAfterExpiryWithHigherToken(t *testing.T) {
	h := newHarness(t)
	const ttl = 300
	a, err := h.client.AcquireLease(ctx, &mappingv1.AcquireLeaseRequest{TenantId: "acme", Name: "organization/1", Holder: "a", TtlMs: ttl})
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.client.AcquireLease(ctx, &mappingv1.AcquireLeaseRequest{TenantId: "acme", Name: "organization/1", Holder: "b", TtlMs: ttl})
	wantCode(t, err, codes.FailedPrecondition)
	// Not even the holder takes it twice: one process runs many handlers under one name.
	_, err = h.client.AcquireLease(ctx, &mappingv1.AcquireLeaseRequest{TenantId: "acme", Name: "organization/1", Holder: "a", TtlMs: ttl})
	wantCode(t, err, codes.FailedPrecondition)
	if _, err := h.client.RenewLease(ctx, &mappingv1.RenewLeaseRequest{TenantId: "acme", Name: "organization/1", Holder: "a", FencingToken: a.FencingToken, TtlMs: ttl}); err != nil {
		t.Fatal(err)
	}

	var b *mappingv1.AcquireLeaseResponse
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err = h.client.AcquireLease(ctx, &mappingv1.AcquireLeaseRequest{TenantId: "acme", Name: "organization/1", Holder: "b", TtlMs: ttl})
		if err == nil {
			break
		}
		wantCode(t, err, codes.FailedPrecondition)
		if time.Now().After(deadline) {
			t.Fatal("lease never expired")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if b.FencingToken <= a.FencingToken {
		t.Fatalf("token after takeover %d not above %d", b.FencingToken, a.FencingToken)
	}
	_, err = h.client.RenewLease(ctx, &mappingv1.RenewLeaseRequest{TenantId: "acme", Name: "organization/1", Holder: "a", FencingToken: a.FencingToken, TtlMs: ttl})
	wantCode(t, err, codes.FailedPrecondition)
	// The old holder's release does not free the new holder's lease.
	if _, err := h.client.ReleaseLease(ctx, &mappingv1.ReleaseLeaseRequest{TenantId: "acme", Name: "organization/1", Holder: "a", FencingToken: a.FencingToken}); err != nil {
		t.Fatal(err)
	}
	_, err = h.client.AcquireLease(ctx, &mappingv1.AcquireLeaseRequest{TenantId: "acme", Name: "organization/1", Holder: "c", TtlMs: ttl})
	wantCode(t, err, codes.FailedPrecondition)
	if _, err := h.client.ReleaseLease(ctx, &mappingv1.ReleaseLeaseRequest{TenantId: "acme", Name: "organization/1", Holder: "b", FencingToken: b.FencingToken}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.AcquireLease(ctx, &mappingv1.AcquireLeaseRequest{TenantId: "acme", Name: "organization/1", Holder: "c", TtlMs: ttl}); err != nil {
		t.Fatalf("after release: %v", err)
	}
	_, err = h.client.AcquireLease(ctx, &mappingv1.AcquireLeaseRequest{TenantId: "acme", Name: "x", Holder: "c", TtlMs: 1})
	wantCode(t, err, codes.InvalidArgument)
}

func TestRunsAndHistory(t *testing.T) {
	h := newHarness(t)
	start := func(id string) error {
		_, err := h.client.StartRun(ctx, &mappingv1.StartRunRequest{TenantId: "acme", Kind: "import", RunId: id, Trigger: "activation"})
		return err
	}
	if err := start("r1"); err != nil {
		t.Fatal(err)
	}
	if err := start("r1"); err != nil {
		t.Fatalf("restarting the same run must succeed (redelivered command): %v", err)
	}
	wantCode(t, start("r2"), codes.FailedPrecondition)

	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			_, err := h.client.UpdateRun(ctx, &mappingv1.UpdateRunRequest{TenantId: "acme", Kind: "import", RunId: "r1",
				Add: &mappingv1.RunCounts{Created: 2, Unchanged: 1}, AddDone: 3, Total: 30})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	_, err := h.client.UpdateRun(ctx, &mappingv1.UpdateRunRequest{TenantId: "acme", Kind: "import", RunId: "nope"})
	wantCode(t, err, codes.NotFound)

	_, err = h.client.UpdateRun(ctx, &mappingv1.UpdateRunRequest{TenantId: "acme", Kind: "import", RunId: "r1", Add: &mappingv1.RunCounts{Failed: 1}})
	if err != nil {
		t.Fatal(err)
	}
	fin, err := h.client.FinishRun(ctx, &mappingv1.FinishRunRequest{TenantId: "acme", Kind: "import", RunId: "r1", Status: mappingv1.RunStatus_RUN_STATUS_SUCCEEDED})
	if err != nil {
		t.Fatal(err)
	}
	// Failed records turn a successful run into a partial one, whichever delivery counted them.
	if c := fin.Run.Counts; c.Created != 20 || c.Unchanged != 10 || c.Failed != 1 || fin.Run.Done != 30 || fin.Run.Total != 30 || fin.Run.Trigger != "activation" || fin.Run.Status != mappingv1.RunStatus_RUN_STATUS_PARTIAL {
		t.Fatalf("finished run = %v", fin.Run)
	}
	if err := start("r2"); err != nil {
		t.Fatalf("start after finish: %v", err)
	}
	// A run may finish with a report of what it found; it is kept with the run.
	fin, err = h.client.FinishRun(ctx, &mappingv1.FinishRunRequest{TenantId: "acme", Kind: "import", RunId: "r2", Status: mappingv1.RunStatus_RUN_STATUS_SUCCEEDED, Report: `{"kinds":[]}`})
	if err != nil || fin.Run.GetReport() != `{"kinds":[]}` {
		t.Fatalf("finish with a report: %v %v", fin, err)
	}
	_, err = h.client.FinishRun(ctx, &mappingv1.FinishRunRequest{TenantId: "acme", Kind: "import", RunId: "r2", Status: mappingv1.RunStatus_RUN_STATUS_SUCCEEDED, Report: strings.Repeat("x", 300<<10)})
	wantCode(t, err, codes.InvalidArgument)
	if err := start("r3"); err != nil {
		t.Fatalf("start after finish: %v", err)
	}
	// A redelivered command of a finished run does not run it again.
	wantCode(t, start("r1"), codes.AlreadyExists)
	list, err := h.client.ListRuns(ctx, &mappingv1.ListRunsRequest{TenantId: "acme"})
	if err != nil || len(list.Current) != 1 || list.Current[0].Id != "r3" || len(list.Finished) != 2 || list.Finished[1].Status != mappingv1.RunStatus_RUN_STATUS_PARTIAL ||
		list.Finished[0].GetReport() != `{"kinds":[]}` {
		t.Fatalf("list = %v, %v", list, err)
	}
}

// A scheduled relation pull must not start beside the import of the same tenant: both read every
// relation and share one API budget. Another tenant's runs are not affected, and once the import
// finishes the pull starts.
func TestExclusiveKindsWaitForEachOther(t *testing.T) {
	h := newHarness(t)
	start := func(tenant, kind, id string, exclusive ...string) error {
		_, err := h.client.StartRun(ctx, &mappingv1.StartRunRequest{TenantId: tenant, Kind: kind, RunId: id, ExclusiveKinds: exclusive})
		return err
	}
	relationKinds := []string{"import", "relation", "relation-scan"}
	if err := start("acme", "import", "i1", relationKinds...); err != nil {
		t.Fatal(err)
	}
	err := start("acme", "relation-scan", "s1", relationKinds...)
	wantCode(t, err, codes.Aborted)
	if !strings.Contains(status.Convert(err).Message(), "import run (i1)") {
		t.Fatalf("the refusal should name the running import: %v", err)
	}
	if err := start("globex", "relation-scan", "s1", relationKinds...); err != nil {
		t.Fatalf("another tenant's scan waits for nobody: %v", err)
	}
	if err := start("acme", "product", "p1"); err != nil {
		t.Fatalf("a kind without exclusions runs beside the import: %v", err)
	}
	if _, err := h.client.FinishRun(ctx, &mappingv1.FinishRunRequest{TenantId: "acme", Kind: "import", RunId: "i1", Status: mappingv1.RunStatus_RUN_STATUS_SUCCEEDED}); err != nil {
		t.Fatal(err)
	}
	if err := start("acme", "relation-scan", "s2", relationKinds...); err != nil {
		t.Fatalf("after the import: %v", err)
	}
	wantCode(t, start("acme", "import", "i2", relationKinds...), codes.Aborted)
}

func TestStaleRunIsAbandoned(t *testing.T) {
	h := newHarness(t)
	if _, err := h.client.StartRun(ctx, &mappingv1.StartRunRequest{TenantId: "acme", Kind: "relation", RunId: "r1", StaleAfterMs: 1}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := h.client.StartRun(ctx, &mappingv1.StartRunRequest{TenantId: "acme", Kind: "relation", RunId: "r2", StaleAfterMs: 1})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	list, _ := h.client.ListRuns(ctx, &mappingv1.ListRunsRequest{TenantId: "acme", Kind: "relation"})
	if len(list.Finished) != 1 || list.Finished[0].Id != "r1" || list.Finished[0].Status != mappingv1.RunStatus_RUN_STATUS_FAILED {
		t.Fatalf("abandoned run not in history: %v", list)
	}
}

func TestIssues(t *testing.T) {
	h := newHarness(t)
	rec := func(key string) *mappingv1.Issue {
		r, err := h.client.RecordIssue(ctx, &mappingv1.RecordIssueRequest{TenantId: "acme", Issue: &mappingv1.Issue{
			Key: key, Code: "no_debtor_number", Kind: "organization", EntityId: "t1",
			Message: "Organisation Jansen BV has no debtor number", Action: "Give it a debtor number in Tribe, or turn on automatic numbering"}})
		if err != nil {
			t.Fatal(err)
		}
		return r.Issue
	}
	first := rec("organization/t1/no_debtor_number")
	again := rec("organization/t1/no_debtor_number")
	rec("organization/t2/no_debtor_number")
	if again.Occurrences != 2 || !again.FirstSeen.AsTime().Equal(first.FirstSeen.AsTime()) {
		t.Fatalf("re-recorded issue = %v", again)
	}
	list, err := h.client.ListIssues(ctx, &mappingv1.ListIssuesRequest{TenantId: "acme"})
	if err != nil || len(list.Issues) != 2 {
		t.Fatalf("list = %v, %v", list, err)
	}
	// An issue keeps the details a flow needs to retry the record by itself.
	waiting := &mappingv1.Issue{Key: "invoice/i1/customer_waiting", Code: "customer_waiting", Kind: "invoice", EntityId: "i1",
		Message: "Invoice 2026001 waits for its customer", Details: map[string]string{"customer_kind": "organization", "customer_id": "t1"}}
	if _, err := h.client.RecordIssue(ctx, &mappingv1.RecordIssueRequest{TenantId: "acme", Issue: waiting}); err != nil {
		t.Fatal(err)
	}
	list, _ = h.client.ListIssues(ctx, &mappingv1.ListIssuesRequest{TenantId: "acme"})
	found := false
	for _, is := range list.Issues {
		if is.Key == waiting.Key {
			found = is.Details["customer_id"] == "t1" && is.Details["customer_kind"] == "organization"
		}
	}
	if !found {
		t.Fatalf("the waiting issue lost its details: %v", list)
	}
	waiting.Details = map[string]string{strings.Repeat("k", 101): "v"}
	_, err = h.client.RecordIssue(ctx, &mappingv1.RecordIssueRequest{TenantId: "acme", Issue: waiting})
	wantCode(t, err, codes.InvalidArgument)
	if _, err := h.client.ResolveIssue(ctx, &mappingv1.ResolveIssueRequest{TenantId: "acme", Key: waiting.Key}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.ResolveIssue(ctx, &mappingv1.ResolveIssueRequest{TenantId: "acme", Key: "organization/t1/no_debtor_number"}); err != nil {
		t.Fatal(err)
	}
	list, _ = h.client.ListIssues(ctx, &mappingv1.ListIssuesRequest{TenantId: "acme"})
	if len(list.Issues) != 1 || list.Issues[0].EntityId != "t1" && list.Issues[0].Key != "organization/t2/no_debtor_number" {
		t.Fatalf("after resolve = %v", list)
	}
	_, err = h.client.RecordIssue(ctx, &mappingv1.RecordIssueRequest{TenantId: "acme", Issue: &mappingv1.Issue{Key: "k"}})
	wantCode(t, err, codes.InvalidArgument)
}

func TestCursors(t *testing.T) {
	h := newHarness(t)
	got, err := h.client.GetCursor(ctx, &mappingv1.GetCursorRequest{TenantId: "acme", Name: "relation"})
	if err != nil || got.Value != "" {
		t.Fatalf("unset cursor = %v, %v", got, err)
	}
	if _, err := h.client.SetCursor(ctx, &mappingv1.SetCursorRequest{TenantId: "acme", Name: "relation", Value: "2026-11-25T10:00:00Z"}); err != nil {
		t.Fatal(err)
	}
	got, _ = h.client.GetCursor(ctx, &mappingv1.GetCursorRequest{TenantId: "acme", Name: "relation"})
	if got.Value != "2026-11-25T10:00:00Z" {
		t.Fatalf("cursor = %q", got.Value)
	}
}

func TestRedisDownIsUnavailableAndRecovers(t *testing.T) {
	h := newHarness(t)
	h.tenant(t, "acme")
	h.redis.Stop()
	_, err := h.client.GetTenant(ctx, &mappingv1.GetTenantRequest{TenantId: "acme"})
	wantCode(t, err, codes.Unavailable)
	if err := h.redis.Restart(); err != nil {
		t.Fatal(err)
	}
	// AOF kept the tenant through the crash.
	if _, err := h.client.GetTenant(ctx, &mappingv1.GetTenantRequest{TenantId: "acme"}); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}

func TestHistoryIsCappedNewestFirst(t *testing.T) {
	h := newHarness(t)
	for i := range 1005 {
		_, err := h.client.RecordHistory(ctx, &mappingv1.RecordHistoryRequest{TenantId: "acme", Entry: &mappingv1.HistoryEntry{
			Code: "conflict_settled", Kind: "organization", EntityId: fmt.Sprint(i), Message: "name changed on both sides",
			Details: map[string]string{"field": "name", "winner": "tribe"}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	res, err := h.client.ListHistory(ctx, &mappingv1.ListHistoryRequest{TenantId: "acme", Limit: 1000})
	if err != nil || len(res.Entries) != 1000 || res.Entries[0].EntityId != "1004" || res.Entries[999].EntityId != "5" {
		t.Fatalf("history: %d entries, first %v, %v", len(res.GetEntries()), res.GetEntries()[0], err)
	}
	_, err = h.client.RecordHistory(ctx, &mappingv1.RecordHistoryRequest{TenantId: "acme", Entry: &mappingv1.HistoryEntry{}})
	wantCode(t, err, codes.InvalidArgument)
}
