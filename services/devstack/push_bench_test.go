package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koppel/koppel/pkg/bus"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/koppel/koppel/services/devstack/internal/stack"
)

// pushTarget is an organisation of the benchmark's tenant: its Tribe ID and e-Boekhouden ID.
type pushTarget struct{ tribeID, ebID string }

// BenchmarkPushCapacity measures how many Tribe organisation edits a second koppel takes to
// e-Boekhouden, with every service a real process on this machine (2 cores, shared with NATS,
// Redis, the simulators and the load generator) and the API budgets opened up. Each change is
// an edit in Tribe and its webhook, signed, to the gateway; the relation service reads the
// organisation, reads and writes the e-Boekhouden relation, and stores the new state.
//
//	changes/s     sustained over a burst of 4,000 changes, from the first webhook to the last
//	              change written to e-Boekhouden
//	p50/p99-ms    at half that rate: from the webhook to the change standing in e-Boekhouden
func BenchmarkPushCapacity(b *testing.B) {
	s := startStackEnv(b, map[string]string{"KOPPEL_TRIBE_RATE": "10000", "KOPPEL_EBOEKHOUDEN_RATE": "10000", "KOPPEL_LOG_LEVEL": "warn"}, "scheduler")
	ctx := context.Background()
	m, err := s.DialMapping()
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	const tenant = "druk"
	if err := seedTenant(ctx, s, sandboxSpec{id: tenant, name: "Druk B.V.", company: "Druk Boekhouding", relations: 300, seed: 5}); err != nil {
		b.Fatal(err)
	}
	st := &sandboxTenant{s: s, id: tenant, tribeEnv: tenant, m: m}
	eventually(b, "the import", 3*time.Minute, func() bool {
		r := st.run(b, bus.KindImport)
		return r != nil && r.Status == mappingv1.RunStatus_RUN_STATUS_SUCCEEDED
	})
	drained(b, s)
	// From here the load generator delivers the webhooks itself, many at once, as Tribe's
	// Pub/Sub would; the simulator's own (one at a time) are dropped.
	sandboxJSON(b, s, "PUT", "/tribe/_sim/environments/"+tenant+"/faults", map[string]any{"dropRate": 1}, nil)
	admin := &adminClient{base: "http://" + s.Addrs["admin"], token: s.AdminToken}
	if err := admin.put("/admin/v1/tenants/"+tenant+"/secrets/webhook_secret", map[string]string{"value": "bench-secret"}); err != nil {
		b.Fatal(err)
	}
	var targets []pushTarget
	for _, o := range tribeEntities(b, s, tenant, "Relation_Organization") {
		if id, _ := o["ImportId"].(string); id != "" {
			targets = append(targets, pushTarget{tribeID: o["ID"].(string), ebID: id})
		}
	}
	var admins []struct{ ID, Company string }
	sandboxJSON(b, s, "GET", "/eboekhouden/_sim/admins", nil, &admins)
	ebAdmin := ""
	for _, a := range admins {
		if a.Company == "Druk Boekhouding" {
			ebAdmin = a.ID
		}
	}
	load := &pushLoad{b: b, s: s, tenant: tenant, ebAdmin: ebAdmin, targets: targets}

	b.Run("burst", func(b *testing.B) {
		const n = 4000
		patches := load.patches()
		start := time.Now()
		load.burst(n, 32)
		drained(b, s)
		elapsed := time.Since(start)
		// Several edits of one organisation that wait in the queue together are one write: the
		// relation service reads the organisation as it is now. What must hold is that
		// e-Boekhouden ends as Tribe is, for every organisation.
		if differ := load.differing(); len(differ) > 0 {
			b.Fatalf("after %d changes, %d organisations differ in e-Boekhouden, such as %v", n, len(differ), differ[:min(len(differ), 3)])
		}
		b.ReportMetric(load.patches()-patches, "eb-writes")
		load.capacity = n / elapsed.Seconds()
		b.ReportMetric(load.capacity, "changes/s")
		b.ReportMetric(float64(load.busy.Swap(0)), "redelivered-503s")
	})
	b.Run("half-rate", func(b *testing.B) {
		rate := max(load.capacity/2, 1)
		lat := load.paced(rate, 10*time.Second)
		slices.Sort(lat)
		q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond) }
		b.ReportMetric(rate, "changes/s")
		b.ReportMetric(float64(len(lat)), "measured")
		b.ReportMetric(q(0.50), "p50-ms")
		b.ReportMetric(q(0.99), "p99-ms")
		b.ReportMetric(float64(load.busy.Swap(0)), "redelivered-503s")
	})
}

