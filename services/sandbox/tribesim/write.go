package tribesim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// mutation is one change, for webhooks.
type mutation struct {
	set, id, action string // action: create, update, delete
}

type writeMode int

const (
	modeCreate writeMode = iota
	modeMerge
	modeReplace
)

func badReq(format string, args ...any) *apiError {
	return errf(http.StatusBadRequest, "BadRequest", format, args...)
}

func (s *Simulator) phaseCode(e *env, inv *record) string {
	if p := e.recs[inv.refs["Phase"]]; p != nil {
		return str(p.f["Code"])
	}
	return ""
}

func frozenPhase(code string) bool { return code == phaseSent || code == phasePaid }

// checkWrite validates body for a write to t (rec is nil on create) before anything changes, so a
// failed deep insert leaves no trace.
func (s *Simulator) checkWrite(e *env, t *entityType, rec *record, body map[string]any, depth int) error {
	if depth > 4 {
		return badReq("deep insert nested too deeply")
	}
	if t.Abstract || t.ReadOnly {
		return errf(http.StatusMethodNotAllowed, "MethodNotAllowed", "%s cannot be written", t.Set)
	}
	if err := s.gate(e, t.Set); err != nil {
		return err
	}
	if rec != nil && t.Set == SetInvoice && frozenPhase(s.phaseCode(e, rec)) {
		for k := range body {
			if k != "ID" && k != "Phase" && !strings.HasPrefix(k, "@odata.") {
				return errf(http.StatusBadRequest, "InvoiceFinalized", "invoice %s is %s and can no longer be changed (field %s); correct it with a credit invoice", rec.id, s.phaseCode(e, rec), k)
			}
		}
	}
	for k, v := range body {
		if k == "ID" || strings.HasPrefix(k, "@odata.") {
			continue
		}
		if kind, ok := t.kind(k); ok {
			if t.Computed[k] {
				continue
			}
			if err := checkKind(k, kind, v); err != nil {
				return err
			}
			continue
		}
		if nav, ok := t.Navs[k]; ok {
			if v == nil {
				continue
			}
			obj, ok := v.(map[string]any)
			if !ok {
				return badReq("navigation property %s must be an object like {\"ID\": \"…\"}", k)
			}
			if id, has := obj["ID"]; has {
				ids, ok := id.(string)
				target := e.recs[strings.ToLower(ids)]
				if !ok || target == nil {
					return errf(http.StatusBadRequest, "BadRequest", "%s: no entity with ID %v", k, id)
				}
				if !below(target.set, nav.Target) {
					return badReq("%s: entity %s is a %s, not a %s", k, ids, target.set, nav.Target)
				}
				if k == "Phase" && rec != nil && t.Set == SetInvoice && frozenPhase(s.phaseCode(e, rec)) && str(target.f["Code"]) == phaseDraft {
					return errf(http.StatusBadRequest, "InvoiceFinalized", "invoice %s is %s and cannot return to %s", rec.id, s.phaseCode(e, rec), phaseDraft)
				}
				continue
			}
			tt := s.schema.get(nav.Target)
			if tt == nil || tt.Abstract {
				return badReq("%s: deep insert needs a concrete type; link with {\"ID\": …}", k)
			}
			if err := s.checkWrite(e, tt, nil, obj, depth+1); err != nil {
				return err
			}
			continue
		}
		if c, ok := t.Colls[k]; ok {
			arr, ok := v.([]any)
			if !ok {
				return badReq("%s must be an array", k)
			}
			for _, it := range arr {
				obj, ok := it.(map[string]any)
				if !ok {
					return badReq("%s items must be objects", k)
				}
				var cur *record
				if id, has := obj["ID"]; has {
					if cur = e.recs[strings.ToLower(str(id))]; cur == nil || cur.set != c.Set {
						return errf(http.StatusBadRequest, "BadRequest", "%s: no %s with ID %v", k, c.Set, id)
					}
				}
				if err := s.checkWrite(e, s.schema.get(c.Set), cur, obj, depth+1); err != nil {
					return err
				}
			}
			continue
		}
		if isCustomField(k) {
			continue
		}
		return badReq("property %q does not exist on type %s", k, t.Type)
	}
	if rec == nil {
		for _, req := range t.Required {
			v, ok := body[req]
			if !ok || v == nil || v == "" {
				return badReq("property %s is required for %s", req, t.Type)
			}
		}
	}
	if t.Set == SetProductLine {
		act := ""
		if rec != nil {
			act = rec.refs["Activity"]
		}
		if obj, ok := body["Activity"].(map[string]any); ok {
			act = strings.ToLower(str(obj["ID"]))
		}
		if inv := e.recs[act]; inv != nil && inv.set == SetInvoice && frozenPhase(s.phaseCode(e, inv)) {
			return errf(http.StatusBadRequest, "InvoiceFinalized", "invoice %s is %s; its product lines can no longer be changed", inv.id, s.phaseCode(e, inv))
		}
	}
	return nil
}

