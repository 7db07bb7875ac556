package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/koppel/koppel/pkg/adminapi"
	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/httpapi"
	"github.com/koppel/koppel/pkg/schedule"
	"github.com/koppel/koppel/pkg/tenantclients"
	eventsv1 "github.com/koppel/koppel/proto/koppel/events/v1"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// admin is the admin API: tenants, status, run-now and dead letters.
type admin struct {
	mapping mappingv1.MappingServiceClient
	pub     *bus.Publisher
	dlq     *bus.DeadLetters
	log     *slog.Logger
	now     func() time.Time
	// clients configure the API clients a rebuild builds, the outbound guard among them.
	clients tenantclients.Options
}

// runNowKinds are the sync kinds an operator may start by hand.
var runNowKinds = map[string]bool{
	bus.KindImport: true, bus.KindRelation: true, bus.KindRelationScan: true, bus.KindProduct: true, bus.KindPayment: true,
	bus.KindTribeScan: true,
}

func (a *admin) routes(mux *http.ServeMux, auth *httpapi.BearerAuth) {
	handle := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, auth.Wrap(h)) }
	handle("POST /admin/v1/tenants", a.createTenant)
	handle("GET /admin/v1/tenants", a.listTenants)
	handle("GET /admin/v1/tenants/{tenant}", a.getTenant)
	handle("PUT /admin/v1/tenants/{tenant}/state", a.setState)
	handle("PUT /admin/v1/tenants/{tenant}/secrets/{name}", a.putSecret)
	handle("POST /admin/v1/tenants/{tenant}/secrets/reseal", a.resealSecrets)
	handle("GET /admin/v1/tenants/{tenant}/status", a.status)
	handle("GET /admin/v1/tenants/{tenant}/runs", a.listRuns)
	handle("POST /admin/v1/tenants/{tenant}/sync/{kind}", a.runNow)
	handle("POST /admin/v1/tenants/{tenant}/rebuild", a.rebuild)
	handle("GET /admin/v1/deadletters", a.listDeadLetters)
	handle("GET /admin/v1/deadletters/{seq}", a.getDeadLetter)
	handle("POST /admin/v1/deadletters/{seq}/replay", a.replayDeadLetter)
	handle("DELETE /admin/v1/deadletters/{seq}", a.deleteDeadLetter)
	a.invoiceRoutes(handle)
}

// writeGRPCError answers a mapping error with the matching HTTP status.
func (a *admin) writeGRPCError(w http.ResponseWriter, r *http.Request, err error) {
	st := status.Convert(err)
	switch st.Code() {
	case codes.InvalidArgument:
		httpapi.WriteError(w, http.StatusBadRequest, "invalid_argument", st.Message())
	case codes.NotFound:
		httpapi.WriteError(w, http.StatusNotFound, "not_found", st.Message())
	case codes.AlreadyExists:
		httpapi.WriteError(w, http.StatusConflict, "already_exists", st.Message())
	case codes.FailedPrecondition, codes.Aborted:
		httpapi.WriteError(w, http.StatusConflict, "conflict", st.Message())
	default:
		a.log.ErrorContext(r.Context(), "mapping call failed", "error", err)
		httpapi.WriteError(w, http.StatusServiceUnavailable, "unavailable", "the mapping service is not available; try again")
	}
}

func (a *admin) createTenant(w http.ResponseWriter, r *http.Request) {
	var req adminapi.CreateTenant
	if !httpapi.DecodeJSON(w, r, &req) {
		return
	}
	if !bus.ValidTenantID(req.ID) {
		httpapi.WriteFieldError(w, "id", "want 1 to 40 lower-case letters, digits or dashes")
		return
	}
	res, err := a.mapping.CreateTenant(r.Context(), &mappingv1.CreateTenantRequest{Tenant: &mappingv1.Tenant{Id: req.ID, DisplayName: req.DisplayName}})
	if err != nil {
		a.writeGRPCError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusCreated, apiTenant(res.GetTenant()))
}