// drained waits until the relation service has handled every relation event.
func drained(b *testing.B, s *stack.Stack) {
	js := stackJetStream(b, s)
	eventually(b, "the relation events handled", 5*time.Minute, func() bool {
		c, err := js.Consumer(context.Background(), bus.StreamTribeEvents, bus.ConsumerRelationEvents)
		if err != nil {
			return false
		}
		info, err := c.Info(context.Background())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
}

type adminClient struct{ base, token string }

func (a *adminClient) put(path string, body any) error {
	return call(context.Background(), "PUT", a.base+path, a.token, body, nil)
}

// pushLoad makes changes: an edit of an organisation's phone number in Tribe, then its webhook.
type pushLoad struct {
	b        *testing.B
	s        *stack.Stack
	tenant   string
	ebAdmin  string
	targets  []pushTarget
	seq      atomic.Int64
	capacity float64
	// busy counts the webhooks the gateway answered 503 (delivered again, as Tribe does).
	busy atomic.Int64
}

var pushHTTP = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 30 * time.Second}

// change edits target t in Tribe and delivers its webhook; it returns the phone number written.
func (l *pushLoad) change(t pushTarget) (string, error) {
	n := l.seq.Add(1)
	phone := fmt.Sprintf("06-%08d", n)
	sb := "http://" + l.s.Addrs["sandbox"]
	body := fmt.Sprintf(`{"PhoneNumber":%q}`, phone)
	req, _ := http.NewRequest("PATCH", sb+"/tribe/_sim/environments/"+l.tenant+"/entities/Relation_Organization/"+t.tribeID, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := pushHTTP.Do(req)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("edit in Tribe: %d", resp.StatusCode)
	}
	event := []byte(fmt.Sprintf(`{"webhookId":"","payload":{"type":"EntityUpdateMutation","entityType":"Relation.Organization","entityId":%q,"mutationId":"bench-%d","timestamp":%q}}`,
		t.tribeID, n, time.Now().UTC().Format(time.RFC3339)))
	// Delivered as Tribe does: again after a 503 (the gateway's back-pressure), after its
	// Retry-After; each such answer is counted.
	for attempt := 0; ; attempt++ {
		wh, _ := http.NewRequest("POST", "http://"+l.s.Addrs["gateway"]+"/webhooks/tribe/"+l.tenant, bytes.NewReader(event))
		wh.Header.Set("Content-Type", "application/json")
		wh.Header.Set("X-Tribe-Signature", sign("bench-secret", event))
		resp, err = pushHTTP.Do(wh)
		if err != nil {
			return "", err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		resp.Body.Close()
		switch {
		case resp.StatusCode == 202:
			return phone, nil
		case resp.StatusCode == http.StatusServiceUnavailable && attempt < 20:
			l.busy.Add(1)
			wait := 100 * time.Millisecond
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
				wait = time.Duration(s) * time.Second
			}
			time.Sleep(wait)
		default:
			return "", fmt.Errorf("webhook: %d %s", resp.StatusCode, body)
		}
	}
}

// burst makes n changes with workers at once, spread over the organisations.
func (l *pushLoad) burst(n, workers int) {
	var wg sync.WaitGroup
	var next atomic.Int64
	var firstErr atomic.Value
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				if _, err := l.change(l.targets[int(i)%len(l.targets)]); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		l.b.Fatal(err)
	}
}

// differing lists the organisations whose phone number in e-Boekhouden is not Tribe's.
func (l *pushLoad) differing() []string {
	var rels []struct {
		ID          int64  `json:"id"`
		PhoneNumber string `json:"phoneNumber"`
	}
	sandboxJSON(l.b, l.s, "GET", "/eboekhouden/_sim/admins/"+l.ebAdmin+"/state?kind=relations", nil, &rels)
	eb := map[string]string{}
	for _, r := range rels {
		eb[strconv.FormatInt(r.ID, 10)] = r.PhoneNumber
	}
	var out []string
	for _, o := range tribeEntities(l.b, l.s, l.tenant, "Relation_Organization") {
		id, _ := o["ImportId"].(string)
		phone, _ := o["PhoneNumber"].(string)
		if id != "" && eb[id] != phone {
			out = append(out, fmt.Sprintf("%s (Tribe %q, e-Boekhouden %q)", id, phone, eb[id]))
		}
	}
	return out
}

func (l *pushLoad) patches() float64 {
	var stats map[string]float64
	sandboxJSON(l.b, l.s, "GET", "/eboekhouden/_sim/stats", nil, &stats)
	return stats["PATCH /v1/relation/{id}"]
}

// paced makes changes at rate a second for the window, round robin over the organisations, and
// returns, for the last change of each organisation (an earlier one is overwritten), the time
// from its webhook to e-Boekhouden storing it.
func (l *pushLoad) paced(rate float64, window time.Duration) []time.Duration {
	n := int(rate * window.Seconds())
	var mu sync.Mutex
	sentAt := map[string]time.Time{} // phone number written -> when its webhook went out
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for i := range n {
		<-tick.C
		t := l.targets[i%len(l.targets)]
		wg.Go(func() {
			at := time.Now()
			phone, err := l.change(t)
			if err != nil {
				l.b.Error(err)
				return
			}
			mu.Lock()
			sentAt[phone] = at
			mu.Unlock()
		})
	}
	wg.Wait()
	drained(l.b, l.s)
	var rels []struct {
		PhoneNumber string    `json:"phoneNumber"`
		StoredAt    time.Time `json:"storedAt"`
	}
	sandboxJSON(l.b, l.s, "GET", "/eboekhouden/_sim/admins/"+l.ebAdmin+"/state?kind=relations", nil, &rels)
	var out []time.Duration
	for _, r := range rels {
		if at, ok := sentAt[r.PhoneNumber]; ok {
			out = append(out, r.StoredAt.Sub(at))
		}
	}
	if len(out) == 0 {
		l.b.Fatal("no paced change found in e-Boekhouden")
	}
	return out
}
