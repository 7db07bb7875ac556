// Command mapping serves the koppel.mapping.v1 gRPC API on Redis: the one owner of koppel's state.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"

	kconfig "github.com/koppel/koppel/pkg/config"
	"github.com/koppel/koppel/pkg/mapping"
	"github.com/koppel/koppel/pkg/service"
	"github.com/koppel/koppel/pkg/telemetry"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/koppel/koppel/services/mapping/secretbox"
	"github.com/koppel/koppel/services/mapping/server"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

type config struct {
	service.Common
	GRPCAddr       string `env:"KOPPEL_GRPC_ADDR" default:":9000" help:"Address the mapping gRPC API listens on."`
	RedisURL       string `env:"KOPPEL_REDIS_URL" default:"redis://127.0.0.1:6379/0" help:"Redis to keep state in (redis:// or rediss:// URL)."`
	EncryptionKeys string `env:"KOPPEL_ENCRYPTION_KEYS" required:"true" help:"Keys that encrypt tenant secrets: id:base64(32 bytes), comma-separated, the first is used for new secrets."`
	// Who may call (server.Authenticator): callers' tokens, client certificates, or both; one
	// of them is required.
	CallerTokenHashes []string `env:"KOPPEL_GRPC_CALLER_TOKEN_HASHES" help:"Callers' tokens as caller:hex(SHA-256(token)), comma-separated (callers: gateway, scheduler, relation, product, invoice, payment, operator); a caller may be listed twice while its token rotates."`
	TLSCert           string   `env:"KOPPEL_GRPC_TLS_CERT" help:"PEM file of the gRPC server's certificate; set: the API is served over TLS. Read again when it changes."`
	TLSKey            string   `env:"KOPPEL_GRPC_TLS_KEY" help:"PEM file of the key of KOPPEL_GRPC_TLS_CERT."`
	TLSClientCA       string   `env:"KOPPEL_GRPC_TLS_CLIENT_CA" help:"PEM file of the CA that signs callers' client certificates; set: every call needs one (mTLS), whose Common Name is the caller."`
}

// Validate checks what types alone do not.
func (c *config) Validate() error {
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("KOPPEL_GRPC_TLS_CERT and KOPPEL_GRPC_TLS_KEY: set both or neither")
	}
	if c.TLSClientCA != "" && c.TLSCert == "" {
		return errors.New("KOPPEL_GRPC_TLS_CLIENT_CA: client certificates need TLS: set KOPPEL_GRPC_TLS_CERT and KOPPEL_GRPC_TLS_KEY too")
	}
	if len(c.CallerTokenHashes) == 0 && c.TLSClientCA == "" {
		return errors.New("KOPPEL_GRPC_CALLER_TOKEN_HASHES or KOPPEL_GRPC_TLS_CLIENT_CA: the mapping API hands out tenants' secrets, so callers must authenticate: set either or both")
	}
	if _, err := server.NewAuthenticator(c.CallerTokenHashes, c.TLSClientCA != "", slog.Default()); err != nil {
		return fmt.Errorf("KOPPEL_GRPC_CALLER_TOKEN_HASHES: %w", err)
	}
	return nil
}

// serverOptions are the gRPC server's transport security and interceptors: TLS when a
// certificate is set, client certificates required when a client CA is, and every call
// authenticated and checked against its caller's allow-list.
func (c *config) serverOptions(log *slog.Logger) ([]grpc.ServerOption, error) {
	auth, err := server.NewAuthenticator(c.CallerTokenHashes, c.TLSClientCA != "", log)
	if err != nil {
		return nil, fmt.Errorf("config: KOPPEL_GRPC_CALLER_TOKEN_HASHES: %w", err)
	}
	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(server.MetricsInterceptor, auth.Unary),
		grpc.ChainStreamInterceptor(auth.Stream),
	}
	if c.TLSCert == "" {
		return opts, nil
	}
	kp, err := mapping.NewKeyPairFiles(c.TLSCert, c.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("config: KOPPEL_GRPC_TLS_CERT: %w", err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return kp.Certificate() }}
	if c.TLSClientCA != "" {
		pool, err := mapping.LoadCAPool(c.TLSClientCA)
		if err != nil {
			return nil, fmt.Errorf("config: KOPPEL_GRPC_TLS_CLIENT_CA: %w", err)
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return append(opts, grpc.Creds(credentials.NewTLS(tc))), nil
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

	serverOpts, err := cfg.serverOptions(env.Log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.GRPCAddr, err)
	}
	gs := grpc.NewServer(serverOpts...)
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
