package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/koppel/koppel/pkg/adminapi"
)

func listDeadLetters(fs *flag.FlagSet) runFunc {
	tenant := fs.String("tenant", "", "only this tenant's")
	return func(ctx context.Context, c *cli, _ []string) error {
		path := "/admin/v1/deadletters"
		if *tenant != "" {
			path += "?tenant=" + url.QueryEscape(*tenant)
		}
		var res adminapi.DeadLetters
		if err := c.api.Do(ctx, "GET", path, nil, &res); err != nil {
			return err
		}
		return c.print(res.DeadLetters, func(w *tabwriter.Writer) {
			fmt.Fprintln(w, "SEQ\tTENANT\tCONSUMER\tSUBJECT\tDELIVERIES\tDEAD AT\tREASON")
			for _, d := range res.DeadLetters {
				fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%d\t%s\t%s\n", d.Sequence, d.Tenant, d.Consumer, d.OriginalSubject, d.Deliveries,
					d.DeadAt.Local().Format("2006-01-02 15:04:05"), d.Reason)
			}
		})
	}
}

// deadLetter shows, replays or drops one dead letter.
func deadLetter(action string) runFunc {
	return func(ctx context.Context, c *cli, args []string) error {
		if _, err := strconv.ParseUint(args[0], 10, 64); err != nil {
			return usageError("the sequence is a whole number")
		}
		path := "/admin/v1/deadletters/" + args[0]
		switch action {
		case "show":
			var d adminapi.DeadLetter
			if err := c.api.Do(ctx, "GET", path, nil, &d); err != nil {
				return err
			}
			return c.print(d, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "sequence\t%d\ntenant\t%s\nconsumer\t%s\nsubject\t%s\nmessage ID\t%s\ndeliveries\t%d\ndead at\t%s\nreason\t%s\n",
					d.Sequence, d.Tenant, d.Consumer, d.OriginalSubject, d.OriginalMsgID, d.Deliveries, d.DeadAt.Local().Format(time.RFC3339), d.Reason)
			})
		case "replay":
			if err := c.api.Do(ctx, "POST", path+"/replay", nil, nil); err != nil {
				return err
			}
			return c.print(map[string]string{"replayed": args[0]}, func(w *tabwriter.Writer) { fmt.Fprintf(w, "replayed dead letter %s\n", args[0]) })
		default:
			if err := c.api.Do(ctx, "DELETE", path, nil, nil); err != nil {
				return err
			}
			return c.print(map[string]string{"dropped": args[0]}, func(w *tabwriter.Writer) { fmt.Fprintf(w, "dropped dead letter %s\n", args[0]) })
		}
	}
}
