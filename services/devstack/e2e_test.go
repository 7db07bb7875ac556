package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/koppel/koppel/pkg/adminapi"
	"github.com/koppel/koppel/services/devstack/internal/stack"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The walking skeleton end to end: every service as a real process against an embedded NATS and a
// real redis-server.

func startStack(t *testing.T, without ...string) *stack.Stack {
	t.Helper()
	return startStackEnv(t, nil, without...)
}

// startStackEnv starts the stack with extra environment for every service.
func startStackEnv(t testing.TB, env map[string]string, without ...string) *stack.Stack {
	t.Helper()
	bin := binaries(t)
	data := t.TempDir()
	s, err := stack.Start(context.Background(), stack.Options{BinDir: bin, DataDir: data, Without: without, Env: env})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			for _, name := range stack.Services {
				b, _ := os.ReadFile(filepath.Join(data, "logs", name+".log"))
				t.Logf("---- %s log (tail) ----\n%s", name, tail(string(b), 3000))
			}
		}
	})
	return s
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

type client struct {
	t     *testing.T
	base  string
	token string
}

func (c *client) do(method, path string, body any) (int, map[string]any) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+path, rd)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

// status reads a tenant's status as the admin API's contract types it.
func (c *client) status(tenant string) adminapi.Status {
	c.t.Helper()
	var st adminapi.Status
	api := adminapi.Client{Base: c.base, Token: c.token}
	if err := api.Do(context.Background(), "GET", "/admin/v1/tenants/"+tenant+"/status", nil, &st); err != nil {
		c.t.Fatalf("status of %s: %v", tenant, err)
	}
	return st
}

