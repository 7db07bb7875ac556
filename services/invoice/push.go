package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/eboekhouden"
	"github.com/koppel/koppel/pkg/mapping"
	"github.com/koppel/koppel/pkg/tribe"
	eventsv1 "github.com/koppel/koppel/proto/koppel/events/v1"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/nats-io/nuid"
	"github.com/shopspring/decimal"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Link keys of the tenant settings the invoice flow reads (filled at activation).
const (
	linkDebtorLedger    = "debtor_ledger"
	linkInvoiceTemplate = "invoice_template"
	linkRevenueLedger   = "revenue_ledger:"
	linkVATCode         = "vat_code:"
)

// phaseSent is the Tribe phase code at which an invoice is booked in e-Boekhouden.
const phaseSent = "Sent"

// connectFunc gives a tenant's clients.
type connectFunc func(ctx context.Context, tenant *mappingv1.Tenant) (*eboekhouden.Client, *tribe.Client, error)

// pusher books Tribe invoices in e-Boekhouden as open items when they are sent.
type pusher struct {
	mapping mappingv1.MappingServiceClient
	connect connectFunc
	pub     *bus.Publisher
	holder  string
	log     *slog.Logger
	// relationRetry is how long an invoice waits for its debtor to be synced. Default 15s.
	relationRetry time.Duration
}

func invoiceIssue(id, number, code, message, action string) *mappingv1.Issue {
	return &mappingv1.Issue{Key: "invoice/" + id + "/" + code, Code: code, Kind: "invoice", EntityId: id,
		Message: fmt.Sprintf("Invoice %s: %s", number, message), Action: action}
}

// push books one invoice. Never two e-Boekhouden invoices for one Tribe invoice: a link means
// done, and before creating, the invoice number is looked up in e-Boekhouden, so an uncertain
// earlier attempt (a timeout, a crash before the link) is found and linked instead.
func (p *pusher) push(ctx context.Context, tenant *mappingv1.Tenant, change *eventsv1.TribeChange) error {
	if change.GetAction() == eventsv1.ChangeAction_CHANGE_ACTION_DELETED {
		return nil
	}
	id := change.GetEntityId()
	if linked, err := p.linked(ctx, tenant.GetId(), id); err != nil || linked {
		return err
	}
	eb, tr, err := p.connect(ctx, tenant)
	if err != nil {
		return err
	}
	inv, err := tr.Invoice(ctx, id, tribe.InvoiceQuery())
	if tribe.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read invoice %s: %w", id, err)
	}
	if inv.Phase == nil || !strings.EqualFold(inv.Phase.Code, phaseSent) {
		// Booked only once sent; a later webhook brings it back then.
		return nil
	}

	release, err := p.lease(ctx, tenant.GetId(), "invoice/"+id)
	if err != nil {
		return err
	}
	defer release()
	if linked, err := p.linked(ctx, tenant.GetId(), id); err != nil || linked {
		return err
	}

	relationID, err := p.debtor(ctx, tenant, &inv)
	if err != nil {
		return err
	}
	groups, err := tr.VatGroups(ctx)
	if err != nil {
		return fmt.Errorf("read VAT groups: %w", err)
	}
	newInv, err := p.build(tenant, &inv, relationID, groups)
	if err != nil {
		return err
	}

	ebID, err := p.findOrCreate(ctx, eb, &inv, newInv)
	if err != nil {
		return err
	}
	if _, err := p.mapping.CreateLink(ctx, &mappingv1.CreateLinkRequest{TenantId: tenant.GetId(), Kind: "invoice", TribeId: id,
		EboekhoudenId: strconv.FormatInt(ebID, 10), Record: []byte(fmt.Sprintf(`{"number":%q}`, inv.Number))}); err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("link invoice: %w", err)
	}
	for _, code := range []string{"no_payment_term", "unmapped_vat_group", "not_configured"} {
		_, _ = p.mapping.ResolveIssue(ctx, &mappingv1.ResolveIssueRequest{TenantId: tenant.GetId(), Key: "invoice/" + id + "/" + code})
	}
	p.checkTotals(ctx, tenant.GetId(), eb, ebID, &inv)
	p.log.InfoContext(ctx, "invoice booked", "invoice", inv.Number, "eboekhouden_id", ebID)
	return nil
}

func (p *pusher) linked(ctx context.Context, tenant, id string) (bool, error) {
	_, err := p.mapping.GetLink(ctx, &mappingv1.GetLinkRequest{TenantId: tenant, Kind: "invoice", TribeId: id})
	switch status.Code(err) {
	case codes.OK:
		return true, nil
	case codes.NotFound:
		return false, nil
	}
	return false, fmt.Errorf("get invoice link: %w", err)
}

