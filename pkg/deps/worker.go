package deps

import (
	"context"
	"errors"
	"fmt"

	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/service"
)

// WorkerConfig is the configuration of a worker service.
type WorkerConfig struct {
	Config
	Concurrency int    `env:"KOPPEL_CONCURRENCY" default:"8" help:"Messages a worker process handles at once, per consumer."`
	Shard       string `env:"KOPPEL_SHARD" default:"default" help:"The shard whose consumers this worker process consumes: 'default' or a name in KOPPEL_SHARDS."`
}

// Validate checks what types alone do not.
func (c WorkerConfig) Validate() error {
	if c.Concurrency < 1 || c.Concurrency > 256 {
		return errors.New("KOPPEL_CONCURRENCY: want 1 to 256")
	}
	if err := c.Config.Validate(); err != nil {
		return err
	}
	if shards, _ := bus.ParseShards(c.Shards); !shards.Has(c.Shard) {
		return fmt.Errorf("KOPPEL_SHARD: %q is not a shard of KOPPEL_SHARDS", c.Shard)
	}
	return nil
}

// RunWorker connects the service and runs one consume loop per consumer that handlers returns
// (by base name; the loop consumes that consumer of the configured shard), until ctx is done.
func RunWorker(ctx context.Context, env *service.Env, cfg WorkerConfig, handlers func(d *Deps) (map[string]bus.Handler, error)) error {
	d, err := Connect(ctx, env, cfg.Config)
	if err != nil {
		return err
	}
	defer d.Close()
	hs, err := handlers(d)
	if err != nil {
		return err
	}
	var parts []service.Part
	for consumer, h := range hs {
		p, err := d.Consume(ctx, env, consumer, h, WorkerOptions{Concurrency: cfg.Concurrency, Shard: cfg.Shard})
		if err != nil {
			return err
		}
		parts = append(parts, p)
	}
	return env.Run(ctx, parts...)
}
