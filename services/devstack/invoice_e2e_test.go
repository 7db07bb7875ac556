package main

import (
	"context"
	"testing"
	"time"

	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
)

// From a Tribe invoice sent to a customer e-Boekhouden does not know yet, through the debtor's
// sync, the booking as an open item and a 429 storm from e-Boekhouden, to a bank payment that
// makes the invoice Paid in Tribe: every service a real process, Tribe's own signed webhooks.
func TestSentInvoiceToPaidEndToEnd(t *testing.T) {
	s := startStackEnv(t, map[string]string{"KOPPEL_TRIBE_RATE": "1000", "KOPPEL_EBOEKHOUDEN_RATE": "1000"}, "scheduler")
	ctx := context.Background()
	if _, err := seedDemo(ctx, s); err != nil {
		t.Fatal(err)
	}
	m, err := s.DialMapping()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	st := &sandboxTenant{s: s, id: "demo", tribeEnv: "demo", m: m}
	eventually(t, "the demo import", 60*time.Second, func() bool {
		r := st.run(t, "import")
		return r != nil && r.Status == mappingv1.RunStatus_RUN_STATUS_SUCCEEDED
	})
	// Tribe customers with draft invoices that e-Boekhouden has never heard of.
	sandboxJSON(t, s, "POST", "/tribe/_sim/environments/demo/generate", map[string]any{"organizations": 2, "products": 3, "invoices": 6, "seed": 9}, nil)
	var draft map[string]any
	for _, inv := range tribeEntities(t, s, "demo", "Activity_Invoice") {
		if ph, _ := inv["Phase"].(map[string]any); ph != nil && draft == nil {
			for _, p := range tribeEntities(t, s, "demo", "Datastore_Phase_ActivityInvoice") {
				if p["ID"] == ph["ID"] && p["Code"] == "Draft" {
					draft = inv
				}
			}
		}
	}
	if draft == nil {
		t.Fatal("no draft invoice generated")
	}
	id := draft["ID"].(string)

	// e-Boekhouden answers 429 now and then while the invoice is booked.
	var admins []struct{ ID string }
	sandboxJSON(t, s, "GET", "/eboekhouden/_sim/admins", nil, &admins)
	ebAdmin := admins[0].ID
	sandboxJSON(t, s, "PUT", "/eboekhouden/_sim/faults", map[string]any{"rateLimitProb": 0.3, "retryAfter": "200ms"}, nil)

	sandboxJSON(t, s, "POST", "/tribe/_sim/environments/demo/invoices/"+id+"/phase", map[string]string{"code": "Sent"}, nil)
	var number string
	for _, inv := range tribeEntities(t, s, "demo", "Activity_Invoice") {
		if inv["ID"] == id {
			number, _ = inv["Number"].(string)
		}
	}
	if number == "" {
		t.Fatal("the sent invoice has no number")
	}
	eventually(t, "the invoice booked as an open item", 90*time.Second, func() bool {
		var open []map[string]any
		sandboxJSON(t, s, "GET", "/eboekhouden/_sim/admins/"+ebAdmin+"/state?kind=outstanding", nil, &open)
		for _, o := range open {
			if o["invoiceNumber"] == number {
				return true
			}
		}
		return false
	})
	sandboxJSON(t, s, "DELETE", "/eboekhouden/_sim/faults", nil, nil)
	var invoices []struct {
		InvoiceNumber string `json:"invoiceNumber"`
	}
	sandboxJSON(t, s, "GET", "/eboekhouden/_sim/admins/"+ebAdmin+"/state?kind=invoices", nil, &invoices)
	n := 0
	for _, inv := range invoices {
		if inv.InvoiceNumber == number {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d e-Boekhouden invoices numbered %s", n, number)
	}

	// The bookkeeper processes the bank statement; the next payment run marks it Paid.
	sandboxJSON(t, s, "POST", "/eboekhouden/_sim/admins/"+ebAdmin+"/payments", map[string]string{"invoiceNumber": number}, nil)
	admin := &client{t: t, base: "http://" + s.Addrs["admin"], token: s.AdminToken}
	if code, body := admin.do("POST", "/admin/v1/tenants/demo/sync/payment", nil); code != 202 {
		t.Fatalf("run payments: %d %v", code, body)
	}
	eventually(t, "the invoice Paid in Tribe", 30*time.Second, func() bool {
		for _, inv := range tribeEntities(t, s, "demo", "Activity_Invoice") {
			if inv["ID"] == id {
				ph, _ := inv["Phase"].(map[string]any)
				for _, p := range tribeEntities(t, s, "demo", "Datastore_Phase_ActivityInvoice") {
					if ph != nil && p["ID"] == ph["ID"] {
						return p["Code"] == "Paid"
					}
				}
			}
		}
		return false
	})
}
