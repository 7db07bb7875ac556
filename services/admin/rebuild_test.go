package main

import (
	"testing"

	"github.com/koppel/koppel/pkg/adminapi"
	"github.com/koppel/koppel/pkg/bus"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
)

// POST .../rebuild starts a rebuild run on the relation service (its command on the bus, dry run
// and all), once the credentials are there (the tenant need not be active: after the loss of
// Redis it is rebuilt before it is activated) and nothing it must not run beside is running.
// That a rebuild runs for a tenant in setup or paused is the relation service's test.
func TestRebuildStartsARun(t *testing.T) {
	e := newActivationEnv(t)
	if status, ae := e.call("POST", "/rebuild", adminapi.Rebuild{DryRun: true}, nil); status != 409 || ae.Code != "no_credentials" {
		t.Fatalf("rebuild before credentials: %d %+v", status, ae)
	}
	if status, ae := e.call("PUT", "/credentials", e.credentials(), nil); status != 200 {
		t.Fatalf("credentials: %d %+v", status, ae)
	}
	var started adminapi.RunStarted
	if status, ae := e.call("POST", "/rebuild", adminapi.Rebuild{DryRun: true}, &started); status != 202 || started.RunID == "" {
		t.Fatalf("rebuild: %d %+v", status, ae)
	}
	cmds := e.syncCommands(t, 1)
	if c := cmds[0]; c.GetKind() != bus.KindRebuild || !c.GetDryRun() || c.GetRunId() != started.RunID {
		t.Fatalf("command on the bus: %v", c)
	}

	// While the import runs, a rebuild would link beside it: 409, naming the import.
	if _, err := e.m.Client.StartRun(ctx(), &mappingv1.StartRunRequest{TenantId: e.tenantID, Kind: bus.KindImport, RunId: "import-1"}); err != nil {
		t.Fatal(err)
	}
	if status, ae := e.call("POST", "/rebuild", adminapi.Rebuild{}, nil); status != 409 || ae.Code != "run_in_progress" || ae.Message != "the import run import-1 is in progress" {
		t.Fatalf("rebuild during the import: %d %+v", status, ae)
	}
	e.tenantID = "nobody"
	if status, ae := e.call("POST", "/rebuild", adminapi.Rebuild{}, nil); status != 404 {
		t.Fatalf("unknown tenant: %d %+v", status, ae)
	}
}
