package ebsim

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"time"
)

// adminRoutes serves the admin API under Options.AdminPrefix:
//
//	POST   /admins                      create an administration (AdminSpec) → AdminInfo
//	GET    /admins                      list administrations
//	GET    /admins/{id}                 one administration's counts and token
//	DELETE /admins/{id}                 remove an administration
//	POST   /admins/{id}/reset           drop its records and seed again from its spec
//	POST   /admins/{id}/seed            add generated records {seed, relations, products}
//	GET    /admins/{id}/state           dump its records (?kind=relations|products|invoices|mutations|outstanding);
//	                                    relations and invoices carry storedAt, the wall-clock time of their last write
//	POST   /admins/{id}/payments        book a customer payment (Payment) → {mutationId}
//	POST   /admins/{id}/sessions/expire end its sessions
//	GET|PUT|DELETE /admins/{id}/faults  its injected faults (Faults)
//	GET|PUT|DELETE /faults              faults for every administration
//	GET    /held                        answers held back now (Faults.HoldAfterCreate)
//	GET    /clock, POST /clock          read or move the clock {advance: "90m"}
//	GET    /stats                       requests served per route
//	POST   /reset                       remove everything
func (s *Simulator) adminRoutes() {
	p := s.opt.AdminPrefix
	h := func(pattern string, fn http.HandlerFunc) {
		method, path, _ := cut(pattern)
		s.mux.HandleFunc(method+" "+p+path, s.adminAuth(fn))
	}
	h("POST /admins", s.admCreate)
	h("GET /admins", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, s.Administrations()) })
	h("GET /admins/{id}", func(w http.ResponseWriter, r *http.Request) {
		info, err := s.Administration(r.PathValue("id"))
		admResult(w, info, err)
	})
	h("DELETE /admins/{id}", func(w http.ResponseWriter, r *http.Request) {
		admResult(w, map[string]bool{"deleted": true}, s.DeleteAdministration(r.PathValue("id")))
	})
	h("POST /admins/{id}/reset", func(w http.ResponseWriter, r *http.Request) {
		admResult(w, map[string]bool{"reset": true}, s.ResetAdministration(r.PathValue("id")))
	})
	h("POST /admins/{id}/seed", s.admSeed)
	h("GET /admins/{id}/state", s.admState)
	h("POST /admins/{id}/payments", s.admPayment)
	h("POST /admins/{id}/sessions/expire", func(w http.ResponseWriter, r *http.Request) {
		if _, err := s.admin(r.PathValue("id")); err != nil {
			admResult(w, nil, err)
			return
		}
		s.ExpireSessions(r.PathValue("id"))
		writeJSON(w, 200, map[string]bool{"expired": true})
	})
	faults := func(key func(*http.Request) string) {
		base := "/faults"
		if key(nil) != "" {
			base = "/admins/{id}/faults"
		}
		h("GET "+base, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, s.GetFaults(key(r))) })
		h("PUT "+base, func(w http.ResponseWriter, r *http.Request) {
			var f Faults
			if !admDecode(w, r, &f) {
				return
			}
			s.SetFaults(key(r), f)
			writeJSON(w, 200, f)
		})
		h("DELETE "+base, func(w http.ResponseWriter, r *http.Request) {
			s.SetFaults(key(r), Faults{})
			writeJSON(w, 200, Faults{})
		})
	}
	faults(func(*http.Request) string { return "" })
	faults(func(r *http.Request) string {
		if r == nil {
			return "x"
		}
		return r.PathValue("id")
	})
	h("GET /held", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, s.Held()) })
	h("GET /clock", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"now": s.Now().Format(time.RFC3339)})
	})
	h("POST /clock", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Advance Duration `json:"advance"`
		}
		if !admDecode(w, r, &req) {
			return
		}
		if req.Advance < 0 {
			admError(w, http.StatusBadRequest, "the clock only moves forward")
			return
		}
		s.Advance(time.Duration(req.Advance))
		writeJSON(w, 200, map[string]any{"now": s.Now().Format(time.RFC3339)})
	})
	h("GET /stats", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, s.Stats()) })
	h("POST /reset", func(w http.ResponseWriter, r *http.Request) {
		s.Reset()
		writeJSON(w, 200, map[string]bool{"reset": true})
	})
}

func cut(pattern string) (method, path string, ok bool) {
	for i := 0; i < len(pattern); i++ {
		if pattern[i] == ' ' {
			return pattern[:i], pattern[i+1:], true
		}
	}
	return "", pattern, false
}

func (s *Simulator) adminAuth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.opt.AdminToken != "" {
			got := r.Header.Get("Authorization")
			want := "Bearer " + s.opt.AdminToken
			if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
				admError(w, http.StatusUnauthorized, "admin token required")
				return
			}
		}
		next(w, r)
	}
}

type admErrBody struct {
	Error string `json:"error"`
}

func admError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, admErrBody{msg})
}

func admResult(w http.ResponseWriter, v any, err error) {
	switch {
	case errors.Is(err, ErrNoAdministration):
		admError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, ErrTokenTaken):
		admError(w, http.StatusConflict, err.Error())
	case err != nil:
		admError(w, http.StatusBadRequest, err.Error())
	default:
		writeJSON(w, http.StatusOK, v)
	}
}

