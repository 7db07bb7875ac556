package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/mapping"
	"github.com/koppel/koppel/pkg/syncrun"
	eventsv1 "github.com/koppel/koppel/proto/koppel/events/v1"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/koppel/koppel/services/relation/record"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// connectFunc gives the ports of a tenant's two systems.
type connectFunc func(ctx context.Context, tenant *mappingv1.Tenant) (Books, CRM, error)

// syncer runs the relation flow: the immediate push of Tribe changes, and the runs that read
// e-Boekhouden (the initial import, the periodic pull and the frequent scan for new relations).
type syncer struct {
	mapping mappingv1.MappingServiceClient
	connect connectFunc
	// holder names this process in leases.
	holder string
	log    *slog.Logger
	// chunk is how many relations a run handles between progress updates. Default 100.
	chunk int
}

// leaseTTL bounds how long a dead worker keeps a relation locked; one relation's sync takes far less.
const leaseTTL = 30 * time.Second

func kindOf(entity string) record.Kind {
	if entity == bus.EntityPerson || entity == bus.EntityPersonCustomer {
		return record.Person
	}
	return record.Organization
}

// lease serialises writers of one relation across every replica.
func (s *syncer) lease(ctx context.Context, tenant, name string) (func(), error) {
	l, err := mapping.Leases{Client: s.mapping, Holder: s.holder, TTL: leaseTTL}.Acquire(ctx, tenant, name, "relation "+name)
	if err != nil {
		return nil, err
	}
	return l.Release, nil
}

func (s *syncer) getLink(ctx context.Context, tenant string, kind record.Kind, tribeID, ebID string) (*mappingv1.Link, error) {
	res, err := s.mapping.GetLink(ctx, &mappingv1.GetLinkRequest{TenantId: tenant, Kind: string(kind), TribeId: tribeID, EboekhoudenId: ebID})
	if status.Code(err) == codes.NotFound {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get link: %w", err)
	}
	return res.GetLink(), nil
}

// link stores a new link; a link that exists already for another record is a permanent problem
// the tenant must resolve.
func (s *syncer) link(ctx context.Context, tenant string, kind record.Kind, tribeID, ebID string) (*mappingv1.Link, error) {
	res, err := s.mapping.CreateLink(ctx, &mappingv1.CreateLinkRequest{TenantId: tenant, Kind: string(kind), TribeId: tribeID, EboekhoudenId: ebID})
	if status.Code(err) == codes.AlreadyExists {
		return nil, bus.Permanent(err, &mappingv1.Issue{
			Key: fmt.Sprintf("%s/%s/duplicate", kind, tribeID), Code: "duplicate_relation", Kind: string(kind), EntityId: tribeID,
			Message: fmt.Sprintf("The Tribe %s %s and the e-Boekhouden relation %s are each already linked to another relation.", kind, tribeID, ebID),
			Action:  "Two relations share a debtor number or an e-Boekhouden ID: give each its own debtor number, then save the relation in Tribe again.",
		})
	}
	if err != nil {
		return nil, fmt.Errorf("create link: %w", err)
	}
	return res.GetLink(), nil
}

func (s *syncer) resolve(ctx context.Context, tenant string, keys ...string) {
	for _, k := range keys {
		if _, err := s.mapping.ResolveIssue(ctx, &mappingv1.ResolveIssueRequest{TenantId: tenant, Key: k}); err != nil {
			s.log.WarnContext(ctx, "resolve issue", "issue", k, "error", err)
		}
	}
}

func noDebtorIssue(kind record.Kind, id, name string) *mappingv1.Issue {
	return &mappingv1.Issue{
		Key: fmt.Sprintf("%s/%s/no_debtor_number", kind, id), Code: "no_debtor_number", Kind: string(kind), EntityId: id,
		Message: fmt.Sprintf("%s is a customer without a debtor number, so it was not sent to e-Boekhouden.", name),
		Action:  "Give it a debtor number in Tribe, or turn on automatic debtor numbering for this tenant.",
	}
}

func rejectedIssue(kind record.Kind, id, name string, err error) *mappingv1.Issue {
	return &mappingv1.Issue{
		Key: fmt.Sprintf("%s/%s/rejected", kind, id), Code: "relation_rejected", Kind: string(kind), EntityId: id,
		Message: fmt.Sprintf("e-Boekhouden or Tribe refused %s: %v", name, err),
		Action:  "Correct the field named in the message, then save the relation again.",
	}
}

