package main

import (
	"fmt"
	"maps"

	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/invoicelink"
	"github.com/koppel/koppel/pkg/invoiceretry"
	eventsv1 "github.com/koppel/koppel/proto/koppel/events/v1"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"google.golang.org/protobuf/proto"
)

// Issue codes of the invoice flow. Every one but codeTotalsDiffer means the invoice is not
// booked; its details say what brings it back (invoiceretry.DetailRetryOn).
const (
	codeNoCustomer          = "no_customer"
	codeCustomerNotInBooks  = "customer_not_in_books"
	codeCustomerNotSynced   = "customer_not_synced"
	codeNoPaymentTerm       = "no_payment_term"
	codeNoInvoiceDate       = "no_invoice_date"
	codeNotConfigured       = "not_configured"
	codeUnmappedVATGroup    = "unmapped_vat_group"
	codeAmbiguousVAT        = "ambiguous_vat"
	codeVATRateDiffers      = "vat_rate_differs"
	codeUnsupportedCurrency = "unsupported_currency"
	codeNoLines             = "no_lines"
	codeTotalsDiffer        = "totals_differ"
	codeRejected            = "invoice_rejected"
)

// bookingKey is the one issue of an invoice that is not booked: whatever stops it now replaces
// what stopped it before, and booking it resolves it.
func bookingKey(id string) string { return "invoice/" + id + "/booking" }

// totalsKey is the issue of a booked invoice whose totals differ from Tribe's.
func totalsKey(id string) string { return "invoice/" + id + "/" + codeTotalsDiffer }

// pushCommand is how an operator pushes one invoice again.
func pushCommand(tenant, id string) string {
	return fmt.Sprintf("koppelctl invoices push %s %s", tenant, id)
}

// notBooked is the issue of an invoice that was not booked. The action says what to fix; the
// text appended says how the invoice comes back once it is fixed, by itself or by a push.
func notBooked(tenant, id, number, code, message, action, retryOn string, details map[string]string) *mappingv1.Issue {
	d := map[string]string{invoiceretry.DetailRetryOn: retryOn, "number": number}
	maps.Copy(d, details)
	switch retryOn {
	case invoiceretry.RetryOnLinks:
		action += " Invoices waiting for the links are booked by themselves once the links are stored; or push this one: " + pushCommand(tenant, id) + "."
	case invoiceretry.RetryOnCustomer:
		action += " The invoice is booked by itself once the customer is in e-Boekhouden; or push it: " + pushCommand(tenant, id) + "."
	default:
		action += " Then push it again: " + pushCommand(tenant, id) + "."
	}
	return &mappingv1.Issue{Key: bookingKey(id), Code: code, Kind: invoicelink.Kind, EntityId: id,
		Message: fmt.Sprintf("Invoice %s was not booked: %s", orID(number, id), message), Action: action, Details: d}
}

func orID(number, id string) string {
	if number != "" {
		return number
	}
	return id
}

// describe names the invoice of a dead-lettered message, so its issue is the invoice's booking
// issue (resolved when the invoice is booked, shown by GET .../invoices/{id}).
func describe(m *bus.Msg) *mappingv1.Issue {
	change := &eventsv1.TribeChange{}
	if err := proto.Unmarshal(m.Data, change); err != nil || change.GetEntityId() == "" || !bus.ValidTenantID(change.GetTenantId()) {
		return nil
	}
	id := change.GetEntityId()
	return &mappingv1.Issue{Key: bookingKey(id), Kind: invoicelink.Kind, EntityId: id,
		Message: "Invoice " + id, Action: "Fix the cause (see the reason), then push it again: " + pushCommand(change.GetTenantId(), id) + ".",
		Details: map[string]string{invoiceretry.DetailRetryOn: invoiceretry.RetryOnManual}}
}
