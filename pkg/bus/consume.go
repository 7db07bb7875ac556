package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/koppel/koppel/pkg/telemetry"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"google.golang.org/protobuf/proto"
)

// Headers of a dead letter.
const (
	HeaderDLQReason     = "Koppel-Dlq-Reason"
	HeaderDLQSubject    = "Koppel-Dlq-Subject"
	HeaderDLQStream     = "Koppel-Dlq-Stream"
	HeaderDLQSequence   = "Koppel-Dlq-Sequence"
	HeaderDLQDeliveries = "Koppel-Dlq-Deliveries"
	HeaderDLQConsumer   = "Koppel-Dlq-Consumer"
	HeaderDLQMsgID      = "Koppel-Dlq-Msg-Id"
)

var (
	handledTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "koppel_bus_messages_total",
		Help: "Messages handled by consumers, by consumer and outcome (ack, retry, deferred, terminated, dead_lettered).",
	}, []string{"consumer", "outcome"})
	handleSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "koppel_bus_handle_seconds",
		Help:    "Time spent handling one message, by consumer.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 12),
	}, []string{"consumer"})
	inFlight = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "koppel_bus_in_flight",
		Help: "Messages being handled right now, by consumer.",
	}, []string{"consumer"})
)

// Msg is one delivery handed to a Handler.
type Msg struct {
	Subject string
	Data    []byte
	Header  nats.Header
	// Tenant is the tenant token of the subject.
	Tenant string
	// MsgID is the publisher's Nats-Msg-Id.
	MsgID string
	// Delivery counts deliveries of this message, starting at 1.
	Delivery uint64
	raw      jetstream.Msg
}

// InProgress tells JetStream the message is still being worked on. The loop already does this
// periodically; call it only around a single very long step.
func (m *Msg) InProgress() error { return m.raw.InProgress() }

// Handler handles one message; its error decides the outcome (see RetryAfter and Permanent).
type Handler func(ctx context.Context, m *Msg) error

// IssueRecorder records an issue on a tenant; the mapping client implements it.
type IssueRecorder interface {
	RecordIssue(ctx context.Context, tenantID string, issue *mappingv1.Issue) error
}

// ConsumerOptions tune the consume loop.
type ConsumerOptions struct {
	// Concurrency is how many messages one process handles at once. Default 4.
	Concurrency int
	// MaxDeliver must equal the consumer's ConsumerSpec.MaxDeliver. Default 10.
	MaxDeliver int
	// AckWait must equal the consumer's ConsumerSpec.AckWait; in-progress is sent every third of
	// it. Default 30s.
	AckWait time.Duration
	// RetryBase and RetryMax bound the backoff of transient failures: RetryBase doubled per
	// delivery, at most RetryMax, jittered. Defaults 1s and 5m.
	RetryBase time.Duration
	RetryMax  time.Duration
	// HandleTimeout bounds one handler call. Default 10m.
	HandleTimeout time.Duration
	// DrainTimeout is how long a shutdown waits for handlers in flight. Default 20s.
	DrainTimeout time.Duration
	Logger       *slog.Logger
	// Issues records the issues of permanent failures and dead letters. Required.
	Issues IssueRecorder
	// Describe says what a message is about, for the issue recorded when it is dead-lettered.
	// Default nil: the issue names the subject only.
	Describe DeadLetterDescriber
}

// DeadLetterDescriber describes a message for the issue the consume loop records on its tenant
// when it dead-letters it, since the loop itself knows subjects, not records. Kind and EntityId
// name the record; Details carry what a flow needs to retry it (merged into the loop's own:
// dead_letter, consumer, subject); Key, when set, makes the issue one per record rather than one
// per dead letter (so the flow resolves it when the record succeeds); Message and Action are
// put before the loop's own (what failed, and how to replay it). It returns nil for a message it
// cannot read.
type DeadLetterDescriber func(m *Msg) *mappingv1.Issue

// Details of a dead-letter issue (see DeadLetterIssue).
const (
	// IssueDeadLettered is the code of the issue of a dead-lettered message.
	IssueDeadLettered = "dead_lettered"
	// DetailDeadLetter is the dead letter's sequence in DEAD_LETTERS (what replay takes).
	DetailDeadLetter = "dead_letter"
)

