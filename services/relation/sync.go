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
	// concurrency is how many relations a run handles at once. Default 8.
	concurrency int
	// retryBase is the first wait before a relation that failed transiently is tried again
	// within a run (syncrun.Plan.RetryBase); 0 is the default.
	retryBase time.Duration
	// linked, when set, is told of every Tribe relation that got linked to e-Boekhouden, so the
	// invoices waiting for that customer are tried again.
	linked func(ctx context.Context, tenant string, kind record.Kind, tribeID string)
}

// leaseTTL bounds how long a dead worker keeps a relation locked; one relation's sync takes far less.
const leaseTTL = 30 * time.Second

// customerLinkKind is the link kind that remembers a customer relationship koppel has seen of a
// linked relation: its webhooks change nothing koppel syncs, and are recognised without a call.
func customerLinkKind(kind record.Kind) string { return string(kind) + "-customer" }

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

func (s *syncer) getLink(ctx context.Context, tenant string, kind string, tribeID, ebID string) (*mappingv1.Link, error) {
	res, err := s.mapping.GetLink(ctx, &mappingv1.GetLinkRequest{TenantId: tenant, Kind: kind, TribeId: tribeID, EboekhoudenId: ebID})
	if status.Code(err) == codes.NotFound {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get link: %w", err)
	}
	return res.GetLink(), nil
}

// link stores a new link of a relation with its state (nil: not met yet); a link that exists
// already for another record is a permanent problem the tenant must resolve. wake tells the
// invoices waiting for this customer (a Tribe relation that existed before: not one the import
// just created).
func (s *syncer) link(ctx context.Context, tenant string, kind record.Kind, tribeID, ebID string, state []byte, wake bool) (*mappingv1.Link, error) {
	res, err := s.mapping.CreateLink(ctx, &mappingv1.CreateLinkRequest{TenantId: tenant, Kind: string(kind), TribeId: tribeID, EboekhoudenId: ebID, Record: state})
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
	if wake && s.linked != nil {
		s.linked(ctx, tenant, kind, tribeID)
	}
	return res.GetLink(), nil
}

// rememberCustomer stores a customer relationship of a linked relation, so its next webhooks
// are recognised without reading Tribe.
func (s *syncer) rememberCustomer(ctx context.Context, tenant string, kind record.Kind, relationshipID, ebID string) {
	_, err := s.mapping.CreateLink(ctx, &mappingv1.CreateLinkRequest{TenantId: tenant, Kind: customerLinkKind(kind), TribeId: relationshipID, EboekhoudenId: ebID})
	if err != nil && status.Code(err) != codes.AlreadyExists {
		s.log.WarnContext(ctx, "remember customer relationship", "relationship", relationshipID, "error", err)
	}
}

func (s *syncer) resolve(ctx context.Context, tenant string, keys ...string) {
	for _, k := range keys {
		if _, err := s.mapping.ResolveIssue(ctx, &mappingv1.ResolveIssueRequest{TenantId: tenant, Key: k}); err != nil {
			s.log.WarnContext(ctx, "resolve issue", "issue", k, "error", err)
		}
	}
}

