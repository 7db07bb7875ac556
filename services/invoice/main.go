// Command invoice books Tribe invoices in e-Boekhouden as open items when they are sent.
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
	service.Main("invoice", &cfg, func(ctx context.Context, env *service.Env) error {
		return deps.RunWorker(ctx, env, cfg.WorkerConfig, func(d *deps.Deps) (map[string]bus.Handler, error) {
			clients, err := tenantclients.New(d.Mapping, cfg.Options)
			if err != nil {
				return nil, err
			}
			p := &pusher{mapping: d.Mapping, connect: clients.Both, pub: d.Publisher, holder: deps.HolderName(), log: env.Log}
			d.Describers[bus.ConsumerInvoiceEvents] = describe
			return map[string]bus.Handler{bus.ConsumerInvoiceEvents: flow.ChangeHandler(d.Mapping, p.push)}, nil
		})
	})
}
