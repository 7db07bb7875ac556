package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/koppel/koppel/pkg/eboekhouden"
	"github.com/koppel/koppel/pkg/httpapi"
	"github.com/koppel/koppel/pkg/mapping"
	"github.com/koppel/koppel/pkg/tenantclients"
	"github.com/koppel/koppel/pkg/tribe"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Rebuilding the mapping (POST /admin/v1/tenants/{tenant}/rebuild) recovers a tenant's links
// after the loss of Redis, from what both systems remember of each other:
//
//	relations  the e-Boekhouden ID koppel stores on every Tribe relation (ImportId), then the
//	           debtor number (Tribe) = relation code (e-Boekhouden), per kind (organisation =
//	           business relation, person = private relation)
//	products   the e-Boekhouden ID on the Tribe product (ImportId), then the product code
//	invoices   the invoice number: Tribe invoices in phase Sent or Paid with e-Boekhouden invoices
//
// A match is linked only when it is unambiguous: two records on one side with the same ID, debtor
// number, code or invoice number are reported as conflicting and left alone. A link that exists
// already and agrees is left as it is; one that disagrees with what the systems say is reported
// as conflicting and never overwritten (an operator decides). So running it twice links nothing
// new.
//
// What is stored with a new link is what the flows expect of a link they made themselves:
//
//	relations  no last-synced record. The next sync of the relation then merges the two sides as
//	           on first contact, exactly as the import does when it finds an existing Tribe
//	           relation: equal fields are left alone (no conflict, no write), a value present on
//	           one side only is copied to the other, and a field that differs is settled by its
//	           owner (e-Boekhouden: code, VAT, CoC, IBAN, BIC; Tribe: the rest) and recorded in
//	           the history. A record guessed from one side would be worse: every difference would
//	           look like a change made on the other side since the last sync, and win, even
//	           against the field's owner.
//	products   no record either: the next product pull reads each product's details and writes
//	           e-Boekhouden's values to Tribe once (products only ever go that way), then stores
//	           the record; from then on only changes are written.
//	invoices   the record the invoice and payment flows keep: the number, and what is known to be
//	           paid (an invoice Paid in Tribe as paid in full; a Sent one with its open item's paid
//	           amount), so the payment flow neither repeats a partial payment in the history nor
//	           misses an invoice paid in full meanwhile (that one it still marks Paid).
//
// Besides links, the debtor-number sequence is raised past every number used in either system, and
// the run cursors are cleared, so the next product pull reads every product's details (a full
// pull) and no run resumes half-way through a list it saw before the loss.

// rebuildCursors are the mapping cursors a rebuild clears: where runs resume, and when the last
// full product pull was.
var rebuildCursors = []string{"relation-run", "product-run", "product-full"}

// maxExamples bounds the examples per kind and outcome in a report.
const maxExamples = 5

// Outcomes of a record or pair in a rebuild report.
const (
	outcomeLinked        = "linked"
	outcomeAlreadyLinked = "already_linked"
	outcomeConflicting   = "conflicting"
	outcomeUnmatchedTr   = "unmatched_tribe"
	outcomeUnmatchedEB   = "unmatched_eboekhouden"
)

type rebuildRequest struct {
	DryRun bool `json:"dry_run"`
}

// rebuildReport is the answer of a rebuild. In a dry run the counts say what it would do.
type rebuildReport struct {
	Tenant        string            `json:"tenant"`
	DryRun        bool              `json:"dry_run"`
	Kinds         []*kindReport     `json:"kinds"`
	DebtorNumbers debtorNumberState `json:"debtor_numbers"`
	// CursorsReset are the cursors that were (or would be) cleared.
	CursorsReset []string `json:"cursors_reset"`
	Notes        []string `json:"notes,omitempty"`
}

// kindReport counts one link kind. Found counts the records read in each system; every pair
// matched is linked, already linked or conflicting; unmatched counts records that could have
// been matched (a Tribe record with an e-Boekhouden ID or key, an e-Boekhouden record) but were
// not.
type kindReport struct {
	Kind                 string           `json:"kind"`
	FoundTribe           int              `json:"found_tribe"`
	FoundEBoekhouden     int              `json:"found_eboekhouden"`
	Linked               int              `json:"linked"`
	AlreadyLinked        int              `json:"already_linked"`
	Conflicting          int              `json:"conflicting"`
	UnmatchedTribe       int              `json:"unmatched_tribe"`
	UnmatchedEBoekhouden int              `json:"unmatched_eboekhouden"`
	Examples             []rebuildExample `json:"examples"`
}