func (s *syncer) recordIssue(ctx context.Context, tenant string, issue *mappingv1.Issue) {
	if _, err := s.mapping.RecordIssue(ctx, &mappingv1.RecordIssueRequest{TenantId: tenant, Issue: issue}); err != nil {
		s.log.WarnContext(ctx, "record issue", "issue", issue.GetKey(), "error", err)
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

func codeTakenKey(kind record.Kind, id string) string {
	return fmt.Sprintf("%s/%s/debtor_number_taken", kind, id)
}

// codeTakenIssue: a new Tribe customer's debtor number is the code of an e-Boekhouden relation
// that is linked to nothing. Taking it over would sync two different relations as one.
func codeTakenIssue(tenant string, cr CRMRelation, code string, br BookRelation) *mappingv1.Issue {
	state := "active"
	if br.Inactive {
		state = "inactive"
	}
	return &mappingv1.Issue{
		Key: codeTakenKey(cr.Kind, cr.ID), Code: "debtor_number_taken", Kind: string(cr.Kind), EntityId: cr.ID,
		Message: fmt.Sprintf("The Tribe %s %q (debtor number %s) was not sent to e-Boekhouden: relation %s there is %q (e-Boekhouden ID %s, %s), which koppel has not linked to it.",
			cr.Kind, displayName(cr.Relation), code, code, displayName(br.Relation), br.ID, state),
		Action: fmt.Sprintf("If they are two relations, give the Tribe one another debtor number. If they are the same, make the e-Boekhouden relation active if it is not, "+
			"then run `koppelctl sync %s relation`: it links them by debtor number without changing the books.", tenant),
		Details: map[string]string{"eboekhouden_id": br.ID, "code": code},
	}
}

func displayName(r record.Relation) string {
	r = r.Normalize()
	if r.Name != "" {
		return r.Name
	}
	return r.LastName
}

// push brings a Tribe change to e-Boekhouden at once. A relation linked to e-Boekhouden is
// synchronised both ways whatever its relationships (customer, supplier, both); one not linked
// yet goes to e-Boekhouden only when it is a customer.
func (s *syncer) push(ctx context.Context, tenant *mappingv1.Tenant, change *eventsv1.TribeChange) error {
	kind := kindOf(change.GetEntity())
	id := change.GetEntityId()
	if e := change.GetEntity(); e == bus.EntityOrgCustomer || e == bus.EntityPersonCustomer {
		return s.pushCustomer(ctx, tenant, kind, id)
	}
	books, crm, err := s.connect(ctx, tenant)
	if err != nil {
		return err
	}
	release, err := s.lease(ctx, tenant.GetId(), "tribe/"+id)
	if err != nil {
		return err
	}
	defer release()

	cr, err := crm.GetRelation(ctx, kind, id)
	if errors.Is(err, ErrNotFound) {
		// Deleted in Tribe: deletes never propagate.
		return nil
	}
	if err != nil {
		return fmt.Errorf("read tribe %s %s: %w", kind, id, err)
	}
	link, err := s.getLink(ctx, tenant.GetId(), string(kind), id, "")
	if err != nil {
		return err
	}
	if link != nil {
		if s.echo(link, cr) {
			return nil
		}
		_, err = s.reconcile(ctx, tenant.GetId(), books, crm, link, &cr, nil)
		return err
	}
	if cr.EBoekhoudenID != "" {
		// Tribe remembers an e-Boekhouden ID: an import that created this relation may be about
		// to link it (it holds that relation's lease meanwhile), else the link is gone (lost
		// with Redis, or never stored after a crash) and the two meet again as for the first time.
		releaseBooks, err := s.lease(ctx, tenant.GetId(), "eboekhouden/"+cr.EBoekhoudenID)
		if err != nil {
			return err
		}
		defer releaseBooks()
		if link, err = s.getLink(ctx, tenant.GetId(), string(kind), id, ""); err != nil {
			return err
		}
		if link != nil && s.echo(link, cr) {
			return nil
		}
		if link == nil {
			if link, err = s.link(ctx, tenant.GetId(), kind, id, cr.EBoekhoudenID, nil, true); err != nil {
				return err
			}
		}
		_, err = s.reconcile(ctx, tenant.GetId(), books, crm, link, &cr, nil)
		return err
	}
	customer, err := crm.IsCustomer(ctx, kind, id)
	if err != nil || !customer {
		return err
	}
	return s.pushNew(ctx, tenant, books, crm, cr)
}

// echo reports whether cr is what koppel last synced (its own write coming back as a webhook, or
// a change of fields koppel does not sync): then there is nothing to do, and e-Boekhouden is not
// even read.
func (s *syncer) echo(link *mappingv1.Link, cr CRMRelation) bool {
	state, err := record.DecodeSynced(link.GetRecord())
	if err != nil || state.Unmet() || cr.EBoekhoudenID != link.GetEboekhoudenId() {
		return false
	}
	view := state.TribeView()
	return len(record.Diff(view, cr.As(state.CodeField).FillFrom(view))) == 0
}

// pushCustomer handles a change of a customer relationship: a relation becoming a customer. For
// a relation that is linked already it changes nothing koppel syncs.
func (s *syncer) pushCustomer(ctx context.Context, tenant *mappingv1.Tenant, kind record.Kind, relationshipID string) error {
	if l, err := s.getLink(ctx, tenant.GetId(), customerLinkKind(kind), relationshipID, ""); err != nil || l != nil {
		return err
	}
	books, crm, err := s.connect(ctx, tenant)
	if err != nil {
		return err
	}
	cr, err := crm.CustomerOf(ctx, kind, relationshipID)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read customer relationship %s: %w", relationshipID, err)
	}
	release, err := s.lease(ctx, tenant.GetId(), "tribe/"+cr.ID)
	if err != nil {
		return err
	}
	link, err := s.getLink(ctx, tenant.GetId(), string(kind), cr.ID, "")
	if err != nil || link != nil || cr.EBoekhoudenID != "" {
		release()
		if link != nil {
			s.rememberCustomer(ctx, tenant.GetId(), kind, relationshipID, link.GetEboekhoudenId())
		}
		if err != nil || link != nil {
			return err
		}
		// Linked once (Tribe keeps the e-Boekhouden ID): the relation's own change meets the
		// two records again.
		return s.push(ctx, tenant, &eventsv1.TribeChange{TenantId: tenant.GetId(), Entity: setOf(kind), EntityId: cr.ID})
	}
	defer release()
	return s.pushNew(ctx, tenant, books, crm, cr)
}

// marker is the note koppel gives a relation it creates in e-Boekhouden, so that after a crash
// between the create and the link it recognises its own relation by code and marker, and never
// mistakes a bookkeeper's relation with the same code for it.
func marker(tribeID string) string { return "Created by koppel from Tribe CRM (tribe:" + tribeID + ")" }

// pushNew creates the e-Boekhouden relation of a Tribe customer that has none yet.
func (s *syncer) pushNew(ctx context.Context, tenant *mappingv1.Tenant, books Books, crm CRM, cr CRMRelation) error {
	r := cr.As(record.DebtorNumber)
	if r.Code == "" {
		if !tenant.GetSettings().GetAutoDebtorNumbers() {
			return bus.Permanent(errors.New("customer without a debtor number"), noDebtorIssue(cr.Kind, cr.ID, displayName(r)))
		}
		code, err := s.nextDebtorNumber(ctx, tenant, books, crm)
		if err != nil {
			return err
		}
		r.Code = code
		// Tribe gets the number first, so a crash after this step reuses it.
		if err := crm.UpdateRelation(ctx, cr, r, record.DebtorNumber, ""); err != nil {
			return s.classify(err, cr.Kind, cr.ID, displayName(r))
		}
		cr.DebtorNumber, cr.Relation.Code = code, code
	}
	var state record.Synced
	var br *BookRelation // e-Boekhouden's record when known without reading it
	entry, err := books.FindRelationByCode(ctx, r.Code)
	switch {
	case errors.Is(err, ErrNotFound):
		entry, err = books.CreateRelation(ctx, r, marker(cr.ID))
		if errors.Is(err, ErrRejected) {
			// A create retried after a lost answer finds its own first attempt's code taken;
			// the marker tells.
			if found, ferr := books.FindRelationByCode(ctx, r.Code); ferr == nil {
				entry, err = found, nil
				state, err = s.ours(ctx, tenant, books, cr, r.Code, entry)
			}
		} else if err == nil {
			state = record.Synced{Relation: r}
			br = &BookRelation{ID: entry.ID, Relation: r}
		}
		if err != nil {
			return s.classify(err, cr.Kind, cr.ID, displayName(r))
		}
	case err != nil:
		return fmt.Errorf("find relation %s: %w", r.Code, err)
	default:
		if state, err = s.ours(ctx, tenant, books, cr, r.Code, entry); err != nil {
			return err
		}
	}
	link, err := s.link(ctx, tenant.GetId(), cr.Kind, cr.ID, entry.ID, state.Encode(), true)
	if err != nil {
		return err
	}
	s.resolve(ctx, tenant.GetId(), noDebtorIssue(cr.Kind, cr.ID, "").GetKey(), codeTakenKey(cr.Kind, cr.ID))
	cr.Relation = r
	_, err = s.reconcile(ctx, tenant.GetId(), books, crm, link, &cr, br)
	return err
}

// ours checks that an unlinked e-Boekhouden relation with a new customer's code is the one koppel
// created for it (an earlier attempt that crashed before the link), by its marker. Its state is
// then what e-Boekhouden holds, so Tribe's edits since win. Any other relation is the
// bookkeeper's: taking it over would merge two relations, so it is an issue naming both.
func (s *syncer) ours(ctx context.Context, tenant *mappingv1.Tenant, books Books, cr CRMRelation, code string, entry BookEntry) (record.Synced, error) {
	br, err := books.GetRelation(ctx, entry.ID)
	if err != nil {
		return record.Synced{}, fmt.Errorf("read e-Boekhouden relation %s: %w", entry.ID, err)
	}
	if !strings.Contains(br.Note, "(tribe:"+cr.ID+")") {
		return record.Synced{}, bus.Permanent(errors.New("debtor number taken by another relation"), codeTakenIssue(tenant.GetId(), cr, code, br))
	}
	return record.Synced{Relation: br.Relation}, nil
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

// reconcile brings the two records of a link together: on first contact (a link made by
// matching) without ever writing e-Boekhouden, else by the three-way merge against the link's
// state. It writes each side that differs from the outcome and stores the new state. cr and br
// may be nil; they are read then. It reports whether it wrote to either system.
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
	state, err := record.DecodeSynced(link.GetRecord())
	if err != nil {
		// A state we cannot read is as good as none: the records meet as for the first time.
		state = record.Synced{}
	}
	first := state.Unmet()
	if first && strings.TrimSpace(cr.DebtorNumber) == "" && strings.TrimSpace(cr.CreditorNumber) != "" {
		// A relation with only a creditor number in Tribe is a supplier, however the link was
		// found (an ImportId after the loss of Redis, a rebuild): its code lives there.
		state.CodeField = record.CreditorNumber
	}
	tr := cr.As(state.CodeField)
	var out record.Outcome
	if first {
		out = record.FirstContact(tr, br.Relation, state.CodeField)
	} else {
		out = record.Merge(state, tr, br.Relation)
	}
	ebChanges := record.Diff(out.EBoekhouden, br.Relation.FillFrom(out.EBoekhouden))
	tribeChanges := record.Diff(out.Tribe, tr.FillFrom(out.Tribe))
	s.log.DebugContext(ctx, "reconcile", "tribe_id", cr.ID, "eboekhouden_id", link.GetEboekhoudenId(), "first_contact", first,
		"eboekhouden_changes", ebChanges, "tribe_changes", tribeChanges, "conflicts", len(out.Conflicts), "held", out.Synced.HeldFields())
	wrote := false
	if len(ebChanges) > 0 {
		if first {
			// FirstContact never changes e-Boekhouden's side; this would be a bug.
			return false, fmt.Errorf("first contact of %s would write e-Boekhouden fields %v", cr.ID, ebChanges)
		}
		if err := books.UpdateRelation(ctx, link.GetEboekhoudenId(), out.EBoekhouden); err != nil {
			return false, s.classify(err, kind, cr.ID, displayName(out.Tribe))
		}
		wrote = true
	}
	if len(tribeChanges) > 0 || cr.EBoekhoudenID != link.GetEboekhoudenId() {
		if err := crm.UpdateRelation(ctx, *cr, out.Tribe, state.CodeField, link.GetEboekhoudenId()); err != nil {
			return false, s.classify(err, kind, cr.ID, displayName(out.Tribe))
		}
		wrote = true
	}
	if first || len(record.Diff(out.Synced.Relation, state.Relation)) > 0 || len(out.Settled) > 0 {
		_, err := s.mapping.SaveSyncedRecord(ctx, &mappingv1.SaveSyncedRecordRequest{TenantId: tenant, Kind: string(kind),
			TribeId: link.GetTribeId(), Record: out.Synced.Encode(), ExpectedVersion: link.GetVersion()})
		if status.Code(err) == codes.FailedPrecondition {
			return false, bus.RetryAfter(fmt.Errorf("relation %s changed while syncing: %w", link.GetTribeId(), err), time.Second)
		}
		if err != nil {
			return false, fmt.Errorf("save synced record: %w", err)
		}
	}
	for _, c := range out.Conflicts {
		s.recordConflict(ctx, tenant, kind, cr.ID, displayName(out.Tribe), c)
	}
	s.reportHeld(ctx, tenant, kind, cr.ID, displayName(out.Tribe), first, out)
	if wrote {
		// A write went through, so an earlier refusal of this relation is past.
		s.resolve(ctx, tenant, rejectedIssue(kind, cr.ID, "", nil).GetKey())
	}
	return wrote, nil
}

func heldKey(kind record.Kind, id string) string { return fmt.Sprintf("%s/%s/differs", kind, id) }

// reportHeld keeps the tenant's issue of a relation's held fields up to date: recorded when the
// records first meet with differences, narrowed as fields are settled, resolved when none is
// left.
func (s *syncer) reportHeld(ctx context.Context, tenant string, kind record.Kind, id, name string, first bool, out record.Outcome) {
	held := out.Synced.HeldFields()
	if len(held) == 0 {
		if len(out.Settled) > 0 {
			s.resolve(ctx, tenant, heldKey(kind, id))
		}
		return
	}
	if !first && len(out.Settled) == 0 {
		return
	}
	var parts []string
	for _, f := range held {
		h := out.Synced.Held[f]
		parts = append(parts, fmt.Sprintf("%s (Tribe %s, e-Boekhouden %s)", record.FieldLabel(f), quoted(h.Tribe), quoted(h.EBoekhouden)))
	}
	s.recordIssue(ctx, tenant, &mappingv1.Issue{
		Key: heldKey(kind, id), Code: "relation_differs", Kind: string(kind), EntityId: id,
		Message: fmt.Sprintf("%s was matched to an existing relation in the other system; they differ in %s. koppel changed neither.", name, strings.Join(parts, "; ")),
		Action: "Correct each field in the system that is wrong: koppel takes a change made in either system to the other. " +
			"Making the two equal settles the field too. Until then both keep their own value.",
		Details: map[string]string{"fields": strings.Join(held, ",")},
	})
	if first {
		_, err := s.mapping.RecordHistory(ctx, &mappingv1.RecordHistoryRequest{TenantId: tenant, Entry: &mappingv1.HistoryEntry{
			Code: "matched_with_differences", Kind: string(kind), EntityId: id,
			Message: fmt.Sprintf("%s was matched; %s left as they are in both systems.", name, fieldsDiffer(len(held))),
			Details: map[string]string{"fields": strings.Join(held, ",")},
		}})
		if err != nil {
			s.log.WarnContext(ctx, "record history", "error", err)
		}
	}
}

// fieldsDiffer says how many fields differ, in words.
func fieldsDiffer(n int) string {
	if n == 1 {
		return "1 field differs and was"
	}
	return fmt.Sprintf("%d fields differ and were", n)
}

func quoted(v string) string {
	if v == "" {
		return "empty"
	}
	return strconv.Quote(v)
}

func (s *syncer) recordConflict(ctx context.Context, tenant string, kind record.Kind, id, name string, c record.Conflict) {
	_, err := s.mapping.RecordHistory(ctx, &mappingv1.RecordHistoryRequest{TenantId: tenant, Entry: &mappingv1.HistoryEntry{
		Code: "conflict_settled", Kind: string(kind), EntityId: id,
		Message: fmt.Sprintf("%s: %s was changed in both systems; the %s value was kept.", name, record.FieldLabel(c.Field), c.Winner),
		Details: map[string]string{"field": c.Field, "tribe": c.Tribe, "eboekhouden": c.EBoekhouden, "winner": string(c.Winner)},
	}})
	if err != nil {
		s.log.WarnContext(ctx, "record conflict in history", "error", err)
	}
}
