// Package console is koppel's web console under /console: sign-in with an admin token, the
// tenants, the activation wizard, a tenant's status with live progress, and the dead letters.
//
// The console holds no logic of its own about tenants: every page calls the admin API
// (pkg/adminapi) in process, with the signed-in operator's token, so each step is checked by the
// same code as the API, its errors name the same fields, and the API's audit log records what
// the console did. Pages are html/template with embedded assets; the one script polls progress.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/koppel/koppel/pkg/adminapi"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// contentSecurityPolicy allows the console's own script, styles and images only: no inline
// script or style, no other origin, no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Options configure a Console.
type Options struct {
	// API serves the admin API (/admin/v1/...); the console calls it in process.
	API http.Handler
	// SessionKey seals the session cookies (32 bytes); replicas that share it share sessions.
	SessionKey []byte
	// SignOuts remembers signed-out sessions for every replica.
	SignOuts SignOuts
	Log      *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Console serves the web console.
type Console struct {
	api    http.Handler
	seal   *sealer
	out    SignOuts
	log    *slog.Logger
	now    func() time.Time
	pages  map[string]*template.Template
	limit  *signInLimiter
	static http.Handler
}

// New makes a Console.
func New(opts Options) (*Console, error) {
	s, err := newSealer(opts.SessionKey)
	if err != nil {
		return nil, err
	}
	if opts.API == nil || opts.SignOuts == nil {
		return nil, errors.New("console: API and SignOuts are required")
	}
	c := &Console{api: opts.API, seal: s, out: opts.SignOuts, log: opts.Log, now: opts.Now, limit: newSignInLimiter(5, time.Minute)}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.pages, err = parsePages(); err != nil {
		return nil, err
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	files := http.FileServerFS(sub)
	c.static = http.StripPrefix("/console/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // files only, no listings
			return
		}
		files.ServeHTTP(w, r)
	}))
	return c, nil
}

// Routes registers the console's pages on mux.
func (c *Console) Routes(mux *http.ServeMux) {
	mux.Handle("GET /console/static/", c.headers(c.static))
	mux.Handle("GET /console/{$}", c.headers(http.RedirectHandler("/console/tenants", http.StatusSeeOther)))
	mux.Handle("GET /console", c.headers(http.RedirectHandler("/console/tenants", http.StatusSeeOther)))
	mux.Handle("GET /console/signin", c.headers(http.HandlerFunc(c.signInPage)))
	mux.Handle("POST /console/signin", c.headers(http.HandlerFunc(c.signIn)))

	page := func(pattern string, h func(w http.ResponseWriter, r *http.Request, p *request)) {
		mux.Handle(pattern, c.headers(c.signedIn(h)))
	}
	page("POST /console/signout", c.signOut)
	page("GET /console/tenants", c.tenantsPage)
	page("POST /console/tenants", c.createTenant)
	page("GET /console/tenants/{tenant}", c.statusPage)
	page("GET /console/tenants/{tenant}/progress", c.progress)
	page("GET /console/tenants/{tenant}/issue", c.issuePage)
	page("POST /console/tenants/{tenant}/sync/{kind}", c.runNow)
	page("POST /console/tenants/{tenant}/state", c.setState)
	page("POST /console/tenants/{tenant}/invoice", c.pushInvoice)
	page("GET /console/tenants/{tenant}/setup/credentials", c.credentialsPage)
	page("POST /console/tenants/{tenant}/setup/credentials", c.saveCredentials)
	page("GET /console/tenants/{tenant}/setup/configuration", c.configurationPage)
	page("GET /console/tenants/{tenant}/setup/links", c.linksPage)
	page("POST /console/tenants/{tenant}/setup/links", c.saveLinks)
	page("GET /console/tenants/{tenant}/setup/review", c.reviewPage)
	page("POST /console/tenants/{tenant}/setup/activate", c.activate)
	page("GET /console/deadletters", c.deadLettersPage)
	page("GET /console/deadletters/{seq}", c.deadLetterPage)
	page("GET /console/deadletters/{seq}/{action}", c.confirmDeadLetterPage)
	page("POST /console/deadletters/{seq}/{action}", c.settleDeadLetter)
}

// headers sets what every console answer carries.
func (c *Console) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		// same-origin, not no-referrer: with no-referrer a browser sends "Origin: null" on form posts.
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		if !strings.HasPrefix(r.URL.Path, "/console/static/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// request is what a signed-in page knows: the session, its API client, and its CSRF token.
type request struct {
	sess session
	api  *adminapi.Client
	csrf string
}

// signedIn lets a request through with a valid session; a page without one goes to sign-in, a
// form post must carry the session's CSRF token (and, when the browser says, come from here).
func (c *Console) signedIn(h func(w http.ResponseWriter, r *http.Request, p *request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie(sessionCookie)
		var sess session
		ok := err == nil
		if ok {
			sess, ok = c.seal.open(ck.Value, c.now())
		}
		if ok {
			ended, err := c.out.Ended(r.Context(), sess.id)
			if err != nil {
				c.log.ErrorContext(r.Context(), "console: read the signed-out sessions", "error", err)
				http.Error(w, "the console cannot check sessions right now (NATS); try again", http.StatusServiceUnavailable)
				return
			}
			ok = !ended
		}
		if !ok {
			if strings.HasSuffix(r.URL.Path, "/progress") {
				// The status page's script: it goes to the sign-in page itself.
				http.Error(w, "signed out: sign in again", http.StatusUnauthorized)
				return
			}
			next := r.URL.RequestURI()
			if r.Method != http.MethodGet {
				next = "/console/tenants" // a form of an ended session is not sent again
			}
			http.Redirect(w, r, "/console/signin?next="+url.QueryEscape(next), http.StatusSeeOther)
			return
		}
		p := &request{sess: sess, csrf: c.seal.csrf(sess.id), api: c.client(sess.token)}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if !sameOrigin(r) || !c.seal.checkCSRF(sess.id, r.PostFormValue("csrf")) {
				http.Error(w, "this form is stale or came from elsewhere: reload the page and try again", http.StatusForbidden)
				return
			}
		}
		h(w, r, p)
	})
}

