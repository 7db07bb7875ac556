package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/eboekhouden"
	"github.com/koppel/koppel/pkg/flow"
	eventsv1 "github.com/koppel/koppel/proto/koppel/events/v1"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/koppel/koppel/services/relation/record"
	"github.com/koppel/koppel/services/sandbox/tribesim"
	"google.golang.org/protobuf/proto"
)

// These tests start from what a bookkeeper has when koppel is switched on: an administration
// and a Tribe environment that both hold data already, kept by people who never heard of koppel.

// bookRelation creates a relation in e-Boekhouden as the bookkeeper would, and returns its ID.
func (w *world) bookRelation(r eboekhouden.Relation) int64 {
	w.t.Helper()
	if r.Type == "" {
		r.Type = eboekhouden.RelationBusiness
	}
	created, err := w.ebc.CreateRelation(ctx, r)
	if err != nil {
		w.t.Fatal(err)
	}
	return created.ID
}

func (w *world) bookRead(id int64) eboekhouden.Relation {
	w.t.Helper()
	r, err := w.ebc.GetRelation(ctx, id)
	if err != nil {
		w.t.Fatal(err)
	}
	return *r
}

// tribeOrganization creates an organisation in Tribe as a user would, with a relationship of
// set (a customer or supplier relationship; "" for none), and returns its ID.
func (w *world) tribeOrganization(fields map[string]any, relationship string) string {
	w.t.Helper()
	org, err := w.tr.UserWrite(w.env.ID, tribesim.SetOrganization, "", fields)
	if err != nil {
		w.t.Fatal(err)
	}
	id := field(org, "ID")
	if relationship != "" {
		if _, err := w.tr.UserWrite(w.env.ID, relationship, "", map[string]any{"Relation": map[string]any{"ID": w.env.OwnOrganizationID},
			"Organization": map[string]any{"ID": id}}); err != nil {
			w.t.Fatal(err)
		}
	}
	return id
}

func (w *world) tribeRecord(id string) map[string]any {
	w.t.Helper()
	got, ok := w.tr.Entity(w.env.ID, id)
	if !ok {
		w.t.Fatalf("no Tribe record %s", id)
	}
	return got
}

// address reads a Tribe relation's address navigation (InvoiceAddress, PostalAddress).
func (w *world) address(relationID, nav string) map[string]any {
	w.t.Helper()
	ref, _ := w.tribeRecord(relationID)[nav].(map[string]any)
	if ref == nil {
		return nil
	}
	return w.tribeRecord(field(ref, "ID"))
}

func (w *world) openIssues() map[string]*mappingv1.Issue {
	w.t.Helper()
	res, err := w.m.Client.ListIssues(ctx, &mappingv1.ListIssuesRequest{TenantId: w.tenant})
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[string]*mappingv1.Issue{}
	for _, is := range res.GetIssues() {
		out[is.GetKey()] = is
	}
	return out
}

func (w *world) bookWrites() int64 {
	st := w.eb.Stats()
	return st["PATCH /v1/relation/{id}"] + st["POST /v1/relation"]
}

func (w *world) organizations() int {
	return len(w.tribe(tribesim.SetOrganization)) - 1 // the own organisation
}

func number(v any) float64 {
	switch n := v.(type) {
	case json.Number:
		f, _ := n.Float64()
		return f
	case float64:
		return n
	}
	return 0
}