// rebuildExample is one record or pair of a report, with why it came out as it did.
type rebuildExample struct {
	Outcome       string `json:"outcome"`
	TribeID       string `json:"tribe_id,omitempty"`
	EBoekhoudenID string `json:"eboekhouden_id,omitempty"`
	// Key is the debtor number, product code or invoice number the match was made or tried on.
	Key    string `json:"key,omitempty"`
	Name   string `json:"name,omitempty"`
	Reason string `json:"reason"`
}

// debtorNumberState is the debtor-number sequence's part of a report.
type debtorNumberState struct {
	// HighestUsed is the highest numeric debtor number or relation code in either system.
	HighestUsed int64 `json:"highest_used"`
	// Sequence is the sequence's value after raising it (0 in a dry run): the next number koppel
	// hands out is above it.
	Sequence int64 `json:"sequence,omitempty"`
}

// side is one record of either system, as matching needs it.
type side struct {
	ID string
	// External is the e-Boekhouden ID stored on a Tribe record ("" for none, and for
	// e-Boekhouden records).
	External string
	// Key is the debtor number, product code or invoice number ("" for none).
	Key  string
	Name string
	// Record is stored with a new link (invoices only).
	Record []byte
}

// pair is a match of one Tribe and one e-Boekhouden record.
type pair struct {
	tribe, eb *side
	how       string
}

func (k *kindReport) example(e rebuildExample) {
	n := 0
	for _, x := range k.Examples {
		if x.Outcome == e.Outcome {
			n++
		}
	}
	if n < maxExamples {
		k.Examples = append(k.Examples, e)
	}
}

func (k *kindReport) count(outcome string) {
	switch outcome {
	case outcomeLinked:
		k.Linked++
	case outcomeAlreadyLinked:
		k.AlreadyLinked++
	case outcomeConflicting:
		k.Conflicting++
	case outcomeUnmatchedTr:
		k.UnmatchedTribe++
	case outcomeUnmatchedEB:
		k.UnmatchedEBoekhouden++
	}
}

// rebuildLeaseTTL bounds how long a crashed rebuild keeps others of the same tenant out.
const rebuildLeaseTTL = 30 * time.Minute

func (a *admin) rebuild(w http.ResponseWriter, r *http.Request) {
	var req rebuildRequest
	if !httpapi.DecodeJSON(w, r, &req) {
		return
	}
	ctx := r.Context()
	id := r.PathValue("tenant")
	res, err := a.mapping.GetTenant(ctx, &mappingv1.GetTenantRequest{TenantId: id})
	if err != nil {
		a.writeGRPCError(w, r, err)
		return
	}
	t := res.GetTenant()
	if st := t.GetSettings(); st.GetEboekhoudenBaseUrl() == "" || st.GetTribeBaseUrl() == "" {
		httpapi.WriteError(w, http.StatusConflict, "no_credentials", "store the credentials first (PUT .../credentials)")
		return
	}
	// Reading two whole systems takes longer than the server's write timeout allows an answer.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(rebuildLeaseTTL))

	leases := mapping.Leases{Client: a.mapping, Holder: "rebuild-" + strconv.FormatInt(a.now().UnixNano(), 36),
		TTL: rebuildLeaseTTL, Wait: time.Millisecond}
	lease, err := leases.Acquire(ctx, id, "rebuild", "the mapping of "+id)
	if errors.Is(err, mapping.ErrLeaseBusy) {
		httpapi.WriteError(w, http.StatusConflict, "rebuild_in_progress", "a rebuild of this tenant is in progress")
		return
	}
	if err != nil {
		a.writeGRPCError(w, r, err)
		return
	}
	defer lease.Release()

	// Clients of its own, so the e-Boekhouden session ends with the rebuild.
	cache, err := tenantclients.New(a.mapping, a.clients)
	if err != nil {
		httpapi.WriteError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		cache.Close(cctx)
	}()
	eb, tr, err := cache.Both(ctx, t)
	if err != nil {
		a.writeGRPCError(w, r, err)
		return
	}
	rb := &rebuilder{mapping: a.mapping, tenant: id, dryRun: req.DryRun, eb: eb, tr: tr}
	report, err := rb.run(ctx)
	if err != nil {
		a.log.WarnContext(ctx, "rebuild failed", "tenant", id, "dry_run", req.DryRun, "error", err)
		var se interface{ GRPCStatus() *status.Status }
		if errors.As(err, &se) {
			a.writeGRPCError(w, r, err)
			return
		}
		// What a system answered stays in the log: echoed, it would make the gateway a window
		// onto whatever a base URL points at.
		httpapi.WriteError(w, http.StatusBadGateway, "unreachable", "rebuild: e-Boekhouden or Tribe could not be read (the gateway's log says why); nothing is lost, run it again")
		return
	}
	a.log.InfoContext(ctx, "rebuild done", "tenant", id, "dry_run", req.DryRun, "kinds", len(report.Kinds))
	httpapi.WriteJSON(w, http.StatusOK, report)
}

