package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/koppel/koppel/services/devstack/internal/stack"
)

// invoiceBenchTenant is one of the benchmark's invoicing tenants: its draft Tribe invoices, and
// when each was sent.
type invoiceBenchTenant struct {
	id       string
	ebAdmin  string
	drafts   []string          // Tribe invoice IDs still in Draft, to be sent in order
	customer map[string]string // Tribe invoice ID → its customer relationship
	sentAt   map[string]time.Time
}

// BenchmarkInvoicePushLatency measures the time from a Tribe invoice being sent (the phase change
// that fires Tribe's webhook) to its standing as an open item in e-Boekhouden, with every service
// a real process: 50 invoices a second spread over 20 tenants, first on a quiet system, then
// while one other tenant runs its initial import of 10,000 relations. It reports p50, p99 and
// max in milliseconds; the import must not push the others' p99 up by more than a few seconds.
//
// API rates are opened up (1,000 calls a second per tenant) so the import runs as fast as the
// machine allows, the worst case for its neighbours; the simulators answer for every tenant from
// one process, as the real APIs would not, which makes the figures pessimistic.
func BenchmarkInvoicePushLatency(b *testing.B) {
	const (
		tenants   = 20
		rate      = 50 // invoices a second, over all tenants
		window    = 10 * time.Second
		customers = 5
	)
	s := startStackEnv(b, map[string]string{"KOPPEL_TRIBE_RATE": "1000", "KOPPEL_EBOEKHOUDEN_RATE": "1000", "KOPPEL_LOG_LEVEL": "warn"}, "scheduler")
	ctx := context.Background()
	m, err := s.DialMapping()
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()

	var ts []*invoiceBenchTenant
	for i := range tenants {
		id := fmt.Sprintf("inv%02d", i)
		if err := seedTenant(ctx, s, sandboxSpec{id: id, name: "Factuur " + id, company: "Boekhouding " + id, relations: 5, products: 5, seed: i + 1}); err != nil {
			b.Fatal(err)
		}
		sandboxJSON(b, s, "POST", "/tribe/_sim/environments/"+id+"/generate", map[string]any{"organizations": customers, "products": 3, "invoices": 200, "seed": i + 1}, nil)
		ts = append(ts, &invoiceBenchTenant{id: id, sentAt: map[string]time.Time{}})
	}
	var admins []struct{ ID, Company string }
	sandboxJSON(b, s, "GET", "/eboekhouden/_sim/admins", nil, &admins)
	for _, t := range ts {
		for _, a := range admins {
			if a.Company == "Boekhouding "+t.id {
				t.ebAdmin = a.ID
			}
		}
		t.drafts, t.customer = draftInvoices(b, s, t.id)
		st := &sandboxTenant{s: s, id: t.id, tribeEnv: t.id, m: m}
		eventually(b, t.id+"'s import", 60*time.Second, func() bool {
			r := st.run(b, "import")
			return r != nil && r.Status == mappingv1.RunStatus_RUN_STATUS_SUCCEEDED
		})
	}

	// Warm up: one invoice per customer, so every debtor exists in e-Boekhouden before the
	// measurement (the first invoice of a new customer waits for its relation to be pushed).
	warm := map[*invoiceBenchTenant][]string{}
	for _, t := range ts {
		seen := map[string]bool{}
		var rest []string
		for _, id := range t.drafts {
			if cust := t.customer[id]; !seen[cust] {
				seen[cust] = true
				warm[t] = append(warm[t], id)
			} else {
				rest = append(rest, id)
			}
		}
		t.drafts = rest
		for _, id := range warm[t] {
			t.sentAt[id] = time.Now()
			if err := sendInvoice(s, t, id); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, t := range ts {
		waitBooked(b, s, t, warm[t], 2*time.Minute)
	}

	b.Run("quiet", func(b *testing.B) {
		w := readInvoiceWork(b, s)
		lat := pushInvoices(b, s, ts, rate, window)
		reportLatencies(b, lat)
		reportWork(b, w, readInvoiceWork(b, s))
	})

	b.Run("during-import-of-10000", func(b *testing.B) {
		if err := seedTenant(ctx, s, sandboxSpec{id: "big", name: "Groot B.V.", company: "Groot Boekhouding", relations: 10000, seed: 99}); err != nil {
			b.Fatal(err)
		}
		big := &sandboxTenant{s: s, id: "big", tribeEnv: "big", m: m}
		eventually(b, "the big import under way", 5*time.Minute, func() bool {
			r := big.run(b, "import")
			return r != nil && r.Done > 0
		})
		before, w := big.run(b, "import"), readInvoiceWork(b, s)
		lat := pushInvoices(b, s, ts, rate, window)
		after := big.run(b, "import")
		reportWork(b, w, readInvoiceWork(b, s))
		if after.Status != mappingv1.RunStatus_RUN_STATUS_RUNNING {
			b.Logf("the import finished during the window (%s); the figures cover part of it", after.Status)
		}
		b.ReportMetric(float64(after.Done-before.Done)/window.Seconds(), "import-rel/s")
		reportLatencies(b, lat)
	})
}

// pushInvoices sends invoices at rate a second, round robin over the tenants, for the window,
// waits until every one is booked, and returns their latencies.
func pushInvoices(b *testing.B, s *stack.Stack, ts []*invoiceBenchTenant, rate int, window time.Duration) []time.Duration {
	b.Helper()
	n := rate * int(window/time.Second)
	sent := map[*invoiceBenchTenant][]string{}
	var (
		wg      sync.WaitGroup
		errOnce sync.Once
		sendErr error
	)
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for i := range n {
		t := ts[i%len(ts)]
		if len(t.drafts) == 0 {
			b.Fatalf("%s has no draft invoice left", t.id)
		}
		id := t.drafts[0]
		t.drafts = t.drafts[1:]
		sent[t] = append(sent[t], id)
		<-tick.C
		t.sentAt[id] = time.Now()
		wg.Go(func() {
			if err := sendInvoice(s, t, id); err != nil {
				errOnce.Do(func() { sendErr = err })
			}
		})
	}
	wg.Wait()
	if sendErr != nil {
		b.Fatal(sendErr)
	}
	var lat []time.Duration
	for t, ids := range sent {
		lat = append(lat, waitBooked(b, s, t, ids, 3*time.Minute)...)
	}
	return lat
}

// sendInvoice moves a Tribe invoice to phase Sent, which fires Tribe's webhook.
func sendInvoice(s *stack.Stack, t *invoiceBenchTenant, id string) error {
	return call(context.Background(), "POST", "http://"+s.Addrs["sandbox"]+"/tribe/_sim/environments/"+t.id+"/invoices/"+id+"/phase", "", map[string]string{"code": "Sent"}, nil)
}

// waitBooked waits until e-Boekhouden holds every one of the tenant's invoices ids and returns
// the time each took from being sent to being stored.
func waitBooked(b *testing.B, s *stack.Stack, t *invoiceBenchTenant, ids []string, timeout time.Duration) []time.Duration {
	b.Helper()
	numbers := map[string]string{} // Tribe invoice number → ID
	for _, inv := range tribeEntities(b, s, t.id, "Activity_Invoice") {
		if id, _ := inv["ID"].(string); slices.Contains(ids, id) {
			number, _ := inv["Number"].(string)
			numbers[number] = id
		}
	}
	var lat []time.Duration
	eventually(b, fmt.Sprintf("%d invoices of %s booked", len(ids), t.id), timeout, func() bool {
		var invoices []struct {
			InvoiceNumber string    `json:"invoiceNumber"`
			StoredAt      time.Time `json:"storedAt"`
		}
		sandboxJSON(b, s, "GET", "/eboekhouden/_sim/admins/"+t.ebAdmin+"/state?kind=invoices", nil, &invoices)
		lat = lat[:0]
		for _, inv := range invoices {
			if id, ok := numbers[inv.InvoiceNumber]; ok {
				lat = append(lat, inv.StoredAt.Sub(t.sentAt[id]))
			}
		}
		return len(lat) == len(ids)
	})
	return lat
}

// invoiceWork is what the invoice service has done so far: messages by outcome and handling time.
type invoiceWork struct{ acked, retried, seconds float64 }

func readInvoiceWork(b *testing.B, s *stack.Stack) invoiceWork {
	m := func(series string) float64 { return metric(b, s, "invoice", series) }
	return invoiceWork{
		acked:   m(`koppel_bus_messages_total{consumer="invoice-evt",outcome="ack"}`),
		retried: m(`koppel_bus_messages_total{consumer="invoice-evt",outcome="retry"}`),
		seconds: m(`koppel_bus_handle_seconds_sum{consumer="invoice-evt"}`),
	}
}

// reportWork reports the invoice service's mean handling time per message and its retries over
// a window: the handling time says what one invoice costs, the retries whether any waited on a
// lease or a debtor.
func reportWork(b *testing.B, before, after invoiceWork) {
	if n := after.acked - before.acked; n > 0 {
		b.ReportMetric((after.seconds-before.seconds)/n*1000, "handle-ms/msg")
	}
	b.ReportMetric(after.retried-before.retried, "retries")
}

func reportLatencies(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(q(1), "max-ms")
	b.ReportMetric(float64(len(lat)), "invoices")
}

// draftInvoices lists the IDs of a Tribe environment's invoices in phase Draft, and their customers.
func draftInvoices(b *testing.B, s *stack.Stack, env string) (ids []string, customer map[string]string) {
	draft := ""
	for _, p := range tribeEntities(b, s, env, "Datastore_Phase_ActivityInvoice") {
		if p["Code"] == "Draft" {
			draft, _ = p["ID"].(string)
		}
	}
	customer = map[string]string{}
	for _, inv := range tribeEntities(b, s, env, "Activity_Invoice") {
		if navID(inv["Phase"]) == draft {
			id, _ := inv["ID"].(string)
			ids = append(ids, id)
			customer[id] = navID(inv["Relationship"])
		}
	}
	slices.Sort(ids)
	return ids, customer
}
