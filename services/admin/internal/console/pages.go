package console

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/koppel/koppel/pkg/adminapi"
)

// --- sign-in ---

// maxTokenLength bounds what sign-in takes as a token (koppel's tokens are about 44 characters).
const maxTokenLength = 512

type signInData struct {
	Next, Nonce string
}

// safeNext is where to go after sign-in: a console path, never another site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/console/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/console/tenants"
	}
	return next
}

func (c *Console) signInPage(w http.ResponseWriter, r *http.Request) {
	c.showSignIn(w, r, http.StatusOK, "")
}

// showSignIn renders the sign-in form with a fresh double-submit nonce (the form's CSRF guard:
// there is no session yet to bind a token to).
func (c *Console) showSignIn(w http.ResponseWriter, r *http.Request, status int, msg string) {
	// One nonce per browser, kept while it is there: a second sign-in tab must not make the
	// first one's form stale.
	nonce := fmt.Sprintf("%x", randomID())
	if ck, err := r.Cookie(signInCookie); err == nil && len(ck.Value) == 2*sessionIDSize {
		nonce = ck.Value
	}
	setCookie(w, r, signInCookie, nonce, 30*time.Minute)
	c.render(w, r, status, "signin", page{Title: "Sign in", Error: msg, Data: signInData{Next: safeNext(r.FormValue("next")), Nonce: nonce}})
}

func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	ck, err := r.Cookie(signInCookie)
	if err != nil || !sameOrigin(r) || !sameValue(ck.Value, r.PostFormValue("nonce")) {
		c.showSignIn(w, r, http.StatusForbidden, "The sign-in form was stale: enter the token again.")
		return
	}
	token := strings.TrimSpace(r.PostFormValue("token"))
	if len(token) > maxTokenLength {
		// A sealed token this long would not fit in a cookie; no admin token is this long.
		c.showSignIn(w, r, formRefused, fmt.Sprintf("That is not an admin token: at most %d characters.", maxTokenLength))
		return
	}
	addr := clientAddr(r)
	if wait := c.limit.try(addr, c.now()); wait > 0 {
		c.log.WarnContext(r.Context(), "console sign-in refused: too many wrong tokens", "remote", addr)
		c.showSignIn(w, r, http.StatusTooManyRequests,
			fmt.Sprintf("Too many wrong tokens from your address: try again in %s.", roundDuration(wait.Round(time.Second))))
		return
	}
	ctx, cancel := c.ctx(r)
	defer cancel()
	// The token is checked by the API itself: a call that needs it.
	err = c.client(token).Do(ctx, "GET", "/admin/v1/tenants", nil, nil)
	if e := apiError(err); token == "" || (e != nil && e.Status == http.StatusUnauthorized) {
		c.log.WarnContext(r.Context(), "console sign-in with a wrong token", "remote", addr)
		c.showSignIn(w, r, formRefused, "That admin token is not accepted. Check it (koppel's admin tokens are in KOPPEL_ADMIN_TOKEN_HASHES as SHA-256 hashes) and try again.")
		return
	}
	if err != nil {
		c.limit.succeeded(addr) // not a wrong token
		c.showSignIn(w, r, formRefused, "The admin API could not be asked: "+errText(err))
		return
	}
	c.limit.succeeded(addr)
	clearCookie(w, r, signInCookie)
	sess := session{id: randomID(), token: token, expires: c.now().Add(SessionLifetime)}
	setCookie(w, r, sessionCookie, c.seal.seal(sess), SessionLifetime)
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

func (c *Console) signOut(w http.ResponseWriter, r *http.Request, p *request) {
	if err := c.out.End(r.Context(), p.sess.id); err != nil {
		c.log.ErrorContext(r.Context(), "console: record a sign-out", "error", err)
		c.redirectWith(w, r, "/console/tenants", "error", "You could not be signed out (NATS is not reachable); try again.")
		return
	}
	clearCookie(w, r, sessionCookie)
	c.redirectWith(w, r, "/console/signin", "ok", "You are signed out.")
}