// rebuilder rebuilds one tenant's mapping.
type rebuilder struct {
	mapping mappingv1.MappingServiceClient
	tenant  string
	dryRun  bool
	eb      *eboekhouden.Client
	tr      *tribe.Client
}

func (b *rebuilder) run(ctx context.Context) (*rebuildReport, error) {
	rep := &rebuildReport{Tenant: b.tenant, DryRun: b.dryRun, CursorsReset: []string{}}
	highest, err := b.relations(ctx, rep)
	if err != nil {
		return nil, err
	}
	if err := b.products(ctx, rep); err != nil {
		return nil, err
	}
	if err := b.invoices(ctx, rep); err != nil {
		return nil, err
	}

	rep.DebtorNumbers.HighestUsed = highest
	if highest > 0 && !b.dryRun {
		res, err := b.mapping.RaiseNumber(ctx, &mappingv1.RaiseNumberRequest{TenantId: b.tenant, Sequence: "debtor", Floor: highest})
		if err != nil {
			return nil, fmt.Errorf("raise debtor numbers: %w", err)
		}
		rep.DebtorNumbers.Sequence = res.GetCurrent()
	}
	for _, name := range rebuildCursors {
		cur, err := b.mapping.GetCursor(ctx, &mappingv1.GetCursorRequest{TenantId: b.tenant, Name: name})
		if err != nil {
			return nil, fmt.Errorf("read cursor %s: %w", name, err)
		}
		if cur.GetValue() == "" {
			continue
		}
		rep.CursorsReset = append(rep.CursorsReset, name)
		if b.dryRun {
			continue
		}
		if _, err := b.mapping.SetCursor(ctx, &mappingv1.SetCursorRequest{TenantId: b.tenant, Name: name}); err != nil {
			return nil, fmt.Errorf("clear cursor %s: %w", name, err)
		}
	}
	for _, k := range rep.Kinds {
		if k.Conflicting > 0 {
			rep.Notes = append(rep.Notes, "Conflicting records were left alone: give each record its own debtor number, code or invoice number "+
				"(or correct its e-Boekhouden ID), or remove the link that disagrees, then rebuild again.")
			break
		}
	}
	if b.dryRun {
		rep.Notes = append(rep.Notes, "Dry run: nothing was changed.")
	}
	return rep, nil
}

// debtorNumber parses a debtor number or relation code that koppel's numbering could collide
// with: a whole positive number.
func debtorNumber(s string) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	return n, err == nil && n > 0
}

type tribeRelation struct {
	tribe.Meta
	Name         string `json:"Name"`
	DebtorNumber string `json:"DebtorNumber"`
}

// relations rebuilds the organisation and person links and returns the highest debtor number
// used in either system.
func (b *rebuilder) relations(ctx context.Context, rep *rebuildReport) (int64, error) {
	var highest int64
	ebByKind := map[string][]*side{}
	for item, err := range b.eb.Relations(ctx) {
		if err != nil {
			return 0, fmt.Errorf("list e-Boekhouden relations: %w", err)
		}
		kind := "organization"
		if item.Type == eboekhouden.RelationPrivate {
			kind = "person"
		}
		ebByKind[kind] = append(ebByKind[kind], &side{ID: strconv.FormatInt(item.ID, 10), Key: strings.TrimSpace(item.Code)})
		if n, ok := debtorNumber(item.Code); ok {
			highest = max(highest, n)
		}
	}
	for _, k := range []struct{ kind, set string }{{"organization", tribe.SetOrganization}, {"person", tribe.SetPerson}} {
		q := tribe.Q().Select("ID", "Name", "DebtorNumber", tribe.DefaultExternalIDField)
		var trs []*side
		for raw, err := range tribe.List[json.RawMessage](ctx, b.tr, k.set, q) {
			if err != nil {
				return 0, fmt.Errorf("list Tribe %s: %w", k.set, err)
			}
			var rel tribeRelation
			var extra map[string]json.RawMessage
			if err := json.Unmarshal(raw, &rel); err != nil {
				return 0, fmt.Errorf("decode Tribe %s: %w", k.set, err)
			}
			_ = json.Unmarshal(raw, &extra)
			trs = append(trs, &side{ID: strings.ToLower(rel.ID), External: rawText(extra[tribe.DefaultExternalIDField]),
				Key: strings.TrimSpace(rel.DebtorNumber), Name: rel.Name})
			if n, ok := debtorNumber(rel.DebtorNumber); ok {
				highest = max(highest, n)
			}
		}
		kr := &kindReport{Kind: k.kind, Examples: []rebuildExample{}}
		rep.Kinds = append(rep.Kinds, kr)
		if err := b.apply(ctx, kr, trs, ebByKind[k.kind], true, "debtor number"); err != nil {
			return 0, err
		}
	}
	return highest, nil
}

