package main

import (
	"strings"
	"testing"
	"time"

	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/invoiceretry"
	"github.com/koppel/koppel/pkg/tenantsettings"
	"github.com/koppel/koppel/pkg/tribe"
	eventsv1 "github.com/koppel/koppel/proto/koppel/events/v1"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
)

// invoiceEvents reads every invoice change on the bus (not consuming the stream's messages for
// anyone else), oldest first.
func (w *world) invoiceEvents() []*eventsv1.TribeChange {
	w.t.Helper()
	s, err := w.js.Stream(ctx, bus.StreamTribeEvents)
	if err != nil {
		w.t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter("tribe.evt.*."+bus.EntityInvoice))
	if err != nil {
		w.t.Fatal(err)
	}
	n := 0
	for _, c := range info.State.Subjects {
		n += int(c)
	}
	if n == 0 {
		return nil
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"tribe.evt.*." + bus.EntityInvoice}})
	if err != nil {
		w.t.Fatal(err)
	}
	batch, err := c.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		w.t.Fatal(err)
	}
	var out []*eventsv1.TribeChange
	for m := range batch.Messages() {
		ch := &eventsv1.TribeChange{}
		if err := proto.Unmarshal(m.Data(), ch); err != nil {
			w.t.Fatal(err)
		}
		out = append(out, ch)
	}
	return out
}

// handle handles changes as the invoice worker would: a permanent failure's issue is recorded.
func (w *world) handle(changes []*eventsv1.TribeChange) {
	w.t.Helper()
	for _, ch := range changes {
		err := w.p.push(ctx, w.tenant(), ch)
		if issue, ok := bus.IssueOf(err); ok {
			if _, err := w.m.Client.RecordIssue(ctx, &mappingv1.RecordIssueRequest{TenantId: "acme", Issue: issue}); err != nil {
				w.t.Fatal(err)
			}
			continue
		}
		if err != nil {
			w.t.Fatalf("push %s: %v", ch.GetEntityId(), err)
		}
	}
}

func ids(changes []*eventsv1.TribeChange) []string {
	var out []string
	for _, c := range changes {
		out = append(out, c.GetEntityId())
	}
	return out
}

// A bookkeeper sends two invoices before linking the VAT group they use. Both wait with an
// issue; once the links are stored, both are booked without anyone touching them, and storing
// the links twice pushes each once.
func TestInvoicesWaitingOnLinksAreBookedWhenTheLinksAreStored(t *testing.T) {
	w := newWorld(t)
	low := w.vatGroup("LOW")
	code, ledger := w.tenant().GetSettings().GetLinks()[tenantsettings.VATCodePrefix+low.ID], w.tenant().GetSettings().GetLinks()[tenantsettings.RevenueLedgerPrefix+low.ID]
	w.setLinks(map[string]string{tenantsettings.VATCodePrefix + low.ID: "", tenantsettings.RevenueLedgerPrefix + low.ID: ""})
	a := w.send(draft{lines: []draftLine{{desc: "Boeken", qty: "2", price: "20", vatGroup: "LOW"}}})
	b := w.send(draft{lines: []draftLine{{desc: "Taart", qty: "1", price: "12", vatGroup: "LOW"}}})
	w.linkDebtor(a)
	for _, inv := range []tribe.Invoice{a, b} {
		issue := w.pushFails(inv)
		if issue.GetCode() != "unmapped_vat_group" || issue.GetDetails()[invoiceretry.DetailRetryOn] != invoiceretry.RetryOnLinks ||
			!strings.Contains(issue.GetAction(), "booked by themselves once the links are stored") {
			t.Fatalf("issue %v", issue)
		}
	}
	// An invoice waiting for something else is not pushed when the links change.
	foreign := w.send(draft{currency: "GBP", lines: []draftLine{{qty: "1", price: "1", vatGroup: "HIGH"}}})
	w.pushFails(foreign)

	w.setLinks(map[string]string{tenantsettings.VATCodePrefix + low.ID: code, tenantsettings.RevenueLedgerPrefix + low.ID: ledger})
	for range 2 {
		if _, err := invoiceretry.Retry(ctx, w.m.Client, w.p.pub, "acme", invoiceretry.WaitingOn(invoiceretry.RetryOnLinks)); err != nil {
			t.Fatal(err)
		}
	}
	events := w.invoiceEvents()
	if got := ids(events); len(got) != 2 || !(got[0] == a.ID && got[1] == b.ID || got[0] == b.ID && got[1] == a.ID) {
		t.Fatalf("pushed %v, want %s and %s once each", got, a.ID, b.ID)
	}
	w.handle(events)
	for _, inv := range []tribe.Invoice{a, b} {
		w.bookedInvoice(inv.Number)
		if i := w.issueOf(inv.ID); i != nil {
			t.Fatalf("invoice %s still has issue %s", inv.Number, i.GetCode())
		}
	}
	if w.issueOf(foreign.ID) == nil {
		t.Fatal("the GBP invoice's issue was resolved")
	}
}

