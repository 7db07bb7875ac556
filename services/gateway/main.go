// Command gateway is koppel's HTTP edge: it takes Tribe webhooks and turns each event into a bus
// message, and it serves the admin API (tenants, activation, status, run-now, dead letters).
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
	"github.com/koppel/koppel/pkg/httpapi"
	"github.com/koppel/koppel/pkg/service"
	"github.com/koppel/koppel/pkg/tenantclients"
	"github.com/prometheus/client_golang/prometheus"
)

type config struct {
	service.Common
	deps.Config
	// The clients that check credentials, read the configuration and rebuild: their outbound
	// guard above all.
	tenantclients.Options
	HTTPAddr         string   `env:"KOPPEL_HTTP_ADDR" default:":8080" help:"Address of the webhook intake and the admin API."`
	PublicURL        string   `env:"KOPPEL_PUBLIC_URL" default:"http://localhost:8080" help:"URL at which Tribe reaches the gateway; webhooks are registered as <url>/webhooks/tribe/<tenant>."`
	AdminTokenHashes []string `env:"KOPPEL_ADMIN_TOKEN_HASHES" required:"true" help:"SHA-256 hashes (hex) of the admin API's bearer tokens, comma-separated."`
	SignatureHeader  string   `env:"KOPPEL_WEBHOOK_SIGNATURE_HEADER" default:"X-Tribe-Signature" help:"Header that carries the Tribe webhook signature."`
	SignatureScheme  string   `env:"KOPPEL_WEBHOOK_SIGNATURE_SCHEME" default:"hmac-sha512-base64" help:"How Tribe signs webhooks: hmac-sha512-base64, hmac-sha512-hex or hmac-sha256-base64."`
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
	if _, err := httpapi.NewBearerAuth(c.AdminTokenHashes); err != nil {
		return fmt.Errorf("KOPPEL_ADMIN_TOKEN_HASHES: %w", err)
	}
	if err := checkURL(c.PublicURL); err != nil {
		return fmt.Errorf("KOPPEL_PUBLIC_URL: %w", err)
	}
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
	auth, err := httpapi.NewBearerAuth(cfg.AdminTokenHashes)
	if err != nil {
		return err
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
	a := &admin{mapping: d.Mapping, pub: d.Publisher, dlq: bus.NewDeadLetters(d.JS, d.Shards), log: env.Log, now: time.Now, clients: cfg.Options}
	a.routes(mux, auth)
	clients, err := tenantclients.New(d.Mapping, cfg.Options)
	if err != nil {
		return fmt.Errorf("tenant clients: %w", err)
	}
	defer func() {
		// End the tenants' e-Boekhouden sessions, but do not hold up the shutdown for it.
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		clients.Close(closeCtx)
	}()
	act := &activation{admin: a, accounts: newClientAccounts(clients), publicURL: cfg.PublicURL}
	act.routes(mux, auth)

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.HTTPAddr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second}
	env.Log.Info("serving HTTP", "addr", ln.Addr().String())
	return env.Run(ctx, service.HTTPPart("http", srv, ln))
}
