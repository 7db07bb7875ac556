package bus

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"google.golang.org/protobuf/proto"
)

// Header names koppel sets on its messages.
const (
	HeaderTenant      = "Koppel-Tenant"
	HeaderContentType = "Content-Type"
	// ContentTypeProto marks a protobuf body; the message type follows from the subject.
	ContentTypeProto = "application/protobuf"
)

var publishedTotal = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "koppel_bus_published_total",
	Help: "Messages published to JetStream, by stream and whether JetStream found them duplicate.",
}, []string{"stream", "duplicate"})

// ErrNoMessageID is returned when a publish has no message ID: every koppel publish must be
// de-duplicable.
var ErrNoMessageID = errors.New("bus: publish without a message ID")

// Publisher publishes koppel messages with de-duplication, each to its tenant's shard.
type Publisher struct {
	js     jetstream.JetStream
	shards Shards
}

// PublisherOpt configures a Publisher.
type PublisherOpt func(*Publisher)

// WithShards routes the messages of the tenants moved to named shards to those shards.
func WithShards(s Shards) PublisherOpt { return func(p *Publisher) { p.shards = s } }

// NewPublisher returns a Publisher on js; without options every tenant is in the default shard.
func NewPublisher(js jetstream.JetStream, opts ...PublisherOpt) *Publisher {
	p := &Publisher{js: js}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Publish sends msg on subject (routed to the tenant's shard, see Shards.Route) with msgID as its
// Nats-Msg-Id and waits for JetStream to store it. It reports duplicate when JetStream already
// had a message with that ID in its window; that is a success, not an error.
func (p *Publisher) Publish(ctx context.Context, subject string, msg proto.Message, msgID string) (duplicate bool, err error) {
	if msgID == "" {
		return false, ErrNoMessageID
	}
	data, err := proto.Marshal(msg)
	if err != nil {
		return false, fmt.Errorf("marshal %T: %w", msg, err)
	}
	subject = p.shards.Route(subject)
	m := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	m.Header.Set(HeaderContentType, ContentTypeProto)
	if t := TenantOf(subject); t != "" {
		m.Header.Set(HeaderTenant, t)
	}
	ack, err := p.js.PublishMsg(ctx, m, jetstream.WithMsgID(msgID))
	if err != nil {
		return false, fmt.Errorf("publish %s: %w", subject, err)
	}
	publishedTotal.WithLabelValues(ack.Stream, fmt.Sprint(ack.Duplicate)).Inc()
	return ack.Duplicate, nil
}
