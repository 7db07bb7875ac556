package main

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/koppel/koppel/services/devstack/internal/stack"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// demoTenant seeds the demo tenant (seedDemo, activated through the admin API) and waits for its
// initial import.
func demoTenant(t *testing.T, s *stack.Stack) *sandboxTenant {
	t.Helper()
	if _, err := seedDemo(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	m, err := s.DialMapping()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	var admins []struct{ ID string }
	sandboxJSON(t, s, "GET", "/eboekhouden/_sim/admins", nil, &admins)
	st := &sandboxTenant{s: s, id: "demo", tribeEnv: "demo", ebAdmin: admins[0].ID, m: m}
	eventually(t, "the demo import", 60*time.Second, func() bool {
		r := st.run(t, "import")
		return r != nil && r.Status == mappingv1.RunStatus_RUN_STATUS_SUCCEEDED
	})
	return st
}

// entity finds one Tribe record by ID; nil when there is none.
func (st *sandboxTenant) entity(t *testing.T, set, id string) map[string]any {
	for _, e := range tribeEntities(t, st.s, st.tribeEnv, set) {
		if e["ID"] == id {
			return e
		}
	}
	return nil
}

// draftInvoiceOfLinkedCustomer generates Tribe customers with draft invoices, and has the
// customer of one draft reach e-Boekhouden through a change a Tribe user makes, so the invoice
// need not wait for its debtor. It returns the draft's ID.
func draftInvoiceOfLinkedCustomer(t *testing.T, st *sandboxTenant) string {
	t.Helper()
	sandboxJSON(t, st.s, "POST", "/tribe/_sim/environments/demo/generate", map[string]any{"organizations": 2, "products": 3, "invoices": 6, "seed": 9}, nil)
	draft := ""
	for _, inv := range tribeEntities(t, st.s, "demo", "Activity_Invoice") {
		if draft == "" && st.phase(t, inv) == "Draft" {
			draft = inv["ID"].(string)
		}
	}
	if draft == "" {
		t.Fatal("no draft invoice generated")
	}
	customer := st.entity(t, "Relationship_Organization_CommercialRelationship_Customer", navID(st.entity(t, "Activity_Invoice", draft)["Relationship"]))
	org := navID(customer["Organization"])
	if org == "" {
		t.Fatalf("the draft's customer relationship has no organisation: %v", customer)
	}
	sandboxJSON(t, st.s, "PATCH", "/tribe/_sim/environments/demo/entities/Relation_Organization/"+org, map[string]any{"PhoneNumber": "020-7654321"}, nil)
	eventually(t, "the customer in e-Boekhouden", 30*time.Second, func() bool {
		id, _ := st.entity(t, "Relation_Organization", org)["ImportId"].(string)
		return id != ""
	})
	return draft
}

// phase is the code of a Tribe invoice's phase.
func (st *sandboxTenant) phase(t *testing.T, inv map[string]any) string {
	code, _ := st.entity(t, "Datastore_Phase_ActivityInvoice", navID(inv["Phase"]))["Code"].(string)
	return code
}

// send moves a Tribe invoice to phase Sent, as a user sending it does, and returns its number.
func (st *sandboxTenant) send(t *testing.T, id string) string {
	t.Helper()
	sandboxJSON(t, st.s, "POST", "/tribe/_sim/environments/demo/invoices/"+id+"/phase", map[string]string{"code": "Sent"}, nil)
	number, _ := st.entity(t, "Activity_Invoice", id)["Number"].(string)
	if number == "" {
		t.Fatal("the sent invoice has no number")
	}
	return number
}

// tribeInvoice is a Tribe invoice with its lines, every field.
func (st *sandboxTenant) tribeInvoice(t *testing.T, id string) (map[string]any, []map[string]any) {
	var lines []map[string]any
	for _, l := range tribeEntities(t, st.s, st.tribeEnv, "ProductLine") {
		if navID(l["Activity"]) == id {
			lines = append(lines, l)
		}
	}
	return st.entity(t, "Activity_Invoice", id), lines
}

// ebInvoiceIDs are the IDs of the e-Boekhouden invoices with this number.
func (st *sandboxTenant) ebInvoiceIDs(t *testing.T, number string) []string {
	var invoices []struct {
		ID            int64  `json:"id"`
		InvoiceNumber string `json:"invoiceNumber"`
	}
	sandboxJSON(t, st.s, "GET", "/eboekhouden/_sim/admins/"+st.ebAdmin+"/state?kind=invoices", nil, &invoices)
	var ids []string
	for _, inv := range invoices {
		if inv.InvoiceNumber == number {
			ids = append(ids, fmt.Sprint(inv.ID))
		}
	}
	return ids
}

// openItems are e-Boekhouden's open debtor items of an invoice number.
func (st *sandboxTenant) openItems(t *testing.T, number string) []map[string]any {
	var all, out []map[string]any
	sandboxJSON(t, st.s, "GET", "/eboekhouden/_sim/admins/"+st.ebAdmin+"/state?kind=outstanding", nil, &all)
	for _, o := range all {
		if o["invoiceNumber"] == number && o["side"] == "D" {
			out = append(out, o)
		}
	}
	return out
}

func (st *sandboxTenant) invoiceLink(t *testing.T, id string) (*mappingv1.Link, error) {
	res, err := st.m.GetLink(context.Background(), &mappingv1.GetLinkRequest{TenantId: st.id, Kind: "invoice", TribeId: id})
	return res.GetLink(), err
}

func ebStat(t *testing.T, s *stack.Stack, route string) float64 {
	var stats map[string]float64
	sandboxJSON(t, s, "GET", "/eboekhouden/_sim/stats", nil, &stats)
	return stats[route]
}

// totalInclVAT adds up the lines' totals incl. VAT, to the cent.
func totalInclVAT(lines []map[string]any) string {
	var cents int64
	for _, l := range lines {
		f, _ := l["TotalIncludingVat"].(float64)
		cents += int64(f*100 + 0.5)
	}
	return fmt.Sprintf("%d.%02d", cents/100, cents%100)
}

// The invoice service dies after e-Boekhouden stored the invoice and before koppel linked it:
// the restarted service finds the invoice by its number and links it, never booking it twice.
func TestInvoiceServiceKilledBetweenTheCreateAndTheLink(t *testing.T) {
	s := startStackEnv(t, map[string]string{"KOPPEL_TRIBE_RATE": "1000", "KOPPEL_EBOEKHOUDEN_RATE": "1000"}, "scheduler")
	st := demoTenant(t, s)
	id := draftInvoiceOfLinkedCustomer(t, st)

	// e-Boekhouden stores the invoice but holds its answer, until the invoice service is dead.
	sandboxJSON(t, s, "PUT", "/eboekhouden/_sim/faults", map[string]any{"holdAfterCreate": "5m"}, nil)
	number := st.send(t, id)
	sentInv, sentLines := st.tribeInvoice(t, id)
	eventually(t, "e-Boekhouden holding the answer to the invoice's create", 30*time.Second, func() bool {
		var held []struct{ InvoiceNumber string }
		sandboxJSON(t, s, "GET", "/eboekhouden/_sim/held", nil, &held)
		return len(held) == 1 && held[0].InvoiceNumber == number
	})
	s.Kill("invoice")
	sandboxJSON(t, s, "DELETE", "/eboekhouden/_sim/faults", nil, nil)
	if ids := st.ebInvoiceIDs(t, number); len(ids) != 1 {
		t.Fatalf("e-Boekhouden invoices numbered %s at the kill: %v", number, ids)
	}
	if _, err := st.invoiceLink(t, id); status.Code(err) != codes.NotFound {
		t.Fatalf("the invoice was linked before the kill (err %v): the crash missed its window", err)
	}

	// The event waits in JetStream for the restarted service (redelivered after its ack wait).
	if err := s.Restart(context.Background(), "invoice"); err != nil {
		t.Fatal(err)
	}
	var link *mappingv1.Link
	eventually(t, "the invoice linked by the restarted service", 90*time.Second, func() bool {
		l, err := st.invoiceLink(t, id)
		link = l
		return err == nil
	})
	ids := st.ebInvoiceIDs(t, number)
	if len(ids) != 1 || link.EboekhoudenId != ids[0] {
		t.Fatalf("e-Boekhouden invoices numbered %s: %v; linked to %s", number, ids, link.EboekhoudenId)
	}
	if n := ebStat(t, s, "POST /v1/invoice"); n != 1 {
		t.Fatalf("POST /v1/invoice called %v times, want once (the killed attempt)", n)
	}
	open := st.openItems(t, number)
	if len(open) != 1 || fmt.Sprintf("%.2f", open[0]["totalAmount"]) != totalInclVAT(sentLines) || open[0]["paidAmount"] != 0.0 {
		t.Fatalf("open items of %s: %v, want one of %s", number, open, totalInclVAT(sentLines))
	}
	inv, lines := st.tribeInvoice(t, id)
	if !reflect.DeepEqual(inv, sentInv) || !reflect.DeepEqual(lines, sentLines) {
		t.Fatalf("the Tribe invoice changed:\nsent  %v %v\nafter %v %v", sentInv, sentLines, inv, lines)
	}

	// Tribe delivers the webhook again: as it was (a retry within the dedup window), and later
	// as a new event of the same invoice. Neither books anything.
	var deliveries []struct {
		Outcome   string `json:"outcome"`
		EventID   string `json:"eventId"`
		WebhookID string `json:"webhookId"`
		Body      string `json:"body"`
	}
	sandboxJSON(t, s, "GET", "/tribe/_sim/environments/demo/deliveries", nil, &deliveries)
	var regs []struct{ ID, Secret string }
	sandboxJSON(t, s, "GET", "/tribe/_sim/environments/demo/webhooks", nil, &regs)
	body, eventID, secret := "", "", ""
	for _, d := range deliveries {
		if d.Outcome == "delivered" && strings.Contains(d.Body, id) && strings.Contains(d.Body, "Activity.Invoice") {
			body, eventID = d.Body, d.EventID
			for _, r := range regs {
				if r.ID == d.WebhookID {
					secret = r.Secret
				}
			}
		}
	}
	if body == "" || eventID == "" || secret == "" {
		t.Fatalf("no delivered webhook of invoice %s in %d deliveries", id, len(deliveries))
	}
	published := `koppel_gateway_webhook_events_total{duplicate="false",entity="Activity_Invoice"}`
	acked := `koppel_bus_messages_total{consumer="invoice-evt",outcome="ack"}`
	published0, acked0 := metric(t, s, "gateway", published), metric(t, s, "invoice", acked)
	later := strings.Replace(body, eventID, eventID+"0", 1)
	for _, b := range []string{body, later} {
		if code := deliver(t, s, "demo", secret, []byte(b)); code != 202 {
			t.Fatalf("repeated delivery: %d", code)
		}
	}
	newEvents := metric(t, s, "gateway", published) - published0
	if newEvents < 1 {
		t.Fatalf("the later delivery was not published (%v new events)", newEvents)
	}
	eventually(t, "the invoice service to handle the repeated deliveries", 30*time.Second, func() bool {
		return metric(t, s, "invoice", acked)-acked0 >= newEvents
	})
	if ids := st.ebInvoiceIDs(t, number); len(ids) != 1 || ebStat(t, s, "POST /v1/invoice") != 1 || len(st.openItems(t, number)) != 1 {
		t.Fatalf("a repeated webhook booked again: invoices %v, creates %v", ids, ebStat(t, s, "POST /v1/invoice"))
	}
}

// A payment that leaves part of a booked invoice open is tracked on the link and in the
// tenant's history, and the invoice stays Sent; the rest of the payment makes it Paid.
func TestPartialPaymentKeepsTheInvoiceSent(t *testing.T) {
	s := startStackEnv(t, map[string]string{"KOPPEL_TRIBE_RATE": "1000", "KOPPEL_EBOEKHOUDEN_RATE": "1000"}, "scheduler")
	st := demoTenant(t, s)
	id := draftInvoiceOfLinkedCustomer(t, st)
	number := st.send(t, id)
	eventually(t, "the invoice booked and linked", 30*time.Second, func() bool {
		_, err := st.invoiceLink(t, id)
		return err == nil && len(st.openItems(t, number)) == 1
	})
	admin := &client{t: t, base: "http://" + s.Addrs["admin"], token: s.AdminToken}
	runPayments := func() {
		t.Helper()
		code, body := admin.do("POST", "/admin/v1/tenants/demo/sync/payment", nil)
		runID, _ := body["run_id"].(string)
		if code != 202 || runID == "" {
			t.Fatalf("run payments: %d %v", code, body)
		}
		eventually(t, "payment run "+runID, 30*time.Second, func() bool {
			r := st.run(t, "payment")
			return r != nil && r.Id == runID && r.Status != mappingv1.RunStatus_RUN_STATUS_RUNNING
		})
		if r := st.run(t, "payment"); r.Status != mappingv1.RunStatus_RUN_STATUS_SUCCEEDED {
			t.Fatalf("payment run: %v %q", r.Status, r.Message)
		}
	}

	sandboxJSON(t, s, "POST", "/eboekhouden/_sim/admins/"+st.ebAdmin+"/payments", map[string]string{"invoiceNumber": number, "amount": "10.00"}, nil)
	runPayments()
	if ph := st.phase(t, st.entity(t, "Activity_Invoice", id)); ph != "Sent" {
		t.Fatalf("a partly paid invoice is %s in Tribe, want Sent", ph)
	}
	link, err := st.invoiceLink(t, id)
	var rec struct{ Number, Paid string }
	if err != nil || json.Unmarshal(link.Record, &rec) != nil || rec.Paid != "10.00" || rec.Number != number {
		t.Fatalf("link after the partial payment: %v %s", err, link.GetRecord())
	}
	if _, body := admin.do("GET", "/admin/v1/tenants/demo/status", nil); !strings.Contains(fmt.Sprint(body["history"]), "partial_payment") {
		t.Fatalf("history lacks the partial payment: %v", body["history"])
	}

	// The rest (the payment's default amount is what is open).
	sandboxJSON(t, s, "POST", "/eboekhouden/_sim/admins/"+st.ebAdmin+"/payments", map[string]string{"invoiceNumber": number}, nil)
	runPayments()
	if ph := st.phase(t, st.entity(t, "Activity_Invoice", id)); ph != "Paid" {
		t.Fatalf("a fully paid invoice is %s in Tribe, want Paid", ph)
	}
}
