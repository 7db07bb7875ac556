package main

import (
	"context"
	"fmt"
	"iter"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/syncrun"
	"github.com/koppel/koppel/pkg/tribe"
	eventsv1 "github.com/koppel/koppel/proto/koppel/events/v1"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The Tribe scan (sync kind tribe-scan) is the polling fallback under Tribe's webhooks. A
// webhook Tribe gave up on, or one stored on the bus and lost with NATS state, is never seen
// otherwise: a relation edited in Tribe would wait for its next change, and an invoice sent in
// Tribe would never be booked. The scan lists what changed in Tribe since the last scan and
// publishes one TribeChange per record on the subject a webhook would have used, so the relation
// and invoice flows do the rest, level-triggered: a record already in sync is an echo and
// changes nothing, a sent invoice not linked yet is booked.

// scanOverlap is how far before its cursor a scan starts reading: a change Tribe commits a
// little after a later one (its LastMutationDate is older than the newest seen), or one made
// on a Tribe server whose clock lags, is still found. Records read twice are published under
// the same message ID, so within JetStream's duplicate window they collapse, and after it they
// are echoes.
const scanOverlap = 2 * time.Minute

// scanFlush is how many records a scan handles between storing its progress.
const scanFlush = 100

// scanSet is one Tribe entity set the scan reads.
type scanSet struct {
	set  string
	noun string
	// cursor names the set's cursor: the newest LastMutationDate the scan has published, RFC
	// 3339 with nanoseconds.
	cursor string
	// only narrows the set to what a flow acts on; the zero Filter reads every change.
	only tribe.Filter
}

// scanSets are what the scan reads, in order. Relations are read whether customers or not (the
// relation flow reads each one and ignores non-customers), and customer relationships too, since
// a relation becoming a customer need not change the relation itself; the relation flow takes a
// relationship's change as a change of its relation, as it does for webhooks. Of invoices only
// the Sent ones: the invoice flow ignores the others.
var scanSets = []scanSet{
	{set: bus.EntityOrganization, noun: "organisations", cursor: "tribe-scan-org"},
	{set: bus.EntityPerson, noun: "persons", cursor: "tribe-scan-person"},
	{set: bus.EntityOrgCustomer, noun: "organisation customer relationships", cursor: "tribe-scan-org-customer"},
	{set: bus.EntityPersonCustomer, noun: "person customer relationships", cursor: "tribe-scan-person-customer"},
	{set: bus.EntityInvoice, noun: "sent invoices", cursor: "tribe-scan-invoice", only: tribe.Eq("Phase/Code", tribe.PhaseSent)},
}

// changeLister is what the scan needs of Tribe (tribe.Client).
type changeLister interface {
	ChangedSince(ctx context.Context, set string, since time.Time, only tribe.Filter) iter.Seq2[tribe.Meta, error]
}

// publisher is what the scan needs of the bus (bus.Publisher).
type publisher interface {
	Publish(ctx context.Context, subject string, msg proto.Message, msgID string) (bool, error)
}

// tribeScanner runs tribe-scan commands.
type tribeScanner struct {
	mapping mappingv1.MappingServiceClient
	tribe   func(ctx context.Context, t *mappingv1.Tenant) (changeLister, error)
	pub     publisher
	log     *slog.Logger
	now     func() time.Time
	// retryInvoices, when set, pushes again the tenant's invoices that wait for links or a
	// customer: the safety net under the retries their causes trigger.
	retryInvoices func(ctx context.Context, tenant string) error
}

// scanTally counts one run's records.
type scanTally struct {
	seen, published, duplicate int64
	bySet                      map[string]int64
}

// scan lists each set's records changed since its cursor (less scanOverlap) and publishes them.
// A tenant's first scan, or one whose cursor was lost with Redis, publishes nothing and starts
// its cursor at now: the scheduler runs the first scan at activation, and what was sent in Tribe
// before koppel was activated is no change for koppel to book (an invoice sent the hour before is
// the bookkeeper's, who may have booked it under another number). Webhooks cover the time between
// activation and the first scan; the next scan reads from its cursor less scanOverlap.
//
// Run counts: done is the records read; every record read is published (the listing asks only
// for what a flow acts on), and the run's message says how many were new on the bus and how
// many were there already. The records' own outcomes are those of the flows that handle them.
func (s *tribeScanner) scan(ctx context.Context, tenant *mappingv1.Tenant, _ *eventsv1.SyncCommand, run *syncrun.Run) error {
	tr, err := s.tribe(ctx, tenant)
	if err != nil {
		return err
	}
	tally := &scanTally{bySet: map[string]int64{}}
	defer func() { run.SetMessage(tally.message()) }()
	for _, ss := range scanSets {
		if err := s.scanSet(ctx, tenant, tr, ss, run, tally); err != nil {
			return err
		}
	}
	if s.retryInvoices != nil {
		if err := s.retryInvoices(ctx, tenant.GetId()); err != nil {
			return fmt.Errorf("retry waiting invoices: %w", err)
		}
	}
	return nil
}

func (s *tribeScanner) scanSet(ctx context.Context, tenant *mappingv1.Tenant, tr changeLister, ss scanSet, run *syncrun.Run, tally *scanTally) error {
	id := tenant.GetId()
	cursor, err := s.cursor(ctx, id, ss.cursor)
	if err != nil {
		return err
	}
	if cursor.IsZero() {
		_, err := s.mapping.SetCursor(ctx, &mappingv1.SetCursorRequest{TenantId: id, Name: ss.cursor, Value: s.now().UTC().Format(time.RFC3339Nano)})
		if err != nil {
			return fmt.Errorf("save cursor %s: %w", ss.cursor, err)
		}
		return nil
	}
	since := cursor.Add(-scanOverlap)
	subject, err := bus.TribeEventSubject(id, ss.set)
	if err != nil {
		return err
	}
	newest, pending := cursor, int64(0)
	flush := func() error {
		if err := run.Add(ctx, &mappingv1.RunCounts{}, pending, 0); err != nil {
			return err
		}
		pending = 0
		// Listed oldest first, so everything up to newest is on the bus.
		if _, err := s.mapping.SetCursor(ctx, &mappingv1.SetCursorRequest{TenantId: id, Name: ss.cursor,
			Value: newest.UTC().Format(time.RFC3339Nano)}); err != nil {
			return fmt.Errorf("save cursor %s: %w", ss.cursor, err)
		}
		return nil
	}
	for m, err := range tr.ChangedSince(ctx, ss.set, since, ss.only) {
		if err != nil {
			return fmt.Errorf("list changed %s: %w", ss.noun, err)
		}
		if m.ID == "" {
			continue
		}
		msgID := fmt.Sprintf("tribe-scan:%s:%s:%s:%d", id, ss.set, m.ID, m.LastMutationDate.UnixNano())
		change := &eventsv1.TribeChange{TenantId: id, Entity: ss.set, EntityId: m.ID,
			Action: eventsv1.ChangeAction_CHANGE_ACTION_UPDATED, OccurredAt: timestamppb.New(m.LastMutationDate), EventKey: msgID}
		dup, err := s.pub.Publish(ctx, subject, change, msgID)
		if err != nil {
			return err
		}
		tally.seen++
		if dup {
			tally.duplicate++
		} else {
			tally.published++
			tally.bySet[ss.noun]++
		}
		if m.LastMutationDate.After(newest) {
			newest = m.LastMutationDate
		}
		if pending++; pending >= scanFlush {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// cursor is the stored cursor of a set; zero when there is none (or it cannot be read as a time,
// which is treated the same: the scan starts afresh at now).
func (s *tribeScanner) cursor(ctx context.Context, tenant, name string) (time.Time, error) {
	res, err := s.mapping.GetCursor(ctx, &mappingv1.GetCursorRequest{TenantId: tenant, Name: name})
	if err != nil {
		return time.Time{}, fmt.Errorf("get cursor %s: %w", name, err)
	}
	if res.GetValue() == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, res.GetValue())
	if err != nil {
		s.log.WarnContext(ctx, "unreadable tribe-scan cursor; the scan starts afresh at now", "tenant", tenant, "cursor", name, "value", res.GetValue())
		return time.Time{}, nil
	}
	return t, nil
}

// message says what the run published, such as "published 3: 1 organisations, 2 sent
// invoices; 4 were on the bus already".
func (t *scanTally) message() string {
	var parts []string
	for _, ss := range scanSets {
		if n := t.bySet[ss.noun]; n > 0 {
			parts = append(parts, strconv.FormatInt(n, 10)+" "+ss.noun)
		}
	}
	msg := "published " + strconv.FormatInt(t.published, 10)
	if len(parts) > 0 {
		msg += ": " + strings.Join(parts, ", ")
	}
	if t.duplicate > 0 {
		msg += fmt.Sprintf("; %d were on the bus already", t.duplicate)
	}
	return msg
}
