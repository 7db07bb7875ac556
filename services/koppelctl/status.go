package main

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/koppel/koppel/pkg/adminapi"
)

func showStatus(fs *flag.FlagSet) runFunc {
	watch := fs.Bool("watch", false, "show the status again every 2 s while runs are in progress")
	return func(ctx context.Context, c *cli, args []string) error {
		for {
			st, err := c.status(ctx, args[0])
			if err != nil {
				return err
			}
			if err := c.print(st, func(w *tabwriter.Writer) { printStatus(w, st, c.clock()) }); err != nil {
				return err
			}
			if !*watch || len(st.Runs.Current) == 0 {
				return nil
			}
			if !c.sleep(ctx, 2*time.Second) {
				return nil
			}
			if !c.json {
				fmt.Fprintln(c.out)
			}
		}
	}
}

func (c *cli) status(ctx context.Context, tenant string) (adminapi.Status, error) {
	var st adminapi.Status
	err := c.api.Do(ctx, "GET", adminapi.TenantPath(tenant, "/status"), nil, &st)
	return st, err
}

// sleep waits d (or -poll when given) and reports false when ctx ended first.
func (c *cli) sleep(ctx context.Context, d time.Duration) bool {
	if c.pollEvery > 0 {
		d = c.pollEvery
	}
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

func syncNow(ctx context.Context, c *cli, args []string) error {
	var res adminapi.RunStarted
	if err := c.api.Do(ctx, "POST", adminapi.TenantPath(args[0], "/sync/"+args[1]), nil, &res); err != nil {
		return err
	}
	return c.print(res, func(w *tabwriter.Writer) { fmt.Fprintf(w, "started %s run %s\n", args[1], res.RunID) })
}

func showIssues(ctx context.Context, c *cli, args []string) error {
	st, err := c.status(ctx, args[0])
	if err != nil {
		return err
	}
	return c.print(st.Issues, func(w *tabwriter.Writer) { printIssues(w, st.Issues) })
}

// watchRun shows the tenant's status until run runID of kind finished, and returns it. The run
// shows up only once a worker took the command, so an absent run is waited for, not taken as
// done.
func (c *cli) watchRun(ctx context.Context, tenant, kind, runID string) (adminapi.Run, error) {
	for {
		st, err := c.status(ctx, tenant)
		if err != nil {
			return adminapi.Run{}, err
		}
		if !c.json {
			fmt.Fprintln(c.out)
			if err := c.print(st, func(w *tabwriter.Writer) { printStatus(w, st, c.clock()) }); err != nil {
				return adminapi.Run{}, err
			}
		}
		for _, r := range st.Runs.Finished {
			if r.ID == runID {
				if r.Status == adminapi.RunFailed {
					return r, fmt.Errorf("the %s run failed: %s", kind, r.Message)
				}
				return r, nil
			}
		}
		if !c.sleep(ctx, 2*time.Second) {
			return adminapi.Run{}, ctx.Err()
		}
	}
}

// progressBar draws done of total as a bar, with the rate and the time left when they are known.
func progressBar(r adminapi.Run, now time.Time) string {
	const width = 30
	if r.Total <= 0 {
		return fmt.Sprintf("[%s] %d done", strings.Repeat("?", width), r.Done)
	}
	frac := min(float64(r.Done)/float64(r.Total), 1)
	filled := int(frac * width)
	bar := strings.Repeat("#", filled) + strings.Repeat(".", width-filled)
	s := fmt.Sprintf("[%s] %d/%d %3.0f%%", bar, r.Done, r.Total, frac*100)
	if elapsed := now.Sub(r.StartedAt).Seconds(); elapsed > 0 && r.Done > 0 {
		rate := float64(r.Done) / elapsed
		left := time.Duration(float64(r.Total-r.Done)/rate) * time.Second
		s += fmt.Sprintf("  %.1f/s  %s left", rate, left.Round(time.Second))
	}
	return s
}

func printStatus(w *tabwriter.Writer, st adminapi.Status, now time.Time) {
	fmt.Fprintf(w, "tenant %s (%s), %s\n\n", st.Tenant.ID, st.Tenant.DisplayName, st.Tenant.State)
	if len(st.Runs.Current) > 0 {
		fmt.Fprintln(w, "RUNNING\tTRIGGER\tPROGRESS")
		for _, r := range st.Runs.Current {
			fmt.Fprintf(w, "%s\t%s\t%s\n", r.Kind, r.Trigger, progressBar(r, now))
		}
		fmt.Fprintln(w)
	}
	if len(st.NextRuns) > 0 {
		fmt.Fprintln(w, "SCHEDULED\tNEXT RUN")
		for _, k := range slices.Sorted(maps.Keys(st.NextRuns)) {
			fmt.Fprintf(w, "%s\t%s (in %s)\n", k, st.NextRuns[k].Local().Format("2006-01-02 15:04:05"), st.NextRuns[k].Sub(now).Round(time.Second))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "KIND\tSTATUS\tFINISHED\tCREATED\tUPDATED\tUNCHANGED\tSKIPPED\tFAILED\tMESSAGE")
	for _, r := range st.Runs.Finished {
		c := r.Counts
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", r.Kind, r.Status,
			r.FinishedAt.Local().Format("2006-01-02 15:04:05"), c.Created, c.Updated, c.Unchanged, c.Skipped, c.Failed, r.Message)
	}
	fmt.Fprintln(w)
	printIssues(w, st.Issues)
	if len(st.History) > 0 {
		fmt.Fprintln(w, "\nWHEN\tWHAT\tRECORD\tMESSAGE")
		for _, h := range st.History[:min(len(st.History), historyShown)] {
			fmt.Fprintf(w, "%s\t%s\t%s %s\t%s\n", h.At.Local().Format("2006-01-02 15:04:05"), h.Code, h.Kind, h.EntityID, h.Message)
		}
	}
}

// historyShown is how many of the latest history entries the status table shows; -o json has
// all the admin API sent.
const historyShown = 10

func printIssues(w *tabwriter.Writer, issues []adminapi.Issue) {
	if len(issues) == 0 {
		fmt.Fprintln(w, "no open issues")
		return
	}
	fmt.Fprintln(w, "ISSUE\tRECORD\tSEEN\tWHAT\tWHAT TO DO")
	for _, i := range issues {
		fmt.Fprintf(w, "%s\t%s %s\t%dx\t%s\t%s\n", i.Code, i.Kind, i.EntityID, i.Occurrences, i.Message, i.Action)
	}
}
