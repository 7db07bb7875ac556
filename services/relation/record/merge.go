package record

import (
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

// Merge settles the current Tribe and e-Boekhouden versions of a relation against the last-synced
// base, field by field: a field changed on one side only takes that side's value; a field changed
// on both sides to different values is a conflict, settled by FieldOwner and reported. All three
// are normalised first, so formatting differences are no changes.
func Merge(base, tribe, eb Relation) (Relation, []Conflict) {
	base, tribe, eb = base.Normalize(), tribe.Normalize(), eb.Normalize()
	tribe, eb = tribe.fillAbsent(base), eb.fillAbsent(base)
	merged := tribe
	merged.Absent = nil
	var conflicts []Conflict
	bv, tv, ev, mv := fields(&base), fields(&tribe), fields(&eb), fields(&merged)
	for i, f := range relationFields {
		b, t, e := bv[i].String(), tv[i].String(), ev[i].String()
		switch {
		case t == e:
			// Same on both sides: nothing to settle.
		case t == b:
			mv[i].SetString(e)
		case e == b:
			// Tribe's change stands (merged started as Tribe).
		default:
			winner := FieldOwner(f)
			if winner == EBoekhouden {
				mv[i].SetString(e)
			}
			conflicts = append(conflicts, Conflict{Field: f, Tribe: t, EBoekhouden: e, Winner: winner})
		}
	}
	if merged.Kind == "" {
		merged.Kind = eb.Kind
	}
	return merged.Normalize(), conflicts
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

// fillAbsent is FillFrom base, but for a person whose system keeps only the full name and that
// name changed: then the parts are derived from the new name.
func (r Relation) fillAbsent(base Relation) Relation {
	name := r.Name
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
