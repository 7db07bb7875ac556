package main

import (
	"context"
	"log/slog"

	"github.com/koppel/koppel/pkg/syncrun"
	eventsv1 "github.com/koppel/koppel/proto/koppel/events/v1"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
)

// puller runs product pulls. The walking skeleton: the run is bookkept end to end; reading
// e-Boekhouden and writing Tribe come with the products flow.
type puller struct {
	log *slog.Logger
}

func (p *puller) pull(ctx context.Context, tenant *mappingv1.Tenant, cmd *eventsv1.SyncCommand, run *syncrun.Run) error {
	p.log.InfoContext(ctx, "product pull", "run", run.ID(), "trigger", cmd.GetTrigger())
	return run.Add(ctx, &mappingv1.RunCounts{}, 0, 0)
}
