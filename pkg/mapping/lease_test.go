package mapping_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/mapping"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// leaseTable answers lease calls the way the mapping service does: one holder per name, a
// FailedPrecondition to anyone else, a token that grows. (The service itself is contract-tested
// against Redis in services/mapping.)
type leaseTable struct {
	mappingv1.MappingServiceClient
	mu      sync.Mutex
	holders map[string]string
	token   int64
	calls   int
}

func (l *leaseTable) AcquireLease(_ context.Context, req *mappingv1.AcquireLeaseRequest, _ ...grpc.CallOption) (*mappingv1.AcquireLeaseResponse, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	if h := l.holders[req.GetName()]; h != "" {
		return nil, status.Error(codes.FailedPrecondition, "held by "+h)
	}
	l.holders[req.GetName()] = req.GetHolder()
	l.token++
	return &mappingv1.AcquireLeaseResponse{FencingToken: l.token}, nil
}

func (l *leaseTable) ReleaseLease(_ context.Context, req *mappingv1.ReleaseLeaseRequest, _ ...grpc.CallOption) (*mappingv1.ReleaseLeaseResponse, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.holders[req.GetName()] == req.GetHolder() {
		delete(l.holders, req.GetName())
	}
	return &mappingv1.ReleaseLeaseResponse{}, nil
}

func TestLeaseWaitsForAShortHolder(t *testing.T) {
	table := &leaseTable{holders: map[string]string{}}
	ctx := context.Background()
	a := mapping.Leases{Client: table, Holder: "a"}
	b := mapping.Leases{Client: table, Holder: "b", Wait: 2 * time.Second}
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

func TestLeaseHeldTooLongAsksForARetry(t *testing.T) {
	table := &leaseTable{holders: map[string]string{"tribe/1": "a"}}
	b := mapping.Leases{Client: table, Holder: "b", Wait: 200 * time.Millisecond}
	_, err := b.Acquire(context.Background(), "acme", "tribe/1", "relation tribe/1")
	if d, ok := bus.RetryDelay(err); !ok || d <= 0 {
		t.Fatalf("want a retry with a delay, got %v", err)
	}
	if table.calls < 2 || table.calls > 10 {
		t.Errorf("%d attempts within 200ms; want a few, backing off", table.calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Acquire(ctx, "acme", "tribe/1", "x"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled wait: %v", err)
	}
}
