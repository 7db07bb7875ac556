package eboekhouden_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koppel/koppel/pkg/apicall"
	eb "github.com/koppel/koppel/pkg/eboekhouden"
	"github.com/koppel/koppel/services/sandbox/ebsim"
	"github.com/prometheus/client_golang/prometheus"
)

type fixture struct {
	sim    *ebsim.Simulator
	srv    *httptest.Server
	adm    ebsim.AdminInfo
	client *eb.Client
}

func setup(t testing.TB, opt ebsim.Options, spec ebsim.AdminSpec, copts ...eb.Option) *fixture {
	t.Helper()
	sim := ebsim.New(opt)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	adm, err := sim.CreateAdministration(spec)
	if err != nil {
		t.Fatal(err)
	}
	caller, err := apicall.New("eboekhouden", apicall.WithRegisterer(prometheus.NewRegistry()),
		apicall.WithBackoff(time.Millisecond, 5*time.Millisecond), apicall.WithMaxAttempts(4))
	if err != nil {
		t.Fatal(err)
	}
	c, err := eb.New(adm.AccessToken, "koppel", append([]eb.Option{eb.WithBaseURL(srv.URL), eb.WithCaller(caller), eb.WithPageSize(50)}, copts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return &fixture{sim, srv, adm, c}
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestInvalidSourceRefusedBeforeSending(t *testing.T) {
	for _, src := range []string{"", "this is too long", "bad-char"} {
		if _, err := eb.New("tok", src); !errors.Is(err, eb.ErrInvalidSource) {
			t.Errorf("source %q: err = %v", src, err)
		}
	}
}

func TestSessionUnknownTokenIsForbidden(t *testing.T) {
	f := setup(t, ebsim.Options{}, ebsim.AdminSpec{})
	c, _ := eb.New("nope", "koppel", eb.WithBaseURL(f.srv.URL))
	_, err := c.ListRelations(ctx(t), eb.Page{})
	var ae *eb.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 403 || !errors.Is(err, eb.ErrForbidden) || eb.IsRetryable(err) {
		t.Fatalf("err = %v", err)
	}
}

func TestSessionExpiredTokenAndReCreateOn401(t *testing.T) {
	f := setup(t, ebsim.Options{SessionTTL: 2 * time.Second}, ebsim.AdminSpec{Relations: 3})
	c := ctx(t)
	if _, err := f.client.ListRelations(c, eb.Page{}); err != nil {
		t.Fatal(err)
	}
	// The server's clock moves past the session's end; the client still believes it valid.
	f.sim.Advance(3 * time.Second)
	if _, err := f.client.ListRelations(c, eb.Page{}); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if got := f.sim.Stats()["POST /v1/session"]; got != 2 {
		t.Errorf("sessions opened = %d, want 2", got)
	}
	// A forced 401 is retried once with a new session...
	f.sim.SetFaults(f.adm.ID, ebsim.Faults{Next401: 1})
	if _, err := f.client.ListRelations(c, eb.Page{}); err != nil {
		t.Fatalf("after forced 401: %v", err)
	}
	// ...but two in a row surface as ErrUnauthorized (retryable: a race with expiry).
	f.sim.SetFaults(f.adm.ID, ebsim.Faults{Next401: 2})
	_, err := f.client.ListRelations(c, eb.Page{})
	if !errors.Is(err, eb.ErrUnauthorized) || !eb.IsRetryable(err) {
		t.Fatalf("err = %v", err)
	}
}

func TestSessionRefreshedBeforeExpiryAndSharedByConcurrentCalls(t *testing.T) {
	var clock atomic.Int64
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	f := setup(t, ebsim.Options{SessionTTL: time.Hour, RejectBearer: false}, ebsim.AdminSpec{Relations: 5},
		eb.WithClock(now), eb.WithBearer(true))
	c := ctx(t)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := f.client.ListRelations(c, eb.Page{}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := f.sim.Stats()["POST /v1/session"]; got != 1 {
		t.Fatalf("concurrent calls opened %d sessions, want 1", got)
	}
	clock.Add(int64(59 * time.Minute)) // inside the refresh margin
	if _, err := f.client.ListRelations(c, eb.Page{}); err != nil {
		t.Fatal(err)
	}
	if got := f.sim.Stats()["POST /v1/session"]; got != 2 {
		t.Fatalf("sessions = %d, want a proactive refresh", got)
	}
	if err := f.client.Close(c); err != nil {
		t.Fatal(err)
	}
	if got := f.sim.Stats()["DELETE /v1/session"]; got != 1 {
		t.Fatalf("DELETE /v1/session = %d", got)
	}
	if _, err := f.client.ListRelations(c, eb.Page{}); !errors.Is(err, eb.ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
}

func TestPagingIgnoresCount(t *testing.T) {
	for _, mode := range []ebsim.CountMode{ebsim.CountPage, ebsim.CountTotal} {
		f := setup(t, ebsim.Options{Count: mode}, ebsim.AdminSpec{Relations: 120})
		all, err := eb.Collect(f.client.Relations(ctx(t)))
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 120 {
			t.Fatalf("count mode %v: got %d relations, want 120", mode, len(all))
		}
		seen := map[int64]bool{}
		for _, r := range all {
			if seen[r.ID] {
				t.Fatalf("duplicate id %d", r.ID)
			}
			seen[r.ID] = true
		}
		// 50 + 50 + 20: three list calls, the short page ends it.
		if got := f.sim.Stats()["GET /v1/relation"]; got != 3 {
			t.Errorf("list calls = %d, want 3", got)
		}
	}
}

func TestPageErrors(t *testing.T) {
	f := setup(t, ebsim.Options{}, ebsim.AdminSpec{})
	if _, err := f.client.ListRelations(ctx(t), eb.Page{Limit: 2001}); !errors.Is(err, eb.ErrBadFilter) {
		t.Fatalf("client-side check: %v", err)
	}
}

func TestFiltersAndRelationCRUD(t *testing.T) {
	f := setup(t, ebsim.Options{}, ebsim.AdminSpec{Relations: 30})
	c := ctx(t)
	created, err := f.client.CreateRelation(c, eb.Relation{Name: "Acme 100% B.V.", Code: "ACME-1", City: "Zwolle",
		EmailAddress: "info@acme.nl", IBAN: "NL91ABNA0417164300", Type: eb.RelationBusiness})
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.client.FindRelationByCode(c, "ACME-1")
	if err != nil || got.ID != created.ID {
		t.Fatalf("find by code: %+v, %v", got, err)
	}
	items, err := f.client.ListRelations(c, eb.Page{Limit: 100}, eb.Like("name", "acme%"))
	if err != nil || len(items) != 1 || items[0].ID != created.ID {
		t.Fatalf("like: %+v, %v", items, err)
	}
	items, err = f.client.ListRelations(c, eb.Page{Limit: 100}, eb.Eq("city", "Zwolle"), eb.Eq("type", "B"))
	if err != nil || len(items) == 0 {
		t.Fatalf("eq city: %+v, %v", items, err)
	}
	updated, err := f.client.UpdateRelation(c, created.ID, func(r *eb.Relation) error {
		r.PhoneNumber = "038-1234567"
		return nil
	})
	if err != nil || updated.Name != "Acme 100% B.V." {
		t.Fatalf("update: %+v, %v", updated, err)
	}
	r, err := f.client.GetRelation(c, created.ID)
	if err != nil || r.PhoneNumber != "038-1234567" || r.City != "Zwolle" || r.Date.IsZero() {
		t.Fatalf("after update: %+v, %v", r, err)
	}
	// Clearing a field reaches the server although PATCH may keep omitted fields.
	if _, err := f.client.UpdateRelation(c, created.ID, func(r *eb.Relation) error { r.PhoneNumber = ""; return nil }); err != nil {
		t.Fatal(err)
	}
	if r, _ := f.client.GetRelation(c, created.ID); r.PhoneNumber != "" || r.City != "Zwolle" {
		t.Fatalf("after clearing the phone: %+v", r)
	}
	// Errors: duplicate code, missing name, not found.
	_, err = f.client.CreateRelation(c, eb.Relation{Name: "Other", Code: "acme-1"})
	var ae *eb.APIError
	if !errors.As(err, &ae) || ae.Code != "REL_049" || !eb.IsConflict(err) || eb.IsRetryable(err) {
		t.Fatalf("duplicate: %v", err)
	}
	_, err = f.client.CreateRelation(c, eb.Relation{})
	if !errors.As(err, &ae) || ae.Code != "REL_002" || ae.PropertyName != "name" {
		t.Fatalf("no name: %v", err)
	}
	_, err = f.client.GetRelation(c, 1)
	if !eb.IsNotFound(err) || !errors.As(err, &ae) || ae.Code != "REL_055" {
		t.Fatalf("not found: %v", err)
	}
	if _, err := f.client.FindRelationByCode(c, "NOPE"); !eb.IsNotFound(err) {
		t.Fatalf("find missing: %v", err)
	}
	gen, err := f.client.CreateRelation(c, eb.Relation{Name: "Generated"})
	if err != nil || gen.Code == "" {
		t.Fatalf("generated code: %+v %v", gen, err)
	}
}

func TestProductsAndReferenceData(t *testing.T) {
	f := setup(t, ebsim.Options{}, ebsim.AdminSpec{Products: 60})
	c := ctx(t)
	products, err := eb.Collect(f.client.Products(c))
	if err != nil || len(products) != 60 {
		t.Fatalf("products: %d, %v", len(products), err)
	}
	p, err := f.client.GetProduct(c, products[0].ID)
	if err != nil || p.PriceExcl == nil || p.VAT == "" || p.LedgerID == 0 {
		t.Fatalf("product: %+v, %v", p, err)
	}
	ledgers, err := eb.Collect(f.client.Ledgers(c))
	if err != nil || len(ledgers) < 10 {
		t.Fatalf("ledgers: %v", err)
	}
	revenue := findLedger(t, ledgers, "8000")
	price, _ := eb.NewAmount("12.50")
	id, err := f.client.CreateProduct(c, eb.Product{Code: "X1", Description: "Test", VAT: eb.VATHighSale21, LedgerID: revenue.ID, PriceExcl: &price})
	if err != nil || id == 0 {
		t.Fatalf("create product: %v", err)
	}
	_, err = f.client.CreateProduct(c, eb.Product{Code: "X2", Description: "Test", VAT: eb.VATHighPurch21, LedgerID: revenue.ID, PriceExcl: &price})
	var ae *eb.APIError
	if !errors.As(err, &ae) || ae.Code != "ART_023" {
		t.Fatalf("purchase VAT on product: %v", err)
	}
	for name, n := range map[string]func() (int, error){
		"units":     func() (int, error) { v, err := eb.Collect(f.client.Units(c)); return len(v), err },
		"templates": func() (int, error) { v, err := eb.Collect(f.client.InvoiceTemplates(c)); return len(v), err },
		"email":     func() (int, error) { v, err := eb.Collect(f.client.EmailTemplates(c)); return len(v), err },
		"costs":     func() (int, error) { v, err := eb.Collect(f.client.CostCenters(c)); return len(v), err },
		"groups":    func() (int, error) { v, err := f.client.ProductGroups(c); return len(v), err },
		"linked":    func() (int, error) { v, err := eb.Collect(f.client.LinkedAdministrations(c)); return len(v), err },
	} {
		if got, err := n(); err != nil || got == 0 {
			t.Errorf("%s: %d, %v", name, got, err)
		}
	}
}

func findLedger(t *testing.T, ls []eb.Ledger, code string) eb.Ledger {
	t.Helper()
	for _, l := range ls {
		if l.Code == code {
			return l
		}
	}
	t.Fatalf("no ledger %s", code)
	return eb.Ledger{}
}

func TestInvoiceOpenItemAndPartialPayments(t *testing.T) {
	f := setup(t, ebsim.Options{}, ebsim.AdminSpec{})
	c := ctx(t)
	ledgers, _ := eb.Collect(f.client.Ledgers(c))
	templates, _ := eb.Collect(f.client.InvoiceTemplates(c))
	rel, err := f.client.CreateRelation(c, eb.Relation{Name: "Klant B.V."})
	if err != nil {
		t.Fatal(err)
	}
	q, _ := eb.NewQuantity("2")
	price, _ := eb.NewAmount("95.00")
	inv := eb.NewInvoice{RelationID: rel.ID, TermOfPayment: 14, TemplateID: templates[0].ID, Date: eb.NewDate(2026, 3, 1),
		Items:    []eb.InvoiceItem{{Quantity: q, Description: "Consultancy", PricePerUnit: price, VATCode: eb.VATHighSale21, LedgerID: findLedger(t, ledgers, "8000").ID}},
		Mutation: &eb.InvoiceMutation{LedgerID: findLedger(t, ledgers, "1300").ID, Description: "Factuur"}}
	created, err := f.client.CreateInvoice(c, inv)
	if err != nil || created.InvoiceNumber == "" {
		t.Fatalf("create invoice: %+v, %v", created, err)
	}
	got, err := f.client.GetInvoice(c, created.ID)
	if err != nil || got.TotalAmount.String() != "229.9" || len(got.Items) != 1 {
		t.Fatalf("invoice: %+v, %v", got, err)
	}
	// Same number again: FACT_101.
	inv.InvoiceNumber = created.InvoiceNumber
	if _, err := f.client.CreateInvoice(c, inv); !eb.IsConflict(err) {
		t.Fatalf("duplicate number: %v", err)
	}
	open, err := eb.Collect(f.client.Outstanding(c, eb.Debtors, eb.Eq("invoiceNumber", created.InvoiceNumber)))
	if err != nil || len(open) != 1 || open[0].OutstandingAmount.String() != "229.9" {
		t.Fatalf("outstanding: %+v, %v", open, err)
	}
	// Partial payment through the API, the rest as the bookkeeper's bank statement.
	hundred, _ := eb.NewAmount("100")
	_, err = f.client.CreateMutation(c, eb.NewMutation{Type: eb.MutationInvoicePaymentReceived, Date: eb.NewDate(2026, 3, 10),
		LedgerID: findLedger(t, ledgers, "1100").ID, RelationID: rel.ID,
		Rows: []eb.MutationRow{{VATCode: eb.VATNone, Amount: hundred, InvoiceNumber: created.InvoiceNumber, RelationID: rel.ID}}})
	if err != nil {
		t.Fatal(err)
	}
	open, _ = eb.Collect(f.client.Outstanding(c, eb.Debtors))
	if len(open) != 1 || open[0].PaidAmount.String() != "100" || open[0].OutstandingAmount.String() != "129.9" {
		t.Fatalf("after partial payment: %+v", open)
	}
	if _, err := f.sim.BookPayment(f.adm.ID, ebsim.Payment{InvoiceNumber: created.InvoiceNumber}); err != nil {
		t.Fatal(err)
	}
	open, _ = eb.Collect(f.client.Outstanding(c, eb.Debtors))
	if len(open) != 0 {
		t.Fatalf("paid item still listed: %+v", open)
	}
	muts, err := eb.Collect(f.client.Mutations(c, eb.Eq("type", eb.MutationInvoicePaymentReceived)))
	if err != nil || len(muts) != 2 {
		t.Fatalf("payment mutations: %+v %v", muts, err)
	}
	m, err := f.client.GetMutation(c, muts[1].ID)
	if err != nil || m.Rows[0].InvoiceNumber != created.InvoiceNumber || m.Rows[0].Amount.String() != "129.9" {
		t.Fatalf("payment detail: %+v %v", m, err)
	}
	all, _ := eb.Collect(f.client.Mutations(c))
	if all[0].ID != 0 || all[0].Type != eb.MutationOpeningBalance {
		t.Fatalf("first mutation is not the opening balance: %+v", all[0])
	}
	// Inactive relation: FACT_003.
	if _, err := f.client.UpdateRelation(c, rel.ID, func(r *eb.Relation) error { r.Inactive = true; return nil }); err != nil {
		t.Fatal(err)
	}
	inv.InvoiceNumber = ""
	var ae *eb.APIError
	if _, err := f.client.CreateInvoice(c, inv); !errors.As(err, &ae) || ae.Code != "FACT_003" {
		t.Fatalf("inactive relation: %v", err)
	}
}

func TestRetriesInjectedFaults(t *testing.T) {
	f := setup(t, ebsim.Options{}, ebsim.AdminSpec{Relations: 5})
	c := ctx(t)
	f.sim.SetFaults(f.adm.ID, ebsim.Faults{Next429: 1, RetryAfter: ebsim.Duration(time.Millisecond)})
	if _, err := f.client.ListRelations(c, eb.Page{}); err != nil {
		t.Fatalf("429: %v", err)
	}
	f.sim.SetFaults(f.adm.ID, ebsim.Faults{Next5xx: 2})
	if _, err := f.client.ListRelations(c, eb.Page{}); err != nil {
		t.Fatalf("5xx: %v", err)
	}
	f.sim.SetFaults(f.adm.ID, ebsim.Faults{NextDrop: 1})
	if _, err := f.client.ListRelations(c, eb.Page{}); err != nil {
		t.Fatalf("dropped connection on GET: %v", err)
	}
	f.sim.SetFaults(f.adm.ID, ebsim.Faults{Next5xx: 10})
	_, err := f.client.ListRelations(c, eb.Page{})
	var ae *eb.APIError
	if !errors.As(err, &ae) || ae.Code != "ERR_001" || !eb.IsRetryable(err) {
		t.Fatalf("persistent 5xx: %v", err)
	}
	f.sim.SetFaults(f.adm.ID, ebsim.Faults{Next429: 1, RetryAfter: ebsim.Duration(5 * time.Minute)})
	_, err = f.client.ListRelations(c, eb.Page{})
	if d, ok := eb.RetryAfter(err); !ok || d != 5*time.Minute || !errors.Is(err, eb.ErrRateLimited) {
		t.Fatalf("long Retry-After: %v", err)
	}
}
