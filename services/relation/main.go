// Command relation keeps organisations and persons in sync both ways: the initial import and the
// periodic pull from e-Boekhouden, the immediate push of Tribe changes, and the periodic scan of
// Tribe that catches the changes whose webhooks were lost.
package main

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/deps"
	"github.com/koppel/koppel/pkg/flow"
	"github.com/koppel/koppel/pkg/invoiceretry"
	"github.com/koppel/koppel/pkg/service"
	"github.com/koppel/koppel/pkg/syncrun"
	"github.com/koppel/koppel/pkg/tenantclients"
	eventsv1 "github.com/koppel/koppel/proto/koppel/events/v1"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/koppel/koppel/services/relation/record"
)

type config struct {
	service.Common
	deps.WorkerConfig
	tenantclients.Options
	RunConcurrency int `env:"KOPPEL_RUN_CONCURRENCY" default:"8" help:"Relations one import or pull handles at once; the tenant's API budgets set the pace, this keeps them busy."`
}

// Validate checks what types alone do not.
func (c config) Validate() error {
	if c.RunConcurrency < 1 || c.RunConcurrency > 64 {
		return errors.New("KOPPEL_RUN_CONCURRENCY: want 1 to 64")
	}
	return c.WorkerConfig.Validate()
}

func main() {
	var cfg config
	service.Main("relation", &cfg, func(ctx context.Context, env *service.Env) error {
		return deps.RunWorker(ctx, env, cfg.WorkerConfig, func(d *deps.Deps) (map[string]bus.Handler, error) {
			clients, err := tenantclients.New(d.Mapping, cfg.Options)
			if err != nil {
				return nil, err
			}
			s := &syncer{mapping: d.Mapping, connect: connector(clients), holder: deps.HolderName(), log: env.Log, concurrency: cfg.RunConcurrency,
				linked: func(ctx context.Context, tenant string, kind record.Kind, tribeID string) {
					// A customer now in e-Boekhouden: its invoices waiting for it are booked.
					if _, err := invoiceretry.Retry(ctx, d.Mapping, d.Publisher, tenant, invoiceretry.WaitingOnCustomer(string(kind), tribeID)); err != nil {
						env.Log.WarnContext(ctx, "retry the invoices waiting for a customer", "tenant", tenant, "tribe_id", tribeID, "error", err)
					}
				}}
			scanner := &tribeScanner{mapping: d.Mapping, pub: d.Publisher, log: env.Log, now: time.Now,
				retryInvoices: func(ctx context.Context, tenant string) error {
					_, err := invoiceretry.Retry(ctx, d.Mapping, d.Publisher, tenant, invoiceretry.Any)
					return err
				},
				tribe: func(ctx context.Context, t *mappingv1.Tenant) (changeLister, error) {
					tr, err := clients.Tribe(ctx, t)
					if err != nil {
						return nil, tenantclients.AsIssue(t, err)
					}
					return tr, nil
				}}
			return map[string]bus.Handler{
				bus.ConsumerRelationEvents:   flow.ChangeHandler(d.Mapping, s.push),
				bus.ConsumerRelationCommands: flow.CommandHandler(d.Mapping, commands(s, scanner, &rebuildJob{mapping: d.Mapping, clients: clients.Both, log: env.Log})),
			}, nil
		})
	})
}

// commands dispatches the relation-cmd consumer's kinds: the Tribe scan to the scanner, a
// rebuild of the mapping to the rebuild job, the runs over e-Boekhouden's relations (import,
// relation, relation-scan) to the syncer.
func commands(s *syncer, scanner *tribeScanner, rebuild *rebuildJob) flow.CommandFunc {
	return func(ctx context.Context, t *mappingv1.Tenant, cmd *eventsv1.SyncCommand, run *syncrun.Run) error {
		switch cmd.GetKind() {
		case bus.KindTribeScan:
			return scanner.scan(ctx, t, cmd, run)
		case bus.KindRebuild:
			return rebuild.run(ctx, t, cmd, run)
		}
		return s.pull(ctx, t, cmd, run)
	}
}

// connector gives the ports of a tenant, keeping each tenant's Tribe look-ups for as long as its
// settings stay the same.
func connector(clients *tenantclients.Cache) connectFunc {
	type entry struct {
		version string
		lk      *tribeLookups
	}
	var mu sync.Mutex
	lookups := map[string]entry{}
	return func(ctx context.Context, t *mappingv1.Tenant) (Books, CRM, error) {
		eb, err := clients.EBoekhouden(ctx, t)
		if err != nil {
			return nil, nil, tenantclients.AsIssue(t, err)
		}
		tr, err := clients.Tribe(ctx, t)
		if err != nil {
			return nil, nil, tenantclients.AsIssue(t, err)
		}
		version := t.GetUpdatedAt().AsTime().String()
		mu.Lock()
		e, ok := lookups[t.GetId()]
		if !ok || e.version != version {
			e = entry{version: version, lk: &tribeLookups{}}
			lookups[t.GetId()] = e
		}
		mu.Unlock()
		return books{c: eb}, crm{c: tr, lk: e.lk}, nil
	}
}
