package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestProgressBar(t *testing.T) {
	start := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	r := syncRun{StartedAt: start, Done: 2500, Total: 10000}
	got := progressBar(r, start.Add(10*time.Second))
	for _, want := range []string{"[#######.......................]", "2500/10000", " 25%", "250.0/s", "30s left"} {
		if !strings.Contains(got, want) {
			t.Errorf("bar %q lacks %q", got, want)
		}
	}
	if got := progressBar(syncRun{Done: 3}, start); !strings.Contains(got, "3 done") {
		t.Errorf("unknown total: %q", got)
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	for _, args := range [][]string{{}, {"nonsense"}, {"tenants"}, {"sync", "acme"}, {"-o", "yaml", "tenants", "list"}, {"deadletters", "show", "x"}} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, strings.NewReader(""), &out, &errOut); code != exitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, exitUsage, errOut.String())
		}
	}
}

func TestUnreachableGatewayFails(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"-url", "http://127.0.0.1:1", "tenants", "list"}, strings.NewReader(""), &out, &errOut)
	if code != exitFailed || !strings.Contains(errOut.String(), "connection refused") {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
}
