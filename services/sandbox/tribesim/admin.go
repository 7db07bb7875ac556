package tribesim

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"
)

// adminRoutes returns the mux of the admin API, under /_sim/ (JSON in and out; errors as
// {"error":{"code","message"}}):
//
//	GET    /_sim/environments                               list environments
//	POST   /_sim/environments                               create one (EnvironmentSpec) → EnvironmentInfo
//	GET    /_sim/environments/{env}                         EnvironmentInfo with record counts
//	DELETE /_sim/environments/{env}                         remove it
//	POST   /_sim/environments/{env}/reset                   back to the seeded state (regenerated if it was)
//	POST   /_sim/environments/{env}/generate                add generated data (GenerateSpec)
//	GET    /_sim/environments/{env}/entities/{set}          every record of a set, navigations as {"ID"}
//	POST   /_sim/environments/{env}/entities/{set}          create as a Tribe user would (fires webhooks)
//	PATCH  /_sim/environments/{env}/entities/{set}/{id}     update as a Tribe user (fires webhooks)
//	POST   /_sim/environments/{env}/invoices/{id}/phase     {"code":"Sent"}: move an invoice to a phase
//	GET    /_sim/environments/{env}/faults                  the current Faults
//	PUT    /_sim/environments/{env}/faults                  replace the Faults
//	POST   /_sim/environments/{env}/tokens/expire           expire every token issued so far
//	GET    /_sim/environments/{env}/webhooks                registrations, with their secrets
//	GET    /_sim/environments/{env}/deliveries              the webhook delivery log
//	GET    /_sim/environments/{env}/requests                the API request log
//
// Actions without an answer of their own answer 204. Any other path, or one of these with another
// method, answers 404. serveAdmin checks the admin token before any of it.
func (s *Simulator) adminRoutes() *http.ServeMux {
	mux := http.NewServeMux()
	h := mux.HandleFunc
	h("GET /_sim/environments", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.environments())
	})
	h("POST /_sim/environments", s.admCreate)
	h("GET /_sim/environments/{env}", func(w http.ResponseWriter, r *http.Request) {
		info, err := s.Environment(r.PathValue("env"))
		admReply(w, info, err)
	})
	h("DELETE /_sim/environments/{env}", func(w http.ResponseWriter, r *http.Request) {
		admDone(w, s.DeleteEnvironment(r.PathValue("env")))
	})
	h("POST /_sim/environments/{env}/reset", func(w http.ResponseWriter, r *http.Request) {
		admDone(w, s.Reset(r.PathValue("env")))
	})
	h("POST /_sim/environments/{env}/generate", func(w http.ResponseWriter, r *http.Request) {
		var g GenerateSpec
		err := decodeAdmin(r, &g)
		if err == nil {
			err = s.Generate(r.PathValue("env"), g)
		}
		admDone(w, err)
	})
	h("GET /_sim/environments/{env}/entities/{set}", func(w http.ResponseWriter, r *http.Request) {
		out, err := s.Entities(r.PathValue("env"), r.PathValue("set"))
		admReply(w, map[string]any{"value": out}, err)
	})
	h("POST /_sim/environments/{env}/entities/{set}", s.admUserWrite)
	h("PATCH /_sim/environments/{env}/entities/{set}/{id}", s.admUserWrite)
	h("POST /_sim/environments/{env}/invoices/{id}/phase", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Code string `json:"code"`
		}
		err := decodeAdmin(r, &in)
		if err == nil {
			err = s.MoveInvoiceToPhase(r.PathValue("env"), r.PathValue("id"), in.Code)
		}
		admDone(w, err)
	})
	h("GET /_sim/environments/{env}/faults", func(w http.ResponseWriter, r *http.Request) {
		f, err := s.faults(r.PathValue("env"))
		admReply(w, f, err)
	})
	h("PUT /_sim/environments/{env}/faults", func(w http.ResponseWriter, r *http.Request) {
		var f Faults
		err := decodeAdmin(r, &f)
		if err == nil {
			err = s.SetFaults(r.PathValue("env"), f)
		}
		admDone(w, err)
	})
	h("POST /_sim/environments/{env}/tokens/expire", func(w http.ResponseWriter, r *http.Request) {
		admDone(w, s.ExpireTokens(r.PathValue("env")))
	})
	h("GET /_sim/environments/{env}/webhooks", func(w http.ResponseWriter, r *http.Request) {
		regs, err := s.webhookRegs(r.PathValue("env"))
		admReply(w, regs, err)
	})
	h("GET /_sim/environments/{env}/deliveries", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Deliveries(r.PathValue("env")))
	})
	h("GET /_sim/environments/{env}/requests", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Requests(r.PathValue("env")))
	})
	// Matching every method, the catch-all also keeps the mux from answering 405 (in plain text)
	// for a known path with another method.
	h("/", func(w http.ResponseWriter, r *http.Request) {
		writeODataError(w, http.StatusNotFound, "NotFound", "no such admin path")
	})
	return mux
}

