package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/koppel/koppel/pkg/adminapi"
)

func listTenants(ctx context.Context, c *cli, _ []string) error {
	var res adminapi.Tenants
	if err := c.api.Do(ctx, "GET", "/admin/v1/tenants", nil, &res); err != nil {
		return err
	}
	return c.print(res.Tenants, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "TENANT\tNAME\tSTATE\tSECRETS")
		for _, t := range res.Tenants {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", t.ID, t.DisplayName, t.State, strings.Join(t.SecretNames, ","))
		}
	})
}

func showTenant(ctx context.Context, c *cli, args []string) error {
	var t adminapi.Tenant
	if err := c.api.Do(ctx, "GET", adminapi.TenantPath(args[0], ""), nil, &t); err != nil {
		return err
	}
	return c.print(t, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "tenant\t%s\nname\t%s\nstate\t%s\nsecrets\t%s\nautomatic debtor numbers\t%v (from %d)\n",
			t.ID, t.DisplayName, t.State, strings.Join(t.SecretNames, ", "), t.Settings.AutoDebtorNumbers, t.Settings.DebtorNumberStart)
	})
}

func createTenant(ctx context.Context, c *cli, args []string) error {
	var t adminapi.Tenant
	req := adminapi.CreateTenant{ID: args[0], DisplayName: strings.Join(args[1:], " ")}
	if err := c.api.Do(ctx, "POST", "/admin/v1/tenants", req, &t); err != nil {
		return err
	}
	return c.print(t, func(w *tabwriter.Writer) { fmt.Fprintf(w, "created tenant %s\n", t.ID) })
}

// setState pauses or resumes a tenant; a resume says which catch-up runs it started.
func setState(state string) runFunc {
	return func(ctx context.Context, c *cli, args []string) error {
		var t adminapi.StateChanged
		if err := c.api.Do(ctx, "PUT", adminapi.TenantPath(args[0], "/state"), adminapi.SetState{State: state}, &t); err != nil {
			return err
		}
		return c.print(t, func(w *tabwriter.Writer) {
			fmt.Fprintf(w, "tenant %s is %s\n", t.ID, t.State)
			if len(t.CatchUpRuns) > 0 {
				fmt.Fprintf(w, "catching up: %s started now; held events follow within a minute\n", strings.Join(slices.Sorted(maps.Keys(t.CatchUpRuns)), ", "))
			}
		})
	}
}

func setSecret(ctx context.Context, c *cli, args []string) error {
	tenant, name := args[0], args[1]
	raw, err := io.ReadAll(io.LimitReader(c.stdin, 64<<10+1))
	if err != nil {
		return fmt.Errorf("read secret from standard input: %w", err)
	}
	value := strings.TrimRight(string(raw), "\r\n")
	if value == "" {
		return usageError("the secret is read from standard input, which was empty")
	}
	if err := c.api.Do(ctx, "PUT", adminapi.TenantPath(tenant, "/secrets/"+name), adminapi.SetSecret{Value: value}, nil); err != nil {
		return err
	}
	return c.print(map[string]string{"tenant": tenant, "secret": name}, func(w *tabwriter.Writer) { fmt.Fprintf(w, "stored secret %s of %s\n", name, tenant) })
}
