package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/koppel/koppel/pkg/adminapi"
)

// Environment variables the credentials command reads the secrets from, so they never appear in
// argv (and so in ps or shell history).
const (
	envEBToken     = "KOPPEL_EBOEKHOUDEN_TOKEN"
	envTribeSecret = "KOPPEL_TRIBE_CLIENT_SECRET"
)

// readJSONFile decodes a JSON file ("-" is standard input) strictly into v.
func (c *cli) readJSONFile(name string, v any) error {
	var r io.Reader = c.stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		defer f.Close()
		r = f
	}
	dec := json.NewDecoder(io.LimitReader(r, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return usageError(fmt.Sprintf("read %s: %v", name, err))
	}
	return nil
}

func (c *cli) env(name string) string {
	if c.getenv != nil {
		return c.getenv(name)
	}
	return os.Getenv(name)
}

// setCredentials stores and checks a tenant's credentials. The non-secret parts come from flags
// or a JSON file; the token and client secret from the file (standard input, say) or the
// environment, never from the command line.
func setCredentials(fs *flag.FlagSet) runFunc {
	file := fs.String("f", "", "JSON file with the credentials (- for standard input)")
	ebURL := fs.String("eboekhouden-url", "", "e-Boekhouden API base URL")
	trURL := fs.String("tribe-url", "", "Tribe API base URL")
	trAuth := fs.String("tribe-auth-url", "", "Tribe auth base URL (default: the API's)")
	trID := fs.String("tribe-client-id", "", "Tribe OAuth client ID")
	return func(ctx context.Context, c *cli, args []string) error {
		var cr adminapi.Credentials
		if *file != "" {
			if err := c.readJSONFile(*file, &cr); err != nil {
				return err
			}
		}
		for _, f := range []struct {
			dst *string
			v   string
		}{{&cr.EBoekhouden.BaseURL, *ebURL}, {&cr.Tribe.BaseURL, *trURL}, {&cr.Tribe.AuthURL, *trAuth}, {&cr.Tribe.ClientID, *trID}} {
			if f.v != "" {
				*f.dst = f.v
			}
		}
		if cr.EBoekhouden.Token == "" {
			cr.EBoekhouden.Token = c.env(envEBToken)
		}
		if cr.Tribe.ClientSecret == "" {
			cr.Tribe.ClientSecret = c.env(envTribeSecret)
		}
		if cr.EBoekhouden.Token == "" || cr.Tribe.ClientSecret == "" {
			return usageError(fmt.Sprintf("the e-Boekhouden token and the Tribe client secret come from -f or from %s and %s", envEBToken, envTribeSecret))
		}
		var t adminapi.Tenant
		if err := c.api.Do(ctx, "PUT", adminapi.TenantPath(args[0], "/credentials"), cr, &t); err != nil {
			return err
		}
		return c.print(t, func(w *tabwriter.Writer) {
			fmt.Fprintf(w, "e-Boekhouden and Tribe accepted the credentials; stored for %s\n", t.ID)
		})
	}
}

func showConfiguration(ctx context.Context, c *cli, args []string) error {
	var cfg adminapi.Configuration
	if err := c.api.Do(ctx, "GET", adminapi.TenantPath(args[0], "/configuration"), nil, &cfg); err != nil {
		return err
	}
	return c.print(cfg, func(w *tabwriter.Writer) { printConfiguration(w, cfg) })
}

func printConfiguration(w *tabwriter.Writer, cfg adminapi.Configuration) {
	section := func(title, header string, opts []adminapi.Option, row func(o adminapi.Option) string) {
		fmt.Fprintf(w, "%s\n%s\n", title, header)
		for _, o := range opts {
			fmt.Fprintln(w, row(o))
		}
		if len(opts) == 0 {
			fmt.Fprintln(w, "(none)")
		}
		fmt.Fprintln(w)
	}
	section("e-Boekhouden ledger accounts", "ID\tCODE\tCATEGORY\tDESCRIPTION", cfg.Ledgers,
		func(o adminapi.Option) string { return o.ID + "\t" + o.Code + "\t" + o.Category + "\t" + o.Description })
	section("e-Boekhouden VAT codes", "CODE\tKIND\tRATE\tDESCRIPTION", cfg.VATCodes,
		func(o adminapi.Option) string {
			return o.ID + "\t" + o.Category + "\t" + o.Percentage + "\t" + o.Description
		})
	section("e-Boekhouden invoice templates", "ID\tTYPE\tNAME", cfg.InvoiceTemplates,
		func(o adminapi.Option) string { return o.ID + "\t" + o.Category + "\t" + o.Description })
	section("Tribe VAT groups", "ID\tCODE\tRATE\tNAME", cfg.VATGroups,
		func(o adminapi.Option) string {
			return o.ID + "\t" + o.Code + "\t" + o.Percentage + "\t" + o.Description
		})
	section("Tribe units", "ID\tCODE\tNAME", cfg.Units,
		func(o adminapi.Option) string { return o.ID + "\t" + o.Code + "\t" + o.Description })
	section("Tribe address types", "ID\tCODE\tNAME", cfg.AddressTypes,
		func(o adminapi.Option) string { return o.ID + "\t" + o.Code + "\t" + o.Description })
}