func checkKind(k string, kind byte, v any) error {
	if v == nil {
		return nil
	}
	switch kind {
	case kString:
		if _, ok := v.(string); !ok {
			return badReq("property %s must be a string", k)
		}
	case kNumber, kInt:
		n, ok := v.(json.Number)
		if !ok {
			return badReq("property %s must be a number", k)
		}
		if kind == kInt {
			if _, err := n.Int64(); err != nil {
				return badReq("property %s must be an integer", k)
			}
		} else if _, err := n.Float64(); err != nil {
			return badReq("property %s must be a number", k)
		}
	case kBool:
		if _, ok := v.(bool); !ok {
			return badReq("property %s must be true or false", k)
		}
	case kTime:
		sv, ok := v.(string)
		if !ok {
			return badReq("property %s must be a date-time", k)
		}
		if _, err := parseTime(sv); err != nil {
			return badReq("property %s must be a date-time with offset", k)
		}
	}
	return nil
}

// applyWrite performs a checked write and returns the record and the mutations it caused.
func (s *Simulator) applyWrite(e *env, t *entityType, rec *record, body map[string]any, mode writeMode) (*record, []mutation) {
	var muts []mutation
	now := s.opts.Now().UTC()
	create := rec == nil
	oldPhase := ""
	if create {
		rec = &record{id: s.newID(), set: t.Set, f: map[string]any{"CreationDate": now.Format(time.RFC3339)}, refs: map[string]string{}}
		e.recs[rec.id] = rec
		e.bySet[t.Set] = append(e.bySet[t.Set], rec.id)
	} else if t.Set == SetInvoice {
		oldPhase = s.phaseCode(e, rec)
	}
	if mode == modeReplace {
		for f := range t.Fields {
			if _, in := body[f]; !in && !t.Computed[f] {
				delete(rec.f, f)
			}
		}
		for nav := range t.Navs {
			if _, in := body[nav]; !in {
				s.setRef(e, rec, nav, "")
			}
		}
	}
	var deferred []func()
	for k, v := range body {
		if k == "ID" || strings.HasPrefix(k, "@odata.") || t.Computed[k] {
			continue
		}
		if _, ok := t.Fields[k]; ok || isCustomField(k) {
			rec.f[k] = v
			continue
		}
		if nav, ok := t.Navs[k]; ok {
			obj, _ := v.(map[string]any)
			switch {
			case obj == nil:
				s.setRef(e, rec, k, "")
			case obj["ID"] != nil:
				s.setRef(e, rec, k, strings.ToLower(str(obj["ID"])))
			default:
				child, cm := s.applyWrite(e, s.schema.get(nav.Target), nil, obj, modeCreate)
				muts = append(muts, cm...)
				s.setRef(e, rec, k, child.id)
			}
			continue
		}
		if c, ok := t.Colls[k]; ok {
			arr, _ := v.([]any)
			for _, it := range arr {
				obj, _ := it.(map[string]any)
				// Children link back once the parent exists; a map copy keeps the caller's body intact.
				child := map[string]any{}
				for ck, cv := range obj {
					child[ck] = cv
				}
				child[c.Back[0]] = map[string]any{"ID": rec.id}
				var cur *record
				if id, has := obj["ID"]; has {
					cur = e.recs[strings.ToLower(str(id))]
				}
				deferred = append(deferred, func() {
					m := modeMerge
					if cur == nil {
						m = modeCreate
					}
					_, cm := s.applyWrite(e, s.schema.get(c.Set), cur, child, m)
					muts = append(muts, cm...)
				})
			}
		}
	}
	if t.Set == SetInvoice {
		if rec.refs["Phase"] == "" {
			s.setRef(e, rec, "Phase", e.phases[phaseDraft])
		}
		if newPhase := s.phaseCode(e, rec); newPhase == phaseSent && !frozenPhase(oldPhase) {
			s.finalizeLocked(e, rec, now)
		}
	}
	rec.f["LastMutationDate"] = now.Format(time.RFC3339)
	for _, d := range deferred {
		d()
	}
	s.computeLocked(e, rec)
	action := "update"
	if create {
		action = "create"
	}
	return rec, append([]mutation{{t.Set, rec.id, action}}, muts...)
}

