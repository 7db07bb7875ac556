package main

import (
	"bufio"
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/koppel/koppel/pkg/bus"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/koppel/koppel/services/devstack/internal/stack"
)

// apiCalls sums a service's koppel_api_requests_total for one system, as its /metrics says.
func apiCalls(t testing.TB, s *stack.Stack, service, system string) float64 {
	var n float64
	for _, v := range apiCallsBy(t, s, service, system) {
		n += v
	}
	return n
}

// apiCallsBy is a service's koppel_api_requests_total for one system by its other labels
// (endpoint and status).
func apiCallsBy(t testing.TB, s *stack.Stack, service, system string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + s.OpsAddrs[service] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "koppel_api_requests_total{") || !strings.Contains(line, `system="`+system+`"`) {
			continue
		}
		if i := strings.LastIndexByte(line, ' '); i > 0 {
			v, _ := strconv.ParseFloat(line[i+1:], 64)
			out[strings.Replace(line[len("koppel_api_requests_total"):i], `system="`+system+`",`, "", 1)] += v
		}
	}
	return out
}

// callsSince is after minus before, by key, leaving out keys that did not change.
func callsSince(before, after map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// BenchmarkImportAsProcesses is the initial import a user runs: every service a real process,
// the default API budgets (e-Boekhouden 5 calls a second, Tribe 10), an administration of 2,000
// relations of which a quarter are in Tribe already (same debtor number, name and address), and
// Tribe's webhooks of every write coming back through the gateway as they would. It reads the
// relation service's own metrics and reports:
//
//	eb-calls/relation      e-Boekhouden calls per relation, list pages included
//	tribe-calls/relation   Tribe calls per relation, the echoes of koppel's writes included
//	tribe-budget-%         the share of the Tribe budget the import used while it ran
//	relations/s            the import's pace at the default budgets
//	invoice-p50/p99-ms     another tenant's invoices, sent during the import, from Sent to open item
func BenchmarkImportAsProcesses(b *testing.B) {
	const (
		relations = 2000
		tribeRate = 10 // the default KOPPEL_TRIBE_RATE
	)
	s := startStackEnv(b, map[string]string{"KOPPEL_LOG_LEVEL": "warn"})
	ctx := context.Background()
	m, err := s.DialMapping()
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()

	// Another tenant, which invoices while the import runs.
	inv := &invoiceBenchTenant{id: "factuur", sentAt: map[string]time.Time{}}
	if err := seedTenant(ctx, s, sandboxSpec{id: inv.id, name: "Factuur B.V.", company: "Factuur Boekhouding", relations: 5, products: 5, seed: 3}); err != nil {
		b.Fatal(err)
	}
	sandboxJSON(b, s, "POST", "/tribe/_sim/environments/"+inv.id+"/generate", map[string]any{"organizations": 3, "products": 3, "invoices": 100, "seed": 3}, nil)
	var admins []struct{ ID, Company string }
	sandboxJSON(b, s, "GET", "/eboekhouden/_sim/admins", nil, &admins)
	for _, a := range admins {
		if a.Company == "Factuur Boekhouding" {
			inv.ebAdmin = a.ID
		}
	}
	inv.drafts, inv.customer = draftInvoices(b, s, inv.id)
	invSt := &sandboxTenant{s: s, id: inv.id, tribeEnv: inv.id, m: m}
	eventually(b, "the invoicing tenant's import", 2*time.Minute, func() bool {
		r := invSt.run(b, bus.KindImport)
		return r != nil && r.Status == mappingv1.RunStatus_RUN_STATUS_SUCCEEDED
	})
	// Every customer's first invoice before the measurement, so no invoice waits for its debtor.
	seen := map[string]bool{}
	var warm, rest []string
	for _, id := range inv.drafts {
		if c := inv.customer[id]; !seen[c] {
			seen[c] = true
			warm = append(warm, id)
		} else {
			rest = append(rest, id)
		}
	}
	inv.drafts = rest
	for _, id := range warm {
		inv.sentAt[id] = time.Now()
		if err := sendInvoice(s, inv, id); err != nil {
			b.Fatal(err)
		}
	}
	waitBooked(b, s, inv, warm, 3*time.Minute)

	ebBefore, trBefore := apiCalls(b, s, "relation", "eboekhouden"), apiCalls(b, s, "relation", "tribe")
	ebBy, trBy := apiCallsBy(b, s, "relation", "eboekhouden"), apiCallsBy(b, s, "relation", "tribe")
	start := time.Now()
	if err := seedTenant(ctx, s, sandboxSpec{id: "groot", name: "Groot B.V.", company: "Groot Boekhouding", relations: relations, seed: 42, inTribe: 4}); err != nil {
		b.Fatal(err)
	}
	big := &sandboxTenant{s: s, id: "groot", tribeEnv: "groot", m: m}

	// An invoice every two seconds while the import runs.
	var sent []string
	tick := time.NewTicker(2 * time.Second)
	var done *mappingv1.Run
	for done == nil {
		<-tick.C
		if r := big.run(b, bus.KindImport); r != nil && r.Status != mappingv1.RunStatus_RUN_STATUS_RUNNING {
			done = r
			break
		}
		if len(inv.drafts) > 0 {
			id := inv.drafts[0]
			inv.drafts = inv.drafts[1:]
			inv.sentAt[id] = time.Now()
			if err := sendInvoice(s, inv, id); err != nil {
				b.Fatal(err)
			}
			sent = append(sent, id)
		}
	}
	tick.Stop()
	elapsed := done.GetFinishedAt().AsTime().Sub(start)
	trDuring := apiCalls(b, s, "relation", "tribe") - trBefore
	if done.GetStatus() != mappingv1.RunStatus_RUN_STATUS_SUCCEEDED {
		b.Fatalf("import ended %s: %s", done.GetStatus(), done.GetMessage())
	}

	// The echoes of the import's last writes drain after it: wait until the relation events are
	// handled, then count.
	js := stackJetStream(b, s)
	eventually(b, "the relation events handled", 5*time.Minute, func() bool {
		c, err := js.Consumer(ctx, bus.StreamTribeEvents, bus.ConsumerRelationEvents)
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
	ebCalls := apiCalls(b, s, "relation", "eboekhouden") - ebBefore
	trCalls := apiCalls(b, s, "relation", "tribe") - trBefore
	lat := waitBooked(b, s, inv, sent, 3*time.Minute)

	c := done.GetCounts()
	b.Logf("import of %d relations: %v in %v; relation service: %v e-Boekhouden and %v Tribe calls (%v during the import)",
		relations, c, elapsed.Round(time.Second), ebCalls, trCalls, trDuring)
	b.Logf("e-Boekhouden calls: %v", callsSince(ebBy, apiCallsBy(b, s, "relation", "eboekhouden")))
	b.Logf("Tribe calls: %v", callsSince(trBy, apiCallsBy(b, s, "relation", "tribe")))
	b.Logf("relation events: %v", map[string]float64{
		"ack":      metric(b, s, "relation", `koppel_bus_messages_total{consumer="relation-evt",outcome="ack"}`),
		"deferred": metric(b, s, "relation", `koppel_bus_messages_total{consumer="relation-evt",outcome="deferred"}`),
		"retry":    metric(b, s, "relation", `koppel_bus_messages_total{consumer="relation-evt",outcome="retry"}`)})
	b.ReportMetric(ebCalls/relations, "eb-calls/relation")
	b.ReportMetric(trCalls/relations, "tribe-calls/relation")
	b.ReportMetric(100*trDuring/(tribeRate*elapsed.Seconds()), "tribe-budget-%")
	b.ReportMetric(relations/elapsed.Seconds(), "relations/s")
	if len(lat) > 0 {
		reportInvoiceLatency(b, lat)
	}
}

// reportInvoiceLatency reports the p50 and p99 of invoice latencies under their own names.
func reportInvoiceLatency(b *testing.B, lat []time.Duration) {
	sorted := slices.Clone(lat)
	slices.Sort(sorted)
	q := func(p float64) float64 {
		return float64(sorted[int(p*float64(len(sorted)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(q(0.50), "invoice-p50-ms")
	b.ReportMetric(q(0.99), "invoice-p99-ms")
	b.ReportMetric(float64(len(sorted)), "invoices")
}
