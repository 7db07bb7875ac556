package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/eboekhouden"
	"github.com/koppel/koppel/pkg/invoicelink"
	"github.com/koppel/koppel/pkg/invoiceretry"
	"github.com/koppel/koppel/pkg/mapping"
	"github.com/koppel/koppel/pkg/tenantsettings"
	"github.com/koppel/koppel/pkg/tribe"
	eventsv1 "github.com/koppel/koppel/proto/koppel/events/v1"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/nats-io/nuid"
	"github.com/shopspring/decimal"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// bookCurrency is the only currency koppel books: e-Boekhouden's invoices and mutations have no
// currency field (reference 1.7), so an amount in anything else would be booked as euros.
const bookCurrency = "EUR"

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

// invoiceQuery expands what a push needs: the phase, the lines with their own VAT group and
// their product's, and the customer relationship with its organisation or person.
func invoiceQuery() tribe.Query {
	return tribe.Q().Expand("Phase").
		Expand("ProductLines", tribe.Q().Expand("VatGroup").Expand("Product", tribe.Q().Expand("VatGroup"))).
		Expand("Relationship", tribe.Q().Expand("Organization").Expand("Person"))
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
	inv, err := tr.Invoice(ctx, id, invoiceQuery())
	if tribe.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read invoice %s: %w", id, err)
	}
	if inv.Phase == nil || !strings.EqualFold(inv.Phase.Code, tribe.PhaseSent) {
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

	groups, err := tr.VatGroups(ctx)
	if err != nil {
		return fmt.Errorf("read VAT groups: %w", err)
	}
	// Everything that needs neither system's write first, so the tenant learns the real problem
	// without waiting for the customer's sync.
	newInv, err := p.build(tenant, &inv, groups)
	if err != nil {
		return err
	}
	if newInv.RelationID, err = p.debtor(ctx, tenant, &inv); err != nil {
		return err
	}
	ebID, err := p.findOrCreate(ctx, eb, tenant.GetId(), &inv, newInv)
	if err != nil {
		return err
	}
	if _, err := p.mapping.CreateLink(ctx, &mappingv1.CreateLinkRequest{TenantId: tenant.GetId(), Kind: invoicelink.Kind, TribeId: id,
		EboekhoudenId: strconv.FormatInt(ebID, 10), Record: invoicelink.State{Number: inv.Number}.Encode()}); err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("link invoice: %w", err)
	}
	if _, err := p.mapping.ResolveIssue(ctx, &mappingv1.ResolveIssueRequest{TenantId: tenant.GetId(), Key: bookingKey(id)}); err != nil {
		p.log.WarnContext(ctx, "resolve invoice issue", "invoice", inv.Number, "error", err)
	}
	p.checkTotals(ctx, tenant.GetId(), eb, ebID, &inv)
	p.log.InfoContext(ctx, "invoice booked", "invoice", inv.Number, "eboekhouden_id", ebID)
	return nil
}

