package main

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/syncrun"
	eventsv1 "github.com/koppel/koppel/proto/koppel/events/v1"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/koppel/koppel/services/relation/record"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func isAlreadyExists(err error) bool { return status.Code(err) == codes.AlreadyExists }

// inactiveLinkKind is the link kind that remembers an e-Boekhouden relation skipped as inactive,
// with its code and type as listed then, so the next scan skips it without reading it again.
// Such a link has no Tribe record; its Tribe side is "eb:<id>".
const inactiveLinkKind = "relation-inactive"

// Skip reasons, for the run's message.
const (
	reasonInactive = "inactive in e-Boekhouden"
	reasonGone     = "deleted in e-Boekhouden while the run was under way"
)

// defaultConcurrency is how many relations a run handles at once when not configured.
const defaultConcurrency = 8

// pull runs an import, a periodic pull or a scan over every e-Boekhouden relation.
//
//	import         every active relation not linked yet is matched in Tribe or created there
//	relation-scan  the same, reading only the list pages for relations already linked
//	relation       also every linked relation is read and changes are brought to Tribe, and
//	               relations remembered as inactive are read again (a reactivated one is
//	               imported)
//
// Several relations are handled at once; the tenant's API budgets set the pace. Progress is
// stored every 10 relations or 2 seconds, so a redelivered command resumes where it stopped;
// links make every step idempotent besides.
func (s *syncer) pull(ctx context.Context, tenant *mappingv1.Tenant, cmd *eventsv1.SyncCommand, run *syncrun.Run) error {
	books, crm, err := s.connect(ctx, tenant)
	if err != nil {
		return err
	}
	entries, err := books.ListRelations(ctx)
	if err != nil {
		return fmt.Errorf("list e-Boekhouden relations: %w", err)
	}
	p := &pullRun{s: s, tenant: tenant, books: books, crm: crm, mode: cmd.GetKind(), entries: entries,
		links: map[string]*mappingv1.Link{}, inactive: map[string]*mappingv1.Link{}, known: map[string]CRMRelation{}}
	concurrency := s.concurrency
	if concurrency <= 0 {
		concurrency = defaultConcurrency
	}
	return run.Process(ctx, syncrun.Plan{Cursor: syncrun.CursorRelationRun, Concurrency: concurrency, Prepare: p.prepare, RetryBase: s.retryBase}, len(entries), p.one)
}

// pullRun is one run's shared state.
type pullRun struct {
	s       *syncer
	tenant  *mappingv1.Tenant
	books   Books
	crm     CRM
	mode    string
	entries []BookEntry

	mu       sync.Mutex
	links    map[string]*mappingv1.Link // by e-Boekhouden ID, of the windows prepared
	inactive map[string]*mappingv1.Link
	// known are the Tribe relations an import's window matched, read a few dozen per call
	// before the window is handled, by Tribe ID.
	known map[string]CRMRelation
	// index holds every Tribe relation's keys per kind, read once per run (an import matches
	// many relations); scans, which meet few new relations, query per relation instead.
	index     map[record.Kind][]record.Candidate
	indexErr  map[record.Kind]error
	indexOnce map[record.Kind]*sync.Once
}

// prepare reads the links of a window of relations in one call per kind.
func (p *pullRun) prepare(ctx context.Context, from, to int) error {
	byKind := map[record.Kind][]string{}
	var all []string
	for _, e := range p.entries[from:to] {
		byKind[e.Kind] = append(byKind[e.Kind], e.ID)
		all = append(all, e.ID)
	}
	fetch := func(kind string, ids []string, records bool, into map[string]*mappingv1.Link) error {
		res, err := p.s.mapping.BatchGetLinks(ctx, &mappingv1.BatchGetLinksRequest{TenantId: p.tenant.GetId(), Kind: kind,
			EboekhoudenIds: ids, WithRecords: records})
		if err != nil {
			return fmt.Errorf("get links: %w", err)
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, l := range res.GetLinks() {
			into[l.GetEboekhoudenId()] = l
		}
		return nil
	}
	for kind, ids := range byKind {
		if err := fetch(string(kind), ids, p.mode == bus.KindRelation, p.links); err != nil {
			return err
		}
	}
	if err := fetch(inactiveLinkKind, all, true, p.inactive); err != nil {
		return err
	}
	if p.mode == bus.KindImport {
		return p.readMatches(ctx, from, to)
	}
	return nil
}

// readMatches reads, a few dozen per call, the Tribe relations that the window's unlinked
// e-Boekhouden relations match by their listed keys, so matching one costs no read of its own.
func (p *pullRun) readMatches(ctx context.Context, from, to int) error {
	want := map[record.Kind][]string{}
	for _, e := range p.entries[from:to] {
		if link, _ := p.linkOf(e.ID); link != nil {
			continue
		}
		cands, err := p.candidates(ctx, e.Kind, e.ID, e.Code)
		if err != nil {
			return fmt.Errorf("find the Tribe relations of %s: %w", e.ID, err)
		}
		if c, _, found, err := record.Match(cands, e.ID, e.Code); err == nil && found {
			want[e.Kind] = append(want[e.Kind], c.ID)
		}
	}
	for kind, ids := range want {
		got, err := p.crm.GetRelations(ctx, kind, ids)
		if err != nil {
			return fmt.Errorf("read matched Tribe relations: %w", err)
		}
		p.mu.Lock()
		for _, cr := range got {
			p.known[cr.ID] = cr
		}
		p.mu.Unlock()
	}
	return nil
}

func (p *pullRun) linkOf(id string) (*mappingv1.Link, *mappingv1.Link) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.links[id], p.inactive[id]
}

