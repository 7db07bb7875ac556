// Command product pulls e-Boekhouden products into Tribe on each tenant's schedule.
package main

import (
	"context"

	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/deps"
	"github.com/koppel/koppel/pkg/flow"
	"github.com/koppel/koppel/pkg/service"
)

type config struct {
	service.Common
	deps.WorkerConfig
}

func main() {
	var cfg config
	service.Main("product", &cfg, func(ctx context.Context, env *service.Env) error {
		return deps.RunWorker(ctx, env, cfg.WorkerConfig, func(d *deps.Deps) (map[string]bus.Handler, error) {
			p := &puller{log: env.Log}
			return map[string]bus.Handler{bus.ConsumerProductCommands: flow.CommandHandler(d.Mapping, p.pull)}, nil
		})
	})
}
