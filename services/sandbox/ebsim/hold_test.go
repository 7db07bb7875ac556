package ebsim

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// newInvoiceBody gives a valid invoice (booked as an open item) for a new relation of ts.
func (ts *tsim) newInvoiceBody(number string) []byte {
	ts.t.Helper()
	_, b := ts.api("GET", "/v1/invoicetemplate?active=true", nil)
	var tpl envelope[invoiceTemplate]
	_ = json.Unmarshal(b, &tpl)
	_, b = ts.api("POST", "/v1/relation", map[string]any{"name": "Klant " + number})
	var rel struct{ ID int64 }
	_ = json.Unmarshal(b, &rel)
	if len(tpl.Items) == 0 || rel.ID == 0 {
		ts.t.Fatalf("no template or relation: %s", b)
	}
	body, _ := json.Marshal(map[string]any{"relationId": rel.ID, "termOfPayment": 14, "templateId": tpl.Items[0].ID,
		"invoiceNumber": number, "items": []any{map[string]any{"description": "Uur", "pricePerUnit": 10, "vatCode": "HOOG_VERK_21", "ledgerId": ts.ledger("8000")}},
		"mutation": map[string]any{"ledgerId": ts.ledger("1300")}})
	return body
}

// post sends a create in the background; the returned channel gets its status, or 0 when the
// request failed (the client went away).
func (ts *tsim) post(ctx context.Context, path string, body []byte) <-chan int {
	done := make(chan int, 1)
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.srv.URL+path, bytes.NewReader(body))
	req.Header.Set("Authorization", ts.token)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	return done
}

func (ts *tsim) waitHeld(want int) []HeldAnswer {
	ts.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		held := ts.sim.Held()
		if len(held) == want {
			return held
		}
		if time.Now().After(deadline) {
			ts.t.Fatalf("held answers %v, want %d", held, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestHoldAfterCreateHoldsTheAnswerOfAStoredInvoice(t *testing.T) {
	ts := newT(t, Options{}, AdminSpec{})
	ts.sim.SetFaults(ts.adm.ID, Faults{HoldAfterCreate: Duration(time.Minute)})
	answer := ts.post(context.Background(), "/v1/invoice", ts.newInvoiceBody("F1001"))

	held := ts.waitHeld(1)
	if h := held[0]; h.AdminID != ts.adm.ID || h.Route != "POST /v1/invoice" || h.InvoiceNumber != "F1001" || h.ID == 0 {
		t.Fatalf("held %+v", h)
	}
	// Stored while its answer is held: readable and an open item already.
	if st, b := ts.api("GET", "/v1/invoice?invoiceNumber=F1001", nil); st != 200 || !bytes.Contains(b, []byte(`"invoiceNumber":"F1001"`)) {
		t.Fatalf("held invoice not listed: %d %s", st, b)
	}
	if info, _ := ts.sim.Administration(ts.adm.ID); info.Invoices != 1 || info.OpenItems != 1 {
		t.Fatalf("held invoice not stored: %+v", info)
	}
	st, b := ts.do("GET", "/_sim/held", "", nil)
	var listed []HeldAnswer
	if err := json.Unmarshal(b, &listed); st != 200 || err != nil || len(listed) != 1 || listed[0].ID != held[0].ID {
		t.Fatalf("GET /_sim/held: %d %s", st, b)
	}
	select {
	case got := <-answer:
		t.Fatalf("answer %d went out while held", got)
	case <-time.After(50 * time.Millisecond):
	}

	// Clearing the knob lets the answer go.
	ts.do("DELETE", "/_sim/admins/"+ts.adm.ID+"/faults", "", nil)
	select {
	case got := <-answer:
		if got != 201 {
			t.Fatalf("released answer: %d", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("answer still held after the faults were cleared")
	}
	ts.waitHeld(0)

	// A client that goes away while held (a crash) leaves the invoice stored and nothing held.
	ts.sim.SetFaults("", Faults{HoldAfterCreate: Duration(time.Minute)})
	ctx, cancel := context.WithCancel(context.Background())
	answer = ts.post(ctx, "/v1/invoice", ts.newInvoiceBody("F1002"))
	ts.waitHeld(1)
	cancel()
	if got := <-answer; got != 0 {
		t.Fatalf("cancelled request answered %d", got)
	}
	ts.waitHeld(0)
	if info, _ := ts.sim.Administration(ts.adm.ID); info.Invoices != 2 {
		t.Fatalf("invoices after the client went away: %+v", info)
	}

	// The knob holds nothing that was refused: a duplicate number answers at once.
	ts.wantErr("POST", "/v1/invoice", json.RawMessage(ts.newInvoiceBody("F1002")), 400, "FACT_101")
	ts.sim.ClearFaults()

	// A short hold ends by itself.
	ts.sim.SetFaults(ts.adm.ID, Faults{HoldAfterCreate: Duration(20 * time.Millisecond)})
	if got := <-ts.post(context.Background(), "/v1/invoice", ts.newInvoiceBody("F1003")); got != 201 {
		t.Fatalf("short hold: %d", got)
	}
}