// The import meets "Bos Groep" in the books and "Afkorting" with the same debtor number in Tribe.
// The books are the bookkeeper's: nothing is written there. Tribe's empty website is filled in;
// the name and phone, which differ, stay as they are on both sides and the tenant is told. A user
// who then corrects a field in one system settles it.
func TestImportOfAnExistingAdministrationNeverRewritesTheBooks(t *testing.T) {
	w := newWorld(t, 0, false)
	ebID := w.bookRelation(eboekhouden.Relation{Code: "1001", Name: "Bos Groep", Website: "www.bosgroep.nl",
		Address: "Hoofdweg 17", PostalCode: "8011 AA", City: "Zwolle", Country: "NL"})
	before := w.bookRead(ebID)
	orgID := w.tribeOrganization(map[string]any{"Name": "Afkorting", "DebtorNumber": "1001", "PhoneNumber": "038-4210000",
		"InvoiceAddress": map[string]any{"Street": "Hoofdweg", "HouseNumber": 17, "Postalcode": "8011AA", "City": "Zwolle"}}, tribesim.SetOrgCustomer)
	writes := w.bookWrites()

	c := w.run(bus.KindImport)
	if c.Created != 0 || c.Updated != 1 || c.Failed != 0 {
		t.Fatalf("import counts %v: want the one relation matched and Tribe's website filled in", c)
	}
	if after := w.bookRead(ebID); w.bookWrites() != writes || fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("the import wrote the books:\nbefore %+v\nafter  %+v", before, after)
	}
	org := w.tribeRecord(orgID)
	if field(org, "Name") != "Afkorting" || field(org, "PhoneNumber") != "038-4210000" || field(org, "Website") != "www.bosgroep.nl" ||
		field(org, "ImportId") != strconv.FormatInt(ebID, 10) {
		t.Fatalf("Tribe after the import: %v", org)
	}
	if w.organizations() != 1 {
		t.Fatalf("%d organisations in Tribe, want the one that was there", w.organizations())
	}
	issue := w.openIssues()["organization/"+orgID+"/differs"]
	if issue == nil || !strings.Contains(issue.GetMessage(), `"Bos Groep"`) || !strings.Contains(issue.GetMessage(), `"Afkorting"`) ||
		!strings.Contains(issue.GetMessage(), "phone") || issue.GetDetails()["fields"] != "name,phone" {
		t.Fatalf("the tenant is not told what differs: %v", issue)
	}

	// Tribe's webhook of koppel's own write is an echo: the books stay as they are.
	if err := w.push(bus.EntityOrganization, orgID); err != nil {
		t.Fatal(err)
	}
	if w.bookWrites() != writes {
		t.Fatal("the echo of the import wrote the books")
	}

	// A user corrects the name in Tribe: that edit goes to the books; the phone stays apart.
	if _, err := w.tr.UserWrite(w.env.ID, tribesim.SetOrganization, orgID, map[string]any{"Name": "Bos Groep B.V."}); err != nil {
		t.Fatal(err)
	}
	if err := w.push(bus.EntityOrganization, orgID); err != nil {
		t.Fatal(err)
	}
	if r := w.bookRead(ebID); r.Name != "Bos Groep B.V." || r.PhoneNumber != "" || r.Website != "www.bosgroep.nl" {
		t.Fatalf("books after the Tribe edit: %+v", r)
	}
	if is := w.openIssues()["organization/"+orgID+"/differs"]; is == nil || is.GetDetails()["fields"] != "phone" {
		t.Fatalf("after the name was settled the issue should name the phone only: %v", is)
	}

	// The bookkeeper types the phone number in the books: everything agrees, the issue goes.
	if _, err := w.ebc.UpdateRelation(ctx, ebID, func(r *eboekhouden.Relation) error { r.PhoneNumber = "038-4210000"; return nil }); err != nil {
		t.Fatal(err)
	}
	w.run(bus.KindRelation)
	if is := w.openIssues()["organization/"+orgID+"/differs"]; is != nil {
		t.Fatalf("settled, yet the issue stays: %v", is)
	}
	if field(w.tribeRecord(orgID), "PhoneNumber") != "038-4210000" {
		t.Fatal("the phone changed in Tribe")
	}
}

// A supplier kept in Tribe with creditor number 2001 is the relation with code 2001 in the books:
// it is linked, not created a second time, and not made a customer. Linked, its edits in Tribe
// reach the books like a customer's.
func TestSupplierIsMatchedByItsCreditorNumber(t *testing.T) {
	w := newWorld(t, 0, false)
	ebID := w.bookRelation(eboekhouden.Relation{Code: "2001", Name: "Groothandel Peters"})
	orgID := w.tribeOrganization(map[string]any{"Name": "Groothandel Peters", "CreditorNumber": "2001"}, tribesim.SetOrgSupplier)

	c := w.run(bus.KindImport)
	if c.Created != 0 || c.Failed != 0 {
		t.Fatalf("import counts %v", c)
	}
	if w.organizations() != 1 || len(w.tribe(tribesim.SetOrgCustomer)) != 0 {
		t.Fatalf("%d organisations and %d customers in Tribe: the supplier was duplicated or made a customer", w.organizations(), len(w.tribe(tribesim.SetOrgCustomer)))
	}
	org := w.tribeRecord(orgID)
	if field(org, "DebtorNumber") != "" || field(org, "CreditorNumber") != "2001" || field(org, "ImportId") != strconv.FormatInt(ebID, 10) {
		t.Fatalf("supplier after the import: %v", org)
	}

	if _, err := w.tr.UserWrite(w.env.ID, tribesim.SetOrganization, orgID, map[string]any{"PhoneNumber": "010-4440000"}); err != nil {
		t.Fatal(err)
	}
	if err := w.push(bus.EntityOrganization, orgID); err != nil {
		t.Fatal(err)
	}
	if r := w.bookRead(ebID); r.PhoneNumber != "010-4440000" || r.Code != "2001" {
		t.Fatalf("the supplier's edit did not reach the books: %+v", r)
	}
	if field(w.tribeRecord(orgID), "DebtorNumber") != "" {
		t.Fatal("the supplier got a debtor number")
	}

	// Redis is lost; the supplier's next change finds its relation again through the ImportId.
	if _, err := w.m.Client.DeleteLink(ctx, &mappingv1.DeleteLinkRequest{TenantId: w.tenant, Kind: "organization", TribeId: orgID}); err != nil {
		t.Fatal(err)
	}
	if err := w.push(bus.EntityOrganization, orgID); err != nil {
		t.Fatal(err)
	}
	if org := w.tribeRecord(orgID); field(org, "DebtorNumber") != "" || field(org, "CreditorNumber") != "2001" {
		t.Fatalf("found again, the supplier's numbers changed: %v", org)
	}
}

