package tribesim

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"hash"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Header is a custom header Tribe adds to every delivery of a webhook.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type webhookReg struct {
	ID         string    `json:"id"`
	EntityType string    `json:"entityType"`
	WebhookURL string    `json:"webhookUrl"`
	Headers    []Header  `json:"headers"`
	Secret     string    `json:"secret"`
	Created    time.Time `json:"createdAt"`
}

// Faults are the injectable misbehaviours of one environment. Counters ("Next…") fire first and
// count down; rates draw from the simulator's seeded RNG.
type Faults struct {
	// API faults (on /v1/ calls, after authentication).
	Next429           int     `json:"next429"`
	Next5xx           int     `json:"next5xx"`
	RateLimitRate     float64 `json:"rateLimitRate"`
	ErrorRate         float64 `json:"errorRate"`
	ErrorStatus       int     `json:"errorStatus"`       // default 503
	RetryAfterSeconds int     `json:"retryAfterSeconds"` // default 1; negative: no Retry-After header

	// Webhook faults.
	WebhookDelayMs int     `json:"webhookDelayMs"` // added before the first attempt
	DuplicateNext  int     `json:"duplicateNext"`  // deliver the next N events twice
	DuplicateRate  float64 `json:"duplicateRate"`
	DropNext       int     `json:"dropNext"` // never deliver the next N events
	DropRate       float64 `json:"dropRate"`
	// ReorderBatch holds events until that many are pending, then delivers them newest first.
	// Held events go out anyway after ReorderHoldMs (default 1000).
	ReorderBatch  int `json:"reorderBatch"`
	ReorderHoldMs int `json:"reorderHoldMs"`
}

// SetFaults replaces the faults of an environment.
func (s *Simulator) SetFaults(envID string, f Faults) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.envs[envID]
	if e == nil {
		return errf(http.StatusNotFound, "NotFound", "set faults: no environment %q", envID)
	}
	e.faults = f
	return nil
}

// Delivery is one webhook delivery attempt (or a dropped event), for tests and the admin API.
type Delivery struct {
	Time      time.Time `json:"time"`
	EventID   string    `json:"eventId"`
	WebhookID string    `json:"webhookId"`
	URL       string    `json:"url"`
	Attempt   int       `json:"attempt"`
	Status    int       `json:"status,omitempty"`
	Error     string    `json:"error,omitempty"`
	// Outcome is delivered, failed (will retry), gave-up or dropped.
	Outcome string `json:"outcome"`
	Body    string `json:"body"`
}

// Deliveries returns the delivery log of an environment.
func (s *Simulator) Deliveries(envID string) []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.envs[envID]; e != nil {
		return slices.Clone(e.deliveries)
	}
	return nil
}

// Requests returns the API request log of an environment (the last 2000 calls).
func (s *Simulator) Requests(envID string) []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.envs[envID]; e != nil {
		return slices.Clone(e.requests)
	}
	return nil
}

