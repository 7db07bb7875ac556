package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/koppel/koppel/pkg/adminapi"
	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/eboekhouden"
	"github.com/koppel/koppel/pkg/invoicelink"
	"github.com/koppel/koppel/pkg/syncrun"
	"github.com/koppel/koppel/pkg/tribe"
	eventsv1 "github.com/koppel/koppel/proto/koppel/events/v1"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/koppel/koppel/services/relation/record"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Rebuilding the mapping (sync kind "rebuild", started by POST /admin/v1/tenants/{tenant}/rebuild)
// recovers a tenant's links after the loss of Redis, from what both systems remember of each
// other. It is a run like any other, on the relation service: progress in the run, its report in
// the finished run, and it never runs beside a run that would change the links under it
// (bus.ExclusiveKinds).
//
//	relations  by the rule every relation flow matches by (record.Match): the e-Boekhouden ID
//	           koppel stores on every Tribe relation (ImportId), then the debtor number, then the
//	           creditor number (Tribe) = relation code (e-Boekhouden), per kind (organisation =
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
//	relations  no last-synced record (only where Tribe keeps the code, for a supplier). The next
//	           sync of the relation is then a first contact, exactly as when the import finds an
//	           existing Tribe relation: e-Boekhouden is not written, a field empty in Tribe takes
//	           e-Boekhouden's value, and every other difference is held and reported until a user
//	           settles it. A record guessed from one side would be worse: every difference would
//	           look like a change made on the other side since the last sync, and win.
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

// maxExamples bounds the examples per kind and outcome in a report.
const maxExamples = 5

// side is one record of either system, as matching needs it.
type side struct {
	ID string
	// External is the e-Boekhouden ID stored on a Tribe record ("" for none, and for
	// e-Boekhouden records).
	External string
	// Key is the debtor number, product code or invoice number ("" for none).
	Key string
	// Creditor is a Tribe relation's creditor number.
	Creditor string
	Name     string
	// Record is stored with a new link (invoices, and suppliers: where Tribe keeps the code).
	Record []byte
}

// pair is a match of one Tribe and one e-Boekhouden record.
type pair struct {
	tribe, eb *side
	how       string
	// record is stored with the new link; nil takes the Tribe side's Record.
	record []byte
}