// push brings a Tribe change to e-Boekhouden at once.
func (s *syncer) push(ctx context.Context, tenant *mappingv1.Tenant, change *eventsv1.TribeChange) error {
	kind := kindOf(change.GetEntity())
	id := change.GetEntityId()
	books, crm, err := s.connect(ctx, tenant)
	if err != nil {
		return err
	}
	if e := change.GetEntity(); e == bus.EntityOrgCustomer || e == bus.EntityPersonCustomer {
		// A relation became (or stays) a customer: push the relation itself.
		if id, err = crm.CustomerOf(ctx, kind, id); errors.Is(err, ErrNotFound) {
			return nil
		} else if err != nil {
			return fmt.Errorf("read customer relationship %s: %w", change.GetEntityId(), err)
		}
	}
	release, err := s.lease(ctx, tenant.GetId(), "tribe/"+id)
	if err != nil {
		return err
	}
	defer release()

	s.log.DebugContext(ctx, "push: lease taken", "kind", kind, "tribe_id", id)
	cr, err := crm.GetRelation(ctx, kind, id)
	if errors.Is(err, ErrNotFound) {
		// Deleted in Tribe: deletes never propagate.
		return nil
	}
	s.log.DebugContext(ctx, "push: read from Tribe", "customer", cr.Customer, "eboekhouden_id", cr.EBoekhoudenID, "error", err)
	if err != nil {
		return fmt.Errorf("read tribe %s %s: %w", kind, id, err)
	}
	if !cr.Customer {
		return nil
	}
	link, err := s.getLink(ctx, tenant.GetId(), kind, id, "")
	if err != nil {
		return err
	}
	if link == nil && cr.EBoekhoudenID != "" {
		// The link is gone (or was never stored after a crash), but Tribe remembers it.
		if link, err = s.link(ctx, tenant.GetId(), kind, id, cr.EBoekhoudenID); err != nil {
			return err
		}
	}
	if link == nil {
		return s.pushNew(ctx, tenant, books, crm, cr)
	}
	_, err = s.reconcile(ctx, tenant.GetId(), books, crm, link, &cr, nil)
	return err
}

// pushNew creates (or finds) the e-Boekhouden relation of a Tribe customer that has none yet.
func (s *syncer) pushNew(ctx context.Context, tenant *mappingv1.Tenant, books Books, crm CRM, cr CRMRelation) error {
	r := cr.Relation.Normalize()
	if r.Code == "" {
		if !tenant.GetSettings().GetAutoDebtorNumbers() {
			return bus.Permanent(errors.New("customer without a debtor number"), noDebtorIssue(cr.Kind, cr.ID, r.Name))
		}
		code, err := s.nextDebtorNumber(ctx, tenant, books, crm)
		if err != nil {
			return err
		}
		r.Code = code
		// Tribe gets the number first, so a crash after this step reuses it.
		if err := crm.UpdateRelation(ctx, cr.Kind, cr.ID, r, ""); err != nil {
			return s.classify(err, cr.Kind, cr.ID, r.Name)
		}
	}
	entry, err := books.FindRelationByCode(ctx, r.Code)
	switch {
	case errors.Is(err, ErrNotFound):
		if entry, err = books.CreateRelation(ctx, r); err != nil {
			// A create retried after a lost answer finds its own first attempt's code taken:
			// that relation is ours.
			if found, ferr := books.FindRelationByCode(ctx, r.Code); errors.Is(err, ErrRejected) && ferr == nil {
				entry, err = found, nil
			}
		}
		if err != nil {
			return s.classify(err, cr.Kind, cr.ID, r.Name)
		}
	case err != nil:
		return fmt.Errorf("find relation %s: %w", r.Code, err)
	}
	link, err := s.link(ctx, tenant.GetId(), cr.Kind, cr.ID, entry.ID)
	if err != nil {
		return err
	}
	s.resolve(ctx, tenant.GetId(), noDebtorIssue(cr.Kind, cr.ID, "").GetKey())
	cr.Relation = r
	_, err = s.reconcile(ctx, tenant.GetId(), books, crm, link, &cr, nil)
	return err
}

// classify turns a refusal into a permanent failure with an issue, and leaves other errors
// transient.
func (s *syncer) classify(err error, kind record.Kind, id, name string) error {
	if errors.Is(err, ErrRejected) {
		return bus.Permanent(err, rejectedIssue(kind, id, name, err))
	}
	return err
}

