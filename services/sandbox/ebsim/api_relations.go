package ebsim

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/koppel/koppel/services/sandbox/ebsim/gen"
)

func (s *Simulator) routes() {
	m := s.mux
	m.HandleFunc("POST /v1/session", s.postSession)
	m.HandleFunc("DELETE /v1/session", s.deleteSession)
	h := func(pattern string, fn apiHandler) { m.HandleFunc(pattern, s.authed(pattern, fn)) }
	h("GET /v1/relation", s.listRelations)
	h("GET /v1/relation/{id}", s.getRelation)
	h("POST /v1/relation", s.createRelation)
	h("PATCH /v1/relation/{id}", s.patchRelation)
	h("GET /v1/product", s.listProducts)
	h("GET /v1/product/groups", s.listProductGroups)
	h("GET /v1/product/{id}", s.getProduct)
	h("POST /v1/product", s.createProduct)
	h("PATCH /v1/product/{id}", s.patchProduct)
	h("DELETE /v1/product/{id}", s.deleteProduct)
	h("GET /v1/ledger", s.listLedgers)
	h("GET /v1/ledger/{id}", s.getLedger)
	h("GET /v1/ledger/{id}/balance", s.ledgerBalance)
	h("GET /v1/unit", s.listUnits)
	h("GET /v1/costcenter", s.listCostCenters)
	h("GET /v1/costcenter/{id}", s.getCostCenter)
	h("GET /v1/invoicetemplate", s.listInvoiceTemplates)
	h("GET /v1/emailtemplate", s.listEmailTemplates)
	h("GET /v1/administration", s.listAdministrations)
	h("GET /v1/administration/linked", s.listLinkedAdministrations)
	h("GET /v1/invoice", s.listInvoices)
	h("GET /v1/invoice/{id}", s.getInvoice)
	h("POST /v1/invoice", s.createInvoice)
	h("GET /v1/mutation", s.listMutations)
	h("GET /v1/mutation/{id}", s.getMutation)
	h("POST /v1/mutation", s.createMutation)
	h("GET /v1/mutation/invoice/outstanding", s.listOutstanding)
}

var sourceRE = regexp.MustCompile(`^[\p{L}\p{N}_ ]{1,10}$`)

func (s *Simulator) postSession(w http.ResponseWriter, r *http.Request) {
	s.count("POST /v1/session")
	if s.injectFault(w, r, "", false) {
		return
	}
	f, e := decodeBody(r)
	if e != nil {
		writeErr(w, e)
		return
	}
	tok, _, err := f.str("accessToken")
	if err != nil {
		writeErr(w, err)
		return
	}
	src, srcOK, err := f.str("source")
	if err != nil {
		writeErr(w, err)
		return
	}
	if !srcOK || src == "" {
		writeErr(w, verr("API_SESSION_001", "source", "Source is missing."))
		return
	}
	if !sourceRE.MatchString(src) {
		writeErr(w, verr("API_SESSION_002", "source", "Source does not match pattern."))
		return
	}
	if tok == "" {
		writeErr(w, verr("API_SESSION_003", "accessToken", "Access token is missing or empty."))
		return
	}
	s.mu.RLock()
	a := s.byToken[tok]
	s.mu.RUnlock()
	if a == nil {
		if s.opt.UnknownTokenStatus == http.StatusBadRequest {
			writeErr(w, verr("API_SESSION_003", "accessToken", "Access token is missing or empty."))
			return
		}
		zero := 0
		writeErr(w, &apiError{Type: "security", Title: "Access denied.", Status: http.StatusForbidden,
			Code: "SECURITY_001", SecurityType: &zero})
		return
	}
	if s.limited(w, a.id) {
		return
	}
	now := s.Now()
	a.mu.RLock()
	exp := a.tokenExpiry
	a.mu.RUnlock()
	if !exp.IsZero() && !now.Before(exp) {
		writeErr(w, verr("API_SESSION_004", "accessToken", "Access token has expired."))
		return
	}
	st := randomToken()
	s.mu.Lock()
	s.sessions[st] = &session{adm: a, expires: now.Add(s.opt.SessionTTL)}
	if len(s.sessions)%1024 == 0 {
		for k, v := range s.sessions {
			if !now.Before(v.expires) {
				delete(s.sessions, k)
			}
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"token": st, "expiresIn": int(s.opt.SessionTTL / time.Second)})
}

