// Command koppelctl operates koppel through the admin API: tenants and their
// activation, status with progress, sync now, issues, dead letters and rebuilding the mapping.
// Tables for people by default, -o json for scripts.
//
// Exit codes: 0 done, 1 failed (network, server; an invoice push that ended in an issue), 2 wrong
// usage, 3 not found, 4 conflict (for example a run already in progress), 5 not authorised, 6 not
// done yet (a wait that ran out).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/koppel/koppel/pkg/adminapi"
)

// usageHead opens the usage text; usageText lists the commands after it.
const usageHead = `koppelctl operates koppel through the admin API.

Usage: koppelctl [flags] <command> [arguments]

The admin token comes from KOPPEL_TOKEN, or from a file (-token-file or KOPPEL_TOKEN_FILE);
never from the command line, where ps and the shell's history would show it.

Commands:
`

// Exit codes.
const (
	exitOK           = 0
	exitFailed       = 1
	exitUsage        = 2
	exitNotFound     = 3
	exitConflict     = 4
	exitUnauthorized = 5
	exitPending      = 6
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("koppelctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", envOr("KOPPEL_URL", "http://127.0.0.1:8082"), "admin API URL (env KOPPEL_URL)")
	tokenFile := fs.String("token-file", envOr("KOPPEL_TOKEN_FILE", ""), "file holding the admin bearer token (env KOPPEL_TOKEN_FILE); else env KOPPEL_TOKEN")
	output := fs.String("o", "table", "output: table or json")
	poll := fs.Duration("poll", 0, "how often -watch and -wait look again (default 2s for runs, 500ms for invoice pushes)")
	fs.Usage = func() { fmt.Fprint(stderr, usageText()); fs.PrintDefaults() }
	// A token on the command line shows in ps and in the shell's history: refuse it by name
	// rather than as an unknown flag, so the way to pass it is in the message.
	for _, a := range args {
		if name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "="); strings.HasPrefix(a, "-") && name == "token" {
			fmt.Fprintln(stderr, "koppelctl: the admin token is read from KOPPEL_TOKEN or from a file (-token-file, KOPPEL_TOKEN_FILE), never from the command line")
			return exitUsage
		}
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *poll < 0 {
		fmt.Fprintln(stderr, "koppelctl: -poll: want a positive duration")
		return exitUsage
	}
	if *output != "table" && *output != "json" {
		fmt.Fprintln(stderr, "koppelctl: -o: want table or json")
		return exitUsage
	}
	token, err := adminToken(*tokenFile)
	if err != nil {
		fmt.Fprintf(stderr, "koppelctl: %v\n", err)
		return exitUsage
	}
	c := &cli{api: &adminapi.Client{Base: strings.TrimRight(*url, "/"), Token: token}, out: stdout, json: *output == "json", stdin: stdin, pollEvery: *poll}
	err = c.dispatch(ctx, fs.Args())
	if err == nil {
		return exitOK
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "koppelctl: %v\n\n", err)
		fs.Usage()
		return exitUsage
	}
	fmt.Fprintf(stderr, "koppelctl: %v\n", err)
	if isPending(err) {
		return exitPending
	}
	var ae *adminapi.Error
	if errors.As(err, &ae) {
		switch ae.Status {
		case 401, 403:
			return exitUnauthorized
		case 404:
			return exitNotFound
		case 409:
			return exitConflict
		case 400, 413:
			return exitUsage
		}
	}
	return exitFailed
}

// adminToken reads the admin token from file when one is named, else from KOPPEL_TOKEN.
func adminToken(file string) (string, error) {
	if file == "" {
		return os.Getenv("KOPPEL_TOKEN"), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read the admin token: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", fmt.Errorf("read the admin token: %s is empty", file)
	}
	return token, nil
}

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

type usageError string

func (e usageError) Error() string { return string(e) }