// nextDebtorNumber takes the next number of the tenant's sequence that neither system uses yet.
func (s *syncer) nextDebtorNumber(ctx context.Context, tenant *mappingv1.Tenant, books Books, crm CRM) (string, error) {
	if start := tenant.GetSettings().GetDebtorNumberStart(); start > 0 {
		if _, err := s.mapping.RaiseNumber(ctx, &mappingv1.RaiseNumberRequest{TenantId: tenant.GetId(), Sequence: "debtor", Floor: start - 1}); err != nil {
			return "", fmt.Errorf("raise debtor numbers: %w", err)
		}
	}
	for range 100 {
		res, err := s.mapping.NextNumber(ctx, &mappingv1.NextNumberRequest{TenantId: tenant.GetId(), Sequence: "debtor"})
		if err != nil {
			return "", fmt.Errorf("next debtor number: %w", err)
		}
		code := strconv.FormatInt(res.GetNumber(), 10)
		if _, err := books.FindRelationByCode(ctx, code); !errors.Is(err, ErrNotFound) {
			if err != nil {
				return "", fmt.Errorf("check debtor number %s: %w", code, err)
			}
			continue
		}
		used, err := crm.DebtorNumberInUse(ctx, code)
		if err != nil {
			return "", fmt.Errorf("check debtor number %s: %w", code, err)
		}
		if !used {
			return code, nil
		}
	}
	return "", errors.New("no free debtor number in 100 tries: raise the tenant's debtor number start")
}

// reconcile merges both sides of a link against its last-synced record, writes each side that
// differs from the result, and stores the result. cr and br may be nil; they are read then. It
// reports whether it wrote to either system.
func (s *syncer) reconcile(ctx context.Context, tenant string, books Books, crm CRM, link *mappingv1.Link, cr *CRMRelation, br *BookRelation) (bool, error) {
	kind := record.Kind(link.GetKind())
	if cr == nil {
		got, err := crm.GetRelation(ctx, kind, link.GetTribeId())
		if errors.Is(err, ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("read tribe %s %s: %w", kind, link.GetTribeId(), err)
		}
		cr = &got
	}
	if br == nil {
		got, err := books.GetRelation(ctx, link.GetEboekhoudenId())
		if errors.Is(err, ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("read e-Boekhouden relation %s: %w", link.GetEboekhoudenId(), err)
		}
		br = &got
	}
	base, err := record.Decode(link.GetRecord())
	if err != nil {
		// A record we cannot read is as good as none: merge as on first contact.
		base = record.Relation{}
	}
	merged, conflicts := record.Merge(base, cr.Relation, br.Relation)
	merged.Kind = kind
	s.log.DebugContext(ctx, "reconcile", "tribe_id", cr.ID, "eboekhouden_id", link.GetEboekhoudenId(),
		"eboekhouden_changes", record.Diff(merged, br.Relation.FillFrom(merged)), "tribe_changes", record.Diff(merged, cr.Relation.FillFrom(merged)), "conflicts", len(conflicts))
	wrote := false
	if len(record.Diff(merged, br.Relation.FillFrom(merged))) > 0 {
		if err := books.UpdateRelation(ctx, link.GetEboekhoudenId(), merged); err != nil {
			return false, s.classify(err, kind, cr.ID, merged.Name)
		}
		wrote = true
	}
	if len(record.Diff(merged, cr.Relation.FillFrom(merged))) > 0 || cr.EBoekhoudenID != link.GetEboekhoudenId() {
		if err := crm.UpdateRelation(ctx, kind, cr.ID, merged, link.GetEboekhoudenId()); err != nil {
			return false, s.classify(err, kind, cr.ID, merged.Name)
		}
		wrote = true
	}
	if link.GetVersion() == 0 || len(record.Diff(merged, base)) > 0 {
		_, err := s.mapping.SaveSyncedRecord(ctx, &mappingv1.SaveSyncedRecordRequest{TenantId: tenant, Kind: string(kind),
			TribeId: link.GetTribeId(), Record: merged.Encode(), ExpectedVersion: link.GetVersion()})
		if status.Code(err) == codes.FailedPrecondition {
			return false, bus.RetryAfter(fmt.Errorf("relation %s changed while syncing: %w", link.GetTribeId(), err), time.Second)
		}
		if err != nil {
			return false, fmt.Errorf("save synced record: %w", err)
		}
	}
	for _, c := range conflicts {
		s.recordConflict(ctx, tenant, kind, cr.ID, merged.Name, c)
	}
	if wrote {
		// A write went through, so an earlier refusal of this relation is past.
		s.resolve(ctx, tenant, rejectedIssue(kind, cr.ID, "", nil).GetKey())
	}
	return wrote, nil
}