func (a *admin) listTenants(w http.ResponseWriter, r *http.Request) {
	res, err := a.mapping.ListTenants(r.Context(), &mappingv1.ListTenantsRequest{})
	if err != nil {
		a.writeGRPCError(w, r, err)
		return
	}
	out := adminapi.Tenants{Tenants: []adminapi.Tenant{}}
	for _, t := range res.GetTenants() {
		out.Tenants = append(out.Tenants, apiTenant(t))
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

func (a *admin) getTenant(w http.ResponseWriter, r *http.Request) {
	res, err := a.mapping.GetTenant(r.Context(), &mappingv1.GetTenantRequest{TenantId: r.PathValue("tenant")})
	if err != nil {
		a.writeGRPCError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, apiTenant(res.GetTenant()))
}

var states = map[string]mappingv1.TenantState{
	"setup": mappingv1.TenantState_TENANT_STATE_SETUP, "active": mappingv1.TenantState_TENANT_STATE_ACTIVE, "paused": mappingv1.TenantState_TENANT_STATE_PAUSED,
}

// setState pauses and resumes a tenant. A resume (paused to active) starts a run of every
// scheduled kind at once, so the tenant catches up with what changed in e-Boekhouden while it was
// paused; the Tribe events held meanwhile are handled within flow.PausedHold.
func (a *admin) setState(w http.ResponseWriter, r *http.Request) {
	var req adminapi.SetState
	if !httpapi.DecodeJSON(w, r, &req) {
		return
	}
	st, ok := states[req.State]
	if !ok {
		httpapi.WriteFieldError(w, "state", "want setup, active or paused")
		return
	}
	ctx := r.Context()
	id := r.PathValue("tenant")
	before, err := a.mapping.GetTenant(ctx, &mappingv1.GetTenantRequest{TenantId: id})
	if err != nil {
		a.writeGRPCError(w, r, err)
		return
	}
	res, err := a.mapping.SetTenantState(ctx, &mappingv1.SetTenantStateRequest{TenantId: id, State: st})
	if err != nil {
		a.writeGRPCError(w, r, err)
		return
	}
	if before.GetTenant().GetState() != mappingv1.TenantState_TENANT_STATE_PAUSED || st != mappingv1.TenantState_TENANT_STATE_ACTIVE {
		httpapi.WriteJSON(w, http.StatusOK, adminapi.StateChanged{Tenant: apiTenant(res.GetTenant())})
		return
	}
	runs, err := a.catchUp(ctx, id)
	if err != nil {
		a.log.ErrorContext(ctx, "start catch-up runs", "tenant", id, "error", err)
		httpapi.WriteError(w, http.StatusServiceUnavailable, "unavailable",
			"resumed, but the catch-up runs could not all be started; start them with POST .../sync/{kind}: "+err.Error())
		return
	}
	a.log.InfoContext(ctx, "tenant resumed", "tenant", id, "catch_up_runs", len(runs))
	httpapi.WriteJSON(w, http.StatusOK, adminapi.StateChanged{Tenant: apiTenant(res.GetTenant()), CatchUpRuns: runs})
}

// catchUp starts a run of every scheduled kind now (trigger "resume", so products get a full
// pull), except a kind whose run is in progress: its held command continues it. It returns the
// run IDs by kind.
func (a *admin) catchUp(ctx context.Context, tenant string) (map[string]string, error) {
	runs := map[string]string{}
	for _, kind := range slices.Sorted(maps.Keys(schedule.DefaultIntervals)) {
		cur, err := a.mapping.ListRuns(ctx, &mappingv1.ListRunsRequest{TenantId: tenant, Kind: kind, Limit: 1})
		if err != nil {
			return runs, fmt.Errorf("runs of %s: %w", kind, err)
		}
		if c := cur.GetCurrent(); len(c) > 0 && a.now().Sub(c[0].GetUpdatedAt().AsTime()) < staleRun {
			runs[kind] = c[0].GetId()
			continue
		}
		id, err := startSync(ctx, a.pub, tenant, kind, bus.TriggerResume, a.now())
		if err != nil {
			return runs, fmt.Errorf("start %s: %w", kind, err)
		}
		runs[kind] = id
	}
	return runs, nil
}

func (a *admin) putSecret(w http.ResponseWriter, r *http.Request) {
	var req adminapi.SetSecret
	if !httpapi.DecodeJSON(w, r, &req) {
		return
	}
	if req.Value == "" {
		httpapi.WriteFieldError(w, "value", "required")
		return
	}
	_, err := a.mapping.PutSecret(r.Context(), &mappingv1.PutSecretRequest{TenantId: r.PathValue("tenant"), Name: r.PathValue("name"), Value: []byte(req.Value)})
	if err != nil {
		a.writeGRPCError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *admin) status(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("tenant")
	ctx := r.Context()
	t, err := a.mapping.GetTenant(ctx, &mappingv1.GetTenantRequest{TenantId: id})
	if err != nil {
		a.writeGRPCError(w, r, err)
		return
	}
	runs, err := a.mapping.ListRuns(ctx, &mappingv1.ListRunsRequest{TenantId: id, Limit: 5})
	if err != nil {
		a.writeGRPCError(w, r, err)
		return
	}
	issues, err := a.mapping.ListIssues(ctx, &mappingv1.ListIssuesRequest{TenantId: id})
	if err != nil {
		a.writeGRPCError(w, r, err)
		return
	}
	history, err := a.mapping.ListHistory(ctx, &mappingv1.ListHistoryRequest{TenantId: id, Limit: 20})
	if err != nil {
		a.writeGRPCError(w, r, err)
		return
	}
	next := map[string]time.Time{}
	if t.GetTenant().GetState() == mappingv1.TenantState_TENANT_STATE_ACTIVE {
		for kind := range schedule.DefaultIntervals {
			next[kind] = schedule.Next(t.GetTenant(), kind, a.now())
		}
	}
	httpapi.WriteJSON(w, http.StatusOK, adminapi.Status{Tenant: apiTenant(t.GetTenant()), Runs: apiRuns(runs), NextRuns: next,
		Issues: apiIssues(issues.GetIssues()), History: apiHistory(history.GetEntries())})
}

// listRuns answers the runs in progress and the last finished ones of each kind (?kind= for one
// kind, ?limit= per kind, 1 to 100, default 20): the history the console's per-day chart draws.
func (a *admin) listRuns(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 20
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			httpapi.WriteFieldError(w, "limit", "want 1 to 100")
			return
		}
		limit = n
	}
	kind := q.Get("kind")
	if kind != "" && !runNowKinds[kind] && kind != bus.KindRebuild {
		httpapi.WriteFieldError(w, "kind", fmt.Sprintf("no sync kind %q", kind))
		return
	}
	runs, err := a.mapping.ListRuns(r.Context(), &mappingv1.ListRunsRequest{TenantId: r.PathValue("tenant"), Kind: kind, Limit: int32(limit)})
	if err != nil {
		a.writeGRPCError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, apiRuns(runs))
}

func (a *admin) runNow(w http.ResponseWriter, r *http.Request) {
	id, kind := r.PathValue("tenant"), r.PathValue("kind")
	ctx := r.Context()
	if !runNowKinds[kind] {
		httpapi.WriteError(w, http.StatusNotFound, "unknown_kind", fmt.Sprintf("no sync kind %q", kind))
		return
	}
	if _, err := a.mapping.GetTenant(ctx, &mappingv1.GetTenantRequest{TenantId: id}); err != nil {
		a.writeGRPCError(w, r, err)
		return
	}
	if a.runningBeside(w, r, id, kind) {
		return
	}
	runID, err := startSync(ctx, a.pub, id, kind, bus.TriggerManual, a.now())
	if err != nil {
		a.log.ErrorContext(ctx, "publish sync command", "error", err)
		httpapi.WriteError(w, http.StatusServiceUnavailable, "unavailable", "the bus cannot take the command; try again")
		return
	}
	httpapi.WriteJSON(w, http.StatusAccepted, adminapi.RunStarted{RunID: runID})
}

// runningBeside answers 409 when a run of kind, or of a kind it must not run beside
// (bus.ExclusiveKinds), is in progress for the tenant, naming it, and reports whether it did.
func (a *admin) runningBeside(w http.ResponseWriter, r *http.Request, tenant, kind string) bool {
	runs, err := a.mapping.ListRuns(r.Context(), &mappingv1.ListRunsRequest{TenantId: tenant, Limit: 1})
	if err != nil {
		a.writeGRPCError(w, r, err)
		return true
	}
	exclusive := append(bus.ExclusiveKinds(kind), kind)
	for _, cur := range runs.GetCurrent() {
		if slices.Contains(exclusive, cur.GetKind()) && a.now().Sub(cur.GetUpdatedAt().AsTime()) < staleRun {
			httpapi.WriteError(w, http.StatusConflict, "run_in_progress", fmt.Sprintf("the %s run %s is in progress", cur.GetKind(), cur.GetId()))
			return true
		}
	}
	return false
}

// staleRun is how long a run may go without progress before it counts as abandoned (a run whose
// command was dead-lettered, say); the mapping service takes the same default.
const staleRun = 10 * time.Minute

// commandOption tunes a sync command startSync publishes.
type commandOption func(*eventsv1.SyncCommand)

// withDryRun makes a rebuild report what it would do, changing nothing.
func withDryRun(dry bool) commandOption {
	return func(c *eventsv1.SyncCommand) { c.DryRun = dry }
}

// startSync publishes a sync command for a new run and returns the run's ID.
func startSync(ctx context.Context, pub *bus.Publisher, tenant, kind, trigger string, now time.Time, opts ...commandOption) (string, error) {
	subject, err := bus.SyncCommandSubject(tenant, kind)
	if err != nil {
		return "", err
	}
	runID := fmt.Sprintf("%s:%s:%s:%d", trigger, tenant, kind, now.UnixNano())
	cmd := &eventsv1.SyncCommand{TenantId: tenant, Kind: kind, Slot: timestamppb.New(now), Trigger: trigger, RunId: runID}
	for _, o := range opts {
		o(cmd)
	}
	if _, err := pub.Publish(ctx, subject, cmd, runID); err != nil {
		return "", err
	}
	return runID, nil
}

func apiDeadLetter(d bus.DeadLetter) adminapi.DeadLetter {
	return adminapi.DeadLetter{Sequence: d.Sequence, Tenant: d.Tenant, Consumer: d.Consumer, Reason: d.Reason, OriginalSubject: d.OriginalSubject,
		OriginalMsgID: d.OriginalMsgID, Deliveries: d.Deliveries, DeadAt: d.DeadAt}
}

func (a *admin) listDeadLetters(w http.ResponseWriter, r *http.Request) {
	tenant := r.URL.Query().Get("tenant")
	if tenant != "" && !bus.ValidTenantID(tenant) {
		httpapi.WriteFieldError(w, "tenant", "not a tenant ID")
		return
	}
	limit := 100
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			httpapi.WriteFieldError(w, "limit", "want 1 to 1000")
			return
		}
		limit = n
	}
	list, err := a.dlq.List(r.Context(), tenant, limit)
	if err != nil {
		a.log.ErrorContext(r.Context(), "list dead letters", "error", err)
		httpapi.WriteError(w, http.StatusServiceUnavailable, "unavailable", "cannot read dead letters; try again")
		return
	}
	out := adminapi.DeadLetters{DeadLetters: make([]adminapi.DeadLetter, 0, len(list))}
	for _, d := range list {
		out.DeadLetters = append(out.DeadLetters, apiDeadLetter(d))
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

func (a *admin) deadLetterSeq(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		httpapi.WriteFieldError(w, "seq", "want a positive sequence number")
		return 0, false
	}
	return seq, true
}

