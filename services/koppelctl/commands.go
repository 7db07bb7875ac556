package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

type cli struct {
	api   *apiClient
	out   io.Writer
	stdin io.Reader
	json  bool
	// now and pollEvery are replaced in tests of -watch.
	now       func() time.Time
	pollEvery time.Duration
	// getenv reads the environment (os.Getenv when nil).
	getenv func(string) string
}

// i64 decodes the int64 fields of protobuf JSON, which arrive as strings.
type i64 int64

func (n *i64) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	v, err := strconv.ParseInt(s, 10, 64)
	*n = i64(v)
	return err
}

type tenant struct {
	ID          string   `json:"id"`
	DisplayName string   `json:"display_name"`
	State       string   `json:"state"`
	SecretNames []string `json:"secret_names"`
	Settings    struct {
		AutoDebtorNumbers bool           `json:"auto_debtor_numbers"`
		DebtorNumberStart i64            `json:"debtor_number_start"`
		ScheduleSeconds   map[string]i64 `json:"schedule_seconds"`
		Links             map[string]string
	} `json:"settings"`
	CreatedAt time.Time `json:"created_at"`
	// CatchUpRuns are the runs a resume started, by kind.
	CatchUpRuns map[string]string `json:"catch_up_runs,omitempty"`
}

type syncRun struct {
	ID         string    `json:"id"`
	Kind       string    `json:"kind"`
	Status     string    `json:"status"`
	Trigger    string    `json:"trigger"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	Done       i64       `json:"done"`
	Total      i64       `json:"total"`
	Message    string    `json:"message"`
	Counts     struct {
		Created, Updated, Unchanged, Skipped, Failed i64
	} `json:"counts"`
}

type issue struct {
	Key         string    `json:"key"`
	Code        string    `json:"code"`
	Kind        string    `json:"kind"`
	EntityID    string    `json:"entity_id"`
	Message     string    `json:"message"`
	Action      string    `json:"action"`
	LastSeen    time.Time `json:"last_seen"`
	Occurrences i64       `json:"occurrences"`
	// Details say what a flow needs to retry the record (an invoice's retry_on, say).
	Details map[string]string `json:"details,omitempty"`
}

type status struct {
	Tenant   tenant               `json:"tenant"`
	NextRuns map[string]time.Time `json:"next_runs"`
	Runs     struct {
		Current  []syncRun `json:"current"`
		Finished []syncRun `json:"finished"`
	} `json:"runs"`
	Issues struct {
		Issues []issue `json:"issues"`
	} `json:"issues"`
	History struct {
		Entries []struct {
			At      time.Time `json:"at"`
			Code    string    `json:"code"`
			Message string    `json:"message"`
		} `json:"entries"`
	} `json:"history"`
}

type deadLetter struct {
	Sequence        uint64    `json:"sequence"`
	Tenant          string    `json:"tenant"`
	Consumer        string    `json:"consumer"`
	Reason          string    `json:"reason"`
	OriginalSubject string    `json:"original_subject"`
	OriginalMsgID   string    `json:"original_msg_id"`
	Deliveries      int       `json:"deliveries"`
	DeadAt          time.Time `json:"dead_at"`
}

func need(args []string, n int, form string) error {
	if len(args) < n {
		return usageError("usage: koppelctl " + form)
	}
	return nil
}

func (c *cli) dispatch(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError("no command")
	}
	switch args[0] {
	case "tenants":
		return c.tenants(ctx, args[1:])
	case "secrets":
		if len(args) > 1 && args[1] == "reseal" {
			return c.reseal(ctx, args[2:])
		}
		if err := need(args, 4, "secrets set <tenant> <name>"); err != nil || args[1] != "set" {
			return usageError("usage: koppelctl secrets set <tenant> <name> | secrets reseal [tenant ...] [-dry-run]")
		}
		return c.setSecret(ctx, args[2], args[3])
	case "status":
		return c.status(ctx, args[1:])
	case "sync":
		if err := need(args, 3, "sync <tenant> <kind>"); err != nil {
			return err
		}
		var res struct {
			RunID string `json:"run_id"`
		}
		if err := c.api.do(ctx, "POST", "/admin/v1/tenants/"+args[1]+"/sync/"+args[2], nil, &res); err != nil {
			return err
		}
		return c.print(res, func(w *tabwriter.Writer) { fmt.Fprintf(w, "started %s run %s\n", args[2], res.RunID) })
	case "issues":
		if err := need(args, 2, "issues <tenant>"); err != nil {
			return err
		}
		var st status
		if err := c.api.do(ctx, "GET", "/admin/v1/tenants/"+args[1]+"/status", nil, &st); err != nil {
			return err
		}
		return c.print(st.Issues.Issues, func(w *tabwriter.Writer) { printIssues(w, st.Issues.Issues) })
	case "invoices":
		return c.invoices(ctx, args[1:])
	case "deadletters":
		return c.deadLetters(ctx, args[1:])
	case "rebuild":
		return c.rebuild(ctx, args[1:])
	}
	return usageError(fmt.Sprintf("unknown command %q", args[0]))
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

func (c *cli) tenants(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError("usage: koppelctl tenants list|show|create|credentials|configuration|links|activate|pause|resume")
	}
	switch args[0] {
	case "list":
		var res struct {
			Tenants []tenant `json:"tenants"`
		}
		if err := c.api.do(ctx, "GET", "/admin/v1/tenants", nil, &res); err != nil {
			return err
		}
		return c.print(res.Tenants, func(w *tabwriter.Writer) {
			fmt.Fprintln(w, "TENANT\tNAME\tSTATE\tSECRETS")
			for _, t := range res.Tenants {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", t.ID, t.DisplayName, stateName(t.State), strings.Join(t.SecretNames, ","))
			}
		})
	case "show":
		if err := need(args, 2, "tenants show <tenant>"); err != nil {
			return err
		}
		var t tenant
		if err := c.api.do(ctx, "GET", "/admin/v1/tenants/"+args[1], nil, &t); err != nil {
			return err
		}
		return c.print(t, func(w *tabwriter.Writer) {
			fmt.Fprintf(w, "tenant\t%s\nname\t%s\nstate\t%s\nsecrets\t%s\nautomatic debtor numbers\t%v (from %d)\n",
				t.ID, t.DisplayName, stateName(t.State), strings.Join(t.SecretNames, ", "), t.Settings.AutoDebtorNumbers, t.Settings.DebtorNumberStart)
		})
	case "create":
		if err := need(args, 2, "tenants create <tenant> [name]"); err != nil {
			return err
		}
		name := strings.Join(args[2:], " ")
		var t tenant
		if err := c.api.do(ctx, "POST", "/admin/v1/tenants", map[string]string{"id": args[1], "display_name": name}, &t); err != nil {
			return err
		}
		return c.print(t, func(w *tabwriter.Writer) { fmt.Fprintf(w, "created tenant %s\n", t.ID) })
	case "credentials":
		return c.setCredentials(ctx, args[1:])
	case "configuration":
		return c.configuration(ctx, args[1:])
	case "links":
		return c.setLinks(ctx, args[1:])
	case "activate":
		return c.activate(ctx, args[1:])
	case "pause", "resume":
		if err := need(args, 2, "tenants "+args[0]+" <tenant>"); err != nil {
			return err
		}
		state := map[string]string{"pause": "paused", "resume": "active"}[args[0]]
		var t tenant
		if err := c.api.do(ctx, "PUT", "/admin/v1/tenants/"+args[1]+"/state", map[string]string{"state": state}, &t); err != nil {
			return err
		}
		return c.print(t, func(w *tabwriter.Writer) {
			fmt.Fprintf(w, "tenant %s is %s\n", t.ID, stateName(t.State))
			if len(t.CatchUpRuns) > 0 {
				kinds := make([]string, 0, len(t.CatchUpRuns))
				for k := range t.CatchUpRuns {
					kinds = append(kinds, k)
				}
				sort.Strings(kinds)
				fmt.Fprintf(w, "catching up: %s started now; held events follow within a minute\n", strings.Join(kinds, ", "))
			}
		})
	}
	return usageError(fmt.Sprintf("unknown tenants command %q", args[0]))
}

func stateName(s string) string {
	return strings.ToLower(strings.TrimPrefix(s, "TENANT_STATE_"))
}

func (c *cli) setSecret(ctx context.Context, tenant, name string) error {
	raw, err := io.ReadAll(io.LimitReader(c.stdin, 64<<10+1))
	if err != nil {
		return fmt.Errorf("read secret from standard input: %w", err)
	}
	value := strings.TrimRight(string(raw), "\r\n")
	if value == "" {
		return usageError("the secret is read from standard input, which was empty")
	}
	if err := c.api.do(ctx, "PUT", "/admin/v1/tenants/"+tenant+"/secrets/"+name, map[string]string{"value": value}, nil); err != nil {
		return err
	}
	return c.print(map[string]string{"tenant": tenant, "secret": name}, func(w *tabwriter.Writer) { fmt.Fprintf(w, "stored secret %s of %s\n", name, tenant) })
}

func (c *cli) status(ctx context.Context, args []string) error {
	if err := need(args, 1, "status <tenant> [-watch]"); err != nil {
		return err
	}
	watch := len(args) > 1 && (args[1] == "-watch" || args[1] == "--watch")
	for {
		var st status
		if err := c.api.do(ctx, "GET", "/admin/v1/tenants/"+args[0]+"/status", nil, &st); err != nil {
			return err
		}
		if err := c.print(st, func(w *tabwriter.Writer) { printStatus(w, st, c.clock()) }); err != nil {
			return err
		}
		if !watch || len(st.Runs.Current) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
		if !c.json {
			fmt.Fprintln(c.out)
		}
	}
}

func (c *cli) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

// progressBar draws done of total as a bar, with the rate and the time left when they are known.
func progressBar(r syncRun, now time.Time) string {
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

func printStatus(w *tabwriter.Writer, st status, now time.Time) {
	fmt.Fprintf(w, "tenant %s (%s), %s\n\n", st.Tenant.ID, st.Tenant.DisplayName, stateName(st.Tenant.State))
	if len(st.Runs.Current) > 0 {
		fmt.Fprintln(w, "RUNNING\tTRIGGER\tPROGRESS")
		for _, r := range st.Runs.Current {
			fmt.Fprintf(w, "%s\t%s\t%s\n", r.Kind, r.Trigger, progressBar(r, now))
		}
		fmt.Fprintln(w)
	}
	if len(st.NextRuns) > 0 {
		fmt.Fprintln(w, "SCHEDULED\tNEXT RUN")
		kinds := make([]string, 0, len(st.NextRuns))
		for k := range st.NextRuns {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		for _, k := range kinds {
			fmt.Fprintf(w, "%s\t%s (in %s)\n", k, st.NextRuns[k].Local().Format("2006-01-02 15:04:05"), st.NextRuns[k].Sub(now).Round(time.Second))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "KIND\tSTATUS\tFINISHED\tCREATED\tUPDATED\tUNCHANGED\tSKIPPED\tFAILED\tMESSAGE")
	for _, r := range st.Runs.Finished {
		c := r.Counts
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", r.Kind, strings.ToLower(strings.TrimPrefix(r.Status, "RUN_STATUS_")),
			r.FinishedAt.Local().Format("2006-01-02 15:04:05"), c.Created, c.Updated, c.Unchanged, c.Skipped, c.Failed, r.Message)
	}
	fmt.Fprintln(w)
	printIssues(w, st.Issues.Issues)
}

func printIssues(w *tabwriter.Writer, issues []issue) {
	if len(issues) == 0 {
		fmt.Fprintln(w, "no open issues")
		return
	}
	fmt.Fprintln(w, "ISSUE\tRECORD\tSEEN\tWHAT\tWHAT TO DO")
	for _, i := range issues {
		fmt.Fprintf(w, "%s\t%s %s\t%dx\t%s\t%s\n", i.Code, i.Kind, i.EntityID, i.Occurrences, i.Message, i.Action)
	}
}

func (c *cli) deadLetters(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError("usage: koppelctl deadletters list|show|replay|drop")
	}
	switch args[0] {
	case "list":
		path := "/admin/v1/deadletters"
		if len(args) == 3 && (args[1] == "-tenant" || args[1] == "--tenant") {
			path += "?tenant=" + args[2]
		}
		var res struct {
			DeadLetters []deadLetter `json:"dead_letters"`
		}
		if err := c.api.do(ctx, "GET", path, nil, &res); err != nil {
			return err
		}
		return c.print(res.DeadLetters, func(w *tabwriter.Writer) {
			fmt.Fprintln(w, "SEQ\tTENANT\tCONSUMER\tSUBJECT\tDELIVERIES\tDEAD AT\tREASON")
			for _, d := range res.DeadLetters {
				fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%d\t%s\t%s\n", d.Sequence, d.Tenant, d.Consumer, d.OriginalSubject, d.Deliveries,
					d.DeadAt.Local().Format("2006-01-02 15:04:05"), d.Reason)
			}
		})
	case "show", "replay", "drop":
		if err := need(args, 2, "deadletters "+args[0]+" <seq>"); err != nil {
			return err
		}
		if _, err := strconv.ParseUint(args[1], 10, 64); err != nil {
			return usageError("the sequence is a whole number")
		}
		path := "/admin/v1/deadletters/" + args[1]
		switch args[0] {
		case "show":
			var d deadLetter
			if err := c.api.do(ctx, "GET", path, nil, &d); err != nil {
				return err
			}
			return c.print(d, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "sequence\t%d\ntenant\t%s\nconsumer\t%s\nsubject\t%s\nmessage ID\t%s\ndeliveries\t%d\ndead at\t%s\nreason\t%s\n",
					d.Sequence, d.Tenant, d.Consumer, d.OriginalSubject, d.OriginalMsgID, d.Deliveries, d.DeadAt.Local().Format(time.RFC3339), d.Reason)
			})
		case "replay":
			if err := c.api.do(ctx, "POST", path+"/replay", nil, nil); err != nil {
				return err
			}
			return c.print(map[string]string{"replayed": args[1]}, func(w *tabwriter.Writer) { fmt.Fprintf(w, "replayed dead letter %s\n", args[1]) })
		default:
			if err := c.api.do(ctx, "DELETE", path, nil, nil); err != nil {
				return err
			}
			return c.print(map[string]string{"dropped": args[1]}, func(w *tabwriter.Writer) { fmt.Fprintf(w, "dropped dead letter %s\n", args[1]) })
		}
	}
	return usageError(fmt.Sprintf("unknown deadletters command %q", args[0]))
}
