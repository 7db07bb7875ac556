package bus_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/koppel/koppel/pkg/bus"
	eventsv1 "github.com/koppel/koppel/proto/koppel/events/v1"
	"github.com/nats-io/nats.go/jetstream"
)

// TestStreamsAreBounded: every stream has a storage limit and refuses new messages at it rather
// than dropping stored ones, and a publish to a full stream fails with an error IsStreamFull
// recognises, leaving what was stored in place.
func TestStreamsAreBounded(t *testing.T) {
	for _, sc := range bus.StreamConfigs(bus.StreamOptions{}) {
		if sc.MaxBytes <= 0 || sc.Discard != jetstream.DiscardNew {
			t.Errorf("stream %s: MaxBytes %d, discard %v; want a limit with discard new", sc.Name, sc.MaxBytes, sc.Discard)
		}
	}

	e := newEnv(t)
	ctx := context.Background()
	if err := bus.EnsureStreams(ctx, e.js, bus.StreamOptions{MaxBytes: 2 << 10}); err != nil {
		t.Fatal(err)
	}
	var stored uint64
	for i := range 100 {
		subj, _ := bus.TribeEventSubject("acme", bus.EntityPerson)
		_, err := e.pub.Publish(ctx, subj, &eventsv1.TribeChange{TenantId: "acme", EntityId: fmt.Sprint(i)}, fmt.Sprint("evt-", i))
		if err == nil {
			stored++
			continue
		}
		if !bus.IsStreamFull(err) {
			t.Fatalf("publish %d: %v, which IsStreamFull does not recognise", i, err)
		}
		s, err := e.js.Stream(ctx, bus.StreamTribeEvents)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs != stored {
			t.Fatalf("the full stream holds %d messages, %d were stored", info.State.Msgs, stored)
		}
		// The metric shows the stream at its limit.
		reg := prometheus.NewRegistry()
		reg.MustRegister(bus.NewStreamUsageCollector(e.js))
		used := gauge(t, reg, "koppel_bus_stream_bytes", bus.StreamTribeEvents)
		limit := gauge(t, reg, "koppel_bus_stream_max_bytes", bus.StreamTribeEvents)
		if limit != 2<<10 || used <= 0 || used > limit {
			t.Fatalf("koppel_bus_stream_bytes %v of koppel_bus_stream_max_bytes %v", used, limit)
		}
		return
	}
	t.Fatal("100 messages fitted in a stream of 2 KiB")
}

// gauge returns the value of a gauge family's sample with the given stream label.
func gauge(t *testing.T, reg *prometheus.Registry, name, stream string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "stream" && l.GetValue() == stream {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{stream=%q}", name, stream)
	return 0
}
