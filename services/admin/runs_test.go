package main

import (
	"testing"

	"github.com/koppel/koppel/pkg/adminapi"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
)

// GET .../runs: what an operator (and the console's chart) reads of a tenant's run history.
func TestListRuns(t *testing.T) {
	e := newActivationEnv(t)
	for _, id := range []string{"r1", "r2", "r3"} {
		if _, err := e.m.Client.StartRun(ctx(), &mappingv1.StartRunRequest{TenantId: "acme", Kind: "product", RunId: id, Trigger: "manual"}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.m.Client.FinishRun(ctx(), &mappingv1.FinishRunRequest{TenantId: "acme", Kind: "product", RunId: id, Status: mappingv1.RunStatus_RUN_STATUS_SUCCEEDED}); err != nil {
			t.Fatal(err)
		}
	}
	var runs adminapi.Runs
	if status, ae := e.call("GET", "/runs?kind=product&limit=2", nil, &runs); status != 200 {
		t.Fatalf("runs: %d %+v", status, ae)
	}
	if len(runs.Finished) != 2 || runs.Finished[0].ID != "r3" || runs.Finished[0].Status != adminapi.RunSucceeded {
		t.Fatalf("the last 2 product runs: %+v", runs.Finished)
	}
	for _, bad := range []struct{ query, field string }{{"?limit=0", "limit"}, {"?limit=101", "limit"}, {"?kind=nope", "kind"}} {
		if status, ae := e.call("GET", "/runs"+bad.query, nil, nil); status != 400 || ae.Field != bad.field {
			t.Errorf("runs%s: %d %+v, want 400 naming %s", bad.query, status, ae, bad.field)
		}
	}
}
