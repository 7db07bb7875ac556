package deps

import (
	"context"
	"errors"

	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/service"
)

// WorkerConfig is the configuration of a worker service.
type WorkerConfig struct {
	Config
	Concurrency int `env:"KOPPEL_CONCURRENCY" default:"8" help:"Messages a worker process handles at once, per consumer."`
}

// Validate checks what types alone do not.
func (c WorkerConfig) Validate() error {
	if c.Concurrency < 1 || c.Concurrency > 256 {
		return errors.New("KOPPEL_CONCURRENCY: want 1 to 256")
	}
	return c.Config.Validate()
}

// RunWorker connects the service and runs one consume loop per consumer that handlers returns,
// until ctx is done.
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
		p, err := d.Consume(ctx, env, consumer, h, WorkerOptions{Concurrency: cfg.Concurrency})
		if err != nil {
			return err
		}
		parts = append(parts, p)
	}
	return env.Run(ctx, parts...)
}