func sign(secret string, body []byte) string {
	m := hmac.New(sha512.New, []byte(secret))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func deliver(t *testing.T, s *stack.Stack, tenant, secret string, body []byte) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.Addrs["gateway"]+"/webhooks/tribe/"+tenant, bytes.NewReader(body))
	req.Header.Set("X-Tribe-Signature", sign(secret, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func orgEvent(id string) []byte {
	// Stamped now: the gateway refuses a delivery stamped outside its replay window.
	return []byte(fmt.Sprintf(`{"webhookId":"wh-1","payload":{"type":"EntityUpdateMutation","entityType":"Relation.Organization","entityId":%q,"mutationId":"m-%s","timestamp":%q}}`,
		guid(id), id, time.Now().UTC().Format(time.RFC3339Nano)))
}

// metric reads one sample from a service's /metrics; 0 when absent.
func metric(t testing.TB, s *stack.Stack, service, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + s.OpsAddrs[service] + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

func eventually(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func setUpTenant(t *testing.T, admin *client, id, secret string) {
	t.Helper()
	if code, body := admin.do("POST", "/admin/v1/tenants", map[string]string{"id": id, "display_name": "Acme BV"}); code != 201 {
		t.Fatalf("create tenant: %d %v", code, body)
	}
	if code, body := admin.do("PUT", "/admin/v1/tenants/"+id+"/secrets/webhook_secret", map[string]string{"value": secret}); code != 204 {
		t.Fatalf("put secret: %d %v", code, body)
	}
	if code, body := admin.do("PUT", "/admin/v1/tenants/"+id+"/state", map[string]string{"state": "active"}); code != 200 {
		t.Fatalf("activate: %d %v", code, body)
	}
}

// handled counts the relation events the relation worker finished with. The tenants of these
// tests have no credentials, so the worker ends each event with a "not configured" issue.
const handled = `koppel_bus_messages_total{consumer="relation-evt",outcome="terminated"}`

func TestWalkingSkeletonWebhookToWorker(t *testing.T) {
	s := startStack(t, "scheduler")
	admin := &client{t: t, base: "http://" + s.Addrs["admin"], token: s.AdminToken}
	if code, _ := (&client{t: t, base: admin.base, token: "wrong"}).do("GET", "/admin/v1/tenants", nil); code != 401 {
		t.Fatalf("wrong admin token: %d", code)
	}
	if code, body := admin.do("POST", "/admin/v1/tenants", map[string]string{"id": "Not Valid"}); code != 400 || body["error"] == nil {
		t.Fatalf("invalid tenant ID: %d %v", code, body)
	}
	setUpTenant(t, admin, "acme", "whsec")

	if code := deliver(t, s, "acme", "whsec", orgEvent("org-1")); code != 202 {
		t.Fatalf("signed delivery: %d", code)
	}
	eventually(t, "the relation worker to handle the event", 20*time.Second, func() bool { return metric(t, s, "relation", handled) == 1 })
	if code, body := admin.do("GET", "/admin/v1/tenants/acme/status", nil); code != 200 || !strings.Contains(fmt.Sprint(body["issues"]), "not_configured") {
		t.Fatalf("status lacks the not_configured issue: %d %v", code, body["issues"])
	}

	// Tribe retries a delivery it thinks failed: one event on the bus, however often.
	for range 5 {
		if code := deliver(t, s, "acme", "whsec", orgEvent("org-1")); code != 202 {
			t.Fatalf("duplicate delivery: %d", code)
		}
	}
	if n := metric(t, s, "gateway", `koppel_gateway_webhook_events_total{duplicate="true",entity="Relation_Organization"}`); n != 5 {
		t.Fatalf("duplicates seen by JetStream = %v, want 5", n)
	}

	if code := deliver(t, s, "acme", "not-the-secret", orgEvent("org-2")); code != 401 {
		t.Fatalf("bad signature: %d", code)
	}
	// An unknown tenant is answered as a wrong signature: the intake tells nobody who exists.
	if code := deliver(t, s, "nobody", "whsec", orgEvent("org-2")); code != 401 {
		t.Fatalf("unknown tenant: %d", code)
	}
	if code := deliver(t, s, "acme", "whsec", []byte(`{"payload":`)); code != 400 {
		t.Fatalf("malformed body: %d", code)
	}
	if code := deliver(t, s, "acme", "whsec", bytes.Repeat([]byte(" "), 2<<20)); code != 413 {
		t.Fatalf("oversized body: %d", code)
	}

	// A worker killed mid-flight loses nothing: the event waits for the restarted process.
	s.Kill("relation")
	if code := deliver(t, s, "acme", "whsec", orgEvent("org-3")); code != 202 {
		t.Fatalf("delivery while relation is down: %d", code)
	}
	if err := s.Restart(context.Background(), "relation"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the restarted relation worker to handle the waiting event", 20*time.Second, func() bool { return metric(t, s, "relation", handled) == 1 })
}

func TestWalkingSkeletonSchedulerAndRunNow(t *testing.T) {
	s := startStack(t)
	admin := &client{t: t, base: "http://" + s.Addrs["admin"], token: s.AdminToken}
	setUpTenant(t, admin, "acme", "whsec")

	// finishedKinds counts finished runs per kind: the tenant has no credentials, so every
	// run fails, saying so.
	finishedKinds := func() map[string]int {
		kinds := map[string]int{}
		for _, r := range admin.status("acme").Runs.Finished {
			if r.Status == adminapi.RunFailed && strings.Contains(r.Message, "no credentials") {
				kinds[r.Kind]++
			}
		}
		return kinds
	}
	// skippedKinds counts the scheduled runs not started beside a run of a kind they must not run
	// beside (relation and relation-scan fire together at first).
	skippedKinds := func() map[string]int {
		kinds := map[string]int{}
		for _, e := range admin.status("acme").History {
			if e.Code == "run_skipped" {
				kinds[e.Kind]++
			}
		}
		return kinds
	}
	var k, skipped map[string]int
	defer func() {
		if t.Failed() {
			t.Logf("finished %v, skipped %v", k, skipped)
		}
	}()
	eventually(t, "a scheduled run of every kind", 30*time.Second, func() bool {
		k, skipped = finishedKinds(), skippedKinds()
		return k["relation"]+skipped["relation"] == 1 && k["relation-scan"]+skipped["relation-scan"] == 1 && k["tribe-scan"] == 1 && k["product"] == 1 && k["payment"] == 1
	})

	if code, body := admin.do("GET", "/admin/v1/tenants/acme/status", nil); code != 200 || len(body["next_runs"].(map[string]any)) != 5 {
		t.Fatalf("status lacks the next run of each scheduled kind: %v", body["next_runs"])
	}
	code, body := admin.do("POST", "/admin/v1/tenants/acme/sync/product", nil)
	if code != 202 || body["run_id"] == "" {
		t.Fatalf("run now: %d %v", code, body)
	}
	eventually(t, "the manual product run", 20*time.Second, func() bool { return finishedKinds()["product"] == 2 })
	if code, _ := admin.do("POST", "/admin/v1/tenants/acme/sync/everything", nil); code != 404 {
		t.Fatalf("unknown kind: %d", code)
	}
	if code, _ := admin.do("POST", "/admin/v1/tenants/nobody/sync/product", nil); code != 404 {
		t.Fatalf("unknown tenant: %d", code)
	}
}

// guid turns a short test ID into the GUID form Tribe uses for entity IDs.
func guid(id string) string {
	sum := sha1.Sum([]byte(id))
	return fmt.Sprintf("%x-%x-%x-%x-%x", sum[0:4], sum[4:6], sum[6:8], sum[8:10], sum[10:16])
}

// stackJetStream connects the test to the stack's NATS, closed when the test ends.
func stackJetStream(t testing.TB, s *stack.Stack) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(s.NATS.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}
