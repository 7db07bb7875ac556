package bus_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koppel/koppel/pkg/bus"
)

// pausable is a handler whose tenant can be paused: while paused it holds every message
// (bus.Deferred), else it fails or succeeds as told.
type pausable struct {
	paused     atomic.Bool
	failing    atomic.Bool
	held       atomic.Int32
	attempts   atomic.Int32
	handled    atomic.Int32
	lastHeldAt atomic.Uint64 // delivery number of the last held delivery
}

func (p *pausable) handle(_ context.Context, m *bus.Msg) error {
	if p.paused.Load() {
		p.held.Add(1)
		p.lastHeldAt.Store(m.Delivery)
		return bus.Deferred(errors.New("tenant acme is paused"), 20*time.Millisecond)
	}
	p.attempts.Add(1)
	if p.failing.Load() {
		return errors.New("e-Boekhouden 500")
	}
	p.handled.Add(1)
	return nil
}

// TestHeldMessagePastMaxDeliverIsHandledAfterResume: a message of a paused tenant is held for
// many more deliveries than MaxDeliver, is never dead-lettered for it, and is handled once the
// tenant is resumed.
func TestHeldMessagePastMaxDeliverIsHandledAfterResume(t *testing.T) {
	e := newEnv(t)
	c := e.consumer(t, bus.ConsumerSpec{MaxDeliver: 3})
	p := &pausable{}
	p.paused.Store(true)
	startWorker(t, e, c, p.handle, bus.ConsumerOptions{MaxDeliver: 3})
	e.publish(t, "acme", "Relation_Organization", "1")

	waitFor(t, "three times MaxDeliver held deliveries", func() bool { return p.lastHeldAt.Load() >= 9 })
	dlq := bus.NewDeadLetters(e.js, bus.Shards{})
	if l, err := dlq.List(context.Background(), "", 10); err != nil || len(l) != 0 {
		t.Fatalf("a held message was dead-lettered: %v %v", l, err)
	}
	if p.attempts.Load() != 0 {
		t.Fatalf("the handler worked on a paused tenant's message %d times", p.attempts.Load())
	}

	p.paused.Store(false)
	waitFor(t, "the message handled after the resume", func() bool { return p.handled.Load() == 1 })
	waitFor(t, "the ack", settled(t, c))
	if l, _ := dlq.List(context.Background(), "", 10); len(l) != 0 {
		t.Fatalf("dead letters after the resume: %+v", l)
	}
}

// TestHeldDeliveriesDoNotCountAsAttempts: after a long hold, a message that keeps failing still
// gets exactly MaxDeliver attempts before it is dead-lettered, with the true delivery count.
func TestHeldDeliveriesDoNotCountAsAttempts(t *testing.T) {
	e := newEnv(t)
	c := e.consumer(t, bus.ConsumerSpec{MaxDeliver: 3})
	p := &pausable{}
	p.failing.Store(true)
	startWorker(t, e, c, p.handle, bus.ConsumerOptions{MaxDeliver: 3})
	e.publish(t, "acme", "Relation_Person", "2")

	// One real attempt fails, then the tenant is paused for a while.
	waitFor(t, "the first attempt", func() bool { return p.attempts.Load() >= 1 })
	p.paused.Store(true)
	waitFor(t, "held deliveries past MaxDeliver", func() bool { return p.held.Load() >= 6 })
	p.paused.Store(false)

	dlq := bus.NewDeadLetters(e.js, bus.Shards{})
	var letters []bus.DeadLetter
	waitFor(t, "the dead letter", func() bool {
		letters, _ = dlq.List(context.Background(), "acme", 10)
		return len(letters) == 1
	})
	if got := p.attempts.Load(); got != 3 {
		t.Fatalf("%d attempts before the dead letter, want MaxDeliver (3): held deliveries were counted", got)
	}
	if want := int(3 + p.held.Load()); letters[0].Deliveries != want {
		t.Fatalf("dead letter says %d deliveries, want %d (attempts and held ones)", letters[0].Deliveries, want)
	}
	if _, err := e.js.KeyValue(context.Background(), bus.HeldBucket); err != nil {
		t.Fatalf("held deliveries bucket: %v", err)
	}
}
