package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/mapping"
	"github.com/koppel/koppel/pkg/syncrun"
	"github.com/koppel/koppel/pkg/tenantsettings"
	eventsv1 "github.com/koppel/koppel/proto/koppel/events/v1"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/shopspring/decimal"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// kindProduct is the link kind of products in the mapping service.
const kindProduct = "product"

// connectFunc gives the ports of a tenant's two systems.
type connectFunc func(ctx context.Context, tenant *mappingv1.Tenant) (Books, CRM, error)

// puller runs the product pull: e-Boekhouden to Tribe only.
type puller struct {
	mapping mappingv1.MappingServiceClient
	connect connectFunc
	holder  string
	log     *slog.Logger
	// concurrency is how many products a run handles at once. Default 4.
	concurrency int
	// fullEvery is how often a scheduled run reads every product's details, to catch the price
	// and VAT changes the list endpoint does not show. Default 1 hour.
	fullEvery time.Duration
	now       func() time.Time
}

const leaseTTL = 30 * time.Second

func (p *puller) clock() time.Time {
	if p.now != nil {
		return p.now()
	}
	return time.Now()
}

// lease serialises writers of one product across every replica.
func (p *puller) lease(ctx context.Context, tenant, name string) (func(), error) {
	l, err := mapping.Leases{Client: p.mapping, Holder: p.holder, TTL: leaseTTL}.Acquire(ctx, tenant, name, name)
	if err != nil {
		return nil, err
	}
	return l.Release, nil
}

func (p *puller) resolve(ctx context.Context, tenant string, keys ...string) {
	for _, k := range keys {
		if _, err := p.mapping.ResolveIssue(ctx, &mappingv1.ResolveIssueRequest{TenantId: tenant, Key: k}); err != nil {
			p.log.WarnContext(ctx, "resolve issue", "issue", k, "error", err)
		}
	}
}

func issueKey(ebID, what string) string { return fmt.Sprintf("product/%s/%s", ebID, what) }