// listed is how an inactive relation's list entry is remembered: a change of code or type is a
// change worth reading it for.
func listed(e BookEntry) []byte { return []byte(string(e.Kind) + "|" + e.Code) }

func (p *pullRun) one(ctx context.Context, i int) (syncrun.Result, error) {
	e := p.entries[i]
	link, inactive := p.linkOf(e.ID)
	if link != nil {
		return p.linked(ctx, e, link)
	}
	if inactive != nil && p.mode != bus.KindRelation && string(inactive.GetRecord()) == string(listed(e)) {
		// Skipped as inactive before and listed the same: not read again until the daily pull.
		return syncrun.Result{Outcome: syncrun.Skipped, Reason: reasonInactive}, nil
	}
	br, err := p.books.GetRelation(ctx, e.ID)
	if errors.Is(err, ErrNotFound) {
		return syncrun.Result{Outcome: syncrun.Skipped, Reason: reasonGone}, nil
	}
	if err != nil {
		return syncrun.Result{}, fmt.Errorf("read e-Boekhouden relation %s: %w", e.ID, err)
	}
	if br.Inactive {
		// Inactive relations are not imported.
		return syncrun.Result{Outcome: syncrun.Skipped, Reason: reasonInactive}, p.rememberInactive(ctx, e, inactive)
	}
	if inactive != nil {
		if _, err := p.s.mapping.DeleteLink(ctx, &mappingv1.DeleteLinkRequest{TenantId: p.tenant.GetId(), Kind: inactiveLinkKind, TribeId: inactive.GetTribeId()}); err != nil {
			return syncrun.Result{}, fmt.Errorf("forget inactive relation %s: %w", e.ID, err)
		}
	}
	return p.importOne(ctx, e, br)
}

func (p *pullRun) rememberInactive(ctx context.Context, e BookEntry, known *mappingv1.Link) error {
	tenant := p.tenant.GetId()
	if known != nil {
		_, err := p.s.mapping.SaveSyncedRecord(ctx, &mappingv1.SaveSyncedRecordRequest{TenantId: tenant, Kind: inactiveLinkKind,
			TribeId: known.GetTribeId(), Record: listed(e), ExpectedVersion: -1})
		if err != nil {
			return fmt.Errorf("remember inactive relation %s: %w", e.ID, err)
		}
		return nil
	}
	_, err := p.s.mapping.CreateLink(ctx, &mappingv1.CreateLinkRequest{TenantId: tenant, Kind: inactiveLinkKind, TribeId: "eb:" + e.ID,
		EboekhoudenId: e.ID, Record: listed(e)})
	if err != nil && !isAlreadyExists(err) {
		return fmt.Errorf("remember inactive relation %s: %w", e.ID, err)
	}
	return nil
}

// linked handles a relation linked already: nothing to do but in the periodic pull, which reads
// it and brings e-Boekhouden's changes to Tribe (Tribe is read only when e-Boekhouden changed).
func (p *pullRun) linked(ctx context.Context, e BookEntry, link *mappingv1.Link) (syncrun.Result, error) {
	if p.mode != bus.KindRelation {
		return syncrun.Result{Outcome: syncrun.Unchanged}, nil
	}
	br, err := p.books.GetRelation(ctx, e.ID)
	if errors.Is(err, ErrNotFound) {
		return syncrun.Result{Outcome: syncrun.Skipped, Reason: reasonGone}, nil
	}
	if err != nil {
		return syncrun.Result{}, fmt.Errorf("read e-Boekhouden relation %s: %w", e.ID, err)
	}
	state, _ := record.DecodeSynced(link.GetRecord())
	if !state.Unmet() {
		view := state.EBoekhoudenView()
		if len(record.Diff(view, br.Relation.FillFrom(view))) == 0 {
			return syncrun.Result{Outcome: syncrun.Unchanged}, nil
		}
	}
	tenant := p.tenant.GetId()
	release, err := p.s.lease(ctx, tenant, "tribe/"+link.GetTribeId())
	if err != nil {
		return syncrun.Result{}, err
	}
	defer release()
	// Read the link again under the lease: a push may have just saved a newer state.
	if link, err = p.s.getLink(ctx, tenant, string(e.Kind), link.GetTribeId(), ""); err != nil || link == nil {
		return syncrun.Result{Outcome: syncrun.Unchanged}, err
	}
	wrote, err := p.s.reconcile(ctx, tenant, p.books, p.crm, link, nil, &br)
	if err != nil || !wrote {
		return syncrun.Result{Outcome: syncrun.Unchanged}, err
	}
	return syncrun.Result{Outcome: syncrun.Updated}, nil
}

