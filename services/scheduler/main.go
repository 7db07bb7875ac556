// Command scheduler publishes every active tenant's sync commands on the tenant's schedule. Run
// as many replicas as you like: they do not double-fire.
package main

import (
	"context"
	"errors"
	"time"

	"github.com/koppel/koppel/pkg/deps"
	"github.com/koppel/koppel/pkg/service"
)

type config struct {
	service.Common
	deps.Config
	Tick time.Duration `env:"KOPPEL_SCHEDULER_TICK" default:"15s" help:"How often the scheduler looks for due sync commands."`
}

func (c *config) Validate() error {
	if c.Tick < time.Second {
		return errors.New("KOPPEL_SCHEDULER_TICK: at least 1s")
	}
	return c.Config.Validate()
}

func main() {
	var cfg config
	service.Main("scheduler", &cfg, func(ctx context.Context, env *service.Env) error { return realMain(ctx, env, &cfg) })
}

func realMain(ctx context.Context, env *service.Env, cfg *config) error {
	d, err := deps.Connect(ctx, env, cfg.Config)
	if err != nil {
		return err
	}
	defer d.Close()
	s := &Scheduler{mapping: d.Mapping, pub: d.Publisher, log: env.Log, now: time.Now}
	return env.Run(ctx, service.Part{Name: "scheduler", Run: func(ctx context.Context) error { return s.Run(ctx, cfg.Tick) }})
}
