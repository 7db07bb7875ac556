package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// StreamOptions tune the stream definitions.
type StreamOptions struct {
	// Replicas of each stream: 1 for a single server, 3 in a production cluster. Default 1.
	Replicas int
	// DuplicateWindow is how long JetStream remembers the message IDs of sync commands. It must
	// cover the time replicas of the scheduler may publish one slot. Default 2 hours.
	DuplicateWindow time.Duration
	// EventDuplicateWindow is the same for Tribe events. It covers twice the gateway's replay
	// window (KOPPEL_WEBHOOK_REPLAY_WINDOW, 5 min), so a delivery replayed while its timestamp
	// still passes collapses on its message ID. A longer window is safe for real changes: the
	// gateway keys an event by its event ID, else by a hash that includes its timestamp, and
	// publishes a payload with neither under a unique ID, so two changes of one record never
	// share an ID. JetStream keeps the IDs of the window in memory, about 100 bytes each.
	// Default DefaultEventDuplicateWindow.
	EventDuplicateWindow time.Duration
	// DeadLetterMaxAge is how long dead letters are kept. Default 30 days.
	DeadLetterMaxAge time.Duration
	// MaxBytes bounds the storage of each stream. A full stream refuses new messages (discard
	// new) rather than dropping stored ones, so the publisher learns of it: the gateway answers
	// the webhook non-2xx and Tribe delivers it again later. Default DefaultStreamMaxBytes.
	MaxBytes int64
}

// Defaults of StreamOptions.
const (
	DefaultEventDuplicateWindow = 15 * time.Minute
	DefaultStreamMaxBytes       = 1 << 30
)

func (o StreamOptions) withDefaults() StreamOptions {
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.DuplicateWindow <= 0 {
		o.DuplicateWindow = 2 * time.Hour
	}
	if o.EventDuplicateWindow <= 0 {
		o.EventDuplicateWindow = DefaultEventDuplicateWindow
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultStreamMaxBytes
	}
	if o.DeadLetterMaxAge <= 0 {
		o.DeadLetterMaxAge = 30 * 24 * time.Hour
	}
	return o
}

// StreamConfigs are koppel's stream definitions.
//
// Work streams use interest retention: a message stays until every consumer bound to it has
// acknowledged it, and no longer. Dead letters are kept for a while for inspection and replay.
// Every stream is bounded by MaxBytes with discard new: when it is full a publish fails (see
// IsStreamFull) and nothing stored is dropped.
func StreamConfigs(o StreamOptions) []jetstream.StreamConfig {
	o = o.withDefaults()
	return []jetstream.StreamConfig{
		{
			Name:        StreamTribeEvents,
			Description: "Changes to Tribe records, one message per webhook event",
			Subjects:    []string{"tribe.evt.*.*", "tribe.evt.*.*.*"}, // the fifth token is a named shard
			Retention:   jetstream.InterestPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    o.Replicas,
			Duplicates:  o.EventDuplicateWindow,
			MaxAge:      7 * 24 * time.Hour,
			MaxBytes:    o.MaxBytes,
			Discard:     jetstream.DiscardNew,
		},
		{
			Name:        StreamSyncCommands,
			Description: "Sync commands per tenant and kind, from the scheduler and the admin API",
			Subjects:    []string{"sync.cmd.*.*", "sync.cmd.*.*.*"},
			Retention:   jetstream.InterestPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    o.Replicas,
			Duplicates:  o.DuplicateWindow,
			MaxAge:      7 * 24 * time.Hour,
			MaxBytes:    o.MaxBytes,
			Discard:     jetstream.DiscardNew,
		},
		{
			Name:        StreamDeadLetters,
			Description: "Messages that could not be handled, with the reason in headers",
			Subjects:    []string{"dlq.msg.*.*"},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    o.Replicas,
			Duplicates:  o.DuplicateWindow,
			MaxAge:      o.DeadLetterMaxAge,
			MaxBytes:    o.MaxBytes,
			Discard:     jetstream.DiscardNew,
		},
	}
}