func (s *Simulator) deleteSession(w http.ResponseWriter, r *http.Request) {
	s.count("DELETE /v1/session")
	tok := s.authToken(r)
	a := s.sessionAdmin(r)
	if s.injectFault(w, r, "", true) {
		return
	}
	if a == nil {
		s.unauthorized(w)
		return
	}
	s.mu.Lock()
	delete(s.sessions, tok)
	s.mu.Unlock()
	s.noContent(w)
}

var relListParams = map[string]paramKind{"code": pString, "type": pString, "email": pString, "name": pString, "contact": pString, "city": pString}

type relListItem struct {
	ID   int64  `json:"id"`
	Type string `json:"type"`
	Code string `json:"code"`
}

func (s *Simulator) listRelations(w http.ResponseWriter, r *http.Request, a *admin) {
	q, e := s.parseList(r, relListParams)
	if e != nil {
		writeErr(w, e)
		return
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	items := a.relations
	// An exact code is the common lookup (before a create): answer it from the index.
	if len(q.conds) == 1 && q.conds[0].field == "code" && q.conds[0].op == "eq" {
		items = nil
		if rel := a.relByCode[strings.ToUpper(q.conds[0].s)]; rel != nil {
			items = []*relation{rel}
		}
	}
	str := func(rel *relation) func(string) string {
		return func(field string) string {
			switch field {
			case "code":
				return rel.Code
			case "type":
				return rel.Type
			case "email":
				return rel.Str[fEmail]
			case "name":
				return rel.Str[fName]
			case "contact":
				return rel.Str[fContact]
			case "city":
				return rel.Str[fCity]
			}
			return ""
		}
	}
	env := pageOf(s, q, items, func(rel *relation) bool { return q.matchAll(str(rel), nil) },
		func(rel *relation) relListItem { return relListItem{rel.ID, rel.Type, rel.Code} })
	writeJSON(w, http.StatusOK, env)
}

func (s *Simulator) getRelation(w http.ResponseWriter, r *http.Request, a *admin) {
	id, e := pathID(r)
	if e != nil {
		writeErr(w, e)
		return
	}
	a.mu.RLock()
	rel := a.relByID[id]
	var b []byte
	if rel != nil {
		b = relationJSON(make([]byte, 0, 768), rel)
	}
	a.mu.RUnlock()
	if rel == nil {
		writeErr(w, notFound("REL_055", "Relation not found."))
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(b)
}

// relationJSON renders the detail shape, omitting empty fields as the real API does.
func relationJSON(b []byte, rel *relation) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, rel.ID, 10)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, rel.Type)
	b = append(b, `,"code":`...)
	b = appendJSONString(b, rel.Code)
	b = append(b, `,"date":"`...)
	b = rel.Date.AppendFormat(b, time.DateOnly)
	b = append(b, '"')
	for i, f := range relFields {
		if v := rel.Str[i]; v != "" {
			b = append(b, ',', '"')
			b = append(b, f.name...)
			b = append(b, '"', ':')
			b = appendJSONString(b, v)
		}
	}
	if rel.Gender != "" {
		b = append(b, `,"gender":`...)
		b = appendJSONString(b, rel.Gender)
	}
	b = append(b, `,"inactive":`...)
	b = strconv.AppendBool(b, rel.Inactive)
	if rel.TermOfPayment != nil {
		b = append(b, `,"termOfPayment":`...)
		b = strconv.AppendInt(b, *rel.TermOfPayment, 10)
	}
	if rel.LedgerID != nil {
		b = append(b, `,"ledgerId":`...)
		b = strconv.AppendInt(b, *rel.LedgerID, 10)
	}
	// Read model: an integer, while create and patch take a boolean.
	b = append(b, `,"doNotReceiveNewsletters":`...)
	if rel.DoNotReceiveNewsletters {
		b = append(b, '1')
	} else {
		b = append(b, '0')
	}
	b = append(b, `,"isClubOrAssociationMember":0,"mandate":`...)
	b = strconv.AppendBool(b, rel.Mandate)
	if rel.MandateType != "" {
		b = append(b, `,"mandateType":`...)
		b = appendJSONString(b, rel.MandateType)
	}
	if rel.MandateSignedDate != "" {
		b = append(b, `,"mandateSignedDate":`...)
		b = appendJSONString(b, rel.MandateSignedDate)
	}
	return append(b, '}', '\n')
}

