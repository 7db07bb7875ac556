package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/koppel/koppel/pkg/adminapi"
)

// rebuild asks koppel to find a tenant's links again from both systems, as a run of kind
// rebuild, and (unless -watch=false) follows it and prints its report. The exit code is 0 when
// the rebuild ran, whatever it found: conflicting and unmatched records are part of the report
// (scripts read them with -o json); 4 when a run that cannot share the tenant's links with it is
// in progress, or the tenant has no credentials yet.
func rebuild(fs *flag.FlagSet) runFunc {
	dry := fs.Bool("dry-run", false, "report what a rebuild would do, change nothing")
	watch := fs.Bool("watch", true, "follow the rebuild until it finished and print its report")
	return func(ctx context.Context, c *cli, args []string) error {
		tenant := args[0]
		var started adminapi.RunStarted
		if err := c.api.Do(ctx, "POST", adminapi.TenantPath(tenant, "/rebuild"), adminapi.Rebuild{DryRun: *dry}, &started); err != nil {
			return err
		}
		if !*watch {
			return c.print(started, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "started rebuild run %s; follow it with koppelctl status %s\n", started.RunID, tenant)
			})
		}
		run, err := c.watchRun(ctx, tenant, adminapi.RunKindRebuild, started.RunID)
		if err != nil {
			return err
		}
		var rep adminapi.RebuildReport
		if err := json.Unmarshal(run.Report, &rep); err != nil {
			return fmt.Errorf("the rebuild run %s finished without a readable report: %w", run.ID, err)
		}
		return c.print(rep, func(w *tabwriter.Writer) { fmt.Fprintln(w); printRebuild(w, rep) })
	}
}

func printRebuild(w *tabwriter.Writer, rep adminapi.RebuildReport) {
	linked := "LINKED"
	if rep.DryRun {
		fmt.Fprintf(w, "rebuild of %s, dry run: nothing was changed; this is what a rebuild would do\n\n", rep.Tenant)
		linked = "WOULD LINK"
	} else {
		fmt.Fprintf(w, "rebuild of %s\n\n", rep.Tenant)
	}
	fmt.Fprintf(w, "KIND\tFOUND IN TRIBE\tFOUND IN E-BOEKHOUDEN\t%s\tALREADY LINKED\tCONFLICTING\tUNMATCHED IN TRIBE\tUNMATCHED IN E-BOEKHOUDEN\n", linked)
	for _, k := range rep.Kinds {
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", k.Kind, k.FoundTribe, k.FoundEBoekhouden, k.Linked, k.AlreadyLinked,
			k.Conflicting, k.UnmatchedTribe, k.UnmatchedEBoekhouden)
	}
	fmt.Fprintln(w)
	switch {
	case rep.DryRun:
		fmt.Fprintf(w, "debtor numbers\thighest used %d; the sequence would be raised past it\n", rep.DebtorNumbers.HighestUsed)
	case rep.DebtorNumbers.HighestUsed > 0:
		fmt.Fprintf(w, "debtor numbers\thighest used %d; the sequence stands at %d\n", rep.DebtorNumbers.HighestUsed, rep.DebtorNumbers.Sequence)
	default:
		fmt.Fprintln(w, "debtor numbers\tnone used")
	}
	cleared := "none"
	if len(rep.CursorsReset) > 0 {
		cleared = strings.Join(rep.CursorsReset, ", ")
	}
	fmt.Fprintf(w, "cursors cleared\t%s\n", cleared)

	examples := 0
	for _, k := range rep.Kinds {
		examples += len(k.Examples)
	}
	if examples > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "KIND\tOUTCOME\tTRIBE\tE-BOEKHOUDEN\tKEY\tNAME\tWHY")
		for _, k := range rep.Kinds {
			for _, x := range k.Examples {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.Kind, outcomeText(x.Outcome, rep.DryRun), dash(x.TribeID), dash(x.EBoekhoudenID),
					dash(x.Key), dash(x.Name), x.Reason)
			}
		}
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "\nnote: %s\n", n)
	}
}

// outcomeText says an example's outcome in words.
func outcomeText(outcome string, dry bool) string {
	switch outcome {
	case adminapi.OutcomeLinked:
		if dry {
			return "would link"
		}
	case adminapi.OutcomeUnmatchedTribe:
		return "only in Tribe"
	case adminapi.OutcomeUnmatchedEBoekhouden:
		return "only in e-Boekhouden"
	}
	return strings.ReplaceAll(outcome, "_", " ")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
