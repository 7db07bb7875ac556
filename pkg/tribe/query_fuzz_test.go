package tribe

import (
	"net/url"
	"strings"
	"testing"
)

// unquote reads an OData string literal: quoted, with every inner quote doubled. ok is false
// when the literal could end early (an undoubled quote), which is how a value would inject
// filter syntax.
func unquote(lit string) (string, bool) {
	if len(lit) < 2 || lit[0] != '\'' || lit[len(lit)-1] != '\'' {
		return "", false
	}
	inner := lit[1 : len(lit)-1]
	var b strings.Builder
	for i := 0; i < len(inner); i++ {
		if inner[i] == '\'' {
			if i+1 >= len(inner) || inner[i+1] != '\'' {
				return "", false
			}
			i++
		}
		b.WriteByte(inner[i])
	}
	return b.String(), true
}

// FuzzFilterBuilder: a value never escapes its literal, whatever it holds; a path that is not a
// property path is refused; a GUID literal is a GUID or refused; and the filter survives the
// query string, arriving at Tribe exactly as built.
func FuzzFilterBuilder(f *testing.F) {
	for _, c := range [][3]string{
		{"Name", "Peter's company", "b724d383-bb70-480a-b03d-512b9aaec15a"},
		{"Phase/Code", "Sent') or (1 eq 1", "B724D383-BB70-480A-B03D-512B9AAEC15A"},
		{"Organization/VisitingAddress/City", "a&$top=1#x %20+", "not-a-guid"},
		{"Name eq 'x' or ID", "''", "b724d383-bb70-480a-b03d-512b9aaec15a) or (1 eq 1"},
		{"_9ecc8d21__f69a", "\x00\n\t'\u00e9", ""},
	} {
		f.Add(c[0], c[1], c[2])
	}
	f.Fuzz(func(t *testing.T, path, value, guid string) {
		lit, err := Literal(value)
		if err != nil {
			t.Fatalf("Literal(%q): %v", value, err)
		}
		if got, ok := unquote(lit); !ok || got != value {
			t.Fatalf("Literal(%q) = %s, which reads back as %q (%v)", value, lit, got, ok)
		}
		if g, err := Literal(GUID(guid)); err == nil && (!ValidGUID(g) || g != strings.ToLower(guid)) {
			t.Fatalf("Literal(GUID(%q)) = %q", guid, g)
		}
		for _, fl := range []struct {
			f      Filter
			prefix string
			suffix string
		}{
			{Eq(path, value), path + " eq ", ""},
			{Contains(path, value), "contains(" + path + ",", ")"},
		} {
			if fl.f.Err() != nil {
				if rePath.MatchString(path) {
					t.Fatalf("a valid path %q refused: %v", path, fl.f.Err())
				}
				continue
			}
			if !rePath.MatchString(path) {
				t.Fatalf("path %q accepted", path)
			}
			expr := fl.f.String()
			rest, ok := strings.CutPrefix(expr, fl.prefix)
			rest, ok2 := strings.CutSuffix(rest, fl.suffix)
			if got, ok3 := unquote(rest); !ok || !ok2 || !ok3 || got != value {
				t.Fatalf("%q: the value does not stay inside its literal", expr)
			}
			// Through the query string, as sent.
			q := Q().Filter(And(fl.f, Eq("ID", GUID("b724d383-bb70-480a-b03d-512b9aaec15a")))).Top(5)
			vals, err := url.ParseQuery(q.Encode())
			if err != nil || vals.Get("$filter") != "("+expr+") and (ID eq b724d383-bb70-480a-b03d-512b9aaec15a)" || vals.Get("$top") != "5" || len(vals) != 2 {
				t.Fatalf("query %q reads back as %v (%v)", q.Encode(), vals, err)
			}
			if strings.Contains(q.Encode(), "+") {
				t.Fatalf("query %q has a '+', which Tribe is said not to read as a space", q.Encode())
			}
		}
	})
}
