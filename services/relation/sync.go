package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/syncrun"
	eventsv1 "github.com/koppel/koppel/proto/koppel/events/v1"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// syncer runs the relation flow. The walking skeleton: a Tribe change is matched to its link and
// a pull is bookkept as a run; reading and writing the two systems come with the relations flow.
type syncer struct {
	mapping mappingv1.MappingServiceClient
	log     *slog.Logger
}

func linkKind(entity string) string {
	if entity == bus.EntityPerson {
		return "person"
	}
	return "organization"
}

func (s *syncer) push(ctx context.Context, tenant *mappingv1.Tenant, change *eventsv1.TribeChange) error {
	res, err := s.mapping.GetLink(ctx, &mappingv1.GetLinkRequest{TenantId: tenant.GetId(), Kind: linkKind(change.GetEntity()), TribeId: change.GetEntityId()})
	switch status.Code(err) {
	case codes.OK:
		s.log.InfoContext(ctx, "relation change for a linked record", "entity", change.GetEntity(), "tribe_id", change.GetEntityId(), "eboekhouden_id", res.GetLink().GetEboekhoudenId())
	case codes.NotFound:
		s.log.InfoContext(ctx, "relation change for a new record", "entity", change.GetEntity(), "tribe_id", change.GetEntityId())
	default:
		return fmt.Errorf("get link: %w", err)
	}
	return nil
}

func (s *syncer) pull(ctx context.Context, tenant *mappingv1.Tenant, cmd *eventsv1.SyncCommand, run *syncrun.Run) error {
	s.log.InfoContext(ctx, "relation run", "kind", cmd.GetKind(), "run", run.ID(), "trigger", cmd.GetTrigger())
	return run.Add(ctx, &mappingv1.RunCounts{}, 0, 0)
}