// importOne brings an active e-Boekhouden relation that is not linked yet to Tribe: matched to
// the Tribe relation it is (by e-Boekhouden ID, debtor number, creditor number), and then the
// two meet without e-Boekhouden being written; or created there as a customer.
func (p *pullRun) importOne(ctx context.Context, e BookEntry, br BookRelation) (syncrun.Result, error) {
	tenant := p.tenant.GetId()
	release, err := p.s.lease(ctx, tenant, "eboekhouden/"+e.ID)
	if err != nil {
		return syncrun.Result{}, err
	}
	defer release()
	if link, err := p.s.getLink(ctx, tenant, string(e.Kind), "", e.ID); err != nil || link != nil {
		// Linked meanwhile by a push or another replica.
		return syncrun.Result{Outcome: syncrun.Unchanged}, err
	}
	cands, err := p.candidates(ctx, e.Kind, e.ID, br.Relation.Code)
	if err != nil {
		return syncrun.Result{}, fmt.Errorf("find the Tribe relation of %s: %w", e.ID, err)
	}
	match, field, found, err := record.Match(cands, e.ID, br.Relation.Code)
	if err != nil {
		return syncrun.Result{}, bus.Permanent(err, ambiguousIssue(e, br, err))
	}
	if !found {
		created, err := p.crm.CreateCustomer(ctx, br.Relation, e.ID)
		if err != nil {
			return syncrun.Result{}, p.s.classify(err, e.Kind, e.ID, displayName(br.Relation))
		}
		// The relationship first: its webhook, on its way already, then costs nothing. The
		// relation's own webhook waits for this relation's lease, held until it is linked.
		p.s.rememberCustomer(ctx, tenant, e.Kind, created.RelationshipID, e.ID)
		state := record.Synced{Relation: br.Relation.WithNameParts()}
		if _, err := p.s.link(ctx, tenant, e.Kind, created.RelationID, e.ID, state.Encode(), false); err != nil {
			return syncrun.Result{}, err
		}
		return syncrun.Result{Outcome: syncrun.Created}, nil
	}
	link, err := p.s.link(ctx, tenant, e.Kind, match.ID, e.ID, record.Synced{CodeField: field}.Encode(), true)
	if err != nil {
		return syncrun.Result{}, err
	}
	p.s.resolve(ctx, tenant, ambiguousKey(e.ID))
	p.mu.Lock()
	cr, read := p.known[match.ID]
	delete(p.known, match.ID)
	p.mu.Unlock()
	var crp *CRMRelation
	if read {
		crp = &cr
	}
	wrote, err := p.s.reconcile(ctx, tenant, p.books, p.crm, link, crp, &br)
	if err != nil || !wrote {
		return syncrun.Result{Outcome: syncrun.Unchanged}, err
	}
	return syncrun.Result{Outcome: syncrun.Updated}, nil
}

// candidates are the Tribe relations of kind that the e-Boekhouden relation could be.
func (p *pullRun) candidates(ctx context.Context, kind record.Kind, ebID, code string) ([]record.Candidate, error) {
	if p.mode != bus.KindImport {
		return p.crm.FindCandidates(ctx, kind, ebID, code)
	}
	p.mu.Lock()
	if p.indexOnce == nil {
		p.indexOnce, p.index, p.indexErr = map[record.Kind]*sync.Once{}, map[record.Kind][]record.Candidate{}, map[record.Kind]error{}
	}
	once := p.indexOnce[kind]
	if once == nil {
		once = &sync.Once{}
		p.indexOnce[kind] = once
	}
	p.mu.Unlock()
	once.Do(func() {
		cands, err := p.crm.Candidates(ctx, kind)
		p.mu.Lock()
		p.index[kind], p.indexErr[kind] = cands, err
		if err != nil {
			// Read again by the next relation that needs it.
			delete(p.indexOnce, kind)
		}
		p.mu.Unlock()
	})
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.index[kind], p.indexErr[kind]
}

func ambiguousKey(ebID string) string { return fmt.Sprintf("eboekhouden/%s/ambiguous", ebID) }

func ambiguousIssue(e BookEntry, br BookRelation, err error) *mappingv1.Issue {
	return &mappingv1.Issue{
		Key: ambiguousKey(e.ID), Code: "ambiguous_match", Kind: string(e.Kind), EntityId: e.ID,
		Message: fmt.Sprintf("e-Boekhouden relation %s %q was not imported: %v.", br.Relation.Code, displayName(br.Relation), err),
		Action:  "Give each of those Tribe relations its own debtor or creditor number (or merge them in Tribe); the next relation scan imports it.",
	}
}
