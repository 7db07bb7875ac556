package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/koppel/koppel/pkg/eboekhouden"
	"github.com/koppel/koppel/pkg/tenantclients"
	"github.com/koppel/koppel/pkg/tribe"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/koppel/koppel/services/sandbox/ebsim"
	"github.com/koppel/koppel/services/sandbox/tribesim"
)

// link is a link as the test compares them.
type link struct{ kind, tribeID, ebID string }

// rebuildWorld is both systems seeded as after an import and some invoicing: what koppel linked
// (want), and the records the report must name.
type rebuildWorld struct {
	want []link
	// Records of interest.
	onlyInEB, duplicateCode, onlyInTribe string
	partlyPaid, paid                     string // Tribe invoice IDs
	ebIDs                                map[string]string
}

// seedRebuild fills both simulators and links what an import, the product pull and the invoice
// flow would have linked.
func seedRebuild(t *testing.T, e *activationEnv) *rebuildWorld {
	t.Helper()
	adm := e.eb.Administrations()[0]
	if err := e.eb.Seed(adm.ID, 7, 0, 4); err != nil {
		t.Fatal(err)
	}
	if err := e.tr.Generate(e.trEnv.ID, tribesim.GenerateSpec{Organizations: 3, Products: 2, Invoices: 12, Seed: 5}); err != nil {
		t.Fatal(err)
	}
	cache, _ := tenantclients.New(e.m.Client, tenantclients.Options{EBoekhoudenRate: 1000, TribeRate: 1000})
	ebCall, trCall := cache.Callers()
	eb, _ := tenantclients.NewEBoekhouden(ebCall, e.tenantID, e.ebURL, e.ebToken)
	tr, _ := tenantclients.NewTribe(trCall, e.tenantID, e.trURL, e.trURL, e.trEnv.ClientID, e.trEnv.ClientSecret)
	w := &rebuildWorld{ebIDs: map[string]string{}}

	newRelation := func(typ eboekhouden.RelationType, code string) string {
		t.Helper()
		r, err := eb.CreateRelation(ctx(), eboekhouden.Relation{Type: typ, Code: code, Name: "Relatie " + code})
		if err != nil {
			t.Fatal(err)
		}
		id := strconv.FormatInt(r.ID, 10)
		w.ebIDs[code] = id
		return id
	}
	orgs, err := tribe.Collect(tr.Organizations(ctx(), tribe.Q().Filter(tribe.Ne("DebtorNumber", nil)).OrderBy("DebtorNumber")))
	if err != nil || len(orgs) != 3 {
		t.Fatalf("generated organisations: %d, %v", len(orgs), err)
	}
	// The first is found by its debtor number (as the import matches an existing relation), the
	// second carries the e-Boekhouden ID koppel wrote, the third was never in e-Boekhouden.
	e1 := newRelation(eboekhouden.RelationBusiness, orgs[0].DebtorNumber)
	e2 := newRelation(eboekhouden.RelationBusiness, orgs[1].DebtorNumber)
	if err := tr.UpdateOrganization(ctx(), orgs[1].ID, tribe.OrganizationInput{ExternalID: tribe.Ptr(e2)}); err != nil {
		t.Fatal(err)
	}
	w.onlyInTribe = orgs[2].ID
	w.want = append(w.want, link{"organization", orgs[0].ID, e1}, link{"organization", orgs[1].ID, e2})
	// A relation only in e-Boekhouden, and a debtor number two Tribe organisations share.
	w.onlyInEB = newRelation(eboekhouden.RelationBusiness, "20000")
	w.duplicateCode = newRelation(eboekhouden.RelationBusiness, "30000")
	for _, name := range []string{"Dubbel A", "Dubbel B"} {
		if _, err := tr.CreateOrganization(ctx(), tribe.OrganizationInput{Name: tribe.Ptr(name), DebtorNumber: tribe.Ptr("30000")}); err != nil {
			t.Fatal(err)
		}
	}
	// A person, created in Tribe by the import with the e-Boekhouden ID on it.
	p1 := newRelation(eboekhouden.RelationPrivate, "40000")
	pid, err := tr.CreatePerson(ctx(), tribe.PersonInput{FirstName: tribe.Ptr("Sanne"), LastName: tribe.Ptr("Visser"), DebtorNumber: tribe.Ptr("40000"), ExternalID: tribe.Ptr(p1)})
	if err != nil {
		t.Fatal(err)
	}
	w.want = append(w.want, link{"person", pid, p1})

	// Products: one carries its e-Boekhouden ID, one has the same code, two are new.
	ebProducts, err := eboekhouden.Collect(eb.Products(ctx()))
	if err != nil || len(ebProducts) != 4 {
		t.Fatalf("e-Boekhouden products: %d, %v", len(ebProducts), err)
	}
	trProducts, err := tribe.Collect(tr.Products(ctx(), tribe.Q().OrderBy("Code")))
	if err != nil || len(trProducts) != 2 {
		t.Fatalf("Tribe products: %d, %v", len(trProducts), err)
	}
	pr0 := strconv.FormatInt(ebProducts[0].ID, 10)
	if err := tr.UpdateProduct(ctx(), trProducts[0].ID, tribe.ProductInput{ExternalID: tribe.Ptr(pr0)}); err != nil {
		t.Fatal(err)
	}
	byCode, err := tr.CreateProduct(ctx(), tribe.ProductInput{Name: tribe.Ptr(ebProducts[1].Description), Code: tribe.Ptr(ebProducts[1].Code)})
	if err != nil {
		t.Fatal(err)
	}
	w.want = append(w.want, link{"product", trProducts[0].ID, pr0}, link{"product", byCode, strconv.FormatInt(ebProducts[1].ID, 10)})

	// Invoices: two sent ones and a paid one were booked; one of the sent is partly paid.
	invoices, err := tribe.Collect(tr.Invoices(ctx(), tribe.Q().Expand("Phase").OrderBy("Number")))
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
	if _, err := e.eb.BookPayment(adm.ID, ebsim.Payment{InvoiceNumber: sent[1].Number, Amount: "21.00"}); err != nil {
		t.Fatal(err)
	}
	w.partlyPaid, w.paid = sent[1].ID, paid[0].ID

	// The links as the flows made them.
	for _, l := range w.want {
		rec := []byte(`{}`)
		if l.kind == "invoice" {
			rec = []byte(`{"number":"x"}`)
		}
		if _, err := e.m.Client.CreateLink(ctx(), &mappingv1.CreateLinkRequest{TenantId: e.tenantID, Kind: l.kind, TribeId: l.tribeID, EboekhoudenId: l.ebID, Record: rec}); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func ctx() context.Context { return context.Background() }

// bookInvoice books an invoice with number in e-Boekhouden as an open item of 121.00 of the
// relation, as the invoice flow does, and returns its ID.
func bookInvoice(t *testing.T, eb *eboekhouden.Client, relation, number string) string {
	t.Helper()
	ledgers, _ := eboekhouden.Collect(eb.Ledgers(ctx()))
	var debtors, revenue int64
	for _, l := range ledgers {
		switch {
		case l.Category == eboekhouden.CategoryDebtors && debtors == 0:
			debtors = l.ID
		case l.Category == eboekhouden.CategoryPL && revenue == 0:
			revenue = l.ID
		}
	}
	templates, _ := eboekhouden.Collect(eb.InvoiceTemplates(ctx()))
	rel, _ := strconv.ParseInt(relation, 10, 64)
	qty, _ := eboekhouden.NewQuantity("1")
	price, _ := eboekhouden.NewAmount("100.00")
	created, err := eb.CreateInvoice(ctx(), eboekhouden.NewInvoice{RelationID: rel, InvoiceNumber: number, TermOfPayment: 30, TemplateID: templates[0].ID,
		Items:    []eboekhouden.InvoiceItem{{Quantity: qty, Description: "Werkzaamheden", PricePerUnit: price, VATCode: eboekhouden.VATHighSale21, LedgerID: revenue}},
		Mutation: &eboekhouden.InvoiceMutation{LedgerID: debtors}})
	if err != nil {
		t.Fatal(err)
	}
	return strconv.FormatInt(created.ID, 10)
}

// flushRedis empties the mapping service's Redis, as its loss would.
func flushRedis(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("*1\r\n$8\r\nFLUSHALL\r\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "+OK\r\n" {
		t.Fatalf("FLUSHALL: %q %v", line, err)
	}
}

// links reads every link of the records the test knows, by Tribe ID.
func (e *activationEnv) links(t *testing.T, kinds []string, tribeIDs []string) []link {
	t.Helper()
	var out []link
	for _, kind := range kinds {
		res, err := e.m.Client.BatchGetLinks(ctx(), &mappingv1.BatchGetLinksRequest{TenantId: e.tenantID, Kind: kind, TribeIds: tribeIDs})
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

func (r *rebuildReport) kind(t *testing.T, kind string) *kindReport {
	t.Helper()
	for _, k := range r.Kinds {
		if k.Kind == kind {
			return k
		}
	}
	t.Fatalf("report has no kind %s: %+v", kind, r)
	return nil
}

func (k *kindReport) has(outcome, tribeID, ebID string) bool {
	for _, x := range k.Examples {
		if x.Outcome == outcome && (tribeID == "" || x.TribeID == tribeID) && (ebID == "" || x.EBoekhoudenID == ebID) {
			return true
		}
	}
	return false
}

func (e *activationEnv) sequence(t *testing.T) int64 {
	t.Helper()
	// Raising to 0 never lowers: it reads the sequence.
	res, err := e.m.Client.RaiseNumber(ctx(), &mappingv1.RaiseNumberRequest{TenantId: e.tenantID, Sequence: "debtor"})
	if err != nil {
		t.Fatal(err)
	}
	return res.GetCurrent()
}

func (e *activationEnv) cursor(t *testing.T, name string) string {
	t.Helper()
	res, err := e.m.Client.GetCursor(ctx(), &mappingv1.GetCursorRequest{TenantId: e.tenantID, Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return res.GetValue()
}

// TestRebuildAfterRedisLoss seeds both systems as koppel leaves them, loses Redis, and rebuilds:
// a dry run changes nothing, the rebuild finds every link again with the records the flows
// expect, a second rebuild links nothing new, and a link that disagrees is reported, not
// overwritten.
func TestRebuildAfterRedisLoss(t *testing.T) {
	e := newActivationEnv(t)
	if status, ae := e.call("PUT", "/credentials", e.credentials(), nil); status != 200 {
		t.Fatalf("credentials: %d %+v", status, ae)
	}
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

	// Redis is lost; the operator creates the tenant again and stores its credentials.
	flushRedis(t, e.m.Redis.Addr)
	if _, err := e.m.Client.CreateTenant(ctx(), &mappingv1.CreateTenantRequest{Tenant: &mappingv1.Tenant{Id: e.tenantID}}); err != nil {
		t.Fatal(err)
	}
	if status, ae := e.call("PUT", "/credentials", e.credentials(), nil); status != 200 {
		t.Fatalf("credentials again: %d %+v", status, ae)
	}
	// A cursor written after the loss, by a product pull that already ran.
	if _, err := e.m.Client.SetCursor(ctx(), &mappingv1.SetCursorRequest{TenantId: e.tenantID, Name: "product-full", Value: time.Now().UTC().Format(time.RFC3339)}); err != nil {
		t.Fatal(err)
	}

	var dry rebuildReport
	if status, ae := e.call("POST", "/rebuild", map[string]bool{"dry_run": true}, &dry); status != 200 {
		t.Fatalf("dry run: %d %+v", status, ae)
	}
	if got := e.links(t, kinds, tribeIDs); len(got) != 0 {
		t.Fatalf("the dry run linked %v", got)
	}
	if e.sequence(t) != 0 || e.cursor(t, "product-full") == "" {
		t.Fatalf("the dry run changed the sequence (%d) or the cursor", e.sequence(t))
	}
	if !dry.DryRun || dry.kind(t, "organization").Linked != 2 || !slices.Equal(dry.CursorsReset, []string{"product-full"}) {
		t.Fatalf("dry run report: %+v", dry)
	}

	var rep rebuildReport
	if status, ae := e.call("POST", "/rebuild", map[string]bool{"dry_run": false}, &rep); status != 200 {
		t.Fatalf("rebuild: %d %+v", status, ae)
	}
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
	if want := map[string]int{"organization": 2, "person": 1, "product": 2, "invoice": 3}; !mapsEqual(counts, want) {
		t.Fatalf("linked %v, want %v", counts, want)
	}
	for _, k := range dry.Kinds {
		if rk := rep.kind(t, k.Kind); rk.Linked != k.Linked || rk.Conflicting != k.Conflicting || rk.UnmatchedTribe != k.UnmatchedTribe {
			t.Errorf("%s: the dry run said %+v, the rebuild did %+v", k.Kind, k, rk)
		}
	}
	org := rep.kind(t, "organization")
	if org.Conflicting != 1 || !org.has(outcomeConflicting, "", w.duplicateCode) || !org.has(outcomeUnmatchedEB, "", w.onlyInEB) ||
		!org.has(outcomeUnmatchedTr, w.onlyInTribe, "") {
		t.Fatalf("organisations: %+v", org)
	}
	if p := rep.kind(t, "product"); p.UnmatchedEBoekhouden != 2 || p.UnmatchedTribe != 1 {
		t.Fatalf("products: %+v", p)
	}
	// The records the flows expect: none for relations and products, the payment state for
	// invoices.
	for _, l := range w.want {
		res, err := e.m.Client.GetLink(ctx(), &mappingv1.GetLinkRequest{TenantId: e.tenantID, Kind: l.kind, TribeId: l.tribeID})
		if err != nil {
			t.Fatal(err)
		}
		var rec paymentRecord
		_ = json.Unmarshal(res.GetLink().GetRecord(), &rec)
		switch {
		case l.kind != "invoice" && len(res.GetLink().GetRecord()) != 0:
			t.Errorf("%s %s: record %s, want none (first contact)", l.kind, l.tribeID, res.GetLink().GetRecord())
		case l.tribeID == w.partlyPaid && rec.Paid != "21.00":
			t.Errorf("partly paid invoice: record %+v", rec)
		case l.tribeID == w.paid && rec.Paid != "full":
			t.Errorf("paid invoice: record %+v", rec)
		case l.kind == "invoice" && rec.Number == "":
			t.Errorf("invoice %s: record without number", l.tribeID)
		}
	}
	if seq := e.sequence(t); seq < 40000 || rep.DebtorNumbers.HighestUsed != 40000 {
		t.Fatalf("debtor numbers: sequence %d, report %+v", seq, rep.DebtorNumbers)
	}
	if e.cursor(t, "product-full") != "" {
		t.Fatal("the full-pull cursor was not cleared")
	}

	// Again: nothing new.
	if b, _ := json.MarshalIndent(rep, "", " "); testing.Verbose() {
		t.Logf("report: %s", b)
	}
	var again rebuildReport
	if status, ae := e.call("POST", "/rebuild", map[string]bool{"dry_run": false}, &again); status != 200 {
		t.Fatalf("rebuild again: %d %+v", status, ae)
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
	first := w.want[slices.IndexFunc(w.want, func(l link) bool { return l.kind == "organization" })]
	if _, err := e.m.Client.DeleteLink(ctx(), &mappingv1.DeleteLinkRequest{TenantId: e.tenantID, Kind: "organization", TribeId: first.tribeID}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Client.CreateLink(ctx(), &mappingv1.CreateLinkRequest{TenantId: e.tenantID, Kind: "organization", TribeId: first.tribeID, EboekhoudenId: w.onlyInEB}); err != nil {
		t.Fatal(err)
	}
	var third rebuildReport
	if status, ae := e.call("POST", "/rebuild", map[string]bool{}, &third); status != 200 {
		t.Fatalf("third rebuild: %d %+v", status, ae)
	}
	if o := third.kind(t, "organization"); o.Conflicting != 2 || o.Linked != 0 || !o.has(outcomeConflicting, first.tribeID, first.ebID) {
		t.Fatalf("disagreeing link: %+v", o)
	}
	res, err := e.m.Client.GetLink(ctx(), &mappingv1.GetLinkRequest{TenantId: e.tenantID, Kind: "organization", TribeId: first.tribeID})
	if err != nil || res.GetLink().GetEboekhoudenId() != w.onlyInEB {
		t.Fatalf("the disagreeing link was overwritten: %v %v", res.GetLink(), err)
	}

	// Another rebuild of the tenant holds its lease: this one is refused, not queued.
	if _, err := e.m.Client.AcquireLease(ctx(), &mappingv1.AcquireLeaseRequest{TenantId: e.tenantID, Name: "rebuild", Holder: "elsewhere", TtlMs: 60_000}); err != nil {
		t.Fatal(err)
	}
	if status, ae := e.call("POST", "/rebuild", map[string]bool{"dry_run": true}, nil); status != 409 || ae.Code != "rebuild_in_progress" {
		t.Fatalf("rebuild while another runs: %d %+v", status, ae)
	}

	// koppelctl's sample answer is the shape this handler gives.
	raw, err := os.ReadFile("../koppelctl/testdata/rebuild.json")
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var sample rebuildReport
	if err := dec.Decode(&sample); err != nil || len(sample.Kinds) == 0 {
		t.Fatalf("koppelctl's testdata/rebuild.json is not a rebuild report: %v", err)
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestRebuildNeedsCredentials(t *testing.T) {
	e := newActivationEnv(t)
	if status, ae := e.call("POST", "/rebuild", map[string]bool{"dry_run": true}, nil); status != 409 || ae.Code != "no_credentials" {
		t.Fatalf("rebuild before credentials: %d %+v", status, ae)
	}
	e.tenantID = "nobody"
	if status, ae := e.call("POST", "/rebuild", map[string]bool{}, nil); status != 404 {
		t.Fatalf("unknown tenant: %d %+v", status, ae)
	}
}
