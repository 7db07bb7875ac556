package main

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/koppel/koppel/pkg/adminapi"
	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/flow"
	"github.com/koppel/koppel/pkg/mapping"
	eventsv1 "github.com/koppel/koppel/proto/koppel/events/v1"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
)

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPauseHoldsAndResumeCatchesUp runs the relation-event consumer through the flow's handler
// against the real mapping service: a paused tenant's event is held far past MaxDeliver without
// being dead-lettered or handled; the resume through the admin API starts every scheduled kind
// at once, and the held event is handled.
func TestPauseHoldsAndResumeCatchesUp(t *testing.T) {
	old := flow.PausedHold
	flow.PausedHold = 30 * time.Millisecond
	t.Cleanup(func() { flow.PausedHold = old })

	e := newActivationEnv(t)
	if _, err := e.m.Client.SetTenantState(ctx(), &mappingv1.SetTenantStateRequest{TenantId: e.tenantID, State: mappingv1.TenantState_TENANT_STATE_ACTIVE}); err != nil {
		t.Fatal(err)
	}
	var paused adminapi.StateChanged
	if status, ae := e.call("PUT", "/state", map[string]string{"state": "paused"}, &paused); status != 200 || paused.State != adminapi.StatePaused || paused.CatchUpRuns != nil {
		t.Fatalf("pause: %d %+v %+v", status, ae, paused)
	}

	// The relation worker, as the relation service runs it, with a small MaxDeliver.
	var mu sync.Mutex
	var handled []string
	var deliveries uint64
	h := flow.ChangeHandler(e.m.Client, func(_ context.Context, _ *mappingv1.Tenant, c *eventsv1.TribeChange) error {
		mu.Lock()
		defer mu.Unlock()
		handled = append(handled, c.GetEntityId())
		return nil
	})
	spec, _ := bus.ShardConsumerSpec(bus.ConsumerRelationEvents, "")
	c, err := e.js.Consumer(ctx(), bus.StreamTribeEvents, spec.Durable)
	if err != nil {
		t.Fatal(err)
	}
	w, err := bus.NewWorker(e.js, c, spec.Durable, func(ctx context.Context, m *bus.Msg) error {
		mu.Lock()
		deliveries = m.Delivery
		mu.Unlock()
		return h(ctx, m)
	}, bus.ConsumerOptions{MaxDeliver: 2, RetryBase: 10 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Issues: mapping.IssueRecorder{Client: e.m.Client}})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = w.Run(runCtx); close(done) }()
	t.Cleanup(func() { stop(); <-done })

	subject, _ := bus.TribeEventSubject(e.tenantID, bus.EntityOrganization)
	change := &eventsv1.TribeChange{TenantId: e.tenantID, Entity: bus.EntityOrganization, EntityId: "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
		Action: eventsv1.ChangeAction_CHANGE_ACTION_UPDATED, EventKey: "evt-1"}
	if _, err := bus.NewPublisher(e.js).Publish(ctx(), subject, change, "evt-1"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the event held past MaxDeliver", func() bool { mu.Lock(); defer mu.Unlock(); return deliveries >= 6 })
	mu.Lock()
	if len(handled) != 0 {
		t.Fatalf("a paused tenant's event was handled: %v", handled)
	}
	mu.Unlock()
	dlq := bus.NewDeadLetters(e.js, bus.Shards{})
	if l, _ := dlq.List(ctx(), e.tenantID, 10); len(l) != 0 {
		t.Fatalf("held event dead-lettered: %+v", l)
	}
	if issues, _ := e.m.Client.ListIssues(ctx(), &mappingv1.ListIssuesRequest{TenantId: e.tenantID}); len(issues.GetIssues()) != 0 {
		t.Fatalf("issues recorded for a pause: %v", issues.GetIssues())
	}

	// Resume: every scheduled kind starts at once, and the held event is handled.
	var resumed adminapi.StateChanged
	if status, ae := e.call("PUT", "/state", map[string]string{"state": "active"}, &resumed); status != 200 || resumed.State != adminapi.StateActive {
		t.Fatalf("resume: %d %+v", status, ae)
	}
	kinds := []string{bus.KindPayment, bus.KindProduct, bus.KindRelation, bus.KindRelationScan, bus.KindTribeScan}
	if got := slices.Sorted(maps.Keys(resumed.CatchUpRuns)); !slices.Equal(got, kinds) {
		t.Fatalf("catch-up runs %v, want %v", resumed.CatchUpRuns, kinds)
	}
	cmds := e.syncCommands(t, len(kinds))
	for _, cmd := range cmds {
		if cmd.GetTrigger() != "resume" || resumed.CatchUpRuns[cmd.GetKind()] != cmd.GetRunId() {
			t.Errorf("command %v does not match the answer %v", cmd, resumed.CatchUpRuns)
		}
	}
	waitUntil(t, "the held event handled after the resume", func() bool { mu.Lock(); defer mu.Unlock(); return len(handled) == 1 })
	waitUntil(t, "the consumer settled", func() bool {
		info, err := c.Info(ctx())
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0
	})
	if l, _ := dlq.List(ctx(), e.tenantID, 10); len(l) != 0 {
		t.Fatalf("dead letters after the resume: %+v", l)
	}

	// Setting active what is active already is no resume: nothing starts.
	var again adminapi.StateChanged
	if status, ae := e.call("PUT", "/state", map[string]string{"state": "active"}, &again); status != 200 || again.CatchUpRuns != nil {
		t.Fatalf("active again: %d %+v %+v", status, ae, again)
	}
}

// syncCommands reads the first n sync commands of the tenant from the bus.
func (e *activationEnv) syncCommands(t *testing.T, n int) []*eventsv1.SyncCommand {
	t.Helper()
	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := e.js.OrderedConsumer(cctx, bus.StreamSyncCommands, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"sync.cmd." + e.tenantID + ".>"}})
	if err != nil {
		t.Fatal(err)
	}
	var out []*eventsv1.SyncCommand
	for len(out) < n {
		msg, err := c.Next(jetstream.FetchContext(cctx))
		if err != nil {
			t.Fatalf("%d sync commands on the bus, want %d: %v", len(out), n, err)
		}
		var cmd eventsv1.SyncCommand
		if err := proto.Unmarshal(msg.Data(), &cmd); err != nil {
			t.Fatal(err)
		}
		out = append(out, &cmd)
	}
	return out
}
