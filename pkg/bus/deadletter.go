package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DeadLetter is one message in the dead-letter stream.
type DeadLetter struct {
	// Sequence identifies the dead letter in the DEAD_LETTERS stream.
	Sequence        uint64
	Tenant          string
	Consumer        string
	Reason          string
	OriginalSubject string
	OriginalMsgID   string
	Deliveries      int
	DeadAt          time.Time
	Data            []byte
	Header          nats.Header
}

// ErrDeadLetterNotFound is returned for a sequence that is not (or no longer) in the stream.
var ErrDeadLetterNotFound = errors.New("bus: dead letter not found")

// DeadLetters reads, replays and removes dead letters.
type DeadLetters struct {
	js     jetstream.JetStream
	shards Shards
}

// NewDeadLetters returns a DeadLetters on js that replays to the tenants' current shards.
func NewDeadLetters(js jetstream.JetStream, shards Shards) *DeadLetters {
	return &DeadLetters{js: js, shards: shards}
}

// List returns up to limit dead letters of a tenant ("" for all tenants), oldest first.
func (d *DeadLetters) List(ctx context.Context, tenantID string, limit int) ([]DeadLetter, error) {
	filter := "dlq.msg.>"
	if tenantID != "" {
		if !ValidTenantID(tenantID) {
			return nil, fmt.Errorf("invalid tenant ID %q", tenantID)
		}
		filter = "dlq.msg." + tenantID + ".*"
	}
	if limit <= 0 {
		limit = 100
	}
	stream, err := d.js.Stream(ctx, StreamDeadLetters)
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	pending := 0
	for _, n := range info.State.Subjects {
		pending += int(n)
	}
	var out []DeadLetter
	for len(out) < min(limit, pending) {
		batch, err := cons.Fetch(min(limit, pending)-len(out), jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return nil, fmt.Errorf("dead letters: %w", err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			if dl, err := decodeDeadLetter(m); err == nil {
				out = append(out, dl)
			}
		}
		if batch.Error() != nil && !errors.Is(batch.Error(), nats.ErrTimeout) {
			return nil, fmt.Errorf("dead letters: %w", batch.Error())
		}
		if n == 0 {
			break
		}
	}
	return out, nil
}

// Get returns one dead letter.
func (d *DeadLetters) Get(ctx context.Context, seq uint64) (DeadLetter, error) {
	stream, err := d.js.Stream(ctx, StreamDeadLetters)
	if err != nil {
		return DeadLetter{}, fmt.Errorf("dead letter %d: %w", seq, err)
	}
	raw, err := stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return DeadLetter{}, ErrDeadLetterNotFound
	}
	if err != nil {
		return DeadLetter{}, fmt.Errorf("dead letter %d: %w", seq, err)
	}
	return fromRaw(raw), nil
}

// Replay publishes a dead letter back to its original subject, routed to the tenant's current
// shard (it may have moved since), with a fresh message ID, then removes it from the dead-letter
// stream.
func (d *DeadLetters) Replay(ctx context.Context, seq uint64) error {
	dl, err := d.Get(ctx, seq)
	if err != nil {
		return err
	}
	m := &nats.Msg{Subject: d.shards.Route(dl.OriginalSubject), Data: dl.Data, Header: nats.Header{}}
	for k, v := range dl.Header {
		if len(k) >= 10 && k[:10] == "Koppel-Dlq" {
			continue
		}
		m.Header[k] = v
	}
	id := fmt.Sprintf("replay:%s:%d", dl.OriginalMsgID, seq)
	if _, err := d.js.PublishMsg(ctx, m, jetstream.WithMsgID(id)); err != nil {
		return fmt.Errorf("replay dead letter %d: %w", seq, err)
	}
	return d.Delete(ctx, seq)
}

// Delete removes a dead letter.
func (d *DeadLetters) Delete(ctx context.Context, seq uint64) error {
	stream, err := d.js.Stream(ctx, StreamDeadLetters)
	if err != nil {
		return fmt.Errorf("delete dead letter %d: %w", seq, err)
	}
	if err := stream.DeleteMsg(ctx, seq); err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return ErrDeadLetterNotFound
		}
		return fmt.Errorf("delete dead letter %d: %w", seq, err)
	}
	return nil
}

func decodeDeadLetter(m jetstream.Msg) (DeadLetter, error) {
	meta, err := m.Metadata()
	if err != nil {
		return DeadLetter{}, err
	}
	return buildDeadLetter(meta.Sequence.Stream, m.Subject(), m.Headers(), m.Data(), meta.Timestamp), nil
}

func fromRaw(raw *jetstream.RawStreamMsg) DeadLetter {
	return buildDeadLetter(raw.Sequence, raw.Subject, raw.Header, raw.Data, raw.Time)
}

func buildDeadLetter(seq uint64, subject string, h nats.Header, data []byte, at time.Time) DeadLetter {
	deliveries, _ := strconv.Atoi(h.Get(HeaderDLQDeliveries))
	return DeadLetter{
		Sequence:        seq,
		Tenant:          TenantOf(subject),
		Consumer:        LastToken(subject),
		Reason:          h.Get(HeaderDLQReason),
		OriginalSubject: h.Get(HeaderDLQSubject),
		OriginalMsgID:   h.Get(HeaderDLQMsgID),
		Deliveries:      deliveries,
		DeadAt:          at,
		Data:            data,
		Header:          h,
	}
}