var relCodeRE = regexp.MustCompile(`^[\p{L}\p{N} _.\-/&]+$`)

// applyRelation validates body f onto rel. create says whether this is POST (defaults apply).
func (s *Simulator) applyRelation(a *admin, f fields, rel *relation, create bool) *apiError {
	name, _, e := f.str("name")
	if e != nil {
		return e
	}
	if strings.TrimSpace(name) == "" {
		return verr("REL_002", "name", "Name is mandatory.")
	}
	if t, ok, e := f.str("type"); e != nil {
		return e
	} else if ok && t != "" {
		if t != "B" && t != "P" {
			return verr("REL_001", "type", "Type is invalid, must be B or P.")
		}
		rel.Type = t
	} else if create || rel.Type == "" {
		rel.Type = "B"
	}
	if g, ok, e := f.str("gender"); e != nil {
		return e
	} else if ok {
		if g != "" && g != "m" && g != "v" && g != "a" {
			return verr("REL_004", "gender", "Gender is invalid, must be m, v or a.")
		}
		rel.Gender = g
	}
	if code, ok, e := f.str("code"); e != nil {
		return e
	} else if ok && code != "" {
		if runeLen(code) > 15 {
			return verr("REL_006", "code", "Code is too long.")
		}
		if !relCodeRE.MatchString(code) {
			return verr("REL_005", "code", "Code is invalid.")
		}
		if other := a.relByCode[strings.ToUpper(code)]; other != nil && other != rel && other.ID != rel.ID {
			return verr("REL_049", "code", "Code already exists.")
		}
		rel.Code = code
	}
	for i, fd := range relFields {
		v, ok, e := f.str(fd.name)
		if e != nil {
			return e
		}
		if !ok {
			if _, sent := f[fd.name]; sent || (!create && s.opt.PatchClearsOmitted) {
				rel.Str[i] = ""
			}
			continue
		}
		if runeLen(v) > fd.max {
			return verr(fd.tooLng, fd.name, fd.name+" is too long.")
		}
		rel.Str[i] = v
	}
	for _, em := range []struct{ name, code string }{{"emailAddress", "REL_023"}, {"emailAddressInvoice", "REL_025"}, {"emailAddressReminder", "REL_027"}} {
		if v := rel.Str[fieldIdx(em.name)]; v != "" && !validEmail(v) {
			return verr(em.code, em.name, em.name+" is invalid.")
		}
	}
	if v := rel.Str[fIBAN]; v != "" && !gen.ValidIBAN(v) {
		return verr("REL_007", "iban", "Iban is invalid.")
	}
	if v := rel.Str[fieldIdx("companyRegistrationNumber")]; v != "" {
		if _, err := strconv.ParseUint(strings.ReplaceAll(v, " ", ""), 10, 64); err != nil {
			return verr("REL_008", "companyRegistrationNumber", "Company registration number must be numeric.")
		}
	}
	if v, ok, e := f.int("termOfPayment"); e != nil {
		return e
	} else if ok {
		if v < 0 {
			return verr("REL_030", "termOfPayment", "Term of payment is too low.")
		}
		if v > 999 {
			return verr("REL_031", "termOfPayment", "Term of payment is too high.")
		}
		rel.TermOfPayment = &v
	} else if _, sent := f["termOfPayment"]; sent {
		rel.TermOfPayment = nil
	}
	if v, ok, e := f.int("ledgerId"); e != nil {
		return e
	} else if ok {
		if a.ledgerByID[v] == nil {
			return verr("REL_048", "ledgerId", "Ledger not found.")
		}
		rel.LedgerID = &v
	}
	if v, ok, e := f.bool("inactive"); e != nil {
		return e
	} else if ok {
		rel.Inactive = v
	}
	if v, ok, e := f.bool("doNotReceiveNewsletters"); e != nil {
		return e
	} else if ok {
		rel.DoNotReceiveNewsletters = v
	}
	if v, ok, e := f.bool("mandate"); e != nil {
		return e
	} else if ok {
		rel.Mandate = v
	}
	if v, ok, e := f.str("mandateType"); e != nil {
		return e
	} else if ok && v != "" {
		if runeLen(v) > 1 {
			return verr("REL_033", "mandateType", "Mandate type is too long.")
		}
		if v != "E" && v != "D" {
			return verr("REL_051", "mandateType", "Mandate type is invalid, must be E or D.")
		}
		rel.MandateType = v
	}
	if t, ok, bad := f.date("mandateSignedDate"); bad {
		return errBadValue("mandateSignedDate")
	} else if ok {
		rel.MandateSignedDate = t.Format(time.DateOnly)
	}
	if rel.Mandate && (rel.MandateType == "" || rel.Str[fieldIdx("mandateId")] == "") {
		return verr("REL_052", "mandate", "Mandate value missing.")
	}
	return nil
}