// rawText reads a JSON string field; anything else (null, absent) is "".
func rawText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return strings.TrimSpace(s)
}

func (b *rebuilder) products(ctx context.Context, rep *rebuildReport) error {
	var ebs []*side
	for item, err := range b.eb.Products(ctx) {
		if err != nil {
			return fmt.Errorf("list e-Boekhouden products: %w", err)
		}
		ebs = append(ebs, &side{ID: strconv.FormatInt(item.ID, 10), Key: strings.TrimSpace(item.Code), Name: item.Description})
	}
	var trs []*side
	for p, err := range b.tr.Products(ctx, tribe.Q().Select("ID", "Code", "Name", tribe.DefaultExternalIDField)) {
		if err != nil {
			return fmt.Errorf("list Tribe products: %w", err)
		}
		trs = append(trs, &side{ID: strings.ToLower(p.ID), External: strings.TrimSpace(p.ExternalID), Key: strings.TrimSpace(p.Code), Name: p.Name})
	}
	kr := &kindReport{Kind: "product", Examples: []rebuildExample{}}
	rep.Kinds = append(rep.Kinds, kr)
	return b.apply(ctx, kr, trs, ebs, true, "product code")
}

// paymentRecord is the invoice link's record as the invoice and payment flows keep it.
type paymentRecord struct {
	Number string `json:"number"`
	Paid   string `json:"paid,omitempty"`
}

func (b *rebuilder) invoices(ctx context.Context, rep *rebuildReport) error {
	var ebs []*side
	for item, err := range b.eb.Invoices(ctx) {
		if err != nil {
			return fmt.Errorf("list e-Boekhouden invoices: %w", err)
		}
		ebs = append(ebs, &side{ID: strconv.FormatInt(item.ID, 10), Key: strings.TrimSpace(item.InvoiceNumber)})
	}
	open := map[string]eboekhouden.OutstandingInvoice{}
	for item, err := range b.eb.Outstanding(ctx, eboekhouden.Debtors) {
		if err != nil {
			return fmt.Errorf("list open items: %w", err)
		}
		open[strings.TrimSpace(item.InvoiceNumber)] = item
	}
	q := tribe.Q().Filter(tribe.Or(tribe.Eq("Phase/Code", phaseSent), tribe.Eq("Phase/Code", phasePaid))).Select("ID", "Number", "Subject").Expand("Phase")
	var trs []*side
	for inv, err := range b.tr.Invoices(ctx, q) {
		if err != nil {
			return fmt.Errorf("list Tribe invoices: %w", err)
		}
		number := strings.TrimSpace(inv.Number)
		rec := paymentRecord{Number: number}
		switch item, listed := open[number]; {
		case inv.Phase != nil && strings.EqualFold(inv.Phase.Code, phasePaid):
			rec.Paid = "full"
		case listed && item.PaidAmount.Sign() > 0 && item.OutstandingAmount.Sign() > 0:
			rec.Paid = item.PaidAmount.StringFixed(2)
		}
		raw, _ := json.Marshal(rec)
		trs = append(trs, &side{ID: strings.ToLower(inv.ID), Key: number, Name: inv.Subject, Record: raw})
	}
	kr := &kindReport{Kind: "invoice", Examples: []rebuildExample{}}
	rep.Kinds = append(rep.Kinds, kr)
	return b.apply(ctx, kr, trs, ebs, false, "invoice number")
}

