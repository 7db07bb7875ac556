package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/httpapi"
	eventsv1 "github.com/koppel/koppel/proto/koppel/events/v1"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// SecretWebhook is the name of the tenant secret that Tribe signs deliveries with.
const SecretWebhook = "webhook_secret"

var webhooksTotal = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "koppel_gateway_webhooks_total",
	Help: "Tribe webhook deliveries, by outcome (accepted, bad_signature, malformed, unknown_tenant, too_large, unavailable).",
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
}

// deliveryCodec verifies and decodes Tribe webhook deliveries.
type deliveryCodec interface {
	Verify(secret, body []byte, header http.Header) error
	// Decode decodes a delivery; registered gives the entity type a webhook ID was registered
	// for, for payloads that do not name their type.
	Decode(body []byte, registered func(webhookID string) string) ([]tribeEvent, error)
	MaxBodyBytes() int64
}

// webhooks is the intake of Tribe webhooks: POST /webhooks/tribe/{tenant}.
//
// It answers 2xx only after JetStream stored every event of the delivery, so an accepted event
// is never lost, and anything else makes Tribe deliver again.
type webhooks struct {
	mapping mappingv1.MappingServiceClient
	pub     *bus.Publisher
	codec   deliveryCodec
	log     *slog.Logger
	// publishTimeout bounds storing one delivery's events (default 10s).
	publishTimeout time.Duration
}

func (h *webhooks) reject(w http.ResponseWriter, r *http.Request, status int, outcome, message string, attrs ...any) {
	webhooksTotal.WithLabelValues(outcome).Inc()
	h.log.WarnContext(r.Context(), "webhook rejected", append([]any{"outcome", outcome, "status", status}, attrs...)...)
	httpapi.WriteError(w, status, outcome, message)
}

func (h *webhooks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	ctx := r.Context()
	if !bus.ValidTenantID(tenant) {
		h.reject(w, r, http.StatusNotFound, "unknown_tenant", "no such tenant")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.codec.MaxBodyBytes()))
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
		if _, terr := h.mapping.GetTenant(ctx, &mappingv1.GetTenantRequest{TenantId: tenant}); status.Code(terr) == codes.NotFound {
			h.reject(w, r, http.StatusNotFound, "unknown_tenant", "no such tenant", "tenant", tenant)
			return
		}
		h.reject(w, r, http.StatusUnauthorized, "bad_signature", "tenant has no webhook secret", "tenant", tenant)
		return
	default:
		h.reject(w, r, http.StatusServiceUnavailable, "unavailable", "try again later", "tenant", tenant, "error", err)
		return
	}
	if err := h.codec.Verify(secret.GetValue(), body, r.Header); err != nil {
		h.reject(w, r, http.StatusUnauthorized, "bad_signature", "signature does not match", "tenant", tenant, "error", err)
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
	if err := h.publish(ctx, tenant, events); err != nil {
		h.reject(w, r, http.StatusServiceUnavailable, "unavailable", "cannot store the events; deliver again", "tenant", tenant, "error", err)
		return
	}
	webhooksTotal.WithLabelValues("accepted").Inc()
	h.log.InfoContext(ctx, "webhook accepted", "tenant", tenant, "events", len(events))
	httpapi.WriteJSON(w, http.StatusAccepted, map[string]int{"accepted": len(events)})
}

// LinkWebhook prefixes the tenant-settings link that records a webhook registration's entity
// type: "webhook:<id>" -> "Relation.Organization".
const LinkWebhook = "webhook:"

// secret returns the secret Tribe signs the deliveries of a webhook registration with: each
// registration has its own ("webhook_secret_<id>"); "webhook_secret" serves registrations made
// by hand.
func (h *webhooks) secret(ctx context.Context, tenant, webhookID string) (*mappingv1.GetSecretResponse, error) {
	if webhookID != "" {
		res, err := h.mapping.GetSecret(ctx, &mappingv1.GetSecretRequest{TenantId: tenant, Name: webhookSecretName(webhookID)})
		if status.Code(err) != codes.NotFound && status.Code(err) != codes.InvalidArgument {
			return res, err
		}
	}
	return h.mapping.GetSecret(ctx, &mappingv1.GetSecretRequest{TenantId: tenant, Name: SecretWebhook})
}

// peekWebhookID reads the webhookId of a delivery (the first envelope of a batch) before the
// signature is checked, to pick the secret; it is "" when there is none.
func peekWebhookID(body []byte) string {
	var one struct {
		WebhookID string `json:"webhookId"`
	}
	if json.Unmarshal(body, &one) == nil && one.WebhookID != "" {
		return one.WebhookID
	}
	var batch []struct {
		WebhookID string `json:"webhookId"`
	}
	if json.Unmarshal(body, &batch) == nil && len(batch) > 0 {
		return batch[0].WebhookID
	}
	return ""
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
	return r.links[LinkWebhook+webhookID]
}

func (h *webhooks) publish(ctx context.Context, tenant string, events []tribeEvent) error {
	// The publish must finish even when Tribe hangs up, or a half-stored delivery would
	// depend on the next retry.
	timeout := h.publishTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	for _, e := range events {
		subject, err := bus.TribeEventSubject(tenant, e.Entity)
		if err != nil {
			return err
		}
		change := &eventsv1.TribeChange{TenantId: tenant, Entity: e.Entity, EntityId: e.EntityID, Action: e.Action,
			OccurredAt: timestamppb.New(e.OccurredAt), EventKey: e.Key}
		dup, err := h.pub.Publish(ctx, subject, change, "tribe:"+tenant+":"+e.Key)
		if err != nil {
			return err
		}
		webhookEventsTotal.WithLabelValues(e.Entity, fmt.Sprint(dup)).Inc()
	}
	return nil
}