func (o ConsumerOptions) withDefaults() ConsumerOptions {
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.MaxDeliver <= 0 {
		o.MaxDeliver = 10
	}
	if o.AckWait <= 0 {
		o.AckWait = 30 * time.Second
	}
	if o.RetryBase <= 0 {
		o.RetryBase = time.Second
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 5 * time.Minute
	}
	if o.HandleTimeout <= 0 {
		o.HandleTimeout = 10 * time.Minute
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 20 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Worker runs the consume loop of one durable consumer.
type Worker struct {
	name     string
	consumer jetstream.Consumer
	js       jetstream.JetStream
	handler  Handler
	opts     ConsumerOptions
	held     *heldCounts
}

// NewWorker returns a Worker that feeds consumer's messages to handler. name labels metrics,
// logs and dead letters; it is usually the durable name.
func NewWorker(js jetstream.JetStream, consumer jetstream.Consumer, name string, handler Handler, opts ConsumerOptions) (*Worker, error) {
	if opts.Issues == nil {
		return nil, errors.New("bus: ConsumerOptions.Issues is required")
	}
	if !tokenPattern.MatchString(name) {
		return nil, fmt.Errorf("bus: invalid worker name %q", name)
	}
	return &Worker{name: name, consumer: consumer, js: js, handler: handler, opts: opts.withDefaults(), held: &heldCounts{js: js, consumer: consumer}}, nil
}

// Run consumes until ctx is done, then lets the handlers in flight finish (at most
// DrainTimeout from the moment ctx is done; unfinished ones are redelivered elsewhere) and
// returns nil.
//
// It fetches only as many messages as it has free handlers, so no message waits in a client
// buffer without in-progress signals (where its ack wait would run out and it would be delivered
// twice), and nothing is taken in after a shutdown began.
func (w *Worker) Run(ctx context.Context) error {
	// Handlers run on a context that outlives ctx, so a shutdown lets them finish; it is
	// cancelled only when the drain times out.
	handleCtx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHandlers()
	sem := make(chan struct{}, w.opts.Concurrency)
	var wg sync.WaitGroup
	var runErr error
	failures := 0
	for ctx.Err() == nil {
		// Wait for one free handler, then take every other free one.
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		free := 1
	take:
		for free < w.opts.Concurrency {
			select {
			case sem <- struct{}{}:
				free++
			default:
				break take
			}
		}
		fetchCtx, cancelFetch := context.WithTimeout(ctx, 5*time.Second)
		batch, err := w.consumer.Fetch(free, jetstream.FetchContext(fetchCtx))
		got := 0
		if err == nil {
			for raw := range batch.Messages() {
				got++
				wg.Go(func() {
					defer func() { <-sem }()
					w.handle(handleCtx, raw)
				})
			}
			err = batch.Error()
		}
		cancelFetch()
		for range free - got {
			<-sem
		}
		switch {
		case err == nil || errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil:
			failures = 0
		case errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound):
			runErr = fmt.Errorf("consume %s: %w", w.name, err)
			w.opts.Logger.Error("consumer gone; stopping", "consumer", w.name, "error", err)
			ctx = canceledContext()
		default:
			// NATS down or a leader election: back off, the client reconnects by itself.
			failures++
			w.opts.Logger.Warn("fetch failed; retrying", "consumer", w.name, "error", err)
			select {
			case <-ctx.Done():
			case <-time.After(min(time.Duration(failures)*200*time.Millisecond, 5*time.Second)):
			}
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(w.opts.DrainTimeout):
		w.opts.Logger.Warn("drain timed out; unfinished messages will be redelivered", "consumer", w.name)
		cancelHandlers()
		<-done
	}
	return runErr
}

func canceledContext() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func (w *Worker) handle(ctx context.Context, raw jetstream.Msg) {
	meta, err := raw.Metadata()
	if err != nil {
		// Not a JetStream delivery: nothing to ack, nothing to redeliver.
		w.opts.Logger.Error("message without metadata", "consumer", w.name, "error", err)
		return
	}
	m := &Msg{
		Subject:  raw.Subject(),
		Data:     raw.Data(),
		Header:   raw.Headers(),
		Tenant:   TenantOf(raw.Subject()),
		MsgID:    raw.Headers().Get(jetstream.MsgIDHeader),
		Delivery: meta.NumDelivered,
		raw:      raw,
	}
	ctx = telemetry.WithAttrs(telemetry.WithTenant(ctx, m.Tenant),
		slog.String("subject", m.Subject), slog.String("msg_id", m.MsgID),
		slog.Uint64("stream_seq", meta.Sequence.Stream), slog.Uint64("delivery", m.Delivery))
	log := w.opts.Logger

	key := heldKey(w.name, meta)
	if m.Delivery > uint64(w.opts.MaxDeliver) {
		attempt, err := w.attempt(ctx, m, key)
		if err != nil {
			// Whether earlier deliveries were held is unknown for now: decide later.
			log.WarnContext(ctx, "read held deliveries failed; will retry", "error", err)
			_ = raw.NakWithDelay(w.opts.RetryBase)
			handledTotal.WithLabelValues(w.name, "retry").Inc()
			return
		}
		if attempt > uint64(w.opts.MaxDeliver) {
			// The previous, last allowed attempt never finished: its worker died.
			w.deadLetter(ctx, m, meta, "worker stopped while handling the last allowed delivery")
			return
		}
	}

	inFlight.WithLabelValues(w.name).Inc()
	defer inFlight.WithLabelValues(w.name).Dec()
	start := time.Now()
	herr := w.runHandler(ctx, m)
	handleSeconds.WithLabelValues(w.name).Observe(time.Since(start).Seconds())

	var perm *permanentError
	var held *deferredError
	switch {
	case herr == nil:
		if err := raw.DoubleAck(ctx); err != nil {
			// The work is done and idempotent; a redelivery finds nothing to change.
			log.WarnContext(ctx, "ack failed", "error", err)
		}
		handledTotal.WithLabelValues(w.name, "ack").Inc()
	case errors.As(herr, &held):
		w.hold(ctx, m, key, held)
	case errors.As(herr, &perm):
		w.terminate(ctx, m, perm)
	case ctx.Err() != nil:
		// Abandoned by a shutdown whose drain timed out, not failed: another worker takes it
		// over at once (an import resumes where it stopped).
		log.InfoContext(context.WithoutCancel(ctx), "handler stopped by shutdown; redelivered", "error", herr)
		if err := raw.Nak(); err != nil {
			log.WarnContext(context.WithoutCancel(ctx), "nak failed; redelivery after ack wait", "error", err)
		}
		handledTotal.WithLabelValues(w.name, "retry").Inc()
	default:
		attempt := m.Delivery
		if m.Delivery >= uint64(w.opts.MaxDeliver) {
			var err error
			if attempt, err = w.attempt(ctx, m, key); err != nil {
				// Unknown whether this was the last attempt: never dead-letter on a guess.
				log.WarnContext(ctx, "read held deliveries failed", "error", err)
				attempt = uint64(w.opts.MaxDeliver) - 1
			}
		}
		if attempt >= uint64(w.opts.MaxDeliver) {
			w.deadLetter(ctx, m, meta, herr.Error())
			return
		}
		delay := w.retryDelay(herr, attempt)
		log.WarnContext(ctx, "handler failed; will retry", "error", herr, "retry_in", delay.String())
		if err := raw.NakWithDelay(delay); err != nil {
			log.WarnContext(ctx, "nak failed; redelivery after ack wait", "error", err)
		}
		handledTotal.WithLabelValues(w.name, "retry").Inc()
	}
}

// attempt is the number of the current delivery not counting the held ones: the deliveries
// that were real attempts. Below MaxDeliver deliveries it is not looked up (it cannot be more).
func (w *Worker) attempt(ctx context.Context, m *Msg, key string) (uint64, error) {
	if m.Delivery < uint64(w.opts.MaxDeliver) {
		return m.Delivery, nil
	}
	n, err := w.held.count(ctx, key)
	if err != nil {
		return 0, err
	}
	if n >= m.Delivery {
		return 1, nil
	}
	return m.Delivery - n, nil
}

// hold naks a deferred message with its delay and counts the delivery as held, so it does not
// count towards MaxDeliver.
func (w *Worker) hold(ctx context.Context, m *Msg, key string, d *deferredError) {
	log := w.opts.Logger
	if err := w.held.add(ctx, key); err != nil {
		// The message is held all the same; this one delivery may count as an attempt.
		log.WarnContext(ctx, "count held delivery failed", "error", err)
	}
	delay := d.after
	if delay <= 0 {
		delay = w.opts.RetryBase
	}
	log.DebugContext(ctx, "message held", "reason", d.err.Error(), "retry_in", delay.String())
	if err := m.raw.NakWithDelay(delay); err != nil {
		log.WarnContext(ctx, "nak failed; redelivery after ack wait", "error", err)
	}
	handledTotal.WithLabelValues(w.name, "deferred").Inc()
}

// HeldBucket is the JetStream key-value bucket in which the consume loops count the held
// (Deferred) deliveries of each message, keyed by consumer, stream and stream sequence. An entry
// expires a while after the last held delivery of its message, when the message has long been
// handled or has expired from its stream.
const HeldBucket = "koppel_held"

// heldTTL outlives the work streams' maximum age (7 days), so a message is never older than the
// count of its held deliveries.
const heldTTL = 8 * 24 * time.Hour

// heldCounts counts held deliveries in HeldBucket. The bucket is opened (or created with the
// replicas of the consumer's stream) on first use, so a worker whose messages are never held
// never touches it.
type heldCounts struct {
	js       jetstream.JetStream
	consumer jetstream.Consumer

	mu sync.Mutex
	kv jetstream.KeyValue
}

func heldKey(consumer string, meta *jetstream.MsgMetadata) string {
	return consumer + "." + meta.Stream + "." + strconv.FormatUint(meta.Sequence.Stream, 10)
}

func (h *heldCounts) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.kv != nil {
		return h.kv, nil
	}
	kv, err := h.js.KeyValue(ctx, HeldBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		replicas := 1
		if info := h.consumer.CachedInfo(); info != nil {
			if s, serr := h.js.Stream(ctx, info.Stream); serr == nil {
				replicas = s.CachedInfo().Config.Replicas
			}
		}
		kv, err = h.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: HeldBucket,
			Description: "Held (deferred) deliveries per message, which do not count towards MaxDeliver",
			History:     1, TTL: heldTTL, Storage: jetstream.FileStorage, Replicas: max(replicas, 1)})
	}
	if err != nil {
		return nil, fmt.Errorf("held deliveries bucket: %w", err)
	}
	h.kv = kv
	return kv, nil
}

