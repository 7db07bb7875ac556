package bus

import (
	"context"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Consumers of the worker services. A service runs one worker per consumer it owns.
const (
	ConsumerRelationEvents   = "relation-evt"
	ConsumerRelationCommands = "relation-cmd"
	ConsumerInvoiceEvents    = "invoice-evt"
	ConsumerProductCommands  = "product-cmd"
	ConsumerPaymentCommands  = "payment-cmd"
)

// Sync command kinds (the last token of sync.cmd subjects).
const (
	KindRelation     = "relation"      // periodic pull of e-Boekhouden relation changes
	KindRelationScan = "relation-scan" // cheap frequent scan for new relations
	KindImport       = "import"        // initial import at activation
	KindTribeScan    = "tribe-scan"    // Tribe records changed since the last scan, for lost webhooks
	KindProduct      = "product"
	KindPayment      = "payment"
	KindRebuild      = "rebuild" // the links found again from both systems (after the loss of Redis)
)

// Triggers of sync commands: why a run was started (SyncCommand.trigger, Run.trigger).
const (
	TriggerSchedule   = "schedule"   // the scheduler, on the tenant's schedule
	TriggerManual     = "manual"     // an operator's run-now
	TriggerActivation = "activation" // the initial import at activation
	TriggerResume     = "resume"     // the catch-up runs when a paused tenant resumes
)

// exclusiveGroups are kinds that must not run at once for one tenant. The import, the periodic
// relation pull and the relation scan each read every e-Boekhouden relation with the tenant's one
// budget; a rebuild reads everything and links what it finds, which a run beside it would change
// under its feet.
var exclusiveGroups = [][]string{
	{KindImport, KindRelation, KindRelationScan, KindRebuild},
	{KindProduct, KindRebuild},
	{KindPayment, KindRebuild},
}

// ExclusiveKinds returns the kinds a run of kind must not run beside (kind itself included), or
// nil when it runs beside anything.
func ExclusiveKinds(kind string) []string {
	var out []string
	for _, g := range exclusiveGroups {
		if slices.Contains(g, kind) {
			for _, k := range g {
				if !slices.Contains(out, k) {
					out = append(out, k)
				}
			}
		}
	}
	return out
}

// Tribe entity sets that arrive as events.
const (
	EntityOrganization = "Relation_Organization"
	EntityPerson       = "Relation_Person"
	EntityInvoice      = "Activity_Invoice"
	// A relation becoming a customer arrives as a change of its customer relationship.
	EntityOrgCustomer    = "Relationship_Organization_CommercialRelationship_Customer"
	EntityPersonCustomer = "Relationship_Person_CommercialRelationship_Customer"
)

// EntityTypes maps the dotted Tribe entity types koppel registers webhooks for (at activation)
// to the entity sets their events are published as (by the gateway); deliveries of other types
// are accepted and dropped.
var EntityTypes = map[string]string{
	"Relation.Organization": EntityOrganization,
	"Relation.Person":       EntityPerson,
	"Activity.Invoice":      EntityInvoice,
	"Relationship.Organization.CommercialRelationship.Customer": EntityOrgCustomer,
	"Relationship.Person.CommercialRelationship.Customer":       EntityPersonCustomer,
}

// workerConsumers are the worker consumers of the default shard; a named shard has the same ones
// with its name appended to durable name and filter subjects.
var workerConsumers = []ConsumerSpec{
	{Stream: StreamTribeEvents, Durable: ConsumerRelationEvents,
		FilterSubjects: []string{"tribe.evt.*." + EntityOrganization, "tribe.evt.*." + EntityPerson,
			"tribe.evt.*." + EntityOrgCustomer, "tribe.evt.*." + EntityPersonCustomer}},
	{Stream: StreamSyncCommands, Durable: ConsumerRelationCommands,
		FilterSubjects: []string{"sync.cmd.*." + KindRelation, "sync.cmd.*." + KindRelationScan, "sync.cmd.*." + KindImport,
			"sync.cmd.*." + KindTribeScan, "sync.cmd.*." + KindRebuild},
		// An import runs long; it keeps itself alive with in-progress and resumes where it
		// stopped when redelivered.
		MaxDeliver: 20, HandleTimeout: 4 * time.Hour},
	{Stream: StreamTribeEvents, Durable: ConsumerInvoiceEvents,
		FilterSubjects: []string{"tribe.evt.*." + EntityInvoice}},
	{Stream: StreamSyncCommands, Durable: ConsumerProductCommands,
		FilterSubjects: []string{"sync.cmd.*." + KindProduct}},
	{Stream: StreamSyncCommands, Durable: ConsumerPaymentCommands,
		FilterSubjects: []string{"sync.cmd.*." + KindPayment}},
}

// WorkerConsumers are the durable consumers of the worker services, for every shard. They are
// created with the streams, by whichever service starts first, because an interest-retention
// stream drops messages that no consumer is bound to yet.
func WorkerConsumers(shards Shards) []ConsumerSpec {
	var specs []ConsumerSpec
	for _, shard := range shards.Names() {
		for _, base := range workerConsumers {
			spec, _ := ShardConsumerSpec(base.Durable, shard)
			specs = append(specs, spec)
		}
	}
	return specs
}

// ShardConsumerSpec returns the worker consumer base (such as ConsumerRelationEvents) of a shard.
func ShardConsumerSpec(base, shard string) (ConsumerSpec, bool) {
	for _, s := range workerConsumers {
		if s.Durable != base {
			continue
		}
		if shard == "" || shard == DefaultShard {
			return s, true
		}
		s.Durable = ShardConsumer(base, shard)
		filters := make([]string, len(s.FilterSubjects))
		for i, f := range s.FilterSubjects {
			filters[i] = f + "." + shard
		}
		s.FilterSubjects = filters
		return s, true
	}
	return ConsumerSpec{}, false
}

// EnsureTopology creates or updates the streams and the worker consumers of every shard. Every
// service calls it at start-up, so whichever starts first makes sure no published message finds
// no consumer. It never deletes the consumers of a shard no longer listed: they may still hold
// messages (retire a shard by moving its tenants away and waiting until its consumers are empty).
func EnsureTopology(ctx context.Context, js jetstream.JetStream, o StreamOptions, shards Shards) error {
	if err := EnsureStreams(ctx, js, o); err != nil {
		return err
	}
	for _, spec := range WorkerConsumers(shards) {
		if _, err := EnsureConsumer(ctx, js, spec); err != nil {
			return err
		}
	}
	return nil
}