func (a *admin) deadLetterError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, bus.ErrDeadLetterNotFound) || errors.Is(err, jetstream.ErrMsgNotFound) {
		httpapi.WriteError(w, http.StatusNotFound, "not_found", "no such dead letter")
		return
	}
	a.log.ErrorContext(r.Context(), "dead letter", "error", err)
	httpapi.WriteError(w, http.StatusServiceUnavailable, "unavailable", "cannot reach the dead letters; try again")
}

func (a *admin) getDeadLetter(w http.ResponseWriter, r *http.Request) {
	seq, ok := a.deadLetterSeq(w, r)
	if !ok {
		return
	}
	d, err := a.dlq.Get(r.Context(), seq)
	if err != nil {
		a.deadLetterError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, apiDeadLetter(d))
}

func (a *admin) replayDeadLetter(w http.ResponseWriter, r *http.Request) {
	a.settleDeadLetter(w, r, "replayed", a.dlq.Replay)
}

func (a *admin) deleteDeadLetter(w http.ResponseWriter, r *http.Request) {
	a.settleDeadLetter(w, r, "dropped", a.dlq.Delete)
}

// settleDeadLetter replays or drops a dead letter (settle), and resolves its issue.
func (a *admin) settleDeadLetter(w http.ResponseWriter, r *http.Request, done string, settle func(context.Context, uint64) error) {
	seq, ok := a.deadLetterSeq(w, r)
	if !ok {
		return
	}
	d, err := a.dlq.Get(r.Context(), seq)
	if err != nil {
		a.deadLetterError(w, r, err)
		return
	}
	if err := settle(r.Context(), seq); err != nil {
		a.deadLetterError(w, r, err)
		return
	}
	a.resolveDeadLetterIssue(r.Context(), d.Tenant, seq)
	a.log.InfoContext(r.Context(), "dead letter "+done, "tenant", d.Tenant, "seq", seq)
	w.WriteHeader(http.StatusNoContent)
}
