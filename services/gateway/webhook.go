package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/httpapi"
	"github.com/koppel/koppel/pkg/tenantsettings"
	eventsv1 "github.com/koppel/koppel/proto/koppel/events/v1"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// errStreamFull marks a publish refused because the events stream reached its limit.
var errStreamFull = errors.New("the events stream is full")

var webhooksTotal = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "koppel_gateway_webhooks_total",
	Help: "Tribe webhook deliveries, by outcome (accepted, bad_signature, unknown_tenant, malformed, too_large, busy, stale, stream_full, unavailable).",
}, []string{"outcome"})

var webhookEventsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "koppel_gateway_webhook_events_total",
	Help: "Events published from Tribe webhooks, by entity and whether JetStream found them duplicate.",
}, []string{"entity", "duplicate"})

// tribeEvent is one change a delivery announces.
type tribeEvent struct {
	Entity     string // Tribe entity set, e.g. Relation_Organization
	EntityID   string
	Action     eventsv1.ChangeAction
	OccurredAt time.Time
	// Key is stable across redeliveries of the same event, so duplicates collapse.
	Key string
	// Stamped says OccurredAt is the delivery's own timestamp (not the time of arrival).
	Stamped bool
}

// deliveryCodec verifies and decodes Tribe webhook deliveries.
type deliveryCodec interface {
	// SignatureHeader is the header that carries the signature; a delivery without it is
	// refused before its body is read.
	SignatureHeader() string
	Verify(secret, body []byte, header http.Header) error
	// Decode decodes a delivery; registered gives the entity type a webhook ID was registered
	// for, for payloads that do not name their type.
	Decode(body []byte, registered func(webhookID string) string) ([]tribeEvent, error)
	MaxBodyBytes() int64
}

// Defaults of the intake's limits (intakeOptions).
const (
	// DefaultWebhookConcurrency is how many deliveries the intake reads and handles at once; at a
	// few milliseconds a delivery that is thousands a second, and with bodies of at most
	// webhook.MaxBodySize it bounds what unsigned requests can make the gateway hold to 8 MiB.
	DefaultWebhookConcurrency = 32
	// DefaultReplayWindow is how far a delivery's own timestamp may be from the gateway's clock.
	DefaultReplayWindow = 5 * time.Minute
	// bodyReadTimeout bounds reading one delivery's body, so a slow sender cannot keep a slot
	// for the server's whole read timeout; Tribe sends a few hundred bytes at once.
	bodyReadTimeout = 10 * time.Second
)

// intakeOptions are the intake's limits; the zero value means the defaults.
type intakeOptions struct {
	// Concurrency caps the deliveries read and handled at once; beyond it the intake answers 503
	// with Retry-After at once, so Tribe comes back. Default DefaultWebhookConcurrency.
	Concurrency int
	// ReplayWindow refuses a delivery whose timestamp is further than this from now, in either
	// direction (a replay, or a clock gone wrong); the de-duplication window of the events
	// stream covers twice this, so a replay inside the window collapses on its message ID.
	// Default DefaultReplayWindow; negative turns the check off.
	ReplayWindow time.Duration
	// PublishTimeout bounds storing one delivery's events. Default 10 s.
	PublishTimeout time.Duration
	// Now is the clock of the replay check. Default time.Now.
	Now func() time.Time
}

// webhooks is the intake of Tribe webhooks: POST /webhooks/tribe/{tenant}.
//
// It answers 2xx only after JetStream stored every event of the delivery, so an accepted event
// is never lost, and anything else makes Tribe deliver again. What an attacker can send without
// a tenant's secret costs little: a request without a signature header is refused before its
// body is read, bodies are limited to what Tribe sends, only a fixed number of deliveries are
// read at once, and an unknown tenant answers exactly as a wrong signature does.
type webhooks struct {
	mapping mappingv1.MappingServiceClient
	pub     *bus.Publisher
	codec   deliveryCodec
	log     *slog.Logger
	opts    intakeOptions
	slots   chan struct{}
	// decoy is verified against when the tenant has no secret, so that answering an unknown
	// tenant takes the work a known one does.
	decoy []byte
}

func newWebhooks(mapping mappingv1.MappingServiceClient, pub *bus.Publisher, codec deliveryCodec, log *slog.Logger, opts intakeOptions) *webhooks {
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultWebhookConcurrency
	}
	if opts.ReplayWindow == 0 {
		opts.ReplayWindow = DefaultReplayWindow
	}
	if opts.PublishTimeout <= 0 {
		opts.PublishTimeout = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	decoy := make([]byte, 32)
	_, _ = rand.Read(decoy)
	return &webhooks{mapping: mapping, pub: pub, codec: codec, log: log, opts: opts,
		slots: make(chan struct{}, opts.Concurrency), decoy: decoy}
}

