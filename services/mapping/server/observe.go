package server

import (
	"context"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

var (
	requestsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "koppel_mapping_requests_total",
		Help: "Mapping API calls, by method and gRPC code.",
	}, []string{"method", "code"})
	requestSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "koppel_mapping_request_seconds",
		Help:    "Mapping API latency, by method.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12),
	}, []string{"method"})
)

// MetricsInterceptor counts and times every call.
func MetricsInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	method := strings.TrimPrefix(info.FullMethod, "/koppel.mapping.v1.MappingService/")
	requestsTotal.WithLabelValues(method, status.Code(err).String()).Inc()
	requestSeconds.WithLabelValues(method).Observe(time.Since(start).Seconds())
	return resp, err
}

// WatchHealth keeps the gRPC health status in step with Redis, so clients and probes see the
// service as not serving while its store is down.
func WatchHealth(ctx context.Context, s *Server, hs *health.Server) error {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		st := healthpb.HealthCheckResponse_SERVING
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		if s.Ping(pctx) != nil {
			st = healthpb.HealthCheckResponse_NOT_SERVING
		}
		cancel()
		hs.SetServingStatus("", st)
		hs.SetServingStatus("koppel.mapping.v1.MappingService", st)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
