package main

import (
	"net/http"

	"github.com/koppel/koppel/pkg/adminapi"
	"github.com/koppel/koppel/pkg/httpapi"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
)

// resealSecrets seals a tenant's secrets again under the mapping service's primary key, the step
// between putting a new key first in KOPPEL_ENCRYPTION_KEYS and removing the old one. A dry run
// says which key seals which secret.
func (a *admin) resealSecrets(w http.ResponseWriter, r *http.Request) {
	var req adminapi.Reseal
	if !httpapi.DecodeJSON(w, r, &req) {
		return
	}
	ctx := r.Context()
	id := r.PathValue("tenant")
	res, err := a.mapping.ResealSecrets(ctx, &mappingv1.ResealSecretsRequest{TenantId: id, DryRun: req.DryRun})
	if err != nil {
		a.writeGRPCError(w, r, err)
		return
	}
	resealed, problems := 0, 0
	for _, s := range res.GetSecrets() {
		if s.GetResealed() {
			resealed++
		}
		if s.GetProblem() != "" {
			problems++
		}
	}
	a.log.InfoContext(ctx, "secrets resealed", "tenant", id, "dry_run", req.DryRun, "primary_key", res.GetPrimaryKeyId(),
		"resealed", resealed, "problems", problems)
	out := adminapi.Resealed{PrimaryKeyID: res.GetPrimaryKeyId(), Secrets: []adminapi.SecretSeal{}}
	for _, s := range res.GetSecrets() {
		out.Secrets = append(out.Secrets, adminapi.SecretSeal{Name: s.GetName(), KeyID: s.GetKeyId(), Resealed: s.GetResealed(), Problem: s.GetProblem()})
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}
