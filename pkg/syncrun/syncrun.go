// Package syncrun is the bookkeeping of one sync run: it starts the run in the mapping service
// (refusing a second concurrent run of the same kind), adds honest counts as records are handled,
// and finishes the run with a status derived from those counts.
package syncrun

import (
	"context"
	"errors"
	"fmt"
	"sync"

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

// Run is a started run.
type Run struct {
	client mappingv1.MappingServiceClient
	tenant string
	kind   string
	id     string

	mu      sync.Mutex
	message string
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
func Start(ctx context.Context, client mappingv1.MappingServiceClient, tenant, kind, id, trigger string) (*Run, error) {
	_, err := client.StartRun(ctx, &mappingv1.StartRunRequest{TenantId: tenant, Kind: kind, RunId: id, Trigger: trigger})
	switch status.Code(err) {
	case codes.FailedPrecondition:
		return nil, ErrInProgress
	case codes.AlreadyExists:
		return nil, ErrFinished
	}
	if err != nil {
		return nil, fmt.Errorf("start %s run: %w", kind, err)
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
)

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
	st, msg := mappingv1.RunStatus_RUN_STATUS_SUCCEEDED, r.message
	r.mu.Unlock()
	if runErr != nil {
		st, msg = mappingv1.RunStatus_RUN_STATUS_FAILED, runErr.Error()
	}
	_, err := r.client.FinishRun(ctx, &mappingv1.FinishRunRequest{TenantId: r.tenant, Kind: r.kind, RunId: r.id, Status: st, Message: msg})
	if err != nil {
		return fmt.Errorf("finish %s run: %w", r.kind, err)
	}
	return nil
}
