package tribesim

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"
)

// The admin API, under /_sim/ (JSON in and out; errors as {"error":{"code","message"}}):
//
//	GET    /_sim/environments                         list environments
//	POST   /_sim/environments                         create one (EnvironmentSpec) → EnvironmentInfo
//	GET    /_sim/environments/{env}                   EnvironmentInfo with record counts
//	DELETE /_sim/environments/{env}                   remove it
//	POST   /_sim/environments/{env}/reset             back to the seeded state (regenerated if it was)
//	POST   /_sim/environments/{env}/generate          add generated data (GenerateSpec)
//	GET    /_sim/environments/{env}/entities/{set}    every record of a set, navigations as {"ID"}
//	POST   /_sim/environments/{env}/entities/{set}    create as a Tribe user would (fires webhooks)
//	PATCH  /_sim/environments/{env}/entities/{set}/{id}  update as a Tribe user (fires webhooks)
//	POST   /_sim/environments/{env}/invoices/{id}/phase  {"code":"Sent"}: move an invoice to a phase
//	GET    /_sim/environments/{env}/faults            the current Faults
//	PUT    /_sim/environments/{env}/faults            replace the Faults
//	POST   /_sim/environments/{env}/tokens/expire     expire every token issued so far
//	GET    /_sim/environments/{env}/webhooks          registrations, with their secrets
//	GET    /_sim/environments/{env}/deliveries        the webhook delivery log
//	GET    /_sim/environments/{env}/requests          the API request log

func (s *Simulator) serveAdmin(w http.ResponseWriter, r *http.Request) {
	if s.opts.AdminToken != "" {
		h := r.Header.Get("Authorization")
		if subtle.ConstantTimeCompare([]byte(h), []byte("Bearer "+s.opts.AdminToken)) != 1 {
			writeODataError(w, http.StatusUnauthorized, "Unauthorized", "admin token required")
			return
		}
	}
	segs := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/_sim"), "/"), "/")
	if len(segs) == 0 || segs[0] != "environments" {
		writeODataError(w, http.StatusNotFound, "NotFound", "no such admin path")
		return
	}
	segs = segs[1:]
	m := r.Method
	var err error
	switch {
	case len(segs) == 0 && m == http.MethodGet:
		s.mu.Lock()
		out := []EnvironmentInfo{}
		for _, id := range s.envOrd {
			out = append(out, s.infoLocked(s.envs[id]))
		}
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, out)
		return
	case len(segs) == 0 && m == http.MethodPost:
		var spec EnvironmentSpec
		if err = decodeAdmin(r, &spec); err == nil {
			var info EnvironmentInfo
			if info, err = s.CreateEnvironment(spec); err == nil {
				writeJSON(w, http.StatusCreated, info)
				return
			}
			err = errf(http.StatusConflict, "Conflict", "%v", err)
		}
	case len(segs) == 1 && m == http.MethodGet:
		var info EnvironmentInfo
		if info, err = s.Environment(segs[0]); err == nil {
			writeJSON(w, http.StatusOK, info)
			return
		}
	case len(segs) == 1 && m == http.MethodDelete:
		if err = s.DeleteEnvironment(segs[0]); err == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
	case len(segs) == 2 && segs[1] == "reset" && m == http.MethodPost:
		err = s.Reset(segs[0])
	case len(segs) == 2 && segs[1] == "generate" && m == http.MethodPost:
		var g GenerateSpec
		if err = decodeAdmin(r, &g); err == nil {
			err = s.Generate(segs[0], g)
		}
	case len(segs) == 3 && segs[1] == "entities" && m == http.MethodGet:
		var out []map[string]any
		if out, err = s.Entities(segs[0], segs[2]); err == nil {
			writeJSON(w, http.StatusOK, map[string]any{"value": out})
			return
		}
	case (len(segs) == 3 && m == http.MethodPost || len(segs) == 4 && m == http.MethodPatch) && segs[1] == "entities":
		var body map[string]any
		if body, err = decodeBody(r); err == nil {
			id := ""
			if len(segs) == 4 {
				id = segs[3]
			}
			var out map[string]any
			if out, err = s.UserWrite(segs[0], segs[2], id, body); err == nil {
				writeJSON(w, http.StatusOK, out)
				return
			}
		}
	case len(segs) == 4 && segs[1] == "invoices" && segs[3] == "phase" && m == http.MethodPost:
		var in struct {
			Code string `json:"code"`
		}
		if err = decodeAdmin(r, &in); err == nil {
			err = s.MoveInvoiceToPhase(segs[0], segs[2], in.Code)
		}
	case len(segs) == 2 && segs[1] == "faults" && m == http.MethodGet:
		s.mu.Lock()
		e := s.envs[segs[0]]
		var f Faults
		if e != nil {
			f = e.faults
		}
		s.mu.Unlock()
		if e != nil {
			writeJSON(w, http.StatusOK, f)
			return
		}
		err = errf(http.StatusNotFound, "NotFound", "no environment %q", segs[0])
	case len(segs) == 2 && segs[1] == "faults" && m == http.MethodPut:
		var f Faults
		if err = decodeAdmin(r, &f); err == nil {
			err = s.SetFaults(segs[0], f)
		}
	case len(segs) == 3 && segs[1] == "tokens" && segs[2] == "expire" && m == http.MethodPost:
		err = s.ExpireTokens(segs[0])
	case len(segs) == 2 && segs[1] == "webhooks" && m == http.MethodGet:
		s.mu.Lock()
		e := s.envs[segs[0]]
		out := []webhookReg{}
		if e != nil {
			for _, id := range e.webhookOrd {
				out = append(out, *e.webhooks[id])
			}
		}
		s.mu.Unlock()
		if e != nil {
			writeJSON(w, http.StatusOK, out)
			return
		}
		err = errf(http.StatusNotFound, "NotFound", "no environment %q", segs[0])
	case len(segs) == 2 && segs[1] == "deliveries" && m == http.MethodGet:
		writeJSON(w, http.StatusOK, s.Deliveries(segs[0]))
		return
	case len(segs) == 2 && segs[1] == "requests" && m == http.MethodGet:
		writeJSON(w, http.StatusOK, s.Requests(segs[0]))
		return
	default:
		err = errf(http.StatusNotFound, "NotFound", "no such admin path")
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
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
