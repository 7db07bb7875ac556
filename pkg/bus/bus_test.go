package bus_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/bustest"
	eventsv1 "github.com/koppel/koppel/proto/koppel/events/v1"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/nats-io/nats.go/jetstream"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type env struct {
	js  jetstream.JetStream
	pub *bus.Publisher
}

func newEnv(t testing.TB) *env {
	t.Helper()
	b := bustest.Start(t)
	return &env{js: b.JS, pub: bus.NewPublisher(b.JS)}
}

func (e *env) publish(t testing.TB, tenant, entity, id string) {
	t.Helper()
	subj, err := bus.TribeEventSubject(tenant, entity)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.pub.Publish(context.Background(), subj, &eventsv1.TribeChange{TenantId: tenant, EntityId: id}, "evt-"+id); err != nil {
		t.Fatal(err)
	}
}

func (e *env) consumer(t testing.TB, spec bus.ConsumerSpec) jetstream.Consumer {
	t.Helper()
	spec.Stream = bus.StreamTribeEvents
	if spec.Durable == "" {
		spec.Durable = "test"
	}
	spec.FilterSubjects = []string{"tribe.evt.*.*"}
	c, err := bus.EnsureConsumer(context.Background(), e.js, spec)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// issues is an in-memory IssueRecorder standing in for the mapping service.
type issues struct {
	mu   sync.Mutex
	got  []*mappingv1.Issue
	fail atomic.Bool
}

func (r *issues) RecordIssue(_ context.Context, _ string, issue *mappingv1.Issue) error {
	if r.fail.Load() {
		return errors.New("mapping unavailable")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, issue)
	return nil
}

func (r *issues) count() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.got) }

