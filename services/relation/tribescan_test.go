package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/bustest"
	"github.com/koppel/koppel/pkg/syncrun"
	"github.com/koppel/koppel/pkg/tenantclients"
	eventsv1 "github.com/koppel/koppel/proto/koppel/events/v1"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/koppel/koppel/services/mapping/mappingtest"
	"github.com/koppel/koppel/services/sandbox/tribesim"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
)

// clock is the simulated time of Tribe and of the scanner.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// scanWorld is a tenant with a Tribe simulator on a clock the test moves, a real mapping service
// and an embedded JetStream with koppel's topology; the scanner publishes to it.
type scanWorld struct {
	t      *testing.T
	m      *mappingtest.Service
	tr     *tribesim.Simulator
	env    tribesim.EnvironmentInfo
	js     jetstream.JetStream
	clock  *clock
	sc     *tribeScanner
	tenant string
}

func newScanWorld(t *testing.T) *scanWorld {
	w := &scanWorld{t: t, m: mappingtest.Start(t), tenant: "acme",
		clock: &clock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}}
	w.js = bustest.Start(t).JS
	w.tr = tribesim.New(tribesim.Options{Now: w.clock.Now, TokenLifetime: 24 * time.Hour})
	t.Cleanup(w.tr.Close)
	srv := httptest.NewServer(w.tr)
	t.Cleanup(srv.Close)
	var err error
	if w.env, err = w.tr.CreateEnvironment(tribesim.EnvironmentSpec{ID: "acme", Name: "Koppel Demo B.V."}); err != nil {
		t.Fatal(err)
	}
	settings := &mappingv1.TenantSettings{TribeBaseUrl: srv.URL, TribeAuthUrl: srv.URL, TribeClientId: w.env.ClientID}
	if _, err := w.m.Client.CreateTenant(ctx, &mappingv1.CreateTenantRequest{Tenant: &mappingv1.Tenant{Id: w.tenant,
		State: mappingv1.TenantState_TENANT_STATE_ACTIVE, Settings: settings}}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.m.Client.PutSecret(ctx, &mappingv1.PutSecretRequest{TenantId: w.tenant, Name: tenantclients.SecretTribeClientSecret, Value: []byte(w.env.ClientSecret)}); err != nil {
		t.Fatal(err)
	}
	clients, err := tenantclients.New(w.m.Client, tenantclients.Options{TribeRate: 1000})
	if err != nil {
		t.Fatal(err)
	}
	w.sc = &tribeScanner{mapping: w.m.Client, pub: bus.NewPublisher(w.js), log: slog.New(slog.NewTextHandler(io.Discard, nil)), now: w.clock.Now,
		tribe: func(ctx context.Context, t *mappingv1.Tenant) (changeLister, error) { return clients.Tribe(ctx, t) }}
	return w
}

// scan runs one tribe-scan and returns the finished run.
func (w *scanWorld) scan() *mappingv1.Run {
	w.t.Helper()
	runs++
	id := fmt.Sprintf("scan-%d", runs)
	r, err := syncrun.Start(ctx, w.m.Client, w.tenant, bus.KindTribeScan, id, "test")
	if err != nil {
		w.t.Fatal(err)
	}
	res, err := w.m.Client.GetTenant(ctx, &mappingv1.GetTenantRequest{TenantId: w.tenant})
	if err != nil {
		w.t.Fatal(err)
	}
	if err := w.sc.scan(ctx, res.GetTenant(), &eventsv1.SyncCommand{TenantId: w.tenant, Kind: bus.KindTribeScan, RunId: id}, r); err != nil {
		w.t.Fatalf("tribe-scan: %v", err)
	}
	if err := r.Finish(ctx, nil); err != nil {
		w.t.Fatal(err)
	}
	runs, err := w.m.Client.ListRuns(ctx, &mappingv1.ListRunsRequest{TenantId: w.tenant, Kind: bus.KindTribeScan, Limit: 1})
	if err != nil || len(runs.GetFinished()) == 0 || runs.GetFinished()[0].GetId() != id {
		w.t.Fatalf("finished scan %s: %v %v", id, runs, err)
	}
	return runs.GetFinished()[0]
}

// published is every change on the bus for the tenant, as "<entity>/<id>", in order, and the
// message IDs.
func (w *scanWorld) published() (changes, msgIDs []string) {
	w.t.Helper()
	c, err := w.js.OrderedConsumer(ctx, bus.StreamTribeEvents, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"tribe.evt." + w.tenant + ".>"}})
	if err != nil {
		w.t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	for range info.NumPending {
		m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			w.t.Fatal(err)
		}
		var ch eventsv1.TribeChange
		if err := proto.Unmarshal(m.Data(), &ch); err != nil {
			w.t.Fatal(err)
		}
		if want, _ := bus.TribeEventSubject(w.tenant, ch.GetEntity()); m.Subject() != want || ch.GetTenantId() != w.tenant {
			w.t.Fatalf("change %v on subject %s", &ch, m.Subject())
		}
		changes = append(changes, ch.GetEntity()+"/"+ch.GetEntityId())
		msgIDs = append(msgIDs, m.Headers().Get(jetstream.MsgIDHeader))
	}
	return changes, msgIDs
}

