package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/koppel/koppel/pkg/adminapi"
	"github.com/koppel/koppel/pkg/bus"
	eventsv1 "github.com/koppel/koppel/proto/koppel/events/v1"
	"github.com/koppel/koppel/services/sandbox/ebsim"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// chromiumPath finds the browser the console test drives: Debian's chromium (.ci/run installs
// it), or what KOPPEL_CHROMIUM names.
func chromiumPath(t *testing.T) string {
	if p := os.Getenv("KOPPEL_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("the console's browser test needs Chromium: apt-get install -y chromium (.ci/run installs it), or set KOPPEL_CHROMIUM")
	return ""
}

// artefactDir is where the test saves its screenshots: KOPPEL_TEST_ARTEFACTS when set (CI keeps
// them; the README's screenshot comes from there), else the test's temporary directory.
func artefactDir(t *testing.T) string {
	if d := os.Getenv("KOPPEL_TEST_ARTEFACTS"); d != "" {
		d = filepath.Join(d, "console")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// consoleErrors collects what the browser reports as an error: console.error calls, uncaught
// exceptions and log entries (a Content-Security-Policy violation is one).
type consoleErrors struct {
	mu   sync.Mutex
	errs []string
}

func (c *consoleErrors) add(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errs = append(c.errs, s)
}

func (c *consoleErrors) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.errs...)
}

// TestConsoleInBrowser is an operator's first hour in the console, in headless Chromium against
// the whole stack as processes: sign in (a wrong token first), create a tenant, walk the wizard
// (one wrong ledger), activate, watch the import reach 100%, open an issue, run a sync now,
// replay a dead letter, read the status at 360 px, and sign out.
func TestConsoleInBrowser(t *testing.T) {
	browserPath := chromiumPath(t)
	s := startStack(t)
	sb := "http://" + s.Addrs["sandbox"]
	base := "http://" + s.Addrs["admin"]
	ctx := context.Background()

	// What the operator has: an administration with relations, a Tribe environment holding a few
	// of them already, one with another phone number (the issue to open).
	var adm struct{ ID, AccessToken string }
	if err := call(ctx, "POST", sb+"/eboekhouden/_sim/admins", "", map[string]any{"company": "Browser B.V.", "relations": 60, "products": 5, "seed": 7}, &adm); err != nil {
		t.Fatal(err)
	}
	var env struct {
		ClientID          string `json:"clientId"`
		ClientSecret      string `json:"clientSecret"`
		OwnOrganizationID string `json:"ownOrganizationId"`
	}
	if err := call(ctx, "POST", sb+"/tribe/_sim/environments", "", map[string]any{"id": "browser", "name": "Browser B.V.", "units": demoUnits}, &env); err != nil {
		t.Fatal(err)
	}
	if err := seedKnownRelations(ctx, sb, adm.ID, "browser", env.OwnOrganizationID, 6, 1); err != nil {
		t.Fatal(err)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browserPath), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 900), chromedp.Flag("disable-dev-shm-usage", true))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	bctx, cancelTimeout := context.WithTimeout(bctx, 8*time.Minute)
	defer cancelTimeout()

	var errs consoleErrors
	err := chromedp.Listen(bctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				errs.add("console.error: " + strings.Join(parts, " "))
			}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			errs.add(fmt.Sprintf("exception: %s (%s:%d)", msg, d.URL, d.LineNumber))
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.EntryLevelError {
				errs.add(fmt.Sprintf("log (%s): %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
			}
		}
	})
	if err != nil {
		t.Fatalf("start Chromium (%s): %v", browserPath, err)
	}

	shots := artefactDir(t)
	fail := func(what string, err error) {
		t.Helper()
		page, _ := chromedp.Run(bctx, chromedp.OuterHTML(chromedp.CSS("main")))
		t.Fatalf("%s: %v\npage: %s", what, err, page)
	}
	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, actions...); err != nil {
			fail(what, err)
		}
	}
	// shot saves the page as name.png (quality 100 makes a PNG, anything less a JPEG).
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			fail("screenshot "+name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	text := func(id string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(chromedp.ID(id)))
		if err != nil {
			fail("read #"+id, err)
		}
		return s
	}
	// poll evaluates expr until it is true, from Go: the status page reloads itself when a run
	// ends, which would end a poll that runs in the page.
	poll := func(what, expr string, timeout, interval time.Duration) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for {
			ok, err := chromedp.Run(bctx, chromedp.Evaluate[bool](expr))
			if err == nil && ok {
				return
			}
			if time.Now().After(deadline) {
				fail(what, fmt.Errorf("not within %s (last error: %v)", timeout, err))
			}
			time.Sleep(interval)
		}
	}
	waitText := func(id, want string) {
		t.Helper()
		poll("wait for "+want, fmt.Sprintf(`(document.getElementById(%q)?.textContent || "").includes(%q)`, id, want), 20*time.Second, 200*time.Millisecond)
	}
	id := func(s string) chromedp.ID { return chromedp.ID(s) }

	// Sign in, with a wrong token first.
	if _, err := chromedp.Call(bctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("start Chromium (%s): %v", browserPath, err)
	}
	do("open the console", chromedp.Navigate(base+"/console/"), chromedp.WaitVisible(id("token")))
	shot("01-signin")
	do("wrong token", chromedp.SendKeys(id("token"), "not-the-token"), chromedp.Click(id("signin")), chromedp.WaitVisible(id("page-error")))
	if got := text("page-error"); !strings.Contains(got, "not accepted") {
		t.Fatalf("a wrong token shows %q", got)
	}
	shot("02-signin-wrong-token")
	do("sign in", chromedp.SendKeys(id("token"), s.AdminToken), chromedp.Click(id("signin")), chromedp.WaitVisible(id("create-tenant")))
	shot("03-tenants")

	// Create the tenant, then the wizard.
	do("create tenant", chromedp.SendKeys(id("f-id"), "browser"), chromedp.SendKeys(id("f-display_name"), "Browser B.V."),
		chromedp.Click(id("create-tenant")), chromedp.WaitVisible(id("save-credentials")))
	do("credentials",
		chromedp.SetValue(id("f-eboekhouden-base_url"), sb+"/eboekhouden"),
		chromedp.SendKeys(id("f-eboekhouden-token"), adm.AccessToken),
		chromedp.SetValue(id("f-tribe-base_url"), sb+"/tribe"),
		chromedp.SetValue(id("f-tribe-auth_url"), sb+"/tribe"),
		chromedp.SendKeys(id("f-tribe-client_id"), env.ClientID),
		chromedp.SendKeys(id("f-tribe-client_secret"), env.ClientSecret))
	shot("04-wizard-credentials")
	do("store credentials", chromedp.Click(id("save-credentials")), chromedp.WaitVisible(id("configuration")))
	shot("05-wizard-configuration")
	do("to the links", chromedp.Click(id("next")), chromedp.WaitVisible(id("save-links")))

	api := &adminapi.Client{Base: base, Token: s.AdminToken}
	var cfg adminapi.Configuration
	if err := api.Do(ctx, "GET", "/admin/v1/tenants/browser/configuration", nil, &cfg); err != nil {
		t.Fatal(err)
	}
	ledger := func(code string) string {
		for _, l := range cfg.Ledgers {
			if l.Code == code {
				return l.ID
			}
		}
		t.Fatalf("no ledger %s in the configuration", code)
		return ""
	}
	links := []chromedp.Action[chromedp.Void]{chromedp.SetValue(id("f-debtor_ledger"), ledger("8000")), // a revenue ledger: wrong
		chromedp.SetValue(id("f-invoice_template"), cfg.InvoiceTemplates[0].ID),
		chromedp.Click(id("f-auto_debtor_numbers")), chromedp.SendKeys(id("f-debtor_number_start"), "7000")}
	for _, g := range cfg.VATGroups {
		links = append(links, chromedp.SetValue(id("f-revenue_ledgers-"+g.ID), ledger("8000")), chromedp.SetValue(id("f-vat_codes-"+g.ID), ebsim.SaleVATCode(g.Percentage)))
	}
	do("links with a wrong debtors ledger", append(links, chromedp.Click(id("save-links")), chromedp.WaitVisible(id("err-f-debtor_ledger")))...)
	if got := text("err-f-debtor_ledger"); !strings.Contains(got, "debtors (DEB) ledger") {
		t.Fatalf("the wrong ledger's error says %q", got)
	}
	beside, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`(() => { const f = document.getElementById("f-debtor_ledger");
		return f.nextElementSibling.id === "err-f-debtor_ledger" && f.getAttribute("aria-describedby") === "err-f-debtor_ledger" &&
			f.getAttribute("aria-invalid") === "true"; })()`))
	if err != nil || !beside {
		t.Fatalf("the ledger's error is not beside its field (next to it, and named by its aria-describedby): %v", err)
	}
	shot("06-wizard-links-wrong-ledger")
	do("links", chromedp.SetValue(id("f-debtor_ledger"), ledger("1300")), chromedp.Click(id("save-links")), chromedp.WaitVisible(id("review")))
	if got := text("review"); !strings.Contains(got, "on, from 7000") || !strings.Contains(got, "1300") {
		t.Fatalf("the review shows %q", got)
	}
	shot("07-wizard-review")

	// Activate, and watch the import to the end.
	do("activate", chromedp.Click(id("activate")), chromedp.WaitVisible(id("running")))
	shot("08-status-import-running")
	poll("the import reaches 100%", `(() => {
			const done = document.querySelector('#last-runs tr[data-kind="import"] progress');
			return done !== null && done.value === 100;
		})()`, 4*time.Minute, time.Second)
	shot("09-status-import-done")

	// The issue: the relation Tribe has with another phone number.
	poll("an open issue", `document.querySelector(".issue-link") !== null || (location.reload(), false)`, time.Minute, 2*time.Second)
	do("open the issue", chromedp.Click(chromedp.CSS(".issue-link")), chromedp.WaitVisible(id("issue")))
	if got := text("issue"); !strings.Contains(got, "What to do") {
		t.Fatalf("the issue page shows %q: no advice", got)
	}
	shot("10-issue")

	// Run a sync now.
	do("run now", chromedp.Navigate(base+"/console/tenants/browser"), chromedp.WaitVisible(id("run-relation-scan")),
		chromedp.Click(id("run-relation-scan")), chromedp.WaitVisible(id("flash")))
	if got := text("flash"); !strings.Contains(got, "relation-scan run started") && !strings.Contains(got, "Already running") {
		t.Fatalf("run now says %q", got)
	}
	shot("11-run-now")

	// A dead letter, replayed.
	seq := deadLetterARun(t, s.NATS.URL(), "browser")
	dl := fmt.Sprintf("dl-%d", seq)
	do("dead letters", chromedp.Navigate(base+"/console/deadletters"), chromedp.WaitVisible(id(dl)))
	shot("12-dead-letters")
	do("show the dead letter", chromedp.Click(id(dl)), chromedp.WaitVisible(id("dl-reason")))
	if got := text("dl-reason"); !strings.Contains(got, "browser test") {
		t.Fatalf("the dead letter's reason shows %q", got)
	}
	do("replay", chromedp.Click(id("replay")), chromedp.WaitVisible(id("confirm")))
	shot("13-dead-letter-confirm")
	do("confirm the replay", chromedp.Click(id("confirm")), chromedp.WaitVisible(id("flash")))
	waitText("flash", "replayed")
	var left adminapi.DeadLetters
	if err := api.Do(ctx, "GET", "/admin/v1/deadletters?tenant=browser", nil, &left); err != nil || len(left.DeadLetters) != 0 {
		t.Fatalf("after the replay the dead letters are %+v (%v)", left.DeadLetters, err)
	}

	// Readable at 360 px: nothing wider than the screen but the tables, which scroll in place.
	do("status at 360 px", chromedp.EmulateViewport(360, 740), chromedp.Navigate(base+"/console/tenants/browser"), chromedp.WaitVisible(id("running")))
	overflow, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth - window.innerWidth`))
	if err != nil || overflow > 0 {
		wide, _ := chromedp.Run(bctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("body *")).
			filter(e => e.getBoundingClientRect().right > window.innerWidth && !(e.parentElement && e.parentElement.closest(".scroll, figure"))).
			map(e => e.tagName + (e.id ? "#" + e.id : "") + "." + e.className + " " + Math.round(e.getBoundingClientRect().right)).concat(["inner " + window.innerWidth + " scroll " + document.documentElement.scrollWidth + " client " + document.documentElement.clientWidth])`))
		t.Fatalf("the status page is %d px wider than a 360 px screen (%v); too wide: %v", overflow, err, wide)
	}
	shot("14-status-360px")
	do("back to desktop width", chromedp.EmulateViewport(1280, 900), chromedp.Navigate(base+"/console/tenants/browser"), chromedp.WaitVisible(id("running")))
	shot("15-status")

	// Sign out: the pages are closed again.
	do("sign out", chromedp.Click(id("signout")), chromedp.WaitVisible(id("token")))
	waitText("flash", "signed out")
	do("a page after sign-out", chromedp.Navigate(base+"/console/tenants"), chromedp.WaitVisible(id("token")))
	if where, err := chromedp.Run(bctx, chromedp.Location()); err != nil || !strings.Contains(where, "/console/signin") {
		t.Fatalf("after sign-out /console/tenants opened %s (%v)", where, err)
	}

	if e := errs.list(); len(e) > 0 {
		t.Fatalf("the browser reported errors:\n%s", strings.Join(e, "\n"))
	}
	t.Logf("screenshots in %s", shots)
}

