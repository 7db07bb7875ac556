// Command scheduler publishes every active tenant's sync commands on the tenant's schedule. Run
// as many replicas as you like: they do not double-fire.
package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/deps"
	"github.com/koppel/koppel/pkg/service"
	"github.com/prometheus/client_golang/prometheus"
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
	// One exporter of JetStream's backlog and dead letters for the whole fleet: the numbers are
	// the server's, the same from every replica (dashboards take the max).
	if err := prometheus.Register(bus.NewLagCollector(d.JS, bus.WorkerConsumers(d.Shards))); err != nil {
		return fmt.Errorf("register lag metrics: %w", err)
	}
	s := &Scheduler{mapping: d.Mapping, pub: d.Publisher, log: env.Log, now: time.Now}
	return env.Run(ctx, service.Part{Name: "scheduler", Run: func(ctx context.Context) error { return s.Run(ctx, cfg.Tick) }})
}