// finalizeLocked assigns the invoice number and date when an invoice becomes Sent (H12): year
// followed by a per-environment sequence, and a due date from the customer's payment term.
func (s *Simulator) finalizeLocked(e *env, inv *record, now time.Time) {
	e.invoiceSeq++
	inv.f["Number"] = fmt.Sprintf("%d%05d", now.Year(), e.invoiceSeq)
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	if inv.f[s.opts.InvoiceDateField] == nil {
		inv.f[s.opts.InvoiceDateField] = day.Format(time.RFC3339)
	}
	if inv.f[s.opts.DueDateField] == nil {
		if rel := e.recs[inv.refs["Relationship"]]; rel != nil {
			if n, ok := rel.f["PaymentTermInDays"].(json.Number); ok {
				if days, err := n.Int64(); err == nil {
					d, _ := parseTime(str(inv.f[s.opts.InvoiceDateField]))
					inv.f[s.opts.DueDateField] = d.AddDate(0, 0, int(days)).Format(time.RFC3339)
				}
			}
		}
	}
}

// gate answers "entity type not found" for the invoice sets when the module is off (C2).
func (s *Simulator) gate(e *env, set string) error {
	if e.InvoicingDisabled && (set == SetInvoice || set == SetInvoicePhase || set == SetProductLine) {
		return errf(http.StatusNotFound, "EntityTypeNotFound", "entity type not found: %s", set)
	}
	return nil
}

// writeLocked checks and applies one API write, then queues its webhooks.
func (s *Simulator) writeLocked(e *env, t *entityType, rec *record, body map[string]any, mode writeMode) (*record, error) {
	if err := s.checkWrite(e, t, rec, body, 0); err != nil {
		return nil, err
	}
	r, muts := s.applyWrite(e, t, rec, body, mode)
	s.fireLocked(e, muts)
	return r, nil
}

// deleteAPI deletes one record. Deleting a relationship leaves its relations (S12).
func (s *Simulator) deleteAPI(e *env, t *entityType, rec *record) error {
	if t.ReadOnly || t.NoDelete {
		return errf(http.StatusMethodNotAllowed, "MethodNotAllowed", "%s records cannot be deleted through the API", rec.set)
	}
	if err := s.gate(e, rec.set); err != nil {
		return err
	}
	if rec.set == SetInvoice && frozenPhase(s.phaseCode(e, rec)) {
		return errf(http.StatusBadRequest, "InvoiceFinalized", "invoice %s is %s and cannot be deleted", rec.id, s.phaseCode(e, rec))
	}
	var muts []mutation
	if rec.set == SetInvoice {
		for _, l := range e.children(rec.id, collDef{SetProductLine, []string{"Activity"}}) {
			s.deleteLocked(e, l)
			muts = append(muts, mutation{SetProductLine, l.id, "delete"})
		}
	}
	inv := e.recs[rec.refs["Activity"]]
	if inv != nil && inv.set == SetInvoice && frozenPhase(s.phaseCode(e, inv)) {
		return errf(http.StatusBadRequest, "InvoiceFinalized", "invoice %s is %s; its product lines can no longer be changed", inv.id, s.phaseCode(e, inv))
	}
	s.deleteLocked(e, rec)
	if inv != nil {
		s.computeLocked(e, inv)
	}
	s.fireLocked(e, append([]mutation{{rec.set, rec.id, "delete"}}, muts...))
	return nil
}
