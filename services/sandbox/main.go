// Command sandbox serves the simulators of the e-Boekhouden and Tribe APIs, so koppel can run and
// be tried without accounts: e-Boekhouden under /eboekhouden/, Tribe under /tribe/.
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/koppel/koppel/pkg/service"
)

type config struct {
	service.Common
	HTTPAddr             string  `env:"KOPPEL_HTTP_ADDR" default:":8081" help:"Address of the sandbox simulators."`
	Seed                 uint64  `env:"KOPPEL_SANDBOX_SEED" default:"1" help:"Seed of the simulators' random sources (generated data, IDs, probabilistic faults)."`
	EBoekhoudenRateLimit float64 `env:"KOPPEL_SANDBOX_EBOEKHOUDEN_RATE" default:"0" help:"Requests per second per administration the e-Boekhouden simulator allows before answering 429; 0 for no limit."`
}

func main() {
	var cfg config
	service.Main("sandbox", &cfg, func(ctx context.Context, env *service.Env) error { return realMain(ctx, env, &cfg) })
}

func realMain(ctx context.Context, env *service.Env, cfg *config) error {
	mux := http.NewServeMux()
	mountSimulators(mux, cfg, env.Log)
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.HTTPAddr, err)
	}
	env.Log.Info("serving simulators", "addr", ln.Addr().String())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return env.Run(ctx, service.HTTPPart("http", srv, ln))
}