// A new Tribe customer whose debtor number is the code of a relation in the books that koppel
// never linked (here an inactive one the import skipped) is not pushed onto it: the tenant hears
// of both. A relation koppel created itself before a crash is recognised by its marker.
func TestNewCustomerNeverTakesOverAnUnlinkedRelation(t *testing.T) {
	w := newWorld(t, 0, false)
	oldID := w.bookRelation(eboekhouden.Relation{Code: "3001", Name: "Oud Klant BV", Inactive: true})
	w.run(bus.KindImport)
	before := w.bookRead(oldID)

	orgID := w.tribeOrganization(map[string]any{"Name": "Nieuw Klant BV", "DebtorNumber": "3001"}, tribesim.SetOrgCustomer)
	err := w.push(bus.EntityOrganization, orgID)
	issue, ok := bus.IssueOf(err)
	if !ok || issue.GetCode() != "debtor_number_taken" || !strings.Contains(issue.GetMessage(), "Oud Klant BV") ||
		!strings.Contains(issue.GetMessage(), "Nieuw Klant BV") || !strings.Contains(issue.GetMessage(), "inactive") {
		t.Fatalf("push: %v (issue %v)", err, issue)
	}
	if after := w.bookRead(oldID); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("the unlinked relation was changed: %+v", after)
	}
	if _, err := w.m.Client.GetLink(ctx, &mappingv1.GetLinkRequest{TenantId: w.tenant, Kind: "organization", TribeId: orgID}); err == nil {
		t.Fatal("the new customer was linked to the bookkeeper's relation")
	}

	// An earlier push created the relation, then crashed before the link; the customer's phone
	// changed in Tribe since. The push recognises its own relation and brings the change.
	crashID := w.tribeOrganization(map[string]any{"Name": "Crash BV", "DebtorNumber": "3002", "PhoneNumber": "06-1"}, tribesim.SetOrgCustomer)
	mine := w.bookRelation(eboekhouden.Relation{Code: "3002", Name: "Crash BV", Note: marker(crashID)})
	if _, err := w.tr.UserWrite(w.env.ID, tribesim.SetOrganization, crashID, map[string]any{"PhoneNumber": "06-2"}); err != nil {
		t.Fatal(err)
	}
	if err := w.push(bus.EntityOrganization, crashID); err != nil {
		t.Fatal(err)
	}
	if r := w.bookRead(mine); r.PhoneNumber != "06-2" {
		t.Fatalf("koppel's own relation was not taken back: %+v", r)
	}
	if n := len(w.ebRelations()); n != 2 {
		t.Fatalf("%d relations in the books, want 2", n)
	}
}

