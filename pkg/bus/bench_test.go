package bus_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/koppel/koppel/pkg/bus"
	eventsv1 "github.com/koppel/koppel/proto/koppel/events/v1"
)

// BenchmarkPublish measures one de-duplicated publish acknowledged by JetStream (file storage).
func BenchmarkPublish(b *testing.B) {
	e := newEnv(b)
	if err := bus.EnsureTopology(context.Background(), e.js, bus.StreamOptions{}, bus.Shards{}); err != nil {
		b.Fatal(err)
	}
	subj, _ := bus.TribeEventSubject("acme", bus.EntityOrganization)
	msg := &eventsv1.TribeChange{TenantId: "acme", Entity: bus.EntityOrganization, EntityId: "org-1"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := e.pub.Publish(context.Background(), subj, msg, fmt.Sprint("m", i)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConsume measures the consume loop: delivery, handler, double ack.
func BenchmarkConsume(b *testing.B) {
	e := newEnv(b)
	c := e.consumer(b, bus.ConsumerSpec{})
	for i := range b.N {
		e.publish(b, "acme", bus.EntityOrganization, fmt.Sprint(i))
	}
	var handled atomic.Int64
	done := make(chan struct{})
	b.ReportAllocs()
	b.ResetTimer()
	startWorker(b, e, c, func(context.Context, *bus.Msg) error {
		if handled.Add(1) == int64(b.N) {
			close(done)
		}
		return nil
	}, bus.ConsumerOptions{Concurrency: 16})
	<-done
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
