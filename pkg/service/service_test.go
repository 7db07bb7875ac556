package service

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestRunPartsStopsAllWhenOneFails(t *testing.T) {
	stopped := make(chan string, 2)
	err := RunParts(context.Background(), quiet, 5*time.Second, nil,
		Part{Name: "steady", Run: func(ctx context.Context) error { <-ctx.Done(); stopped <- "steady"; return nil }},
		Part{Name: "broken", Run: func(context.Context) error { return errors.New("boom") }},
	)
	if err == nil || !strings.Contains(err.Error(), "broken: boom") {
		t.Fatalf("want the failing part named, got %v", err)
	}
	if got := <-stopped; got != "steady" {
		t.Fatalf("steady part did not stop: %s", got)
	}
}

func TestRunPartsCleanShutdown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	onStop := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- RunParts(ctx, quiet, 5*time.Second, func() { close(onStop) },
			Part{Name: "a", Run: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }})
	}()
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("clean shutdown returned %v", err)
	}
	<-onStop
}

func TestRunPartsShutdownTimeout(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	release := make(chan struct{})
	defer close(release)
	err := RunParts(ctx, quiet, 10*time.Millisecond, nil,
		Part{Name: "stuck", Run: func(context.Context) error { <-release; return nil }})
	if err == nil || !strings.Contains(err.Error(), "still running") {
		t.Fatalf("want a shutdown timeout, got %v", err)
	}
}