// deadLetterARun puts a relation-scan command of tenant in the dead-letter stream, as the
// relation service does with a command it gave up on, and returns its sequence.
func deadLetterARun(t *testing.T, natsURL, tenant string) uint64 {
	t.Helper()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	runID := fmt.Sprintf("manual:%s:relation-scan:%d", tenant, time.Now().UnixNano())
	data, err := proto.Marshal(&eventsv1.SyncCommand{TenantId: tenant, Kind: bus.KindRelationScan, Slot: timestamppb.Now(), Trigger: bus.TriggerManual, RunId: runID})
	if err != nil {
		t.Fatal(err)
	}
	original, _ := bus.SyncCommandSubject(tenant, bus.KindRelationScan)
	subject, _ := bus.DeadLetterSubject(tenant, bus.ConsumerRelationCommands)
	h := nats.Header{}
	h.Set(bus.HeaderContentType, bus.ContentTypeProto)
	h.Set(bus.HeaderTenant, tenant)
	h.Set(bus.HeaderDLQReason, "browser test: the command failed 5 times")
	h.Set(bus.HeaderDLQSubject, original)
	h.Set(bus.HeaderDLQDeliveries, "5")
	h.Set(bus.HeaderDLQConsumer, bus.ConsumerRelationCommands)
	h.Set(bus.HeaderDLQMsgID, runID)
	ack, err := js.PublishMsg(context.Background(), &nats.Msg{Subject: subject, Data: data, Header: h})
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}