// sameOrigin refuses a post whose Origin header names another site (SameSite=Strict cookies and
// the CSRF token already stop it; this is the belt to those braces).
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

// client calls the admin API in process with token.
func (c *Console) client(token string) *adminapi.Client {
	return &adminapi.Client{Base: "http://admin.internal", Token: token, HTTP: http.Client{Transport: handlerTransport{c.api}}}
}

// handlerTransport sends a request to an http.Handler in the same process.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body == nil {
		req.Body = http.NoBody
	}
	defer req.Body.Close()
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	return rec.Result(), nil
}

// apiError is the admin API's error answer of err, or nil when err is something else.
func apiError(err error) *adminapi.Error {
	var e *adminapi.Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// flash is a one-time message shown on the next page.
type flash struct {
	Kind string // "ok" or "error"
	Text string
}

func (c *Console) setFlash(w http.ResponseWriter, r *http.Request, kind, text string) {
	setCookie(w, r, flashCookie, kind+":"+url.QueryEscape(text), time.Minute)
}

func (c *Console) takeFlash(w http.ResponseWriter, r *http.Request) *flash {
	ck, err := r.Cookie(flashCookie)
	if err != nil {
		return nil
	}
	clearCookie(w, r, flashCookie)
	kind, text, _ := strings.Cut(ck.Value, ":")
	text, err = url.QueryUnescape(text)
	if err != nil || text == "" || (kind != "ok" && kind != "error") {
		return nil
	}
	return &flash{Kind: kind, Text: text}
}

// redirectWith sends the browser to path after a form, with a message for the next page.
func (c *Console) redirectWith(w http.ResponseWriter, r *http.Request, path, kind, text string) {
	if text != "" {
		c.setFlash(w, r, kind, text)
	}
	http.Redirect(w, r, path, http.StatusSeeOther)
}

// formRefused is the status of a form shown again with its errors: 200, as a page the
// operator reads, not a failed load (a browser logs a 4xx page as an error in its console).
const formRefused = http.StatusOK

// page is what every page template gets.
type page struct {
	Title    string
	CSRF     string
	SignedIn bool
	Flash    *flash
	// Error is a message for the whole page (an error that names no field).
	Error string
	Data  any
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	t, ok := c.pages[name]
	if !ok {
		http.Error(w, "no page "+name, http.StatusInternalServerError)
		return
	}
	if p.Flash == nil {
		p.Flash = c.takeFlash(w, r)
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "layout", p); err != nil {
		c.log.ErrorContext(r.Context(), "console page", "page", name, "error", err)
		http.Error(w, "the page could not be shown", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// failed shows a page for an API error that stops the page itself (the tenant does not exist,
// the API is unreachable).
func (c *Console) failed(w http.ResponseWriter, r *http.Request, p *request, err error) {
	status, msg := http.StatusBadGateway, "the admin API could not be asked: "+err.Error()
	if e := apiError(err); e != nil {
		status, msg = e.Status, errText(err)
	}
	if status == http.StatusUnauthorized {
		// The token was taken out of KOPPEL_ADMIN_TOKEN_HASHES since sign-in.
		clearCookie(w, r, sessionCookie)
		msg = "your admin token is no longer accepted: sign in again"
	}
	c.render(w, r, status, "error", page{Title: "Something went wrong", CSRF: p.csrf, SignedIn: true, Error: msg})
}

func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"fieldID":  fieldID,
		"percent":  percent,
		"ago":      func(t time.Time) string { return ago(t, time.Now()) },
		"when":     when,
		"duration": func(d time.Duration) string { return roundDuration(d) },
		"add":      func(a, b int) int { return a + b },
		"pathEsc":  url.PathEscape,
		"dict":     dict,
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", base, err)
		}
		pages[base] = t
	}
	return pages, nil
}

// fieldID is the HTML id of the control for an API field ("eboekhouden.base_url" ->
// "f-eboekhouden-base_url"); its error is "err-" and the same.
func fieldID(field string) string {
	return "f-" + strings.NewReplacer(".", "-", ":", "-", " ", "-").Replace(field)
}

func percent(done, total int64) int64 {
	if total <= 0 {
		return 0
	}
	p := done * 100 / total
	return min(p, 100)
}

func when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func ago(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return roundDuration(now.Sub(t)) + " ago"
}

func roundDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "now"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm %ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	}
}

// ctx bounds a page's API calls.
func (c *Console) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 45*time.Second)
}

// dict makes a map of its key, value arguments, for passing several values to a template.
func dict(kv ...any) (map[string]any, error) {
	if len(kv)%2 != 0 {
		return nil, errors.New("dict: want key, value pairs")
	}
	m := make(map[string]any, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			return nil, errors.New("dict: keys are strings")
		}
		m[k] = kv[i+1]
	}
	return m, nil
}
