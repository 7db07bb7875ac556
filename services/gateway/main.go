// Command gateway is koppel's public edge: it takes Tribe's webhooks, checks them, and turns each
// event into a bus message, answering 2xx only once JetStream stored it. It does nothing else,
// so it is small and scales on webhook traffic alone; the admin API is the admin service.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/deps"
	"github.com/koppel/koppel/pkg/service"
	"github.com/prometheus/client_golang/prometheus"
)

type config struct {
	service.Common
	deps.Config
	HTTPAddr        string `env:"KOPPEL_HTTP_ADDR" default:":8080" help:"Address of the webhook intake."`
	SignatureHeader string `env:"KOPPEL_WEBHOOK_SIGNATURE_HEADER" default:"X-Tribe-Signature" help:"Header that carries the Tribe webhook signature."`
	SignatureScheme string `env:"KOPPEL_WEBHOOK_SIGNATURE_SCHEME" default:"hmac-sha512-base64" help:"How Tribe signs webhooks: hmac-sha512-base64, hmac-sha512-hex or hmac-sha256-base64."`
	// WebhookConcurrency and ReplayWindow are the intake's limits (intakeOptions).
	WebhookConcurrency int           `env:"KOPPEL_WEBHOOK_CONCURRENCY" default:"32" help:"Webhook deliveries the gateway reads and handles at once; beyond it it answers 503 with Retry-After."`
	ReplayWindow       time.Duration `env:"KOPPEL_WEBHOOK_REPLAY_WINDOW" default:"5m" help:"A delivery whose own timestamp is further than this from the gateway's clock is refused (a replay); 0 turns the check off. At most half of KOPPEL_EVENT_DEDUP_WINDOW."`
}

// replayWindow is the intake's ReplayWindow: 0 in the environment means no check.
func (c *config) replayWindow() time.Duration {
	if c.ReplayWindow == 0 {
		return -1
	}
	return c.ReplayWindow
}

func (c *config) Validate() error {
	if c.SignatureHeader == "" {
		return errors.New("KOPPEL_WEBHOOK_SIGNATURE_HEADER: required")
	}
	if c.WebhookConcurrency < 1 || c.WebhookConcurrency > 4096 {
		return errors.New("KOPPEL_WEBHOOK_CONCURRENCY: want 1 to 4096")
	}
	// A replay is caught by its timestamp once outside the window, and by its message ID
	// within it: the de-duplication window must span the whole of it, both sides.
	dedup := c.EventDedupWindow
	if dedup == 0 {
		dedup = bus.DefaultEventDuplicateWindow
	}
	if c.ReplayWindow > 0 && 2*c.ReplayWindow > dedup {
		return fmt.Errorf("KOPPEL_WEBHOOK_REPLAY_WINDOW: %s is more than half of KOPPEL_EVENT_DEDUP_WINDOW (%s), so a replay could arrive after its message ID was forgotten", c.ReplayWindow, dedup)
	}
	return c.Config.Validate()
}

func main() {
	var cfg config
	service.Main("gateway", &cfg, func(ctx context.Context, env *service.Env) error { return realMain(ctx, env, &cfg) })
}

func realMain(ctx context.Context, env *service.Env, cfg *config) error {
	codec, err := newTribeCodec(cfg.SignatureHeader, cfg.SignatureScheme)
	if err != nil {
		return fmt.Errorf("config: KOPPEL_WEBHOOK_SIGNATURE_SCHEME: %w", err)
	}
	d, err := deps.Connect(ctx, env, cfg.Config)
	if err != nil {
		return err
	}
	defer d.Close()
	// How full the streams are: the gateway is the one that learns first when the events
	// stream is full, and answers Tribe 503 meanwhile.
	if err := prometheus.Register(bus.NewStreamUsageCollector(d.JS)); err != nil {
		return fmt.Errorf("register stream metrics: %w", err)
	}

	mux := http.NewServeMux()
	mux.Handle("POST /webhooks/tribe/{tenant}", newWebhooks(d.Mapping, d.Publisher, codec, env.Log,
		intakeOptions{Concurrency: cfg.WebhookConcurrency, ReplayWindow: cfg.replayWindow()}))

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.HTTPAddr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second}
	env.Log.Info("serving HTTP", "addr", ln.Addr().String())
	return env.Run(ctx, service.HTTPPart("http", srv, ln))
}
