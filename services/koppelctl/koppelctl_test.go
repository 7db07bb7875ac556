package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/koppel/koppel/pkg/adminapi"
)

func TestProgressBar(t *testing.T) {
	start := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	r := adminapi.Run{StartedAt: start, Done: 2500, Total: 10000}
	got := progressBar(r, start.Add(10*time.Second))
	for _, want := range []string{"[#######.......................]", "2500/10000", " 25%", "250.0/s", "30s left"} {
		if !strings.Contains(got, want) {
			t.Errorf("bar %q lacks %q", got, want)
		}
	}
	if got := progressBar(adminapi.Run{Done: 3}, start); !strings.Contains(got, "3 done") {
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

// TestTokenNeverFromArguments: the admin token comes from KOPPEL_TOKEN or a file; a -token
// argument, which ps and shell history would show, is refused.
func TestTokenNeverFromArguments(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"tenants":[]}`))
	}))
	defer srv.Close()
	ctlRun := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := run(context.Background(), append([]string{"-url", srv.URL}, args...), strings.NewReader(""), &out, &errOut)
		return code, errOut.String()
	}
	for _, args := range [][]string{{"-token", "s3cret"}, {"-token=s3cret"}, {"--token", "s3cret"}} {
		code, msg := ctlRun(append(args, "tenants", "list")...)
		if code != exitUsage || !strings.Contains(msg, "KOPPEL_TOKEN") || strings.Contains(msg, "s3cret") {
			t.Errorf("%v: exit %d, %q; want %d naming KOPPEL_TOKEN", args, code, msg, exitUsage)
		}
	}
	if len(got) != 0 {
		t.Fatalf("a refused invocation called the API: %v", got)
	}

	t.Setenv("KOPPEL_TOKEN", "from-env")
	if code, msg := ctlRun("tenants", "list"); code != exitOK {
		t.Fatalf("with KOPPEL_TOKEN: exit %d %s", code, msg)
	}
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, msg := ctlRun("-token-file", file, "tenants", "list"); code != exitOK {
		t.Fatalf("with -token-file: exit %d %s", code, msg)
	}
	t.Setenv("KOPPEL_TOKEN_FILE", file)
	if code, msg := ctlRun("tenants", "list"); code != exitOK {
		t.Fatalf("with KOPPEL_TOKEN_FILE: exit %d %s", code, msg)
	}
	if want := []string{"Bearer from-env", "Bearer from-file", "Bearer from-file"}; !slices.Equal(got, want) {
		t.Errorf("Authorization headers %q, want %q", got, want)
	}
	if code, _ := ctlRun("-token-file", filepath.Join(t.TempDir(), "missing"), "tenants", "list"); code != exitUsage {
		t.Errorf("a missing token file: exit %d, want %d", code, exitUsage)
	}
}
