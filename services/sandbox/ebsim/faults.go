package ebsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// Duration is a time.Duration written in JSON as a Go duration string ("250ms", "1m").
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration string or a number of milliseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("decode duration: %w", err)
		}
		*d = Duration(v)
		return nil
	}
	var ms float64
	if err := json.Unmarshal(b, &ms); err != nil {
		return fmt.Errorf("decode duration: want a string like \"250ms\" or milliseconds")
	}
	*d = Duration(ms * float64(time.Millisecond))
	return nil
}

// Faults are injected into API requests (not the admin API). Probabilities are drawn from the
// simulator's seeded RNG; the Next counters fire on the next N matching requests first.
type Faults struct {
	// Latency is added to every request.
	Latency Duration `json:"latency,omitempty"`
	// RateLimitProb, ServerErrorProb, UnauthorizedProb and DropProb are per-request probabilities
	// (0..1) of a 429, a 5xx, a 401 (authorised endpoints only) and a dropped connection.
	RateLimitProb    float64 `json:"rateLimitProb,omitempty"`
	ServerErrorProb  float64 `json:"serverErrorProb,omitempty"`
	UnauthorizedProb float64 `json:"unauthorizedProb,omitempty"`
	DropProb         float64 `json:"dropProb,omitempty"`
	// Next429, Next5xx, Next401 and NextDrop force that fault on the next N requests.
	Next429  int `json:"next429,omitempty"`
	Next5xx  int `json:"next5xx,omitempty"`
	Next401  int `json:"next401,omitempty"`
	NextDrop int `json:"nextDrop,omitempty"`
	// RetryAfter is sent with injected 429s. Default 1 s.
	RetryAfter Duration `json:"retryAfter,omitempty"`
	// ServerErrorStatus is the status of injected 5xx. Default 500 (with ERR_001).
	ServerErrorStatus int `json:"serverErrorStatus,omitempty"`
	// HoldAfterCreate holds the answer to POST /v1/invoice this long after the invoice is
	// stored: the invoice exists while its creator still waits, as when a client crashes or
	// times out between e-Boekhouden's commit and its answer. A held answer goes out early
	// when the faults are set or cleared again, and is dropped when the client goes away;
	// Held lists the answers held now.
	HoldAfterCreate Duration `json:"holdAfterCreate,omitempty"`
}

// HeldAnswer is an answer held back by Faults.HoldAfterCreate.
type HeldAnswer struct {
	AdminID       string    `json:"adminId"`
	Route         string    `json:"route"`
	ID            int64     `json:"id"`
	InvoiceNumber string    `json:"invoiceNumber,omitempty"`
	Since         time.Time `json:"since"`
}

// SetFaults sets the faults of one administration (by ID), or of all when admID is "". Faults of
// the administration and the global ones both apply.
func (s *Simulator) SetFaults(admID string, f Faults) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.faults[admID] = &f
	s.releaseHeldLocked()
}

// GetFaults returns the faults left for admID ("" = global), counters decremented.
func (s *Simulator) GetFaults(admID string) Faults {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	if f := s.faults[admID]; f != nil {
		return *f
	}
	return Faults{}
}

// ClearFaults removes every injected fault.
func (s *Simulator) ClearFaults() {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.faults = map[string]*Faults{}
	s.releaseHeldLocked()
}

// releaseHeldLocked lets every held answer go. The caller holds faultMu.
func (s *Simulator) releaseHeldLocked() {
	if s.release != nil {
		close(s.release)
	}
	s.release = make(chan struct{})
}

