package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"text/tabwriter"

	"github.com/koppel/koppel/pkg/adminapi"
)

// tenantResealed is the reseal of one tenant.
type tenantResealed struct {
	Tenant string `json:"tenant"`
	adminapi.Resealed
}

// errSecretsUnopened makes koppelctl exit non-zero when a secret could not be resealed: the
// old key must not be removed yet.
var errSecretsUnopened = errors.New("some secrets could not be opened with any key of the ring; keep the old key and store those secrets again")

// reseal seals the secrets of the named tenants (all when none are named) again under the primary
// key: the step between putting a new key first in KOPPEL_ENCRYPTION_KEYS and removing the old one.
func reseal(fs *flag.FlagSet) runFunc {
	dry := fs.Bool("dry-run", false, "say what would be resealed, change nothing")
	return func(ctx context.Context, c *cli, tenants []string) error {
		if len(tenants) == 0 {
			var res adminapi.Tenants
			if err := c.api.Do(ctx, "GET", "/admin/v1/tenants", nil, &res); err != nil {
				return err
			}
			for _, t := range res.Tenants {
				tenants = append(tenants, t.ID)
			}
		}
		var results []tenantResealed
		unopened := false
		for _, id := range tenants {
			r := tenantResealed{Tenant: id}
			if err := c.api.Do(ctx, "POST", adminapi.TenantPath(id, "/secrets/reseal"), adminapi.Reseal{DryRun: *dry}, &r.Resealed); err != nil {
				return fmt.Errorf("tenant %s: %w", id, err)
			}
			for _, s := range r.Secrets {
				unopened = unopened || s.Problem != ""
			}
			results = append(results, r)
		}
		err := c.print(results, func(w *tabwriter.Writer) {
			action := "RESEALED"
			if *dry {
				action = "WOULD RESEAL"
			}
			fmt.Fprintf(w, "TENANT\tSECRET\tKEY\t%s\tPROBLEM\n", action)
			for _, r := range results {
				for _, s := range r.Secrets {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.Tenant, s.Name, s.KeyID, yesNo(s.Resealed), s.Problem)
				}
			}
		})
		if err != nil {
			return err
		}
		if unopened {
			return errSecretsUnopened
		}
		return nil
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
