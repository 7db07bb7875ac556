package mapping

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/koppel/koppel/pkg/bus"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Leases take the leases that serialise the writers of one record across every replica.
type Leases struct {
	Client mappingv1.MappingServiceClient
	// Holder names this process (deps.HolderName).
	Holder string
	// TTL bounds how long a dead worker keeps a record locked. Default 30 s.
	TTL time.Duration
	// Wait is how long Acquire waits for a lease another worker holds before it gives up. One
	// record's sync takes milliseconds, so most contention (such as the webhook that echoes a
	// write still in progress) is over within it; giving up at once would send the whole
	// message, or a whole run, back to the bus. Default 3 s.
	Wait time.Duration
}

// ErrLeaseBusy is wrapped in the error of an Acquire that found the lease held by another worker
// for longer than it waits.
var ErrLeaseBusy = errors.New("lease held by another worker")

// Lease is a held lease.
type Lease struct {
	// FencingToken grows with every acquisition of the name.
	FencingToken int64
	release      func()
}

// Release gives the lease up (best effort: it expires anyway).
func (l *Lease) Release() { l.release() }

// Acquire takes the lease name of a tenant, waiting up to Wait while another worker holds it.
// When it stays taken, the error wraps ErrLeaseBusy and asks the bus for a retry after a short
// delay; what is busy is described by what ("relation tribe/123").
func (ls Leases) Acquire(ctx context.Context, tenant, name, what string) (*Lease, error) {
	ttl, wait := ls.TTL, ls.Wait
	if ttl <= 0 {
		ttl = 30 * time.Second
	}
	if wait <= 0 {
		wait = 3 * time.Second
	}
	deadline := time.Now().Add(wait)
	pause := 25 * time.Millisecond
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		res, err := ls.Client.AcquireLease(ctx, &mappingv1.AcquireLeaseRequest{TenantId: tenant, Name: name, Holder: ls.Holder, TtlMs: ttl.Milliseconds()})
		if err == nil {
			token := res.GetFencingToken()
			return &Lease{FencingToken: token, release: func() {
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer cancel()
				_, _ = ls.Client.ReleaseLease(rctx, &mappingv1.ReleaseLeaseRequest{TenantId: tenant, Name: name, Holder: ls.Holder, FencingToken: token})
			}}, nil
		}
		if status.Code(err) != codes.FailedPrecondition {
			return nil, fmt.Errorf("acquire lease %s: %w", name, err)
		}
		if time.Now().Add(pause).After(deadline) {
			return nil, bus.RetryAfter(fmt.Errorf("%s is being synced by another worker: %w", what, ErrLeaseBusy), 2*time.Second)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pause):
		}
		pause = min(2*pause, 400*time.Millisecond)
	}
}