// pull runs one product pull over every e-Boekhouden product. Details are read only for
// products that are new, whose list fields differ from the last-synced record, or on a full
// run (see fullRun). Progress is stored as it goes (syncrun.Process), so a redelivered command
// resumes.
func (p *puller) pull(ctx context.Context, tenant *mappingv1.Tenant, cmd *eventsv1.SyncCommand, run *syncrun.Run) error {
	books, crm, err := p.connect(ctx, tenant)
	if err != nil {
		return err
	}
	entries, err := books.ListProducts(ctx)
	if err != nil {
		return fmt.Errorf("list e-Boekhouden products: %w", err)
	}
	lk, err := crm.Lookups(ctx)
	if err != nil {
		return err
	}
	started := p.clock()
	full := p.fullRun(ctx, tenant.GetId(), cmd, started)
	id, links := tenant.GetId(), tenant.GetSettings().GetLinks()
	var mu sync.Mutex
	linked := map[string]*mappingv1.Link{}
	prepare := func(ctx context.Context, from, to int) error {
		ids := make([]string, 0, to-from)
		for _, e := range entries[from:to] {
			ids = append(ids, e.ID)
		}
		res, err := p.mapping.BatchGetLinks(ctx, &mappingv1.BatchGetLinksRequest{TenantId: id, Kind: kindProduct, EboekhoudenIds: ids, WithRecords: true})
		if err != nil {
			return fmt.Errorf("get links: %w", err)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, l := range res.GetLinks() {
			linked[l.GetEboekhoudenId()] = l
		}
		return nil
	}
	concurrency := p.concurrency
	if concurrency <= 0 {
		concurrency = 4
	}
	err = run.Process(ctx, syncrun.Plan{Cursor: syncrun.CursorProductRun, Concurrency: concurrency, Prepare: prepare}, len(entries),
		func(ctx context.Context, i int) (syncrun.Result, error) {
			e := entries[i]
			mu.Lock()
			link := linked[e.ID]
			mu.Unlock()
			o, err := p.pullOne(ctx, id, books, crm, lk, links, full, e, link)
			return syncrun.Result{Outcome: o}, err
		})
	if err != nil {
		return err
	}
	if full {
		if _, err := p.mapping.SetCursor(ctx, &mappingv1.SetCursorRequest{TenantId: id, Name: syncrun.CursorProductFull, Value: started.UTC().Format(time.RFC3339)}); err != nil {
			return fmt.Errorf("save full pull time: %w", err)
		}
	}
	return nil
}

// fullRun reports whether this run reads every product's details: a run not fired by the
// schedule (manual, API) always does; a scheduled one when the last full run is fullEvery ago.
func (p *puller) fullRun(ctx context.Context, tenant string, cmd *eventsv1.SyncCommand, now time.Time) bool {
	if cmd.GetTrigger() != bus.TriggerSchedule {
		return true
	}
	every := p.fullEvery
	if every <= 0 {
		every = time.Hour
	}
	res, err := p.mapping.GetCursor(ctx, &mappingv1.GetCursorRequest{TenantId: tenant, Name: syncrun.CursorProductFull})
	if err != nil {
		return true
	}
	last, err := time.Parse(time.RFC3339, res.GetValue())
	return err != nil || now.Sub(last) >= every
}

func (p *puller) pullOne(ctx context.Context, tenant string, books Books, crm CRM, lk CRMLookups, links map[string]string, full bool, e BookEntry, link *mappingv1.Link) (syncrun.Outcome, error) {
	var base Product
	if link != nil {
		base = decodeProduct(link.GetRecord())
		if !full && base.listed(e) {
			return syncrun.Unchanged, nil
		}
	}
	rec, err := books.GetProduct(ctx, e.ID)
	if errors.Is(err, ErrNotFound) {
		// Deleted in e-Boekhouden meanwhile: deletes never propagate.
		return syncrun.Skipped, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read e-Boekhouden product %s: %w", e.ID, err)
	}
	if link != nil && base == rec {
		return syncrun.Unchanged, nil
	}
	out, err := resolve(lk, links, e.ID, rec)
	if err != nil {
		return 0, err
	}
	release, err := p.lease(ctx, tenant, "product/eboekhouden/"+e.ID)
	if err != nil {
		return 0, err
	}
	defer release()
	if link == nil {
		return p.create(ctx, tenant, crm, lk, e.ID, out)
	}
	if err := crm.UpdateProduct(ctx, link.GetTribeId(), out, e.ID); errors.Is(err, ErrNotFound) {
		// Deleted in Tribe: deletes never propagate, so it is not made again.
		return syncrun.Skipped, nil
	} else if err != nil {
		return 0, classify(err, e.ID, rec.Name)
	}
	_, err = p.mapping.SaveSyncedRecord(ctx, &mappingv1.SaveSyncedRecordRequest{TenantId: tenant, Kind: kindProduct,
		TribeId: link.GetTribeId(), Record: rec.Encode(), ExpectedVersion: link.GetVersion()})
	if status.Code(err) == codes.FailedPrecondition {
		return 0, bus.RetryAfter(fmt.Errorf("product %s changed while syncing: %w", e.ID, err), time.Second)
	}
	if err != nil {
		return 0, fmt.Errorf("save synced record: %w", err)
	}
	p.resolve(ctx, tenant, issueKey(e.ID, "rejected"))
	return syncrun.Updated, nil
}

// create makes the Tribe product of a new e-Boekhouden product, or adopts the one a crashed
// earlier attempt made, and links it.
func (p *puller) create(ctx context.Context, tenant string, crm CRM, lk CRMLookups, ebID string, out CRMProduct) (syncrun.Outcome, error) {
	res, err := p.mapping.BatchGetLinks(ctx, &mappingv1.BatchGetLinksRequest{TenantId: tenant, Kind: kindProduct, EboekhoudenIds: []string{ebID}})
	if err != nil {
		return 0, fmt.Errorf("get link: %w", err)
	}
	if len(res.GetLinks()) > 0 {
		// Linked meanwhile by another replica; the next run compares it.
		return syncrun.Unchanged, nil
	}
	id, err := crm.FindProduct(ctx, ebID)
	o := syncrun.Created
	switch {
	case errors.Is(err, ErrNotFound):
		if id, err = crm.CreateProduct(ctx, out, defaultGroup(lk), ebID); err != nil {
			return 0, classify(err, ebID, out.Name)
		}
	case err != nil:
		return 0, err
	default:
		if err := crm.UpdateProduct(ctx, id, out, ebID); err != nil {
			return 0, classify(err, ebID, out.Name)
		}
		o = syncrun.Updated
	}
	_, err = p.mapping.CreateLink(ctx, &mappingv1.CreateLinkRequest{TenantId: tenant, Kind: kindProduct, TribeId: id, EboekhoudenId: ebID, Record: out.Encode()})
	if err != nil {
		return 0, fmt.Errorf("create link: %w", err)
	}
	p.resolve(ctx, tenant, issueKey(ebID, "unit"), issueKey(ebID, "vat"), issueKey(ebID, "rejected"))
	return o, nil
}

func classify(err error, ebID, name string) error {
	if errors.Is(err, ErrRejected) {
		return bus.Permanent(err, &mappingv1.Issue{Key: issueKey(ebID, "rejected"), Code: "product_rejected", Kind: kindProduct, EntityId: ebID,
			Message: fmt.Sprintf("Tribe refused product %s: %v", name, err),
			Action:  "Correct the product in e-Boekhouden; the next product pull tries again."})
	}
	return err
}

// resolve finds the Tribe unit and VAT group of rec. A unit or VAT code without a match is a
// permanent failure with an issue on the tenant.
func resolve(lk CRMLookups, links map[string]string, ebID string, rec Product) (CRMProduct, error) {
	out := CRMProduct{Product: rec}
	if rec.UnitID != "" {
		out.UnitID = matchUnit(lk.Units, rec.Unit)
		if out.UnitID == "" {
			return out, bus.Permanent(fmt.Errorf("no Tribe unit for %q", rec.Unit), &mappingv1.Issue{
				Key: issueKey(ebID, "unit"), Code: "unknown_unit", Kind: kindProduct, EntityId: ebID,
				Message: fmt.Sprintf("Product %s %s has the unit %q, which Tribe does not have, so it was not synced.", rec.Code, rec.Name, rec.Unit),
				Action:  fmt.Sprintf("Add a unit named %q in Tribe, or give the product another unit in e-Boekhouden.", rec.Unit)})
		}
	}
	group, candidates := matchVAT(lk.VATGroups, links, rec.VATCode, rec.VAT)
	switch {
	case group != "":
		out.VATGroupID = group
	case len(candidates) > 1:
		return out, bus.Permanent(fmt.Errorf("VAT code %s: several Tribe VAT groups", rec.VATCode), &mappingv1.Issue{
			Key: issueKey(ebID, "vat"), Code: "ambiguous_vat", Kind: kindProduct, EntityId: ebID,
			Message: fmt.Sprintf("Product %s %s has the VAT code %s, which no Tribe VAT group is linked to, and several have its percentage (%s), so it was not synced rather than given the wrong one.",
				rec.Code, rec.Name, rec.VATCode, strings.Join(candidates, ", ")),
			Action: fmt.Sprintf("Link the Tribe VAT group that means %s to it (koppelctl tenants links -vat GROUP=%s).", rec.VATCode, rec.VATCode)})
	default:
		return out, bus.Permanent(fmt.Errorf("no Tribe VAT group for %s", rec.VATCode), &mappingv1.Issue{
			Key: issueKey(ebID, "vat"), Code: "unknown_vat", Kind: kindProduct, EntityId: ebID,
			Message: fmt.Sprintf("Product %s %s has the VAT code %s, which no Tribe VAT group is linked to, and no free VAT group has its percentage, so it was not synced.", rec.Code, rec.Name, rec.VATCode),
			Action:  fmt.Sprintf("Link a Tribe VAT group to %s (koppelctl tenants links; add the group in Tribe first if there is none), or give the product another VAT code in e-Boekhouden.", rec.VATCode)})
	}
	return out, nil
}

// unitSynonyms are the usual English codes of e-Boekhouden's Dutch unit names.
var unitSynonyms = map[string][]string{
	"stuk": {"pcs", "piece", "stuks"}, "uur": {"hour", "hr", "uren"}, "dag": {"day", "dagen"},
	"maand": {"month", "maanden"}, "km": {"kilometer"}, "kg": {"kilogram"},
}

// matchUnit finds the Tribe unit whose code or name is e-Boekhouden's unit name (or a usual
// synonym), ignoring case.
func matchUnit(units []Lookup, name string) string {
	want := append([]string{strings.ToLower(strings.TrimSpace(name))}, unitSynonyms[strings.ToLower(strings.TrimSpace(name))]...)
	for _, w := range want {
		for _, u := range units {
			if strings.EqualFold(u.Code, w) || strings.EqualFold(u.Name, w) {
				return u.ID
			}
		}
	}
	return ""
}

// matchVAT finds the Tribe VAT group of an e-Boekhouden VAT code through the tenant's links
// (vat_code:<group> = code, stored at activation), so codes of one percentage (reverse charge,
// export, exempt, no VAT: all 0%) keep their meaning. Several groups linked to the code book
// alike; the first by code is taken. With none linked, the percentage decides among the groups
// not linked to another code, when exactly one has it; otherwise it returns no group and the
// candidates (several: the percentage does not decide).
func matchVAT(groups []Lookup, links map[string]string, code, pct string) (string, []string) {
	sorted := append([]Lookup(nil), groups...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Code < sorted[j].Code })
	for _, g := range sorted {
		if code != "" && strings.EqualFold(links[tenantsettings.VATCodePrefix+g.ID], code) {
			return g.ID, nil
		}
	}
	want, err := decimal.NewFromString(pct)
	if err != nil {
		return "", nil
	}
	var match []Lookup
	for _, g := range sorted {
		if g.Percentage != nil && g.Percentage.Equal(want) && links[tenantsettings.VATCodePrefix+g.ID] == "" {
			match = append(match, g)
		}
	}
	if len(match) == 1 {
		return match[0].ID, nil
	}
	names := make([]string, len(match))
	for i, g := range match {
		names[i] = g.Code
	}
	return "", names
}

// defaultGroup is the product group new products get (Tribe's UI requires one): a group with
// code or name "e-Boekhouden" when the tenant made one, else the first by code.
func defaultGroup(lk CRMLookups) string {
	if len(lk.ProductGroups) == 0 {
		return ""
	}
	groups := append([]Lookup(nil), lk.ProductGroups...)
	sort.Slice(groups, func(i, j int) bool { return groups[i].Code < groups[j].Code })
	for _, g := range groups {
		if strings.EqualFold(g.Code, "e-Boekhouden") || strings.EqualFold(g.Name, "e-Boekhouden") {
			return g.ID
		}
	}
	return groups[0].ID
}
