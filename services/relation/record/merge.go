package record

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strings"
)

// Side names a system.
type Side string

// The two systems.
const (
	Tribe       Side = "tribe"
	EBoekhouden Side = "eboekhouden"
)

// Conflict is a field both systems changed, differently, since the last sync.
type Conflict struct {
	Field       string `json:"field"`
	Tribe       string `json:"tribe"`
	EBoekhouden string `json:"eboekhouden"`
	// Winner is the side whose value was kept.
	Winner Side `json:"winner"`
}

// Held is a field on which the two systems disagreed when their records first met (an import,
// a rebuild, a first match), with each side's value then. Nobody has told koppel which one is
// right, so it writes neither: the field stays as it is on both sides until a user edits it in
// one system (that edit then wins) or makes the two equal.
type Held struct {
	Tribe       string `json:"tribe"`
	EBoekhouden string `json:"eboekhouden"`
}

// CodeField is the Tribe number that holds a relation's e-Boekhouden code. e-Boekhouden has one
// code per relation whether customer or supplier; Tribe keeps a debtor and a creditor number.
type CodeField string

// Code fields. The zero value is the debtor number.
const (
	DebtorNumber   CodeField = ""
	CreditorNumber CodeField = "creditor"
)

// Synced is what a link remembers of its two records: the last values both systems agreed on,
// the fields held since first contact, and where Tribe keeps the code. Its stored form is the
// Relation's JSON with two more keys, so records stored before holds existed still decode.
type Synced struct {
	Relation
	Held      map[string]Held `json:"held,omitempty"`
	CodeField CodeField       `json:"code_field,omitempty"`
}

// Encode is the stored form of s.
func (s Synced) Encode() []byte {
	s.Relation = s.Relation.Normalize()
	if len(s.Held) == 0 {
		s.Held = nil
	}
	b, _ := json.Marshal(s)
	return b
}

// DecodeSynced reads a stored Synced; an empty one decodes to the zero Synced.
func DecodeSynced(b []byte) (Synced, error) {
	var s Synced
	if len(b) == 0 {
		return s, nil
	}
	err := json.Unmarshal(b, &s)
	return s, err
}

// TribeView is the record as Tribe shows it when nothing changed since s: the agreed values, and
// Tribe's own value of every held field. A Tribe record equal to it is an echo.
func (s Synced) TribeView() Relation {
	r := s.Relation.Normalize()
	v := fields(&r)
	for i, f := range relationFields {
		if h, ok := s.Held[f]; ok {
			v[i].SetString(h.Tribe)
		}
	}
	return r
}

// EBoekhoudenView is the record as e-Boekhouden shows it when nothing changed since s: the agreed
// values, and e-Boekhouden's own value of every held field.
func (s Synced) EBoekhoudenView() Relation {
	r := s.Relation.Normalize()
	v := fields(&r)
	for i, f := range relationFields {
		if h, ok := s.Held[f]; ok {
			v[i].SetString(h.EBoekhouden)
		}
	}
	return r
}

// Unmet reports whether s is the state of a link whose records have not met yet: a link
// made by matching (an import, a rebuild) before its first sync.
func (s Synced) Unmet() bool { return s.Kind == "" }

// FieldOwner is the documented rule for two-sided conflicts: the side that owns a field wins.
//
// e-Boekhouden owns what the bookkeeper answers for: the relation code (debtor number), the VAT
// and CoC numbers and the bank details, since they end up on invoices and payments. Tribe owns
// everything else — name, phone, website and addresses — since that is where relationship data is
// kept up to date.
func FieldOwner(field string) Side {
	switch field {
	case "code", "vat_number", "coc_number", "bic", "iban":
		return EBoekhouden
	}
	return Tribe
}

// Outcome is what a merge decided: what each system must hold, the new last-synced state, and
// what the tenant must hear of.
type Outcome struct {
	// Tribe and EBoekhouden are the records each system must hold; write a system only where
	// its current record differs (Diff after FillFrom).
	Tribe, EBoekhouden Relation
	Synced             Synced
	// Conflicts are fields both systems changed since the last sync, settled by FieldOwner.
	Conflicts []Conflict
	// Settled are held fields that stopped being held: made equal, or edited on one side.
	Settled []string
}