func (p *pusher) lease(ctx context.Context, tenant, name string) (func(), error) {
	l, err := mapping.Leases{Client: p.mapping, Holder: p.holder, TTL: 30 * time.Second}.Acquire(ctx, tenant, name, name)
	if err != nil {
		return nil, err
	}
	return l.Release, nil
}

// debtor returns the e-Boekhouden relation of the invoice's customer. A customer not linked yet
// is handed to the relation flow (an event on its subject), and the invoice waits for it.
func (p *pusher) debtor(ctx context.Context, tenant *mappingv1.Tenant, inv *tribe.Invoice) (int64, error) {
	kind, entity, relID := "organization", bus.EntityOrganization, ""
	if r := inv.Relationship; r != nil {
		switch {
		case r.Organization != nil && r.Organization.ID != "":
			relID = r.Organization.ID
		case r.Person != nil && r.Person.ID != "":
			kind, entity, relID = "person", bus.EntityPerson, r.Person.ID
		}
	}
	if relID == "" {
		return 0, bus.Permanent(errors.New("invoice without a customer"), invoiceIssue(inv.ID, inv.Number, "no_customer",
			"it has no customer relationship, so there is no debtor to book it on.", "Set the invoice's customer in Tribe."))
	}
	res, err := p.mapping.GetLink(ctx, &mappingv1.GetLinkRequest{TenantId: tenant.GetId(), Kind: kind, TribeId: relID})
	if err == nil {
		n, perr := strconv.ParseInt(res.GetLink().GetEboekhoudenId(), 10, 64)
		if perr != nil {
			return 0, fmt.Errorf("e-Boekhouden relation ID %q: %w", res.GetLink().GetEboekhoudenId(), perr)
		}
		return n, nil
	}
	if status.Code(err) != codes.NotFound {
		return 0, fmt.Errorf("get debtor link: %w", err)
	}
	subject, err := bus.TribeEventSubject(tenant.GetId(), entity)
	if err != nil {
		return 0, err
	}
	msgID := "invoice-debtor:" + tenant.GetId() + ":" + relID + ":" + nuid.Next()
	if _, err := p.pub.Publish(ctx, subject, &eventsv1.TribeChange{TenantId: tenant.GetId(), Entity: entity, EntityId: relID,
		Action: eventsv1.ChangeAction_CHANGE_ACTION_UPDATED, EventKey: msgID}, msgID); err != nil {
		return 0, fmt.Errorf("ask for the debtor's sync: %w", err)
	}
	wait := p.relationRetry
	if wait <= 0 {
		wait = 15 * time.Second
	}
	return 0, bus.RetryAfter(fmt.Errorf("debtor %s of invoice %s is not in e-Boekhouden yet", relID, inv.Number), wait)
}

// build turns a sent Tribe invoice into an e-Boekhouden invoice booked as an open item.
func (p *pusher) build(tenant *mappingv1.Tenant, inv *tribe.Invoice, relationID int64, groups []tribe.Lookup) (eboekhouden.NewInvoice, error) {
	links := tenant.GetSettings().GetLinks()
	if inv.InvoiceDate == nil || inv.DueDate == nil {
		return eboekhouden.NewInvoice{}, bus.Permanent(errors.New("no payment term"), invoiceIssue(inv.ID, inv.Number, "no_payment_term",
			"it has no due date, so its payment term is unknown; it was not booked.", "Give the customer a payment term (or the invoice a due date) in Tribe; the invoice is booked when it changes next."))
	}
	// Dates, not instants: the term counts calendar days in Amsterdam, so it stays 30 across a
	// clock change.
	date := eboekhouden.DateOf(*inv.InvoiceDate)
	days := max(date.DaysUntil(eboekhouden.DateOf(*inv.DueDate)), 0)
	ledger, _ := strconv.ParseInt(links[linkDebtorLedger], 10, 64)
	template, _ := strconv.ParseInt(links[linkInvoiceTemplate], 10, 64)
	if ledger == 0 || template == 0 {
		return eboekhouden.NewInvoice{}, bus.Permanent(errors.New("tenant not linked"), invoiceIssue(inv.ID, inv.Number, "not_configured",
			"the debtor ledger or the invoice template is not linked.", "Complete the links (koppelctl tenants links)."))
	}
	out := eboekhouden.NewInvoice{RelationID: relationID, InvoiceNumber: inv.Number, TermOfPayment: days, TemplateID: template,
		InExVat: eboekhouden.InExVat("EX"), Text: inv.Subject,
		Date: date,
		Mutation: &eboekhouden.InvoiceMutation{LedgerID: ledger, Description: inv.Subject,
			PaymentReference: "KOPPEL-" + inv.Number, CheckPaymentReference: true}}
	if inv.IsVatIncluded {
		out.InExVat = eboekhouden.InExVat("IN")
	}
	for _, l := range inv.ProductLines {
		group := vatGroupOf(l, groups)
		vat, revenue := links[linkVATCode+group], links[linkRevenueLedger+group]
		rev, _ := strconv.ParseInt(revenue, 10, 64)
		if group == "" || vat == "" || rev == 0 {
			name := group
			if name == "" {
				name = l.VatPercentage.String() + "%"
			}
			return eboekhouden.NewInvoice{}, bus.Permanent(errors.New("unmapped VAT group"), invoiceIssue(inv.ID, inv.Number, "unmapped_vat_group",
				fmt.Sprintf("line %q has VAT group %q, which has no e-Boekhouden VAT code and revenue ledger.", l.Description, name),
				"Link the VAT group (koppelctl tenants links); the invoice is booked when it changes next."))
		}
		item := eboekhouden.InvoiceItem{Quantity: eboekhouden.Quantity{Decimal: l.Quantity}, Description: orDash(l.Description),
			PricePerUnit: eboekhouden.Amount{Decimal: l.Price}, VATCode: eboekhouden.VATCode(vat), LedgerID: rev}
		if !l.DiscountPercentage.IsZero() {
			d := eboekhouden.Amount{Decimal: l.DiscountPercentage}
			item.DiscountPercentage = &d
		}
		out.Items = append(out.Items, item)
	}
	if len(out.Items) == 0 {
		return eboekhouden.NewInvoice{}, bus.Permanent(errors.New("invoice without lines"), invoiceIssue(inv.ID, inv.Number, "no_lines",
			"it has no lines.", "Add lines in Tribe (a sent invoice needs a credit invoice to correct)."))
	}
	return out, nil
}

