// Package telemetry gives every service the same structured logs, Prometheus metrics and health
// endpoints.
//
// Logs are JSON (log/slog) and carry the tenant and message IDs that the context holds, so one
// tenant's trail can be followed across services without passing loggers around.
package telemetry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

type ctxKey struct{}

// WithAttrs returns a context whose log records carry attrs, in addition to any it had.
func WithAttrs(ctx context.Context, attrs ...slog.Attr) context.Context {
	prev, _ := ctx.Value(ctxKey{}).([]slog.Attr)
	merged := make([]slog.Attr, 0, len(prev)+len(attrs))
	merged = append(merged, prev...)
	merged = append(merged, attrs...)
	return context.WithValue(ctx, ctxKey{}, merged)
}

// WithTenant returns a context whose log records carry the tenant ID.
func WithTenant(ctx context.Context, tenantID string) context.Context {
	return WithAttrs(ctx, slog.String("tenant", tenantID))
}

// NewLogger returns a JSON logger at the given level ("debug", "info", "warn", "error") for the
// named service. Records logged with a context carry that context's attributes.
func NewLogger(w io.Writer, service, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lvl})
	return slog.New(contextHandler{h}).With(slog.String("service", service)), nil
}

// contextHandler adds the attributes stored by WithAttrs to every record.
type contextHandler struct{ slog.Handler }

func (h contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if attrs, ok := ctx.Value(ctxKey{}).([]slog.Attr); ok {
		r.AddAttrs(attrs...)
	}
	return h.Handler.Handle(ctx, r)
}

func (h contextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return contextHandler{h.Handler.WithAttrs(attrs)}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{h.Handler.WithGroup(name)}
}
