// Package deps connects a koppel service to what it depends on: NATS JetStream (with koppel's
// streams and consumers ensured) and the mapping service, with readiness checks for both.
package deps

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/config"
	"github.com/koppel/koppel/pkg/mapping"
	"github.com/koppel/koppel/pkg/service"
	"github.com/koppel/koppel/pkg/telemetry"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config is the dependency configuration shared by the gateway, the scheduler and the workers.
type Config struct {
	NATSURL        string `env:"KOPPEL_NATS_URL" default:"nats://127.0.0.1:4222" help:"NATS server(s), comma-separated URLs."`
	MappingAddr    string `env:"KOPPEL_MAPPING_ADDR" default:"127.0.0.1:9000" help:"Address (host:port) of the mapping service's gRPC API."`
	StreamReplicas int    `env:"KOPPEL_STREAM_REPLICAS" default:"1" help:"Replicas of each JetStream stream: 1 for one NATS server, 3 for a cluster."`
	Shards         string `env:"KOPPEL_SHARDS" default:"" help:"Tenants moved to shards of their own, as name=tenant,tenant;name=tenant (the same on every service); every other tenant is in the shard 'default'."`
	// How this service shows itself to the mapping service (pkg/mapping, auth.go): a token of
	// its own, a client certificate, or both, as the mapping service requires.
	MappingToken         string `env:"KOPPEL_MAPPING_TOKEN" default:"" help:"This service's token for the mapping service's gRPC API (its SHA-256 is in the mapping service's KOPPEL_GRPC_CALLER_TOKEN_HASHES)."`
	MappingTLSCA         string `env:"KOPPEL_MAPPING_TLS_CA" default:"" help:"PEM file of the CA that signed the mapping service's certificate; set: the connection uses TLS."`
	MappingTLSCert       string `env:"KOPPEL_MAPPING_TLS_CERT" default:"" help:"PEM file of this service's client certificate for mTLS (Common Name: the service's name); read again when it changes."`
	MappingTLSKey        string `env:"KOPPEL_MAPPING_TLS_KEY" default:"" help:"PEM file of the key of KOPPEL_MAPPING_TLS_CERT."`
	MappingTLSServerName string `env:"KOPPEL_MAPPING_TLS_SERVER_NAME" default:"" help:"Name the mapping service's certificate must carry; empty: the host of KOPPEL_MAPPING_ADDR."`
	// The stream limits are part of the streams' definitions, which every service writes at
	// start-up: they must be the same on every service.
	EventDedupWindow time.Duration `env:"KOPPEL_EVENT_DEDUP_WINDOW" default:"15m" help:"How long JetStream remembers the message IDs of Tribe events, so a redelivered or replayed webhook is stored once; the same on every service."`
	StreamMaxBytes   int64         `env:"KOPPEL_STREAM_MAX_BYTES" default:"1073741824" help:"Storage limit of each JetStream stream, in bytes; a full stream refuses new messages (webhooks are answered 503, so Tribe delivers them again). The same on every service."`
}

// Validate checks what types alone do not.
func (c Config) Validate() error {
	if c.StreamReplicas < 1 || c.StreamReplicas > 5 {
		return errors.New("KOPPEL_STREAM_REPLICAS: want 1 to 5")
	}
	if c.MappingAddr == "" {
		return errors.New("KOPPEL_MAPPING_ADDR: required")
	}
	// Zero means the default (bus.StreamOptions).
	if c.EventDedupWindow != 0 && c.EventDedupWindow < time.Minute {
		return errors.New("KOPPEL_EVENT_DEDUP_WINDOW: want at least 1m")
	}
	if c.StreamMaxBytes < 0 || c.StreamMaxBytes != 0 && c.StreamMaxBytes < 1<<20 {
		return errors.New("KOPPEL_STREAM_MAX_BYTES: want at least 1048576 (1 MiB)")
	}
	if _, err := bus.ParseShards(c.Shards); err != nil {
		return fmt.Errorf("KOPPEL_SHARDS: %w", err)
	}
	if (c.MappingTLSCert == "") != (c.MappingTLSKey == "") {
		return errors.New("KOPPEL_MAPPING_TLS_CERT and KOPPEL_MAPPING_TLS_KEY: set both or neither")
	}
	if c.MappingTLSCert != "" && c.MappingTLSCA == "" {
		return errors.New("KOPPEL_MAPPING_TLS_CERT: a client certificate needs TLS: set KOPPEL_MAPPING_TLS_CA too")
	}
	return nil
}

// MappingDialOptions are the token and TLS settings of the connection to the mapping service.
func (c Config) MappingDialOptions() []mapping.DialOption {
	opts := []mapping.DialOption{mapping.WithToken(c.MappingToken)}
	if c.MappingTLSCA != "" {
		opts = append(opts, mapping.WithTLS(mapping.TLSFiles{CA: c.MappingTLSCA, Cert: c.MappingTLSCert, Key: c.MappingTLSKey, ServerName: c.MappingTLSServerName}))
	}
	return opts
}

// StreamOptions are the stream definitions' settings of the configuration; a zero setting takes
// the default of bus.StreamOptions.
func (c Config) StreamOptions() bus.StreamOptions {
	return bus.StreamOptions{Replicas: c.StreamReplicas, EventDuplicateWindow: c.EventDedupWindow, MaxBytes: c.StreamMaxBytes}
}