func (s *syncer) recordConflict(ctx context.Context, tenant string, kind record.Kind, id, name string, c record.Conflict) {
	_, err := s.mapping.RecordHistory(ctx, &mappingv1.RecordHistoryRequest{TenantId: tenant, Entry: &mappingv1.HistoryEntry{
		Code: "conflict_settled", Kind: string(kind), EntityId: id,
		Message: fmt.Sprintf("%s: %s was changed in both systems; the %s value was kept.", name, strings.ReplaceAll(c.Field, "_", " "), c.Winner),
		Details: map[string]string{"field": c.Field, "tribe": c.Tribe, "eboekhouden": c.EBoekhouden, "winner": string(c.Winner)},
	}})
	if err != nil {
		s.log.WarnContext(ctx, "record conflict in history", "error", err)
	}
}

// pull runs an import, a periodic pull or a scan over every e-Boekhouden relation.
//
//	import         every active relation not linked yet is matched in Tribe or created there
//	relation-scan  the same, reading only the list pages for relations already linked
//	relation       also every linked relation is read and changes are brought to Tribe
//
// Progress is stored after each chunk, so a redelivered command resumes where it stopped; links
// make every step idempotent besides.
func (s *syncer) pull(ctx context.Context, tenant *mappingv1.Tenant, cmd *eventsv1.SyncCommand, run *syncrun.Run) error {
	books, crm, err := s.connect(ctx, tenant)
	if err != nil {
		return err
	}
	entries, err := books.ListRelations(ctx)
	if err != nil {
		return fmt.Errorf("list e-Boekhouden relations: %w", err)
	}
	cursor := "relation-run"
	pos := s.resumeAt(ctx, tenant.GetId(), cursor, run.ID())
	if pos == 0 {
		if err := run.Add(ctx, &mappingv1.RunCounts{}, 0, int64(len(entries))); err != nil {
			return err
		}
	}
	chunk := s.chunk
	if chunk <= 0 {
		chunk = 100
	}
	skipped := map[outcome]int{}
	defer func() { run.SetMessage(skipMessage(skipped)) }()
	for pos < len(entries) {
		part := entries[pos:min(pos+chunk, len(entries))]
		counts, err := s.pullChunk(ctx, tenant, books, crm, cmd.GetKind(), part, skipped)
		if err != nil {
			return err
		}
		if err := run.Add(ctx, counts, int64(len(part)), 0); err != nil {
			return err
		}
		pos += len(part)
		if _, err := s.mapping.SetCursor(ctx, &mappingv1.SetCursorRequest{TenantId: tenant.GetId(), Name: cursor, Value: run.ID() + " " + strconv.Itoa(pos)}); err != nil {
			return fmt.Errorf("save progress: %w", err)
		}
	}
	return nil
}

// skipMessage tells why records were skipped, such as "skipped: 35 inactive in e-Boekhouden".
func skipMessage(skipped map[outcome]int) string {
	var parts []string
	for _, o := range []outcome{outcomeSkippedInactive, outcomeSkippedGone} {
		if n := skipped[o]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, skipReasons[o]))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "skipped: " + strings.Join(parts, ", ")
}

