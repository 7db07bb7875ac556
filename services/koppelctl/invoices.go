package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// invoiceState is the gateway's answer about one invoice: GET .../invoices/{id}, and the
// state before the push for POST .../push.
type invoiceState struct {
	Tenant        string `json:"tenant"`
	ID            string `json:"invoice_id"`
	Booked        bool   `json:"booked"`
	EBoekhoudenID string `json:"eboekhouden_id,omitempty"`
	Number        string `json:"number,omitempty"`
	Issues        struct {
		Issues []issue `json:"issues"`
	} `json:"issues"`
}

// pendingError is a wait that ran out before the outcome was known (exit code 6).
type pendingError struct{ msg string }

func (e *pendingError) Error() string { return e.msg }

func (c *cli) invoices(ctx context.Context, args []string) error {
	const form = "invoices push <tenant> <invoice> [-wait=false] [-timeout 1m] | invoices show <tenant> <invoice>"
	if len(args) == 0 {
		return usageError("usage: koppelctl " + form)
	}
	fs := flag.NewFlagSet("invoices "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	wait := fs.Bool("wait", true, "wait until the invoice is booked or an issue says why not")
	timeout := fs.Duration("timeout", time.Minute, "how long to wait")
	// Flags may come before, between or after the two arguments.
	var pos []string
	for rest := args[1:]; ; {
		if err := fs.Parse(rest); err != nil {
			return usageError(fmt.Sprintf("invoices %s: %v; usage: koppelctl %s", args[0], err, form))
		}
		if rest = fs.Args(); len(rest) == 0 {
			break
		}
		pos, rest = append(pos, rest[0]), rest[1:]
	}
	if len(pos) != 2 || *timeout <= 0 {
		return usageError("usage: koppelctl " + form)
	}
	path := "/admin/v1/tenants/" + pos[0] + "/invoices/" + pos[1]
	switch args[0] {
	case "show":
		var st invoiceState
		if err := c.api.do(ctx, "GET", path, nil, &st); err != nil {
			return err
		}
		return c.print(st, func(w *tabwriter.Writer) { printInvoice(w, st) })
	case "push":
		return c.pushInvoice(ctx, path, *wait, *timeout)
	}
	return usageError(fmt.Sprintf("unknown invoices command %q", args[0]))
}

// pushInvoice pushes an invoice and, with wait, polls it until it is booked (exit 0) or an
// issue newer than the push says why not (exit 1), for at most timeout (exit 6: still queued).
func (c *cli) pushInvoice(ctx context.Context, path string, wait bool, timeout time.Duration) error {
	var before invoiceState
	if err := c.api.do(ctx, "POST", path+"/push", nil, &before); err != nil {
		return err
	}
	if !wait {
		return c.print(before, func(w *tabwriter.Writer) {
			fmt.Fprintf(w, "pushed invoice %s; see how it went with koppelctl invoices show %s %s\n", before.ID, before.Tenant, before.ID)
		})
	}
	seen := map[string]int64{}
	for _, i := range before.Issues.Issues {
		seen[i.Key] = int64(i.Occurrences)
	}
	deadline := c.clock().Add(timeout)
	every := c.pollEvery
	if every <= 0 {
		every = 500 * time.Millisecond
	}
	for {
		var st invoiceState
		if err := c.api.do(ctx, "GET", path, nil, &st); err != nil {
			return err
		}
		if st.Booked {
			return c.print(st, func(w *tabwriter.Writer) { printInvoice(w, st) })
		}
		for _, i := range st.Issues.Issues {
			if n, ok := seen[i.Key]; !ok || int64(i.Occurrences) > n {
				if err := c.print(st, func(w *tabwriter.Writer) { printInvoice(w, st) }); err != nil {
					return err
				}
				return fmt.Errorf("invoice %s was not booked: %s", st.ID, i.Code)
			}
		}
		if !c.clock().Before(deadline) {
			return &pendingError{fmt.Sprintf("invoice %s is not booked after %s, and no issue says why yet; the push is queued: look again with koppelctl invoices show %s %s",
				st.ID, timeout, st.Tenant, st.ID)}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every):
		}
	}
}

func printInvoice(w *tabwriter.Writer, st invoiceState) {
	if st.Booked {
		number := st.Number
		if number == "" {
			number = st.ID
		}
		fmt.Fprintf(w, "invoice %s is booked: e-Boekhouden invoice %s\n", number, st.EBoekhoudenID)
	} else {
		fmt.Fprintf(w, "invoice %s is not booked\n", st.ID)
	}
	if len(st.Issues.Issues) > 0 {
		fmt.Fprintln(w)
		printIssues(w, st.Issues.Issues)
	}
}

// isPending reports whether err is a wait that ran out.
func isPending(err error) bool {
	var p *pendingError
	return errors.As(err, &p)
}
