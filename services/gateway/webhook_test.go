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
	"sync"
	"testing"
	"time"

	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/bustest"
	"github.com/koppel/koppel/pkg/localinfra"
	"github.com/koppel/koppel/pkg/tribe/webhook"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/koppel/koppel/services/mapping/mappingtest"
	"github.com/nats-io/nats.go/jetstream"
)

type intake struct {
	srv  *httptest.Server
	nats *localinfra.NATS
	js   jetstream.JetStream
	m    *mappingtest.Service
}

func newIntake(t *testing.T) *intake {
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
	if _, err := m.Client.PutSecret(ctx, &mappingv1.PutSecretRequest{TenantId: "acme", Name: SecretWebhook, Value: []byte("whsec")}); err != nil {
		t.Fatal(err)
	}
	codec, _ := newTribeCodec("X-Tribe-Signature", "hmac-sha512-base64")
	mux := http.NewServeMux()
	mux.Handle("POST /webhooks/tribe/{tenant}", &webhooks{mapping: m.Client, pub: bus.NewPublisher(js), codec: codec,
		log: slog.New(slog.NewTextHandler(io.Discard, nil)), publishTimeout: 500 * time.Millisecond})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &intake{srv: srv, nats: ns, js: js, m: m}
}

func (in *intake) post(t *testing.T, tenant, signature string, body []byte) int {
	t.Helper()
	req, _ := http.NewRequest("POST", in.srv.URL+"/webhooks/tribe/"+tenant, bytes.NewReader(body))
	if signature != "" {
		req.Header.Set("X-Tribe-Signature", signature)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
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
		{"unknown tenant", "nobody", signed(ok), ok, 404},
		{"invalid tenant", "NOT_VALID", signed(ok), ok, 404},
		{"malformed", "acme", signed([]byte("{")), []byte("{"), 400},
		{"no entity", "acme", signed([]byte(`{"payload":{}}`)), []byte(`{"payload":{}}`), 400},
		{"oversized", "acme", "x", bytes.Repeat([]byte("a"), webhook.MaxBodySize+1), 413},
	}
	for _, c := range cases {
		if got := in.post(t, c.tenant, c.signature, c.body); got != c.want {
			t.Errorf("%s: got %d, want %d", c.name, got, c.want)
		}
	}
	if n := in.stored(t); n != 1 {
		t.Fatalf("stored %d events, want only the accepted one", n)
	}
}

func TestDuplicateStormIsPublishedOnce(t *testing.T) {
	in := newIntake(t)
	body := event("p-storm")
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if got := in.post(t, "acme", signed(body), body); got != 202 {
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
