// Package mapping is the client side of the mapping service: a connection with health checks,
// and adapters from the generated client to what other packages need (the bus's IssueRecorder).
package mapping

import (
	"context"
	"fmt"
	"time"

	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Client is a connection to the mapping service.
type Client struct {
	mappingv1.MappingServiceClient
	conn   *grpc.ClientConn
	health healthpb.HealthClient
}

// Dial connects to the mapping service at addr (host:port), with the caller's token and TLS
// when given (see auth.go). The connection is lazy: Dial does not fail when the service is down,
// Ready does.
func Dial(addr string, opts ...DialOption) (*Client, error) {
	var dc dialConfig
	for _, o := range opts {
		if err := o(&dc); err != nil {
			return nil, fmt.Errorf("dial mapping %s: %w", addr, err)
		}
	}
	conn, err := grpc.NewClient(addr, append(dc.grpcOptions(), grpc.WithDefaultCallOptions(grpc.WaitForReady(false)))...)
	if err != nil {
		return nil, fmt.Errorf("dial mapping %s: %w", addr, err)
	}
	return &Client{
		MappingServiceClient: mappingv1.NewMappingServiceClient(conn),
		conn:                 conn,
		health:               healthpb.NewHealthClient(conn),
	}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Ready reports whether the mapping service answers and serves (its Redis is up).
func (c *Client) Ready(ctx context.Context) error {
	res, err := c.health.Check(ctx, &healthpb.HealthCheckRequest{Service: mappingv1.MappingService_ServiceDesc.ServiceName})
	if err != nil {
		return fmt.Errorf("mapping health: %w", err)
	}
	if res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("mapping health: %s", res.GetStatus())
	}
	return nil
}

// IssueRecorder records issues through the mapping service; it is a bus.IssueRecorder.
type IssueRecorder struct {
	Client mappingv1.MappingServiceClient
}

// RecordIssue records an issue on a tenant.
func (r IssueRecorder) RecordIssue(ctx context.Context, tenantID string, issue *mappingv1.Issue) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := r.Client.RecordIssue(ctx, &mappingv1.RecordIssueRequest{TenantId: tenantID, Issue: issue})
	if err != nil {
		return fmt.Errorf("record issue: %w", err)
	}
	return nil
}