// A customer made in Tribe without a debtor number, and automatic numbering off: the relation
// flow will never push it, so the invoice must not wait (and dead-letter) but say so at once,
// and be pushed when that customer gets into e-Boekhouden.
func TestCustomerWithoutDebtorNumberIsAnIssueNotAWait(t *testing.T) {
	w := newWorld(t)
	cust := w.customer()
	if err := w.tr.UpdateOrganization(ctx, cust.Organization.ID, tribe.OrganizationInput{DebtorNumber: ptr("")}); err != nil {
		t.Fatal(err)
	}
	inv := w.send(draft{lines: []draftLine{{qty: "1", price: "100", vatGroup: "HIGH"}}})
	issue := w.pushFails(inv)
	d := issue.GetDetails()
	if issue.GetCode() != "customer_not_in_books" || d[invoiceretry.DetailRetryOn] != invoiceretry.RetryOnCustomer ||
		d[invoiceretry.DetailCustomerKind] != "organization" || d[invoiceretry.DetailCustomerID] != cust.Organization.ID ||
		!strings.Contains(issue.GetAction(), "debtor number") {
		t.Fatalf("issue %v", issue)
	}
	s, _ := w.js.Stream(ctx, bus.StreamTribeEvents)
	if info, _ := s.Info(ctx); info.State.Msgs != 0 {
		t.Fatalf("%d messages published for a customer the relation flow cannot push", info.State.Msgs)
	}

	// The relation flow links the customer (after the user gave it a number) and retries the
	// invoices waiting for it; another customer's are left alone.
	w.linkDebtor(inv)
	pushed, err := invoiceretry.Retry(ctx, w.m.Client, w.p.pub, "acme", invoiceretry.WaitingOnCustomer("person", cust.Organization.ID))
	if err != nil || len(pushed) != 0 {
		t.Fatalf("pushed %v for a person with the organisation's ID: %v", pushed, err)
	}
	if _, err := invoiceretry.Retry(ctx, w.m.Client, w.p.pub, "acme", invoiceretry.WaitingOnCustomer("organization", cust.Organization.ID)); err != nil {
		t.Fatal(err)
	}
	w.handle(w.invoiceEvents())
	w.bookedInvoice(inv.Number)
	if i := w.issueOf(inv.ID); i != nil {
		t.Fatalf("issue %s still open", i.GetCode())
	}
}

// With automatic numbering on, a customer without a number is pushed by the relation flow, so
// the invoice hands it over and waits, as before.
func TestCustomerWithoutNumberIsHandedOverWhenNumberingIsOn(t *testing.T) {
	w := newWorld(t)
	settings := w.tenant().GetSettings()
	settings.AutoDebtorNumbers, settings.DebtorNumberStart = true, 5000
	if _, err := w.m.Client.UpdateTenantSettings(ctx, &mappingv1.UpdateTenantSettingsRequest{TenantId: "acme", Settings: settings}); err != nil {
		t.Fatal(err)
	}
	cust := w.customer()
	if err := w.tr.UpdateOrganization(ctx, cust.Organization.ID, tribe.OrganizationInput{DebtorNumber: ptr("")}); err != nil {
		t.Fatal(err)
	}
	inv := w.send(draft{lines: []draftLine{{qty: "1", price: "100", vatGroup: "HIGH"}}})
	err := w.push(inv.ID)
	if _, ok := bus.RetryDelay(err); !ok || bus.IsPermanent(err) {
		t.Fatalf("push: %v, want a retry", err)
	}
}

