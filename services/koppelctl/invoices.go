package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/koppel/koppel/pkg/adminapi"
)

// pendingError is a wait that ran out before the outcome was known (exit code 6).
type pendingError struct{ msg string }

func (e *pendingError) Error() string { return e.msg }

// isPending reports whether err is a wait that ran out.
func isPending(err error) bool {
	var p *pendingError
	return errors.As(err, &p)
}

func invoicePath(tenant, invoice string) string {
	return adminapi.TenantPath(tenant, "/invoices/"+url.PathEscape(invoice))
}

func showInvoice(ctx context.Context, c *cli, args []string) error {
	var st adminapi.InvoiceState
	if err := c.api.Do(ctx, "GET", invoicePath(args[0], args[1]), nil, &st); err != nil {
		return err
	}
	return c.print(st, func(w *tabwriter.Writer) { printInvoice(w, st) })
}

// pushInvoice pushes an invoice and, with -wait, polls it until it is booked (exit 0) or an
// issue newer than the push says why not (exit 1), for at most -timeout (exit 6: still queued).
func pushInvoice(fs *flag.FlagSet) runFunc {
	wait := fs.Bool("wait", true, "wait until the invoice is booked or an issue says why not")
	timeout := fs.Duration("timeout", time.Minute, "how long to wait")
	return func(ctx context.Context, c *cli, args []string) error {
		if *timeout <= 0 {
			return usageError("invoices push: -timeout must be positive")
		}
		path := invoicePath(args[0], args[1])
		var before adminapi.InvoiceState
		if err := c.api.Do(ctx, "POST", path+"/push", nil, &before); err != nil {
			return err
		}
		if !*wait {
			return c.print(before, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "pushed invoice %s; see how it went with koppelctl invoices show %s %s\n", before.ID, before.Tenant, before.ID)
			})
		}
		// An issue the invoice had before the push says nothing about the push, unless it
		// is seen again.
		seen := map[string]int64{}
		for _, i := range before.Issues {
			seen[i.Key] = i.Occurrences
		}
		deadline := c.clock().Add(*timeout)
		for {
			var st adminapi.InvoiceState
			if err := c.api.Do(ctx, "GET", path, nil, &st); err != nil {
				return err
			}
			if st.Booked {
				return c.print(st, func(w *tabwriter.Writer) { printInvoice(w, st) })
			}
			for _, i := range st.Issues {
				if n, ok := seen[i.Key]; !ok || i.Occurrences > n {
					if err := c.print(st, func(w *tabwriter.Writer) { printInvoice(w, st) }); err != nil {
						return err
					}
					return fmt.Errorf("invoice %s was not booked: %s", st.ID, i.Code)
				}
			}
			if !c.clock().Before(deadline) {
				return &pendingError{fmt.Sprintf("invoice %s is not booked after %s, and no issue says why yet; the push is queued: look again with koppelctl invoices show %s %s",
					st.ID, *timeout, st.Tenant, st.ID)}
			}
			if !c.sleep(ctx, 500*time.Millisecond) {
				return ctx.Err()
			}
		}
	}
}

func printInvoice(w *tabwriter.Writer, st adminapi.InvoiceState) {
	if st.Booked {
		number := st.Number
		if number == "" {
			number = st.ID
		}
		fmt.Fprintf(w, "invoice %s is booked: e-Boekhouden invoice %s\n", number, st.EBoekhoudenID)
	} else {
		fmt.Fprintf(w, "invoice %s is not booked\n", st.ID)
	}
	if len(st.Issues) > 0 {
		fmt.Fprintln(w)
		printIssues(w, st.Issues)
	}
}
