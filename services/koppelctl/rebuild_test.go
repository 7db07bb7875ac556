package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/koppel/koppel/pkg/adminapi"
)

// rebuildReport is testdata/rebuild.json, a dry run's report, read strictly as the contract's
// type so that the sample cannot drift from what the relation service writes.
func rebuildReport(t *testing.T) json.RawMessage {
	t.Helper()
	b, err := os.ReadFile("testdata/rebuild.json")
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var rep adminapi.RebuildReport
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("testdata/rebuild.json is not an adminapi.RebuildReport: %v", err)
	}
	return b
}

// rebuildAPI answers the rebuild request with run rebuild:acme:1, and the status first without
// the run (no worker took it yet), then with it in progress, then finished with report.
func rebuildAPI(report json.RawMessage) *adminAPI {
	var polls atomic.Int32
	answer := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	const id = "rebuild:acme:1"
	return &adminAPI{answer: func(method, path string) (int, string) {
		if method == "POST" {
			return 202, answer(adminapi.RunStarted{RunID: id})
		}
		st := adminapi.Status{Tenant: adminapi.Tenant{ID: "acme", State: adminapi.StateActive}}
		switch polls.Add(1) {
		case 1:
		case 2:
			st.Runs.Current = []adminapi.Run{{ID: id, Kind: "rebuild", Status: adminapi.RunRunning, Done: 3, Total: 12}}
		default:
			st.Runs.Finished = []adminapi.Run{{ID: id, Kind: "rebuild", Status: adminapi.RunSucceeded, Done: 12, Total: 12, Report: report}}
		}
		return 200, answer(st)
	}}
}

// The operator lost Redis and asks what a rebuild would do: koppelctl starts the rebuild run,
// follows its progress and prints its report.
func TestRebuildFollowsTheRunAndPrintsItsReport(t *testing.T) {
	report := rebuildReport(t)
	api := rebuildAPI(report)
	url := api.start(t)

	out, code := ctl(url, "", "rebuild", "acme", "-dry-run")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, out)
	}
	api.mu.Lock()
	first := api.requests[0]
	api.mu.Unlock()
	if first != `POST /admin/v1/tenants/acme/rebuild {"dry_run":true}` {
		t.Fatalf("first request %q", first)
	}
	for _, want := range []string{
		"3/12",
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
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// -o json prints the report alone, as the run carries it.
	api = rebuildAPI(report)
	out, code = ctl(api.start(t), "", "-o", "json", "rebuild", "acme")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, out)
	}
	if _, _, body := api.last(t); body != nil {
		t.Fatalf("last request had a body %v", body)
	}
	var got, want adminapi.RebuildReport
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("-o json: %v: %s", err, out)
	}
	_ = json.Unmarshal(report, &want)
	if g, w := mustJSON(got), mustJSON(want); g != w {
		t.Fatalf("-o json changed the report:\n%s\nwant\n%s", g, w)
	}
}

func TestRebuildWithoutWatch(t *testing.T) {
	api := rebuildAPI(rebuildReport(t))
	out, code := ctl(api.start(t), "", "rebuild", "-watch=false", "acme")
	if code != exitOK || !strings.Contains(out, "started rebuild run rebuild:acme:1") {
		t.Fatalf("exit %d: %s", code, out)
	}
	if _, _, body := api.last(t); body["dry_run"] != false {
		t.Fatalf("a rebuild without -dry-run asked for %v", body)
	}
}

// A rebuild run that failed (e-Boekhouden unreachable, say) exits 1 with its message.
func TestRebuildRunFailed(t *testing.T) {
	api := &adminAPI{answer: func(method, path string) (int, string) {
		if method == "POST" {
			return 202, `{"run_id":"r1"}`
		}
		return 200, `{"tenant":{"id":"acme"},"runs":{"finished":[{"id":"r1","kind":"rebuild","status":"failed","message":"e-Boekhouden answered 503"}]}}`
	}}
	out, code := ctl(api.start(t), "", "rebuild", "acme")
	if code != exitFailed || !strings.Contains(out, "e-Boekhouden answered 503") {
		t.Fatalf("exit %d: %s", code, out)
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
		{409, `{"error":{"code":"run_in_progress","message":"the import run activation:acme:import:1 is in progress"}}`, exitConflict},
		{409, `{"error":{"code":"no_credentials","message":"store the credentials first"}}`, exitConflict},
		{404, `{"error":{"code":"not_found","message":"no tenant nobody"}}`, exitNotFound},
		{401, `{"error":{"code":"unauthorized","message":"bad token"}}`, exitUnauthorized},
		{502, `{"error":{"code":"unreachable","message":"bus unavailable"}}`, exitFailed},
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
		return 200, `{"id":"acme","state":"active","catch_up_runs":{"relation":"resume:acme:relation:1","payment":"resume:acme:payment:1"}}`
	}}
	out, code := ctl(api.start(t), "", "tenants", "resume", "acme")
	if code != exitOK || !strings.Contains(out, "tenant acme is active") || !strings.Contains(out, "catching up: payment, relation started now") {
		t.Fatalf("exit %d: %s", code, out)
	}
	if method, path, body := api.last(t); method != "PUT" || path != "/admin/v1/tenants/acme/state" || body["state"] != "active" {
		t.Fatalf("request %s %s %v", method, path, body)
	}
}
