package tribesim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

type tokenInfo struct {
	env     string
	scopes  []string
	expires time.Time
	issued  time.Time
}

func writeOAuthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

// serveToken is the auth host's token endpoint (ORY Hydra in production): client credentials and
// refresh tokens, client authentication by HTTP Basic or form fields.
func (s *Simulator) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "use POST")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "the request body is not form-encoded")
		return
	}
	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var e *env
	for _, cand := range s.envs {
		if cand.ClientID == id {
			e = cand
		}
	}
	if e == nil || secret != e.ClientSecret || id == "" {
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed (e.g., unknown client, no client authentication included, or unsupported authentication method).")
		return
	}
	var scopes []string
	switch r.PostForm.Get("grant_type") {
	case "client_credentials":
		scopes = strings.Fields(r.PostForm.Get("scope"))
		for _, sc := range scopes {
			if !slices.Contains(e.Scopes, sc) {
				// Hydra answers invalid_grant for a scope the client may not request (C2 dc37ff9).
				writeOAuthError(w, http.StatusBadRequest, "invalid_grant", fmt.Sprintf("The client is not allowed to request scope '%s'.", sc))
				return
			}
		}
		if len(scopes) == 0 {
			scopes = e.Scopes
		}
	case "refresh_token":
		ti := s.refresh[r.PostForm.Get("refresh_token")]
		if ti == nil || ti.env != e.ID {
			writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "The refresh token is malformed, expired or revoked.")
			return
		}
		delete(s.refresh, r.PostForm.Get("refresh_token"))
		scopes = ti.scopes
	case "":
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "The request is missing grant_type.")
		return
	default:
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", "The authorization grant type is not supported by the authorization server.")
		return
	}
	now := s.opts.Now()
	tok := "sim_at_" + s.randHex(20)
	ti := &tokenInfo{env: e.ID, scopes: scopes, expires: now.Add(s.opts.TokenLifetime), issued: now}
	s.tokens[tok] = ti
	resp := map[string]any{"access_token": tok, "token_type": "bearer", "expires_in": int(s.opts.TokenLifetime / time.Second), "scope": strings.Join(scopes, " ")}
	if slices.Contains(scopes, "offline") {
		rt := "sim_rt_" + s.randHex(20)
		s.refresh[rt] = ti
		resp["refresh_token"] = rt
	}
	for k, old := range s.tokens {
		if now.After(old.expires) {
			delete(s.tokens, k)
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, resp)
}

// authLocked finds the environment of the request's token.
func (s *Simulator) authLocked(r *http.Request) (*env, *tokenInfo, error) {
	tok := ""
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		tok = strings.TrimSpace(h[7:])
	} else if s.opts.AcceptQueryToken {
		tok = r.URL.Query().Get("access_token")
	}
	if tok == "" {
		return nil, nil, errf(http.StatusUnauthorized, "Unauthorized", "no access token")
	}
	ti := s.tokens[tok]
	if ti == nil {
		return nil, nil, errf(http.StatusUnauthorized, "Unauthorized", "the access token is invalid")
	}
	e := s.envs[ti.env]
	if e == nil || s.opts.Now().After(ti.expires) || ti.issued.Before(e.tokensFrom) {
		return nil, nil, errf(http.StatusUnauthorized, "Unauthorized", "the access token has expired")
	}
	return e, ti, nil
}

// Request is one logged API call, for tests and the admin API.
type Request struct {
	Time   time.Time `json:"time"`
	Method string    `json:"method"`
	Path   string    `json:"path"`
	Query  string    `json:"query"`
	Status int       `json:"status"`
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

const maxRequestLog = 2000

func (s *Simulator) serveAPI(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w}
	s.mu.Lock()
	e, ti, err := s.authLocked(r)
	if err == nil {
		err = s.injectLocked(e, sw)
	}
	if err == nil {
		err = s.routeLocked(sw, r, e, ti)
	}
	if err != nil {
		writeErr(sw, err)
	}
	if e != nil {
		e.requests = append(e.requests, Request{Time: s.opts.Now(), Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Status: sw.status})
		if len(e.requests) > maxRequestLog {
			e.requests = slices.Delete(e.requests, 0, len(e.requests)-maxRequestLog)
		}
	}
	s.mu.Unlock()
}

// injectLocked applies the environment's API faults: the next-N counters first, then the rates.
func (s *Simulator) injectLocked(e *env, w http.ResponseWriter) error {
	f := &e.faults
	ra := f.RetryAfterSeconds
	if ra <= 0 {
		ra = 1
	}
	st := f.ErrorStatus
	if st == 0 {
		st = http.StatusServiceUnavailable
	}
	switch {
	case f.Next429 > 0:
		f.Next429--
	case f.Next5xx > 0:
		f.Next5xx--
		return errf(st, "ServiceUnavailable", "injected server error")
	case f.RateLimitRate > 0 && s.rng.Float64() < f.RateLimitRate:
	case f.ErrorRate > 0 && s.rng.Float64() < f.ErrorRate:
		return errf(st, "ServiceUnavailable", "injected server error")
	default:
		return nil
	}
	if f.RetryAfterSeconds >= 0 {
		w.Header().Set("Retry-After", strconv.Itoa(ra))
	}
	return errf(http.StatusTooManyRequests, "TooManyRequests", "rate limit exceeded")
}

