// Command mapping serves the koppel.mapping.v1 gRPC API on Redis: the one owner of koppel's state.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"

	kconfig "github.com/koppel/koppel/pkg/config"
	"github.com/koppel/koppel/pkg/service"
	"github.com/koppel/koppel/pkg/telemetry"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/koppel/koppel/services/mapping/secretbox"
	"github.com/koppel/koppel/services/mapping/server"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

type config struct {
	service.Common
	GRPCAddr       string `env:"KOPPEL_GRPC_ADDR" default:":9000" help:"Address the mapping gRPC API listens on."`
	RedisURL       string `env:"KOPPEL_REDIS_URL" default:"redis://127.0.0.1:6379/0" help:"Redis to keep state in (redis:// or rediss:// URL)."`
	EncryptionKeys string `env:"KOPPEL_ENCRYPTION_KEYS" required:"true" help:"Keys that encrypt tenant secrets: id:base64(32 bytes), comma-separated, the first is used for new secrets."`
}

func main() {
	var cfg config
	service.Main("mapping", &cfg, func(ctx context.Context, env *service.Env) error { return realMain(ctx, env, &cfg) })
}

func realMain(ctx context.Context, env *service.Env, cfg *config) error {
	keys, err := secretbox.ParseKeyring(cfg.EncryptionKeys)
	if err != nil {
		return fmt.Errorf("config: KOPPEL_ENCRYPTION_KEYS: %w", err)
	}
	opts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		// The URL may carry Redis' password, and the parser quotes it whole.
		return fmt.Errorf("config: KOPPEL_REDIS_URL: %w", kconfig.RedactError(err, cfg.RedisURL))
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()

	srv := server.New(rdb, keys)
	env.Ops.AddCheck(telemetry.Check{Name: "redis", Func: srv.Ping})
	if err := prometheus.Register(srv.TenantCollector()); err != nil {
		return fmt.Errorf("register tenant metrics: %w", err)
	}

	ln, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.GRPCAddr, err)
	}
	gs := grpc.NewServer(grpc.ChainUnaryInterceptor(server.MetricsInterceptor))
	mappingv1.RegisterMappingServiceServer(gs, srv)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	env.Log.Info("serving gRPC", "addr", ln.Addr().String())

	return env.Run(ctx,
		service.Part{Name: "grpc", Run: func(ctx context.Context) error {
			errc := make(chan error, 1)
			go func() { errc <- gs.Serve(ln) }()
			select {
			case err := <-errc:
				return err
			case <-ctx.Done():
			}
			hs.Shutdown()
			gs.GracefulStop()
			if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				return err
			}
			return nil
		}},
		service.Part{Name: "health", Run: func(ctx context.Context) error {
			return server.WatchHealth(ctx, srv, hs)
		}},
	)
}
