package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"
)

// rebuildTimeout bounds a rebuild: the gateway reads every relation, product and invoice of both
// systems before it answers.
const rebuildTimeout = 30 * time.Minute

// rebuildReport is the gateway's answer to POST .../rebuild.
type rebuildReport struct {
	Tenant        string        `json:"tenant"`
	DryRun        bool          `json:"dry_run"`
	Kinds         []rebuildKind `json:"kinds"`
	DebtorNumbers struct {
		HighestUsed int64 `json:"highest_used"`
		Sequence    int64 `json:"sequence,omitempty"`
	} `json:"debtor_numbers"`
	CursorsReset []string `json:"cursors_reset"`
	Notes        []string `json:"notes,omitempty"`
}

type rebuildKind struct {
	Kind                 string `json:"kind"`
	FoundTribe           int    `json:"found_tribe"`
	FoundEBoekhouden     int    `json:"found_eboekhouden"`
	Linked               int    `json:"linked"`
	AlreadyLinked        int    `json:"already_linked"`
	Conflicting          int    `json:"conflicting"`
	UnmatchedTribe       int    `json:"unmatched_tribe"`
	UnmatchedEBoekhouden int    `json:"unmatched_eboekhouden"`
	Examples             []struct {
		Outcome       string `json:"outcome"`
		TribeID       string `json:"tribe_id,omitempty"`
		EBoekhoudenID string `json:"eboekhouden_id,omitempty"`
		Key           string `json:"key,omitempty"`
		Name          string `json:"name,omitempty"`
		Reason        string `json:"reason"`
	} `json:"examples"`
}

// rebuild asks the gateway to find a tenant's links again from both systems. The exit code is 0
// when the rebuild ran, whatever it found: conflicting and unmatched records are part of the
// report (scripts read them with -o json); 4 when another rebuild of the tenant is running or it
// has no credentials yet.
func (c *cli) rebuild(ctx context.Context, args []string) error {
	const form = "rebuild <tenant> [-dry-run]"
	var tenant string
	dry := false
	for _, a := range args {
		switch {
		case a == "-dry-run" || a == "--dry-run":
			dry = true
		case strings.HasPrefix(a, "-"):
			return usageError(fmt.Sprintf("rebuild: unknown flag %s; usage: koppelctl %s", a, form))
		case tenant == "":
			tenant = a
		default:
			return usageError("usage: koppelctl " + form)
		}
	}
	if tenant == "" {
		return usageError("usage: koppelctl " + form)
	}
	var rep rebuildReport
	if err := c.api.doWithin(ctx, rebuildTimeout, "POST", "/admin/v1/tenants/"+tenant+"/rebuild", map[string]bool{"dry_run": dry}, &rep); err != nil {
		return err
	}
	return c.print(rep, func(w *tabwriter.Writer) { printRebuild(w, rep) })
}

func printRebuild(w *tabwriter.Writer, rep rebuildReport) {
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
	case "linked":
		if dry {
			return "would link"
		}
	case "unmatched_tribe":
		return "only in Tribe"
	case "unmatched_eboekhouden":
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
