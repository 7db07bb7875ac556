package eboekhouden_test

import (
	"context"
	"runtime"
	"testing"

	eb "github.com/koppel/koppel/pkg/eboekhouden"
	"github.com/koppel/koppel/services/sandbox/ebsim"
)

// BenchmarkImportReadPath is the initial import's read path: page through 10,000 relations and
// read each one's detail (the list has only id, type and code), against the simulator on loopback.
// It reports relations per second and allocations per relation (client and simulator together,
// as both run in this process).
func BenchmarkImportReadPath(b *testing.B) {
	const n = 10_000
	f := setup(b, ebsim.Options{}, ebsim.AdminSpec{Relations: n}, eb.WithPageSize(500))
	ctx := context.Background()
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for b.Loop() {
		read := 0
		for item, err := range f.client.Relations(ctx) {
			if err != nil {
				b.Fatal(err)
			}
			r, err := f.client.GetRelation(ctx, item.ID)
			if err != nil {
				b.Fatal(err)
			}
			if r.Inactive {
				continue
			}
			read++
		}
		if read == 0 {
			b.Fatal("nothing read")
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	perOp := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(n/perOp, "relations/s")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N*n), "allocs/relation")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N*n), "B/relation")
}