func (h *heldCounts) count(ctx context.Context, key string) (uint64, error) {
	kv, err := h.bucket(ctx)
	if err != nil {
		return 0, err
	}
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("held deliveries of %s: %w", key, err)
	}
	n, err := strconv.ParseUint(string(e.Value()), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("held deliveries of %s: %w", key, err)
	}
	return n, nil
}

// add counts one more held delivery. A message has one delivery outstanding at a time, so
// read-then-write does not race with itself.
func (h *heldCounts) add(ctx context.Context, key string) error {
	n, err := h.count(ctx, key)
	if err != nil {
		return err
	}
	kv, err := h.bucket(ctx)
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, key, []byte(strconv.FormatUint(n+1, 10))); err != nil {
		return fmt.Errorf("count held delivery of %s: %w", key, err)
	}
	return nil
}

// runHandler calls the handler with a timeout, keeping the message alive while it runs.
func (w *Worker) runHandler(ctx context.Context, m *Msg) (err error) {
	ctx, cancel := context.WithTimeout(ctx, w.opts.HandleTimeout)
	defer cancel()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(w.opts.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				_ = m.raw.InProgress()
			}
		}
	}()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panic: %v", r)
		}
	}()
	return w.handler(ctx, m)
}

// retryDelay is the delay before the next attempt after a failed attempt (counted from 1).
func (w *Worker) retryDelay(err error, attempt uint64) time.Duration {
	var re *retryError
	if errors.As(err, &re) && re.after > 0 {
		return min(re.after, w.opts.RetryMax)
	}
	d := w.opts.RetryBase
	for i := uint64(1); i < attempt && d < w.opts.RetryMax; i++ {
		d *= 2
	}
	d = min(d, w.opts.RetryMax)
	// Jitter in [d/2, d] spreads retries of a burst that failed together.
	return d/2 + rand.N(d/2+1)
}

