// Package service is the life cycle every koppel binary shares: signals, configuration, logging,
// the ops server, and a group of long-running parts that start together and stop together.
//
// A main function is one line:
//
//	func main() { service.Main("relation", &cfg, realMain) }
//
// Main loads cfg from the environment (exiting with a clear message when a variable is bad),
// builds the logger, cancels the context on SIGTERM or SIGINT, and calls realMain. realMain sets
// up its dependencies and calls Run with its parts; Run returns when the context is cancelled and
// every part has stopped, or as soon as one part fails.
package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/koppel/koppel/pkg/config"
	"github.com/koppel/koppel/pkg/telemetry"
)

// Common is the configuration every service has. Embed it in the service's config struct.
type Common struct {
	LogLevel        string        `env:"KOPPEL_LOG_LEVEL" default:"info" help:"Log level: debug, info, warn or error."`
	OpsAddr         string        `env:"KOPPEL_OPS_ADDR" default:":9090" help:"Address of the ops server (/metrics, /healthz, /readyz)."`
	ShutdownTimeout time.Duration `env:"KOPPEL_SHUTDOWN_TIMEOUT" default:"25s" help:"How long a graceful shutdown may take before work in flight is abandoned (it is redelivered)."`
}

// Configured is implemented by config structs that embed Common.
type Configured interface {
	common() *Common
}

func (c *Common) common() *Common { return c }

// Env is what realMain gets besides its context.
type Env struct {
	Name   string
	Log    *slog.Logger
	Ops    *telemetry.OpsServer
	Common Common
}

// Main runs realMain as the named service and exits the process with its outcome.
//
// Run with the single argument -config-vars, the binary prints its configuration variables as
// JSON and exits, so tooling can check manifests and docs against what the code reads.
func Main[C Configured](name string, cfg C, realMain func(ctx context.Context, env *Env) error) {
	if len(os.Args) == 2 && os.Args[1] == "-config-vars" {
		_ = json.NewEncoder(os.Stdout).Encode(config.Describe(cfg))
		return
	}
	if err := config.FromEnv(cfg); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(2)
	}
	common := *cfg.common()
	log, err := telemetry.NewLogger(os.Stderr, name, common.LogLevel)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: config: KOPPEL_LOG_LEVEL: %v\n", name, err)
		os.Exit(2)
	}
	slog.SetDefault(log)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	ops, err := telemetry.NewOpsServer(common.OpsAddr, log)
	if err != nil {
		log.Error("start ops server", "error", err)
		os.Exit(1)
	}
	log.Info("starting", "ops_addr", ops.Addr())
	if err := realMain(ctx, &Env{Name: name, Log: log, Ops: ops, Common: common}); err != nil {
		log.Error("stopped with error", "error", err)
		os.Exit(1)
	}
	log.Info("stopped")
}

// Part is one long-running piece of a service: a server, a consumer, a ticker. Run blocks until
// ctx is done, then stops cleanly and returns nil; an error means the part failed.
type Part struct {
	Name string
	Run  func(ctx context.Context) error
}

// Run runs the ops server and parts until ctx is done or one of them fails, then cancels the
// rest and waits for them, at most env.Common.ShutdownTimeout. Readiness turns false as soon as
// the shutdown begins.
func (env *Env) Run(ctx context.Context, parts ...Part) error {
	all := append([]Part{{Name: "ops", Run: env.Ops.Run}}, parts...)
	return RunParts(ctx, env.Log, env.Common.ShutdownTimeout, func() { env.Ops.SetStopping() }, all...)
}

// RunParts is Run without an Env: onStop is called once when the shutdown begins.
func RunParts(ctx context.Context, log *slog.Logger, timeout time.Duration, onStop func(), parts ...Part) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for _, p := range parts {
		wg.Go(func() {
			err := p.Run(ctx)
			if err != nil && !errors.Is(err, context.Canceled) {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("%s: %w", p.Name, err)
				}
				mu.Unlock()
				log.Error("part failed", "part", p.Name, "error", err)
			}
			cancel()
		})
	}
	<-ctx.Done()
	if onStop != nil {
		onStop()
	}
	log.Info("shutting down", "timeout", timeout.String())
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	if timeout <= 0 {
		timeout = 25 * time.Second
	}
	select {
	case <-done:
	case <-time.After(timeout):
		return fmt.Errorf("shutdown: parts still running after %s", timeout)
	}
	mu.Lock()
	defer mu.Unlock()
	return firstErr
}
