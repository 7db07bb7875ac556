package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Environment variables the credentials command reads the secrets from, so they never appear in
// argv (and so in ps or shell history).
const (
	envEBToken     = "KOPPEL_EBOEKHOUDEN_TOKEN"
	envTribeSecret = "KOPPEL_TRIBE_CLIENT_SECRET"
)

// credentials is the body of PUT .../credentials.
type credentials struct {
	EBoekhouden struct {
		BaseURL string `json:"base_url"`
		Token   string `json:"token"`
	} `json:"eboekhouden"`
	Tribe struct {
		BaseURL      string `json:"base_url"`
		AuthURL      string `json:"auth_url"`
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	} `json:"tribe"`
}

// subFlags parses a subcommand's flags, which may come before or after its positional arguments.
func subFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usageError(fmt.Sprintf("%s: %v", fs.Name(), err))
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

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
func (c *cli) setCredentials(ctx context.Context, args []string) error {
	const form = "tenants credentials <tenant> [-f file.json|-] [-eboekhouden-url u] [-tribe-url u] [-tribe-auth-url u] [-tribe-client-id id]"
	fs := flag.NewFlagSet("tenants credentials", flag.ContinueOnError)
	file := fs.String("f", "", "JSON file with the credentials (- for standard input)")
	ebURL := fs.String("eboekhouden-url", "", "e-Boekhouden API base URL")
	trURL := fs.String("tribe-url", "", "Tribe API base URL")
	trAuth := fs.String("tribe-auth-url", "", "Tribe auth base URL (default: the API's)")
	trID := fs.String("tribe-client-id", "", "Tribe OAuth client ID")
	pos, err := subFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("usage: koppelctl " + form)
	}
	var cr credentials
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
	var t tenant
	if err := c.api.do(ctx, "PUT", "/admin/v1/tenants/"+pos[0]+"/credentials", cr, &t); err != nil {
		return err
	}
	return c.print(t, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "e-Boekhouden and Tribe accepted the credentials; stored for %s\n", t.ID)
	})
}

// option is one choice of the configuration.
type option struct {
	ID          string `json:"id"`
	Code        string `json:"code"`
	Description string `json:"description"`
	Category    string `json:"category"`
	Percentage  string `json:"percentage"`
}

type configuration struct {
	Ledgers          []option `json:"ledgers"`
	VATCodes         []option `json:"vat_codes"`
	InvoiceTemplates []option `json:"invoice_templates"`
	VATGroups        []option `json:"vat_groups"`
	Units            []option `json:"units"`
	AddressTypes     []option `json:"address_types"`
}

func (c *cli) configuration(ctx context.Context, args []string) error {
	if err := need(args, 1, "tenants configuration <tenant>"); err != nil {
		return err
	}
	var cfg configuration
	if err := c.api.do(ctx, "GET", "/admin/v1/tenants/"+args[0]+"/configuration", nil, &cfg); err != nil {
		return err
	}
	return c.print(cfg, func(w *tabwriter.Writer) { printConfiguration(w, cfg) })
}

func printConfiguration(w *tabwriter.Writer, cfg configuration) {
	section := func(title, header string, opts []option, row func(o option) string) {
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
		func(o option) string { return o.ID + "\t" + o.Code + "\t" + o.Category + "\t" + o.Description })
	section("e-Boekhouden VAT codes", "CODE\tKIND\tRATE\tDESCRIPTION", cfg.VATCodes,
		func(o option) string { return o.ID + "\t" + o.Category + "\t" + o.Percentage + "\t" + o.Description })
	section("e-Boekhouden invoice templates", "ID\tTYPE\tNAME", cfg.InvoiceTemplates,
		func(o option) string { return o.ID + "\t" + o.Category + "\t" + o.Description })
	section("Tribe VAT groups", "ID\tCODE\tRATE\tNAME", cfg.VATGroups,
		func(o option) string { return o.ID + "\t" + o.Code + "\t" + o.Percentage + "\t" + o.Description })
	section("Tribe units", "ID\tCODE\tNAME", cfg.Units,
		func(o option) string { return o.ID + "\t" + o.Code + "\t" + o.Description })
	section("Tribe address types", "ID\tCODE\tNAME", cfg.AddressTypes,
		func(o option) string { return o.ID + "\t" + o.Code + "\t" + o.Description })
}