// Tribe invoice phases an invoice is booked in.
const (
	phaseSent = "Sent"
	phasePaid = "Paid"
)

// match pairs Tribe and e-Boekhouden records: first by the e-Boekhouden ID stored on the Tribe
// record (when byExternal), then by key. Ambiguous matches are returned as conflicts, and records
// that could have matched but did not as unmatched.
func match(kr *kindReport, trs, ebs []*side, byExternal bool, keyName string) (pairs []pair, unmatchedTr, unmatchedEB []*side) {
	ebByID := map[string]*side{}
	for _, e := range ebs {
		ebByID[e.ID] = e
	}
	done := map[*side]bool{}
	conflict := func(reason string, recs ...*side) {
		kr.Conflicting++
		ex := rebuildExample{Outcome: outcomeConflicting, Reason: reason}
		for _, r := range recs {
			done[r] = true
			if _, isEB := ebByID[r.ID]; isEB && ebByID[r.ID] == r {
				ex.EBoekhoudenID = r.ID
			} else if ex.TribeID == "" {
				ex.TribeID, ex.Name = r.ID, r.Name
			}
			if ex.Key == "" {
				ex.Key = r.Key
			}
		}
		kr.example(ex)
	}

	if byExternal {
		byExt := map[string][]*side{}
		for _, t := range trs {
			if t.External != "" && ebByID[t.External] != nil {
				byExt[t.External] = append(byExt[t.External], t)
			}
		}
		for _, ext := range slices.Sorted(maps.Keys(byExt)) {
			ts, e := byExt[ext], ebByID[ext]
			if len(ts) > 1 {
				conflict(fmt.Sprintf("%d Tribe records (%s) carry e-Boekhouden ID %s", len(ts), ids(ts), ext), append(ts, e)...)
				continue
			}
			pairs = append(pairs, pair{tribe: ts[0], eb: e, how: "e-Boekhouden ID " + ext + " on the Tribe record"})
			done[ts[0]], done[e] = true, true
		}
	}

	trByKey, ebByKey := map[string][]*side{}, map[string][]*side{}
	for _, t := range trs {
		if !done[t] && t.Key != "" {
			trByKey[t.Key] = append(trByKey[t.Key], t)
		}
	}
	for _, e := range ebs {
		if !done[e] && e.Key != "" {
			ebByKey[e.Key] = append(ebByKey[e.Key], e)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(trByKey)) {
		ts, es := trByKey[key], ebByKey[key]
		switch {
		case len(es) == 0:
		case len(ts) == 1 && len(es) == 1:
			pairs = append(pairs, pair{tribe: ts[0], eb: es[0], how: keyName + " " + key})
			done[ts[0]], done[es[0]] = true, true
		default:
			conflict(fmt.Sprintf("%s %s is used by %d Tribe and %d e-Boekhouden records", keyName, key, len(ts), len(es)), append(ts, es...)...)
		}
	}
	for _, t := range trs {
		if !done[t] && (t.External != "" || t.Key != "") {
			unmatchedTr = append(unmatchedTr, t)
		}
	}
	for _, e := range ebs {
		if !done[e] {
			unmatchedEB = append(unmatchedEB, e)
		}
	}
	return pairs, unmatchedTr, unmatchedEB
}

func ids(recs []*side) string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return strings.Join(out, ", ")
}