// --- tenants ---

// tenantRow is a tenant on the tenants page.
type tenantRow struct {
	adminapi.Tenant
	OpenIssues    int
	LastSucceeded []adminapi.Run // one per kind, by kind
	Import        *runView       // the import in progress
	Problem       string         // its status could not be read
}

func (c *Console) tenantsPage(w http.ResponseWriter, r *http.Request, p *request) {
	rows, err := c.tenantRows(r, p)
	if err != nil {
		c.failed(w, r, p, err)
		return
	}
	c.showTenants(w, r, p, rows, formState{}, "")
}

func (c *Console) showTenants(w http.ResponseWriter, r *http.Request, p *request, rows []tenantRow, form formState, msg string) {
	c.render(w, r, http.StatusOK, "tenants", page{Title: "Tenants", CSRF: p.csrf, SignedIn: true, Error: msg, Data: struct {
		Tenants []tenantRow
		Form    formState
	}{rows, form}})
}

// tenantRows reads every tenant with its open issues, the last successful run of each kind (over
// the runs kept, not only the latest few) and a running import.
func (c *Console) tenantRows(r *http.Request, p *request) ([]tenantRow, error) {
	ctx, cancel := c.ctx(r)
	defer cancel()
	var list adminapi.Tenants
	if err := p.api.Do(ctx, "GET", "/admin/v1/tenants", nil, &list); err != nil {
		return nil, err
	}
	rows := make([]tenantRow, 0, len(list.Tenants))
	for _, t := range list.Tenants {
		row := tenantRow{Tenant: t}
		var st adminapi.Status
		var runs adminapi.Runs
		if err := p.api.Do(ctx, "GET", tenantPath(t.ID, "status"), nil, &st); err != nil {
			row.Problem = errText(err)
		} else if err := p.api.Do(ctx, "GET", tenantPath(t.ID, "runs")+"?limit=100", nil, &runs); err != nil {
			row.Problem = errText(err)
		} else {
			row.OpenIssues = len(st.Issues)
			row.LastSucceeded = lastSucceeded(runs.Finished)
			for _, cur := range runs.Current {
				if cur.Kind == "import" {
					v := viewRun(cur, c.now())
					row.Import = &v
				}
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// lastSucceeded is the latest succeeded run of each kind, ordered by kind.
func lastSucceeded(finished []adminapi.Run) []adminapi.Run {
	byKind := map[string]adminapi.Run{}
	for _, r := range finished {
		if r.Status != adminapi.RunSucceeded {
			continue
		}
		if b, ok := byKind[r.Kind]; !ok || r.FinishedAt.After(b.FinishedAt) {
			byKind[r.Kind] = r
		}
	}
	out := make([]adminapi.Run, 0, len(byKind))
	for _, r := range byKind {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b adminapi.Run) int { return cmp.Compare(a.Kind, b.Kind) })
	return out
}

// formState is a form shown again after the API refused it: the values entered (secrets
// left out) and the error of each field.
type formState struct {
	Values map[string]string
	Errors map[string]string
}

// fieldError files an API error under its field when the form shows that field (shown reports
// whether it does), or returns it as the page's error.
func (f *formState) fieldError(err error, shown func(field string) bool) string {
	e := apiError(err)
	if e == nil {
		return "The admin API could not be asked: " + err.Error()
	}
	if e.Field == "" || !shown(e.Field) {
		if e.Field != "" {
			return e.Field + ": " + errText(err)
		}
		return errText(err)
	}
	if f.Errors == nil {
		f.Errors = map[string]string{}
	}
	f.Errors[e.Field] = e.Message
	return ""
}

func (c *Console) createTenant(w http.ResponseWriter, r *http.Request, p *request) {
	ctx, cancel := c.ctx(r)
	defer cancel()
	req := adminapi.CreateTenant{ID: strings.TrimSpace(r.PostFormValue("id")), DisplayName: strings.TrimSpace(r.PostFormValue("display_name"))}
	if err := p.api.Do(ctx, "POST", "/admin/v1/tenants", req, nil); err != nil {
		form := formState{Values: map[string]string{"id": req.ID, "display_name": req.DisplayName}}
		msg := form.fieldError(err, func(f string) bool { return f == "id" })
		if e := apiError(err); e != nil && e.Status == http.StatusConflict {
			form.Errors = map[string]string{"id": "a tenant with this ID exists"}
			msg = ""
		}
		rows, rowsErr := c.tenantRows(r, p)
		if rowsErr != nil {
			c.failed(w, r, p, rowsErr)
			return
		}
		c.showTenants(w, r, p, rows, form, msg)
		return
	}
	c.redirectWith(w, r, "/console/tenants/"+url.PathEscape(req.ID)+"/setup/credentials", "ok", "Tenant "+req.ID+" created. Now enter its credentials.")
}

// tenantPath is adminapi.TenantPath with the rest as path segments (each escaped already where
// it needs to be).
func tenantPath(tenant string, rest ...string) string {
	if len(rest) == 0 {
		return adminapi.TenantPath(tenant, "")
	}
	return adminapi.TenantPath(tenant, "/"+strings.Join(rest, "/"))
}

func consolePath(tenant string, rest ...string) string {
	return strings.Replace(tenantPath(tenant, rest...), "/admin/v1/", "/console/", 1)
}

// --- status ---

// runView is a run as the status page shows it, with its rate and time left while it runs.
type runView struct {
	adminapi.Run
	Percent int64
	// Rate is records a second since the run started; Left the time left at that rate.
	Rate float64
	Left time.Duration
}

func viewRun(r adminapi.Run, now time.Time) runView {
	v := runView{Run: r, Percent: percent(r.Done, r.Total)}
	if r.Status != adminapi.RunRunning {
		if r.Total == 0 && r.Done == 0 && r.Status == adminapi.RunSucceeded {
			v.Percent = 100 // nothing to do is all done
		}
		return v
	}
	if el := now.Sub(r.StartedAt).Seconds(); el > 0 && r.Done > 0 && !r.StartedAt.IsZero() {
		v.Rate = float64(r.Done) / el
		if r.Total > r.Done {
			v.Left = time.Duration(float64(r.Total-r.Done) / v.Rate * float64(time.Second))
		}
	}
	return v
}

// runNowKinds are the kinds the status page offers to run now, as the admin API accepts them.
var runNowKinds = []string{"import", "relation", "relation-scan", "tribe-scan", "product", "payment"}

type statusData struct {
	adminapi.Status
	Current  []runView
	Finished []runView
	// Upcoming are the next scheduled runs, soonest first.
	Upcoming []nextRun
	Chart    chart
	Kinds    []string
}

type nextRun struct {
	Kind string
	At   time.Time
	In   time.Duration
}

func (c *Console) loadStatus(r *http.Request, p *request, tenant string) (statusData, error) {
	ctx, cancel := c.ctx(r)
	defer cancel()
	var d statusData
	if err := p.api.Do(ctx, "GET", tenantPath(tenant, "status"), nil, &d.Status); err != nil {
		return d, err
	}
	now := c.now()
	for _, cur := range d.Runs.Current {
		d.Current = append(d.Current, viewRun(cur, now))
	}
	finished := slices.Clone(d.Runs.Finished)
	slices.SortFunc(finished, func(a, b adminapi.Run) int { return b.FinishedAt.Compare(a.FinishedAt) })
	for _, f := range finished[:min(len(finished), 15)] {
		d.Finished = append(d.Finished, viewRun(f, now))
	}
	for kind, at := range d.Status.NextRuns {
		d.Upcoming = append(d.Upcoming, nextRun{Kind: kind, At: at, In: at.Sub(now)})
	}
	slices.SortFunc(d.Upcoming, func(a, b nextRun) int { return a.At.Compare(b.At) })
	var all adminapi.Runs
	if err := p.api.Do(ctx, "GET", tenantPath(tenant, "runs")+"?limit=100", nil, &all); err != nil {
		return d, err
	}
	d.Chart = perDay(all.Finished, now, 14)
	d.Kinds = runNowKinds
	return d, nil
}

func (c *Console) statusPage(w http.ResponseWriter, r *http.Request, p *request) {
	tenant := r.PathValue("tenant")
	d, err := c.loadStatus(r, p, tenant)
	if err != nil {
		c.failed(w, r, p, err)
		return
	}
	c.render(w, r, http.StatusOK, "status", page{Title: cmp.Or(d.Tenant.DisplayName, d.Tenant.ID), CSRF: p.csrf, SignedIn: true, Data: d})
}

// progressAnswer is what the status page's script polls: the runs in progress.
type progressAnswer struct {
	Runs []progressRun `json:"runs"`
}

type progressRun struct {
	ID      string  `json:"id"`
	Kind    string  `json:"kind"`
	Done    int64   `json:"done"`
	Total   int64   `json:"total"`
	Percent int64   `json:"percent"`
	Rate    float64 `json:"rate"`
	Left    string  `json:"left"`
}

func (c *Console) progress(w http.ResponseWriter, r *http.Request, p *request) {
	ctx, cancel := c.ctx(r)
	defer cancel()
	// The runs alone, not the whole status: the page asks every 2 s.
	var runs adminapi.Runs
	if err := p.api.Do(ctx, "GET", tenantPath(r.PathValue("tenant"), "runs")+"?limit=1", nil, &runs); err != nil {
		code := http.StatusBadGateway
		if e := apiError(err); e != nil {
			code = e.Status
		}
		http.Error(w, "status unavailable", code)
		return
	}
	out := progressAnswer{Runs: []progressRun{}}
	for _, cur := range runs.Current {
		v := viewRun(cur, c.now())
		pr := progressRun{ID: v.ID, Kind: v.Kind, Done: v.Done, Total: v.Total, Percent: v.Percent, Rate: v.Rate}
		if v.Left > 0 {
			pr.Left = roundDuration(v.Left)
		}
		out.Runs = append(out.Runs, pr)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func (c *Console) issuePage(w http.ResponseWriter, r *http.Request, p *request) {
	tenant, key := r.PathValue("tenant"), r.URL.Query().Get("key")
	ctx, cancel := c.ctx(r)
	defer cancel()
	var st adminapi.Status
	if err := p.api.Do(ctx, "GET", tenantPath(tenant, "status"), nil, &st); err != nil {
		c.failed(w, r, p, err)
		return
	}
	for _, i := range st.Issues {
		if i.Key == key {
			c.render(w, r, http.StatusOK, "issue", page{Title: "Issue: " + i.Code, CSRF: p.csrf, SignedIn: true, Data: struct {
				Tenant adminapi.Tenant
				Issue  adminapi.Issue
			}{st.Tenant, i}})
			return
		}
	}
	c.redirectWith(w, r, consolePath(tenant), "ok", "That issue is resolved.")
}

func (c *Console) runNow(w http.ResponseWriter, r *http.Request, p *request) {
	tenant, kind := r.PathValue("tenant"), r.PathValue("kind")
	ctx, cancel := c.ctx(r)
	defer cancel()
	var started adminapi.RunStarted
	err := p.api.Do(ctx, "POST", tenantPath(tenant, "sync", url.PathEscape(kind)), nil, &started)
	switch e := apiError(err); {
	case err == nil:
		c.redirectWith(w, r, consolePath(tenant), "ok", fmt.Sprintf("A %s run started (%s).", kind, started.RunID))
	case e != nil && e.Code == "run_in_progress":
		c.redirectWith(w, r, consolePath(tenant), "error", fmt.Sprintf("Already running: %s. It was not started again; watch it below.", e.Message))
	default:
		c.redirectWith(w, r, consolePath(tenant), "error", fmt.Sprintf("The %s run was not started: %s", kind, errText(err)))
	}
}

func errText(err error) string {
	if e := apiError(err); e != nil {
		if e.Message != "" {
			return e.Message
		}
		return http.StatusText(e.Status)
	}
	return err.Error()
}

func (c *Console) setState(w http.ResponseWriter, r *http.Request, p *request) {
	tenant, state := r.PathValue("tenant"), r.PostFormValue("state")
	ctx, cancel := c.ctx(r)
	defer cancel()
	var changed adminapi.StateChanged
	if err := p.api.Do(ctx, "PUT", tenantPath(tenant, "state"), adminapi.SetState{State: state}, &changed); err != nil {
		if e := apiError(err); e != nil && e.Code == "unavailable" && state == adminapi.StateActive {
			// Resumed, but not every catch-up run could be started: say so, not "not changed".
			c.redirectWith(w, r, consolePath(tenant), "error", "Resumed, but not every catch-up run started: use Run now for the kinds that did not.")
			return
		}
		c.redirectWith(w, r, consolePath(tenant), "error", "The state was not changed: "+errText(err))
		return
	}
	msg := "The tenant is " + changed.State + "."
	if len(changed.CatchUpRuns) > 0 {
		msg += fmt.Sprintf(" %d catch-up runs started.", len(changed.CatchUpRuns))
	}
	c.redirectWith(w, r, consolePath(tenant), "ok", msg)
}

func (c *Console) pushInvoice(w http.ResponseWriter, r *http.Request, p *request) {
	tenant, id := r.PathValue("tenant"), strings.TrimSpace(r.PostFormValue("invoice_id"))
	ctx, cancel := c.ctx(r)
	defer cancel()
	var st adminapi.InvoiceState
	if err := p.api.Do(ctx, "POST", tenantPath(tenant, "invoices", url.PathEscape(id), "push"), nil, &st); err != nil {
		c.redirectWith(w, r, consolePath(tenant), "error", "The invoice was not pushed: "+errText(err))
		return
	}
	msg := "Invoice " + id + " was pushed again; its issues below clear once it is booked."
	if st.Booked {
		msg = fmt.Sprintf("Invoice %s is booked already (number %s); it was pushed again and stays booked once.", id, st.Number)
	}
	c.redirectWith(w, r, consolePath(tenant), "ok", msg)
}

// --- chart ---

// chart is the records synced per day, drawn as SVG bars (attributes, no inline style).
type chart struct {
	Bars          []bar
	Width, Height int
	Max           int64
	Total         int64
}

type bar struct {
	X, Y, W, H int
	Day        string
	Value      int64
}

// perDay sums the records each day's runs created or updated, over the last days days.
func perDay(runs []adminapi.Run, now time.Time, days int) chart {
	const barW, gap, height = 18, 4, 80
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, now.Location())
	values := make([]int64, days)
	for _, r := range runs {
		if r.FinishedAt.IsZero() {
			continue
		}
		f := r.FinishedAt.In(now.Location())
		day := time.Date(f.Year(), f.Month(), f.Day(), 0, 0, 0, 0, now.Location())
		i := days - 1 - int(today.Sub(day).Hours()/24+0.5)
		if i >= 0 && i < days {
			values[i] += r.Counts.Created + r.Counts.Updated
		}
	}
	ch := chart{Width: days * (barW + gap), Height: height}
	for _, v := range values {
		ch.Max = max(ch.Max, v)
		ch.Total += v
	}
	for i, v := range values {
		h := 0
		if ch.Max > 0 {
			h = int(v * (height - 1) / ch.Max)
		}
		if v > 0 && h == 0 {
			h = 1
		}
		ch.Bars = append(ch.Bars, bar{X: i * (barW + gap), Y: height - h, W: barW, H: h, Day: today.AddDate(0, 0, i-days+1).Format("Mon 2 Jan"), Value: v})
	}
	return ch
}