func (s *Simulator) serveWebhooksLocked(w http.ResponseWriter, r *http.Request, e *env, id string) error {
	switch {
	case id == "" && r.Method == http.MethodGet:
		out := []*webhookReg{}
		for _, wid := range e.webhookOrd {
			out = append(out, e.webhooks[wid])
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	case id == "" && r.Method == http.MethodPost:
		body, err := decodeBody(r)
		if err != nil {
			return err
		}
		var in struct {
			EntityType string   `json:"entityType"`
			WebhookURL string   `json:"webhookUrl"`
			Headers    []Header `json:"headers"`
		}
		raw, _ := json.Marshal(body)
		if err := json.Unmarshal(raw, &in); err != nil {
			return badReq("bad webhook: %v", err)
		}
		known := false
		for _, t := range s.schema.types {
			known = known || t.Type == in.EntityType
		}
		if !known {
			return badReq("entityType %q is not a known entity type (use the dotted _Type, e.g. Relation.Organization)", in.EntityType)
		}
		u, err := url.Parse(in.WebhookURL)
		if err != nil || u.Host == "" || (u.Scheme != "https" && (s.opts.RequireHTTPSWebhooks || u.Scheme != "http")) {
			return badReq("webhookUrl must be an absolute https URL")
		}
		for _, h := range in.Headers {
			if h.Name == "" || strings.ContainsAny(h.Name, " :\r\n") || strings.ContainsAny(h.Value, "\r\n") {
				return badReq("bad header %q", h.Name)
			}
		}
		reg := &webhookReg{ID: s.newID(), EntityType: in.EntityType, WebhookURL: in.WebhookURL, Headers: in.Headers, Secret: s.randHex(32), Created: s.opts.Now().UTC()}
		e.webhooks[reg.ID] = reg
		e.webhookOrd = append(e.webhookOrd, reg.ID)
		writeJSON(w, http.StatusCreated, reg)
		return nil
	case id != "" && (r.Method == http.MethodGet || r.Method == http.MethodDelete):
		reg := e.webhooks[strings.ToLower(id)]
		if reg == nil {
			return errf(http.StatusNotFound, "NotFound", "no webhook %s", id)
		}
		if r.Method == http.MethodGet {
			writeJSON(w, http.StatusOK, reg)
			return nil
		}
		delete(e.webhooks, reg.ID)
		e.webhookOrd = slices.DeleteFunc(e.webhookOrd, func(x string) bool { return x == reg.ID })
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return errf(http.StatusMethodNotAllowed, "MethodNotAllowed", "%s is not allowed here", r.Method)
}

// syncWebhookRecords mirrors the registrations into the Webhook entity set.
func (s *Simulator) syncWebhookRecords(e *env) {
	for _, id := range slices.Clone(e.bySet[SetWebhook]) {
		s.deleteLocked(e, e.recs[id])
	}
	for _, wid := range e.webhookOrd {
		reg := e.webhooks[wid]
		now := reg.Created.Format(time.RFC3339)
		r := &record{id: reg.ID, set: SetWebhook, f: map[string]any{"EntityType": reg.EntityType, "WebhookUrl": reg.WebhookURL, "CreationDate": now, "LastMutationDate": now, "IsActive": true}, refs: map[string]string{}}
		e.recs[r.id] = r
		e.bySet[SetWebhook] = append(e.bySet[SetWebhook], r.id)
	}
}

// mutationName is the payload discriminator of S4.
func mutationName(set, action string) (name, idKey string) {
	kind, idKey := "Entity", "entityId"
	if strings.HasPrefix(set, "Relationship_") {
		kind, idKey = "Relationship", "relationshipId"
	}
	verb := map[string]string{"create": "Creation", "update": "Update", "delete": "Deletion"}[action]
	return kind + verb + "Mutation", idKey
}

// subscribed reports whether a webhook on entityType sees changes of type typ: the exact type or
// a base type of it.
func subscribed(entityType, typ string) bool {
	return entityType == typ || strings.HasPrefix(typ, entityType+".") || entityType == "Entity"
}

// fireLocked queues the webhooks of muts, applying the environment's webhook faults.
func (s *Simulator) fireLocked(e *env, muts []mutation) {
	now := s.opts.Now().UTC()
	for _, m := range muts {
		t := s.schema.get(m.set)
		for _, wid := range e.webhookOrd {
			reg := e.webhooks[wid]
			if !subscribed(reg.EntityType, t.Type) {
				continue
			}
			name, idKey := mutationName(m.set, m.action)
			eventID := s.newID()
			payload := map[string]any{s.opts.MutationTypeKey: name, idKey: m.id}
			if !s.opts.MinimalPayload {
				payload["entityType"], payload["timestamp"], payload["mutationId"] = t.Type, now.Format(time.RFC3339Nano), eventID
			}
			body, _ := json.Marshal(map[string]any{"webhookId": reg.ID, "payload": payload})
			d := &delivery{env: e.ID, eventID: eventID, reg: *reg, body: body, due: now}
			f := &e.faults
			if f.DropNext > 0 || (f.DropRate > 0 && s.rng.Float64() < f.DropRate) {
				if f.DropNext > 0 {
					f.DropNext--
				}
				e.deliveries = append(e.deliveries, Delivery{Time: now, EventID: eventID, WebhookID: reg.ID, URL: reg.WebhookURL, Outcome: "dropped", Body: string(body)})
				continue
			}
			d.due = d.due.Add(time.Duration(f.WebhookDelayMs) * time.Millisecond)
			copies := 1
			if f.DuplicateNext > 0 || (f.DuplicateRate > 0 && s.rng.Float64() < f.DuplicateRate) {
				if f.DuplicateNext > 0 {
					f.DuplicateNext--
				}
				copies = 2
			}
			for range copies {
				c := *d
				s.delivererLocked(e).enqueue(&c, f.ReorderBatch, time.Duration(max(f.ReorderHoldMs, 0))*time.Millisecond)
			}
		}
	}
}

type delivery struct {
	env     string
	eventID string
	reg     webhookReg
	body    []byte
	due     time.Time
	attempt int
	seq     uint64
	held    bool
}

// delivererLocked is e's deliverer, started at its first webhook.
func (s *Simulator) delivererLocked(e *env) *deliverer {
	if e.dl == nil {
		e.dl = newDeliverer(s)
		if s.closed {
			e.dl.close() // a closed simulator delivers nothing more
		}
		s.dls = append(s.dls, e.dl)
	}
	return e.dl
}

// deliverer sends an environment's queued deliveries one at a time, in (due, seq) order, from one
// goroutine, so ordering faults are deterministic. Each environment has its own, as each Tribe
// environment's webhooks are delivered independently: one tenant's burst (an import's echoes)
// does not hold up another's.
type deliverer struct {
	s      *Simulator
	mu     sync.Mutex
	queue  []*delivery
	seq    uint64
	wake   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

func newDeliverer(s *Simulator) *deliverer {
	ctx, cancel := context.WithCancel(context.Background())
	d := &deliverer{s: s, wake: make(chan struct{}, 1), ctx: ctx, cancel: cancel, done: make(chan struct{})}
	go d.run()
	return d
}

func (d *deliverer) close() {
	d.once.Do(func() {
		d.cancel()
		<-d.done
	})
}

func (d *deliverer) enqueue(x *delivery, reorderBatch int, hold time.Duration) {
	d.mu.Lock()
	d.seq++
	x.seq = d.seq
	if reorderBatch > 1 {
		if hold <= 0 {
			hold = time.Second
		}
		x.held, x.due = true, x.due.Add(hold)
		var held []*delivery
		for _, q := range d.queue {
			if q.held && q.env == x.env {
				held = append(held, q)
			}
		}
		held = append(held, x)
		if len(held) >= reorderBatch {
			// Release newest first: give them fresh sequence numbers in reverse.
			now := d.s.opts.Now()
			for i := len(held) - 1; i >= 0; i-- {
				d.seq++
				held[i].held, held[i].seq, held[i].due = false, d.seq, now
			}
		}
	}
	d.queue = append(d.queue, x)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *deliverer) run() {
	defer close(d.done)
	for {
		d.mu.Lock()
		now := d.s.opts.Now()
		var next *delivery
		idx := -1
		for i, q := range d.queue {
			if next == nil || q.due.Before(next.due) || (q.due.Equal(next.due) && q.seq < next.seq) {
				next, idx = q, i
			}
		}
		var wait time.Duration = time.Hour
		if next != nil && !next.due.After(now) {
			d.queue = slices.Delete(d.queue, idx, idx+1)
		} else {
			if next != nil {
				wait = next.due.Sub(now)
			}
			next = nil
		}
		d.mu.Unlock()
		if next != nil {
			d.attempt(next)
			continue
		}
		timer := time.NewTimer(wait)
		select {
		case <-d.ctx.Done():
			timer.Stop()
			return
		case <-d.wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

func (d *deliverer) attempt(x *delivery) {
	s := d.s
	x.attempt++
	req, err := http.NewRequestWithContext(d.ctx, http.MethodPost, x.reg.WebhookURL, bytes.NewReader(x.body))
	status := 0
	if err == nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "TribeCRM-Webhooks (tribesim)")
		for _, h := range x.reg.Headers {
			req.Header.Set(h.Name, h.Value)
		}
		req.Header.Set(s.opts.SignatureHeader, s.sign([]byte(x.reg.Secret), x.body))
		var resp *http.Response
		if resp, err = s.opts.WebhookClient.Do(req); err == nil {
			status = resp.StatusCode
			_ = resp.Body.Close()
		}
	}
	outcome := "delivered"
	retry := false
	if err != nil || status < 200 || status > 299 {
		outcome = "gave-up"
		if x.attempt <= len(s.opts.WebhookRetryDelays) && d.ctx.Err() == nil {
			outcome, retry = "failed", true
		}
	}
	errText := ""
	if err != nil {
		errText = err.Error()
	}
	s.mu.Lock()
	if e := s.envs[x.env]; e != nil {
		e.deliveries = append(e.deliveries, Delivery{Time: s.opts.Now().UTC(), EventID: x.eventID, WebhookID: x.reg.ID, URL: x.reg.WebhookURL,
			Attempt: x.attempt, Status: status, Error: errText, Outcome: outcome, Body: string(x.body)})
	}
	s.mu.Unlock()
	if retry {
		x.due = s.opts.Now().Add(s.opts.WebhookRetryDelays[x.attempt-1])
		d.mu.Lock()
		d.seq++
		x.seq = d.seq
		d.queue = append(d.queue, x)
		d.mu.Unlock()
	}
}

// sign computes the signature header value as the reference reads S4: base64 of the raw
// HMAC-SHA512 digest of the body, with the variants Options allows.
func (s *Simulator) sign(secret, body []byte) string {
	newHash := sha512.New
	if s.opts.SignatureAlgorithm == "sha256" {
		newHash = sha256.New
	}
	var h hash.Hash
	if s.opts.SignatureKeyed == "concat" {
		h = newHash()
		h.Write(secret)
	} else {
		h = hmac.New(newHash, secret)
	}
	h.Write(body)
	sum := h.Sum(nil)
	if s.opts.SignatureEncoding == "hex" {
		return hex.EncodeToString(sum)
	}
	return base64.StdEncoding.EncodeToString(sum)
}
