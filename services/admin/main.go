// Command admin serves koppel's admin API (tenants, credentials, activation, status, run-now,
// rebuild, dead letters) and the web console, on a private address of its own: the public edge
// (the gateway) takes Tribe's webhooks only.
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/deps"
	"github.com/koppel/koppel/pkg/httpapi"
	"github.com/koppel/koppel/pkg/service"
	"github.com/koppel/koppel/pkg/tenantclients"
	"github.com/koppel/koppel/services/admin/internal/console"
)

type config struct {
	service.Common
	deps.Config
	// The clients that check credentials, read the configuration and rebuild: their outbound
	// guard above all.
	tenantclients.Options
	HTTPAddr          string   `env:"KOPPEL_HTTP_ADDR" default:":8082" help:"Address of the admin API and the console; keep it private (the chart leaves it out of the Ingress unless told)."`
	PublicURL         string   `env:"KOPPEL_PUBLIC_URL" default:"http://localhost:8080" help:"URL at which Tribe reaches the gateway; activation registers webhooks as <url>/webhooks/tribe/<tenant>."`
	AdminTokenHashes  []string `env:"KOPPEL_ADMIN_TOKEN_HASHES" required:"true" help:"SHA-256 hashes (hex) of the admin API's bearer tokens, comma-separated."`
	ConsoleSessionKey string   `env:"KOPPEL_CONSOLE_SESSION_KEY" help:"Key that seals the console's session cookies: base64 of 32 random bytes (openssl rand -base64 32). Replicas that share it share sign-ins; empty: a random key per process, so sign-ins last until it restarts and hold on that replica only."`
}

func (c *config) Validate() error {
	if _, err := httpapi.NewBearerAuth(c.AdminTokenHashes); err != nil {
		return fmt.Errorf("KOPPEL_ADMIN_TOKEN_HASHES: %w", err)
	}
	if c.ConsoleSessionKey != "" {
		if _, err := console.ParseKey(c.ConsoleSessionKey); err != nil {
			return fmt.Errorf("KOPPEL_CONSOLE_SESSION_KEY: %w", err)
		}
	}
	if err := checkURL(c.PublicURL); err != nil {
		return fmt.Errorf("KOPPEL_PUBLIC_URL: %w", err)
	}
	return c.Config.Validate()
}

func main() {
	var cfg config
	service.Main("admin", &cfg, func(ctx context.Context, env *service.Env) error { return realMain(ctx, env, &cfg) })
}

func realMain(ctx context.Context, env *service.Env, cfg *config) error {
	auth, err := httpapi.NewBearerAuth(cfg.AdminTokenHashes)
	if err != nil {
		return err
	}
	d, err := deps.Connect(ctx, env, cfg.Config)
	if err != nil {
		return err
	}
	defer d.Close()

	mux := http.NewServeMux()
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
	signOuts, err := console.NewKVSignOuts(ctx, d.JS, cfg.StreamReplicas)
	if err != nil {
		return fmt.Errorf("console sign-outs: %w", err)
	}
	if err := serveConsole(mux, audited(env.Log, mux), cfg.ConsoleSessionKey, signOuts, env); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.HTTPAddr, err)
	}
	srv := &http.Server{Handler: audited(env.Log, mux), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second}
	env.Log.Info("serving HTTP", "addr", ln.Addr().String())
	return env.Run(ctx, service.HTTPPart("http", srv, ln))
}

// serveConsole adds the web console to mux; it calls the admin API (api) in process.
func serveConsole(mux *http.ServeMux, api http.Handler, sessionKey string, signOuts console.SignOuts, env *service.Env) error {
	key := console.NewKey()
	if sessionKey != "" {
		var err error
		if key, err = console.ParseKey(sessionKey); err != nil {
			return fmt.Errorf("KOPPEL_CONSOLE_SESSION_KEY: %w", err)
		}
	} else {
		env.Log.Warn("KOPPEL_CONSOLE_SESSION_KEY is not set: console sign-ins hold on this process only, until it restarts")
	}
	c, err := console.New(console.Options{API: api, SessionKey: key, SignOuts: signOuts, Log: env.Log})
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	c.Routes(mux)
	return nil
}
