package server_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/mapping"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"google.golang.org/grpc"
)

// countingClient counts the lease requests that reach the real mapping service.
type countingClient struct {
	mappingv1.MappingServiceClient
	acquires atomic.Int32
}

func (c *countingClient) AcquireLease(ctx context.Context, req *mappingv1.AcquireLeaseRequest, opts ...grpc.CallOption) (*mappingv1.AcquireLeaseResponse, error) {
	c.acquires.Add(1)
	return c.MappingServiceClient.AcquireLease(ctx, req, opts...)
}

// The client's lease helper against the real service: a lease released within the wait is taken
// (with a higher fencing token), one held longer asks for a retry, backing off meanwhile.
func TestLeasesWaitForAShortHolder(t *testing.T) {
	h := newHarness(t)
	h.tenant(t, "acme")
	a := mapping.Leases{Client: h.client, Holder: "a"}
	b := mapping.Leases{Client: h.client, Holder: "b", Wait: 2 * time.Second}
	first, err := a.Acquire(ctx, "acme", "tribe/1", "relation tribe/1")
	if err != nil {
		t.Fatal(err)
	}
	go func() { time.Sleep(100 * time.Millisecond); first.Release() }()
	second, err := b.Acquire(ctx, "acme", "tribe/1", "relation tribe/1")
	if err != nil {
		t.Fatalf("a lease released within the wait was not taken: %v", err)
	}
	if second.FencingToken <= first.FencingToken {
		t.Errorf("fencing token %d after %d", second.FencingToken, first.FencingToken)
	}
	second.Release()
}

func TestLeasesHeldTooLongAskForARetry(t *testing.T) {
	h := newHarness(t)
	h.tenant(t, "acme")
	if _, err := (mapping.Leases{Client: h.client, Holder: "a"}).Acquire(ctx, "acme", "tribe/1", "x"); err != nil {
		t.Fatal(err)
	}
	counted := &countingClient{MappingServiceClient: h.client}
	b := mapping.Leases{Client: counted, Holder: "b", Wait: 200 * time.Millisecond}
	_, err := b.Acquire(ctx, "acme", "tribe/1", "relation tribe/1")
	if d, ok := bus.RetryDelay(err); !ok || d <= 0 || !errors.Is(err, mapping.ErrLeaseBusy) {
		t.Fatalf("want a busy lease with a retry delay, got %v", err)
	}
	if n := counted.acquires.Load(); n < 2 || n > 10 {
		t.Errorf("%d attempts within 200ms; want a few, backing off", n)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Acquire(cancelled, "acme", "tribe/1", "x"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled wait: %v", err)
	}
}
