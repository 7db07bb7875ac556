package bus_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/bustest"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The lag collector reads backlog, messages in work, messages per tenant and dead letters from
// JetStream itself, and says when it could not.
func TestLagCollector(t *testing.T) {
	env := bustest.Start(t)
	ctx := context.Background()
	events := []bus.ConsumerSpec{{Stream: bus.StreamTribeEvents, Durable: bus.ConsumerRelationEvents},
		{Stream: bus.StreamTribeEvents, Durable: bus.ConsumerInvoiceEvents}}
	col := bus.NewLagCollector(env.JS, events)

	pub := func(subject, id string) {
		t.Helper()
		if _, err := env.JS.Publish(ctx, subject, []byte("x"), jetstream.WithMsgID(id)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		pub("tribe.evt.acme."+bus.EntityOrganization, fmt.Sprint("a", i))
	}
	pub("tribe.evt.globex."+bus.EntityInvoice, "g1")
	pub("dlq.msg.acme."+bus.ConsumerRelationEvents, "d1")
	pub("dlq.msg.acme."+bus.ConsumerRelationEvents, "d2")

	// One relation event is taken and not acknowledged yet: in work.
	cons, err := env.JS.Consumer(ctx, bus.StreamTribeEvents, bus.ConsumerRelationEvents)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for range batch.Messages() {
	}

	want := `
# HELP koppel_bus_consumer_ack_pending Messages a worker consumer delivered that are not acknowledged yet: in work, or waiting for a delayed retry.
# TYPE koppel_bus_consumer_ack_pending gauge
koppel_bus_consumer_ack_pending{consumer="invoice-evt",stream="TRIBE_EVENTS"} 0
koppel_bus_consumer_ack_pending{consumer="relation-evt",stream="TRIBE_EVENTS"} 1
# HELP koppel_bus_consumer_pending Messages a worker consumer has not delivered yet: its backlog.
# TYPE koppel_bus_consumer_pending gauge
koppel_bus_consumer_pending{consumer="invoice-evt",stream="TRIBE_EVENTS"} 1
koppel_bus_consumer_pending{consumer="relation-evt",stream="TRIBE_EVENTS"} 2
# HELP koppel_bus_dead_letters Dead letters kept, by tenant and the consumer that gave up on them (only pairs that have any).
# TYPE koppel_bus_dead_letters gauge
koppel_bus_dead_letters{consumer="relation-evt",tenant="acme"} 2
# HELP koppel_bus_stream_messages Messages held by a stream: on the work streams, messages not yet handled by every consumer; on DEAD_LETTERS, the dead letters.
# TYPE koppel_bus_stream_messages gauge
koppel_bus_stream_messages{stream="DEAD_LETTERS"} 2
koppel_bus_stream_messages{stream="TRIBE_EVENTS"} 4
# HELP koppel_bus_tenant_messages Messages of a tenant on a work stream not yet handled by every consumer (only tenants that have any).
# TYPE koppel_bus_tenant_messages gauge
koppel_bus_tenant_messages{stream="TRIBE_EVENTS",tenant="acme"} 3
koppel_bus_tenant_messages{stream="TRIBE_EVENTS",tenant="globex"} 1
# HELP koppel_bus_scan_success 1 when every consumer and stream of this scrape could be read from JetStream, else 0 (what could not be read is missing).
# TYPE koppel_bus_scan_success gauge
koppel_bus_scan_success 1
`
	names := []string{"koppel_bus_consumer_ack_pending", "koppel_bus_consumer_pending", "koppel_bus_dead_letters",
		"koppel_bus_stream_messages", "koppel_bus_tenant_messages", "koppel_bus_scan_success"}
	if err := testutil.CollectAndCompare(col, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}

	// A consumer that does not exist (a shard listed before its consumers were made) is left
	// out, and the scrape says it is incomplete.
	missing := bus.NewLagCollector(env.JS, []bus.ConsumerSpec{{Stream: bus.StreamSyncCommands, Durable: "no-such-consumer"}})
	incomplete := `
# HELP koppel_bus_scan_success 1 when every consumer and stream of this scrape could be read from JetStream, else 0 (what could not be read is missing).
# TYPE koppel_bus_scan_success gauge
koppel_bus_scan_success 0
`
	if err := testutil.CollectAndCompare(missing, strings.NewReader(incomplete), "koppel_bus_scan_success", "koppel_bus_consumer_pending"); err != nil {
		t.Fatal(err)
	}
}
