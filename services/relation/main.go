// Command relation keeps organisations and persons in sync both ways: the initial import and the
// periodic pull from e-Boekhouden, and the immediate push of Tribe changes.
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
	service.Main("relation", &cfg, func(ctx context.Context, env *service.Env) error {
		return deps.RunWorker(ctx, env, cfg.WorkerConfig, func(d *deps.Deps) map[string]bus.Handler {
			s := &syncer{mapping: d.Mapping, log: env.Log}
			return map[string]bus.Handler{
				bus.ConsumerRelationEvents:   flow.ChangeHandler(d.Mapping, s.push),
				bus.ConsumerRelationCommands: flow.CommandHandler(d.Mapping, s.pull),
			}
		})
	})
}
