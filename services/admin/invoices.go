package main

import (
	"context"
	"net/http"
	"strconv"

	"github.com/koppel/koppel/pkg/adminapi"
	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/httpapi"
	"github.com/koppel/koppel/pkg/invoicelink"
	"github.com/koppel/koppel/pkg/invoiceretry"
	"github.com/koppel/koppel/pkg/tribe"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// invoiceRoutes are the admin API's invoice calls.
func (a *admin) invoiceRoutes(handle func(pattern string, h http.HandlerFunc)) {
	handle("GET /admin/v1/tenants/{tenant}/invoices/{id}", a.getInvoice)
	handle("POST /admin/v1/tenants/{tenant}/invoices/{id}/push", a.pushInvoice)
}

// invoiceRequest checks the tenant and invoice of a request; it has answered when ok is false.
func (a *admin) invoiceRequest(w http.ResponseWriter, r *http.Request) (tenant, id string, ok bool) {
	tenant, id = r.PathValue("tenant"), r.PathValue("id")
	if !tribe.ValidGUID(id) {
		httpapi.WriteFieldError(w, "id", "want the Tribe invoice ID (a GUID)")
		return "", "", false
	}
	if _, err := a.mapping.GetTenant(r.Context(), &mappingv1.GetTenantRequest{TenantId: tenant}); err != nil {
		a.writeGRPCError(w, r, err)
		return "", "", false
	}
	return tenant, id, true
}

// invoiceState reads an invoice's link and its open issues.
func (a *admin) invoiceState(ctx context.Context, tenant, id string) (adminapi.InvoiceState, error) {
	out := adminapi.InvoiceState{Tenant: tenant, ID: id}
	link, err := a.mapping.GetLink(ctx, &mappingv1.GetLinkRequest{TenantId: tenant, Kind: invoicelink.Kind, TribeId: id})
	switch status.Code(err) {
	case codes.OK:
		out.Booked, out.EBoekhoudenID = true, link.GetLink().GetEboekhoudenId()
		rec, _ := invoicelink.Decode(link.GetLink().GetRecord())
		out.Number = rec.Number
	case codes.NotFound:
	default:
		return out, err
	}
	res, err := a.mapping.ListIssues(ctx, &mappingv1.ListIssuesRequest{TenantId: tenant})
	if err != nil {
		return out, err
	}
	out.Issues = []adminapi.Issue{}
	for _, i := range res.GetIssues() {
		if i.GetKind() == invoicelink.Kind && i.GetEntityId() == id {
			out.Issues = append(out.Issues, apiIssue(i))
		}
	}
	return out, nil
}

// getInvoice answers whether an invoice is booked (its e-Boekhouden ID and number) and its open
// issues: what koppelctl invoices push watches.
func (a *admin) getInvoice(w http.ResponseWriter, r *http.Request) {
	tenant, id, ok := a.invoiceRequest(w, r)
	if !ok {
		return
	}
	st, err := a.invoiceState(r.Context(), tenant, id)
	if err != nil {
		a.writeGRPCError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, st)
}

// pushInvoice publishes the invoice's change again (a fresh message ID), so the invoice flow
// books it if it is not booked: 202 with the invoice's state as it was before the push, so a
// caller waiting for the outcome can tell a new issue from an old one (by its occurrences).
func (a *admin) pushInvoice(w http.ResponseWriter, r *http.Request) {
	tenant, id, ok := a.invoiceRequest(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	st, err := a.invoiceState(ctx, tenant, id)
	if err != nil {
		a.writeGRPCError(w, r, err)
		return
	}
	if err := invoiceretry.Push(ctx, a.pub, tenant, id); err != nil {
		a.log.ErrorContext(ctx, "push invoice", "tenant", tenant, "invoice", id, "error", err)
		httpapi.WriteError(w, http.StatusServiceUnavailable, "unavailable", "the bus cannot take the push; try again")
		return
	}
	a.log.InfoContext(ctx, "invoice pushed", "tenant", tenant, "invoice", id, "booked", st.Booked)
	httpapi.WriteJSON(w, http.StatusAccepted, st)
}

// retryWaitingOnLinks pushes the invoices that wait for the tenant's links, after they were
// stored. A failure is logged, not answered: the links are stored, the invoices' issues stay
// open, and the Tribe scan's safety net or a push brings them back.
func (a *admin) retryWaitingOnLinks(ctx context.Context, tenant string) int {
	pushed, err := invoiceretry.Retry(ctx, a.mapping, a.pub, tenant, invoiceretry.WaitingOn(invoiceretry.RetryOnLinks))
	if err != nil {
		a.log.WarnContext(ctx, "push the invoices waiting on the links", "tenant", tenant, "pushed", len(pushed), "error", err)
	} else if len(pushed) > 0 {
		a.log.InfoContext(ctx, "invoices waiting on the links pushed", "tenant", tenant, "invoices", len(pushed))
	}
	return len(pushed)
}

// resolveDeadLetterIssue closes the issue recorded when dead letter seq of tenant was made:
// replayed or dropped, its advice is done with (a replay that fails again records a new one).
func (a *admin) resolveDeadLetterIssue(ctx context.Context, tenant string, seq uint64) {
	if !bus.ValidTenantID(tenant) {
		return
	}
	res, err := a.mapping.ListIssues(ctx, &mappingv1.ListIssuesRequest{TenantId: tenant})
	if err != nil {
		a.log.WarnContext(ctx, "resolve dead-letter issue", "tenant", tenant, "seq", seq, "error", err)
		return
	}
	for _, i := range res.GetIssues() {
		if i.GetCode() != bus.IssueDeadLettered || i.GetDetails()[bus.DetailDeadLetter] != strconv.FormatUint(seq, 10) {
			continue
		}
		if _, err := a.mapping.ResolveIssue(ctx, &mappingv1.ResolveIssueRequest{TenantId: tenant, Key: i.GetKey()}); err != nil {
			a.log.WarnContext(ctx, "resolve dead-letter issue", "tenant", tenant, "seq", seq, "error", err)
		}
	}
}