// serveAdmin serves /_sim and everything under it.
func (s *Simulator) serveAdmin(w http.ResponseWriter, r *http.Request) {
	if s.opts.AdminToken != "" {
		h := r.Header.Get("Authorization")
		if subtle.ConstantTimeCompare([]byte(h), []byte("Bearer "+s.opts.AdminToken)) != 1 {
			writeODataError(w, http.StatusUnauthorized, "Unauthorized", "admin token required")
			return
		}
	}
	s.admin.ServeHTTP(w, r)
}

// admReply answers v as JSON with 200, or err.
func admReply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// admDone answers 204, or err.
func admDone(w http.ResponseWriter, err error) {
	if err != nil {
		writeErr(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Simulator) admCreate(w http.ResponseWriter, r *http.Request) {
	var spec EnvironmentSpec
	if err := decodeAdmin(r, &spec); err != nil {
		writeErr(w, err)
		return
	}
	info, err := s.CreateEnvironment(spec)
	if err != nil {
		writeErr(w, errf(http.StatusConflict, "Conflict", "%v", err))
		return
	}
	writeJSON(w, http.StatusCreated, info)
}

// admUserWrite creates a record, or updates the one {id} names.
func (s *Simulator) admUserWrite(w http.ResponseWriter, r *http.Request) {
	body, err := decodeBody(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	out, err := s.UserWrite(r.PathValue("env"), r.PathValue("set"), r.PathValue("id"), body)
	admReply(w, out, err)
}

func (s *Simulator) environments() []EnvironmentInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []EnvironmentInfo{}
	for _, id := range s.envOrd {
		out = append(out, s.infoLocked(s.envs[id]))
	}
	return out
}

func (s *Simulator) faults(envID string) (Faults, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.envLocked(envID)
	if err != nil {
		return Faults{}, err
	}
	return e.faults, nil
}

// webhookRegs returns the webhook registrations of an environment, with their secrets.
func (s *Simulator) webhookRegs(envID string) ([]webhookReg, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.envLocked(envID)
	if err != nil {
		return nil, err
	}
	out := []webhookReg{}
	for _, id := range e.webhookOrd {
		out = append(out, *e.webhooks[id])
	}
	return out, nil
}

func decodeAdmin(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badReq("bad admin request: %v", err)
	}
	return nil
}

func (s *Simulator) envLocked(id string) (*env, error) {
	e := s.envs[id]
	if e == nil {
		return nil, errf(http.StatusNotFound, "NotFound", "no environment %q", id)
	}
	return e, nil
}

// Environment describes one environment.
func (s *Simulator) Environment(envID string) (EnvironmentInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.envLocked(envID)
	if err != nil {
		return EnvironmentInfo{}, err
	}
	return s.infoLocked(e), nil
}

// DeleteEnvironment removes an environment, its tokens and its queued webhooks' future attempts.
func (s *Simulator) DeleteEnvironment(envID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.envLocked(envID); err != nil {
		return err
	}
	delete(s.envs, envID)
	s.envOrd = removeString(s.envOrd, envID)
	for k, t := range s.tokens {
		if t.env == envID {
			delete(s.tokens, k)
		}
	}
	return nil
}

func removeString(xs []string, x string) []string {
	out := xs[:0]
	for _, v := range xs {
		if v != x {
			out = append(out, v)
		}
	}
	return out
}

// Reset returns an environment to its seeded (and generated) state. Webhook registrations,
// faults and logs are cleared too.
func (s *Simulator) Reset(envID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.envLocked(envID)
	if err != nil {
		return err
	}
	e.webhooks, e.webhookOrd, e.faults, e.deliveries, e.requests = map[string]*webhookReg{}, nil, Faults{}, nil, nil
	return s.resetLocked(e)
}

// ExpireTokens makes every token issued so far for the environment invalid (answers 401), to test
// re-authentication without waiting.
func (s *Simulator) ExpireTokens(envID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.envLocked(envID)
	if err != nil {
		return err
	}
	e.tokensFrom = s.opts.Now().Add(1)
	for k, t := range s.tokens {
		if t.env == envID {
			delete(s.tokens, k)
		}
	}
	return nil
}

// Generate adds generated data to an environment.
func (s *Simulator) Generate(envID string, g GenerateSpec) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.envLocked(envID)
	if err != nil {
		return err
	}
	return s.generateLocked(e, g)
}

