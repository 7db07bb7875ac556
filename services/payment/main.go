// Command payment brings payments booked in e-Boekhouden to the Tribe invoices they pay, on each
// tenant's schedule.
package main

import (
	"context"

	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/deps"
	"github.com/koppel/koppel/pkg/flow"
	"github.com/koppel/koppel/pkg/service"
	"github.com/koppel/koppel/pkg/tenantclients"
)

type config struct {
	service.Common
	deps.WorkerConfig
	tenantclients.Options
}

func main() {
	var cfg config
	service.Main("payment", &cfg, func(ctx context.Context, env *service.Env) error {
		return deps.RunWorker(ctx, env, cfg.WorkerConfig, func(d *deps.Deps) (map[string]bus.Handler, error) {
			clients, err := tenantclients.New(d.Mapping, cfg.Options)
			if err != nil {
				return nil, err
			}
			p := &puller{mapping: d.Mapping, log: env.Log, connect: clients.Both}
			return map[string]bus.Handler{bus.ConsumerPaymentCommands: flow.CommandHandler(d.Mapping, p.pull)}, nil
		})
	})
}
