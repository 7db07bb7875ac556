// Command devstack is `make run`: the whole koppel system on one machine, on embedded defaults,
// against the sandbox simulators. It builds every service, starts an embedded NATS JetStream
// server and Redis (REDIS_URL when set, else a local redis-server, else an embedded
// Redis-compatible store), starts every service as its own process, prints where everything is,
// and stops it all cleanly on Ctrl-C.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/koppel/koppel/pkg/config"
	"github.com/koppel/koppel/services/devstack/internal/stack"
)

type devConfig struct {
	RedisURL    string `env:"REDIS_URL" help:"Use this Redis instead of starting one (make run only)."`
	GatewayAddr string `env:"KOPPEL_DEV_GATEWAY_ADDR" default:"127.0.0.1:8080" help:"Gateway (webhook) address of the local stack (make run only)."`
	AdminAddr   string `env:"KOPPEL_DEV_ADMIN_ADDR" default:"127.0.0.1:8082" help:"Admin API and console address of the local stack (make run only)."`
	SandboxAddr string `env:"KOPPEL_DEV_SANDBOX_ADDR" default:"127.0.0.1:8081" help:"Sandbox simulators' address of the local stack (make run only)."`
	AdminToken  string `env:"KOPPEL_DEV_ADMIN_TOKEN" default:"koppel-dev-token" help:"Admin API bearer token of the local stack (make run only)."`
	DataDir     string `env:"KOPPEL_DEV_DATA_DIR" default:".run" help:"Where the local stack keeps NATS and Redis data and logs (make run only)."`
	LogLevel    string `env:"KOPPEL_LOG_LEVEL" default:"info" help:"Log level: debug, info, warn or error."`
	Demo        bool   `env:"KOPPEL_DEV_DEMO" default:"true" help:"Create a demo tenant against the sandbox and start its import (make run only)."`
}

func main() {
	if err := realMain(); err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

func realMain() error {
	var cfg devConfig
	if len(os.Args) == 2 && os.Args[1] == "-config-vars" {
		return json.NewEncoder(os.Stdout).Encode(config.Describe(&cfg))
	}
	if err := config.FromEnv(&cfg); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	root, err := stack.RepoRoot()
	if err != nil {
		return err
	}
	dataDir := cfg.DataDir
	if !filepath.IsAbs(dataDir) {
		dataDir = filepath.Join(root, dataDir)
	}
	binDir := filepath.Join(root, "bin")
	fmt.Println("building services into", binDir, "...")
	if err := stack.Build(ctx, binDir); err != nil {
		return err
	}
	fmt.Println("starting NATS, Redis and every service ...")
	s, err := stack.Start(ctx, stack.Options{
		BinDir: binDir, DataDir: dataDir, RedisURL: cfg.RedisURL,
		GatewayAddr: cfg.GatewayAddr, AdminAddr: cfg.AdminAddr, SandboxAddr: cfg.SandboxAddr, AdminToken: cfg.AdminToken,
		Env:  map[string]string{"KOPPEL_LOG_LEVEL": cfg.LogLevel},
		Logs: os.Stdout,
	})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Println("stopping ...")
		s.Stop()
		fmt.Println("stopped")
	}()
	switch {
	case cfg.RedisURL != "":
		fmt.Println("redis: using REDIS_URL", config.RedactURL(cfg.RedisURL))
	case s.Redis.Embedded:
		fmt.Println("redis: no redis-server found; using an embedded Redis-compatible store (data is not kept)")
	default:
		fmt.Println("redis: started redis-server at", s.Redis.Addr, "with data in", filepath.Join(dataDir, "redis"))
	}
	printEndpoints(s, dataDir)
	if cfg.Demo {
		if tenant, err := seedDemo(ctx, s); err != nil {
			fmt.Println("demo tenant not created (it may exist from an earlier run):", err)
		} else {
			fmt.Printf("demo tenant %q created and activated; its import is running. Watch it in the console at\n  http://%s/console/tenants/%s\nor with koppelctl:\n  KOPPEL_TOKEN=%s KOPPEL_URL=http://%s go run ./services/koppelctl status %s -watch\n\n",
				tenant, s.Addrs["admin"], tenant, s.AdminToken, s.Addrs["admin"], tenant)
		}
	}
	<-ctx.Done()
	return nil
}

func printEndpoints(s *stack.Stack, dataDir string) {
	fmt.Printf(`
koppel is running. Ctrl-C stops everything.

  gateway (Tribe webhooks)        http://%[1]s
  console                         http://%[8]s/console/   (sign in with the admin token)
  admin API                       http://%[8]s/admin/v1
    admin token                   %[2]s
    try                           curl -H 'Authorization: Bearer %[2]s' http://%[8]s/admin/v1/tenants
  sandbox simulators              http://%[3]s
  mapping gRPC                    %[4]s
  NATS                            %[5]s
  Redis                           %[6]s
  logs                            %[7]s
`, s.Addrs["gateway"], s.AdminToken, s.Addrs["sandbox"], s.Addrs["mapping"], s.NATS.URL(), config.RedactURL(s.RedisURL), filepath.Join(dataDir, "logs"), s.Addrs["admin"])
	fmt.Println("\n  ops endpoints (/metrics, /healthz, /readyz):")
	for _, name := range stack.Services {
		fmt.Printf("    %-10s http://%s\n", name, s.OpsAddrs[name])
	}
	fmt.Println()
}