// Held returns the answers held now (Faults.HoldAfterCreate), oldest first.
func (s *Simulator) Held() []HeldAnswer {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	seqs := make([]int64, 0, len(s.held))
	for seq := range s.held {
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	out := make([]HeldAnswer, 0, len(seqs))
	for _, seq := range seqs {
		out = append(out, s.held[seq])
	}
	return out
}

// holdAnswer holds the answer of a stored create for Faults.HoldAfterCreate of the
// administration or the global one (the longer), until that passes, the faults change or the
// client goes away. It must be called without any lock held.
func (s *Simulator) holdAnswer(r *http.Request, h HeldAnswer) {
	now := s.Now()
	s.faultMu.Lock()
	var hold time.Duration
	for _, key := range []string{h.AdminID, ""} {
		if f := s.faults[key]; f != nil {
			hold = max(hold, time.Duration(f.HoldAfterCreate))
		}
	}
	if hold <= 0 {
		s.faultMu.Unlock()
		return
	}
	if s.release == nil {
		s.release = make(chan struct{})
	}
	release := s.release
	s.heldSeq++
	seq := s.heldSeq
	h.Since = now
	s.held[seq] = h
	s.faultMu.Unlock()
	defer func() {
		s.faultMu.Lock()
		delete(s.held, seq)
		s.faultMu.Unlock()
	}()
	s.opt.Logger.Debug("holding answer", "route", h.Route, "id", h.ID, "for", hold)
	t := time.NewTimer(hold)
	defer t.Stop()
	select {
	case <-t.C:
	case <-release:
	case <-r.Context().Done():
	}
}

type faultKind int

const (
	faultNone faultKind = iota
	fault429
	fault5xx
	fault401
	faultDrop
)

// pick decides one request's fault from f, consuming a counter. The caller holds faultMu.
func (s *Simulator) pick(f *Faults, authorised bool) faultKind {
	switch {
	case f.NextDrop > 0:
		f.NextDrop--
		return faultDrop
	case f.Next429 > 0:
		f.Next429--
		return fault429
	case f.Next5xx > 0:
		f.Next5xx--
		return fault5xx
	case authorised && f.Next401 > 0:
		f.Next401--
		return fault401
	}
	if f.DropProb > 0 && s.rng.Float64() < f.DropProb {
		return faultDrop
	}
	if f.RateLimitProb > 0 && s.rng.Float64() < f.RateLimitProb {
		return fault429
	}
	if f.ServerErrorProb > 0 && s.rng.Float64() < f.ServerErrorProb {
		return fault5xx
	}
	if authorised && f.UnauthorizedProb > 0 && s.rng.Float64() < f.UnauthorizedProb {
		return fault401
	}
	return faultNone
}

// injectFault applies the faults of admID and the global ones; it reports whether it answered.
func (s *Simulator) injectFault(w http.ResponseWriter, r *http.Request, admID string, authorised bool) bool {
	s.faultMu.Lock()
	var latency time.Duration
	kind := faultNone
	var chosen *Faults
	keys := []string{""}
	if admID != "" {
		keys = []string{admID, ""}
	}
	for _, key := range keys {
		f := s.faults[key]
		if f == nil {
			continue
		}
		latency += time.Duration(f.Latency)
		if kind == faultNone {
			if k := s.pick(f, authorised); k != faultNone {
				kind, chosen = k, f
			}
		}
	}
	var retryAfter time.Duration
	status := http.StatusInternalServerError
	if chosen != nil {
		retryAfter = time.Duration(chosen.RetryAfter)
		if chosen.ServerErrorStatus >= 500 {
			status = chosen.ServerErrorStatus
		}
	}
	s.faultMu.Unlock()

	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return true
		}
	}
	switch kind {
	case faultDrop:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return true
			}
		}
		// Without hijacking (HTTP/2), abort the handler: the server resets the stream.
		panic(http.ErrAbortHandler)
	case fault429:
		if retryAfter <= 0 {
			retryAfter = time.Second
		}
		tooMany(w, retryAfter)
	case fault5xx:
		writeErr(w, &apiError{Type: "error", Title: "Something went wrong.", Status: status, Code: "ERR_001"})
	case fault401:
		s.unauthorized(w)
	default:
		return false
	}
	return true
}