func (w *scanWorld) cursor(set string) string {
	name := ""
	for _, ss := range scanSets {
		if ss.set == set {
			name = ss.cursor
		}
	}
	res, err := w.m.Client.GetCursor(ctx, &mappingv1.GetCursorRequest{TenantId: w.tenant, Name: name})
	if err != nil {
		w.t.Fatal(err)
	}
	return res.GetValue()
}

// first returns the ID of the first record of set that pick accepts.
func (w *scanWorld) first(set string, pick func(map[string]any) bool) string {
	w.t.Helper()
	list, err := w.tr.Entities(w.env.ID, set)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, e := range list {
		if pick(e) {
			return field(e, "ID")
		}
	}
	w.t.Fatalf("no record of %s to use", set)
	return ""
}

func (w *scanWorld) write(set, id string, fields map[string]any) {
	w.t.Helper()
	if _, err := w.tr.UserWrite(w.env.ID, set, id, fields); err != nil {
		w.t.Fatal(err)
	}
}

func TestTribeScanPublishesChangesSinceItsCursorOnce(t *testing.T) {
	w := newScanWorld(t)
	// Customers, products and invoices in every phase, all changed at 10:00.
	if err := w.tr.Generate(w.env.ID, tribesim.GenerateSpec{Organizations: 3, Persons: 2, Products: 2, Invoices: 9, Seed: 5}); err != nil {
		t.Fatal(err)
	}
	phases := map[string]string{}
	list, _ := w.tr.Entities(w.env.ID, tribesim.SetInvoicePhase)
	for _, p := range list {
		phases[field(p, "ID")] = field(p, "Code")
	}
	inPhase := func(code string) func(map[string]any) bool {
		return func(e map[string]any) bool {
			ph, _ := e["Phase"].(map[string]any)
			return ph != nil && phases[field(ph, "ID")] == code
		}
	}
	if w.first(tribesim.SetInvoice, inPhase("Sent")) == "" {
		t.Fatal("no generated invoice is Sent")
	}

	// The first scan of the tenant, at 10:30 (at activation), publishes nothing and starts its
	// cursor there: what changed before koppel was activated is not koppel's to book.
	w.clock.set(time.Date(2026, 11, 25, 10, 30, 0, 0, time.UTC))
	run := w.scan()
	if got, _ := w.published(); len(got) != 0 || run.GetDone() != 0 {
		t.Fatalf("first scan read %d and published %v; want nothing", run.GetDone(), got)
	}
	if c := w.cursor(bus.EntityOrganization); c != "2026-11-25T10:30:00Z" {
		t.Fatalf("cursor after the first scan = %q, want 10:30", c)
	}

	// At 10:40 a Tribe user edits an organisation, a person, a person's customer relationship and
	// a draft invoice, and sends another draft; their webhooks are lost.
	w.clock.set(time.Date(2026, 11, 25, 10, 40, 0, 0, time.UTC))
	org := w.first(tribesim.SetOrganization, func(e map[string]any) bool { return field(e, "ID") != w.env.OwnOrganizationID })
	person := w.first(tribesim.SetPerson, func(map[string]any) bool { return true })
	rel := w.first(tribesim.SetPersonCustomer, func(map[string]any) bool { return true })
	drafts := []string{}
	all, _ := w.tr.Entities(w.env.ID, tribesim.SetInvoice)
	for _, inv := range all {
		if inPhase("Draft")(inv) {
			drafts = append(drafts, field(inv, "ID"))
		}
	}
	if len(drafts) < 2 {
		t.Fatalf("%d draft invoices generated, want 2", len(drafts))
	}
	w.write(tribesim.SetOrganization, org, map[string]any{"PhoneNumber": "020-5550100"})
	w.write(tribesim.SetPerson, person, map[string]any{"PhoneNumber": "06-12345678"})
	w.write(tribesim.SetPersonCustomer, rel, map[string]any{"PaymentTermInDays": 21})
	w.write(tribesim.SetInvoice, drafts[0], map[string]any{"Subject": "still a draft"})
	if err := w.tr.MoveInvoiceToPhase(w.env.ID, drafts[1], "Sent"); err != nil {
		t.Fatal(err)
	}

	w.clock.set(time.Date(2026, 11, 25, 10, 45, 0, 0, time.UTC))
	run = w.scan()
	got, ids := w.published()
	want := []string{bus.EntityOrganization + "/" + org, bus.EntityPerson + "/" + person, bus.EntityPersonCustomer + "/" + rel, bus.EntityInvoice + "/" + drafts[1]}
	if !slices.Equal(got, want) {
		t.Fatalf("published %v, want %v (not the draft, nothing of 10:00)", got, want)
	}
	nanos := time.Date(2026, 11, 25, 10, 40, 0, 0, time.UTC).UnixNano()
	if wantID := fmt.Sprintf("tribe-scan:acme:%s:%s:%d", bus.EntityOrganization, org, nanos); ids[0] != wantID {
		t.Fatalf("message ID %q, want %q", ids[0], wantID)
	}
	if run.GetDone() != 4 || run.GetMessage() != "published 4: 1 organisations, 1 persons, 1 person customer relationships, 1 sent invoices" {
		t.Fatalf("run done %d, message %q", run.GetDone(), run.GetMessage())
	}
	if c := w.cursor(bus.EntityOrganization); c != "2026-11-25T10:40:00Z" {
		t.Fatalf("organisation cursor = %q, want the newest change, 10:40", c)
	}
	if c := w.cursor(bus.EntityInvoice); c != "2026-11-25T10:40:00Z" {
		t.Fatalf("invoice cursor = %q, want 10:40", c)
	}

	// Scanning again reads the same records (the overlap reaches back before 10:40) and publishes
	// nothing new: the message IDs collapse on the bus.
	run = w.scan()
	if again, _ := w.published(); len(again) != len(want) {
		t.Fatalf("a second scan published again: %v", again)
	}
	if run.GetDone() != 4 || run.GetMessage() != "published 0; 4 were on the bus already" {
		t.Fatalf("second scan: done %d, message %q", run.GetDone(), run.GetMessage())
	}

	// A change at 11:00 is published, and moves the cursor on: a scan after it no longer reads the
	// changes of 10:40.
	w.clock.set(time.Date(2026, 11, 25, 11, 0, 0, 0, time.UTC))
	w.write(tribesim.SetOrganization, org, map[string]any{"Website": "www.example.nl"})
	w.scan()
	got, _ = w.published()
	if len(got) != len(want)+1 || got[len(got)-1] != bus.EntityOrganization+"/"+org {
		t.Fatalf("after the change of 11:00: %v", got)
	}
	w.clock.set(time.Date(2026, 11, 25, 11, 15, 0, 0, time.UTC))
	w.write(tribesim.SetPerson, person, map[string]any{"PhoneNumber": "06-87654321"})
	w.write(tribesim.SetInvoice, drafts[0], map[string]any{"Subject": "draft again"})
	w.clock.set(time.Date(2026, 11, 25, 11, 20, 0, 0, time.UTC))
	run = w.scan()
	// Read: the person of 11:15, and the newest change of each other set again (within the
	// overlap of its cursor), already on the bus; not the draft.
	if run.GetDone() != 4 || run.GetMessage() != "published 1: 1 persons; 3 were on the bus already" {
		t.Fatalf("scan at 11:20: done %d, message %q", run.GetDone(), run.GetMessage())
	}
}

