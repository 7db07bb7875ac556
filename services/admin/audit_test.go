package main

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/koppel/koppel/pkg/httpapi"
)

// Every admin action is logged with the ID of the token that made it, never the token; refused
// requests too, with the caller's address.
func TestAdminActionsAreAudited(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	auth, err := httpapi.NewBearerAuth([]string{httpapi.HashToken("s3cret-token")})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("PUT /admin/v1/tenants/{tenant}/state", auth.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
	})))
	h := audited(log, mux)
	do := func(token string) {
		req := httptest.NewRequest("PUT", "/admin/v1/tenants/acme/state", strings.NewReader(`{"state":"paused"}`))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	do("s3cret-token")
	do("guess")
	out := buf.String()
	if strings.Contains(out, "s3cret-token") || strings.Contains(out, "guess") {
		t.Fatalf("a token is in the log: %s", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("want one line per request, got %q", out)
	}
	id := httpapi.TokenID("s3cret-token")
	for _, want := range []string{`"msg":"admin request"`, `"method":"PUT"`, `"tenant":"acme"`, `"status":200`, `"token_id":"` + id + `"`} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("audit line %s lacks %s", lines[0], want)
		}
	}
	for _, want := range []string{`"level":"WARN"`, `"msg":"admin request refused"`, `"status":401`, `"remote":`} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("refusal line %s lacks %s", lines[1], want)
		}
	}
}