func (h *webhooks) reject(w http.ResponseWriter, r *http.Request, status int, outcome, message string, attrs ...any) {
	webhooksTotal.WithLabelValues(outcome).Inc()
	h.log.WarnContext(r.Context(), "webhook rejected", append([]any{"outcome", outcome, "status", status}, attrs...)...)
	httpapi.WriteError(w, status, outcome, message)
}

// unverified answers every delivery that could not be verified alike, whatever the reason
// (no signature, an unknown tenant, a tenant without a secret, a wrong signature), so the
// answer tells nothing about which tenants exist; outcome and the log keep the reason.
func (h *webhooks) unverified(w http.ResponseWriter, r *http.Request, outcome string, attrs ...any) {
	webhooksTotal.WithLabelValues(outcome).Inc()
	h.log.WarnContext(r.Context(), "webhook rejected", append([]any{"outcome", outcome, "status", http.StatusUnauthorized}, attrs...)...)
	httpapi.WriteError(w, http.StatusUnauthorized, "bad_signature", "signature does not match")
}

func (h *webhooks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	ctx := r.Context()
	// The refusals that need no body come first, and close the connection rather than read
	// what the sender still has to send.
	if strings.TrimSpace(r.Header.Get(h.codec.SignatureHeader())) == "" {
		w.Header().Set("Connection", "close")
		h.unverified(w, r, "bad_signature", "tenant", tenant, "reason", "no signature header")
		return
	}
	if !bus.ValidTenantID(tenant) {
		w.Header().Set("Connection", "close")
		h.unverified(w, r, "unknown_tenant", "reason", "not a tenant ID")
		return
	}
	if r.ContentLength > h.codec.MaxBodyBytes() {
		w.Header().Set("Connection", "close")
		h.reject(w, r, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body over %d bytes", h.codec.MaxBodyBytes()), "tenant", tenant)
		return
	}
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	default:
		w.Header().Set("Connection", "close")
		w.Header().Set("Retry-After", "1")
		h.reject(w, r, http.StatusServiceUnavailable, "busy", "too many deliveries at once; deliver again", "tenant", tenant)
		return
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(bodyReadTimeout))
	body, err := readBody(w, r, h.codec.MaxBodyBytes())
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.reject(w, r, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body over %d bytes", h.codec.MaxBodyBytes()), "tenant", tenant)
			return
		}
		h.reject(w, r, http.StatusBadRequest, "malformed", "cannot read body", "tenant", tenant, "error", err)
		return
	}
	secret, err := h.secret(ctx, tenant, peekWebhookID(body))
	switch status.Code(err) {
	case codes.OK:
	case codes.NotFound:
		// Unknown tenant, or one that has no webhook secret yet: either way nothing to accept.
		// The decoy check spends what a real one would.
		_ = h.codec.Verify(h.decoy, body, r.Header)
		h.unverified(w, r, "unknown_tenant", "tenant", tenant, "reason", "no webhook secret (unknown tenant, or not activated)")
		return
	default:
		h.reject(w, r, http.StatusServiceUnavailable, "unavailable", "try again later", "tenant", tenant, "error", err)
		return
	}
	if err := h.codec.Verify(secret.GetValue(), body, r.Header); err != nil {
		h.unverified(w, r, "bad_signature", "tenant", tenant, "error", err)
		return
	}
	lookup := &registrations{h: h, tenant: tenant}
	events, err := h.codec.Decode(body, lookup.entityType)
	if lookup.err != nil {
		// Without the registrations an event could be dropped as of an unknown type.
		h.reject(w, r, http.StatusServiceUnavailable, "unavailable", "try again later", "tenant", tenant, "error", lookup.err)
		return
	}
	if err != nil {
		h.reject(w, r, http.StatusBadRequest, "malformed", "cannot decode delivery: "+err.Error(), "tenant", tenant)
		return
	}
	if e, ok := h.stale(events); ok {
		h.reject(w, r, http.StatusBadRequest, "stale", "the delivery's timestamp is outside the accepted window", "tenant", tenant,
			"timestamp", e.OccurredAt, "window", h.opts.ReplayWindow.String())
		return
	}
	if err := h.publish(ctx, tenant, events); err != nil {
		outcome := "unavailable"
		if errors.Is(err, errStreamFull) {
			outcome = "stream_full"
		}
		h.reject(w, r, http.StatusServiceUnavailable, outcome, "cannot store the events; deliver again", "tenant", tenant, "error", err)
		return
	}
	webhooksTotal.WithLabelValues("accepted").Inc()
	h.log.InfoContext(ctx, "webhook accepted", "tenant", tenant, "events", len(events))
	httpapi.WriteJSON(w, http.StatusAccepted, map[string]int{"accepted": len(events)})
}

