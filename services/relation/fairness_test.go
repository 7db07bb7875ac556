package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/bustest"
	"github.com/koppel/koppel/pkg/flow"
	"github.com/koppel/koppel/pkg/mapping"
	"github.com/koppel/koppel/pkg/tenantclients"
	eventsv1 "github.com/koppel/koppel/proto/koppel/events/v1"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/koppel/koppel/services/sandbox/ebsim"
	"github.com/koppel/koppel/services/sandbox/tribesim"
)

// addTenant adds a tenant with its own administration and Tribe environment to w's simulators
// and mapping service, and returns its Tribe environment.
func (w *world) addTenant(id string) tribesim.EnvironmentInfo {
	w.t.Helper()
	adm, err := w.eb.CreateAdministration(ebsim.AdminSpec{Company: id + " boekhouding"})
	if err != nil {
		w.t.Fatal(err)
	}
	env, err := w.tr.CreateEnvironment(tribesim.EnvironmentSpec{ID: id, Name: id})
	if err != nil {
		w.t.Fatal(err)
	}
	base := w.tenantRecord().GetSettings()
	settings := &mappingv1.TenantSettings{EboekhoudenBaseUrl: base.GetEboekhoudenBaseUrl(), TribeBaseUrl: base.GetTribeBaseUrl(),
		TribeAuthUrl: base.GetTribeAuthUrl(), TribeClientId: env.ClientID}
	if _, err := w.m.Client.CreateTenant(ctx, &mappingv1.CreateTenantRequest{Tenant: &mappingv1.Tenant{Id: id,
		State: mappingv1.TenantState_TENANT_STATE_ACTIVE, Settings: settings}}); err != nil {
		w.t.Fatal(err)
	}
	for name, v := range map[string]string{tenantclients.SecretEBoekhoudenToken: adm.AccessToken, tenantclients.SecretTribeClientSecret: env.ClientSecret} {
		if _, err := w.m.Client.PutSecret(ctx, &mappingv1.PutSecretRequest{TenantId: id, Name: name, Value: []byte(v)}); err != nil {
			w.t.Fatal(err)
		}
	}
	return env
}

// One tenant's burst of Tribe changes, with a budget of two Tribe calls a second, must not keep
// another tenant's single change waiting: its messages are handed back for the wait their budget
// needs instead of holding the worker's slots. Without the hand-back the other tenant's change
// waits until most of the burst is through.
func TestOneTenantsBurstDoesNotHoldAnothersChange(t *testing.T) {
	for _, c := range []struct {
		name     string
		handBack time.Duration
		fair     bool
	}{{"handed back", time.Second, true}, {"held (no hand-back)", time.Hour, false}} {
		t.Run(c.name, func(t *testing.T) {
			done := fairnessRun(t, c.handBack)
			if c.fair && done >= 6 {
				t.Fatalf("the other tenant's change waited for %d of the burst's 12", done)
			}
			if !c.fair && done < 6 {
				t.Fatalf("without hand-back the other tenant waited for only %d: the test cannot tell fair from unfair", done)
			}
		})
	}
}

// fairnessRun sends 12 changes of tenant acme, then one of globex, through a real consume loop
// and returns how many of acme's were done when globex's was.
func fairnessRun(t *testing.T, handBack time.Duration) int {
	old := flow.HandBackAfter
	flow.HandBackAfter = handBack
	t.Cleanup(func() { flow.HandBackAfter = old })

	w := newWorld(t, 0, false)
	w.addTenant("globex")
	clients, err := tenantclients.New(w.m.Client, tenantclients.Options{EBoekhoudenRate: 1000, TribeRate: 2})
	if err != nil {
		t.Fatal(err)
	}
	s := &syncer{mapping: w.m.Client, connect: connector(clients), holder: "fair", log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	env := bustest.Start(t)
	pub := bus.NewPublisher(env.JS)

	// Organisations that are nobody's customers: each change costs two Tribe reads and writes
	// nothing.
	publish := func(tenant string, n int) {
		for i := range n {
			org, err := w.tr.UserWrite(tenant, tribesim.SetOrganization, "", map[string]any{"Name": fmt.Sprintf("%s %d", tenant, i)})
			if err != nil {
				t.Fatal(err)
			}
			subject, _ := bus.TribeEventSubject(tenant, bus.EntityOrganization)
			id := field(org, "ID")
			if _, err := pub.Publish(ctx, subject, &eventsv1.TribeChange{TenantId: tenant, Entity: bus.EntityOrganization, EntityId: id}, tenant+id); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish("acme", 12)
	publish("globex", 1)

	var mu sync.Mutex
	acmeDone := 0
	atGlobex := make(chan int, 1)
	handler := flow.ChangeHandler(w.m.Client, func(ctx context.Context, tenant *mappingv1.Tenant, change *eventsv1.TribeChange) error {
		if err := s.push(ctx, tenant, change); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		if tenant.GetId() == "globex" {
			atGlobex <- acmeDone
		} else {
			acmeDone++
		}
		return nil
	})
	consumer, err := env.JS.Consumer(ctx, bus.StreamTribeEvents, bus.ConsumerRelationEvents)
	if err != nil {
		t.Fatal(err)
	}
	worker, err := bus.NewWorker(env.JS, consumer, bus.ConsumerRelationEvents, handler,
		bus.ConsumerOptions{Concurrency: 4, Issues: mapping.IssueRecorder{Client: w.m.Client}, RetryBase: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() { defer close(stopped); _ = worker.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-stopped })
	select {
	case n := <-atGlobex:
		return n
	case <-time.After(60 * time.Second):
		t.Fatal("globex's change was never handled")
		return 0
	}
}