// resumeAt returns where run stopped before, or 0 for a new run.
func (s *syncer) resumeAt(ctx context.Context, tenant, cursor, runID string) int {
	res, err := s.mapping.GetCursor(ctx, &mappingv1.GetCursorRequest{TenantId: tenant, Name: cursor})
	if err != nil {
		return 0
	}
	id, pos, ok := strings.Cut(res.GetValue(), " ")
	if !ok || id != runID {
		return 0
	}
	n, err := strconv.Atoi(pos)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// pullChunk handles one chunk of listed relations and returns its counts. A relation that
// fails permanently is counted failed (its issue recorded) and the run goes on; a transient
// failure stops the run, to be resumed on redelivery.
func (s *syncer) pullChunk(ctx context.Context, tenant *mappingv1.Tenant, books Books, crm CRM, mode string, part []BookEntry, skipped map[outcome]int) (*mappingv1.RunCounts, error) {
	links := map[string]*mappingv1.Link{}
	byKind := map[record.Kind][]string{}
	for _, e := range part {
		byKind[e.Kind] = append(byKind[e.Kind], e.ID)
	}
	for kind, ids := range byKind {
		res, err := s.mapping.BatchGetLinks(ctx, &mappingv1.BatchGetLinksRequest{TenantId: tenant.GetId(), Kind: string(kind),
			EboekhoudenIds: ids, WithRecords: mode == bus.KindRelation})
		if err != nil {
			return nil, fmt.Errorf("get links: %w", err)
		}
		for _, l := range res.GetLinks() {
			links[l.GetEboekhoudenId()] = l
		}
	}
	counts := &mappingv1.RunCounts{}
	for _, e := range part {
		outcome, err := s.pullOne(ctx, tenant, books, crm, mode, e, links[e.ID])
		if issue, ok := bus.IssueOf(err); ok {
			if _, rerr := s.mapping.RecordIssue(ctx, &mappingv1.RecordIssueRequest{TenantId: tenant.GetId(), Issue: issue}); rerr != nil {
				return nil, fmt.Errorf("record issue: %w", rerr)
			}
			counts.Failed++
			continue
		}
		if err != nil {
			return nil, err
		}
		switch outcome {
		case outcomeCreated:
			counts.Created++
		case outcomeUpdated:
			counts.Updated++
		case outcomeUnchanged:
			counts.Unchanged++
		default:
			counts.Skipped++
			skipped[outcome]++
		}
	}
	return counts, nil
}

type outcome int

const (
	outcomeUnchanged outcome = iota
	outcomeCreated
	outcomeUpdated
	outcomeSkippedInactive
	outcomeSkippedGone
)

// skipReasons says why records were skipped, for the run's message.
var skipReasons = map[outcome]string{
	outcomeSkippedInactive: "inactive in e-Boekhouden",
	outcomeSkippedGone:     "deleted in e-Boekhouden while the run was under way",
}

func (s *syncer) pullOne(ctx context.Context, tenant *mappingv1.Tenant, books Books, crm CRM, mode string, e BookEntry, link *mappingv1.Link) (outcome, error) {
	if link != nil {
		if mode != bus.KindRelation {
			return outcomeUnchanged, nil
		}
		br, err := books.GetRelation(ctx, e.ID)
		if errors.Is(err, ErrNotFound) {
			return outcomeSkippedGone, nil
		}
		if err != nil {
			return 0, fmt.Errorf("read e-Boekhouden relation %s: %w", e.ID, err)
		}
		base, _ := record.Decode(link.GetRecord())
		if len(record.Diff(base, br.Relation.FillFrom(base))) == 0 {
			return outcomeUnchanged, nil
		}
		release, err := s.lease(ctx, tenant.GetId(), "tribe/"+link.GetTribeId())
		if err != nil {
			return 0, err
		}
		defer release()
		// Read the link again under the lease: a push may have just saved a newer record.
		if link, err = s.getLink(ctx, tenant.GetId(), e.Kind, link.GetTribeId(), ""); err != nil || link == nil {
			return outcomeUnchanged, err
		}
		wrote, err := s.reconcile(ctx, tenant.GetId(), books, crm, link, nil, &br)
		if err != nil || !wrote {
			return outcomeUnchanged, err
		}
		return outcomeUpdated, nil
	}

	br, err := books.GetRelation(ctx, e.ID)
	if errors.Is(err, ErrNotFound) {
		return outcomeSkippedGone, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read e-Boekhouden relation %s: %w", e.ID, err)
	}
	if br.Inactive {
		// Inactive relations are not imported.
		return outcomeSkippedInactive, nil
	}
	release, err := s.lease(ctx, tenant.GetId(), "eboekhouden/"+e.ID)
	if err != nil {
		return 0, err
	}
	defer release()
	if link, err := s.getLink(ctx, tenant.GetId(), e.Kind, "", e.ID); err != nil || link != nil {
		// Linked meanwhile by a push or another replica.
		return outcomeUnchanged, err
	}
	cr, err := crm.FindRelation(ctx, e.Kind, e.ID, br.Relation.Code)
	switch {
	case errors.Is(err, ErrNotFound):
		id, err := crm.CreateCustomer(ctx, br.Relation, e.ID)
		if err != nil {
			return 0, s.classify(err, e.Kind, e.ID, br.Relation.Name)
		}
		if _, err := s.mapping.CreateLink(ctx, &mappingv1.CreateLinkRequest{TenantId: tenant.GetId(), Kind: string(e.Kind),
			TribeId: id, EboekhoudenId: e.ID, Record: br.Relation.Encode()}); err != nil {
			return 0, fmt.Errorf("create link: %w", err)
		}
		return outcomeCreated, nil
	case err != nil:
		return 0, fmt.Errorf("find tribe relation for %s: %w", e.ID, err)
	}
	link, err = s.link(ctx, tenant.GetId(), e.Kind, cr.ID, e.ID)
	if err != nil {
		return 0, err
	}
	wrote, err := s.reconcile(ctx, tenant.GetId(), books, crm, link, &cr, &br)
	if err != nil || !wrote {
		return outcomeUnchanged, err
	}
	return outcomeUpdated, nil
}
