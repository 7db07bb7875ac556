package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// The gateway's test checks that testdata/rebuild.json is exactly the shape its rebuild handler
// answers, so this test reads what the gateway really sends.
func rebuildAnswer(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/rebuild.json")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRebuildPrintsTheReport(t *testing.T) {
	answer := rebuildAnswer(t)
	api := &adminAPI{answer: func(string, string) (int, string) { return 200, answer }}
	url := api.start(t)

	out, code := ctl(url, "", "rebuild", "acme", "-dry-run")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, out)
	}
	method, path, body := api.last(t)
	if method != "POST" || path != "/admin/v1/tenants/acme/rebuild" || body["dry_run"] != true {
		t.Fatalf("request %s %s %v", method, path, body)
	}
	for _, want := range []string{
		"dry run: nothing was changed",
		"WOULD LINK",
		"organization  6",
		"highest used 40000",
		"cursors cleared  product-full",
		"would link",
		"only in Tribe",
		"conflicting",
		"debtor number 30000 is used by 2 Tribe and 1 e-Boekhouden records",
		"only in e-Boekhouden",
		"note: Dry run: nothing was changed.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}

	// Without -dry-run, the request says so; -o json gives the report as the gateway sent it.
	out, code = ctl(url, "", "-o", "json", "rebuild", "acme")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, out)
	}
	if _, _, body := api.last(t); body["dry_run"] != false {
		t.Fatalf("a rebuild without -dry-run asked for %v", body)
	}
	var got, want map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("-o json: %v: %s", err, out)
	}
	_ = json.Unmarshal([]byte(answer), &want)
	if g, _ := json.Marshal(got); string(g) != mustJSON(want) {
		t.Fatalf("-o json changed the report:\n%s\nwant\n%s", g, mustJSON(want))
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestRebuildExitCodes(t *testing.T) {
	cases := []struct {
		status int
		answer string
		exit   int
	}{
		{409, `{"error":{"code":"rebuild_in_progress","message":"a rebuild of this tenant is in progress"}}`, exitConflict},
		{409, `{"error":{"code":"no_credentials","message":"store the credentials first"}}`, exitConflict},
		{404, `{"error":{"code":"not_found","message":"no tenant nobody"}}`, exitNotFound},
		{401, `{"error":{"code":"unauthorized","message":"bad token"}}`, exitUnauthorized},
		{502, `{"error":{"code":"unreachable","message":"rebuild: e-Boekhouden 503"}}`, exitFailed},
	}
	for _, c := range cases {
		api := &adminAPI{answer: func(string, string) (int, string) { return c.status, c.answer }}
		out, code := ctl(api.start(t), "", "rebuild", "acme")
		if code != c.exit {
			t.Errorf("%d %s: exit %d, want %d (%s)", c.status, c.answer, code, c.exit, out)
		}
	}
	for _, args := range [][]string{{"rebuild"}, {"rebuild", "-dry-run"}, {"rebuild", "acme", "-force"}, {"rebuild", "acme", "other"}} {
		if _, code := ctl("http://127.0.0.1:1", "", args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
}

func TestResumeSaysWhatCatchesUp(t *testing.T) {
	api := &adminAPI{answer: func(string, string) (int, string) {
		return 200, `{"id":"acme","state":"TENANT_STATE_ACTIVE","catch_up_runs":{"relation":"resume:acme:relation:1","payment":"resume:acme:payment:1"}}`
	}}
	out, code := ctl(api.start(t), "", "tenants", "resume", "acme")
	if code != exitOK || !strings.Contains(out, "tenant acme is active") || !strings.Contains(out, "catching up: payment, relation started now") {
		t.Fatalf("exit %d: %s", code, out)
	}
	if method, path, body := api.last(t); method != "PUT" || path != "/admin/v1/tenants/acme/state" || body["state"] != "active" {
		t.Fatalf("request %s %s %v", method, path, body)
	}
}
