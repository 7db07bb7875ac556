package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/bustest"
	"github.com/koppel/koppel/pkg/schedule"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/koppel/koppel/services/mapping/mappingtest"
	"github.com/nats-io/nats.go/jetstream"
)

func TestReplicasFireEachSlotOnce(t *testing.T) {
	ctx := context.Background()
	m := mappingtest.Start(t)
	js := bustest.Start(t).JS
	for _, id := range []string{"acme", "paused"} {
		if _, err := m.Client.CreateTenant(ctx, &mappingv1.CreateTenantRequest{Tenant: &mappingv1.Tenant{Id: id}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Client.SetTenantState(ctx, &mappingv1.SetTenantStateRequest{TenantId: "acme", State: mappingv1.TenantState_TENANT_STATE_ACTIVE}); err != nil {
		t.Fatal(err)
	}

	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	replicas := []*Scheduler{
		{mapping: m.Client, pub: bus.NewPublisher(js), log: quiet, now: clock},
		{mapping: m.Client, pub: bus.NewPublisher(js), log: quiet, now: clock},
	}
	// Replicas tick at the same moment, so both may pass the cursor check: the message ID
	// per slot must keep the second copy out.
	for range 3 {
		var wg sync.WaitGroup
		for _, r := range replicas {
			wg.Go(func() {
				if err := r.Tick(ctx); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	count := func() uint64 {
		s, _ := js.Stream(ctx, bus.StreamSyncCommands)
		info, _ := s.Info(ctx, jetstream.WithSubjectFilter("sync.cmd.>"))
		var n uint64
		for subj, c := range info.State.Subjects {
			if !strings.HasPrefix(subj, "sync.cmd.acme.") {
				t.Fatalf("command for a tenant that is not active: %s", subj)
			}
			n += c
		}
		return n
	}
	if n := count(); n != uint64(len(schedule.DefaultIntervals)) {
		t.Fatalf("after repeated ticks of two replicas: %d commands, want one per kind (%d)", n, len(schedule.DefaultIntervals))
	}
	// A day later every kind is due again, once, even though the duplicate window has passed.
	now = now.Add(24 * time.Hour)
	for _, r := range replicas {
		if err := r.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(); n != 2*uint64(len(schedule.DefaultIntervals)) {
		t.Fatalf("a day later: %d commands, want %d", n, 2*len(schedule.DefaultIntervals))
	}
}
