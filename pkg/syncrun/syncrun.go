// Package syncrun is the bookkeeping of one sync run: it starts the run in the mapping service
// (refusing a second concurrent run of the same kind), adds honest counts as records are handled,
// and finishes the run with a status derived from those counts.
package syncrun

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrInProgress is returned by Start when another run of the kind is in progress.
var ErrInProgress = errors.New("syncrun: another run of this kind is in progress")

// ErrFinished is returned by Start when the run has finished already (its command was
// delivered again).
var ErrFinished = errors.New("syncrun: this run has finished")

// ErrExcluded is returned (wrapped, with the running kind named) by Start when a run of a kind
// given to ExclusiveWith is in progress.
var ErrExcluded = errors.New("syncrun: a run it must not run beside is in progress")

// StartOption tunes Start.
type StartOption func(*mappingv1.StartRunRequest)

// ExclusiveWith keeps the run from starting while a run of any of kinds is in progress for the
// tenant: the check and the start are one atomic step in the mapping service.
func ExclusiveWith(kinds ...string) StartOption {
	return func(r *mappingv1.StartRunRequest) { r.ExclusiveKinds = append(r.ExclusiveKinds, kinds...) }
}

// Run is a started run.
type Run struct {
	client mappingv1.MappingServiceClient
	tenant string
	kind   string
	id     string

	mu      sync.Mutex
	message string
	report  string
}

// SetReport sets what the finished run found, as JSON (Run.report), for runs that report.
func (r *Run) SetReport(report string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.report = report
}

// SetMessage sets what the finished run says besides its counts, such as why records were
// skipped.
func (r *Run) SetMessage(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.message = msg
}

// Start begins run id of kind for tenant. Starting a run that is already the running one (a
// redelivered command) continues it.
func Start(ctx context.Context, client mappingv1.MappingServiceClient, tenant, kind, id, trigger string, opts ...StartOption) (*Run, error) {
	req := &mappingv1.StartRunRequest{TenantId: tenant, Kind: kind, RunId: id, Trigger: trigger}
	for _, o := range opts {
		o(req)
	}
	_, err := client.StartRun(ctx, req)
	switch status.Code(err) {
	case codes.FailedPrecondition:
		return nil, ErrInProgress
	case codes.Aborted:
		return nil, fmt.Errorf("%w: %s", ErrExcluded, status.Convert(err).Message())
	case codes.AlreadyExists:
		return nil, ErrFinished
	}
	if err != nil {
		return nil, fmt.Errorf("start %s run: %w", kind, err)
	}
	// Every status starts at 0, so the first failure of a tenant's kind shows in increase().
	for _, st := range runStatuses {
		runsTotal.WithLabelValues(tenant, kind, st)
	}
	return &Run{client: client, tenant: tenant, kind: kind, id: id}, nil
}

// ID is the run's ID.
func (r *Run) ID() string { return r.id }

var (
	progressDone = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "koppel_sync_run_done",
		Help: "Records done of the latest run of a kind per tenant, as last updated by this process.",
	}, []string{"tenant", "kind"})
	progressTotal = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "koppel_sync_run_total",
		Help: "Records in the latest run of a kind per tenant (0 until known).",
	}, []string{"tenant", "kind"})
	recordsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "koppel_sync_records_total",
		Help: "Records handled by sync runs, by tenant, kind and outcome (created, updated, unchanged, skipped, failed).",
	}, []string{"tenant", "kind", "outcome"})
	runsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "koppel_sync_runs_total",
		Help: "Sync runs finished by this process, by tenant, kind and status (succeeded, partial, failed).",
	}, []string{"tenant", "kind", "status"})
	lastSuccess = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "koppel_sync_last_success_timestamp_seconds",
		Help: "When this process last finished a run of a kind for a tenant that succeeded (partial runs count: they ran to the end).",
	}, []string{"tenant", "kind"})
	lastRunRecords = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "koppel_sync_last_run_records",
		Help: "Records of the last run of a kind per tenant that this process finished, by outcome.",
	}, []string{"tenant", "kind", "outcome"})
)

// runStatuses are the status label values of koppel_sync_runs_total.
var runStatuses = map[mappingv1.RunStatus]string{
	mappingv1.RunStatus_RUN_STATUS_SUCCEEDED: "succeeded",
	mappingv1.RunStatus_RUN_STATUS_PARTIAL:   "partial",
	mappingv1.RunStatus_RUN_STATUS_FAILED:    "failed",
}

// Add records counts and progress (done records, and the total when known, else 0).
func (r *Run) Add(ctx context.Context, add *mappingv1.RunCounts, done, total int64) error {
	res, err := r.client.UpdateRun(ctx, &mappingv1.UpdateRunRequest{TenantId: r.tenant, Kind: r.kind, RunId: r.id, Add: add, AddDone: done, Total: total})
	if err != nil {
		return fmt.Errorf("update %s run: %w", r.kind, err)
	}
	progressDone.WithLabelValues(r.tenant, r.kind).Set(float64(res.GetRun().GetDone()))
	progressTotal.WithLabelValues(r.tenant, r.kind).Set(float64(res.GetRun().GetTotal()))
	for outcome, n := range map[string]int64{"created": add.GetCreated(), "updated": add.GetUpdated(), "unchanged": add.GetUnchanged(),
		"skipped": add.GetSkipped(), "failed": add.GetFailed()} {
		if n > 0 {
			recordsTotal.WithLabelValues(r.tenant, r.kind, outcome).Add(float64(n))
		}
	}
	return nil
}

// Finish ends the run: FAILED when runErr is set, else SUCCEEDED (which the mapping service
// makes PARTIAL when the run's counts hold failed records).
func (r *Run) Finish(ctx context.Context, runErr error) error {
	r.mu.Lock()
	st, msg, report := mappingv1.RunStatus_RUN_STATUS_SUCCEEDED, r.message, r.report
	r.mu.Unlock()
	if runErr != nil {
		st, msg = mappingv1.RunStatus_RUN_STATUS_FAILED, runErr.Error()
	}
	res, err := r.client.FinishRun(ctx, &mappingv1.FinishRunRequest{TenantId: r.tenant, Kind: r.kind, RunId: r.id, Status: st, Message: msg, Report: report})
	if err != nil {
		return fmt.Errorf("finish %s run: %w", r.kind, err)
	}
	r.observeFinished(res.GetRun())
	return nil
}

// observeFinished exports the finished run as the mapping service stored it: its status may
// differ from the one asked for (failed records make a run partial), and its counts are those of
// every delivery of the run's command, not only this process's.
func (r *Run) observeFinished(run *mappingv1.Run) {
	status, ok := runStatuses[run.GetStatus()]
	if !ok {
		return
	}
	runsTotal.WithLabelValues(r.tenant, r.kind, status).Inc()
	if run.GetStatus() != mappingv1.RunStatus_RUN_STATUS_FAILED {
		finished := run.GetFinishedAt().AsTime()
		if run.GetFinishedAt() == nil {
			finished = time.Now()
		}
		lastSuccess.WithLabelValues(r.tenant, r.kind).Set(float64(finished.UnixNano()) / 1e9)
	}
	c := run.GetCounts()
	for outcome, n := range map[string]int64{"created": c.GetCreated(), "updated": c.GetUpdated(), "unchanged": c.GetUnchanged(),
		"skipped": c.GetSkipped(), "failed": c.GetFailed()} {
		lastRunRecords.WithLabelValues(r.tenant, r.kind, outcome).Set(float64(n))
	}
}