// Merge settles the current Tribe and e-Boekhouden versions of a relation against the last-synced
// state, field by field: a field changed on one side only takes that side's value; a field changed
// on both sides to different values is a conflict, settled by FieldOwner and reported. A held field
// stays as each side has it until one side changes it (that side wins) or both agree. All records
// are normalised first, so formatting differences are no changes.
func Merge(base Synced, tribe, eb Relation) Outcome {
	b := base.Relation.Normalize()
	tribe, eb = tribe.Normalize(), eb.Normalize()
	tribe, eb = tribe.fillAbsent(b, eb), eb.fillAbsent(b, tribe)
	out := Outcome{Tribe: tribe, EBoekhouden: eb, Synced: Synced{Relation: b, Held: maps.Clone(base.Held), CodeField: base.CodeField}}
	out.Tribe.Absent, out.EBoekhouden.Absent = nil, nil
	bv, tv, ev := fields(&b), fields(&tribe), fields(&eb)
	to, eo, so := fields(&out.Tribe), fields(&out.EBoekhouden), fields(&out.Synced.Relation)
	for i, f := range relationFields {
		bs, t, e := bv[i].String(), tv[i].String(), ev[i].String()
		var v string
		if h, held := base.Held[f]; held {
			tChanged, eChanged := t != h.Tribe, e != h.EBoekhouden
			switch {
			case t == e:
				v = t
			case !tChanged && !eChanged:
				// Still as it was at first contact: each side keeps its own value.
				continue
			case tChanged && !eChanged:
				v = t
			case eChanged && !tChanged:
				v = e
			default:
				v = settle(f, t, e, &out)
			}
			delete(out.Synced.Held, f)
			out.Settled = append(out.Settled, f)
		} else {
			switch {
			case t == e, e == bs:
				v = t
			case t == bs:
				v = e
			default:
				v = settle(f, t, e, &out)
			}
		}
		to[i].SetString(v)
		eo[i].SetString(v)
		so[i].SetString(v)
	}
	out.finish(tribe.Kind, eb.Kind)
	return out
}

// FirstContact settles two records that meet for the first time (an import matching an existing
// Tribe relation, a rebuild, a relation found again through the e-Boekhouden ID kept in Tribe).
// Nothing says which side is right, and the books are the bookkeeper's: e-Boekhouden is never
// written. A field empty in Tribe takes e-Boekhouden's value; every other difference is held.
func FirstContact(tribe, eb Relation, code CodeField) Outcome {
	tribe, eb = tribe.Normalize(), eb.Normalize()
	tribe, eb = tribe.fillAbsent(eb, eb), eb.fillAbsent(tribe, tribe)
	out := Outcome{Tribe: tribe, EBoekhouden: eb, Synced: Synced{Relation: eb, Held: map[string]Held{}, CodeField: code}}
	out.Tribe.Absent, out.EBoekhouden.Absent, out.Synced.Absent = nil, nil, nil
	tv, ev := fields(&tribe), fields(&eb)
	to := fields(&out.Tribe)
	for i, f := range relationFields {
		t, e := tv[i].String(), ev[i].String()
		switch {
		case t == e:
		case t == "":
			to[i].SetString(e)
		default:
			out.Synced.Held[f] = Held{Tribe: t, EBoekhouden: e}
		}
	}
	out.finish(tribe.Kind, eb.Kind)
	return out
}

// settle decides a field both sides changed, by its owner, and records the conflict.
func settle(field, t, e string, out *Outcome) string {
	winner := FieldOwner(field)
	out.Conflicts = append(out.Conflicts, Conflict{Field: field, Tribe: t, EBoekhouden: e, Winner: winner})
	if winner == EBoekhouden {
		return e
	}
	return t
}

