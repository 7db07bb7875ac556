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
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrInProgress is returned by Start when another run of the kind is in progress.
var ErrInProgress = errors.New("syncrun: another run of this kind is in progress")

// Run is a started run.
type Run struct {
	client mappingv1.MappingServiceClient
	tenant string
	kind   string
	id     string

	mu     sync.Mutex
	counts mappingv1.RunCounts
}

// Start begins run id of kind for tenant. Starting a run that is already the running one (a
// redelivered command) continues it.
func Start(ctx context.Context, client mappingv1.MappingServiceClient, tenant, kind, id, trigger string) (*Run, error) {
	_, err := client.StartRun(ctx, &mappingv1.StartRunRequest{TenantId: tenant, Kind: kind, RunId: id, Trigger: trigger})
	if status.Code(err) == codes.FailedPrecondition {
		return nil, ErrInProgress
	}
	if err != nil {
		return nil, fmt.Errorf("start %s run: %w", kind, err)
	}
	return &Run{client: client, tenant: tenant, kind: kind, id: id}, nil
}

// ID is the run's ID.
func (r *Run) ID() string { return r.id }

// Add records counts and progress (done records, and the total when known, else 0).
func (r *Run) Add(ctx context.Context, add *mappingv1.RunCounts, done, total int64) error {
	r.mu.Lock()
	r.counts.Created += add.GetCreated()
	r.counts.Updated += add.GetUpdated()
	r.counts.Unchanged += add.GetUnchanged()
	r.counts.Skipped += add.GetSkipped()
	r.counts.Failed += add.GetFailed()
	r.mu.Unlock()
	_, err := r.client.UpdateRun(ctx, &mappingv1.UpdateRunRequest{TenantId: r.tenant, Kind: r.kind, RunId: r.id, Add: add, AddDone: done, Total: total})
	if err != nil {
		return fmt.Errorf("update %s run: %w", r.kind, err)
	}
	return nil
}

// Finish ends the run: FAILED when runErr is set, PARTIAL when records failed, else SUCCEEDED.
func (r *Run) Finish(ctx context.Context, runErr error) error {
	st, msg := mappingv1.RunStatus_RUN_STATUS_SUCCEEDED, ""
	r.mu.Lock()
	failed := r.counts.Failed
	r.mu.Unlock()
	switch {
	case runErr != nil:
		st, msg = mappingv1.RunStatus_RUN_STATUS_FAILED, runErr.Error()
	case failed > 0:
		st, msg = mappingv1.RunStatus_RUN_STATUS_PARTIAL, fmt.Sprintf("%d records failed; see the open issues", failed)
	}
	_, err := r.client.FinishRun(ctx, &mappingv1.FinishRunRequest{TenantId: r.tenant, Kind: r.kind, RunId: r.id, Status: st, Message: msg})
	if err != nil {
		return fmt.Errorf("finish %s run: %w", r.kind, err)
	}
	return nil
}
