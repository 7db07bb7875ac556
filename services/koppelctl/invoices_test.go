package main

import (
	"strings"
	"sync/atomic"
	"testing"
)

const invoiceID = "0b4c3f7e-5a51-4f39-9c0e-2a8b6c1d9e01"

// invoiceAnswers answers the push with state before and each GET with the next of states (the
// last one repeated).
func invoiceAnswers(before string, states ...string) *adminAPI {
	var gets atomic.Int32
	return &adminAPI{answer: func(method, path string) (int, string) {
		switch {
		case method == "POST" && strings.HasSuffix(path, "/push"):
			return 202, before
		case method == "GET":
			n := int(gets.Add(1)) - 1
			return 200, states[min(n, len(states)-1)]
		}
		return 404, `{"error":{"code":"not_found","message":"no such path"}}`
	}}
}

const (
	waitingOnce  = `{"tenant":"acme","invoice_id":"` + invoiceID + `","booked":false,"issues":[{"key":"invoice/x/booking","code":"unmapped_vat_group","kind":"invoice","message":"Invoice 2026001 was not booked: line has VAT group LOW.","action":"Link it.","occurrences":1}]}`
	waitingTwice = `{"tenant":"acme","invoice_id":"` + invoiceID + `","booked":false,"issues":[{"key":"invoice/x/booking","code":"customer_not_in_books","kind":"invoice","message":"Invoice 2026001 was not booked: its customer has no debtor number.","action":"Give the customer a debtor number.","occurrences":2}]}`
	booked       = `{"tenant":"acme","invoice_id":"` + invoiceID + `","booked":true,"eboekhouden_id":"4711","number":"2026001","issues":[]}`
)

// The bookkeeper linked the VAT group and pushes the invoice: koppelctl waits until it is booked.
func TestInvoicesPushWaitsUntilBooked(t *testing.T) {
	api := invoiceAnswers(waitingOnce, waitingOnce, waitingOnce, booked)
	out, code := ctl(api.start(t), "", "invoices", "push", "acme", invoiceID)
	if code != exitOK || !strings.Contains(out, "invoice 2026001 is booked: e-Boekhouden invoice 4711") {
		t.Fatalf("exit %d: %s", code, out)
	}
	api.mu.Lock()
	defer api.mu.Unlock()
	if api.requests[0] != "POST /admin/v1/tenants/acme/invoices/"+invoiceID+"/push " {
		t.Fatalf("first request %q", api.requests[0])
	}
}

// The push ends in a new issue (the old one seen once more, or another): exit 1, with what to do.
func TestInvoicesPushReportsTheNewIssue(t *testing.T) {
	api := invoiceAnswers(waitingOnce, waitingOnce, waitingTwice)
	out, code := ctl(api.start(t), "", "invoices", "push", "-timeout", "30s", "acme", invoiceID)
	if code != exitFailed || !strings.Contains(out, "customer_not_in_books") || !strings.Contains(out, "Give the customer a debtor number") {
		t.Fatalf("exit %d: %s", code, out)
	}
}

// Nothing happens within the wait (the worker is down, say): exit 6, the push stays queued.
func TestInvoicesPushTimesOut(t *testing.T) {
	api := invoiceAnswers(waitingOnce, waitingOnce)
	out, code := ctl(api.start(t), "", "invoices", "push", "acme", invoiceID, "-timeout", "1s")
	if code != exitPending || !strings.Contains(out, "the push is queued") {
		t.Fatalf("exit %d: %s", code, out)
	}
}

func TestInvoicesPushWithoutWaitAndErrors(t *testing.T) {
	api := invoiceAnswers(waitingOnce, booked)
	url := api.start(t)
	if out, code := ctl(url, "", "invoices", "push", "-wait=false", "acme", invoiceID); code != exitOK || !strings.Contains(out, "pushed invoice") {
		t.Fatalf("-wait=false: exit %d: %s", code, out)
	}
	api.mu.Lock()
	n := len(api.requests)
	api.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d requests without waiting", n)
	}
	if out, code := ctl(url, "", "invoices", "show", "acme", invoiceID); code != exitOK || !strings.Contains(out, "is booked") {
		t.Fatalf("show: exit %d: %s", code, out)
	}
	for _, args := range [][]string{{"invoices", "push", "acme"}, {"invoices", "push", "acme", invoiceID, "-timeout", "x"}, {"invoices", "mark", "acme", invoiceID}} {
		if out, code := ctl(url, "", args...); code != exitUsage {
			t.Errorf("%v: exit %d: %s", args, code, out)
		}
	}
	missing := &adminAPI{answer: func(string, string) (int, string) {
		return 404, `{"error":{"code":"not_found","message":"no tenant \"nobody\""}}`
	}}
	if out, code := ctl(missing.start(t), "", "invoices", "push", "nobody", invoiceID); code != exitNotFound {
		t.Fatalf("unknown tenant: exit %d: %s", code, out)
	}
}