func (w *Worker) terminate(ctx context.Context, m *Msg, perm *permanentError) {
	log := w.opts.Logger
	issue := perm.issue
	if issue == nil {
		issue = &mappingv1.Issue{Key: w.name + ":" + m.Subject, Code: "permanent_failure", Message: perm.err.Error()}
	}
	if err := w.opts.Issues.RecordIssue(ctx, m.Tenant, issue); err != nil {
		// Without the issue the tenant would never learn of the failure: try again later.
		log.WarnContext(ctx, "record issue failed; will retry", "error", err)
		_ = m.raw.NakWithDelay(w.retryDelay(err, m.Delivery))
		handledTotal.WithLabelValues(w.name, "retry").Inc()
		return
	}
	log.WarnContext(ctx, "permanent failure; issue recorded", "error", perm.err, "issue", issue.GetKey())
	if err := m.raw.TermWithReason(truncate(perm.err.Error(), 200)); err != nil {
		log.WarnContext(ctx, "term failed", "error", err)
	}
	handledTotal.WithLabelValues(w.name, "terminated").Inc()
}

func (w *Worker) deadLetter(ctx context.Context, m *Msg, meta *jetstream.MsgMetadata, reason string) {
	log := w.opts.Logger
	subject, _ := DeadLetterSubject(m.Tenant, w.name)
	if !ValidTenantID(m.Tenant) {
		subject, _ = DeadLetterSubject("", w.name)
	}
	dl := &nats.Msg{Subject: subject, Data: m.Data, Header: nats.Header{}}
	for k, v := range m.Header {
		dl.Header[k] = v
	}
	dl.Header.Del(jetstream.MsgIDHeader)
	dl.Header.Set(HeaderDLQReason, truncate(reason, 1000))
	dl.Header.Set(HeaderDLQSubject, m.Subject)
	dl.Header.Set(HeaderDLQStream, meta.Stream)
	dl.Header.Set(HeaderDLQSequence, strconv.FormatUint(meta.Sequence.Stream, 10))
	dl.Header.Set(HeaderDLQDeliveries, strconv.FormatUint(m.Delivery, 10))
	dl.Header.Set(HeaderDLQConsumer, w.name)
	dl.Header.Set(HeaderDLQMsgID, m.MsgID)
	id := fmt.Sprintf("dlq:%s:%s:%d", w.name, meta.Stream, meta.Sequence.Stream)
	ack, err := w.js.PublishMsg(ctx, dl, jetstream.WithMsgID(id))
	if err != nil {
		log.ErrorContext(ctx, "dead-letter publish failed; will retry", "error", err)
		_ = m.raw.NakWithDelay(w.opts.RetryBase)
		handledTotal.WithLabelValues(w.name, "retry").Inc()
		return
	}
	log.ErrorContext(ctx, "message dead-lettered", "reason", reason, "dlq_subject", subject, "dlq_seq", ack.Sequence)
	if ack.Duplicate {
		// Dead-lettered before, by a delivery whose issue could not be recorded: that dead
		// letter's reason is the real one, not this delivery's.
		if stored, err := w.storedReason(ctx, ack.Sequence); err == nil && stored != "" {
			reason = stored
		}
	}
	if ValidTenantID(m.Tenant) {
		issue := DeadLetterIssue(m, w.name, ack.Sequence, reason, w.opts.Describe)
		if err := w.opts.Issues.RecordIssue(ctx, m.Tenant, issue); err != nil {
			// Nothing dead-letters without an issue: try again. The redelivery dead-letters it
			// again, which JetStream de-duplicates by the dead letter's message ID.
			log.WarnContext(ctx, "record dead-letter issue failed; will retry", "error", err)
			_ = m.raw.NakWithDelay(w.retryDelay(err, 1))
			handledTotal.WithLabelValues(w.name, "retry").Inc()
			return
		}
	}
	if err := m.raw.TermWithReason("dead-lettered"); err != nil {
		log.WarnContext(ctx, "term failed", "error", err)
	}
	handledTotal.WithLabelValues(w.name, "dead_lettered").Inc()
}

