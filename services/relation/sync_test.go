package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/eboekhouden"
	"github.com/koppel/koppel/pkg/syncrun"
	"github.com/koppel/koppel/pkg/tenantclients"
	eventsv1 "github.com/koppel/koppel/proto/koppel/events/v1"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/koppel/koppel/services/mapping/mappingtest"
	"github.com/koppel/koppel/services/sandbox/ebsim"
	"github.com/koppel/koppel/services/sandbox/tribesim"
)

// world is one tenant with both simulators and a real mapping service: the relation flow runs
// in-process against it through the real clients and adapters.
type world struct {
	t      testing.TB
	m      *mappingtest.Service
	eb     *ebsim.Simulator
	ebAdm  ebsim.AdminInfo
	tr     *tribesim.Simulator
	env    tribesim.EnvironmentInfo
	ebc    *eboekhouden.Client
	s      *syncer
	tenant string
	// lastRun is the run that run finished last.
	lastRun *mappingv1.Run
}

var ctx = context.Background()

func newWorld(t testing.TB, relations int, auto bool) *world {
	t.Helper()
	w := &world{t: t, m: mappingtest.Start(t), tenant: "acme"}
	w.eb = ebsim.New(ebsim.Options{})
	ebSrv := httptest.NewServer(w.eb)
	t.Cleanup(ebSrv.Close)
	var err error
	if w.ebAdm, err = w.eb.CreateAdministration(ebsim.AdminSpec{Company: "Jansen BV", Relations: relations, Seed: 7}); err != nil {
		t.Fatal(err)
	}
	w.tr = tribesim.New(tribesim.Options{})
	t.Cleanup(w.tr.Close)
	trSrv := httptest.NewServer(w.tr)
	t.Cleanup(trSrv.Close)
	if w.env, err = w.tr.CreateEnvironment(tribesim.EnvironmentSpec{ID: "acme", Name: "Koppel Demo B.V."}); err != nil {
		t.Fatal(err)
	}
	settings := &mappingv1.TenantSettings{EboekhoudenBaseUrl: ebSrv.URL, TribeBaseUrl: trSrv.URL, TribeAuthUrl: trSrv.URL,
		TribeClientId: w.env.ClientID, AutoDebtorNumbers: auto, DebtorNumberStart: 90000}
	if _, err := w.m.Client.CreateTenant(ctx, &mappingv1.CreateTenantRequest{Tenant: &mappingv1.Tenant{Id: w.tenant,
		State: mappingv1.TenantState_TENANT_STATE_ACTIVE, Settings: settings}}); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{tenantclients.SecretEBoekhoudenToken: w.ebAdm.AccessToken, tenantclients.SecretTribeClientSecret: w.env.ClientSecret} {
		if _, err := w.m.Client.PutSecret(ctx, &mappingv1.PutSecretRequest{TenantId: w.tenant, Name: name, Value: []byte(v)}); err != nil {
			t.Fatal(err)
		}
	}
	// The callers register metrics once per process, so tests share one cache per mapping.
	clients, err := tenantclients.New(w.m.Client, tenantclients.Options{EBoekhoudenRate: 1000, TribeRate: 1000})
	if err != nil {
		t.Fatal(err)
	}
	w.s = &syncer{mapping: w.m.Client, connect: connector(clients), holder: "test", log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if w.ebc, err = eboekhouden.New(w.ebAdm.AccessToken, "test", eboekhouden.WithBaseURL(ebSrv.URL)); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) tenantRecord() *mappingv1.Tenant {
	res, err := w.m.Client.GetTenant(ctx, &mappingv1.GetTenantRequest{TenantId: w.tenant})
	if err != nil {
		w.t.Fatal(err)
	}
	return res.GetTenant()
}

var runs int

// run does one sync run of kind and returns its counts.
func (w *world) run(kind string) *mappingv1.RunCounts {
	w.t.Helper()
	runs++
	id := fmt.Sprintf("run-%d", runs)
	r, err := syncrun.Start(ctx, w.m.Client, w.tenant, kind, id, "test")
	if err != nil {
		w.t.Fatal(err)
	}
	if err := w.s.pull(ctx, w.tenantRecord(), &eventsv1.SyncCommand{TenantId: w.tenant, Kind: kind, RunId: id}, r); err != nil {
		w.t.Fatalf("%s run: %v", kind, err)
	}
	if err := r.Finish(ctx, nil); err != nil {
		w.t.Fatal(err)
	}
	w.lastRun = w.finished(kind)
	return w.lastRun.GetCounts()
}

func (w *world) finished(kind string) *mappingv1.Run {
	res, err := w.m.Client.ListRuns(ctx, &mappingv1.ListRunsRequest{TenantId: w.tenant, Kind: kind, Limit: 1})
	if err != nil || len(res.GetFinished()) == 0 {
		w.t.Fatalf("finished %s run: %v", kind, err)
	}
	return res.GetFinished()[0]
}

func (w *world) push(entity, id string) error {
	return w.s.push(ctx, w.tenantRecord(), &eventsv1.TribeChange{TenantId: w.tenant, Entity: entity, EntityId: id})
}

func (w *world) tribe(set string) []map[string]any {
	w.t.Helper()
	list, err := w.tr.Entities(w.env.ID, set)
	if err != nil {
		w.t.Fatal(err)
	}
	return list
}

func (w *world) ebRelations() []eboekhouden.Relation {
	w.t.Helper()
	items, err := eboekhouden.Collect(w.ebc.Relations(ctx))
	if err != nil {
		w.t.Fatal(err)
	}
	var out []eboekhouden.Relation
	for _, it := range items {
		r, err := w.ebc.GetRelation(ctx, it.ID)
		if err != nil {
			w.t.Fatal(err)
		}
		out = append(out, *r)
	}
	return out
}

func field(m map[string]any, k string) string { s, _ := m[k].(string); return s }

func TestInitialImportCreatesEveryActiveRelationOnce(t *testing.T) {
	w := newWorld(t, 40, false)
	ebRels := w.ebRelations()
	active := map[string]eboekhouden.Relation{}
	inactive := 0
	for _, r := range ebRels {
		if r.Inactive {
			inactive++
			continue
		}
		active[strconv.FormatInt(r.ID, 10)] = r
	}
	if inactive == 0 {
		t.Fatal("the generated administration has no inactive relation to skip")
	}

	c := w.run(bus.KindImport)
	if int(c.Created) != len(active) || int(c.Skipped) != inactive || c.Failed != 0 {
		t.Fatalf("counts %v: want %d created, %d skipped", c, len(active), inactive)
	}
	if want := fmt.Sprintf("skipped: %d inactive in e-Boekhouden", inactive); w.lastRun.GetMessage() != want {
		t.Fatalf("run message %q, want %q", w.lastRun.GetMessage(), want)
	}
	byImport := map[string]map[string]any{}
	for _, set := range []string{tribesim.SetOrganization, tribesim.SetPerson} {
		for _, e := range w.tribe(set) {
			if id := field(e, "ImportId"); id != "" {
				if byImport[id] != nil {
					t.Fatalf("e-Boekhouden relation %s imported twice", id)
				}
				byImport[id] = e
			}
		}
	}
	if len(byImport) != len(active) {
		t.Fatalf("Tribe has %d imported relations, want %d", len(byImport), len(active))
	}
	for id, r := range active {
		e := byImport[id]
		if e == nil {
			t.Fatalf("relation %s (%s) not imported", id, r.Name)
		}
		if field(e, "DebtorNumber") != r.Code || field(e, "IBAN") != r.IBAN {
			t.Errorf("relation %s: Tribe %v / %v, e-Boekhouden %v / %v", id, e["DebtorNumber"], e["IBAN"], r.Code, r.IBAN)
		}
		if r.Type == eboekhouden.RelationBusiness && (field(e, "Name") != r.Name || field(e, "VATNumber") != r.VATNumber) {
			t.Errorf("organisation %s: Tribe %q %q, e-Boekhouden %q %q", id, e["Name"], e["VATNumber"], r.Name, r.VATNumber)
		}
	}
	customers := len(w.tribe(tribesim.SetOrgCustomer)) + len(w.tribe(tribesim.SetPersonCustomer))
	if customers != len(active) {
		t.Fatalf("%d customer relationships, want %d", customers, len(active))
	}

	// Again: nothing new, nothing written.
	again := w.run(bus.KindImport)
	if again.Created != 0 || int(again.Unchanged) != len(active) {
		t.Fatalf("second import: %v", again)
	}
}

func TestPushAndPullBothWays(t *testing.T) {
	w := newWorld(t, 12, false)
	w.run(bus.KindImport)
	var org map[string]any
	for _, e := range w.tribe(tribesim.SetOrganization) {
		if field(e, "ImportId") != "" {
			org = e
			break
		}
	}
	if org == nil {
		t.Fatal("no imported organisation")
	}
	orgID, ebID := field(org, "ID"), field(org, "ImportId")
	ebNum, _ := strconv.ParseInt(ebID, 10, 64)

	// Tribe -> e-Boekhouden at once.
	if _, err := w.tr.UserWrite(w.env.ID, tribesim.SetOrganization, orgID, map[string]any{"PhoneNumber": "020-5550100"}); err != nil {
		t.Fatal(err)
	}
	if err := w.push(bus.EntityOrganization, orgID); err != nil {
		t.Fatal(err)
	}
	r, _ := w.ebc.GetRelation(ctx, ebNum)
	if r.PhoneNumber != "020-5550100" {
		t.Fatalf("phone in e-Boekhouden = %q", r.PhoneNumber)
	}

	// e-Boekhouden -> Tribe on the periodic pull; the deactivation stays in e-Boekhouden.
	if _, err := w.ebc.UpdateRelation(ctx, ebNum, func(r *eboekhouden.Relation) error {
		r.Website, r.Inactive = "www.jansen-installaties.nl", true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	c := w.run(bus.KindRelation)
	if c.Updated != 1 {
		t.Fatalf("pull counts %v, want 1 updated", c)
	}
	got, _ := w.tr.Entity(w.env.ID, orgID)
	if field(got, "Website") != "www.jansen-installaties.nl" || got["IsActive"] == false {
		t.Fatalf("Tribe after pull: website %v, active %v", got["Website"], got["IsActive"])
	}

	// Echoes: the webhook of the pull's own write and a repeated pull change nothing.
	before := w.eb.Stats()
	if err := w.push(bus.EntityOrganization, orgID); err != nil {
		t.Fatal(err)
	}
	if c := w.run(bus.KindRelation); c.Updated != 0 {
		t.Fatalf("repeated pull updated %d", c.Updated)
	}
	for k, v := range w.eb.Stats() {
		if (k == "PATCH /v1/relation/{id}" || k == "POST /v1/relation") && v != before[k] {
			t.Fatalf("an echo wrote to e-Boekhouden: %s %d -> %d", k, before[k], v)
		}
	}
}

func TestConflictIsSettledByOwnerAndRecorded(t *testing.T) {
	w := newWorld(t, 8, false)
	w.run(bus.KindImport)
	var org map[string]any
	for _, e := range w.tribe(tribesim.SetOrganization) {
		if field(e, "ImportId") != "" {
			org = e
			break
		}
	}
	orgID, ebID := field(org, "ID"), field(org, "ImportId")
	ebNum, _ := strconv.ParseInt(ebID, 10, 64)
	if _, err := w.tr.UserWrite(w.env.ID, tribesim.SetOrganization, orgID, map[string]any{"Name": "Name From Tribe", "IBAN": "NL02RABO0123456789"}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.ebc.UpdateRelation(ctx, ebNum, func(r *eboekhouden.Relation) error {
		r.Name, r.IBAN = "Name From Books", "NL20INGB0001234567"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := w.push(bus.EntityOrganization, orgID); err != nil {
		t.Fatal(err)
	}
	got, _ := w.tr.Entity(w.env.ID, orgID)
	r, _ := w.ebc.GetRelation(ctx, ebNum)
	if field(got, "Name") != "Name From Tribe" || r.Name != "Name From Tribe" || field(got, "IBAN") != "NL20INGB0001234567" || r.IBAN != "NL20INGB0001234567" {
		t.Fatalf("after merge: Tribe %q %q, e-Boekhouden %q %q", got["Name"], got["IBAN"], r.Name, r.IBAN)
	}
	h, err := w.m.Client.ListHistory(ctx, &mappingv1.ListHistoryRequest{TenantId: w.tenant})
	if err != nil || len(h.GetEntries()) != 2 {
		t.Fatalf("history: %v %v", h, err)
	}
}

func TestNewTribeCustomerNeedsADebtorNumber(t *testing.T) {
	for _, auto := range []bool{false, true} {
		t.Run(fmt.Sprintf("auto=%v", auto), func(t *testing.T) {
			w := newWorld(t, 0, auto)
			if err := w.tr.Generate(w.env.ID, tribesim.GenerateSpec{Organizations: 1, WithoutDebtorNumber: 1, Seed: 3}); err != nil {
				t.Fatal(err)
			}
			orgs := w.tribe(tribesim.SetOrganization)
			var org map[string]any
			for _, o := range orgs {
				if o["ID"] != w.env.OwnOrganizationID {
					org = o
				}
			}
			if org == nil || field(org, "DebtorNumber") != "" {
				t.Fatalf("want a customer without debtor number, got %v", org)
			}
			err := w.push(bus.EntityOrganization, field(org, "ID"))
			if !auto {
				issue, ok := bus.IssueOf(err)
				if !ok || issue.GetCode() != "no_debtor_number" {
					t.Fatalf("push: %v", err)
				}
				if n := len(w.ebRelations()); n != 0 {
					t.Fatalf("%d relations pushed without a debtor number", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := w.tr.Entity(w.env.ID, field(org, "ID"))
			rels := w.ebRelations()
			if field(got, "DebtorNumber") != "90000" || len(rels) != 1 || rels[0].Code != "90000" || field(got, "ImportId") != strconv.FormatInt(rels[0].ID, 10) {
				t.Fatalf("Tribe %v %v, e-Boekhouden %+v", got["DebtorNumber"], got["ImportId"], rels)
			}
		})
	}
}

func (w *world) startRun(kind, id string) *syncrun.Run {
	w.t.Helper()
	r, err := syncrun.Start(ctx, w.m.Client, w.tenant, kind, id, "test")
	if err != nil {
		w.t.Fatal(err)
	}
	return r
}

// pullWith runs (or continues) run id of kind as a delivery of its command would.
func (w *world) pullWith(r *syncrun.Run, kind, id string) error {
	return w.s.pull(ctx, w.tenantRecord(), &eventsv1.SyncCommand{TenantId: w.tenant, Kind: kind, RunId: id}, r)
}