func validEmail(s string) bool {
	at := strings.LastIndexByte(s, '@')
	return at > 0 && at < len(s)-3 && strings.Contains(s[at:], ".") && !strings.ContainsAny(s, " ,;<>")
}

func (s *Simulator) createRelation(w http.ResponseWriter, r *http.Request, a *admin) {
	f, e := decodeBody(r)
	if e != nil {
		writeErr(w, e)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	rel := &relation{Date: dateOnly(s.Now())}
	if e := s.applyRelation(a, f, rel, true); e != nil {
		writeErr(w, e)
		return
	}
	rel.ID = s.nextID()
	if rel.Code == "" {
		rel.Code = a.newRelationCode()
	}
	rel.StoredAt = time.Now()
	a.addRelation(rel)
	s.created(w, map[string]any{"id": rel.ID, "code": rel.Code})
}

// newRelationCode generates the next free numeric code (the real format is undocumented).
func (a *admin) newRelationCode() string {
	for {
		a.nextRelCode++
		c := strconv.FormatInt(a.nextRelCode, 10)
		if a.relByCode[c] == nil {
			return c
		}
	}
}

func (a *admin) addRelation(rel *relation) {
	if rel.StoredAt.IsZero() {
		rel.StoredAt = time.Now()
	}
	a.relations = insertSorted(a.relations, rel, func(r *relation) int64 { return r.ID })
	a.relByID[rel.ID] = rel
	a.relByCode[strings.ToUpper(rel.Code)] = rel
}

func (s *Simulator) patchRelation(w http.ResponseWriter, r *http.Request, a *admin) {
	id, e := pathID(r)
	if e != nil {
		writeErr(w, e)
		return
	}
	f, e := decodeBody(r)
	if e != nil {
		writeErr(w, e)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	cur := a.relByID[id]
	if cur == nil {
		writeErr(w, notFound("REL_055", "Relation not found."))
		return
	}
	next := *cur
	if e := s.applyRelation(a, f, &next, false); e != nil {
		writeErr(w, e)
		return
	}
	if next.Code != cur.Code {
		delete(a.relByCode, strings.ToUpper(cur.Code))
		a.relByCode[strings.ToUpper(next.Code)] = cur
	}
	next.StoredAt = time.Now()
	*cur = next
	s.noContent(w)
}

func dateOnly(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}