func (p *pusher) linked(ctx context.Context, tenant, id string) (bool, error) {
	_, err := p.mapping.GetLink(ctx, &mappingv1.GetLinkRequest{TenantId: tenant, Kind: invoicelink.Kind, TribeId: id})
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
// is handed to the relation flow (an event on its subject) and the invoice waits for it, unless
// the relation flow cannot push it: a customer without a debtor number (and no automatic
// numbering), or one the relation flow recorded an issue for. Then the invoice records an issue
// that names the customer, and is pushed again when that customer is linked.
func (p *pusher) debtor(ctx context.Context, tenant *mappingv1.Tenant, inv *tribe.Invoice) (int64, error) {
	kind, entity, relID, number, name := "organization", bus.EntityOrganization, "", "", ""
	if r := inv.Relationship; r != nil {
		switch {
		case r.Organization != nil && r.Organization.ID != "":
			relID, number, name = r.Organization.ID, r.Organization.DebtorNumber, r.Organization.Name
		case r.Person != nil && r.Person.ID != "":
			kind, entity = "person", bus.EntityPerson
			relID, number, name = r.Person.ID, r.Person.DebtorNumber, strings.TrimSpace(r.Person.Name)
		}
	}
	if relID == "" {
		return 0, bus.Permanent(errors.New("invoice without a customer"), notBooked(tenant.GetId(), inv.ID, inv.Number, codeNoCustomer,
			"it has no customer relationship, so there is no debtor to book it on.",
			"A sent invoice cannot change in Tribe: credit it and send a new one with a customer.", invoiceretry.RetryOnManual, nil))
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
	waiting := map[string]string{invoiceretry.DetailCustomerKind: kind, invoiceretry.DetailCustomerID: relID}
	if strings.TrimSpace(number) == "" && !tenant.GetSettings().GetAutoDebtorNumbers() {
		// The relation flow pushes no customer without a debtor number: waiting is pointless.
		return 0, bus.Permanent(fmt.Errorf("customer %s has no debtor number", relID), notBooked(tenant.GetId(), inv.ID, inv.Number, codeCustomerNotInBooks,
			fmt.Sprintf("its customer %s is not in e-Boekhouden and has no debtor number, so it cannot be pushed there.", orID(name, relID)),
			"Give the customer a debtor number in Tribe (or turn on automatic debtor numbers: koppelctl tenants links -auto-debtor-numbers).",
			invoiceretry.RetryOnCustomer, waiting))
	}
	if why, err := p.customerIssue(ctx, tenant.GetId(), kind, relID); err != nil {
		return 0, err
	} else if why != nil {
		return 0, bus.Permanent(fmt.Errorf("customer %s cannot be pushed: %s", relID, why.GetCode()), notBooked(tenant.GetId(), inv.ID, inv.Number, codeCustomerNotSynced,
			fmt.Sprintf("its customer %s is not in e-Boekhouden: %s", orID(name, relID), why.GetMessage()),
			"Solve the customer's issue ("+why.GetAction()+").", invoiceretry.RetryOnCustomer, waiting))
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

// customerIssue returns the relation flow's open issue on a customer, if any: the reason it is
// not in e-Boekhouden.
func (p *pusher) customerIssue(ctx context.Context, tenant, kind, id string) (*mappingv1.Issue, error) {
	res, err := p.mapping.ListIssues(ctx, &mappingv1.ListIssuesRequest{TenantId: tenant})
	if err != nil {
		return nil, fmt.Errorf("list issues: %w", err)
	}
	for _, i := range res.GetIssues() {
		if i.GetKind() == kind && i.GetEntityId() == id {
			return i, nil
		}
	}
	return nil, nil
}

// build turns a sent Tribe invoice into an e-Boekhouden invoice booked as an open item (the
// relation is filled in by the caller). Whatever would make it a wrong booking is an issue.
func (p *pusher) build(tenant *mappingv1.Tenant, inv *tribe.Invoice, groups []tribe.Lookup) (eboekhouden.NewInvoice, error) {
	t := tenant.GetId()
	fail := func(code, msg, action, retryOn string, details map[string]string) (eboekhouden.NewInvoice, error) {
		return eboekhouden.NewInvoice{}, bus.Permanent(errors.New(code), notBooked(t, inv.ID, inv.Number, code, msg, action, retryOn, details))
	}
	credit := "A sent invoice cannot change in Tribe: credit it and send a new one."
	if cur := currencyOf(inv); cur != bookCurrency {
		return fail(codeUnsupportedCurrency, fmt.Sprintf("it is in %s, and e-Boekhouden books euros only.", cur),
			credit+" Or book it in e-Boekhouden by hand, in euros.", invoiceretry.RetryOnManual, map[string]string{"currency": cur})
	}
	if len(inv.ProductLines) == 0 {
		return fail(codeNoLines, "it has no lines.", credit, invoiceretry.RetryOnManual, nil)
	}
	links := tenant.GetSettings().GetLinks()
	ledger, _ := strconv.ParseInt(links[tenantsettings.DebtorLedger], 10, 64)
	template, _ := strconv.ParseInt(links[tenantsettings.InvoiceTemplate], 10, 64)
	if ledger == 0 || template == 0 {
		return fail(codeNotConfigured, "the debtor ledger or the invoice template is not linked.",
			"Complete the links (koppelctl tenants links).", invoiceretry.RetryOnLinks, nil)
	}
	if inv.InvoiceDate == nil {
		return fail(codeNoInvoiceDate, "it has no invoice date.", credit, invoiceretry.RetryOnManual, nil)
	}
	// Dates, not instants: the term counts calendar days in Amsterdam, so it stays 30 across a
	// clock change.
	date := eboekhouden.DateOf(*inv.InvoiceDate)
	days := 0
	switch {
	case inv.DueDate != nil:
		days = max(date.DaysUntil(eboekhouden.DateOf(*inv.DueDate)), 0)
	case inv.Relationship != nil && inv.Relationship.PaymentTermInDays != nil:
		// No due date on the invoice (frozen once sent): the customer's term, which its user can
		// still give.
		days = max(*inv.Relationship.PaymentTermInDays, 0)
	default:
		return fail(codeNoPaymentTerm, "it has no due date and its customer no payment term, so its payment term is unknown.",
			"Give the customer a payment term in Tribe.", invoiceretry.RetryOnManual, nil)
	}
	out := eboekhouden.NewInvoice{InvoiceNumber: inv.Number, TermOfPayment: days, TemplateID: template,
		InExVat: eboekhouden.InExVat("EX"), Text: inv.Subject, Date: date,
		Mutation: &eboekhouden.InvoiceMutation{LedgerID: ledger, Description: inv.Subject,
			PaymentReference: "KOPPEL-" + inv.Number, CheckPaymentReference: true}}
	if inv.IsVatIncluded {
		// Line prices are incl. VAT (a product kept incl. VAT): booked as such, so 7 × 10.00 incl.
		// 9% is 70.00, not 7 × 9.17.
		out.InExVat = eboekhouden.InExVat("IN")
	}
	for _, l := range inv.ProductLines {
		vat, err := resolveVAT(l, groups, links)
		if err != nil {
			return fail(err.code, err.msg, err.action, invoiceretry.RetryOnLinks, map[string]string{"line": l.Description})
		}
		item := eboekhouden.InvoiceItem{Quantity: eboekhouden.Quantity{Decimal: l.Quantity}, Description: orDash(l.Description),
			PricePerUnit: eboekhouden.Amount{Decimal: l.Price}, VATCode: vat.code, LedgerID: vat.ledger}
		if d := combinedDiscount(l.DiscountPercentage, inv.DiscountPercentage); !d.IsZero() {
			item.DiscountPercentage = &eboekhouden.Percentage{Decimal: d}
		}
		out.Items = append(out.Items, item)
	}
	if excl, incl := expectedTotals(out); !nearTotal(inv.Amount, excl, incl, len(out.Items)) {
		return fail(codeTotalsDiffer, fmt.Sprintf("Tribe's total is %s, and koppel would book %s excl. or %s incl. VAT.",
			inv.Amount.StringFixed(2), excl.StringFixed(2), incl.StringFixed(2)),
			"Check the invoice's discounts and VAT in Tribe; book it in e-Boekhouden by hand (with the same number, so koppel links it), or credit it and send a new one.",
			invoiceretry.RetryOnManual, nil)
	}
	return out, nil
}

// currencyOf is the invoice's currency, upper case; EUR when Tribe gives none. A line in another
// currency than its invoice counts too.
func currencyOf(inv *tribe.Invoice) string {
	cur := strings.ToUpper(strings.TrimSpace(inv.Currency))
	if cur == "" {
		cur = bookCurrency
	}
	for _, l := range inv.ProductLines {
		if lc := strings.ToUpper(strings.TrimSpace(l.Currency)); lc != "" && lc != cur {
			return lc
		}
	}
	return cur
}

var hundred = decimal.NewFromInt(100)

// combinedDiscount is the one discount percentage that gives a line its own discount and then
// the invoice's: 1 - (1 - line)(1 - invoice). e-Boekhouden has no invoice-level discount, and a
// percentage on each line keeps every line's VAT code and ledger exact.
func combinedDiscount(line, invoice decimal.Decimal) decimal.Decimal {
	return hundred.Sub(hundred.Sub(line).Mul(hundred.Sub(invoice)).Div(hundred))
}

// expectedTotals computes what e-Boekhouden will book for the invoice, excl. and incl. VAT,
// rounding per line as it does by default.
func expectedTotals(n eboekhouden.NewInvoice) (excl, incl decimal.Decimal) {
	for _, it := range n.Items {
		line := it.Quantity.Mul(it.PricePerUnit.Decimal)
		if it.DiscountPercentage != nil {
			line = line.Mul(hundred.Sub(it.DiscountPercentage.Decimal)).Div(hundred)
		}
		line = line.Round(2)
		rate := decimal.Zero
		if info, ok := eboekhouden.LookupVATCode(it.VATCode); ok {
			rate = info.Rate
		}
		if n.InExVat == "IN" {
			vat := line.Mul(rate).Div(hundred.Add(rate)).Round(2)
			excl, incl = excl.Add(line.Sub(vat)), incl.Add(line)
		} else {
			excl, incl = excl.Add(line), incl.Add(line.Add(line.Mul(rate).Div(hundred).Round(2)))
		}
	}
	return excl, incl
}

// nearTotal reports whether Tribe's invoice total is the booking's, excl. or incl. VAT (what
// Amount holds is UNCONFIRMED), within a cent per line: Tribe and e-Boekhouden may round the
// discount and the VAT at other steps. Anything further off is a booking that would not be
// Tribe's invoice.
func nearTotal(amount, excl, incl decimal.Decimal, lines int) bool {
	tol := decimal.New(int64(max(lines, 1)), -2)
	return amount.Sub(excl).Abs().LessThanOrEqual(tol) || amount.Sub(incl).Abs().LessThanOrEqual(tol)
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

// findOrCreate returns the e-Boekhouden invoice with the Tribe invoice's number, creating it only
// when there is none: a timeout or crash after an earlier create must not book it twice.
func (p *pusher) findOrCreate(ctx context.Context, eb *eboekhouden.Client, tenant string, inv *tribe.Invoice, n eboekhouden.NewInvoice) (int64, error) {
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
		return 0, bus.Permanent(err, notBooked(tenant, inv.ID, inv.Number, codeRejected, "e-Boekhouden refused it: "+err.Error(),
			"Correct what the message names (in e-Boekhouden, in the links or in the customer).", invoiceretry.RetryOnManual, nil))
	}
	if err != nil {
		return 0, fmt.Errorf("create invoice %s: %w", inv.Number, err)
	}
	return created.ID, nil
}

// checkTotals compares the booked totals with Tribe's invoice total (its Amount, excl. or incl.
// VAT), to the cent, and records an issue on a difference: the invoice is booked either way, but
// a bookkeeper must look.
func (p *pusher) checkTotals(ctx context.Context, tenant string, eb *eboekhouden.Client, ebID int64, inv *tribe.Invoice) {
	got, err := eb.GetInvoice(ctx, ebID)
	if err != nil {
		p.log.WarnContext(ctx, "read booked invoice", "invoice", inv.Number, "error", err)
		return
	}
	want := inv.Amount.Round(2)
	if slices.ContainsFunc([]decimal.Decimal{got.TotalExcl.Decimal, got.TotalAmount.Decimal}, func(d decimal.Decimal) bool { return d.Round(2).Equal(want) }) {
		return
	}
	_, _ = p.mapping.RecordIssue(ctx, &mappingv1.RecordIssueRequest{TenantId: tenant, Issue: &mappingv1.Issue{
		Key: totalsKey(inv.ID), Code: codeTotalsDiffer, Kind: invoicelink.Kind, EntityId: inv.ID,
		Message: fmt.Sprintf("Invoice %s is booked for %s excl. and %s incl. VAT in e-Boekhouden; its total in Tribe is %s.",
			inv.Number, got.TotalExcl.StringFixed(2), got.TotalAmount.StringFixed(2), want.StringFixed(2)),
		Action:  "It is booked; nothing is retried. Check the VAT codes and rounding of its lines, and correct it in e-Boekhouden with a credit invoice if needed.",
		Details: map[string]string{"number": inv.Number}}})
}