func (w *Worker) storedReason(ctx context.Context, seq uint64) (string, error) {
	s, err := w.js.Stream(ctx, StreamDeadLetters)
	if err != nil {
		return "", err
	}
	raw, err := s.GetMsg(ctx, seq)
	if err != nil {
		return "", err
	}
	return raw.Header.Get(HeaderDLQReason), nil
}

// DeadLetterIssue is the issue recorded on a tenant when consumer dead-letters m as the dead
// letter seq: what the message was about (from describe, when given), why it failed, and how to
// replay it. Its key is one per dead letter unless describe gives one.
func DeadLetterIssue(m *Msg, consumer string, seq uint64, reason string, describe DeadLetterDescriber) *mappingv1.Issue {
	s := strconv.FormatUint(seq, 10)
	issue := &mappingv1.Issue{}
	if describe != nil {
		if d := describe(m); d != nil {
			issue = proto.Clone(d).(*mappingv1.Issue)
		}
	}
	if issue.Key == "" {
		issue.Key = "deadletter/" + consumer + "/" + s
	}
	issue.Code = IssueDeadLettered
	what := "A message on " + m.Subject
	if issue.Message != "" {
		what = issue.Message
	}
	issue.Message = truncateText(fmt.Sprintf("%s could not be handled after %d deliveries and was set aside as dead letter %s: %s",
		what, m.Delivery, s, reason), 1900)
	replay := fmt.Sprintf("Fix the cause, then replay it: koppelctl deadletters replay %s.", s)
	if issue.Action != "" {
		replay = issue.Action + " Or replay the message: koppelctl deadletters replay " + s + "."
	}
	issue.Action = truncateText(replay, 1900)
	if issue.Details == nil {
		issue.Details = map[string]string{}
	}
	issue.Details[DetailDeadLetter] = s
	issue.Details["consumer"] = consumer
	issue.Details["subject"] = m.Subject
	return issue
}

// truncateText cuts s to at most n bytes on a character boundary (issues are protobuf strings,
// which must stay valid UTF-8).
func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
