package main

import (
	"context"
	"fmt"
	"log/slog"

	eventsv1 "github.com/koppel/koppel/proto/koppel/events/v1"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// pusher runs the invoice flow. The walking skeleton: a Tribe invoice change is matched to its
// link; reading the invoice and booking it come with the invoices flow.
type pusher struct {
	mapping mappingv1.MappingServiceClient
	log     *slog.Logger
}

func (p *pusher) push(ctx context.Context, tenant *mappingv1.Tenant, change *eventsv1.TribeChange) error {
	_, err := p.mapping.GetLink(ctx, &mappingv1.GetLinkRequest{TenantId: tenant.GetId(), Kind: "invoice", TribeId: change.GetEntityId()})
	switch status.Code(err) {
	case codes.OK:
		p.log.InfoContext(ctx, "invoice already booked", "tribe_id", change.GetEntityId())
	case codes.NotFound:
		p.log.InfoContext(ctx, "invoice change", "tribe_id", change.GetEntityId())
	default:
		return fmt.Errorf("get link: %w", err)
	}
	return nil
}
