package bus

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Lag metrics describe JetStream's own state rather than one process's work, so they are read
// from the server on every scrape. Register the LagCollector in one service only (the
// scheduler): every replica would report the same numbers, and dashboards take the max.
var (
	consumerPendingDesc = prometheus.NewDesc("koppel_bus_consumer_pending",
		"Messages a worker consumer has not delivered yet: its backlog.", []string{"stream", "consumer"}, nil)
	consumerAckPendingDesc = prometheus.NewDesc("koppel_bus_consumer_ack_pending",
		"Messages a worker consumer delivered that are not acknowledged yet: in work, or waiting for a delayed retry.", []string{"stream", "consumer"}, nil)
	consumerRedeliveredDesc = prometheus.NewDesc("koppel_bus_consumer_redelivered",
		"Messages of a worker consumer that are out for a second or later delivery.", []string{"stream", "consumer"}, nil)
	streamMessagesDesc = prometheus.NewDesc("koppel_bus_stream_messages",
		"Messages held by a stream: on the work streams, messages not yet handled by every consumer; on DEAD_LETTERS, the dead letters.", []string{"stream"}, nil)
	tenantMessagesDesc = prometheus.NewDesc("koppel_bus_tenant_messages",
		"Messages of a tenant on a work stream not yet handled by every consumer (only tenants that have any).", []string{"stream", "tenant"}, nil)
	deadLettersDesc = prometheus.NewDesc("koppel_bus_dead_letters",
		"Dead letters kept, by tenant and the consumer that gave up on them (only pairs that have any).", []string{"tenant", "consumer"}, nil)
	busScanDesc = prometheus.NewDesc("koppel_bus_scan_success",
		"1 when every consumer and stream of this scrape could be read from JetStream, else 0 (what could not be read is missing).", nil, nil)
)

// LagScrapeTimeout bounds one scrape of the LagCollector.
const LagScrapeTimeout = 5 * time.Second

// LagCollector is a prometheus.Collector of the backlog of the worker consumers, the messages
// per tenant still on the work streams, and the dead letters per tenant and consumer.
type LagCollector struct {
	js        jetstream.JetStream
	consumers []ConsumerSpec
	streams   []string
}

// NewLagCollector returns a collector for consumers (normally WorkerConsumers of every shard) and
// the streams they read, plus DEAD_LETTERS.
func NewLagCollector(js jetstream.JetStream, consumers []ConsumerSpec) *LagCollector {
	var streams []string
	for _, c := range consumers {
		if !slices.Contains(streams, c.Stream) {
			streams = append(streams, c.Stream)
		}
	}
	slices.Sort(streams)
	return &LagCollector{js: js, consumers: slices.Clone(consumers), streams: streams}
}

// Describe implements prometheus.Collector.
func (l *LagCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{consumerPendingDesc, consumerAckPendingDesc, consumerRedeliveredDesc,
		streamMessagesDesc, tenantMessagesDesc, deadLettersDesc, busScanDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. What cannot be read (NATS down, a consumer not
// created yet) is left out, and koppel_bus_scan_success says so.
func (l *LagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), LagScrapeTimeout)
	defer cancel()
	ok := true
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, spec := range l.consumers {
		c, err := l.js.Consumer(ctx, spec.Stream, spec.Durable)
		if err != nil {
			ok = false
			continue
		}
		info := c.CachedInfo() // fetched by Consumer just now
		gauge(consumerPendingDesc, float64(info.NumPending), spec.Stream, spec.Durable)
		gauge(consumerAckPendingDesc, float64(info.NumAckPending), spec.Stream, spec.Durable)
		gauge(consumerRedeliveredDesc, float64(info.NumRedelivered), spec.Stream, spec.Durable)
	}
	for _, name := range append(slices.Clone(l.streams), StreamDeadLetters) {
		subjects, total, err := l.subjectCounts(ctx, name)
		if err != nil {
			ok = false
			continue
		}
		gauge(streamMessagesDesc, float64(total), name)
		if name == StreamDeadLetters {
			for k, n := range deadLettersByTenant(subjects) {
				gauge(deadLettersDesc, float64(n), k.tenant, k.consumer)
			}
			continue
		}
		for tenant, n := range messagesByTenant(subjects) {
			gauge(tenantMessagesDesc, float64(n), name, tenant)
		}
	}
	v := 0.0
	if ok {
		v = 1
	}
	gauge(busScanDesc, v)
}

// subjectCounts returns the messages per subject of a stream and its total.
func (l *LagCollector) subjectCounts(ctx context.Context, stream string) (map[string]uint64, uint64, error) {
	s, err := l.js.Stream(ctx, stream)
	if err != nil {
		return nil, 0, err
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(">"))
	if err != nil {
		return nil, 0, err
	}
	if info == nil {
		return nil, 0, errors.New("no stream info")
	}
	return info.State.Subjects, info.State.Msgs, nil
}

// messagesByTenant sums subject counts by tenant.
func messagesByTenant(subjects map[string]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for subj, n := range subjects {
		if tenant := TenantOf(subj); tenant != "" && n > 0 {
			out[tenant] += n
		}
	}
	return out
}

type tenantConsumer struct{ tenant, consumer string }

// deadLettersByTenant reads dlq.msg.<tenant>.<consumer> subject counts.
func deadLettersByTenant(subjects map[string]uint64) map[tenantConsumer]uint64 {
	out := map[tenantConsumer]uint64{}
	for subj, n := range subjects {
		if tenant := TenantOf(subj); strings.HasPrefix(subj, "dlq.msg.") && tenant != "" && n > 0 {
			out[tenantConsumer{tenant, LastToken(subj)}] += n
		}
	}
	return out
}
