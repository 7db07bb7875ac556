package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/koppel/koppel/pkg/eboekhouden"
	"github.com/koppel/koppel/pkg/invoicelink"
	"github.com/koppel/koppel/pkg/syncrun"
	"github.com/koppel/koppel/pkg/tribe"
	eventsv1 "github.com/koppel/koppel/proto/koppel/events/v1"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/shopspring/decimal"
)

// connectFunc gives a tenant's clients.
type connectFunc func(ctx context.Context, tenant *mappingv1.Tenant) (*eboekhouden.Client, *tribe.Client, error)

// puller brings payments booked in e-Boekhouden to the Tribe invoices they pay.
type puller struct {
	mapping mappingv1.MappingServiceClient
	connect connectFunc
	log     *slog.Logger
	now     func() time.Time
}

// pull looks at every sent Tribe invoice that koppel booked, and the open debtor items of
// e-Boekhouden: a partial payment is recorded on the link (and in the tenant's history); a fully
// paid invoice moves to phase Paid. Never mark paid what is not: an invoice counts as paid only
// when e-Boekhouden shows its open item settled, or no longer lists it while the invoice itself
// is there.
func (p *puller) pull(ctx context.Context, tenant *mappingv1.Tenant, cmd *eventsv1.SyncCommand, run *syncrun.Run) error {
	eb, tr, err := p.connect(ctx, tenant)
	if err != nil {
		return err
	}
	open := map[string]eboekhouden.OutstandingInvoice{}
	for item, err := range eb.Outstanding(ctx, eboekhouden.Debtors) {
		if err != nil {
			return fmt.Errorf("list open items: %w", err)
		}
		open[item.InvoiceNumber] = item
	}
	sent, err := tribe.Collect(tr.Invoices(ctx, tribe.Q().Filter(tribe.Eq("Phase/Code", tribe.PhaseSent)).Select("ID", "Number")))
	if err != nil {
		return fmt.Errorf("list sent invoices: %w", err)
	}
	if err := run.Add(ctx, &mappingv1.RunCounts{}, 0, int64(len(sent))); err != nil {
		return err
	}
	var paidPhase string
	for start := 0; start < len(sent); start += 100 {
		part := sent[start:min(start+100, len(sent))]
		ids := make([]string, len(part))
		for i, inv := range part {
			ids[i] = inv.ID
		}
		links, err := p.mapping.BatchGetLinks(ctx, &mappingv1.BatchGetLinksRequest{TenantId: tenant.GetId(), Kind: invoicelink.Kind, TribeIds: ids, WithRecords: true})
		if err != nil {
			return fmt.Errorf("get invoice links: %w", err)
		}
		byTribe := map[string]*mappingv1.Link{}
		for _, l := range links.GetLinks() {
			byTribe[l.GetTribeId()] = l
		}
		counts := &mappingv1.RunCounts{}
		for _, inv := range part {
			link := byTribe[inv.ID]
			if link == nil {
				// Not booked by koppel (yet): nothing of ours to settle.
				counts.Skipped++
				continue
			}
			changed, err := p.settle(ctx, tenant, eb, tr, inv, link, open, &paidPhase)
			if err != nil {
				return err
			}
			if changed {
				counts.Updated++
			} else {
				counts.Unchanged++
			}
		}
		if err := run.Add(ctx, counts, int64(len(part)), 0); err != nil {
			return err
		}
	}
	return nil
}

// settle brings one invoice's payments to Tribe and reports whether it changed anything.
func (p *puller) settle(ctx context.Context, tenant *mappingv1.Tenant, eb *eboekhouden.Client, tr *tribe.Client, inv tribe.Invoice,
	link *mappingv1.Link, open map[string]eboekhouden.OutstandingInvoice, paidPhase *string) (bool, error) {
	rec, _ := invoicelink.Decode(link.GetRecord())
	number := inv.Number
	if number == "" {
		number = rec.Number
	}
	item, listed := open[number]
	if !listed {
		// The list may drop paid items (UNCONFIRMED); ask for this one by number before
		// believing it paid, and make sure the invoice itself is there. Whether the server
		// applies the number filter is UNCONFIRMED too: only an item with this number counts.
		items, err := eb.ListOutstanding(ctx, eboekhouden.Debtors, eboekhouden.Page{Limit: 10}, eboekhouden.Eq("invoiceNumber", number))
		if err != nil {
			return false, fmt.Errorf("open item of %s: %w", number, err)
		}
		for _, it := range items {
			if strings.EqualFold(strings.TrimSpace(it.InvoiceNumber), number) {
				item, listed = it, true
				break
			}
		}
	}
	fullyPaid := listed && settled(item)
	if !listed {
		ebID, err := strconv.ParseInt(link.GetEboekhoudenId(), 10, 64)
		if err != nil {
			return false, fmt.Errorf("e-Boekhouden invoice ID %q: %w", link.GetEboekhoudenId(), err)
		}
		if _, err := eb.GetInvoice(ctx, ebID); err != nil {
			if eboekhouden.IsNotFound(err) {
				return false, nil
			}
			return false, fmt.Errorf("read invoice %s: %w", number, err)
		}
		fullyPaid = true
	}

	paid := decimal.Zero
	if listed {
		paid = item.PaidAmount.Decimal
	}
	if fullyPaid {
		if *paidPhase == "" {
			ph, err := tr.PhaseByCode(ctx, tribe.PhasePaid)
			if err != nil {
				return false, fmt.Errorf("find phase %s: %w", tribe.PhasePaid, err)
			}
			*paidPhase = ph.ID
		}
		if err := tr.SetInvoicePhase(ctx, inv.ID, *paidPhase); err != nil {
			return false, fmt.Errorf("mark invoice %s paid: %w", number, err)
		}
		p.history(ctx, tenant.GetId(), inv.ID, "invoice_paid", fmt.Sprintf("Invoice %s is paid in full; it is now Paid in Tribe.", number), nil)
		p.log.InfoContext(ctx, "invoice paid", "invoice", number)
		return true, p.save(ctx, tenant.GetId(), link, invoicelink.State{Number: number, Paid: invoicelink.PaidInFull})
	}
	if prev, err := decimal.NewFromString(rec.Paid); (err != nil && !paid.IsZero()) || (err == nil && !prev.Equal(paid)) {
		if err := p.note(ctx, tenant.GetId(), tr, inv.ID, number, item); err != nil {
			return false, err
		}
		p.history(ctx, tenant.GetId(), inv.ID, "partial_payment",
			fmt.Sprintf("Invoice %s: %s of %s paid, %s open.", number, paid.StringFixed(2), item.TotalAmount.StringFixed(2), item.OutstandingAmount.StringFixed(2)),
			map[string]string{"paid": paid.StringFixed(2), "open": item.OutstandingAmount.StringFixed(2)})
		return true, p.save(ctx, tenant.GetId(), link, invoicelink.State{Number: number, Paid: paid.StringFixed(2)})
	}
	return false, nil
}

