package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/koppel/koppel/pkg/bus"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/koppel/koppel/services/devstack/internal/stack"
)

// Tribe delivers no webhook at all: an invoice sent and an organisation edited in Tribe reach
// e-Boekhouden through the Tribe scan alone, the invoice booked once however often the scan
// reads it. Every service a real process.
func TestTribeScanCatchesLostWebhooks(t *testing.T) {
	s := startStackEnv(t, map[string]string{"KOPPEL_TRIBE_RATE": "1000", "KOPPEL_EBOEKHOUDEN_RATE": "1000"}, "scheduler")
	st := demoTenant(t, s)
	admin := &client{t: t, base: "http://" + s.Addrs["admin"], token: s.AdminToken}
	// A draft invoice of a customer e-Boekhouden knows (its webhooks still delivered).
	draft := draftInvoiceOfLinkedCustomer(t, st)
	waitIdle(t, s)
	scan := func() {
		t.Helper()
		code, body := admin.do("POST", "/admin/v1/tenants/demo/sync/tribe-scan", nil)
		if code != 202 {
			t.Fatalf("run tribe-scan: %d %v", code, body)
		}
		eventually(t, "the tribe-scan run", 60*time.Second, func() bool {
			r := st.run(t, bus.KindTribeScan)
			return r != nil && r.GetId() == body["run_id"] && r.GetStatus() == mappingv1.RunStatus_RUN_STATUS_SUCCEEDED
		})
	}
	// The first scan, as at activation, starts the scan's cursors.
	scan()

	// Tribe now gives up on every webhook.
	sandboxJSON(t, s, "PUT", "/tribe/_sim/environments/demo/faults", map[string]any{"dropRate": 1.0}, nil)
	var org map[string]any
	for _, o := range tribeEntities(t, s, "demo", "Relation_Organization") {
		if id, _ := o["ImportId"].(string); id != "" && org == nil {
			org = o
		}
	}
	if org == nil {
		t.Fatal("no imported organisation")
	}
	orgID, ebID := org["ID"].(string), org["ImportId"].(string)
	sandboxJSON(t, s, "PATCH", "/tribe/_sim/environments/demo/entities/Relation_Organization/"+orgID, map[string]any{"PhoneNumber": "020-1112233"}, nil)
	number := st.send(t, draft)
	dropped := map[string]bool{}
	var deliveries []struct{ Outcome, Body string }
	sandboxJSON(t, s, "GET", "/tribe/_sim/environments/demo/deliveries", nil, &deliveries)
	for _, d := range deliveries {
		for _, id := range []string{orgID, draft} {
			if d.Outcome == "dropped" && strings.Contains(strings.ToLower(d.Body), strings.ToLower(id)) {
				dropped[id] = true
			}
		}
	}
	if !dropped[orgID] || !dropped[draft] {
		t.Fatalf("the webhooks of the edit and the send were not dropped: %v", deliveries)
	}
	waitIdle(t, s)
	if ids := st.ebInvoiceIDs(t, number); len(ids) != 0 {
		t.Fatalf("invoice %s booked without a webhook or a scan: %v", number, ids)
	}

	// The scan, run now, finds both.
	scan()
	eventually(t, "the sent invoice booked as an open item", 60*time.Second, func() bool { return len(st.openItems(t, number)) > 0 })
	eventually(t, "the organisation's phone in e-Boekhouden", 60*time.Second, func() bool {
		var rels []struct {
			ID          int64  `json:"id"`
			PhoneNumber string `json:"phoneNumber"`
		}
		sandboxJSON(t, s, "GET", "/eboekhouden/_sim/admins/"+st.ebAdmin+"/state?kind=relations", nil, &rels)
		for _, r := range rels {
			if fmt.Sprint(r.ID) == ebID {
				return r.PhoneNumber == "020-1112233"
			}
		}
		return false
	})

	// Scanning again reads the same changes (and the scan's own echoes); nothing is booked twice.
	scan()
	waitIdle(t, s)
	if ids, open := st.ebInvoiceIDs(t, number), st.openItems(t, number); len(ids) != 1 || len(open) != 1 {
		t.Fatalf("invoice %s: %d e-Boekhouden invoices, %d open items; want one of each", number, len(ids), len(open))
	}
	if link, err := st.invoiceLink(t, draft); err != nil || link.GetEboekhoudenId() == "" {
		t.Fatalf("invoice link: %v %v", link, err)
	}
}

// waitIdle waits until the workers have handled every Tribe change on the bus.
func waitIdle(t *testing.T, s *stack.Stack) {
	t.Helper()
	js := stackJetStream(t, s)
	eventually(t, "the Tribe changes handled", 60*time.Second, func() bool {
		for _, name := range []string{bus.ConsumerRelationEvents, bus.ConsumerInvoiceEvents} {
			c, err := js.Consumer(context.Background(), bus.StreamTribeEvents, name)
			if err != nil {
				t.Fatal(err)
			}
			info, err := c.Info(context.Background())
			if err != nil || info.NumPending > 0 || info.NumAckPending > 0 {
				return false
			}
		}
		return true
	})
}