// pairs is a repeatable flag of group=value pairs.
type pairs map[string]string

func (p pairs) String() string { return fmt.Sprint(map[string]string(p)) }

func (p pairs) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" || v == "" {
		return fmt.Errorf("want <tribe VAT group>=<value>, got %q", s)
	}
	p[k] = v
	return nil
}

func setLinks(fs *flag.FlagSet) runFunc {
	file := fs.String("f", "", "JSON file with the links (- for standard input)")
	debtor := fs.String("debtor-ledger", "", "debtors ledger (ID or code)")
	template := fs.String("invoice-template", "", "invoice template (ID)")
	revenue, vat := pairs{}, pairs{}
	fs.Var(revenue, "revenue", "revenue ledger of a Tribe VAT group: GROUP=LEDGER (repeat per group)")
	fs.Var(vat, "vat", "sale VAT code of a Tribe VAT group: GROUP=CODE (repeat per group)")
	auto := fs.Bool("auto-debtor-numbers", false, "koppel numbers new Tribe customers")
	start := fs.Int64("debtor-number-start", 0, "first automatic debtor number")
	return func(ctx context.Context, c *cli, args []string) error {
		l := adminapi.Links{RevenueLedgers: map[string]string{}, VATCodes: map[string]string{}}
		if *file != "" {
			if err := c.readJSONFile(*file, &l); err != nil {
				return err
			}
		}
		if *debtor != "" {
			l.DebtorLedger = *debtor
		}
		if *template != "" {
			l.InvoiceTemplate = *template
		}
		if l.RevenueLedgers == nil {
			l.RevenueLedgers = map[string]string{}
		}
		if l.VATCodes == nil {
			l.VATCodes = map[string]string{}
		}
		maps.Copy(l.RevenueLedgers, revenue)
		maps.Copy(l.VATCodes, vat)
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "auto-debtor-numbers":
				l.AutoDebtorNumbers = *auto
			case "debtor-number-start":
				l.DebtorNumberStart = *start
			}
		})
		var t adminapi.LinksStored
		if err := c.api.Do(ctx, "PUT", adminapi.TenantPath(args[0], "/links"), l, &t); err != nil {
			return err
		}
		return c.print(t, func(w *tabwriter.Writer) {
			fmt.Fprintf(w, "links of %s stored\n\nLINK\tVALUE\n", t.ID)
			for _, k := range slices.Sorted(maps.Keys(t.Settings.Links)) {
				if !strings.HasPrefix(k, "webhook:") {
					fmt.Fprintf(w, "%s\t%s\n", k, t.Settings.Links[k])
				}
			}
			fmt.Fprintf(w, "automatic debtor numbers\t%v (from %d)\n", t.Settings.AutoDebtorNumbers, t.Settings.DebtorNumberStart)
			if t.InvoicesRetried > 0 {
				fmt.Fprintf(w, "\n%d invoices that waited for these links are being booked again\n", t.InvoicesRetried)
			}
		})
	}
}

// activate registers the webhooks and starts the initial import; with -watch it follows the
// import until it finished.
func activate(fs *flag.FlagSet) runFunc {
	watch := fs.Bool("watch", false, "follow the import's progress until it finished")
	return func(ctx context.Context, c *cli, args []string) error {
		id := args[0]
		var res adminapi.Activated
		if err := c.api.Do(ctx, "POST", adminapi.TenantPath(id, "/activate"), nil, &res); err != nil {
			return err
		}
		if err := c.print(res, func(w *tabwriter.Writer) {
			fmt.Fprintf(w, "tenant %s is active; initial import started: run %s\n", id, res.ImportRunID)
			for _, h := range res.Webhooks {
				fmt.Fprintf(w, "webhook\t%s\t%s\n", h.EntityType, h.ID)
			}
			for _, n := range res.Notes {
				fmt.Fprintf(w, "note: %s\n", n)
			}
		}); err != nil {
			return err
		}
		if !*watch {
			return nil
		}
		_, err := c.watchRun(ctx, id, "import", res.ImportRunID)
		return err
	}
}
