package ebsim

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// apiError is the API's Error schema (plus securityType for SecurityError).
type apiError struct {
	Type         string `json:"type"`
	Title        string `json:"title"`
	Status       int    `json:"status"`
	Code         string `json:"code,omitempty"`
	Message      string `json:"message,omitempty"`
	PropertyName string `json:"propertyName,omitempty"`
	SecurityType *int   `json:"securityType,omitempty"`
}

func (e *apiError) Error() string { return e.Code + ": " + e.Title }

// verr is a 400 validation error on a property.
func verr(code, prop, title string) *apiError {
	return &apiError{Type: "validation", Title: title, Status: http.StatusBadRequest, Code: code, PropertyName: prop}
}

// notFound is a 404 with the resource's not-found code.
func notFound(code, title string) *apiError {
	return &apiError{Type: "validation", Title: title, Status: http.StatusNotFound, Code: code}
}

var errBadValue = func(prop string) *apiError {
	return verr("ERR_002", prop, "Your request contains an invalid value.")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

func writeErr(w http.ResponseWriter, e *apiError) { writeJSON(w, e.Status, e) }

func (s *Simulator) created(w http.ResponseWriter, v any) {
	status := http.StatusCreated
	if s.opt.SuccessStatusOK {
		status = http.StatusOK
	}
	writeJSON(w, status, v)
}

func (s *Simulator) noContent(w http.ResponseWriter) {
	if s.opt.SuccessStatusOK {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Simulator) unauthorized(w http.ResponseWriter) {
	if s.opt.EmptyUnauthorizedBody {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	writeErr(w, &apiError{Type: "security", Title: "Not authenticated. Check your Authorization header.",
		Status: http.StatusUnauthorized, Code: "SECURITY_010"})
}

// maxBody bounds request bodies; real invoices are far smaller.
const maxBody = 4 << 20

// decodeBody reads a JSON object into a map of raw fields, so validators can tell omitted fields
// from null ones. An empty body is DATA_01; malformed JSON is ERR_002.
func decodeBody(r *http.Request) (fields, *apiError) {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBody))
	dec.UseNumber()
	var m fields
	if err := dec.Decode(&m); err != nil {
		if err.Error() == "EOF" {
			return nil, verr("DATA_01", "", "No content body provided.")
		}
		return nil, errBadValue("")
	}
	if m == nil {
		return nil, verr("DATA_01", "", "No content body provided.")
	}
	return m, nil
}

// Route handler types: every API handler gets its administration (already locked as needed).
type apiHandler func(w http.ResponseWriter, r *http.Request, a *admin)

// authToken reads Authorization as the raw token or "Bearer <token>".
func (s *Simulator) authToken(r *http.Request) string {
	h := strings.TrimSpace(r.Header.Get("Authorization"))
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		if s.opt.RejectBearer {
			return ""
		}
		return strings.TrimSpace(h[7:])
	}
	return h
}

// sessionAdmin resolves the request's session, or nil when it is missing, unknown or expired.
func (s *Simulator) sessionAdmin(r *http.Request) *admin {
	tok := s.authToken(r)
	if tok == "" {
		return nil
	}
	s.mu.RLock()
	sess := s.sessions[tok]
	s.mu.RUnlock()
	if sess == nil || !s.Now().Before(sess.expires) {
		return nil
	}
	return sess.adm
}

// authed wraps an API handler with statistics, faults, the rate limit and session checks.
func (s *Simulator) authed(pattern string, h apiHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.count(pattern)
		a := s.sessionAdmin(r)
		admID := ""
		if a != nil {
			admID = a.id
		}
		if s.injectFault(w, r, admID, true) {
			return
		}
		if a == nil {
			s.unauthorized(w)
			return
		}
		if s.limited(w, admID) {
			return
		}
		h(w, r, a)
	}
}

// tokenBucket is the simulator's server-side rate limit of one administration.
type tokenBucket struct {
	tokens float64
	last   time.Time
}

// limited answers 429 when the administration exceeds Options.RateLimit.
func (s *Simulator) limited(w http.ResponseWriter, admID string) bool {
	if s.opt.RateLimit <= 0 {
		return false
	}
	now := s.Now()
	s.faultMu.Lock()
	b := s.limiters[admID]
	if b == nil {
		b = &tokenBucket{tokens: float64(s.opt.RateBurst), last: now}
		s.limiters[admID] = b
	}
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = math.Min(float64(s.opt.RateBurst), b.tokens+dt*s.opt.RateLimit)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		s.faultMu.Unlock()
		return false
	}
	wait := (1 - b.tokens) / s.opt.RateLimit
	s.faultMu.Unlock()
	tooMany(w, time.Duration(wait*float64(time.Second)))
	return true
}

func tooMany(w http.ResponseWriter, retryAfter time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retryAfter.Seconds()))))
	writeErr(w, &apiError{Type: "error", Title: "Too many requests.", Status: http.StatusTooManyRequests})
}

// pathID reads the {id} path value; a non-numeric id is ERR_002 like the real model binder.
func pathID(r *http.Request) (int64, *apiError) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return 0, errBadValue("id")
	}
	return id, nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func fmtErr(format string, a ...any) string { return fmt.Sprintf(format, a...) }
