// Command product pulls e-Boekhouden products into Tribe on each tenant's schedule (e-Boekhouden
// to Tribe only: nothing is pushed back, and deletes never propagate).
package main

import (
	"context"
	"time"

	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/deps"
	"github.com/koppel/koppel/pkg/flow"
	"github.com/koppel/koppel/pkg/service"
	"github.com/koppel/koppel/pkg/tenantclients"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
)

type config struct {
	service.Common
	deps.WorkerConfig
	tenantclients.Options
	FullEvery time.Duration `env:"KOPPEL_PRODUCT_FULL_EVERY" default:"1h" help:"How often a scheduled product pull reads every product's details, to catch price and VAT changes the list does not show."`
}

func main() {
	var cfg config
	service.Main("product", &cfg, func(ctx context.Context, env *service.Env) error {
		return deps.RunWorker(ctx, env, cfg.WorkerConfig, func(d *deps.Deps) (map[string]bus.Handler, error) {
			clients, err := tenantclients.New(d.Mapping, cfg.Options)
			if err != nil {
				return nil, err
			}
			p := &puller{mapping: d.Mapping, connect: connector(clients), holder: deps.HolderName(), log: env.Log, fullEvery: cfg.FullEvery}
			return map[string]bus.Handler{bus.ConsumerProductCommands: flow.CommandHandler(d.Mapping, p.pull)}, nil
		})
	})
}

// connector gives the ports of a tenant. Look-ups are read afresh on each run, so a unit or VAT
// group added in Tribe is used at the next pull.
func connector(clients *tenantclients.Cache) connectFunc {
	return func(ctx context.Context, t *mappingv1.Tenant) (Books, CRM, error) {
		eb, err := clients.EBoekhouden(ctx, t)
		if err != nil {
			return nil, nil, tenantclients.AsIssue(t, err)
		}
		tr, err := clients.Tribe(ctx, t)
		if err != nil {
			return nil, nil, tenantclients.AsIssue(t, err)
		}
		return &books{c: eb}, crm{c: tr}, nil
	}
}
