package bus_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/koppel/koppel/pkg/bus"
	eventsv1 "github.com/koppel/koppel/proto/koppel/events/v1"
	"google.golang.org/protobuf/proto"
)

func TestParseShards(t *testing.T) {
	s, err := bus.ParseShards(" big = acme, globex ; eu=foo;")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Names(), " "); got != "default big eu" {
		t.Errorf("names = %q", got)
	}
	for tenant, want := range map[string]string{"acme": "big", "globex": "big", "foo": "eu", "other": "default"} {
		if got := s.Of(tenant); got != want {
			t.Errorf("Of(%s) = %s, want %s", tenant, got, want)
		}
	}
	for _, bad := range []string{"big", "Big=acme", "default=acme", "a=x;a=y", "a=x;b=x", "a=Acme", "=acme"} {
		if _, err := bus.ParseShards(bad); err == nil {
			t.Errorf("ParseShards(%q): no error", bad)
		}
	}
	if empty, err := bus.ParseShards(""); err != nil || len(empty.Names()) != 1 {
		t.Errorf("empty list: %v %v", empty.Names(), err)
	}
}

func TestRouteAndConsumerNames(t *testing.T) {
	s := bus.MustParseShards("big=acme")
	for in, want := range map[string]string{
		"tribe.evt.acme.Relation_Person":       "tribe.evt.acme.Relation_Person.big",
		"tribe.evt.acme.Relation_Person.old":   "tribe.evt.acme.Relation_Person.big",
		"sync.cmd.other.product.big":           "sync.cmd.other.product",
		"sync.cmd.other.product":               "sync.cmd.other.product",
		"dlq.msg.acme.relation-evt":            "dlq.msg.acme.relation-evt",
		"tribe.evt.acme.Activity_Invoice.big":  "tribe.evt.acme.Activity_Invoice.big",
		"sync.cmd.acme.relation-scan":          "sync.cmd.acme.relation-scan.big",
		"tribe.evt.acme":                       "tribe.evt.acme",
		"tribe.evt.other.Relation_Person.acme": "tribe.evt.other.Relation_Person",
	} {
		if got := s.Route(in); got != want {
			t.Errorf("Route(%s) = %s, want %s", in, got, want)
		}
	}
	if got := bus.EntityOf("tribe.evt.acme.Relation_Person.big"); got != bus.EntityPerson {
		t.Errorf("EntityOf = %q", got)
	}
	specs := bus.WorkerConsumers(s)
	if len(specs) != 10 {
		t.Fatalf("%d consumers for two shards, want 10", len(specs))
	}
	spec, ok := bus.ShardConsumerSpec(bus.ConsumerInvoiceEvents, "big")
	if !ok || spec.Durable != "invoice-evt-big" || spec.FilterSubjects[0] != "tribe.evt.*.Activity_Invoice.big" {
		t.Errorf("invoice consumer of big: %+v", spec)
	}
}

// A tenant moved to its own shard while its messages flow: every message is handled exactly
// once, the ones published before the move by the default shard, the ones after by the new
// shard, and a webhook redelivered across the move still collapses on its message ID.
func TestMovingATenantToItsOwnShardLosesAndDuplicatesNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()

	var mu sync.Mutex
	handledBy := map[string][]string{} // entity ID → shards that handled it
	worker := func(shard string) {
		spec, _ := bus.ShardConsumerSpec(bus.ConsumerRelationEvents, shard)
		c, err := bus.EnsureConsumer(ctx, e.js, spec)
		if err != nil {
			t.Fatal(err)
		}
		startWorker(t, e, c, func(_ context.Context, m *bus.Msg) error {
			var change eventsv1.TribeChange
			if err := proto.Unmarshal(m.Data, &change); err != nil {
				return bus.Permanent(err, nil)
			}
			mu.Lock()
			defer mu.Unlock()
			handledBy[change.GetEntityId()] = append(handledBy[change.GetEntityId()], shard)
			return nil
		}, bus.ConsumerOptions{Concurrency: 4})
	}
	publish := func(p *bus.Publisher, tenant, id string) (duplicate bool) {
		subj, _ := bus.TribeEventSubject(tenant, bus.EntityPerson)
		dup, err := p.Publish(ctx, subj, &eventsv1.TribeChange{TenantId: tenant, Entity: bus.EntityPerson, EntityId: id}, "evt-"+id)
		if err != nil {
			t.Fatal(err)
		}
		return dup
	}

	before := bus.NewPublisher(e.js)
	worker(bus.DefaultShard)
	for i := range 50 {
		publish(before, "big", fmt.Sprintf("big-%d", i))
		publish(before, "small", fmt.Sprintf("small-%d", i))
	}

	// The move, in the order a rollout does it: every service ensures the new shard's consumers
	// at start-up before it publishes anything with the new shard list.
	shards := bus.MustParseShards("solo=big")
	if err := bus.EnsureTopology(ctx, e.js, bus.StreamOptions{}, shards); err != nil {
		t.Fatal(err)
	}
	after := bus.NewPublisher(e.js, bus.WithShards(shards))
	for i := 40; i < 50; i++ { // webhooks Tribe retried across the move
		if !publish(after, "big", fmt.Sprintf("big-%d", i)) {
			t.Errorf("big-%d published again after the move was not taken for a duplicate", i)
		}
	}
	for i := 50; i < 100; i++ {
		publish(after, "big", fmt.Sprintf("big-%d", i))
		publish(after, "small", fmt.Sprintf("small-%d", i))
	}
	worker("solo")

	waitFor(t, "every message handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handledBy) == 200
	})
	for _, shard := range []string{bus.DefaultShard, "solo"} {
		spec, _ := bus.ShardConsumerSpec(bus.ConsumerRelationEvents, shard)
		c, err := e.js.Consumer(ctx, bus.StreamTribeEvents, spec.Durable)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, spec.Durable+" settled", settled(t, c))
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range 100 {
		for _, tenant := range []string{"big", "small"} {
			id := fmt.Sprintf("%s-%d", tenant, i)
			want := bus.DefaultShard
			if tenant == "big" && i >= 50 {
				want = "solo"
			}
			if got := handledBy[id]; len(got) != 1 || got[0] != want {
				t.Errorf("%s handled by %v, want once by %s", id, got, want)
			}
		}
	}
}