// EnsureStreams creates koppel's streams or updates them to the current definitions. Every
// service calls it at start-up; it is idempotent and safe to run from many replicas at once.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, o StreamOptions) error {
	for _, cfg := range StreamConfigs(o) {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// IsStreamFull reports whether err from a publish means the stream reached its MaxBytes (or
// MaxMsgs) and, discarding new messages, refused this one.
func IsStreamFull(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	d := apiErr.Description
	return strings.Contains(d, "maximum bytes exceeded") || strings.Contains(d, "maximum messages exceeded")
}

// ConsumerSpec describes a durable pull consumer of one of the work streams.
type ConsumerSpec struct {
	Stream string
	// Durable is the consumer's name, for example "relation" or "relation-shard-big".
	Durable string
	// FilterSubjects select the messages, for example "tribe.evt.*.Relation_Organization".
	FilterSubjects []string
	// AckWait is how long a delivery may go without an ack or in-progress before it is
	// redelivered. Default 30s.
	AckWait time.Duration
	// MaxDeliver is how many deliveries a message gets before it is dead-lettered. Default 10.
	MaxDeliver int
	// MaxAckPending bounds the messages in flight across all replicas. Default 1000.
	MaxAckPending int
	// HandleTimeout bounds one handler call of the worker (not the consumer): default 10m; an
	// import of a large administration needs more.
	HandleTimeout time.Duration
}

func (s ConsumerSpec) withDefaults() ConsumerSpec {
	if s.AckWait <= 0 {
		s.AckWait = 30 * time.Second
	}
	if s.MaxDeliver <= 0 {
		s.MaxDeliver = 10
	}
	if s.MaxAckPending <= 0 {
		s.MaxAckPending = 1000
	}
	return s
}

// EnsureConsumer creates or updates a durable consumer and returns it.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, spec ConsumerSpec) (jetstream.Consumer, error) {
	spec = spec.withDefaults()
	cfg := jetstream.ConsumerConfig{
		Durable:        spec.Durable,
		FilterSubjects: spec.FilterSubjects,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        spec.AckWait,
		// Unlimited on the server: the consume loop alone counts deliveries and dead-letters,
		// so a message whose dead-letter publish failed, or whose last delivery died with its
		// worker, comes back to be dead-lettered rather than being stranded.
		MaxDeliver:    -1,
		MaxAckPending: spec.MaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	c, err := js.CreateOrUpdateConsumer(ctx, spec.Stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("ensure consumer %s on %s: %w", spec.Durable, spec.Stream, err)
	}
	return c, nil
}

var (
	streamBytesDesc = prometheus.NewDesc("koppel_bus_stream_bytes",
		"Bytes a stream stores now.", []string{"stream"}, nil)
	streamMaxBytesDesc = prometheus.NewDesc("koppel_bus_stream_max_bytes",
		"A stream's storage limit (MaxBytes); at it the stream refuses new messages.", []string{"stream"}, nil)
)

// StreamUsageCollector is a prometheus.Collector of how full koppel's streams are, read from
// JetStream on every scrape. Register it in one service only (the gateway, which learns first
// when the events stream is full): every replica reports the same numbers.
type StreamUsageCollector struct {
	js      jetstream.JetStream
	streams []string
}

// NewStreamUsageCollector returns a collector of koppel's streams.
func NewStreamUsageCollector(js jetstream.JetStream) *StreamUsageCollector {
	var names []string
	for _, sc := range StreamConfigs(StreamOptions{}) {
		names = append(names, sc.Name)
	}
	return &StreamUsageCollector{js: js, streams: names}
}

// Describe implements prometheus.Collector.
func (c *StreamUsageCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- streamBytesDesc
	ch <- streamMaxBytesDesc
}

// Collect implements prometheus.Collector; a stream that cannot be read is left out.
func (c *StreamUsageCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), LagScrapeTimeout)
	defer cancel()
	for _, name := range c.streams {
		s, err := c.js.Stream(ctx, name)
		if err != nil {
			continue
		}
		info, err := s.Info(ctx)
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(streamBytesDesc, prometheus.GaugeValue, float64(info.State.Bytes), name)
		ch <- prometheus.MustNewConstMetric(streamMaxBytesDesc, prometheus.GaugeValue, float64(info.Config.MaxBytes), name)
	}
}