// vatGroupOf is a line's VAT group: its own navigation when Tribe gives one (its name is
// UNCONFIRMED), else the first VAT group (by code) with the line's VAT percentage.
func vatGroupOf(l tribe.ProductLine, groups []tribe.Lookup) string {
	if l.VatGroup != nil && l.VatGroup.ID != "" {
		return l.VatGroup.ID
	}
	best := tribe.Lookup{}
	for _, g := range groups {
		if g.Percentage.Valid && g.Percentage.Decimal.Equal(l.VatPercentage) && (best.ID == "" || g.Code < best.Code) {
			best = g
		}
	}
	return best.ID
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

// findOrCreate returns the e-Boekhouden invoice with the Tribe invoice's number, creating it only
// when there is none: a timeout or crash after an earlier create must not book it twice.
func (p *pusher) findOrCreate(ctx context.Context, eb *eboekhouden.Client, inv *tribe.Invoice, n eboekhouden.NewInvoice) (int64, error) {
	found, err := eb.FindInvoiceByNumber(ctx, inv.Number)
	if err == nil {
		return found.ID, nil
	}
	if !eboekhouden.IsNotFound(err) {
		return 0, fmt.Errorf("find invoice %s: %w", inv.Number, err)
	}
	created, err := eb.CreateInvoice(ctx, n)
	if eboekhouden.IsConflict(err) {
		// Created by an attempt whose answer was lost.
		if found, ferr := eb.FindInvoiceByNumber(ctx, inv.Number); ferr == nil {
			return found.ID, nil
		}
	}
	var api *eboekhouden.APIError
	if errors.As(err, &api) && api.StatusCode == 400 {
		return 0, bus.Permanent(err, invoiceIssue(inv.ID, inv.Number, "invoice_rejected", "e-Boekhouden refused it: "+err.Error(),
			"Correct what the message names; the invoice is booked when it changes next."))
	}
	if err != nil {
		return 0, fmt.Errorf("create invoice %s: %w", inv.Number, err)
	}
	return created.ID, nil
}

// checkTotals compares e-Boekhouden's totals with Tribe's, to the cent, and records an issue on
// a difference: the invoice is booked either way, but a bookkeeper must look.
func (p *pusher) checkTotals(ctx context.Context, tenant string, eb *eboekhouden.Client, ebID int64, inv *tribe.Invoice) {
	got, err := eb.GetInvoice(ctx, ebID)
	if err != nil {
		p.log.WarnContext(ctx, "read booked invoice", "invoice", inv.Number, "error", err)
		return
	}
	want := decimal.Zero
	for _, l := range inv.ProductLines {
		want = want.Add(l.TotalIncludingVat)
	}
	if want.Round(2).Equal(got.TotalAmount.Round(2)) {
		return
	}
	_, _ = p.mapping.RecordIssue(ctx, &mappingv1.RecordIssueRequest{TenantId: tenant, Issue: invoiceIssue(inv.ID, inv.Number, "totals_differ",
		fmt.Sprintf("booked for %s incl. VAT in e-Boekhouden, %s in Tribe.", got.TotalAmount.StringFixed(2), want.StringFixed(2)),
		"Check the VAT codes and rounding of its lines; correct with a credit invoice if needed.")})
}
