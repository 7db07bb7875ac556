package main

import (
	"net/http"

	"github.com/koppel/koppel/pkg/adminapi"
	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/httpapi"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
)

// rebuild starts a rebuild of the tenant's mapping (the links found again from both systems,
// after the loss of Redis): a run of kind "rebuild" on the relation service, with the relation
// service's clients and budgets, its progress in the run and its report in the finished run
// (koppelctl rebuild -watch waits for it). It runs in every state of the tenant: before the
// activation of a tenant created again after the loss of Redis, and while it is paused (after
// Redis came back from an older copy). 202 with the run's ID; 409 before the credentials, or
// while a run it must not run beside is in progress (an import, a pull, another rebuild).
func (a *admin) rebuild(w http.ResponseWriter, r *http.Request) {
	var req adminapi.Rebuild
	if !httpapi.DecodeJSON(w, r, &req) {
		return
	}
	ctx := r.Context()
	id := r.PathValue("tenant")
	res, err := a.mapping.GetTenant(ctx, &mappingv1.GetTenantRequest{TenantId: id})
	if err != nil {
		a.writeGRPCError(w, r, err)
		return
	}
	if st := res.GetTenant().GetSettings(); st.GetEboekhoudenBaseUrl() == "" || st.GetTribeBaseUrl() == "" {
		httpapi.WriteError(w, http.StatusConflict, "no_credentials", "store the credentials first (PUT .../credentials)")
		return
	}
	if a.runningBeside(w, r, id, bus.KindRebuild) {
		return
	}
	runID, err := startSync(ctx, a.pub, id, bus.KindRebuild, bus.TriggerManual, a.now(), withDryRun(req.DryRun))
	if err != nil {
		a.log.ErrorContext(ctx, "publish rebuild", "tenant", id, "error", err)
		httpapi.WriteError(w, http.StatusServiceUnavailable, "unavailable", "the bus cannot take the command; try again")
		return
	}
	a.log.InfoContext(ctx, "rebuild started", "tenant", id, "dry_run", req.DryRun, "run", runID)
	httpapi.WriteJSON(w, http.StatusAccepted, adminapi.RunStarted{RunID: runID})
}
