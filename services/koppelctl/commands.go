package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/koppel/koppel/pkg/adminapi"
)

type cli struct {
	api   *adminapi.Client
	out   io.Writer
	stdin io.Reader
	json  bool
	// now is replaced in tests of -watch.
	now func() time.Time
	// pollEvery is how often waits look again (-poll); 0 leaves each wait its own default.
	pollEvery time.Duration
	// getenv reads the environment (os.Getenv when nil).
	getenv func(string) string
}

// runFunc runs a command with its positional arguments, its flags parsed.
type runFunc func(ctx context.Context, c *cli, args []string) error

// command is one koppelctl command. Every command parses its arguments the same way: its flags
// (declared by setup, which returns the run that reads them) may stand before, between or after
// its positional arguments, whose number must lie between min and max (-1: no maximum).
type command struct {
	path     string // "tenants create"
	args     string // "<tenant> [name]"
	help     string
	min, max int
	setup    func(fs *flag.FlagSet) runFunc
}

// noFlags is the setup of a command without flags.
func noFlags(run runFunc) func(*flag.FlagSet) runFunc {
	return func(*flag.FlagSet) runFunc { return run }
}

// commands are every command, in the order the usage lists them.
var commands = []command{
	{"tenants list", "", "list tenants", 0, 0, noFlags(listTenants)},
	{"tenants show", "<tenant>", "show a tenant and its settings", 1, 1, noFlags(showTenant)},
	{"tenants create", "<tenant> [name]", "create a tenant", 1, -1, noFlags(createTenant)},
	{"tenants credentials", "<tenant> [-f file|-] [-eboekhouden-url u] [-tribe-url u] [-tribe-auth-url u] [-tribe-client-id id]",
		"check and store both systems' credentials; the secrets come from the file or from KOPPEL_EBOEKHOUDEN_TOKEN and KOPPEL_TRIBE_CLIENT_SECRET, never from the command line",
		1, 1, setCredentials},
	{"tenants configuration", "<tenant>", "ledgers, VAT codes, templates, VAT groups, units, address types", 1, 1, noFlags(showConfiguration)},
	{"tenants links", "<tenant> [-f file|-] -debtor-ledger L -invoice-template T -revenue GROUP=LEDGER... -vat GROUP=CODE... [-auto-debtor-numbers -debtor-number-start N]",
		"link ledgers and VAT codes (checked against the configuration)", 1, 1, setLinks},
	{"tenants activate", "<tenant> [-watch]", "register the Tribe webhooks and start the initial import", 1, 1, activate},
	{"tenants pause", "<tenant>", "pause a tenant (its messages wait)", 1, 1, noFlags(setState(adminapi.StatePaused))},
	{"tenants resume", "<tenant>", "resume a paused tenant; every scheduled kind runs at once", 1, 1, noFlags(setState(adminapi.StateActive))},
	{"secrets set", "<tenant> <name>", "store a secret, read from standard input", 2, 2, noFlags(setSecret)},
	{"secrets reseal", "[tenant ...] [-dry-run]", "seal secrets again under the primary key (all tenants when none named); exits 1 when one cannot be opened",
		0, -1, reseal},
	{"status", "<tenant> [-watch]", "runs with progress, open issues, recent history", 1, 1, showStatus},
	{"sync", "<tenant> <kind>", "run a sync now (import, relation, relation-scan, tribe-scan, product, payment)", 2, 2, noFlags(syncNow)},
	{"issues", "<tenant>", "open issues and what to do about them", 1, 1, noFlags(showIssues)},
	{"invoices push", "<tenant> <invoice> [-wait=false] [-timeout 1m]",
		"book a Tribe invoice again (after fixing what its issue names) and wait until it is booked or an issue says why not", 2, 2, pushInvoice},
	{"invoices show", "<tenant> <invoice>", "whether an invoice is booked, and its open issues", 2, 2, noFlags(showInvoice)},
	{"deadletters list", "[-tenant t]", "messages that could not be handled", 0, 0, listDeadLetters},
	{"deadletters show", "<seq>", "one dead letter", 1, 1, noFlags(deadLetter("show"))},
	{"deadletters replay", "<seq>", "put a dead letter back on its subject", 1, 1, noFlags(deadLetter("replay"))},
	{"deadletters drop", "<seq>", "remove a dead letter", 1, 1, noFlags(deadLetter("drop"))},
	{"rebuild", "<tenant> [-dry-run] [-watch=false]",
		"find the links again from both systems (after the loss of Redis), as a run with progress; per kind what was linked, already linked, conflicting and unmatched, with examples; -dry-run changes nothing",
		1, 1, rebuild},
}

// usageText lists the commands for -h and usage errors.
func usageText() string {
	var b strings.Builder
	b.WriteString(usageHead)
	for _, c := range commands {
		fmt.Fprintf(&b, "  %s\n", strings.TrimSpace(c.path+" "+c.args))
		line := "     "
		for _, word := range strings.Fields(c.help) {
			if len(line)+1+len(word) > 96 {
				b.WriteString(line + "\n")
				line = "     "
			}
			line += " " + word
		}
		b.WriteString(line + "\n")
	}
	b.WriteString("\nFlags:\n")
	return b.String()
}

// find returns the command args name and the arguments after its name.
func find(args []string) (command, []string, bool) {
	for _, c := range commands {
		words := strings.Fields(c.path)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == c.path {
			return c, args[len(words):], true
		}
	}
	return command{}, nil, false
}

func (c *cli) dispatch(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError("no command")
	}
	cmd, rest, ok := find(args)
	if !ok {
		return usageError(fmt.Sprintf("unknown command %q", strings.Join(args[:min(2, len(args))], " ")))
	}
	fs := flag.NewFlagSet(cmd.path, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	run := cmd.setup(fs)
	form := "usage: koppelctl " + strings.TrimSpace(cmd.path+" "+cmd.args)
	var pos []string
	for {
		if err := fs.Parse(rest); err != nil {
			return usageError(fmt.Sprintf("%s: %v; %s", cmd.path, err, form))
		}
		if rest = fs.Args(); len(rest) == 0 {
			break
		}
		pos, rest = append(pos, rest[0]), rest[1:]
	}
	if len(pos) < cmd.min || (cmd.max >= 0 && len(pos) > cmd.max) {
		return usageError(form)
	}
	return run(ctx, c, pos)
}

// print writes v as JSON with -o json, else as the table that table writes.
func (c *cli) print(v any, table func(w *tabwriter.Writer)) error {
	if c.json {
		enc := json.NewEncoder(c.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	w := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
	table(w)
	return w.Flush()
}

func (c *cli) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

// tenantPath is the admin API path of a tenant's resource. The tenant is escaped, so that no
// argument reaches another path than the one named.