// Many records changed in one instant (an import writes hundreds a second, and Tribe's dates
// have whole seconds) are all read, over several pages, each once.
func TestTribeScanReadsEveryRecordOfOneInstant(t *testing.T) {
	w := newScanWorld(t)
	w.clock.set(time.Date(2026, 11, 25, 10, 45, 0, 0, time.UTC))
	w.scan() // the first scan starts the cursors
	w.clock.set(time.Date(2026, 11, 25, 10, 50, 0, 0, time.UTC))
	if err := w.tr.Generate(w.env.ID, tribesim.GenerateSpec{Organizations: 230, Seed: 8}); err != nil {
		t.Fatal(err)
	}
	w.clock.set(time.Date(2026, 11, 25, 11, 0, 0, 0, time.UTC))
	run := w.scan()
	got, _ := w.published()
	orgs, _ := w.tr.Entities(w.env.ID, tribesim.SetOrganization)
	seen := map[string]int{}
	for _, c := range got {
		seen[c]++
	}
	n := 0
	for _, o := range orgs {
		if field(o, "ID") == w.env.OwnOrganizationID {
			continue
		}
		n++
		if k := bus.EntityOrganization + "/" + field(o, "ID"); seen[k] != 1 {
			t.Fatalf("%s published %d times", k, seen[k])
		}
	}
	if n != 230 || run.GetDone() != int64(len(got)) {
		t.Fatalf("%d organisations, %d read, %d published", n, run.GetDone(), len(got))
	}
}