// Addresses go field for field, both ways: a street line without a house number clears the
// number in Tribe, a cleared address is cleared, and the echoes never write an old number back.
func TestAddressesGoBothWaysFieldForField(t *testing.T) {
	w := newWorld(t, 0, false)
	ebID := w.bookRelation(eboekhouden.Relation{Code: "4001", Name: "De Hoek BV", Address: "Hoofdweg 17", PostalCode: "8011 AA", City: "Zwolle", Country: "NL"})
	w.run(bus.KindImport)
	var orgID string
	for _, o := range w.tribe(tribesim.SetOrganization) {
		if field(o, "ImportId") == strconv.FormatInt(ebID, 10) {
			orgID = field(o, "ID")
		}
	}
	if a := w.address(orgID, "InvoiceAddress"); a == nil || field(a, "Street") != "Hoofdweg" || number(a["HouseNumber"]) != 17 {
		t.Fatalf("imported address %v", a)
	}

	if _, err := w.ebc.UpdateRelation(ctx, ebID, func(r *eboekhouden.Relation) error { r.Address = "Industrieterrein De Hoek"; return nil }); err != nil {
		t.Fatal(err)
	}
	w.run(bus.KindRelation)
	if a := w.address(orgID, "InvoiceAddress"); field(a, "Street") != "Industrieterrein De Hoek" || a["HouseNumber"] != nil {
		t.Fatalf("Tribe address after the new street line: %v", a)
	}
	if err := w.push(bus.EntityOrganization, orgID); err != nil {
		t.Fatal(err)
	}
	if r := w.bookRead(ebID); r.Address != "Industrieterrein De Hoek" {
		t.Fatalf("the echo wrote %q to the books", r.Address)
	}

	if _, err := w.ebc.UpdateRelation(ctx, ebID, func(r *eboekhouden.Relation) error {
		r.Address, r.PostalCode, r.City, r.Country = "", "", "", ""
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	w.run(bus.KindRelation)
	a := w.address(orgID, "InvoiceAddress")
	for _, f := range []string{"Street", "HouseNumber", "Postalcode", "City", "Country"} {
		if a[f] != nil && a[f] != "" {
			t.Fatalf("cleared in the books, yet Tribe's address keeps %s = %v", f, a[f])
		}
	}
	if err := w.push(bus.EntityOrganization, orgID); err != nil {
		t.Fatal(err)
	}
	if r := w.bookRead(ebID); r.Address != "" || r.City != "" {
		t.Fatalf("the echo of a cleared address wrote %q %q to the books", r.Address, r.City)
	}
}

// An administration with many inactive relations: the 5-minute scan reads none of them again
// unless its list entry changed; the daily pull looks again, and imports one made active.
func TestScanSkipsInactiveRelationsItKnows(t *testing.T) {
	w := newWorld(t, 0, false)
	var inactive []int64
	for i := range 12 {
		inactive = append(inactive, w.bookRelation(eboekhouden.Relation{Code: fmt.Sprint(5000 + i), Name: fmt.Sprintf("Slapend %d", i), Inactive: true}))
	}
	w.bookRelation(eboekhouden.Relation{Code: "5100", Name: "Wakker BV"})
	w.run(bus.KindImport)
	reads := func() int64 { return w.eb.Stats()["GET /v1/relation/{id}"] }

	before := reads()
	if c := w.run(bus.KindRelationScan); c.Skipped != 12 || reads() != before {
		t.Fatalf("scan: counts %v, %d relation reads (want 0)", c, reads()-before)
	}
	// The bookkeeper renumbers one: the scan reads that one.
	if _, err := w.ebc.UpdateRelation(ctx, inactive[0], func(r *eboekhouden.Relation) error { r.Code = "5900"; return nil }); err != nil {
		t.Fatal(err)
	}
	before = reads()
	w.run(bus.KindRelationScan)
	if n := reads() - before; n != 1 {
		t.Fatalf("scan after a renumbering read %d relations, want 1", n)
	}
	// The bookkeeper makes one active again, which the list does not show: the daily pull
	// finds it.
	if _, err := w.ebc.UpdateRelation(ctx, inactive[1], func(r *eboekhouden.Relation) error { r.Inactive = false; return nil }); err != nil {
		t.Fatal(err)
	}
	if c := w.run(bus.KindRelationScan); c.Created != 0 {
		t.Fatalf("the scan read a relation it knows as inactive: %v", c)
	}
	if c := w.run(bus.KindRelation); c.Created != 1 || c.Skipped != 11 {
		t.Fatalf("daily pull: %v, want the reactivated relation created", c)
	}
}

// flakyBooks fails the reads of one relation with a transient error, as a dropped connection
// would, while failing is set.
type flakyBooks struct {
	Books
	reads   atomic.Int64
	failAt  int64
	mu      sync.Mutex
	failing string // the relation whose reads fail
	failed  int
	times   int // fail that many times, 0 for ever
}

func (f *flakyBooks) GetRelation(ctx context.Context, id string) (BookRelation, error) {
	f.mu.Lock()
	if f.failing == "" && f.reads.Add(1) == f.failAt {
		f.failing = id
	}
	fail := f.failing == id && (f.times == 0 || f.failed < f.times)
	if fail {
		f.failed++
	}
	f.mu.Unlock()
	if fail {
		return BookRelation{}, errors.New("connection reset by peer")
	}
	return f.Books.GetRelation(ctx, id)
}

// A relation read that fails once is tried again within the run: the import does not stop.
func TestAReadFailingOnceIsTriedAgain(t *testing.T) {
	w := newWorld(t, 30, false)
	w.s.retryBase = 10 * time.Millisecond
	connect := w.s.connect
	flaky := &flakyBooks{failAt: 12, times: 1}
	w.s.connect = func(ctx context.Context, tenant *mappingv1.Tenant) (Books, CRM, error) {
		b, c, err := connect(ctx, tenant)
		flaky.Books = b
		return flaky, c, err
	}
	c := w.run(bus.KindImport)
	if flaky.failed != 1 || c.Created+c.Skipped != 30 || c.Failed != 0 {
		t.Fatalf("counts %v after %d failures", c, flaky.failed)
	}
}

// An import whose relation keeps failing transiently stops half-way (after trying that one a few
// times) and, delivered again, counts every relation exactly once and creates none twice, though
// it handles several at once.
func TestInterruptedImportResumesExactly(t *testing.T) {
	w := newWorld(t, 60, false)
	w.s.retryBase = 10 * time.Millisecond
	connect := w.s.connect
	flaky := &flakyBooks{failAt: 37}
	w.s.connect = func(ctx context.Context, tenant *mappingv1.Tenant) (Books, CRM, error) {
		b, c, err := connect(ctx, tenant)
		flaky.Books = b
		return flaky, c, err
	}
	runs++
	id := fmt.Sprintf("run-%d", runs)
	r := w.startRun(bus.KindImport, id)
	if err := w.pullWith(r, bus.KindImport, id); err == nil {
		t.Fatal("the first delivery should stop at the failure")
	}
	if flaky.failed != 3 {
		t.Fatalf("the failing relation was tried %d times, want 3", flaky.failed)
	}
	flaky.mu.Lock()
	flaky.failing = "-" // the connection is back
	flaky.mu.Unlock()
	r = w.startRun(bus.KindImport, id)
	if err := w.pullWith(r, bus.KindImport, id); err != nil {
		t.Fatalf("redelivery: %v", err)
	}
	if err := r.Finish(ctx, nil); err != nil {
		t.Fatal(err)
	}
	fin := w.finished(bus.KindImport)
	active := 0
	for _, rel := range w.ebRelations() {
		if !rel.Inactive {
			active++
		}
	}
	c := fin.GetCounts()
	if int(c.Created) != active || c.Created+c.Skipped != 60 || fin.GetDone() != 60 || fin.GetTotal() != 60 {
		t.Fatalf("counts %v done %d/%d: want %d created and every relation counted once", c, fin.GetDone(), fin.GetTotal(), active)
	}
	imported := 0
	for _, set := range []string{tribesim.SetOrganization, tribesim.SetPerson} {
		for _, e := range w.tribe(set) {
			if field(e, "ImportId") != "" {
				imported++
			}
		}
	}
	if imported != active {
		t.Fatalf("%d relations imported into Tribe, want %d", imported, active)
	}
}

// Every record the import writes to Tribe comes back as webhooks: the relation's and its
// customer relationship's. Each is recognised as koppel's own write from at most one Tribe read
// (none for the relationship), without a call to e-Boekhouden, and writes nothing.
func TestEchoesOfTheImportAreFree(t *testing.T) {
	w := newWorld(t, 30, false)
	w.run(bus.KindImport)
	var events [][2]string
	for _, set := range [][2]string{{tribesim.SetOrganization, bus.EntityOrganization}, {tribesim.SetPerson, bus.EntityPerson}} {
		for _, e := range w.tribe(set[0]) {
			if field(e, "ImportId") != "" {
				events = append(events, [2]string{set[1], field(e, "ID")})
			}
		}
	}
	relations := len(events)
	for _, set := range []string{tribesim.SetOrgCustomer, tribesim.SetPersonCustomer} {
		for _, e := range w.tribe(set) {
			events = append(events, [2]string{set, field(e, "ID")})
		}
	}
	ebBefore, trBefore, writes := apiCalls(t, "eboekhouden"), apiCalls(t, "tribe"), w.bookWrites()
	trWrites := tribeWrites(w)
	for _, ev := range events {
		if err := w.push(ev[0], ev[1]); err != nil {
			t.Fatal(err)
		}
	}
	if n := apiCalls(t, "eboekhouden") - ebBefore; n != 0 || w.bookWrites() != writes {
		t.Fatalf("echoes made %v e-Boekhouden calls", n)
	}
	if n := apiCalls(t, "tribe") - trBefore; n > float64(relations) {
		t.Fatalf("%d echoes (%d relations and their relationships) made %v Tribe calls, want at most %d", len(events), relations, n, relations)
	}
	if tribeWrites(w) != trWrites {
		t.Fatal("an echo wrote to Tribe")
	}
}

// tribeWrites counts the write requests Tribe has seen.
func tribeWrites(w *world) int {
	n := 0
	for _, r := range w.tr.Requests(w.env.ID) {
		if r.Method != "GET" {
			n++
		}
	}
	return n
}

// A scheduled relation scan that comes while the import runs is not started beside it (it would
// read the same relations with the same budget); the tenant's history says why.
func TestRelationRunsWaitForTheImport(t *testing.T) {
	w := newWorld(t, 5, false)
	handler := flow.CommandHandler(w.m.Client, commands(w.s, nil, nil))
	importRun := w.startRun(bus.KindImport, "import-1")
	cmd := &eventsv1.SyncCommand{TenantId: w.tenant, Kind: bus.KindRelationScan, RunId: "scan-1", Trigger: "schedule"}
	data, err := proto.Marshal(cmd)
	if err != nil {
		t.Fatal(err)
	}
	msg := &bus.Msg{Subject: "sync.cmd." + w.tenant + "." + bus.KindRelationScan, Data: data, Tenant: w.tenant}
	if err := handler(ctx, msg); err != nil {
		t.Fatal(err)
	}
	runs, err := w.m.Client.ListRuns(ctx, &mappingv1.ListRunsRequest{TenantId: w.tenant})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range append(runs.GetCurrent(), runs.GetFinished()...) {
		if r.GetKind() == bus.KindRelationScan {
			t.Fatalf("a scan ran beside the import: %v", r)
		}
	}
	h, err := w.m.Client.ListHistory(ctx, &mappingv1.ListHistoryRequest{TenantId: w.tenant})
	if err != nil || len(h.GetEntries()) == 0 || h.GetEntries()[0].GetCode() != "run_skipped" || !strings.Contains(h.GetEntries()[0].GetMessage(), "import run (import-1)") {
		t.Fatalf("history does not say why the scan was skipped: %v %v", h, err)
	}
	if err := importRun.Finish(ctx, nil); err != nil {
		t.Fatal(err)
	}
	msg.Data, _ = proto.Marshal(&eventsv1.SyncCommand{TenantId: w.tenant, Kind: bus.KindRelationScan, RunId: "scan-2", Trigger: "schedule"})
	if err := handler(ctx, msg); err != nil {
		t.Fatal(err)
	}
	if fin := w.finished(bus.KindRelationScan); fin.GetId() != "scan-2" {
		t.Fatalf("after the import the scan runs: %v", fin)
	}
}

// An invoice waits for its customer to get into e-Boekhouden. The moment a Tribe relation gets
// linked — pushed as a new customer, or matched by the import — its waiting invoices are told;
// relations the import creates in Tribe have no invoices to wake.
func TestLinkingACustomerWakesItsInvoices(t *testing.T) {
	w := newWorld(t, 0, false)
	var woken []string
	w.s.linked = func(_ context.Context, tenant string, kind record.Kind, tribeID string) {
		woken = append(woken, string(kind)+"/"+tribeID)
	}
	w.bookRelation(eboekhouden.Relation{Code: "6001", Name: "Nieuw In De Boeken"})
	matched := w.tribeOrganization(map[string]any{"Name": "Al In Tribe", "DebtorNumber": "6002"}, tribesim.SetOrgCustomer)
	w.bookRelation(eboekhouden.Relation{Code: "6002", Name: "Al In Tribe"})
	w.run(bus.KindImport)
	if len(woken) != 1 || woken[0] != "organization/"+matched {
		t.Fatalf("after the import: woken %v, want only the matched organisation", woken)
	}
	pushed := w.tribeOrganization(map[string]any{"Name": "Nieuwe Klant", "DebtorNumber": "6003"}, tribesim.SetOrgCustomer)
	if err := w.push(bus.EntityOrganization, pushed); err != nil {
		t.Fatal(err)
	}
	if len(woken) != 2 || woken[1] != "organization/"+pushed {
		t.Fatalf("after the push: woken %v", woken)
	}
}