// The relation flow could not push the customer (it recorded why): the invoice says so, with the
// customer's reason, instead of retrying until it is dead-lettered.
func TestCustomerTheRelationFlowCannotPushIsAnIssue(t *testing.T) {
	w := newWorld(t)
	cust := w.customer()
	if _, err := w.m.Client.RecordIssue(ctx, &mappingv1.RecordIssueRequest{TenantId: "acme", Issue: &mappingv1.Issue{
		Key: "organization/" + cust.Organization.ID + "/rejected", Code: "relation_rejected", Kind: "organization", EntityId: cust.Organization.ID,
		Message: "e-Boekhouden refused the relation: REL_005 Code is invalid.", Action: "Correct the debtor number in Tribe."}}); err != nil {
		t.Fatal(err)
	}
	inv := w.send(draft{lines: []draftLine{{qty: "1", price: "100", vatGroup: "HIGH"}}})
	issue := w.pushFails(inv)
	if issue.GetCode() != "customer_not_synced" || issue.GetDetails()[invoiceretry.DetailCustomerID] != cust.Organization.ID ||
		!strings.Contains(issue.GetMessage(), "REL_005") || !strings.Contains(issue.GetAction(), "Correct the debtor number") {
		t.Fatalf("issue %v", issue)
	}
}

// Every way an invoice can fail to be booked tells the tenant how it comes back.
func TestEveryInvoiceIssueSaysHowToRetry(t *testing.T) {
	w := newWorld(t)
	noTerm := w.customer()
	if err := w.tr.UpdateRelationship(ctx, tribe.SetOrgCustomer, noTerm.ID, tribe.RelationshipInput{Extra: tribe.Fields{"PaymentTermInDays": nil}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		draft   draft
		links   map[string]string
		code    string
		retryOn string
	}{
		{"no payment term", draft{lines: []draftLine{{qty: "1", price: "10", vatGroup: "HIGH"}}}, nil, "no_payment_term", invoiceretry.RetryOnManual},
		{"no lines", draft{due: ptr(time.Now().AddDate(0, 0, 30))}, nil, "no_lines", invoiceretry.RetryOnManual},
		{"currency", draft{currency: "USD", due: ptr(time.Now().AddDate(0, 0, 30)), lines: []draftLine{{qty: "1", price: "10", vatGroup: "HIGH"}}}, nil,
			"unsupported_currency", invoiceretry.RetryOnManual},
		{"not configured", draft{due: ptr(time.Now().AddDate(0, 0, 30)), lines: []draftLine{{qty: "1", price: "10", vatGroup: "HIGH"}}},
			map[string]string{tenantsettings.DebtorLedger: ""}, "not_configured", invoiceretry.RetryOnLinks},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := w.tenant().GetSettings().GetLinks()
			w.setLinks(c.links)
			defer func() {
				restore := map[string]string{}
				for k := range c.links {
					restore[k] = before[k]
				}
				w.setLinks(restore)
			}()
			inv := w.send(c.draft)
			issue := w.pushFails(inv)
			if issue.GetCode() != c.code || issue.GetDetails()[invoiceretry.DetailRetryOn] != c.retryOn || issue.GetKey() != bookingKey(inv.ID) ||
				!strings.Contains(issue.GetAction(), "koppelctl invoices push acme "+inv.ID) {
				t.Fatalf("issue %v", issue)
			}
		})
	}
}

// A dead-lettered invoice message records the invoice's booking issue; booking the invoice
// (after a push) resolves it.
func TestDeadLetteredInvoiceIssueIsResolvedWhenBooked(t *testing.T) {
	w := newWorld(t)
	inv := w.send(draft{lines: []draftLine{{qty: "1", price: "100", vatGroup: "HIGH"}}})
	data, _ := proto.Marshal(&eventsv1.TribeChange{TenantId: "acme", Entity: bus.EntityInvoice, EntityId: inv.ID})
	issue := bus.DeadLetterIssue(&bus.Msg{Subject: "tribe.evt.acme." + bus.EntityInvoice, Data: data, Delivery: 10}, bus.ConsumerInvoiceEvents, 17,
		"debtor is not in e-Boekhouden yet", describe)
	if _, err := w.m.Client.RecordIssue(ctx, &mappingv1.RecordIssueRequest{TenantId: "acme", Issue: issue}); err != nil {
		t.Fatal(err)
	}
	got := w.issueOf(inv.ID)
	if got == nil || got.GetCode() != bus.IssueDeadLettered || got.GetDetails()[invoiceretry.DetailRetryOn] != invoiceretry.RetryOnManual ||
		!strings.Contains(got.GetAction(), "koppelctl invoices push acme "+inv.ID) || !strings.Contains(got.GetAction(), "koppelctl deadletters replay 17") {
		t.Fatalf("issue %v", got)
	}
	w.linkDebtor(inv)
	if err := w.push(inv.ID); err != nil {
		t.Fatal(err)
	}
	if i := w.issueOf(inv.ID); i != nil {
		t.Fatalf("issue %s still open after booking", i.GetCode())
	}
}