// admDecode reads a JSON body strictly; an empty body leaves v at its zero value.
func admDecode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && err.Error() != "EOF" {
		admError(w, http.StatusBadRequest, "decode body: "+err.Error())
		return false
	}
	return true
}

func (s *Simulator) admCreate(w http.ResponseWriter, r *http.Request) {
	var spec AdminSpec
	if !admDecode(w, r, &spec) {
		return
	}
	info, err := s.CreateAdministration(spec)
	admResult(w, info, err)
}

func (s *Simulator) admSeed(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Seed      uint64 `json:"seed"`
		Relations int    `json:"relations"`
		Products  int    `json:"products"`
	}
	if !admDecode(w, r, &req) {
		return
	}
	id := r.PathValue("id")
	if err := s.Seed(id, req.Seed, req.Relations, req.Products); err != nil {
		admResult(w, nil, err)
		return
	}
	info, err := s.Administration(id)
	admResult(w, info, err)
}

func (s *Simulator) admPayment(w http.ResponseWriter, r *http.Request) {
	var p Payment
	if !admDecode(w, r, &p) {
		return
	}
	id, err := s.BookPayment(r.PathValue("id"), p)
	if err != nil && !errors.Is(err, ErrNoAdministration) {
		admError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	admResult(w, map[string]int64{"mutationId": id}, err)
}

// admState dumps one kind of record with every field, for test assertions.
func (s *Simulator) admState(w http.ResponseWriter, r *http.Request) {
	a, err := s.admin(r.PathValue("id"))
	if err != nil {
		admResult(w, nil, err)
		return
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	switch kind := r.URL.Query().Get("kind"); kind {
	case "", "relations":
		w.Header().Set("Content-Type", "application/json")
		b := []byte{'['}
		for i, rel := range a.relations {
			if i > 0 {
				b = append(b, ',')
			}
			b = relationJSON(b, rel)
			if !rel.StoredAt.IsZero() {
				// The API's JSON plus when it was last written, for latency measurements.
				b = append(bytes.TrimRight(b, "}\n"), `,"storedAt":"`...)
				b = append(rel.StoredAt.AppendFormat(b, time.RFC3339Nano), `"}`...)
			}
		}
		_, _ = w.Write(append(b, ']'))
	case "products":
		out := make([]productOut, 0, len(a.products))
		for _, p := range a.products {
			out = append(out, productOut{p.ID, p.Code, p.Description, p.UnitID, p.Active, p.GroupID,
				optMoney(p.PurchasePriceExcl), optMoney(p.PriceExcl), optMoney(p.PriceIncl), p.VAT, p.LedgerID,
				p.CostCenterID, p.InStockManagement})
		}
		writeJSON(w, 200, out)
	case "invoices":
		type storedInvoice struct {
			invoiceOut
			StoredAt time.Time `json:"storedAt"`
		}
		out := make([]storedInvoice, 0, len(a.invoices))
		for _, inv := range a.invoices {
			out = append(out, storedInvoice{invoiceOut{inv.ID, inv.InvoiceNumber, inv.RelationID, inv.Date.Format(time.DateOnly),
				inv.Reference, inv.Text, inv.TermOfPayment, inv.InExVat, inv.TemplateID, inv.EmailTemplateID,
				money{inv.TotalExcl}, money{inv.TotalExcl.Add(inv.VATAmount)}, money{inv.VATAmount}, s.pdfURL(a, inv), inv.Items}, inv.StoredAt})
		}
		writeJSON(w, 200, out)
	case "mutations":
		type mutOut struct {
			ID            int64         `json:"id"`
			Type          int           `json:"type"`
			Date          string        `json:"date"`
			LedgerID      int64         `json:"ledgerId"`
			RelationID    int64         `json:"relationId"`
			InvoiceNumber string        `json:"invoiceNumber"`
			Total         money         `json:"total"`
			Rows          []mutationRow `json:"rows"`
		}
		out := []mutOut{}
		for _, m := range a.mutations {
			out = append(out, mutOut{m.ID, m.Type, m.Date.Format(time.DateOnly), m.LedgerID, m.RelationID, m.InvoiceNumber, money{m.Total}, m.Rows})
		}
		writeJSON(w, 200, out)
	case "outstanding":
		type itemOut struct {
			Side          string `json:"side"`
			MutationID    int64  `json:"mutationId"`
			InvoiceNumber string `json:"invoiceNumber"`
			RelationID    int64  `json:"relationId"`
			Total         money  `json:"totalAmount"`
			Paid          money  `json:"paidAmount"`
		}
		out := []itemOut{}
		for _, it := range a.openItems {
			out = append(out, itemOut{it.Side, it.MutationID, it.InvoiceNumber, it.RelationID, money{it.Total}, money{it.Paid}})
		}
		writeJSON(w, 200, out)
	default:
		admError(w, http.StatusBadRequest, "unknown kind "+kind)
	}
}
