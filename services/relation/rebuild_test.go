package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/koppel/koppel/pkg/adminapi"
	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/eboekhouden"
	"github.com/koppel/koppel/pkg/flow"
	"github.com/koppel/koppel/pkg/invoicelink"
	"github.com/koppel/koppel/pkg/syncrun"
	"github.com/koppel/koppel/pkg/tenantclients"
	"github.com/koppel/koppel/pkg/tribe"
	eventsv1 "github.com/koppel/koppel/proto/koppel/events/v1"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/koppel/koppel/services/relation/record"
	"github.com/koppel/koppel/services/sandbox/ebsim"
	"github.com/koppel/koppel/services/sandbox/tribesim"
	"google.golang.org/protobuf/proto"
)

// link is a link as the test compares them.
type link struct{ kind, tribeID, ebID string }

// rebuildWorld is both systems seeded as after an import and some invoicing: what koppel linked
// (want), and the records the report must name.
type rebuildWorld struct {
	want []link
	// Records of interest.
	onlyInEB, duplicateCode, onlyInTribe, supplier string
	partlyPaid, paid                               string // Tribe invoice IDs
	ebIDs                                          map[string]string
}

// seedRebuild fills both simulators and links what an import, the product pull and the invoice
// flow would have linked.
func seedRebuild(t *testing.T, w0 *world) *rebuildWorld {
	t.Helper()
	if err := w0.eb.Seed(w0.ebAdm.ID, 7, 0, 4); err != nil {
		t.Fatal(err)
	}
	if err := w0.tr.Generate(w0.env.ID, tribesim.GenerateSpec{Organizations: 3, Products: 2, Invoices: 12, Seed: 5}); err != nil {
		t.Fatal(err)
	}
	eb, tr := w0.clients(t)
	w := &rebuildWorld{ebIDs: map[string]string{}}

	newRelation := func(typ eboekhouden.RelationType, code string) string {
		t.Helper()
		r, err := eb.CreateRelation(ctx, eboekhouden.Relation{Type: typ, Code: code, Name: "Relatie " + code})
		if err != nil {
			t.Fatal(err)
		}
		id := strconv.FormatInt(r.ID, 10)
		w.ebIDs[code] = id
		return id
	}
	orgs, err := tribe.Collect(tr.Organizations(ctx, tribe.Q().Filter(tribe.Ne("DebtorNumber", nil)).OrderBy("DebtorNumber")))
	if err != nil || len(orgs) != 3 {
		t.Fatalf("generated organisations: %d, %v", len(orgs), err)
	}
	// The first is found by its debtor number (as the import matches an existing relation), the
	// second carries the e-Boekhouden ID koppel wrote, the third was never in e-Boekhouden.
	e1 := newRelation(eboekhouden.RelationBusiness, orgs[0].DebtorNumber)
	e2 := newRelation(eboekhouden.RelationBusiness, orgs[1].DebtorNumber)
	if err := tr.UpdateOrganization(ctx, orgs[1].ID, tribe.OrganizationInput{ExternalID: tribe.Ptr(e2)}); err != nil {
		t.Fatal(err)
	}
	w.onlyInTribe = orgs[2].ID
	w.want = append(w.want, link{"organization", orgs[0].ID, e1}, link{"organization", orgs[1].ID, e2})
	// A relation only in e-Boekhouden, and a debtor number two Tribe organisations share.
	w.onlyInEB = newRelation(eboekhouden.RelationBusiness, "20000")
	w.duplicateCode = newRelation(eboekhouden.RelationBusiness, "30000")
	for _, name := range []string{"Dubbel A", "Dubbel B"} {
		if _, err := tr.CreateOrganization(ctx, tribe.OrganizationInput{Name: tribe.Ptr(name), DebtorNumber: tribe.Ptr("30000")}); err != nil {
			t.Fatal(err)
		}
	}
	// A supplier, kept in Tribe with the relation code as its creditor number.
	s1 := newRelation(eboekhouden.RelationBusiness, "50000")
	supplier, err := tr.CreateOrganization(ctx, tribe.OrganizationInput{Name: tribe.Ptr("Leverancier"), CreditorNumber: tribe.Ptr("50000")})
	if err != nil {
		t.Fatal(err)
	}
	w.supplier = supplier
	w.want = append(w.want, link{"organization", supplier, s1})
	// A person, created in Tribe by the import with the e-Boekhouden ID on it.
	p1 := newRelation(eboekhouden.RelationPrivate, "40000")
	pid, err := tr.CreatePerson(ctx, tribe.PersonInput{FirstName: tribe.Ptr("Sanne"), LastName: tribe.Ptr("Visser"), DebtorNumber: tribe.Ptr("40000"), ExternalID: tribe.Ptr(p1)})
	if err != nil {
		t.Fatal(err)
	}
	w.want = append(w.want, link{"person", pid, p1})

	// Products: one carries its e-Boekhouden ID, one has the same code, two are new.
	ebProducts, err := eboekhouden.Collect(eb.Products(ctx))
	if err != nil || len(ebProducts) != 4 {
		t.Fatalf("e-Boekhouden products: %d, %v", len(ebProducts), err)
	}
	trProducts, err := tribe.Collect(tr.Products(ctx, tribe.Q().OrderBy("Code")))
	if err != nil || len(trProducts) != 2 {
		t.Fatalf("Tribe products: %d, %v", len(trProducts), err)
	}
	pr0 := strconv.FormatInt(ebProducts[0].ID, 10)
	if err := tr.UpdateProduct(ctx, trProducts[0].ID, tribe.ProductInput{ExternalID: tribe.Ptr(pr0)}); err != nil {
		t.Fatal(err)
	}
	byCode, err := tr.CreateProduct(ctx, tribe.ProductInput{Name: tribe.Ptr(ebProducts[1].Description), Code: tribe.Ptr(ebProducts[1].Code)})
	if err != nil {
		t.Fatal(err)
	}
	w.want = append(w.want, link{"product", trProducts[0].ID, pr0}, link{"product", byCode, strconv.FormatInt(ebProducts[1].ID, 10)})

	// Invoices: two sent ones and a paid one were booked; one of the sent is partly paid.
	invoices, err := tribe.Collect(tr.Invoices(ctx, tribe.Q().Expand("Phase").OrderBy("Number")))
	if err != nil {
		t.Fatal(err)
	}
	var sent, paid []tribe.Invoice
	for _, inv := range invoices {
		switch inv.Phase.Code {
		case "Sent":
			sent = append(sent, inv)
		case "Paid":
			paid = append(paid, inv)
		}
	}
	if len(sent) < 3 || len(paid) < 1 {
		t.Fatalf("generated %d sent and %d paid invoices", len(sent), len(paid))
	}
	book := func(inv tribe.Invoice) string {
		t.Helper()
		id := bookInvoice(t, eb, e1, inv.Number)
		w.want = append(w.want, link{"invoice", inv.ID, id})
		return id
	}
	book(sent[0])
	book(sent[1])
	book(paid[0])
	if _, err := w0.eb.BookPayment(w0.ebAdm.ID, ebsim.Payment{InvoiceNumber: sent[1].Number, Amount: "21.00"}); err != nil {
		t.Fatal(err)
	}
	w.partlyPaid, w.paid = sent[1].ID, paid[0].ID

	// The links as the flows made them.
	for _, l := range w.want {
		rec := []byte(`{}`)
		if l.kind == "invoice" {
			rec = []byte(`{"number":"x"}`)
		}
		if _, err := w0.m.Client.CreateLink(ctx, &mappingv1.CreateLinkRequest{TenantId: w0.tenant, Kind: l.kind, TribeId: l.tribeID, EboekhoudenId: l.ebID, Record: rec}); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// bookInvoice books an invoice with number in e-Boekhouden as an open item of 121.00 of the
// relation, as the invoice flow does, and returns its ID.
func bookInvoice(t *testing.T, eb *eboekhouden.Client, relation, number string) string {
	t.Helper()
	ledgers, _ := eboekhouden.Collect(eb.Ledgers(ctx))
	var debtors, revenue int64
	for _, l := range ledgers {
		switch {
		case l.Category == eboekhouden.CategoryDebtors && debtors == 0:
			debtors = l.ID
		case l.Category == eboekhouden.CategoryPL && revenue == 0:
			revenue = l.ID
		}
	}
	templates, _ := eboekhouden.Collect(eb.InvoiceTemplates(ctx))
	rel, _ := strconv.ParseInt(relation, 10, 64)
	qty, _ := eboekhouden.NewQuantity("1")
	price, _ := eboekhouden.NewAmount("100.00")
	created, err := eb.CreateInvoice(ctx, eboekhouden.NewInvoice{RelationID: rel, InvoiceNumber: number, TermOfPayment: 30, TemplateID: templates[0].ID,
		Items:    []eboekhouden.InvoiceItem{{Quantity: qty, Description: "Werkzaamheden", PricePerUnit: price, VATCode: eboekhouden.VATHighSale21, LedgerID: revenue}},
		Mutation: &eboekhouden.InvoiceMutation{LedgerID: debtors}})
	if err != nil {
		t.Fatal(err)
	}
	return strconv.FormatInt(created.ID, 10)
}

// links reads every link of the records the test knows, by Tribe ID.
func (e *world) links(t *testing.T, kinds []string, tribeIDs []string) []link {
	t.Helper()
	var out []link
	for _, kind := range kinds {
		res, err := e.m.Client.BatchGetLinks(ctx, &mappingv1.BatchGetLinksRequest{TenantId: e.tenant, Kind: kind, TribeIds: tribeIDs})
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range res.GetLinks() {
			out = append(out, link{kind, l.GetTribeId(), l.GetEboekhoudenId()})
		}
	}
	sortLinks(out)
	return out
}

func sortLinks(ls []link) {
	slices.SortFunc(ls, func(a, b link) int {
		if a.kind != b.kind {
			return compare(a.kind, b.kind)
		}
		return compare(a.tribeID, b.tribeID)
	})
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func reportKind(t *testing.T, r *adminapi.RebuildReport, kind string) *adminapi.KindReport {
	t.Helper()
	for _, k := range r.Kinds {
		if k.Kind == kind {
			return k
		}
	}
	t.Fatalf("report has no kind %s: %+v", kind, r)
	return nil
}

func hasExample(k *adminapi.KindReport, outcome, tribeID, ebID string) bool {
	for _, x := range k.Examples {
		if x.Outcome == outcome && (tribeID == "" || x.TribeID == tribeID) && (ebID == "" || x.EBoekhoudenID == ebID) {
			return true
		}
	}
	return false
}

func (e *world) sequence(t *testing.T) int64 {
	t.Helper()
	// Raising to 0 never lowers: it reads the sequence.
	res, err := e.m.Client.RaiseNumber(ctx, &mappingv1.RaiseNumberRequest{TenantId: e.tenant, Sequence: "debtor"})
	if err != nil {
		t.Fatal(err)
	}
	return res.GetCurrent()
}

func (e *world) cursor(t *testing.T, name string) string {
	t.Helper()
	res, err := e.m.Client.GetCursor(ctx, &mappingv1.GetCursorRequest{TenantId: e.tenant, Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return res.GetValue()
}

// clients are e-Boekhouden and Tribe clients of the world's tenant, for seeding.
func (w *world) clients(t *testing.T) (*eboekhouden.Client, *tribe.Client) {
	t.Helper()
	cache, err := tenantclients.New(w.m.Client, tenantclients.Options{EBoekhoudenRate: 1000, TribeRate: 1000})
	if err != nil {
		t.Fatal(err)
	}
	eb, tr, err := cache.Both(ctx, w.tenantRecord())
	if err != nil {
		t.Fatal(err)
	}
	return eb, tr
}

// rebuilds runs rebuild commands through the relation service's command handler, as the bus
// delivers them.
type rebuilds struct {
	w       *world
	handler bus.Handler
	n       int
}

func newRebuilds(w *world) *rebuilds {
	clients, err := tenantclients.New(w.m.Client, tenantclients.Options{EBoekhoudenRate: 1000, TribeRate: 1000})
	if err != nil {
		w.t.Fatal(err)
	}
	job := &rebuildJob{mapping: w.m.Client, clients: clients.Both, log: w.s.log}
	return &rebuilds{w: w, handler: flow.CommandHandler(w.m.Client, commands(w.s, nil, job))}
}

// run runs a rebuild and returns its finished run's report; nil when it was not started.
func (r *rebuilds) run(dry bool) *adminapi.RebuildReport {
	r.w.t.Helper()
	r.n++
	id := fmt.Sprintf("rebuild-%d", r.n)
	data, err := proto.Marshal(&eventsv1.SyncCommand{TenantId: r.w.tenant, Kind: bus.KindRebuild, RunId: id, Trigger: bus.TriggerManual, DryRun: dry})
	if err != nil {
		r.w.t.Fatal(err)
	}
	if err := r.handler(ctx, &bus.Msg{Subject: "sync.cmd." + r.w.tenant + "." + bus.KindRebuild, Data: data, Tenant: r.w.tenant}); err != nil {
		r.w.t.Fatalf("rebuild: %v", err)
	}
	res, err := r.w.m.Client.ListRuns(ctx, &mappingv1.ListRunsRequest{TenantId: r.w.tenant, Kind: bus.KindRebuild, Limit: 1})
	if err != nil {
		r.w.t.Fatal(err)
	}
	if len(res.GetFinished()) == 0 || res.GetFinished()[0].GetId() != id {
		return nil
	}
	run := res.GetFinished()[0]
	if run.GetDone() != run.GetTotal() || run.GetTotal() == 0 {
		r.w.t.Errorf("rebuild progress %d/%d", run.GetDone(), run.GetTotal())
	}
	var rep adminapi.RebuildReport
	if err := json.Unmarshal([]byte(run.GetReport()), &rep); err != nil {
		r.w.t.Fatalf("rebuild report %q: %v", run.GetReport(), err)
	}
	return &rep
}

// recreate makes the tenant again with its settings and secrets, as an operator does after the
// loss of Redis.
func (w *world) recreate(t *testing.T, tenant *mappingv1.Tenant, secrets map[string]string) {
	t.Helper()
	// As the operator does: the tenant is created again (not active yet), and rebuilt before
	// it is activated.
	if _, err := w.m.Client.CreateTenant(ctx, &mappingv1.CreateTenantRequest{Tenant: &mappingv1.Tenant{Id: w.tenant,
		State: mappingv1.TenantState_TENANT_STATE_SETUP, Settings: tenant.GetSettings()}}); err != nil {
		t.Fatal(err)
	}
	for name, v := range secrets {
		if _, err := w.m.Client.PutSecret(ctx, &mappingv1.PutSecretRequest{TenantId: w.tenant, Name: name, Value: []byte(v)}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRebuildAfterRedisLoss seeds both systems as koppel leaves them, loses Redis, and rebuilds:
// a dry run changes nothing, the rebuild finds every link again (a supplier by its creditor
// number) with the records the flows expect, a second rebuild links nothing new, a link that
// disagrees is reported, not overwritten, and a rebuild never runs beside the import.
func TestRebuildAfterRedisLoss(t *testing.T) {
	e := newWorld(t, 0, false)
	w := seedRebuild(t, e)
	kinds := []string{"organization", "person", "product", "invoice"}
	var tribeIDs []string
	for _, l := range w.want {
		tribeIDs = append(tribeIDs, l.tribeID)
	}
	sortLinks(w.want)
	if got := e.links(t, kinds, tribeIDs); !slices.Equal(got, w.want) {
		t.Fatalf("seeded links %v, want %v", got, w.want)
	}
	tenant := e.tenantRecord()
	secrets := map[string]string{tenantclients.SecretEBoekhoudenToken: e.ebAdm.AccessToken, tenantclients.SecretTribeClientSecret: e.env.ClientSecret}

	// Redis is lost; the operator creates the tenant again and stores its credentials.
	if err := e.m.Redis.FlushAll(); err != nil {
		t.Fatal(err)
	}
	e.recreate(t, tenant, secrets)
	// A cursor written after the loss, by a product pull that already ran.
	if _, err := e.m.Client.SetCursor(ctx, &mappingv1.SetCursorRequest{TenantId: e.tenant, Name: syncrun.CursorProductFull, Value: time.Now().UTC().Format(time.RFC3339)}); err != nil {
		t.Fatal(err)
	}
	rb := newRebuilds(e)

	dry := rb.run(true)
	if got := e.links(t, kinds, tribeIDs); len(got) != 0 {
		t.Fatalf("the dry run linked %v", got)
	}
	if e.sequence(t) != 0 || e.cursor(t, syncrun.CursorProductFull) == "" {
		t.Fatalf("the dry run changed the sequence (%d) or the cursor", e.sequence(t))
	}
	if !dry.DryRun || reportKind(t, dry, "organization").Linked != 3 || !slices.Equal(dry.CursorsReset, []string{syncrun.CursorProductFull}) {
		t.Fatalf("dry run report: %+v", dry)
	}

	rep := rb.run(false)
	if got := e.links(t, kinds, tribeIDs); !slices.Equal(got, w.want) {
		t.Fatalf("rebuilt links %v, want the originals %v", got, w.want)
	}
	counts := map[string]int{}
	for _, k := range rep.Kinds {
		counts[k.Kind] = k.Linked
		if k.AlreadyLinked != 0 {
			t.Errorf("%s: %d already linked after the loss", k.Kind, k.AlreadyLinked)
		}
	}
	if want := map[string]int{"organization": 3, "person": 1, "product": 2, "invoice": 3}; !maps.Equal(counts, want) {
		t.Fatalf("linked %v, want %v", counts, want)
	}
	for _, k := range dry.Kinds {
		if rk := reportKind(t, rep, k.Kind); rk.Linked != k.Linked || rk.Conflicting != k.Conflicting || rk.UnmatchedTribe != k.UnmatchedTribe {
			t.Errorf("%s: the dry run said %+v, the rebuild did %+v", k.Kind, k, rk)
		}
	}
	org := reportKind(t, rep, "organization")
	if org.Conflicting != 1 || !hasExample(org, adminapi.OutcomeConflicting, "", w.duplicateCode) || !hasExample(org, adminapi.OutcomeUnmatchedEBoekhouden, "", w.onlyInEB) ||
		!hasExample(org, adminapi.OutcomeUnmatchedTribe, w.onlyInTribe, "") {
		t.Fatalf("organisations: %+v", org)
	}
	if p := reportKind(t, rep, "product"); p.UnmatchedEBoekhouden != 2 || p.UnmatchedTribe != 1 {
		t.Fatalf("products: %+v", p)
	}
	// The records the flows expect: none for relations (a first contact; a supplier's says where
	// Tribe keeps its code) and products, the payment state for invoices.
	for _, l := range w.want {
		res, err := e.m.Client.GetLink(ctx, &mappingv1.GetLinkRequest{TenantId: e.tenant, Kind: l.kind, TribeId: l.tribeID})
		if err != nil {
			t.Fatal(err)
		}
		raw := res.GetLink().GetRecord()
		rec, _ := invoicelink.Decode(raw)
		state, _ := record.DecodeSynced(raw)
		switch {
		case l.tribeID == w.supplier && (state.CodeField != record.CreditorNumber || !state.Unmet()):
			t.Errorf("supplier: record %s, want a first contact with the code in the creditor number", raw)
		case l.tribeID != w.supplier && l.kind != "invoice" && len(raw) != 0:
			t.Errorf("%s %s: record %s, want none (first contact)", l.kind, l.tribeID, raw)
		case l.tribeID == w.partlyPaid && rec.Paid != "21.00":
			t.Errorf("partly paid invoice: record %+v", rec)
		case l.tribeID == w.paid && rec.Paid != invoicelink.PaidInFull:
			t.Errorf("paid invoice: record %+v", rec)
		case l.kind == "invoice" && rec.Number == "":
			t.Errorf("invoice %s: record without number", l.tribeID)
		}
	}
	if seq := e.sequence(t); seq < 50000 || rep.DebtorNumbers.HighestUsed != 50000 {
		t.Fatalf("debtor numbers: sequence %d, report %+v", seq, rep.DebtorNumbers)
	}
	if e.cursor(t, syncrun.CursorProductFull) != "" {
		t.Fatal("the full-pull cursor was not cleared")
	}

	// Again, on the tenant paused (as after Redis came back from an older copy): nothing new.
	if _, err := e.m.Client.SetTenantState(ctx, &mappingv1.SetTenantStateRequest{TenantId: e.tenant, State: mappingv1.TenantState_TENANT_STATE_PAUSED}); err != nil {
		t.Fatal(err)
	}
	again := rb.run(false)
	if again == nil {
		t.Fatal("a rebuild of the paused tenant did not run")
	}
	for _, k := range again.Kinds {
		if k.Linked != 0 || k.AlreadyLinked != counts[k.Kind] {
			t.Errorf("%s again: %+v", k.Kind, k)
		}
	}
	if got := e.links(t, kinds, tribeIDs); !slices.Equal(got, w.want) {
		t.Fatalf("links after a second rebuild %v", got)
	}

	// A link that disagrees with both systems is reported and kept.
	first := w.want[slices.IndexFunc(w.want, func(l link) bool { return l.kind == "organization" && l.tribeID != w.supplier })]
	if _, err := e.m.Client.DeleteLink(ctx, &mappingv1.DeleteLinkRequest{TenantId: e.tenant, Kind: "organization", TribeId: first.tribeID}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Client.CreateLink(ctx, &mappingv1.CreateLinkRequest{TenantId: e.tenant, Kind: "organization", TribeId: first.tribeID, EboekhoudenId: w.onlyInEB}); err != nil {
		t.Fatal(err)
	}
	third := rb.run(false)
	if o := reportKind(t, third, "organization"); o.Conflicting != 2 || o.Linked != 0 || !hasExample(o, adminapi.OutcomeConflicting, first.tribeID, first.ebID) {
		t.Fatalf("disagreeing link: %+v", o)
	}
	res, err := e.m.Client.GetLink(ctx, &mappingv1.GetLinkRequest{TenantId: e.tenant, Kind: "organization", TribeId: first.tribeID})
	if err != nil || res.GetLink().GetEboekhoudenId() != w.onlyInEB {
		t.Fatalf("the disagreeing link was overwritten: %v %v", res.GetLink(), err)
	}

	// While the import runs, a rebuild is not started: it would link beside it.
	imp := e.startRun(bus.KindImport, "import-during-rebuild")
	if rep := rb.run(true); rep != nil {
		t.Fatal("a rebuild ran beside the import")
	}
	if err := imp.Finish(ctx, nil); err != nil {
		t.Fatal(err)
	}
}
