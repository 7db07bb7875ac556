package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/bustest"
	kconfig "github.com/koppel/koppel/pkg/config"
	"github.com/koppel/koppel/pkg/httpapi"
	"github.com/koppel/koppel/pkg/localinfra"
	"github.com/koppel/koppel/pkg/tenantsettings"
	"github.com/koppel/koppel/pkg/tribe/webhook"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/koppel/koppel/services/mapping/mappingtest"
	"github.com/nats-io/nats.go/jetstream"
)

type intake struct {
	srv *httptest.Server
	// handler is the intake's mux, for tests that serve it behind a wrapper of their own.
	handler http.Handler
	nats    *localinfra.NATS
	js      jetstream.JetStream
	m       *mappingtest.Service
}

// intakeNow is the intake's clock in tests: the deliveries of event() were stamped a minute
// before.
var intakeNow = time.Date(2026, 11, 25, 10, 1, 0, 0, time.UTC)

func newIntake(t *testing.T) *intake {
	t.Helper()
	return newIntakeWith(t, intakeOptions{PublishTimeout: 500 * time.Millisecond, Now: func() time.Time { return intakeNow }})
}

func newIntakeWith(t *testing.T, opts intakeOptions) *intake {
	t.Helper()
	ctx := context.Background()
	m := mappingtest.Start(t)
	b := bustest.Start(t)
	ns, js := b.Server, b.JS
	if _, err := m.Client.CreateTenant(ctx, &mappingv1.CreateTenantRequest{Tenant: &mappingv1.Tenant{Id: "acme"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Client.CreateTenant(ctx, &mappingv1.CreateTenantRequest{Tenant: &mappingv1.Tenant{Id: "nosecret"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Client.PutSecret(ctx, &mappingv1.PutSecretRequest{TenantId: "acme", Name: tenantsettings.SecretWebhook, Value: []byte("whsec")}); err != nil {
		t.Fatal(err)
	}
	codec, _ := newTribeCodec("X-Tribe-Signature", "hmac-sha512-base64")
	mux := http.NewServeMux()
	mux.Handle("POST /webhooks/tribe/{tenant}", newWebhooks(m.Client, bus.NewPublisher(js), codec,
		slog.New(slog.NewTextHandler(io.Discard, nil)), opts))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &intake{srv: srv, handler: mux, nats: ns, js: js, m: m}
}

func (in *intake) post(t *testing.T, tenant, signature string, body []byte) int {
	t.Helper()
	code, _ := in.postAnswer(t, tenant, signature, body)
	return code
}

// postAnswer delivers body and returns the status and the body of the answer.
func (in *intake) postAnswer(t *testing.T, tenant, signature string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", in.srv.URL+"/webhooks/tribe/"+tenant, bytes.NewReader(body))
	if signature != "" {
		req.Header.Set("X-Tribe-Signature", signature)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func signed(body []byte) string {
	m := hmac.New(sha512.New, []byte("whsec"))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func event(id string) []byte {
	return []byte(fmt.Sprintf(`{"webhookId":"w","payload":{"type":"EntityCreationMutation","entityType":"Relation.Person","entityId":%q,"mutationId":"m-%s","timestamp":"2026-11-25T10:00:00Z"}}`, guid(id), id))
}

func (in *intake) stored(t *testing.T) uint64 {
	t.Helper()
	s, err := in.js.Stream(context.Background(), bus.StreamTribeEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestWebhookAnswers(t *testing.T) {
	in := newIntake(t)
	ok := event("p-1")
	cases := []struct {
		name      string
		tenant    string
		signature string
		body      []byte
		want      int
	}{
		{"accepted", "acme", signed(ok), ok, 202},
		{"bad signature", "acme", signed([]byte("other")), ok, 401},
		{"no signature", "acme", "", ok, 401},
		{"tenant without secret", "nosecret", signed(ok), ok, 401},
		{"unknown tenant", "nobody", signed(ok), ok, 401},
		{"invalid tenant", "NOT_VALID", signed(ok), ok, 401},
		{"malformed", "acme", signed([]byte("{")), []byte("{"), 400},
		{"no entity", "acme", signed([]byte(`{"payload":{}}`)), []byte(`{"payload":{}}`), 400},
		{"oversized", "acme", "x", bytes.Repeat([]byte("a"), webhook.MaxBodySize+1), 413},
		// Tribe sends a few hundred bytes; the intake takes 256 KiB at most.
		{"300 KiB, signed", "acme", signed(bytes.Repeat([]byte(" "), 300<<10)), bytes.Repeat([]byte(" "), 300<<10), 413},
	}
	for _, c := range cases {
		if got := in.post(t, c.tenant, c.signature, c.body); got != c.want {
			t.Errorf("%s: got %d, want %d", c.name, got, c.want)
		}
	}
	if n := in.stored(t); n != 1 {
		t.Fatalf("stored %d events, want only the accepted one", n)
	}
	// Without a Content-Length the limit holds as the body is read.
	req, _ := http.NewRequest("POST", in.srv.URL+"/webhooks/tribe/acme", io.MultiReader(bytes.NewReader(bytes.Repeat([]byte(" "), 300<<10))))
	req.Header.Set("X-Tribe-Signature", "x")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("300 KiB without Content-Length: got %d, want 413", resp.StatusCode)
	}
}

func TestDuplicateStormIsPublishedOnce(t *testing.T) {
	in := newIntake(t)
	body := event("p-storm")
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			// Beyond the intake's slots a delivery is answered 503, and Tribe delivers it again.
			got := in.post(t, "acme", signed(body), body)
			for attempt := 0; got == 503 && attempt < 100; attempt++ {
				got = in.post(t, "acme", signed(body), body)
			}
			if got != 202 {
				t.Errorf("delivery: %d", got)
			}
		})
	}
	wg.Wait()
	if n := in.stored(t); n != 1 {
		t.Fatalf("50 deliveries of one event stored %d messages", n)
	}
}

func TestBusDownAnswers503SoTribeRetries(t *testing.T) {
	in := newIntake(t)
	in.nats.Stop()
	body := event("p-2")
	if got := in.post(t, "acme", signed(body), body); got != 503 {
		t.Fatalf("NATS down: got %d, want 503", got)
	}
	if err := in.nats.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for in.post(t, "acme", signed(body), body) != 202 {
		if time.Now().After(deadline) {
			t.Fatal("not accepted after NATS came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestMappingDownAnswers503(t *testing.T) {
	in := newIntake(t)
	in.m.Redis.Stop()
	body := event("p-3")
	if got := in.post(t, "acme", signed(body), body); got != 503 {
		t.Fatalf("Redis down: got %d, want 503", got)
	}
}

// guid turns a short test ID into the GUID form Tribe uses for entity IDs.
func guid(id string) string {
	sum := sha1.Sum([]byte(id))
	return fmt.Sprintf("%x-%x-%x-%x-%x", sum[0:4], sum[4:6], sum[6:8], sum[8:10], sum[10:16])
}

func TestMinimalPayloadsAreNeverTakenForRetries(t *testing.T) {
	in := newIntake(t)
	// The documented payload: no event ID, no timestamp. Two deliveries may be two changes.
	body := []byte(fmt.Sprintf(`{"webhookId":"w","payload":{"type":"EntityUpdateMutation","entityType":"Relation.Person","entityId":%q}}`, guid("p-min")))
	for range 3 {
		if got := in.post(t, "acme", signed(body), body); got != 202 {
			t.Fatalf("delivery: %d", got)
		}
	}
	if n := in.stored(t); n != 3 {
		t.Fatalf("stored %d of 3 minimal deliveries", n)
	}
}

// TestUnverifiedDeliveriesAnswerAlike: whatever keeps a delivery from being verified (a wrong
// signature, none, an unknown tenant, a tenant without a secret, a name that is no tenant ID),
// the answer is the same, so probing the intake tells nobody which tenants exist.
func TestUnverifiedDeliveriesAnswerAlike(t *testing.T) {
	in := newIntake(t)
	body := event("p-probe")
	wrong := signed([]byte("other"))
	want, wantBody := in.postAnswer(t, "acme", wrong, body)
	if want != http.StatusUnauthorized {
		t.Fatalf("wrong signature for acme: %d %s", want, wantBody)
	}
	for name, c := range map[string]struct{ tenant, signature string }{
		"unknown tenant, wrong signature":     {"nobody", wrong},
		"unknown tenant, right signature":     {"nobody", signed(body)},
		"unknown tenant, no signature":        {"nobody", ""},
		"existing tenant, no signature":       {"acme", ""},
		"tenant without a secret":             {"nosecret", signed(body)},
		"not a tenant ID":                     {"NOT_VALID", wrong},
		"unknown tenant, unparseable base64":  {"nobody", "!!"},
		"existing tenant, unparseable base64": {"acme", "!!"},
	} {
		if code, got := in.postAnswer(t, c.tenant, c.signature, body); code != want || got != wantBody {
			t.Errorf("%s: %d %s, want what a wrong signature for an existing tenant gets: %d %s", name, code, got, want, wantBody)
		}
	}
}

// TestUnsignedRequestIsRefusedUnread: a request without a signature header is answered without
// waiting for its body, which here never comes.
func TestUnsignedRequestIsRefusedUnread(t *testing.T) {
	in := newIntake(t)
	never := make(chan struct{})
	defer close(never)
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() {
		_, _ = pw.Write([]byte(`{"webhookId":`))
		<-never
	}()
	req, _ := http.NewRequest("POST", in.srv.URL+"/webhooks/tribe/acme", pr)
	req.ContentLength = 4096
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("no answer while the body was pending (the intake waited for it): %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("got %d, want 401", resp.StatusCode)
	}
}

// stampedEvent is a delivery stamped at ts.
func stampedEvent(id string, ts time.Time) []byte {
	return []byte(fmt.Sprintf(`{"webhookId":"w","payload":{"type":"EntityUpdateMutation","entityType":"Relation.Person","entityId":%q,"mutationId":"m-%s","timestamp":%q}}`,
		guid(id), id, ts.UTC().Format(time.RFC3339Nano)))
}

func TestReplayWindow(t *testing.T) {
	in := newIntake(t)
	unstamped := []byte(fmt.Sprintf(`{"webhookId":"w","payload":{"type":"EntityUpdateMutation","entityType":"Relation.Person","entityId":%q}}`, guid("p-nostamp")))
	for _, c := range []struct {
		name string
		body []byte
		want int
	}{
		{"a minute old", stampedEvent("p-fresh", intakeNow.Add(-time.Minute)), 202},
		{"just inside the window", stampedEvent("p-edge", intakeNow.Add(-DefaultReplayWindow+time.Second)), 202},
		{"ten minutes old", stampedEvent("p-old", intakeNow.Add(-10*time.Minute)), 400},
		{"a day old", stampedEvent("p-older", intakeNow.Add(-24*time.Hour)), 400},
		{"ten minutes ahead", stampedEvent("p-ahead", intakeNow.Add(10*time.Minute)), 400},
		{"no timestamp", unstamped, 202},
		{"a batch with one old event", []byte("[" + string(stampedEvent("p-b1", intakeNow)) + "," + string(stampedEvent("p-b2", intakeNow.Add(-time.Hour))) + "]"), 400},
	} {
		if got := in.post(t, "acme", signed(c.body), c.body); got != c.want {
			t.Errorf("%s: got %d, want %d", c.name, got, c.want)
		}
	}
	if n := in.stored(t); n != 3 {
		t.Errorf("stored %d events, want the 3 accepted", n)
	}

	// The window is a setting.
	wide := newIntakeWith(t, intakeOptions{ReplayWindow: 30 * time.Minute, Now: func() time.Time { return intakeNow }})
	if body := stampedEvent("p-old", intakeNow.Add(-10*time.Minute)); wide.post(t, "acme", signed(body), body) != 202 {
		t.Error("a 30 min window refused a delivery ten minutes old")
	}
	off := newIntakeWith(t, intakeOptions{ReplayWindow: -1, Now: func() time.Time { return intakeNow }})
	if body := stampedEvent("p-older", intakeNow.Add(-24*time.Hour)); off.post(t, "acme", signed(body), body) != 202 {
		t.Error("with the check off a delivery a day old was refused")
	}
}

// TestReplayInsideTheWindowCollapses: a replay that passes the timestamp check is caught by
// the de-duplication window, which the defaults make span the whole replay window.
func TestReplayInsideTheWindowCollapses(t *testing.T) {
	var cfg config
	if err := kconfig.Load(&cfg, func(name string) (string, bool) {
		if name == "KOPPEL_ADMIN_TOKEN_HASHES" {
			return httpapi.HashToken("t"), true
		}
		return "", false
	}); err != nil {
		t.Fatal(err)
	}
	var window time.Duration
	for _, sc := range bus.StreamConfigs(cfg.StreamOptions()) {
		if sc.Name == bus.StreamTribeEvents {
			window = sc.Duplicates
		}
	}
	if window < 2*cfg.ReplayWindow || window <= 2*time.Minute {
		t.Fatalf("events are de-duplicated for %s, want at least twice the replay window (%s) and longer than 2m", window, cfg.ReplayWindow)
	}
	in := newIntake(t)
	body := stampedEvent("p-replayed", intakeNow.Add(-4*time.Minute))
	for range 3 {
		if got := in.post(t, "acme", signed(body), body); got != 202 {
			t.Fatalf("delivery: %d", got)
		}
	}
	if n := in.stored(t); n != 1 {
		t.Fatalf("a delivery replayed twice was stored %d times", n)
	}

	bad := cfg
	bad.ReplayWindow = 10 * time.Minute
	if err := bad.Validate(); err == nil {
		t.Error("a replay window longer than half the de-duplication window was accepted")
	}
}

// TestFullStreamAnswers503: when the events stream is full, a delivery is answered non-2xx, so
// Tribe delivers it again, and nothing stored is dropped.
func TestFullStreamAnswers503(t *testing.T) {
	in := newIntake(t)
	ctx := context.Background()
	if err := bus.EnsureStreams(ctx, in.js, bus.StreamOptions{MaxBytes: 4 << 10}); err != nil {
		t.Fatal(err)
	}
	var stored uint64
	for i := range 100 {
		body := stampedEvent(fmt.Sprintf("p-full-%d", i), intakeNow)
		code, answer := in.postAnswer(t, "acme", signed(body), body)
		if code == 202 {
			stored++
			continue
		}
		if code != 503 || !strings.Contains(answer, "stream_full") {
			t.Fatalf("delivery %d: %d %s, want 503 stream_full", i, code, answer)
		}
		if n := in.stored(t); n != stored {
			t.Fatalf("the full stream holds %d events, %d were accepted", n, stored)
		}
		return
	}
	t.Fatal("100 deliveries fitted in a stream of 4 KiB")
}

// TestPlainHashSchemeIsGone: sha512(secret ‖ body) is no signature scheme the gateway takes.
func TestPlainHashSchemeIsGone(t *testing.T) {
	if _, err := newTribeCodec("X-Tribe-Signature", "sha512-concat-base64"); err == nil {
		t.Fatal("KOPPEL_WEBHOOK_SIGNATURE_SCHEME=sha512-concat-base64 accepted")
	}
	for scheme := range signatureSchemes {
		if _, err := newTribeCodec("X-Tribe-Signature", scheme); err != nil {
			t.Errorf("%s: %v", scheme, err)
		}
	}
}
