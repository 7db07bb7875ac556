package server_test

import (
	"fmt"
	"testing"

	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
)

// BenchmarkCreateLink measures one link with its first record, through gRPC and Redis.
func BenchmarkCreateLink(b *testing.B) {
	h := newHarness(b)
	rec := []byte(`{"kind":"organization","name":"Jansen BV","code":"10042","invoice_address":{"line":"Kerkstraat 1"}}`)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		id := fmt.Sprint(i)
		if _, err := h.client.CreateLink(ctx, &mappingv1.CreateLinkRequest{TenantId: "acme", Kind: "organization", TribeId: "t" + id, EboekhoudenId: "e" + id, Record: rec}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBatchGetLinks measures looking up one import page (100 relations) in one call.
func BenchmarkBatchGetLinks(b *testing.B) {
	h := newHarness(b)
	ids := make([]string, 100)
	for i := range ids {
		ids[i] = fmt.Sprint("e", i)
		if _, err := h.client.CreateLink(ctx, &mappingv1.CreateLinkRequest{TenantId: "acme", Kind: "organization", TribeId: fmt.Sprint("t", i), EboekhoudenId: ids[i], Record: []byte(`{}`)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		res, err := h.client.BatchGetLinks(ctx, &mappingv1.BatchGetLinksRequest{TenantId: "acme", Kind: "organization", EboekhoudenIds: ids, WithRecords: true})
		if err != nil || len(res.Links) != 100 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "links/s")
}