func addExample(k *adminapi.KindReport, e adminapi.RebuildExample) {
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

func countOutcome(k *adminapi.KindReport, outcome string) {
	switch outcome {
	case adminapi.OutcomeLinked:
		k.Linked++
	case adminapi.OutcomeAlreadyLinked:
		k.AlreadyLinked++
	case adminapi.OutcomeConflicting:
		k.Conflicting++
	case adminapi.OutcomeUnmatchedTribe:
		k.UnmatchedTribe++
	case adminapi.OutcomeUnmatchedEBoekhouden:
		k.UnmatchedEBoekhouden++
	}
}

// rebuilder rebuilds one tenant's mapping.
type rebuilder struct {
	mapping mappingv1.MappingServiceClient
	tenant  string
	dryRun  bool
	eb      *eboekhouden.Client
	tr      *tribe.Client
	// run takes the progress: each kind's e-Boekhouden records, as they are handled.
	run *syncrun.Run
	// total is the e-Boekhouden records listed so far, the run's total.
	total int64
}

func (b *rebuilder) rebuild(ctx context.Context) (*adminapi.RebuildReport, error) {
	rep := &adminapi.RebuildReport{Tenant: b.tenant, DryRun: b.dryRun, CursorsReset: []string{}}
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
	for _, name := range syncrun.Cursors {
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
	Name           string `json:"Name"`
	DebtorNumber   string `json:"DebtorNumber"`
	CreditorNumber string `json:"CreditorNumber"`
}

// relations rebuilds the organisation and person links and returns the highest debtor number
// used in either system.
func (b *rebuilder) relations(ctx context.Context, rep *adminapi.RebuildReport) (int64, error) {
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
		q := tribe.Q().Select("ID", "Name", "DebtorNumber", "CreditorNumber", b.tr.ExternalIDField()).Bulk()
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
			trs = append(trs, &side{ID: strings.ToLower(rel.ID), External: rawText(extra[b.tr.ExternalIDField()]),
				Key: strings.TrimSpace(rel.DebtorNumber), Creditor: strings.TrimSpace(rel.CreditorNumber), Name: rel.Name})
			for _, n := range []string{rel.DebtorNumber, rel.CreditorNumber} {
				if n, ok := debtorNumber(n); ok {
					highest = max(highest, n)
				}
			}
		}
		kr := &adminapi.KindReport{Kind: k.kind, Examples: []adminapi.RebuildExample{}}
		rep.Kinds = append(rep.Kinds, kr)
		pairs, unTr, unEB := matchRelations(kr, trs, ebByKind[k.kind])
		if err := b.apply(ctx, kr, trs, ebByKind[k.kind], pairs, unTr, unEB, "debtor or creditor number"); err != nil {
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

func (b *rebuilder) products(ctx context.Context, rep *adminapi.RebuildReport) error {
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
	kr := &adminapi.KindReport{Kind: "product", Examples: []adminapi.RebuildExample{}}
	rep.Kinds = append(rep.Kinds, kr)
	pairs, unTr, unEB := match(kr, trs, ebs, true, "product code")
	return b.apply(ctx, kr, trs, ebs, pairs, unTr, unEB, "product code")
}

func (b *rebuilder) invoices(ctx context.Context, rep *adminapi.RebuildReport) error {
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
	q := tribe.Q().Filter(tribe.Or(tribe.Eq("Phase/Code", tribe.PhaseSent), tribe.Eq("Phase/Code", tribe.PhasePaid))).Select("ID", "Number", "Subject").Expand("Phase")
	var trs []*side
	for inv, err := range b.tr.Invoices(ctx, q) {
		if err != nil {
			return fmt.Errorf("list Tribe invoices: %w", err)
		}
		number := strings.TrimSpace(inv.Number)
		rec := invoicelink.State{Number: number}
		switch item, listed := open[number]; {
		case inv.Phase != nil && strings.EqualFold(inv.Phase.Code, tribe.PhasePaid):
			rec.Paid = invoicelink.PaidInFull
		case listed && item.PaidAmount.Sign() > 0 && item.OutstandingAmount.Sign() > 0:
			rec.Paid = item.PaidAmount.StringFixed(2)
		}
		trs = append(trs, &side{ID: strings.ToLower(inv.ID), Key: number, Name: inv.Subject, Record: rec.Encode()})
	}
	kr := &adminapi.KindReport{Kind: invoicelink.Kind, Examples: []adminapi.RebuildExample{}}
	rep.Kinds = append(rep.Kinds, kr)
	pairs, unTr, unEB := match(kr, trs, ebs, false, "invoice number")
	return b.apply(ctx, kr, trs, ebs, pairs, unTr, unEB, "invoice number")
}

// match pairs Tribe and e-Boekhouden records: first by the e-Boekhouden ID stored on the Tribe
// record (when byExternal), then by key. Ambiguous matches are returned as conflicts, and records
// that could have matched but did not as unmatched.
func match(kr *adminapi.KindReport, trs, ebs []*side, byExternal bool, keyName string) (pairs []pair, unmatchedTr, unmatchedEB []*side) {
	ebByID := map[string]*side{}
	for _, e := range ebs {
		ebByID[e.ID] = e
	}
	done := map[*side]bool{}
	conflict := func(reason string, recs ...*side) {
		kr.Conflicting++
		ex := adminapi.RebuildExample{Outcome: adminapi.OutcomeConflicting, Reason: reason}
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
		addExample(kr, ex)
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

// matchRelations pairs the e-Boekhouden relations of one kind with the Tribe ones by the rule
// every relation flow matches by (record.Match: e-Boekhouden ID, debtor number, creditor number).
// Several Tribe relations sharing the deciding key, or one Tribe relation that several
// e-Boekhouden relations match, are conflicts, never guessed between. A supplier's pair carries
// the record that says Tribe keeps its code in the creditor number.
func matchRelations(kr *adminapi.KindReport, trs, ebs []*side) (pairs []pair, unmatchedTr, unmatchedEB []*side) {
	byExternal, byDebtor, byCreditor := map[string][]*side{}, map[string][]*side{}, map[string][]*side{}
	for _, t := range trs {
		if t.External != "" {
			byExternal[t.External] = append(byExternal[t.External], t)
		}
		if t.Key != "" {
			byDebtor[t.Key] = append(byDebtor[t.Key], t)
		}
		if t.Creditor != "" {
			byCreditor[t.Creditor] = append(byCreditor[t.Creditor], t)
		}
	}
	bySide := map[string]*side{}
	claims := map[*side][]pair{}
	done := map[*side]bool{}
	for _, e := range ebs {
		var cands []record.Candidate
		seen := map[*side]bool{}
		for _, t := range slices.Concat(byExternal[e.ID], byDebtor[e.Key], byCreditor[e.Key]) {
			if !seen[t] {
				seen[t] = true
				bySide[t.ID] = t
				cands = append(cands, record.Candidate{ID: t.ID, EBoekhoudenID: t.External, DebtorNumber: t.Key, CreditorNumber: t.Creditor})
			}
		}
		c, field, found, err := record.Match(cands, e.ID, e.Key)
		var amb *record.AmbiguousError
		switch {
		case errors.As(err, &amb):
			kr.Conflicting++
			done[e] = true
			for _, id := range amb.IDs {
				done[bySide[id]] = true
			}
			addExample(kr, adminapi.RebuildExample{Outcome: adminapi.OutcomeConflicting, TribeID: strings.Join(amb.IDs, ", "), EBoekhoudenID: e.ID,
				Key: e.Key, Reason: amb.Error()})
		case found:
			t := bySide[c.ID]
			p := pair{tribe: t, eb: e, how: "debtor number " + e.Key}
			switch {
			case t.External == e.ID:
				p.how = "e-Boekhouden ID " + e.ID + " on the Tribe record"
			case field == record.CreditorNumber:
				p.how = "creditor number " + e.Key
			}
			if field == record.CreditorNumber {
				p.record = record.Synced{CodeField: record.CreditorNumber}.Encode()
			}
			claims[t] = append(claims[t], p)
		}
	}
	for _, t := range trs {
		ps := claims[t]
		switch {
		case len(ps) == 1:
			pairs = append(pairs, ps[0])
			done[t], done[ps[0].eb] = true, true
		case len(ps) > 1:
			kr.Conflicting++
			done[t] = true
			var ebIDs []string
			for _, p := range ps {
				done[p.eb] = true
				ebIDs = append(ebIDs, p.eb.ID)
			}
			addExample(kr, adminapi.RebuildExample{Outcome: adminapi.OutcomeConflicting, TribeID: t.ID, EBoekhoudenID: strings.Join(ebIDs, ", "),
				Name: t.Name, Reason: fmt.Sprintf("%d e-Boekhouden relations match this Tribe relation", len(ps))})
		}
	}
	for _, t := range trs {
		if !done[t] && (t.External != "" || t.Key != "" || t.Creditor != "") {
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

// linkRecord is what the pair's new link stores.
func (p pair) linkRecord() []byte {
	if p.record != nil {
		return p.record
	}
	return p.tribe.Record
}

func ids(recs []*side) string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return strings.Join(out, ", ")
}

// apply compares the matches of one kind with the links that exist, and creates the missing
// links (unless a dry run).
func (b *rebuilder) apply(ctx context.Context, kr *adminapi.KindReport, trs, ebs []*side, pairs []pair, unmatchedTr, unmatchedEB []*side, keyName string) error {
	kr.FoundTribe, kr.FoundEBoekhouden = len(trs), len(ebs)
	if b.run != nil {
		b.total += int64(len(ebs))
		if err := b.run.Add(ctx, &mappingv1.RunCounts{}, 0, b.total); err != nil {
			return err
		}
	}
	defer func() {
		if b.run != nil {
			if err := b.run.Add(ctx, &mappingv1.RunCounts{}, int64(len(ebs)), 0); err != nil {
				slog.Default().WarnContext(ctx, "rebuild progress", "error", err)
			}
		}
	}()

	byTribe, byEB, err := b.existingLinks(ctx, kr.Kind, trs, ebs)
	if err != nil {
		return err
	}
	counted := map[string]bool{} // tribe IDs of existing links already counted
	for _, p := range pairs {
		ex := adminapi.RebuildExample{TribeID: p.tribe.ID, EBoekhoudenID: p.eb.ID, Key: p.tribe.Key, Name: p.tribe.Name}
		lt, le := byTribe[p.tribe.ID], byEB[p.eb.ID]
		switch {
		case lt != nil && lt.GetEboekhoudenId() == p.eb.ID:
			counted[p.tribe.ID] = true
			countOutcome(kr, adminapi.OutcomeAlreadyLinked)
			continue
		case lt != nil:
			counted[p.tribe.ID] = true
			ex.Outcome, ex.Reason = adminapi.OutcomeConflicting, fmt.Sprintf("matched by %s, but the Tribe record is linked to e-Boekhouden %s; the link was kept", p.how, lt.GetEboekhoudenId())
		case le != nil:
			counted[le.GetTribeId()] = true
			ex.Outcome, ex.Reason = adminapi.OutcomeConflicting, fmt.Sprintf("matched by %s, but the e-Boekhouden record is linked to Tribe %s; the link was kept", p.how, le.GetTribeId())
		default:
			ex.Outcome, ex.Reason = adminapi.OutcomeLinked, "matched by "+p.how
			if !b.dryRun {
				_, err := b.mapping.CreateLink(ctx, &mappingv1.CreateLinkRequest{TenantId: b.tenant, Kind: kr.Kind,
					TribeId: p.tribe.ID, EboekhoudenId: p.eb.ID, Record: p.linkRecord()})
				if status.Code(err) == codes.AlreadyExists {
					// Linked by a sync meanwhile, to something else.
					ex.Outcome, ex.Reason = adminapi.OutcomeConflicting, "matched by "+p.how+", but a sync linked one of them to another record meanwhile"
				} else if err != nil {
					return fmt.Errorf("create %s link: %w", kr.Kind, err)
				}
			}
		}
		countOutcome(kr, ex.Outcome)
		addExample(kr, ex)
	}
	for _, t := range unmatchedTr {
		if l := byTribe[t.ID]; l != nil {
			if !counted[t.ID] {
				counted[t.ID] = true
				countOutcome(kr, adminapi.OutcomeAlreadyLinked)
			}
			continue
		}
		reason := "no e-Boekhouden record with its " + keyName
		if t.External != "" {
			reason = "its e-Boekhouden ID " + t.External + " is no e-Boekhouden record of this kind, and " + reason
		}
		countOutcome(kr, adminapi.OutcomeUnmatchedTribe)
		addExample(kr, adminapi.RebuildExample{Outcome: adminapi.OutcomeUnmatchedTribe, TribeID: t.ID, Key: t.Key, Name: t.Name, Reason: reason})
	}
	for _, e := range unmatchedEB {
		if l := byEB[e.ID]; l != nil {
			if !counted[l.GetTribeId()] {
				counted[l.GetTribeId()] = true
				countOutcome(kr, adminapi.OutcomeAlreadyLinked)
			}
			continue
		}
		countOutcome(kr, adminapi.OutcomeUnmatchedEBoekhouden)
		addExample(kr, adminapi.RebuildExample{Outcome: adminapi.OutcomeUnmatchedEBoekhouden, EBoekhoudenID: e.ID, Key: e.Key, Name: e.Name,
			Reason: "no Tribe record carries its ID or its " + keyName})
	}
	slices.SortStableFunc(kr.Examples, func(a, b adminapi.RebuildExample) int { return outcomeRank[a.Outcome] - outcomeRank[b.Outcome] })
	return nil
}

// outcomeRank orders a report's examples.
var outcomeRank = map[string]int{adminapi.OutcomeLinked: 0, adminapi.OutcomeAlreadyLinked: 1, adminapi.OutcomeConflicting: 2, adminapi.OutcomeUnmatchedTribe: 3, adminapi.OutcomeUnmatchedEBoekhouden: 4}

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

// rebuildJob runs rebuild commands (sync kind "rebuild") on the relation service, with its
// clients and API budgets.
type rebuildJob struct {
	mapping mappingv1.MappingServiceClient
	clients func(ctx context.Context, t *mappingv1.Tenant) (*eboekhouden.Client, *tribe.Client, error)
	log     *slog.Logger
}

// run rebuilds the tenant's mapping and leaves the report in the run. A failure to read either
// system is transient: the command is delivered again, and a second pass links only what the
// first did not (existing links are left alone).
func (j *rebuildJob) run(ctx context.Context, tenant *mappingv1.Tenant, cmd *eventsv1.SyncCommand, run *syncrun.Run) error {
	eb, tr, err := j.clients(ctx, tenant)
	if err != nil {
		return err
	}
	b := &rebuilder{mapping: j.mapping, tenant: tenant.GetId(), dryRun: cmd.GetDryRun(), eb: eb, tr: tr, run: run}
	rep, err := b.rebuild(ctx)
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	raw, err := json.Marshal(rep)
	if err != nil {
		return bus.Permanent(fmt.Errorf("encode the rebuild report: %w", err), nil)
	}
	run.SetReport(string(raw))
	var linked, conflicting int
	for _, k := range rep.Kinds {
		linked += k.Linked
		conflicting += k.Conflicting
	}
	verb := "linked"
	if rep.DryRun {
		verb = "would link"
	}
	run.SetMessage(fmt.Sprintf("%s %d, %d conflicting", verb, linked, conflicting))
	j.log.InfoContext(ctx, "rebuild done", "tenant", tenant.GetId(), "dry_run", rep.DryRun, "linked", linked, "conflicting", conflicting)
	return nil
}