func needScope(ti *tokenInfo, method string) error {
	want := "read"
	if method != http.MethodGet && method != http.MethodHead {
		want = "write"
	}
	if !slices.Contains(ti.scopes, want) {
		return errf(http.StatusForbidden, "Forbidden", "the token lacks the %s scope", want)
	}
	return nil
}

const maxBody = 4 << 20

func decodeBody(r *http.Request) (map[string]any, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, badReq("read body: %v", err)
	}
	if len(b) > maxBody {
		return nil, errf(http.StatusRequestEntityTooLarge, "PayloadTooLarge", "request body too large")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, badReq("the body must be a JSON object")
	}
	if dec.More() {
		return nil, badReq("trailing data after the JSON object")
	}
	return m, nil
}

func (s *Simulator) routeLocked(w http.ResponseWriter, r *http.Request, e *env, ti *tokenInfo) error {
	if err := needScope(ti, r.Method); err != nil {
		return err
	}
	p := r.URL.Path
	if p == "/v1/webhooks" || strings.HasPrefix(p, "/v1/webhooks/") {
		return s.serveWebhooksLocked(w, r, e, strings.TrimPrefix(strings.TrimPrefix(p, "/v1/webhooks"), "/"))
	}
	rest, ok := strings.CutPrefix(p, "/v1/odata/")
	if !ok {
		return errf(http.StatusNotFound, "NotFound", "no such path")
	}
	q, err := parseRawQuery(r.URL.RawQuery, s.opts.PlusAsSpace)
	if err != nil {
		return badReq("%v", err)
	}
	if rest == "$metadata" {
		return s.serveMetadata(w)
	}
	if rest == "GetCurrentEmployee()" {
		if r.Method != http.MethodGet {
			return errf(http.StatusMethodNotAllowed, "MethodNotAllowed", "GetCurrentEmployee() is a function")
		}
		return s.serveOne(w, e, SetEmployee, e.recs[e.employee], q)
	}
	set, id := rest, ""
	if i := strings.IndexByte(rest, '('); i >= 0 && strings.HasSuffix(rest, ")") {
		set, id = rest[:i], strings.Trim(rest[i+1:len(rest)-1], "'")
		if !reGUID.MatchString(id) || len(id) != 36 {
			return badReq("the key %q is not a GUID", id)
		}
		id = strings.ToLower(id)
	}
	t := s.schema.get(set)
	if t == nil {
		return errf(http.StatusNotFound, "EntityTypeNotFound", "entity type not found: %s", set)
	}
	if err := s.gate(e, set); err != nil {
		return err
	}
	if set == SetWebhook {
		s.syncWebhookRecords(e)
	}
	var rec *record
	if id != "" {
		if rec = e.recs[id]; rec == nil || !below(rec.set, set) {
			return errf(http.StatusNotFound, "NotFound", "no %s with ID %s", set, id)
		}
	}
	switch {
	case r.Method == http.MethodGet && rec != nil:
		return s.serveOne(w, e, set, rec, q)
	case r.Method == http.MethodGet:
		return s.serveList(w, r, e, t, q)
	case r.Method == http.MethodPost && rec == nil:
		body, err := decodeBody(r)
		if err != nil {
			return err
		}
		status, mode := s.opts.CreateStatus, modeCreate
		if idv, has := body["ID"]; has {
			// POST with an ID updates that record (reference 1.3).
			ids, _ := idv.(string)
			if rec = e.recs[strings.ToLower(ids)]; rec == nil || !below(rec.set, set) {
				return errf(http.StatusNotFound, "NotFound", "no %s with ID %v", set, idv)
			}
			t, status, mode = s.schema.get(rec.set), http.StatusOK, modeMerge
		}
		out, err := s.writeLocked(e, t, rec, body, mode)
		if err != nil {
			return err
		}
		if mode != modeCreate && s.opts.UpdateNoContent {
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
		if mode == modeCreate && !s.opts.PlainCreateAnswer {
			return s.writeEntityAs(w, status, e, out, s.deepInsertExpand(s.schema.get(out.set), body))
		}
		return s.writeEntity(w, status, e, out)
	case (r.Method == http.MethodPut || r.Method == http.MethodPatch) && rec != nil:
		body, err := decodeBody(r)
		if err != nil {
			return err
		}
		if idv, has := body["ID"]; has && !strings.EqualFold(str(idv), rec.id) {
			return badReq("the ID in the body differs from the key")
		}
		mode := modeMerge
		if r.Method == http.MethodPut && s.opts.PutReplaces {
			mode = modeReplace
		}
		out, err := s.writeLocked(e, s.schema.get(rec.set), rec, body, mode)
		if err != nil {
			return err
		}
		if s.opts.UpdateNoContent {
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
		return s.writeEntity(w, http.StatusOK, e, out)
	case r.Method == http.MethodDelete && rec != nil:
		if err := s.deleteAPI(e, s.schema.get(rec.set), rec); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return errf(http.StatusMethodNotAllowed, "MethodNotAllowed", "%s is not allowed here", r.Method)
}

func (s *Simulator) writeEntity(w http.ResponseWriter, status int, e *env, rec *record) error {
	return s.writeEntityAs(w, status, e, rec, nil)
}

// writeEntityAs answers with rec rendered with the query options o (nil: no expansion).
func (s *Simulator) writeEntityAs(w http.ResponseWriter, status int, e *env, rec *record, o *queryOpts) error {
	out := s.render(e, rec, o, false)
	out["@odata.context"] = "$metadata#OData." + rec.set + "/$entity"
	writeJSON(w, status, out)
	return nil
}

func (s *Simulator) serveOne(w http.ResponseWriter, e *env, set string, rec *record, q map[string]string) error {
	o, err := parseQueryOpts(q, s.schema, s.schema.get(rec.set))
	if err != nil {
		return badReq("%v", err)
	}
	out := s.render(e, rec, o, false)
	out["@odata.context"] = "$metadata#OData." + set + "/$entity"
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Simulator) serveList(w http.ResponseWriter, r *http.Request, e *env, t *entityType, q map[string]string) error {
	o, err := parseQueryOpts(q, s.schema, t)
	if err != nil {
		return badReq("%v", err)
	}
	recs, err := s.selectLocked(e, s.listSet(e, t.Set), o)
	if err != nil {
		return err
	}
	if max := s.opts.MaxTop; max > 0 && o.top > max {
		if s.opts.MaxTopRefuses {
			return badReq("$top %d exceeds the maximum page size of %d", o.top, max)
		}
		o.top = max
	}
	total := len(recs)
	window := recs[min(o.skip, len(recs)):]
	if o.top >= 0 && o.top < len(window) {
		window = window[:o.top]
	}
	window = window[min(o.skipTok, len(window)):]
	out := map[string]any{"@odata.context": "$metadata#OData." + t.Set}
	if n := s.opts.ServerPageSize; n > 0 && len(window) > n {
		window = window[:n]
		out["@odata.nextLink"] = nextLink(r, o.skipTok+n)
	}
	vals := make([]any, 0, len(window))
	for _, rec := range window {
		vals = append(vals, s.render(e, rec, o, false))
	}
	out["value"] = vals
	if o.count {
		out["@odata.count"] = total
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// deepInsertExpand expands an answer to the navigations a create body filled in (deep insert), to
// the depth they were given, as OData 4.0 asks of a 201 answer.
func (s *Simulator) deepInsertExpand(t *entityType, body map[string]any) *queryOpts {
	o := &queryOpts{top: -1, expand: map[string]*queryOpts{}}
	for k, v := range body {
		obj, ok := v.(map[string]any)
		nav, isNav := t.Navs[k]
		if !ok || !isNav {
			continue
		}
		if _, link := obj["ID"]; link {
			o.expand[k] = &queryOpts{top: -1, sel: []string{"ID"}}
		} else if child := s.schema.get(nav.Target); child != nil {
			o.expand[k] = s.deepInsertExpand(child, obj)
		} else {
			continue
		}
		o.expOrd = append(o.expOrd, k)
	}
	return o
}

// nextLink is the absolute URL of the next server page: the same query plus $skiptoken.
func nextLink(r *http.Request, pos int) string {
	scheme := "http"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		scheme = "https"
	}
	var parts []string
	for _, p := range strings.Split(r.URL.RawQuery, "&") {
		if p != "" && !strings.HasPrefix(p, "$skiptoken=") && !strings.HasPrefix(p, "%24skiptoken=") {
			parts = append(parts, p)
		}
	}
	parts = append(parts, "$skiptoken="+strconv.Itoa(pos))
	// RequestURI keeps any prefix http.StripPrefix removed from URL.Path, so the link works
	// where the simulator is mounted below a path.
	path, _, _ := strings.Cut(r.RequestURI, "?")
	if path == "" {
		path = r.URL.EscapedPath()
	}
	return fmt.Sprintf("%s://%s%s?%s", scheme, r.Host, path, strings.Join(parts, "&"))
}

func (s *Simulator) serveMetadata(w http.ResponseWriter) error {
	sets := map[string]any{}
	for name, t := range s.schema.types {
		fields := map[string]string{}
		for f, k := range t.Fields {
			fields[f] = map[byte]string{kString: "Edm.String", kNumber: "Edm.Double", kInt: "Edm.Int64", kBool: "Edm.Boolean", kTime: "Edm.DateTimeOffset"}[k]
		}
		navs := map[string]string{}
		for n, d := range t.Navs {
			navs[n] = d.Target
		}
		for n, d := range t.Colls {
			navs[n] = "Collection(" + d.Set + ")"
		}
		sets[name] = map[string]any{"type": t.Type, "properties": fields, "navigation": navs, "abstract": t.Abstract}
	}
	writeJSON(w, http.StatusOK, map[string]any{"$Version": "4.0", "OData": sets})
	return nil
}