// settled reports whether an open item has nothing left to pay: nothing outstanding, or paid
// beyond its total (outstanding of the other sign). A credit note (a negative total) is settled
// when it is refunded, never because its outstanding amount is below zero.
func settled(it eboekhouden.OutstandingInvoice) bool {
	out := it.OutstandingAmount.Round(2)
	return out.IsZero() || out.Sign() != it.TotalAmount.Round(2).Sign()
}

// note shows a partial payment on the Tribe invoice as a note (a sent invoice is frozen but for
// its phase; notes are records of their own). Its external ID names invoice and paid amount, so
// a run repeated after a crash finds the note instead of adding it twice. A Tribe that refuses
// notes (their set is UNCONFIRMED) costs the tenant the note, not the payment run: an issue
// says so, and the payment is still in koppel's history.
func (p *puller) note(ctx context.Context, tenant string, tr *tribe.Client, invoiceID, number string, item eboekhouden.OutstandingInvoice) error {
	ext := fmt.Sprintf("koppel-payment:%s:%s", invoiceID, item.PaidAmount.StringFixed(2))
	found, err := tr.FindNote(ctx, ext)
	if err == nil && len(found) > 0 {
		return nil
	}
	if err == nil {
		subject := "Partial payment"
		content := fmt.Sprintf("Invoice %s: %s of %s paid, %s open (e-Boekhouden, %s).", number, item.PaidAmount.StringFixed(2),
			item.TotalAmount.StringFixed(2), item.OutstandingAmount.StringFixed(2), eboekhouden.DateOf(p.clock()))
		_, err = tr.CreateNote(ctx, tribe.NoteInput{Subject: &subject, Content: &content, Entity: tribe.Link(invoiceID), ExternalID: &ext})
	}
	var api *tribe.APIError
	if errors.As(err, &api) && api.StatusCode >= 400 && api.StatusCode < 500 && api.StatusCode != http.StatusTooManyRequests {
		p.log.WarnContext(ctx, "payment note refused", "invoice", number, "error", err)
		_, rerr := p.mapping.RecordIssue(ctx, &mappingv1.RecordIssueRequest{TenantId: tenant, Issue: &mappingv1.Issue{
			Key: "payment/notes", Code: "payment_note_refused",
			Message: fmt.Sprintf("Tribe refused the note of a partial payment of invoice %s: %v", number, err),
			Action:  "Partial payments are in koppel's history (koppelctl status); Tribe shows them once it takes notes on invoices."}})
		return rerr
	}
	if err != nil {
		return fmt.Errorf("note partial payment of %s: %w", number, err)
	}
	return nil
}

func (p *puller) clock() time.Time {
	if p.now != nil {
		return p.now()
	}
	return time.Now()
}

func (p *puller) save(ctx context.Context, tenant string, link *mappingv1.Link, rec invoicelink.State) error {
	b := rec.Encode()
	_, err := p.mapping.SaveSyncedRecord(ctx, &mappingv1.SaveSyncedRecordRequest{TenantId: tenant, Kind: invoicelink.Kind, TribeId: link.GetTribeId(), Record: b, ExpectedVersion: -1})
	if err != nil {
		return fmt.Errorf("save payment state: %w", err)
	}
	return nil
}

func (p *puller) history(ctx context.Context, tenant, id, code, msg string, details map[string]string) {
	_, err := p.mapping.RecordHistory(ctx, &mappingv1.RecordHistoryRequest{TenantId: tenant, Entry: &mappingv1.HistoryEntry{
		Code: code, Kind: invoicelink.Kind, EntityId: id, Message: msg, Details: details}})
	if err != nil {
		p.log.WarnContext(ctx, "record history", "error", err)
	}
}
