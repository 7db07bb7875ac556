package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// koppelctl runs the real binary against the stack and returns its output and exit code.
func koppelctl(t *testing.T, url, token, stdin string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binaries(t), "koppelctl"), append([]string{"-url", url}, args...)...)
	// The token never goes on the command line.
	cmd.Env = append(os.Environ(), "KOPPEL_TOKEN="+token)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return out.String(), exit.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), 0
}

func TestKoppelctlAgainstTheStack(t *testing.T) {
	s := startStack(t, "scheduler")
	url := "http://" + s.Addrs["admin"]
	ctl := func(stdin string, args ...string) (string, int) {
		return koppelctl(t, url, s.AdminToken, stdin, args...)
	}

	if out, code := koppelctl(t, url, "wrong-token", "", "tenants", "list"); code != 5 {
		t.Fatalf("wrong token: exit %d: %s", code, out)
	}
	if out, code := ctl("", "tenants", "create", "acme", "Acme", "BV"); code != 0 || !strings.Contains(out, "created tenant acme") {
		t.Fatalf("create: exit %d: %s", code, out)
	}
	if out, code := ctl("", "tenants", "create", "acme"); code != 4 {
		t.Fatalf("create twice: exit %d: %s", code, out)
	}
	if out, code := ctl("whsec\n", "secrets", "set", "acme", "webhook_secret"); code != 0 {
		t.Fatalf("secret: exit %d: %s", code, out)
	}
	// The stack has one key: every secret is sealed under it, nothing to reseal; the whole
	// rotation is tested in the mapping service.
	out, code := ctl("", "-o", "json", "secrets", "reseal", "-dry-run")
	var sealed []struct {
		Tenant  string
		Secrets []struct {
			Name     string
			Resealed bool
		}
	}
	if code != 0 || json.Unmarshal([]byte(out), &sealed) != nil || len(sealed) != 1 || sealed[0].Tenant != "acme" ||
		len(sealed[0].Secrets) != 1 || sealed[0].Secrets[0].Name != "webhook_secret" || sealed[0].Secrets[0].Resealed {
		t.Fatalf("secrets reseal -dry-run: exit %d: %s", code, out)
	}
	if out, code := ctl("", "secrets", "reseal", "acme"); code != 0 || !strings.Contains(out, "webhook_secret") {
		t.Fatalf("secrets reseal acme: exit %d: %s", code, out)
	}
	if out, code := ctl("", "tenants", "resume", "acme"); code != 0 || !strings.Contains(out, "is active") {
		t.Fatalf("activate: exit %d: %s", code, out)
	}
	out, code = ctl("", "tenants", "list")
	if code != 0 || !strings.Contains(out, "acme") || !strings.Contains(out, "Acme BV") || !strings.Contains(out, "webhook_secret") {
		t.Fatalf("list: exit %d: %s", code, out)
	}
	out, code = ctl("", "-o", "json", "tenants", "show", "acme")
	var shown map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &shown) != nil || shown["id"] != "acme" {
		t.Fatalf("show -o json: exit %d: %s", code, out)
	}
	if out, code := ctl("", "tenants", "show", "nobody"); code != 3 {
		t.Fatalf("unknown tenant: exit %d: %s", code, out)
	}
	if out, code := ctl("", "sync", "acme", "product"); code != 0 || !strings.Contains(out, "started product run") {
		t.Fatalf("sync: exit %d: %s", code, out)
	}
	eventually(t, "the product run in status", 20*time.Second, func() bool {
		out, _ := ctl("", "status", "acme")
		// The tenant has no credentials, so the run fails and says so in the issues.
		return strings.Contains(out, "product") && strings.Contains(out, "failed")
	})
	if out, code := ctl("", "issues", "acme"); code != 0 || !strings.Contains(out, "not_configured") {
		t.Fatalf("issues: exit %d: %s", code, out)
	}
	if out, code := ctl("", "-o", "json", "deadletters", "list"); code != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("dead letters: exit %d: %s", code, out)
	}
	if out, code := ctl("", "deadletters", "replay", "99"); code != 3 {
		t.Fatalf("replay unknown: exit %d: %s", code, out)
	}
}