func startWorker(t testing.TB, e *env, c jetstream.Consumer, h bus.Handler, opts bus.ConsumerOptions) (stop func() error) {
	t.Helper()
	if opts.Issues == nil {
		opts.Issues = &issues{}
	}
	opts.Logger = quiet
	if opts.RetryBase == 0 {
		opts.RetryBase = 10 * time.Millisecond
	}
	w, err := bus.NewWorker(e.js, c, "test", h, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error { once.Do(func() { cancel(); runErr = <-errc }); return runErr }
	t.Cleanup(func() { _ = stop() })
	return stop
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func settled(t *testing.T, c jetstream.Consumer) func() bool {
	return func() bool {
		info, err := c.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return info.NumPending == 0 && info.NumAckPending == 0 && info.NumRedelivered == 0
	}
}

func TestEnsureStreamsIsIdempotent(t *testing.T) {
	e := newEnv(t)
	for range 2 {
		if err := bus.EnsureStreams(context.Background(), e.js, bus.StreamOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{bus.StreamTribeEvents, bus.StreamSyncCommands, bus.StreamDeadLetters} {
		if _, err := e.js.Stream(context.Background(), name); err != nil {
			t.Errorf("stream %s: %v", name, err)
		}
	}
}

func TestPublishDeduplicatesByMessageID(t *testing.T) {
	e := newEnv(t)
	subj, _ := bus.SyncCommandSubject("acme", "relation")
	// Interest retention keeps messages only while a consumer is bound.
	if _, err := bus.EnsureConsumer(context.Background(), e.js, bus.ConsumerSpec{Stream: bus.StreamSyncCommands, Durable: "c", FilterSubjects: []string{"sync.cmd.*.*"}}); err != nil {
		t.Fatal(err)
	}
	var dups int
	for range 5 {
		dup, err := e.pub.Publish(context.Background(), subj, &eventsv1.SyncCommand{TenantId: "acme"}, "slot-1")
		if err != nil {
			t.Fatal(err)
		}
		if dup {
			dups++
		}
	}
	if dups != 4 {
		t.Fatalf("want 4 duplicates of 5 publishes, got %d", dups)
	}
	s, _ := e.js.Stream(context.Background(), bus.StreamSyncCommands)
	info, _ := s.Info(context.Background())
	if info.State.Msgs != 1 {
		t.Fatalf("want 1 stored message, got %d", info.State.Msgs)
	}
	if _, err := e.pub.Publish(context.Background(), subj, &eventsv1.SyncCommand{}, ""); !errors.Is(err, bus.ErrNoMessageID) {
		t.Fatalf("publish without ID: got %v", err)
	}
}

func TestAckOnSuccess(t *testing.T) {
	e := newEnv(t)
	c := e.consumer(t, bus.ConsumerSpec{})
	var calls atomic.Int32
	var gotTenant atomic.Value
	startWorker(t, e, c, func(_ context.Context, m *bus.Msg) error {
		calls.Add(1)
		gotTenant.Store(m.Tenant)
		return nil
	}, bus.ConsumerOptions{})
	e.publish(t, "acme", "Relation_Organization", "1")
	waitFor(t, "the handler", func() bool { return calls.Load() == 1 })
	waitFor(t, "the ack", settled(t, c))
	if gotTenant.Load() != "acme" {
		t.Fatalf("tenant = %v", gotTenant.Load())
	}
}

func TestRetryHonoursDelay(t *testing.T) {
	e := newEnv(t)
	c := e.consumer(t, bus.ConsumerSpec{})
	var mu sync.Mutex
	var times []time.Time
	const after = 300 * time.Millisecond
	startWorker(t, e, c, func(_ context.Context, m *bus.Msg) error {
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
		if m.Delivery == 1 {
			return bus.RetryAfter(errors.New("429 from e-Boekhouden"), after)
		}
		return nil
	}, bus.ConsumerOptions{})
	e.publish(t, "acme", "Relation_Organization", "1")
	waitFor(t, "the second delivery", func() bool { mu.Lock(); defer mu.Unlock(); return len(times) == 2 })
	waitFor(t, "the ack", func() bool {
		info, _ := c.Info(context.Background())
		return info.NumPending == 0 && info.NumAckPending == 0
	})
	if gap := times[1].Sub(times[0]); gap < after {
		t.Fatalf("redelivered after %s, before the requested %s", gap, after)
	}
}

func TestPermanentFailureRecordsIssueAndTerminates(t *testing.T) {
	e := newEnv(t)
	c := e.consumer(t, bus.ConsumerSpec{})
	rec := &issues{}
	var calls atomic.Int32
	startWorker(t, e, c, func(context.Context, *bus.Msg) error {
		calls.Add(1)
		return bus.Permanent(errors.New("no debtor number"), &mappingv1.Issue{Key: "org/1:no_debtor_number", Code: "no_debtor_number"})
	}, bus.ConsumerOptions{Issues: rec})
	e.publish(t, "acme", "Relation_Organization", "1")
	waitFor(t, "the issue", func() bool { return rec.count() == 1 })
	waitFor(t, "the termination", func() bool {
		info, _ := c.Info(context.Background())
		return info.NumPending == 0 && info.NumAckPending == 0
	})
	if rec.got[0].GetCode() != "no_debtor_number" {
		t.Fatalf("issue = %v", rec.got[0])
	}
	// A second message proves the worker is still going and the first was not redelivered.
	e.publish(t, "acme", "Relation_Organization", "2")
	waitFor(t, "the second issue", func() bool { return rec.count() == 2 })
	if n := calls.Load(); n != 2 {
		t.Fatalf("handler calls = %d, want 2 (no redelivery of a terminated message)", n)
	}
}

func TestPermanentFailureRetriesWhenIssueCannotBeRecorded(t *testing.T) {
	e := newEnv(t)
	c := e.consumer(t, bus.ConsumerSpec{})
	rec := &issues{}
	rec.fail.Store(true)
	var calls atomic.Int32
	startWorker(t, e, c, func(context.Context, *bus.Msg) error {
		if calls.Add(1) == 2 {
			rec.fail.Store(false)
		}
		return bus.Permanent(errors.New("bad VAT mapping"), nil)
	}, bus.ConsumerOptions{Issues: rec})
	e.publish(t, "acme", "Activity_Invoice", "1")
	waitFor(t, "the issue after a retry", func() bool { return rec.count() == 1 })
	if calls.Load() < 2 {
		t.Fatal("the message was not retried while the issue could not be recorded")
	}
}

func TestDeadLetterAfterMaxDeliveriesAndReplay(t *testing.T) {
	e := newEnv(t)
	c := e.consumer(t, bus.ConsumerSpec{MaxDeliver: 3})
	var calls atomic.Int32
	var healthy atomic.Bool
	startWorker(t, e, c, func(context.Context, *bus.Msg) error {
		calls.Add(1)
		if healthy.Load() {
			return nil
		}
		return errors.New("e-Boekhouden 500")
	}, bus.ConsumerOptions{MaxDeliver: 3})
	e.publish(t, "acme", "Relation_Person", "7")

	dlq := bus.NewDeadLetters(e.js, bus.Shards{})
	var letters []bus.DeadLetter
	waitFor(t, "the dead letter", func() bool {
		var err error
		letters, err = dlq.List(context.Background(), "acme", 10)
		if err != nil {
			t.Fatal(err)
		}
		return len(letters) == 1
	})
	dl := letters[0]
	if calls.Load() != 3 || dl.Reason != "e-Boekhouden 500" || dl.OriginalSubject != "tribe.evt.acme.Relation_Person" ||
		dl.Deliveries != 3 || dl.Consumer != "test" || dl.Tenant != "acme" || dl.OriginalMsgID != "evt-7" {
		t.Fatalf("calls=%d dead letter=%+v", calls.Load(), dl)
	}
	if other, _ := dlq.List(context.Background(), "other", 10); len(other) != 0 {
		t.Fatalf("another tenant sees %d dead letters", len(other))
	}

	healthy.Store(true)
	if err := dlq.Replay(context.Background(), dl.Sequence); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the replayed delivery", func() bool { return calls.Load() == 4 })
	if _, err := dlq.Get(context.Background(), dl.Sequence); !errors.Is(err, bus.ErrDeadLetterNotFound) {
		t.Fatalf("replayed dead letter still there: %v", err)
	}
}

func TestRedeliveryWhenWorkerDiesBeforeAck(t *testing.T) {
	e := newEnv(t)
	c := e.consumer(t, bus.ConsumerSpec{AckWait: 500 * time.Millisecond})
	e.publish(t, "acme", "Relation_Organization", "1")

	// A worker takes the message and dies without acking.
	batch, err := c.Fetch(1)
	if err != nil {
		t.Fatal(err)
	}
	for range batch.Messages() {
	}

	deliveries := make(chan uint64, 2)
	startWorker(t, e, c, func(_ context.Context, m *bus.Msg) error {
		deliveries <- m.Delivery
		return nil
	}, bus.ConsumerOptions{AckWait: 500 * time.Millisecond})
	select {
	case d := <-deliveries:
		if d != 2 {
			t.Fatalf("delivery = %d, want 2", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("message was not redelivered")
	}
	waitFor(t, "the ack", func() bool {
		info, _ := c.Info(context.Background())
		return info.NumPending == 0 && info.NumAckPending == 0
	})
}

func TestDeadLetterWhenLastDeliveryDied(t *testing.T) {
	e := newEnv(t)
	c := e.consumer(t, bus.ConsumerSpec{AckWait: 300 * time.Millisecond, MaxDeliver: 1})
	e.publish(t, "acme", "Relation_Organization", "1")
	batch, err := c.Fetch(1)
	if err != nil {
		t.Fatal(err)
	}
	for range batch.Messages() {
	}
	var calls atomic.Int32
	startWorker(t, e, c, func(context.Context, *bus.Msg) error { calls.Add(1); return nil },
		bus.ConsumerOptions{AckWait: 300 * time.Millisecond, MaxDeliver: 1})
	dlq := bus.NewDeadLetters(e.js, bus.Shards{})
	waitFor(t, "the dead letter", func() bool {
		l, _ := dlq.List(context.Background(), "", 10)
		return len(l) == 1
	})
	if calls.Load() != 0 {
		t.Fatal("handler was called for a delivery beyond MaxDeliver")
	}
}

func TestInProgressKeepsLongWorkAlive(t *testing.T) {
	e := newEnv(t)
	const ackWait = 600 * time.Millisecond
	c := e.consumer(t, bus.ConsumerSpec{AckWait: ackWait})
	var calls atomic.Int32
	startWorker(t, e, c, func(ctx context.Context, _ *bus.Msg) error {
		calls.Add(1)
		// Work for three ack waits; without in-progress the message would be redelivered.
		select {
		case <-time.After(3 * ackWait):
		case <-ctx.Done():
		}
		return nil
	}, bus.ConsumerOptions{AckWait: ackWait, Concurrency: 2})
	e.publish(t, "acme", "Relation_Organization", "1")
	waitFor(t, "the ack", func() bool {
		info, _ := c.Info(context.Background())
		return calls.Load() >= 1 && info.NumPending == 0 && info.NumAckPending == 0
	})
	if n := calls.Load(); n != 1 {
		t.Fatalf("long work was delivered %d times", n)
	}
}

func TestGracefulDrainFinishesWorkInFlight(t *testing.T) {
	e := newEnv(t)
	c := e.consumer(t, bus.ConsumerSpec{})
	started := make(chan struct{})
	release := make(chan struct{})
	var finished atomic.Bool
	stop := startWorker(t, e, c, func(context.Context, *bus.Msg) error {
		close(started)
		<-release
		finished.Store(true)
		return nil
	}, bus.ConsumerOptions{})
	e.publish(t, "acme", "Relation_Organization", "1")
	<-started
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	close(release)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if !finished.Load() {
		t.Fatal("shutdown did not wait for the handler")
	}
	waitFor(t, "the ack", settled(t, c))
}

func TestSubjects(t *testing.T) {
	s, err := bus.TribeEventSubject("acme-2", "Relation_Organization")
	if err != nil || s != "tribe.evt.acme-2.Relation_Organization" {
		t.Fatalf("%s %v", s, err)
	}
	if bus.TenantOf(s) != "acme-2" || bus.LastToken(s) != "Relation_Organization" {
		t.Fatal("TenantOf/LastToken")
	}
	for _, bad := range []string{"", "Acme", "a.b", "a*", "-a", "a b"} {
		if _, err := bus.SyncCommandSubject(bad, "relation"); err == nil {
			t.Errorf("tenant %q accepted", bad)
		}
	}
	if _, err := bus.SyncCommandSubject("acme", "rel.ation"); err == nil {
		t.Error("kind with a dot accepted")
	}
}

func TestEnsureTopologyKeepsEarlyMessages(t *testing.T) {
	e := newEnv(t)
	if err := bus.EnsureTopology(context.Background(), e.js, bus.StreamOptions{}, bus.Shards{}); err != nil {
		t.Fatal(err)
	}
	// Published before any worker runs: the consumer already exists, so the message waits.
	e.publish(t, "acme", bus.EntityOrganization, "1")
	c, err := e.js.Consumer(context.Background(), bus.StreamTribeEvents, bus.ConsumerRelationEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := c.Info(context.Background())
	if info.NumPending != 1 {
		t.Fatalf("pending = %d, want 1", info.NumPending)
	}
	other, _ := e.js.Consumer(context.Background(), bus.StreamTribeEvents, bus.ConsumerInvoiceEvents)
	if info, _ := other.Info(context.Background()); info.NumPending != 0 {
		t.Fatalf("invoice consumer sees an organisation event")
	}
}

func TestBusyWorkerTakesNoMessageItCannotStart(t *testing.T) {
	e := newEnv(t)
	const ackWait = 400 * time.Millisecond
	c := e.consumer(t, bus.ConsumerSpec{AckWait: ackWait})
	var mu sync.Mutex
	deliveries := map[string][]uint64{}
	startWorker(t, e, c, func(ctx context.Context, m *bus.Msg) error {
		mu.Lock()
		deliveries[m.MsgID] = append(deliveries[m.MsgID], m.Delivery)
		mu.Unlock()
		// Three ack waits of work: a second message held in a client buffer meanwhile would
		// run out of ack wait and be delivered twice.
		select {
		case <-time.After(3 * ackWait):
		case <-ctx.Done():
		}
		return nil
	}, bus.ConsumerOptions{AckWait: ackWait, Concurrency: 1})
	e.publish(t, "acme", bus.EntityOrganization, "1")
	e.publish(t, "acme", bus.EntityOrganization, "2")
	waitFor(t, "both messages handled and acked", func() bool {
		info, _ := c.Info(context.Background())
		mu.Lock()
		defer mu.Unlock()
		return len(deliveries) == 2 && info.NumPending == 0 && info.NumAckPending == 0
	})
	for id, d := range deliveries {
		if len(d) != 1 {
			t.Errorf("message %s delivered %v", id, d)
		}
	}
}

func TestDrainTimeoutCountsFromShutdown(t *testing.T) {
	e := newEnv(t)
	c := e.consumer(t, bus.ConsumerSpec{})
	started := make(chan struct{}, 4)
	stop := startWorker(t, e, c, func(ctx context.Context, _ *bus.Msg) error {
		started <- struct{}{}
		<-ctx.Done() // never finishes by itself
		return ctx.Err()
	}, bus.ConsumerOptions{Concurrency: 1, DrainTimeout: 300 * time.Millisecond})
	e.publish(t, "acme", bus.EntityOrganization, "1")
	e.publish(t, "acme", bus.EntityOrganization, "2")
	<-started
	begin := time.Now()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(begin); took > 3*time.Second {
		t.Fatalf("shutdown took %s with a 300ms drain timeout", took)
	}
	if n := len(started); n != 0 {
		t.Fatalf("%d handlers started after the shutdown began", n)
	}
}

// A handler abandoned when the drain times out is no failure: its message goes back at once, not
// after a retry backoff, so the worker that takes over (an import resuming) starts right away.
func TestAbandonedAtShutdownIsRedeliveredAtOnce(t *testing.T) {
	e := newEnv(t)
	c := e.consumer(t, bus.ConsumerSpec{})
	started := make(chan struct{}, 1)
	stop := startWorker(t, e, c, func(ctx context.Context, _ *bus.Msg) error {
		started <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}, bus.ConsumerOptions{Concurrency: 1, DrainTimeout: 100 * time.Millisecond, RetryBase: time.Minute, RetryMax: time.Minute})
	e.publish(t, "acme", bus.EntityOrganization, "1")
	<-started
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	var handled atomic.Int32
	startWorker(t, e, c, func(context.Context, *bus.Msg) error { handled.Add(1); return nil }, bus.ConsumerOptions{Concurrency: 1})
	waitFor(t, "the abandoned message handled by the next worker", func() bool { return handled.Load() == 1 })
}
