package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check is one readiness check: a dependency the service cannot work without.
type Check struct {
	Name string
	// Func answers nil when the dependency is usable. It gets a context with a short deadline.
	Func func(ctx context.Context) error
}

// OpsServer serves /metrics, /healthz and /readyz on the service's ops address.
//
// /healthz answers 200 while the process runs, so Kubernetes restarts only a wedged process.
// /readyz answers 200 only when every check passes and the service is not shutting down, so
// traffic and work go elsewhere while a dependency is down.
type OpsServer struct {
	addr     string
	checks   []Check
	gatherer prometheus.Gatherer
	log      *slog.Logger
	stopping atomic.Bool
	srv      *http.Server
	ln       net.Listener
}

// CheckTimeout bounds every readiness check.
const CheckTimeout = 2 * time.Second

// NewOpsServer listens on addr (":0" picks a free port) right away, so Addr is known before Run.
func NewOpsServer(addr string, log *slog.Logger, checks ...Check) (*OpsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	o := &OpsServer{addr: ln.Addr().String(), checks: checks, gatherer: prometheus.DefaultGatherer, log: log, ln: ln}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	mux.HandleFunc("GET /readyz", o.ready)
	o.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return o, nil
}

// Addr is the address the server listens on.
func (o *OpsServer) Addr() string { return o.addr }

// AddCheck adds a readiness check; call it before Run.
func (o *OpsServer) AddCheck(c Check) { o.checks = append(o.checks, c) }

// SetStopping makes /readyz fail from now on, at the start of a graceful shutdown.
func (o *OpsServer) SetStopping() { o.stopping.Store(true) }

// Run serves until ctx is done.
func (o *OpsServer) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- o.srv.Serve(o.ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	o.SetStopping()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := o.srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (o *OpsServer) ready(w http.ResponseWriter, r *http.Request) {
	failures := map[string]string{}
	if o.stopping.Load() {
		failures["shutdown"] = "shutting down"
	}
	for _, c := range o.checks {
		ctx, cancel := context.WithTimeout(r.Context(), CheckTimeout)
		if err := c.Func(ctx); err != nil {
			failures[c.Name] = err.Error()
		}
		cancel()
	}
	w.Header().Set("Content-Type", "application/json")
	if len(failures) > 0 {
		o.log.WarnContext(r.Context(), "not ready", slog.Any("failures", failures))
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "unavailable", "failures": failures})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"status": "ready"})
}
