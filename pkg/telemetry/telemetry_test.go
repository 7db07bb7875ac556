package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

func TestLoggerCarriesContextAttrs(t *testing.T) {
	var buf bytes.Buffer
	log, err := NewLogger(&buf, "relation", "info")
	if err != nil {
		t.Fatal(err)
	}
	ctx := WithAttrs(WithTenant(context.Background(), "acme"), slog.String("msg_id", "m1"))
	log.InfoContext(ctx, "hello")
	log.DebugContext(ctx, "not shown")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("one JSON record expected, got %q: %v", buf.String(), err)
	}
	if rec["tenant"] != "acme" || rec["msg_id"] != "m1" || rec["service"] != "relation" {
		t.Fatalf("record lacks attrs: %v", rec)
	}
}

func TestNewLoggerRejectsBadLevel(t *testing.T) {
	if _, err := NewLogger(&bytes.Buffer{}, "x", "loud"); err == nil {
		t.Fatal("want an error for an unknown level")
	}
}

func TestOpsServerReadiness(t *testing.T) {
	var broken atomic.Bool
	log := slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))
	ops, err := NewOpsServer("127.0.0.1:0", log, Check{Name: "redis", Func: func(context.Context) error {
		if broken.Load() {
			return errors.New("connection refused")
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ops.Run(ctx) }()
	defer func() { cancel(); <-done }()

	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + ops.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	if code, _ := get("/readyz"); code != 200 {
		t.Fatalf("ready: got %d", code)
	}
	broken.Store(true)
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "connection refused") {
		t.Fatalf("broken dependency: got %d %s", code, body)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("healthz: got %d", code)
	}
	broken.Store(false)
	ops.SetStopping()
	if code, _ := get("/readyz"); code != 503 {
		t.Fatalf("stopping: got %d", code)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("metrics: got %d", code)
	}
}