// Deps are the connections of a running service.
type Deps struct {
	NC        *nats.Conn
	JS        jetstream.JetStream
	Publisher *bus.Publisher
	Shards    bus.Shards
	Mapping   *mapping.Client
	// Describers describe the messages of a worker consumer (by base name) for the issue of a
	// dead letter; a worker's handlers func fills them. A consumer without one gets the generic
	// description (its subject).
	Describers map[string]bus.DeadLetterDescriber
	log        *slog.Logger
}

// Connect connects to NATS (retrying in the background while it is down), ensures koppel's
// streams and worker consumers, dials the mapping service, and adds readiness checks for both to
// the service's ops server. Close releases everything.
func Connect(ctx context.Context, env *service.Env, cfg Config) (*Deps, error) {
	log := env.Log
	shards, err := bus.ParseShards(cfg.Shards)
	if err != nil {
		return nil, fmt.Errorf("KOPPEL_SHARDS: %w", err)
	}
	nc, err := nats.Connect(cfg.NATSURL,
		nats.Name("koppel-"+env.Name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("nats disconnected", "error", err) }),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", "url", c.ConnectedUrlRedacted()) }),
	)
	if err != nil {
		// The URL may carry NATS credentials, and the parser quotes it whole.
		return nil, fmt.Errorf("connect nats: %w", config.RedactError(err, cfg.NATSURL))
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if err := ensureTopology(ctx, js, cfg, shards, log); err != nil {
		nc.Close()
		return nil, err
	}
	mc, err := mapping.Dial(cfg.MappingAddr, cfg.MappingDialOptions()...)
	if err != nil {
		nc.Close()
		return nil, err
	}
	env.Ops.AddCheck(telemetry.Check{Name: "nats", Func: func(context.Context) error {
		if s := nc.Status(); s != nats.CONNECTED {
			return fmt.Errorf("nats: %s", s)
		}
		return nil
	}})
	env.Ops.AddCheck(telemetry.Check{Name: "mapping", Func: mc.Ready})
	return &Deps{NC: nc, JS: js, Publisher: bus.NewPublisher(js, bus.WithShards(shards)), Shards: shards, Mapping: mc,
		Describers: map[string]bus.DeadLetterDescriber{}, log: log}, nil
}

// ensureTopology retries while NATS is not reachable yet (all services start together), until
// ctx ends.
func ensureTopology(ctx context.Context, js jetstream.JetStream, cfg Config, shards bus.Shards, log *slog.Logger) error {
	for attempt := 1; ; attempt++ {
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := bus.EnsureTopology(tctx, js, cfg.StreamOptions(), shards)
		cancel()
		if err == nil {
			return nil
		}
		log.Warn("ensure streams failed; retrying", "error", err, "attempt", attempt)
		select {
		case <-ctx.Done():
			return fmt.Errorf("ensure streams: %w", err)
		case <-time.After(min(time.Duration(attempt)*500*time.Millisecond, 5*time.Second)):
		}
	}
}

// Close drains NATS and closes the mapping connection.
func (d *Deps) Close() {
	if err := d.NC.Drain(); err != nil {
		d.NC.Close()
	}
	_ = d.Mapping.Close()
}

// WorkerOptions tune Consume.
type WorkerOptions struct {
	Concurrency int
	// Shard whose consumer to run; "" is the default shard.
	Shard string
}

// Consume returns a part that runs the consume loop of one of the worker consumers (named by its
// base name, such as bus.ConsumerRelationEvents) in the shard of opts, with handler.
func (d *Deps) Consume(ctx context.Context, env *service.Env, base string, handler bus.Handler, opts WorkerOptions) (service.Part, error) {
	if opts.Shard != "" && !d.Shards.Has(opts.Shard) {
		return service.Part{}, fmt.Errorf("shard %q is not in KOPPEL_SHARDS", opts.Shard)
	}
	spec, ok := bus.ShardConsumerSpec(base, opts.Shard)
	if !ok {
		return service.Part{}, fmt.Errorf("unknown consumer %q", base)
	}
	consumer := spec.Durable
	c, err := bus.EnsureConsumer(ctx, d.JS, spec)
	if err != nil {
		return service.Part{}, err
	}
	w, err := bus.NewWorker(d.JS, c, consumer, handler, bus.ConsumerOptions{
		Concurrency:   opts.Concurrency,
		MaxDeliver:    spec.MaxDeliver,
		AckWait:       spec.AckWait,
		HandleTimeout: spec.HandleTimeout,
		DrainTimeout:  env.Common.ShutdownTimeout * 4 / 5,
		Logger:        env.Log,
		Issues:        mapping.IssueRecorder{Client: d.Mapping},
		Describe:      d.Describers[base],
	})
	if err != nil {
		return service.Part{}, err
	}
	return service.Part{Name: "consume " + consumer, Run: w.Run}, nil
}

// HolderName names this process in leases: the host (the pod) and a random suffix, so two
// processes on one host never share a holder.
func HolderName() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%s", host, hex.EncodeToString(b))
}
