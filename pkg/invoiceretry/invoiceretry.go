// Package invoiceretry brings back the invoices that wait for something: an invoice the invoice
// flow could not book records an issue whose details say what it waits for (retry_on), and
// whoever fixes that cause calls Retry, which publishes the invoice's change again so the flow
// books it. The gateway calls it when a tenant's links are stored, the relation flow when a
// customer gets into e-Boekhouden, the Tribe scan as a safety net.
package invoiceretry

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/invoicelink"
	eventsv1 "github.com/koppel/koppel/proto/koppel/events/v1"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/nats-io/nuid"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Details of an invoice issue.
const (
	// DetailRetryOn says what brings the invoice back: RetryOnLinks, RetryOnCustomer or
	// RetryOnManual.
	DetailRetryOn = "retry_on"
	// DetailCustomerKind ("organization" or "person") and DetailCustomerID (the Tribe relation
	// ID) name the customer an invoice waits for (RetryOnCustomer).
	DetailCustomerKind = "customer_kind"
	DetailCustomerID   = "customer_id"
)

// What an invoice waits for.
const (
	// RetryOnLinks: the tenant's links (a VAT group without a VAT code or revenue ledger, no
	// debtor ledger or invoice template). Retried when links are stored.
	RetryOnLinks = "links"
	// RetryOnCustomer: the customer is not in e-Boekhouden (no debtor number, or the relation
	// flow could not push it). Retried when that customer is linked.
	RetryOnCustomer = "customer"
	// RetryOnManual: something only a person can fix (e-Boekhouden refused it, no payment term,
	// no lines); they push it again when it is fixed.
	RetryOnManual = "manual"
)

// Predicate picks the invoice issues whose invoices to push again.
type Predicate func(issue *mappingv1.Issue) bool

// WaitingOn picks the invoice issues that wait for retryOn.
func WaitingOn(retryOn string) Predicate {
	return func(i *mappingv1.Issue) bool { return i.GetDetails()[DetailRetryOn] == retryOn }
}

// WaitingOnCustomer picks the invoice issues that wait for one customer (kind "organization" or
// "person", the Tribe relation ID).
func WaitingOnCustomer(kind, tribeID string) Predicate {
	return func(i *mappingv1.Issue) bool {
		d := i.GetDetails()
		return d[DetailRetryOn] == RetryOnCustomer && d[DetailCustomerKind] == kind && d[DetailCustomerID] == tribeID
	}
}

// Any picks every invoice issue that says how it is retried by itself (links or customer): the
// Tribe scan's safety net. Manual ones wait for their person.
func Any(i *mappingv1.Issue) bool {
	r := i.GetDetails()[DetailRetryOn]
	return r == RetryOnLinks || r == RetryOnCustomer
}

// Retry publishes a TribeChange for every invoice of the tenant with an open invoice issue that
// pred picks, one per invoice, so the invoice flow books it again (and resolves its issues once
// it is booked, or records them again). It returns the IDs of the invoices it pushed, sorted.
//
// The message ID is derived from the invoice and the last time its matching issues were seen,
// so calling Retry twice for the same failure (links stored twice, a scan right after) publishes
// once within JetStream's duplicate window, while an invoice that failed again since is pushed
// again.
func Retry(ctx context.Context, m mappingv1.MappingServiceClient, pub *bus.Publisher, tenant string, pred Predicate) ([]string, error) {
	res, err := m.ListIssues(ctx, &mappingv1.ListIssuesRequest{TenantId: tenant})
	if err != nil {
		return nil, fmt.Errorf("list issues: %w", err)
	}
	last := map[string]int64{} // invoice ID -> newest matching issue, Unix nanoseconds
	for _, i := range res.GetIssues() {
		if i.GetKind() != invoicelink.Kind || i.GetEntityId() == "" || !pred(i) {
			continue
		}
		last[i.GetEntityId()] = max(last[i.GetEntityId()], i.GetLastSeen().AsTime().UnixNano())
	}
	ids := make([]string, 0, len(last))
	for id := range last {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for n, id := range ids {
		msgID := "invoice-retry:" + tenant + ":" + id + ":" + strconv.FormatInt(last[id], 10)
		if err := publish(ctx, pub, tenant, id, msgID); err != nil {
			return ids[:n], err
		}
	}
	return ids, nil
}

// Push publishes a TribeChange for one invoice with a fresh message ID, so the invoice flow
// books it (again) whatever was published before: an operator's push.
func Push(ctx context.Context, pub *bus.Publisher, tenant, invoiceID string) error {
	return publish(ctx, pub, tenant, invoiceID, "invoice-push:"+tenant+":"+invoiceID+":"+nuid.Next())
}

func publish(ctx context.Context, pub *bus.Publisher, tenant, invoiceID, msgID string) error {
	subject, err := bus.TribeEventSubject(tenant, bus.EntityInvoice)
	if err != nil {
		return err
	}
	change := &eventsv1.TribeChange{TenantId: tenant, Entity: bus.EntityInvoice, EntityId: invoiceID,
		Action: eventsv1.ChangeAction_CHANGE_ACTION_UPDATED, OccurredAt: timestamppb.Now(), EventKey: msgID}
	if _, err := pub.Publish(ctx, subject, change, msgID); err != nil {
		return fmt.Errorf("push invoice %s: %w", invoiceID, err)
	}
	return nil
}
