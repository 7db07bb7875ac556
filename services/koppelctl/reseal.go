package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
)

// secretSeal is one line of the gateway's answer to POST .../secrets/reseal.
type secretSeal struct {
	Name     string `json:"name"`
	KeyID    string `json:"key_id"`
	Resealed bool   `json:"resealed"`
	Problem  string `json:"problem"`
}

// resealResult is the reseal of one tenant.
type resealResult struct {
	Tenant       string       `json:"tenant"`
	PrimaryKeyID string       `json:"primary_key_id"`
	Secrets      []secretSeal `json:"secrets"`
}

// errSecretsUnopened makes koppelctl exit non-zero when a secret could not be resealed: the
// old key must not be removed yet.
var errSecretsUnopened = errors.New("some secrets could not be opened with any key of the ring; keep the old key and store those secrets again")

// reseal seals the secrets of the named tenants (all when none are named) again under the primary
// key: the step between putting a new key first in KOPPEL_ENCRYPTION_KEYS and removing the old one.
func (c *cli) reseal(ctx context.Context, args []string) error {
	const form = "secrets reseal [tenant ...] [-dry-run]"
	var tenants []string
	dry := false
	for _, a := range args {
		switch {
		case a == "-dry-run" || a == "--dry-run":
			dry = true
		case strings.HasPrefix(a, "-"):
			return usageError(fmt.Sprintf("secrets reseal: unknown flag %s; usage: koppelctl %s", a, form))
		default:
			tenants = append(tenants, a)
		}
	}
	if len(tenants) == 0 {
		var res struct {
			Tenants []tenant `json:"tenants"`
		}
		if err := c.api.do(ctx, "GET", "/admin/v1/tenants", nil, &res); err != nil {
			return err
		}
		for _, t := range res.Tenants {
			tenants = append(tenants, t.ID)
		}
	}
	var results []resealResult
	unopened := false
	for _, id := range tenants {
		r := resealResult{Tenant: id}
		if err := c.api.do(ctx, "POST", "/admin/v1/tenants/"+id+"/secrets/reseal", map[string]bool{"dry_run": dry}, &r); err != nil {
			return fmt.Errorf("tenant %s: %w", id, err)
		}
		r.Tenant = id
		for _, s := range r.Secrets {
			unopened = unopened || s.Problem != ""
		}
		results = append(results, r)
	}
	err := c.print(results, func(w *tabwriter.Writer) {
		action := "RESEALED"
		if dry {
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

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
