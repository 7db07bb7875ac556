package main

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/koppel/koppel/pkg/httpapi"
)

// audited logs every admin request once it is answered: who (the ID of the admin token, never
// the token), what (method and path, the tenant it concerns) and how it ended (status), so an
// operator can tell afterwards which token paused a tenant or replayed a dead letter. Refused
// requests are logged too, at warning level, with the caller's address.
func audited(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		r = r.WithContext(httpapi.WithTokenID(r.Context()))
		next.ServeHTTP(rec, r)
		attrs := []any{"method", r.Method, "path", r.URL.Path, "status", rec.status, "duration", time.Since(start).Round(time.Millisecond)}
		if t := tenantOf(r.URL.Path); t != "" {
			attrs = append(attrs, "tenant", t)
		}
		switch id := httpapi.TokenIDOf(r.Context()); {
		case id != "":
			log.InfoContext(r.Context(), "admin request", append(attrs, "token_id", id)...)
		case rec.status == http.StatusUnauthorized:
			log.WarnContext(r.Context(), "admin request refused", append(attrs, "remote", r.RemoteAddr)...)
		}
	})
}

// tenantOf is the tenant an /admin/v1/tenants/<tenant>/... path concerns.
func tenantOf(path string) string {
	rest, ok := strings.CutPrefix(path, "/admin/v1/tenants/")
	if !ok {
		return ""
	}
	t, _, _ := strings.Cut(rest, "/")
	return t
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Flush lets answers that stream (server-sent events) through the recorder.
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
