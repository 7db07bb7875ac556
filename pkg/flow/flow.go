// Package flow turns bus messages into calls of a flow's own code. It decodes and validates the
// message, loads the tenant, decides what a tenant's state means for the work (setup: nothing to
// do yet; paused: held until resumed; active: now), and wraps sync commands in a run with honest
// counts.
package flow

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/koppel/koppel/pkg/apicall"
	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/syncrun"
	eventsv1 "github.com/koppel/koppel/proto/koppel/events/v1"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// PausedHold is how long a message of a paused tenant is held before it is looked at again. The
// message is held (bus.Deferred), not failed: however long the pause, it is never dead-lettered
// for it, and after a resume it is handled within this delay. A variable only so that tests can
// shorten it.
var PausedHold = time.Minute

// ChangeFunc handles one Tribe change of an active tenant.
type ChangeFunc func(ctx context.Context, tenant *mappingv1.Tenant, change *eventsv1.TribeChange) error

// CommandFunc does one sync run of an active tenant and adds its counts to run.
type CommandFunc func(ctx context.Context, tenant *mappingv1.Tenant, cmd *eventsv1.SyncCommand, run *syncrun.Run) error

// HandBackAfter is the longest a Tribe change waits for its tenant's API budget while holding a
// worker. A change that would wait longer is handed back (held, not failed) for the wait the
// limiter predicts, so one tenant's burst never keeps another tenant's change waiting while its
// own budget sits unused. A variable only so that tests can change it.
var HandBackAfter = time.Second

// ChangeHandler returns the bus handler of a Tribe-change consumer.
func ChangeHandler(client mappingv1.MappingServiceClient, fn ChangeFunc) bus.Handler {
	return func(ctx context.Context, m *bus.Msg) error {
		change := &eventsv1.TribeChange{}
		if err := proto.Unmarshal(m.Data, change); err != nil {
			return bus.Permanent(fmt.Errorf("decode tribe change: %w", err), malformed(m))
		}
		if change.GetTenantId() != m.Tenant || change.GetEntityId() == "" || change.GetEntity() != bus.EntityOf(m.Subject) {
			return bus.Permanent(errors.New("tribe change does not match its subject"), malformed(m))
		}
		tenant, skip, err := loadTenant(ctx, client, m.Tenant, false)
		if err != nil || skip {
			return err
		}
		err = fn(apicall.WithMaxBudgetWait(ctx, HandBackAfter), tenant, change)
		if be := (*apicall.BudgetError)(nil); errors.As(err, &be) {
			return bus.Deferred(err, max(be.Wait, 100*time.Millisecond))
		}
		return err
	}
}

// CommandHandler returns the bus handler of a sync-command consumer. A command for a kind that
// is already running is dropped, as the running one does the same work; so is a redelivered
// command of a run that has finished. A command whose kind must not run beside a running one
// (bus.ExclusiveKinds: a scheduled relation pull during the import) is skipped, and the tenant's
// history says so.
func CommandHandler(client mappingv1.MappingServiceClient, fn CommandFunc) bus.Handler {
	return func(ctx context.Context, m *bus.Msg) error {
		cmd := &eventsv1.SyncCommand{}
		if err := proto.Unmarshal(m.Data, cmd); err != nil {
			return bus.Permanent(fmt.Errorf("decode sync command: %w", err), malformed(m))
		}
		if cmd.GetTenantId() != m.Tenant || cmd.GetKind() != bus.EntityOf(m.Subject) || cmd.GetRunId() == "" {
			return bus.Permanent(errors.New("sync command does not match its subject"), malformed(m))
		}
		// A rebuild runs in every state: it comes before the activation of a tenant created
		// again after the loss of Redis (it finds the links the import must not make twice),
		// and while a tenant is paused so that no sync links beside it.
		tenant, skip, err := loadTenant(ctx, client, m.Tenant, cmd.GetKind() == bus.KindRebuild)
		if err != nil || skip {
			return err
		}
		run, err := syncrun.Start(ctx, client, cmd.GetTenantId(), cmd.GetKind(), cmd.GetRunId(), cmd.GetTrigger(),
			syncrun.ExclusiveWith(bus.ExclusiveKinds(cmd.GetKind())...))
		if errors.Is(err, syncrun.ErrInProgress) || errors.Is(err, syncrun.ErrFinished) {
			return nil
		}
		if errors.Is(err, syncrun.ErrExcluded) {
			return skipped(ctx, client, cmd, err)
		}
		if err != nil {
			return err
		}
		// A run's calls yield to the tenant's live changes (apicall.WithBackground): an import
		// slows down by the webhooks it causes rather than starving them.
		runErr := fn(apicall.WithBackground(ctx), tenant, cmd, run)
		if runErr != nil && !bus.IsPermanent(runErr) {
			// Transient: the redelivered command continues this run.
			return runErr
		}
		if err := run.Finish(ctx, runErr); err != nil {
			return err
		}
		return runErr
	}
}

// skipped records in the tenant's history that a run was not started, and why.
func skipped(ctx context.Context, client mappingv1.MappingServiceClient, cmd *eventsv1.SyncCommand, why error) error {
	_, err := client.RecordHistory(ctx, &mappingv1.RecordHistoryRequest{TenantId: cmd.GetTenantId(), Entry: &mappingv1.HistoryEntry{
		Code: "run_skipped", Kind: cmd.GetKind(), EntityId: cmd.GetRunId(),
		Message: fmt.Sprintf("The %s %s run was not started: %s.", cmd.GetTrigger(), cmd.GetKind(), strings.TrimPrefix(why.Error(), syncrun.ErrExcluded.Error()+": ")),
		Details: map[string]string{"trigger": cmd.GetTrigger(), "run_id": cmd.GetRunId()},
	}})
	if err != nil {
		return fmt.Errorf("record skipped run: %w", err)
	}
	return nil
}

// loadTenant returns the tenant, and skip when its state means no work now (it is not activated
// yet); a paused tenant's work waits. With anyState the tenant's state does not matter.
func loadTenant(ctx context.Context, client mappingv1.MappingServiceClient, id string, anyState bool) (*mappingv1.Tenant, bool, error) {
	res, err := client.GetTenant(ctx, &mappingv1.GetTenantRequest{TenantId: id})
	if status.Code(err) == codes.NotFound {
		// Nobody to tell: dead-letter it rather than record an issue on no one.
		return nil, false, fmt.Errorf("tenant %q does not exist", id)
	}
	if err != nil {
		return nil, false, fmt.Errorf("get tenant: %w", err)
	}
	if anyState {
		return res.GetTenant(), false, nil
	}
	switch res.GetTenant().GetState() {
	case mappingv1.TenantState_TENANT_STATE_ACTIVE:
		return res.GetTenant(), false, nil
	case mappingv1.TenantState_TENANT_STATE_PAUSED:
		return nil, false, bus.Deferred(fmt.Errorf("tenant %q is paused", id), PausedHold)
	default:
		// Not activated yet: the initial import at activation reads everything anyway.
		return nil, true, nil
	}
}

func malformed(m *bus.Msg) *mappingv1.Issue {
	return &mappingv1.Issue{
		Key:     "malformed:" + m.Subject,
		Code:    "malformed_message",
		Message: "A message on " + m.Subject + " could not be read; it was dropped.",
		Action:  "Report this to the koppel operators: it points at a bug or a foreign publisher.",
	}
}
