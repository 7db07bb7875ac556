package main

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/schedule"
	eventsv1 "github.com/koppel/koppel/proto/koppel/events/v1"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var firedTotal = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "koppel_scheduler_commands_total",
	Help: "Sync commands the scheduler published, by kind and whether JetStream found them duplicate (fired by another replica).",
}, []string{"kind", "duplicate"})

// Scheduler publishes each active tenant's sync commands once per slot.
//
// Replicas need no coordination: a command's message ID is derived from tenant, kind and slot,
// so JetStream keeps one of the copies that replicas publish together; and the last fired slot is
// kept as a cursor, so a slot longer than JetStream's duplicate window is not fired twice either.
type Scheduler struct {
	mapping mappingv1.MappingServiceClient
	pub     *bus.Publisher
	log     *slog.Logger
	now     func() time.Time
}

// Tick fires every due command once.
func (s *Scheduler) Tick(ctx context.Context) error {
	list, err := s.mapping.ListTenants(ctx, &mappingv1.ListTenantsRequest{})
	if err != nil {
		return fmt.Errorf("list tenants: %w", err)
	}
	now := s.now()
	for _, t := range list.GetTenants() {
		if t.GetState() != mappingv1.TenantState_TENANT_STATE_ACTIVE {
			continue
		}
		for kind := range schedule.DefaultIntervals {
			if err := s.fire(ctx, t, kind, now); err != nil {
				s.log.WarnContext(ctx, "schedule failed; next tick retries", "tenant", t.GetId(), "kind", kind, "error", err)
			}
		}
	}
	return nil
}

func (s *Scheduler) fire(ctx context.Context, t *mappingv1.Tenant, kind string, now time.Time) error {
	slot := schedule.SlotStart(t.GetId(), kind, schedule.Interval(t, kind), now)
	cursor := "sched-" + kind
	cur, err := s.mapping.GetCursor(ctx, &mappingv1.GetCursorRequest{TenantId: t.GetId(), Name: cursor})
	if err != nil {
		return fmt.Errorf("get cursor: %w", err)
	}
	if last, err := strconv.ParseInt(cur.GetValue(), 10, 64); err == nil && last >= slot.Unix() {
		return nil
	}
	id := fmt.Sprintf("sched:%s:%s:%d", t.GetId(), kind, slot.Unix())
	subject, err := bus.SyncCommandSubject(t.GetId(), kind)
	if err != nil {
		return err
	}
	cmd := &eventsv1.SyncCommand{TenantId: t.GetId(), Kind: kind, Slot: timestamppb.New(slot), Trigger: bus.TriggerSchedule, RunId: id}
	dup, err := s.pub.Publish(ctx, subject, cmd, id)
	if err != nil {
		return err
	}
	firedTotal.WithLabelValues(kind, strconv.FormatBool(dup)).Inc()
	if !dup {
		s.log.InfoContext(ctx, "sync command published", "tenant", t.GetId(), "kind", kind, "slot", slot)
	}
	_, err = s.mapping.SetCursor(ctx, &mappingv1.SetCursorRequest{TenantId: t.GetId(), Name: cursor, Value: strconv.FormatInt(slot.Unix(), 10)})
	if err != nil {
		return fmt.Errorf("set cursor: %w", err)
	}
	return nil
}

// Run ticks every interval until ctx is done.
func (s *Scheduler) Run(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := s.Tick(ctx); err != nil {
			s.log.WarnContext(ctx, "tick failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