// Entities returns every record of a set (base sets included) in wire form, with single
// navigations as {"ID": …}.
func (s *Simulator) Entities(envID, set string) ([]map[string]any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.envLocked(envID)
	if err != nil {
		return nil, err
	}
	if s.schema.get(set) == nil {
		return nil, errf(http.StatusNotFound, "NotFound", "no entity set %q", set)
	}
	if set == SetWebhook {
		s.syncWebhookRecords(e)
	}
	out := []map[string]any{}
	for _, r := range s.listSet(e, set) {
		out = append(out, s.dumpLocked(e, r))
	}
	return out, nil
}

// Entity returns one record in the form Entities uses.
func (s *Simulator) Entity(envID, id string) (map[string]any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.envs[envID]
	if e == nil || e.recs[strings.ToLower(id)] == nil {
		return nil, false
	}
	return s.dumpLocked(e, e.recs[strings.ToLower(id)]), true
}

func (s *Simulator) dumpLocked(e *env, r *record) map[string]any {
	out := s.render(e, r, nil, false)
	for nav, id := range r.refs {
		out[nav] = map[string]any{"ID": id}
	}
	return out
}

// UserWrite creates (id empty) or updates a record as a Tribe user in the web app would, with the
// API's rules, and fires the webhooks. It returns the record as Entity does.
func (s *Simulator) UserWrite(envID, set, id string, fields map[string]any) (map[string]any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.envLocked(envID)
	if err != nil {
		return nil, err
	}
	t := s.schema.get(set)
	if t == nil {
		return nil, errf(http.StatusNotFound, "NotFound", "no entity set %q", set)
	}
	fields = normaliseNumbers(fields)
	var rec *record
	mode := modeCreate
	if id != "" {
		if rec = e.recs[strings.ToLower(id)]; rec == nil || !below(rec.set, set) {
			return nil, errf(http.StatusNotFound, "NotFound", "no %s with ID %s", set, id)
		}
		t, mode = s.schema.get(rec.set), modeMerge
	}
	out, err := s.writeLocked(e, t, rec, fields, mode)
	if err != nil {
		return nil, err
	}
	return s.dumpLocked(e, out), nil
}

// normaliseNumbers turns Go numbers given to UserWrite into json.Number, as if they came off the
// wire.
func normaliseNumbers(m map[string]any) map[string]any {
	b, err := json.Marshal(m)
	if err != nil {
		return m
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var out map[string]any
	if dec.Decode(&out) != nil {
		return m
	}
	return out
}

// MoveInvoiceToPhase moves an invoice to the phase with code (Draft, Sent, Paid) as a Tribe user
// would: becoming Sent assigns the number and invoice date, and the change fires webhooks.
func (s *Simulator) MoveInvoiceToPhase(envID, invoiceID, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.envLocked(envID)
	if err != nil {
		return err
	}
	rec := e.recs[strings.ToLower(invoiceID)]
	if rec == nil || rec.set != SetInvoice {
		return errf(http.StatusNotFound, "NotFound", "no invoice %s", invoiceID)
	}
	pid, ok := e.phases[code]
	if !ok {
		return badReq("no invoice phase %q (have Draft, Sent, Paid)", code)
	}
	_, err = s.writeLocked(e, s.schema.get(SetInvoice), rec, map[string]any{"Phase": map[string]any{"ID": pid}}, modeMerge)
	return err
}