// links is the body of PUT .../links.
type links struct {
	DebtorLedger      string            `json:"debtor_ledger"`
	InvoiceTemplate   string            `json:"invoice_template"`
	RevenueLedgers    map[string]string `json:"revenue_ledgers"`
	VATCodes          map[string]string `json:"vat_codes"`
	AutoDebtorNumbers bool              `json:"auto_debtor_numbers"`
	DebtorNumberStart int64             `json:"debtor_number_start"`
	ScheduleSeconds   map[string]int64  `json:"schedule_seconds,omitempty"`
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

func (c *cli) setLinks(ctx context.Context, args []string) error {
	const form = "tenants links <tenant> [-f file.json|-] -debtor-ledger L -invoice-template T -revenue GROUP=LEDGER... -vat GROUP=CODE... [-auto-debtor-numbers -debtor-number-start N]"
	fs := flag.NewFlagSet("tenants links", flag.ContinueOnError)
	file := fs.String("f", "", "JSON file with the links (- for standard input)")
	debtor := fs.String("debtor-ledger", "", "debtors ledger (ID or code)")
	template := fs.String("invoice-template", "", "invoice template (ID)")
	revenue, vat := pairs{}, pairs{}
	fs.Var(revenue, "revenue", "revenue ledger of a Tribe VAT group: GROUP=LEDGER (repeat per group)")
	fs.Var(vat, "vat", "sale VAT code of a Tribe VAT group: GROUP=CODE (repeat per group)")
	auto := fs.Bool("auto-debtor-numbers", false, "koppel numbers new Tribe customers")
	start := fs.Int64("debtor-number-start", 0, "first automatic debtor number")
	pos, err := subFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("usage: koppelctl " + form)
	}
	l := links{RevenueLedgers: map[string]string{}, VATCodes: map[string]string{}}
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
	for k, v := range revenue {
		l.RevenueLedgers[k] = v
	}
	for k, v := range vat {
		l.VATCodes[k] = v
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "auto-debtor-numbers":
			l.AutoDebtorNumbers = *auto
		case "debtor-number-start":
			l.DebtorNumberStart = *start
		}
	})
	var t tenant
	if err := c.api.do(ctx, "PUT", "/admin/v1/tenants/"+pos[0]+"/links", l, &t); err != nil {
		return err
	}
	return c.print(t, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "links of %s stored\n\nLINK\tVALUE\n", t.ID)
		keys := make([]string, 0, len(t.Settings.Links))
		for k := range t.Settings.Links {
			if !strings.HasPrefix(k, "webhook:") {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "%s\t%s\n", k, t.Settings.Links[k])
		}
		fmt.Fprintf(w, "automatic debtor numbers\t%v (from %d)\n", t.Settings.AutoDebtorNumbers, t.Settings.DebtorNumberStart)
	})
}

type activated struct {
	State       string `json:"state"`
	ImportRunID string `json:"import_run_id"`
	Webhooks    []struct {
		ID         string `json:"id"`
		EntityType string `json:"entity_type"`
	} `json:"webhooks"`
	Notes []string `json:"notes"`
}

// activate registers the webhooks and starts the initial import; with -watch it follows the
// import until it finished.
func (c *cli) activate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("tenants activate", flag.ContinueOnError)
	watch := fs.Bool("watch", false, "follow the import's progress until it finished")
	pos, err := subFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("usage: koppelctl tenants activate <tenant> [-watch]")
	}
	id := pos[0]
	var res activated
	if err := c.api.do(ctx, "POST", "/admin/v1/tenants/"+id+"/activate", nil, &res); err != nil {
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
	return c.watchRun(ctx, id, res.ImportRunID)
}

// watchRun shows the tenant's status until run runID finished. The run shows up only once a
// worker took the command, so an absent run is waited for, not taken as done.
func (c *cli) watchRun(ctx context.Context, tenantID, runID string) error {
	every := c.pollEvery
	if every <= 0 {
		every = 2 * time.Second
	}
	for {
		var st status
		if err := c.api.do(ctx, "GET", "/admin/v1/tenants/"+tenantID+"/status", nil, &st); err != nil {
			return err
		}
		if !c.json {
			fmt.Fprintln(c.out)
		}
		if err := c.print(st, func(w *tabwriter.Writer) { printStatus(w, st, c.clock()) }); err != nil {
			return err
		}
		for _, r := range st.Runs.Finished {
			if r.ID == runID {
				if s := strings.TrimPrefix(r.Status, "RUN_STATUS_"); s == "FAILED" {
					return fmt.Errorf("the import failed: %s", r.Message)
				}
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(every):
		}
	}
}
