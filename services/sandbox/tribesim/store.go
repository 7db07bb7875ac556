package tribesim

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// record is one stored entity. Scalars hold JSON values (nil, string, json.Number, bool, or any
// JSON for custom fields); single navigations are kept as IDs in refs.
type record struct {
	id   string
	set  string
	f    map[string]any
	refs map[string]string
}

// env is one Tribe environment (tenant).
type env struct {
	EnvironmentSpec
	recs  map[string]*record
	bySet map[string][]string // IDs in insertion order: the default order of list answers
	// back indexes the records referring to an ID, for collection navigations.
	back map[string]map[string]bool

	ownOrg, identity, employee, employeePerson string
	phases                                     map[string]string // code → ID
	invoiceSeq                                 int

	webhooks   map[string]*webhookReg
	webhookOrd []string
	dl         *deliverer // its webhook deliveries (delivererLocked)
	faults     Faults
	deliveries []Delivery
	requests   []Request
	tokensFrom time.Time // tokens issued before are expired
}

// EnvironmentSpec describes an environment to create.
type EnvironmentSpec struct {
	// ID names the environment in the admin API. Default a generated "env-N".
	ID string `json:"id"`
	// Name is the own organisation's name. Default "Koppel Demo B.V.".
	Name string `json:"name"`
	// ClientID and ClientSecret are the environment's OAuth client. Defaults are generated.
	ClientID     string `json:"clientId"`
	ClientSecret string `json:"clientSecret"`
	// Scopes granted to the client. Default read, write.
	Scopes []string `json:"scopes"`
	// InvoicingDisabled simulates an environment without the Billing/Invoicing module: the
	// invoice sets answer "entity type not found".
	InvoicingDisabled bool `json:"invoicingDisabled"`
	// Units are units the environment has besides the built-in ones (PCS, HOUR, DAY, MONTH,
	// KM), as an administrator adds them under Configuration.
	Units []UnitSpec `json:"units,omitempty"`
	// Generate fills the environment with generated data.
	Generate *GenerateSpec `json:"generate,omitempty"`
}

// UnitSpec is one unit of an environment.
type UnitSpec struct {
	Code string `json:"code"`
	Name string `json:"name"`
}

// EnvironmentInfo describes a created environment.
type EnvironmentInfo struct {
	ID                string            `json:"id"`
	Name              string            `json:"name"`
	ClientID          string            `json:"clientId"`
	ClientSecret      string            `json:"clientSecret"`
	Scopes            []string          `json:"scopes"`
	OwnOrganizationID string            `json:"ownOrganizationId"`
	IdentityID        string            `json:"identityId"`
	EmployeeID        string            `json:"employeeId"`
	Phases            map[string]string `json:"phases"`
	Counts            map[string]int    `json:"counts"`
	InvoicingDisabled bool              `json:"invoicingDisabled"`
}

// CreateEnvironment creates an environment with its own organisation, virtual employee and
// seeded lookups, and generated data when spec asks for it.
func (s *Simulator) CreateEnvironment(spec EnvironmentSpec) (EnvironmentInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if spec.ID == "" {
		spec.ID = fmt.Sprintf("env-%d", len(s.envOrd)+1)
	}
	if _, dup := s.envs[spec.ID]; dup {
		return EnvironmentInfo{}, fmt.Errorf("create environment: %q exists", spec.ID)
	}
	if spec.ClientID == "" {
		spec.ClientID = "client-" + spec.ID
	}
	for _, e := range s.envs {
		if e.ClientID == spec.ClientID {
			return EnvironmentInfo{}, fmt.Errorf("create environment: client id %q is taken", spec.ClientID)
		}
	}
	if spec.ClientSecret == "" {
		spec.ClientSecret = s.randHex(24)
	}
	if spec.Scopes == nil {
		spec.Scopes = []string{"read", "write"}
	}
	if spec.Name == "" {
		spec.Name = "Koppel Demo B.V."
	}
	if len(spec.Units) > 100 {
		return EnvironmentInfo{}, errors.New("create environment: at most 100 units")
	}
	for _, u := range spec.Units {
		if strings.TrimSpace(u.Code) == "" || strings.TrimSpace(u.Name) == "" {
			return EnvironmentInfo{}, errors.New("create environment: every unit needs a code and a name")
		}
	}
	e := &env{EnvironmentSpec: spec, webhooks: map[string]*webhookReg{}}
	s.envs[spec.ID] = e
	s.envOrd = append(s.envOrd, spec.ID)
	if err := s.resetLocked(e); err != nil {
		return EnvironmentInfo{}, err
	}
	return s.infoLocked(e), nil
}