// readBody reads at most limit bytes of the body into a buffer sized from Content-Length, so
// that a body costs its own size and not the doublings io.ReadAll grows by.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	size := int64(512)
	if r.ContentLength > 0 && r.ContentLength <= limit {
		// One byte more, so that the read that finds the end needs no room.
		size = r.ContentLength + 1
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// stale returns an event whose own timestamp is outside the replay window. Deliveries without
// one are not judged: nothing in them tells an old delivery from a new one.
func (h *webhooks) stale(events []tribeEvent) (tribeEvent, bool) {
	if h.opts.ReplayWindow < 0 {
		return tribeEvent{}, false
	}
	now := h.opts.Now()
	for _, e := range events {
		if !e.Stamped {
			continue
		}
		if d := now.Sub(e.OccurredAt); d > h.opts.ReplayWindow || d < -h.opts.ReplayWindow {
			return e, true
		}
	}
	return tribeEvent{}, false
}

// secret returns the secret Tribe signs the deliveries of a webhook registration with: each
// registration has its own ("webhook_secret_<id>"); "webhook_secret" serves registrations made
// by hand.
func (h *webhooks) secret(ctx context.Context, tenant, webhookID string) (*mappingv1.GetSecretResponse, error) {
	if webhookID != "" {
		res, err := h.mapping.GetSecret(ctx, &mappingv1.GetSecretRequest{TenantId: tenant, Name: tenantsettings.WebhookSecret(webhookID)})
		if status.Code(err) != codes.NotFound && status.Code(err) != codes.InvalidArgument {
			return res, err
		}
	}
	return h.mapping.GetSecret(ctx, &mappingv1.GetSecretRequest{TenantId: tenant, Name: tenantsettings.SecretWebhook})
}

// peekWebhookID reads the webhookId of a delivery (the first envelope of a batch) before the
// signature is checked, to pick the secret; it is "" when there is none. It reads the key
// exactly as webhook.Decode does: encoding/json's case-insensitive field matching would let
// {"webhookId":"a","WEBHOOKID":"b"} be verified with b's secret and decoded as a's.
func peekWebhookID(body []byte) string {
	first := body
	var batch []json.RawMessage
	if json.Unmarshal(body, &batch) == nil {
		if len(batch) == 0 {
			return ""
		}
		first = batch[0]
	}
	var env map[string]json.RawMessage
	if json.Unmarshal(first, &env) != nil {
		return ""
	}
	var id string
	if json.Unmarshal(env["webhookId"], &id) != nil {
		return ""
	}
	return id
}

// registrations looks the tenant's webhook registrations up once, and only when a payload needs
// it; a failed look-up is kept in err so the delivery is refused rather than half dropped.
type registrations struct {
	h      *webhooks
	tenant string
	links  map[string]string
	err    error
}

func (r *registrations) entityType(webhookID string) string {
	if r.links == nil && r.err == nil {
		res, err := r.h.mapping.GetTenant(context.Background(), &mappingv1.GetTenantRequest{TenantId: r.tenant})
		if err != nil {
			r.err = err
			return ""
		}
		r.links = res.GetTenant().GetSettings().GetLinks()
		if r.links == nil {
			r.links = map[string]string{}
		}
	}
	return r.links[tenantsettings.WebhookPrefix+webhookID]
}

func (h *webhooks) publish(ctx context.Context, tenant string, events []tribeEvent) error {
	// The publish must finish even when Tribe hangs up, or a half-stored delivery would
	// depend on the next retry.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.opts.PublishTimeout)
	defer cancel()
	for _, e := range events {
		subject, err := bus.TribeEventSubject(tenant, e.Entity)
		if err != nil {
			return err
		}
		change := &eventsv1.TribeChange{TenantId: tenant, Entity: e.Entity, EntityId: e.EntityID, Action: e.Action,
			OccurredAt: timestamppb.New(e.OccurredAt), EventKey: e.Key}
		dup, err := h.pub.Publish(ctx, subject, change, "tribe:"+tenant+":"+e.Key)
		if bus.IsStreamFull(err) {
			return fmt.Errorf("%w: %w", errStreamFull, err)
		}
		if err != nil {
			return err
		}
		webhookEventsTotal.WithLabelValues(e.Entity, fmt.Sprint(dup)).Inc()
	}
	return nil
}