// apply matches the records of one kind, compares the matches with the links that exist, and
// creates the missing links (unless a dry run).
func (b *rebuilder) apply(ctx context.Context, kr *kindReport, trs, ebs []*side, byExternal bool, keyName string) error {
	kr.FoundTribe, kr.FoundEBoekhouden = len(trs), len(ebs)
	pairs, unmatchedTr, unmatchedEB := match(kr, trs, ebs, byExternal, keyName)

	byTribe, byEB, err := b.existingLinks(ctx, kr.Kind, trs, ebs)
	if err != nil {
		return err
	}
	counted := map[string]bool{} // tribe IDs of existing links already counted
	for _, p := range pairs {
		ex := rebuildExample{TribeID: p.tribe.ID, EBoekhoudenID: p.eb.ID, Key: p.tribe.Key, Name: p.tribe.Name}
		lt, le := byTribe[p.tribe.ID], byEB[p.eb.ID]
		switch {
		case lt != nil && lt.GetEboekhoudenId() == p.eb.ID:
			counted[p.tribe.ID] = true
			kr.count(outcomeAlreadyLinked)
			continue
		case lt != nil:
			counted[p.tribe.ID] = true
			ex.Outcome, ex.Reason = outcomeConflicting, fmt.Sprintf("matched by %s, but the Tribe record is linked to e-Boekhouden %s; the link was kept", p.how, lt.GetEboekhoudenId())
		case le != nil:
			counted[le.GetTribeId()] = true
			ex.Outcome, ex.Reason = outcomeConflicting, fmt.Sprintf("matched by %s, but the e-Boekhouden record is linked to Tribe %s; the link was kept", p.how, le.GetTribeId())
		default:
			ex.Outcome, ex.Reason = outcomeLinked, "matched by "+p.how
			if !b.dryRun {
				_, err := b.mapping.CreateLink(ctx, &mappingv1.CreateLinkRequest{TenantId: b.tenant, Kind: kr.Kind,
					TribeId: p.tribe.ID, EboekhoudenId: p.eb.ID, Record: p.tribe.Record})
				if status.Code(err) == codes.AlreadyExists {
					// Linked by a sync meanwhile, to something else.
					ex.Outcome, ex.Reason = outcomeConflicting, "matched by "+p.how+", but a sync linked one of them to another record meanwhile"
				} else if err != nil {
					return fmt.Errorf("create %s link: %w", kr.Kind, err)
				}
			}
		}
		kr.count(ex.Outcome)
		kr.example(ex)
	}
	for _, t := range unmatchedTr {
		if l := byTribe[t.ID]; l != nil {
			if !counted[t.ID] {
				counted[t.ID] = true
				kr.count(outcomeAlreadyLinked)
			}
			continue
		}
		reason := "no e-Boekhouden record with its " + keyName
		if t.External != "" {
			reason = "its e-Boekhouden ID " + t.External + " is no e-Boekhouden record of this kind, and " + reason
		}
		kr.count(outcomeUnmatchedTr)
		kr.example(rebuildExample{Outcome: outcomeUnmatchedTr, TribeID: t.ID, Key: t.Key, Name: t.Name, Reason: reason})
	}
	for _, e := range unmatchedEB {
		if l := byEB[e.ID]; l != nil {
			if !counted[l.GetTribeId()] {
				counted[l.GetTribeId()] = true
				kr.count(outcomeAlreadyLinked)
			}
			continue
		}
		kr.count(outcomeUnmatchedEB)
		kr.example(rebuildExample{Outcome: outcomeUnmatchedEB, EBoekhoudenID: e.ID, Key: e.Key, Name: e.Name,
			Reason: "no Tribe record carries its ID or its " + keyName})
	}
	slices.SortStableFunc(kr.Examples, func(a, b rebuildExample) int { return outcomeRank[a.Outcome] - outcomeRank[b.Outcome] })
	return nil
}

// outcomeRank orders a report's examples.
var outcomeRank = map[string]int{outcomeLinked: 0, outcomeAlreadyLinked: 1, outcomeConflicting: 2, outcomeUnmatchedTr: 3, outcomeUnmatchedEB: 4}

// linkBatch keeps BatchGetLinks calls well under the mapping service's limit.
const linkBatch = 500

// existingLinks reads the links of every record found, by Tribe and by e-Boekhouden ID.
func (b *rebuilder) existingLinks(ctx context.Context, kind string, trs, ebs []*side) (byTribe, byEB map[string]*mappingv1.Link, err error) {
	byTribe, byEB = map[string]*mappingv1.Link{}, map[string]*mappingv1.Link{}
	for _, s := range []struct {
		recs  []*side
		tribe bool
	}{{trs, true}, {ebs, false}} {
		for start := 0; start < len(s.recs); start += linkBatch {
			part := s.recs[start:min(start+linkBatch, len(s.recs))]
			req := &mappingv1.BatchGetLinksRequest{TenantId: b.tenant, Kind: kind}
			for _, r := range part {
				if s.tribe {
					req.TribeIds = append(req.TribeIds, r.ID)
				} else {
					req.EboekhoudenIds = append(req.EboekhoudenIds, r.ID)
				}
			}
			res, err := b.mapping.BatchGetLinks(ctx, req)
			if err != nil {
				return nil, nil, fmt.Errorf("read %s links: %w", kind, err)
			}
			for _, l := range res.GetLinks() {
				byTribe[l.GetTribeId()], byEB[l.GetEboekhoudenId()] = l, l
			}
		}
	}
	return byTribe, byEB, nil
}
