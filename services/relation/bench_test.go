package main

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koppel/koppel/pkg/bus"
	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkInitialImport imports an administration of 10,000 relations into an empty Tribe
// environment, through the real clients against both simulators and a real mapping service on
// loopback. It reports relations per second, API calls per relation (the floor is one detail
// read per relation plus the list pages) and the peak heap of the whole process, simulators
// included.
func BenchmarkInitialImport(b *testing.B) {
	const n = 10000
	for b.Loop() {
		b.StopTimer()
		w := newWorld(b, n, false)
		ebBefore, trBefore := apiCalls(b, "eboekhouden"), apiCalls(b, "tribe")
		var peak atomic.Uint64
		stop := make(chan struct{})
		go sampleHeap(&peak, stop)
		b.StartTimer()
		start := time.Now()
		c := w.run(bus.KindImport)
		elapsed := time.Since(start)
		b.StopTimer()
		close(stop)
		ebCalls := apiCalls(b, "eboekhouden") - ebBefore
		trCalls := apiCalls(b, "tribe") - trBefore
		imported := c.Created + c.Skipped
		if imported != n {
			b.Fatalf("imported %d of %d: %v", imported, n, c)
		}
		b.ReportMetric(float64(n)/elapsed.Seconds(), "relations/s")
		b.ReportMetric(float64(ebCalls)/n, "eb-calls/relation")
		b.ReportMetric(float64(trCalls)/n, "tribe-calls/relation")
		b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
		b.StartTimer()
	}
}

// apiCalls sums koppel_api_requests_total of one system, as the clients count their calls.
func apiCalls(b testing.TB, system string) float64 {
	b.Helper()
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		b.Fatal(err)
	}
	var n float64
	for _, f := range families {
		if f.GetName() != "koppel_api_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "system" && l.GetValue() == system {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

func sampleHeap(peak *atomic.Uint64, stop chan struct{}) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	var m runtime.MemStats
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
		}
	}
}