func (o *Outcome) finish(tribeKind, ebKind Kind) {
	kind := tribeKind
	if kind == "" {
		kind = ebKind
	}
	o.Tribe.Kind, o.EBoekhouden.Kind, o.Synced.Kind = kind, kind, kind
	o.Tribe, o.EBoekhouden, o.Synced.Relation = o.Tribe.Normalize(), o.EBoekhouden.Normalize(), o.Synced.Relation.Normalize()
	if len(o.Synced.Held) == 0 {
		o.Synced.Held = nil
	}
}

// HeldFields lists the held fields of s in a stable order.
func (s Synced) HeldFields() []string {
	return slices.Sorted(maps.Keys(s.Held))
}

// FieldLabel is a field's name in words, such as "invoice address city".
func FieldLabel(field string) string {
	return strings.NewReplacer("_", " ", ".", " ").Replace(field)
}

// relationFields are the JSON names of every string field of Relation, in order, including the
// address fields as "invoice_address.line" and so on.
var relationFields = fieldNames(reflect.TypeFor[Relation](), "")

func fieldNames(t reflect.Type, prefix string) []string {
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		name := prefix + jsonName(f)
		switch f.Type.Kind() {
		case reflect.Struct:
			names = append(names, fieldNames(f.Type, name+".")...)
		case reflect.String:
			if f.Type == reflect.TypeFor[Kind]() {
				continue
			}
			names = append(names, name)
		}
	}
	return names
}

func jsonName(f reflect.StructField) string {
	tag := f.Tag.Get("json")
	for i := range len(tag) {
		if tag[i] == ',' {
			return tag[:i]
		}
	}
	return tag
}

// fields returns settable values of r's string fields in relationFields order.
func fields(r *Relation) []reflect.Value {
	var out []reflect.Value
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		for i := range v.NumField() {
			f := v.Field(i)
			switch f.Kind() {
			case reflect.Struct:
				walk(f)
			case reflect.String:
				if f.Type() == reflect.TypeFor[Kind]() {
					continue
				}
				out = append(out, f)
			}
		}
	}
	walk(reflect.ValueOf(r).Elem())
	return out
}

// Diff lists the fields whose values differ between a and b (after normalising).
func Diff(a, b Relation) []string {
	a, b = a.Normalize(), b.Normalize()
	av, bv := fields(&a), fields(&b)
	var changed []string
	for i, f := range relationFields {
		if av[i].String() != bv[i].String() {
			changed = append(changed, f)
		}
	}
	return changed
}

// FillFrom takes the fields r's system does not keep (r.Absent) from o, so comparing r with o
// sees only what r's system can say.
func (r Relation) FillFrom(o Relation) Relation {
	if len(r.Absent) == 0 {
		return r
	}
	rv, ov := fields(&r), fields(&o)
	for i, f := range relationFields {
		if slices.Contains(r.Absent, f) {
			rv[i].SetString(ov[i].String())
		}
	}
	return r
}

// fillAbsent fills the fields r's system does not keep from base, so they count as unchanged.
// A person whose system keeps only the full name gets its parts from the other side when the
// two full names are equal, and else, when the name changed since base, from splitting it.
func (r Relation) fillAbsent(base, other Relation) Relation {
	name := r.Name
	if r.Kind == Person && slices.Contains(r.Absent, "last_name") && name == other.Name {
		r = r.FillFrom(other)
		r.Name = name
		return r
	}
	r = r.FillFrom(base)
	r.Name = name
	if r.Kind == Person && slices.Contains(r.Absent, "last_name") && r.Name != base.Name {
		r.FirstName, r.MiddleName, r.LastName = SplitPersonName(r.Name)
	}
	return r
}

// SplitPersonName splits a full name into first name, middle part ("van der") and last name:
// the first word is the first name, the last word the last name, the rest the middle. A single
// word is a last name (Tribe requires one).
func SplitPersonName(name string) (first, middle, last string) {
	words := strings.Fields(name)
	switch len(words) {
	case 0:
		return "", "", ""
	case 1:
		return "", "", words[0]
	}
	return words[0], strings.Join(words[1:len(words)-1], " "), words[len(words)-1]
}