func (s *Simulator) infoLocked(e *env) EnvironmentInfo {
	counts := map[string]int{}
	for set, ids := range e.bySet {
		if len(ids) > 0 {
			counts[set] = len(ids)
		}
	}
	return EnvironmentInfo{ID: e.ID, Name: e.Name, ClientID: e.ClientID, ClientSecret: e.ClientSecret, Scopes: e.Scopes,
		OwnOrganizationID: e.ownOrg, IdentityID: e.identity, EmployeeID: e.employee, Phases: maps(e.phases), Counts: counts,
		InvoicingDisabled: e.InvoicingDisabled}
}

func maps(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// resetLocked empties e and seeds the base data: lookups, own organisation, identity, employee,
// then generated data.
func (s *Simulator) resetLocked(e *env) error {
	e.recs, e.bySet, e.back = map[string]*record{}, map[string][]string{}, map[string]map[string]bool{}
	e.phases, e.invoiceSeq = map[string]string{}, 0
	lk := s.opts.Lookups
	seed := func(set, code, name string, extra map[string]any) string {
		f := map[string]any{"Code": code, "Name": name}
		for k, v := range extra {
			f[k] = v
		}
		return s.insertLocked(e, set, f, nil).id
	}
	for _, p := range [][2]string{{phaseDraft, "Concept"}, {phaseSent, "Verzonden"}, {phasePaid, "Betaald"}} {
		e.phases[p[0]] = seed(SetInvoicePhase, p[0], p[1], nil)
	}
	for _, c := range [][2]string{{"NL", "Nederland"}, {"BE", "België"}, {"DE", "Duitsland"}, {"FR", "Frankrijk"}, {"GB", "Verenigd Koninkrijk"}} {
		seed(SetCountry, c[0], c[1], nil)
	}
	for _, c := range [][2]string{{"Visiting", "Bezoekadres"}, {"Postal", "Postadres"}, {"Invoice", "Factuuradres"}} {
		seed(SetAddressType, c[0], c[1], nil)
	}
	for _, c := range [][2]string{{"PCS", "Stuk"}, {"HOUR", "Uur"}, {"DAY", "Dag"}, {"MONTH", "Maand"}, {"KM", "Kilometer"}} {
		seed(lk.Unit, c[0], c[1], nil)
	}
	for _, u := range e.Units {
		seed(lk.Unit, u.Code, u.Name, nil)
	}
	for _, c := range []struct{ code, name, pct string }{{"HIGH", "Hoog 21%", "21"}, {"LOW", "Laag 9%", "9"}, {"ZERO", "0%", "0"}, {"EXEMPT", "Vrijgesteld", "0"}} {
		seed(lk.VatGroup, c.code, c.name, map[string]any{"Percentage": json.Number(c.pct)})
	}
	for _, c := range [][2]string{{"8000", "Omzet diensten"}, {"8010", "Omzet producten"}, {"8020", "Omzet licenties"}} {
		seed(lk.GeneralLedgerAccount, c[0], c[1], nil)
	}
	for _, c := range [][2]string{{"SERV", "Diensten"}, {"PROD", "Producten"}, {"LIC", "Licenties"}} {
		seed(lk.ProductGroup, c[0], c[1], nil)
	}
	own := s.insertLocked(e, SetOrganization, map[string]any{"Name": e.Name, "IsActive": true}, nil)
	e.ownOrg = own.id
	e.identity = s.insertLocked(e, SetIdentity, map[string]any{"Name": e.Name}, map[string]string{"Relation": own.id, "Organization": own.id}).id
	person := s.insertLocked(e, SetPerson, map[string]any{"FirstName": "API", "LastName": "Koppeling", "IsActive": true}, nil)
	e.employeePerson = person.id
	e.employee = s.insertLocked(e, SetEmployee, map[string]any{"Name": "API Koppeling"}, map[string]string{"Relation": own.id, "Person": person.id}).id
	if e.Generate != nil {
		return s.generateLocked(e, *e.Generate)
	}
	return nil
}

// insertLocked stores a new record without validation or webhooks (seeding).
func (s *Simulator) insertLocked(e *env, set string, f map[string]any, refs map[string]string) *record {
	now := s.opts.Now().UTC().Format(time.RFC3339)
	r := &record{id: s.newID(), set: set, f: map[string]any{}, refs: map[string]string{}}
	for k, v := range f {
		r.f[k] = v
	}
	r.f["CreationDate"], r.f["LastMutationDate"] = now, now
	e.recs[r.id] = r
	e.bySet[set] = append(e.bySet[set], r.id)
	for k, v := range refs {
		s.setRef(e, r, k, v)
	}
	s.computeLocked(e, r)
	return r
}

func (s *Simulator) setRef(e *env, r *record, nav, id string) {
	if old, ok := r.refs[nav]; ok {
		delete(e.back[old], r.id)
	}
	if id == "" {
		delete(r.refs, nav)
		return
	}
	r.refs[nav] = id
	if e.back[id] == nil {
		e.back[id] = map[string]bool{}
	}
	e.back[id][r.id] = true
}

func (s *Simulator) deleteLocked(e *env, r *record) {
	for nav := range r.refs {
		s.setRef(e, r, nav, "")
	}
	delete(e.recs, r.id)
	e.bySet[r.set] = slices.DeleteFunc(e.bySet[r.set], func(id string) bool { return id == r.id })
}

// children lists the records of c.Set referring to id through one of c.Back, in insertion order.
func (e *env) children(id string, c collDef) []*record {
	var out []*record
	for cid := range e.back[id] {
		r := e.recs[cid]
		if r == nil || r.set != c.Set {
			continue
		}
		for _, b := range c.Back {
			if r.refs[b] == id {
				out = append(out, r)
				break
			}
		}
	}
	slices.SortFunc(out, func(a, b *record) int {
		return strings.Compare(a.f["CreationDate"].(string)+a.id, b.f["CreationDate"].(string)+b.id)
	})
	return out
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func dec(v any) decimal.Decimal {
	n, ok := v.(json.Number)
	if !ok {
		return decimal.Zero
	}
	d, err := decimal.NewFromString(string(n))
	if err != nil {
		return decimal.Zero
	}
	return d
}

func num(d decimal.Decimal) json.Number { return json.Number(d.String()) }

// computeLocked sets the server-computed fields of r (and of its parent invoice).
func (s *Simulator) computeLocked(e *env, r *record) {
	switch r.set {
	case SetPerson:
		var parts []string
		for _, k := range []string{"FirstName", "MiddleName", "LastName"} {
			if v := str(r.f[k]); v != "" {
				parts = append(parts, v)
			}
		}
		r.f["Name"] = strings.Join(parts, " ")
		sort := str(r.f["LastName"])
		if fn := strings.TrimSpace(str(r.f["FirstName"]) + " " + str(r.f["MiddleName"])); fn != "" {
			sort += ", " + fn
		}
		r.f["SortName"] = sort
	case SetProductLine:
		s.computeLineLocked(e, r)
		if inv := e.recs[r.refs["Activity"]]; inv != nil && inv.set == SetInvoice {
			s.computeInvoiceLocked(e, inv)
		}
	case SetInvoice:
		s.computeInvoiceLocked(e, r)
	}
}

// displayName is the computed _Name.
func (e *env) displayName(r *record) string {
	switch {
	case r.set == SetInvoice:
		return str(r.f["Subject"])
	case r.set == SetProductLine:
		return str(r.f["Description"])
	case r.set == SetAddress:
		return strings.TrimSpace(fmt.Sprintf("%s %v%s, %s", str(r.f["Street"]), r.f["HouseNumber"], str(r.f["HouseNumberSuffix"]), str(r.f["City"])))
	case strings.HasPrefix(r.set, "Relationship_"):
		if n := str(r.f["Name"]); n != "" {
			return n
		}
		for _, nav := range []string{"Organization", "Person"} {
			if c := e.recs[r.refs[nav]]; c != nil {
				return str(c.f["Name"])
			}
		}
		return ""
	case r.set == SetWebhook:
		return str(r.f["EntityType"])
	}
	return str(r.f["Name"])
}

// render turns r into its wire form under the query options o: every field of the type, null when
// unset, ID always, custom fields, and the expanded navigations.
func (s *Simulator) render(e *env, r *record, o *queryOpts, nested bool) map[string]any {
	t := s.schema.get(r.set)
	out := map[string]any{}
	want := func(f string) bool {
		if o == nil || o.sel == nil || f == "ID" {
			return true
		}
		return slices.Contains(o.sel, f) || slices.Contains(o.sel, "*")
	}
	for _, f := range t.Order {
		if !want(f) {
			continue
		}
		switch f {
		case "ID":
			out[f] = r.id
		case "_Type":
			out[f] = t.Type
		case "_Name":
			out[f] = e.displayName(r)
		default:
			out[f] = r.f[f]
		}
	}
	for k, v := range r.f {
		if isCustomField(k) && want(k) {
			out[k] = v
		}
	}
	if nested {
		out["@odata.id"] = fmt.Sprintf("%s(%s)", r.set, r.id)
	}
	if o == nil {
		return out
	}
	for _, nav := range o.expOrd {
		sub := o.expand[nav]
		if _, ok := t.Navs[nav]; ok {
			if c := e.recs[r.refs[nav]]; c != nil {
				out[nav] = s.render(e, c, sub, true)
			} else {
				out[nav] = nil
			}
			continue
		}
		if c, ok := t.Colls[nav]; ok {
			kids := e.children(r.id, c)
			items, err := s.selectLocked(e, kids, sub)
			if err != nil {
				items = kids
			}
			if sub != nil && sub.top >= 0 && sub.top < len(items) {
				items = items[:sub.top]
			}
			arr := make([]any, 0, len(items))
			for _, k := range items {
				arr = append(arr, s.render(e, k, sub, false))
			}
			out[nav] = arr
		}
		// Expanding a navigation the record's concrete type lacks (possible on base sets) yields nothing.
	}
	return out
}

// resolve gives the typed value of path on r for $filter and $orderby.
func (s *Simulator) resolve(e *env, r *record, segs []string, strict bool) (any, error) {
	cur := r
	for i, seg := range segs {
		if cur == nil {
			return nil, nil
		}
		t := s.schema.get(cur.set)
		last := i == len(segs)-1
		if !last {
			if _, ok := t.Navs[seg]; ok {
				cur = e.recs[cur.refs[seg]]
				continue
			}
			if _, ok := t.Colls[seg]; ok {
				return nil, errf(http.StatusBadRequest, "BadRequest", "$filter: collection navigation %q cannot be used in a path", seg)
			}
			if strict {
				return nil, errf(http.StatusBadRequest, "BadRequest", "$filter: %s has no navigation property %q", t.Set, seg)
			}
			return nil, nil
		}
		switch seg {
		case "ID":
			return guid(cur.id), nil
		case "_Type":
			return t.Type, nil
		case "_Name":
			return e.displayName(cur), nil
		}
		k, ok := t.kind(seg)
		if !ok {
			if isCustomField(seg) {
				return typedJSON(cur.f[seg]), nil
			}
			if _, nav := t.Navs[seg]; nav {
				return nil, errf(http.StatusBadRequest, "BadRequest", "$filter: %q is a navigation property; compare %s/ID", seg, seg)
			}
			if strict {
				return nil, errf(http.StatusBadRequest, "BadRequest", "$filter: %s has no property %q", t.Set, seg)
			}
			return nil, nil
		}
		v := cur.f[seg]
		if v == nil {
			return nil, nil
		}
		switch k {
		case kNumber, kInt:
			return typedJSON(v), nil
		case kTime:
			tm, err := parseTime(str(v))
			if err != nil {
				return nil, nil
			}
			return tm, nil
		}
		return v, nil
	}
	return nil, nil
}

func typedJSON(v any) any {
	if n, ok := v.(json.Number); ok {
		if r, ok := new(big.Rat).SetString(string(n)); ok {
			return r
		}
	}
	return v
}

// selectLocked filters and sorts recs under o (no paging).
func (s *Simulator) selectLocked(e *env, recs []*record, o *queryOpts) ([]*record, error) {
	if o == nil {
		return recs, nil
	}
	out := recs
	if o.filter != nil {
		out = nil
		for _, r := range recs {
			strict := !s.schema.get(r.set).Abstract
			ok, err := evalBool(o.filter, func(segs []string) (any, error) { return s.resolve(e, r, segs, strict) })
			if err != nil {
				if _, is := err.(*apiError); is {
					return nil, err
				}
				return nil, errf(http.StatusBadRequest, "BadRequest", "$filter: %v", err)
			}
			if ok {
				out = append(out, r)
			}
		}
	}
	if len(o.orderby) > 0 {
		out = slices.Clone(out)
		var sortErr error
		slices.SortStableFunc(out, func(a, b *record) int {
			for _, k := range o.orderby {
				va, err1 := s.resolve(e, a, k.path, false)
				vb, err2 := s.resolve(e, b, k.path, false)
				if err1 != nil || err2 != nil {
					sortErr = errf(http.StatusBadRequest, "BadRequest", "$orderby: bad path %s", strings.Join(k.path, "/"))
					return 0
				}
				c := cmpAny(va, vb)
				if k.desc {
					c = -c
				}
				if c != 0 {
					return c
				}
			}
			return 0
		})
		if sortErr != nil {
			return nil, sortErr
		}
	}
	return out, nil
}

// cmpAny orders values of one property; null sorts first.
func cmpAny(a, b any) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	for _, op := range []string{"lt", "gt"} {
		ok, err := compare(op, a, b)
		if err != nil {
			return 0
		}
		if ok {
			if op == "lt" {
				return -1
			}
			return 1
		}
	}
	return 0
}

// listSet gives the records of set (every set below it for a base set) in default order.
func (s *Simulator) listSet(e *env, set string) []*record {
	t := s.schema.get(set)
	var out []*record
	sets := []string{set}
	if t.Abstract {
		sets = nil
		for _, c := range s.schema.order {
			if below(c, set) && !s.schema.get(c).Abstract && c != SetWebhook {
				sets = append(sets, c)
			}
		}
	}
	for _, c := range sets {
		for _, id := range e.bySet[c] {
			out = append(out, e.recs[id])
		}
	}
	return out
}
