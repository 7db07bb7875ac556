package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/koppel/koppel/pkg/adminapi"
	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/invoiceretry"
	"github.com/koppel/koppel/pkg/mapping"
	eventsv1 "github.com/koppel/koppel/proto/koppel/events/v1"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
)

const (
	invoiceA = "0b4c3f7e-5a51-4f39-9c0e-2a8b6c1d9e01"
	invoiceB = "0b4c3f7e-5a51-4f39-9c0e-2a8b6c1d9e02"
)

// invoiceChanges reads the invoice changes of the tenant on the bus (all of them, oldest first).
func (e *activationEnv) invoiceChanges(t *testing.T) []*eventsv1.TribeChange {
	t.Helper()
	ctx := context.Background()
	filter := "tribe.evt." + e.tenantID + "." + bus.EntityInvoice
	s, err := e.js.Stream(ctx, bus.StreamTribeEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range info.State.Subjects {
		n += int(c)
	}
	if n == 0 {
		return nil
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var out []*eventsv1.TribeChange
	for m := range batch.Messages() {
		ch := &eventsv1.TribeChange{}
		if err := proto.Unmarshal(m.Data(), ch); err != nil {
			t.Fatal(err)
		}
		out = append(out, ch)
	}
	return out
}

func (e *activationEnv) recordIssue(t *testing.T, issue *mappingv1.Issue) {
	t.Helper()
	if _, err := e.m.Client.RecordIssue(context.Background(), &mappingv1.RecordIssueRequest{TenantId: e.tenantID, Issue: issue}); err != nil {
		t.Fatal(err)
	}
}

func waitingIssue(id, retryOn string) *mappingv1.Issue {
	return &mappingv1.Issue{Key: "invoice/" + id + "/booking", Code: "unmapped_vat_group", Kind: "invoice", EntityId: id,
		Message: "Invoice " + id + " was not booked.", Action: "Link it.", Details: map[string]string{invoiceretry.DetailRetryOn: retryOn}}
}

// An operator pushes an invoice that failed once: each push is a new change on the bus for the
// invoice flow, and the answer says how the invoice stood before.
func TestPushInvoice(t *testing.T) {
	e := newActivationEnv(t)
	e.recordIssue(t, waitingIssue(invoiceA, invoiceretry.RetryOnManual))
	var st adminapi.InvoiceState
	if status, ae := e.call("POST", "/invoices/"+invoiceA+"/push", nil, &st); status != 202 {
		t.Fatalf("push: %d %+v", status, ae)
	}
	if st.Booked || st.ID != invoiceA || len(st.Issues) == 0 {
		t.Fatalf("push answer %+v", st)
	}
	if status, _ := e.call("POST", "/invoices/"+invoiceA+"/push", nil, nil); status != 202 {
		t.Fatalf("second push: %d", status)
	}
	got := e.invoiceChanges(t)
	if len(got) != 2 || got[0].GetEntityId() != invoiceA || got[1].GetEntityId() != invoiceA || got[0].GetEventKey() == got[1].GetEventKey() {
		t.Fatalf("changes on the bus %v: want two pushes of %s", got, invoiceA)
	}
	if status, ae := e.call("POST", "/invoices/not-a-guid/push", nil, nil); status != 400 || ae.Field != "id" {
		t.Fatalf("bad ID: %d %+v", status, ae)
	}
	e.tenantID = "nobody"
	if status, _ := e.call("POST", "/invoices/"+invoiceA+"/push", nil, nil); status != 404 {
		t.Fatalf("unknown tenant: %d", status)
	}
}

// GET tells whether an invoice is booked, as what, and which issues it has.
func TestGetInvoice(t *testing.T) {
	e := newActivationEnv(t)
	var st adminapi.InvoiceState
	if status, ae := e.call("GET", "/invoices/"+invoiceA, nil, &st); status != 200 || st.Booked || len(st.Issues) != 0 {
		t.Fatalf("unknown invoice: %d %+v %+v", status, ae, st)
	}
	e.recordIssue(t, waitingIssue(invoiceA, invoiceretry.RetryOnLinks))
	e.recordIssue(t, waitingIssue(invoiceB, invoiceretry.RetryOnLinks))
	if status, _ := e.call("GET", "/invoices/"+invoiceA, nil, &st); status != 200 || len(st.Issues) != 1 || st.Issues[0].Code != "unmapped_vat_group" {
		t.Fatalf("waiting invoice: %d %+v", status, st)
	}
	if _, err := e.m.Client.CreateLink(context.Background(), &mappingv1.CreateLinkRequest{TenantId: e.tenantID, Kind: "invoice", TribeId: invoiceB,
		EboekhoudenId: "4711", Record: []byte(`{"number":"202600042"}`)}); err != nil {
		t.Fatal(err)
	}
	if status, _ := e.call("GET", "/invoices/"+invoiceB, nil, &st); status != 200 || !st.Booked || st.EBoekhoudenID != "4711" || st.Number != "202600042" {
		t.Fatalf("booked invoice: %d %+v", status, st)
	}
}

// The bookkeeper links the VAT group an invoice waited for: storing the links pushes that
// invoice (and only the invoices that wait for links), once however often the links are stored.
func TestStoringLinksPushesTheInvoicesWaitingOnThem(t *testing.T) {
	e := newActivationEnv(t)
	if status, ae := e.call("PUT", "/credentials", e.credentials(), nil); status != 200 {
		t.Fatalf("credentials: %d %+v", status, ae)
	}
	e.recordIssue(t, waitingIssue(invoiceA, invoiceretry.RetryOnLinks))
	e.recordIssue(t, waitingIssue(invoiceB, invoiceretry.RetryOnCustomer))
	var cfg Configuration
	e.call("GET", "/configuration", nil, &cfg)
	l := &Links{DebtorLedger: "1300", InvoiceTemplate: cfg.InvoiceTemplates[0].ID,
		RevenueLedgers: map[string]string{"HIGH": "8000", "LOW": "8000"}, VATCodes: map[string]string{"HIGH": "HOOG_VERK_21", "LOW": "LAAG_VERK_9"}}
	for range 2 {
		var out struct {
			InvoicesRetried int `json:"invoices_retried"`
		}
		if status, ae := e.call("PUT", "/links", l, &out); status != 200 || out.InvoicesRetried != 1 {
			t.Fatalf("links: %d %+v, %d invoices retried", status, ae, out.InvoicesRetried)
		}
	}
	got := e.invoiceChanges(t)
	if len(got) != 1 || got[0].GetEntityId() != invoiceA {
		t.Fatalf("changes on the bus %v: want one push of %s", got, invoiceA)
	}
}

// Replaying (or dropping) a dead letter closes the issue that told of it.
func TestReplayResolvesTheDeadLetterIssue(t *testing.T) {
	e := newActivationEnv(t)
	ctx := context.Background()
	c, err := bus.EnsureConsumer(ctx, e.js, bus.ConsumerSpec{Stream: bus.StreamTribeEvents, Durable: "test",
		FilterSubjects: []string{"tribe.evt.*." + bus.EntityPerson}, MaxDeliver: 1})
	if err != nil {
		t.Fatal(err)
	}
	w, err := bus.NewWorker(e.js, c, "test", func(context.Context, *bus.Msg) error { return errors.New("e-Boekhouden 500") },
		bus.ConsumerOptions{MaxDeliver: 1, Issues: mapping.IssueRecorder{Client: e.m.Client}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	for _, id := range []string{"p1", "p2"} {
		if _, err := bus.NewPublisher(e.js).Publish(ctx, "tribe.evt.acme."+bus.EntityPerson, &eventsv1.TribeChange{TenantId: "acme", Entity: bus.EntityPerson, EntityId: id}, "evt-"+id); err != nil {
			t.Fatal(err)
		}
	}
	issues := func() []*mappingv1.Issue {
		res, err := e.m.Client.ListIssues(ctx, &mappingv1.ListIssuesRequest{TenantId: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		return res.GetIssues()
	}
	waitUntil(t, "two dead-letter issues", func() bool { return len(issues()) == 2 })
	stop()
	var seqs []uint64
	for _, i := range issues() {
		n, err := strconv.ParseUint(i.GetDetails()[bus.DetailDeadLetter], 10, 64)
		if err != nil || i.GetCode() != bus.IssueDeadLettered {
			t.Fatalf("dead-letter issue %v", i)
		}
		seqs = append(seqs, n)
	}
	first, second := seqs[0], seqs[1]
	call := func(method, path string) int {
		t.Helper()
		req, _ := http.NewRequest(method, e.gw.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := call("POST", "/admin/v1/deadletters/"+strconv.FormatUint(first, 10)+"/replay"); s != 204 {
		t.Fatalf("replay: %d", s)
	}
	if s := call("DELETE", "/admin/v1/deadletters/"+strconv.FormatUint(second, 10)); s != 204 {
		t.Fatalf("drop: %d", s)
	}
	if left := issues(); len(left) != 0 {
		t.Fatalf("issues left after replay and drop: %v", left)
	}
}
