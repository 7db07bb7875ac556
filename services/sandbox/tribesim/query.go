package tribesim

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// queryOpts are the parsed OData system query options of one request (or of one nested $expand).
type queryOpts struct {
	filter  node
	sel     []string // nil = all fields
	expand  map[string]*queryOpts
	expOrd  []string
	orderby []orderKey
	top     int // -1 = absent
	skip    int
	count   bool
	skipTok int // server paging position, from $skiptoken
}

type orderKey struct {
	path []string
	desc bool
}

// parseRawQuery splits a raw query string. The real server is reported not to decode '+' as a
// space (reference 1.3), so by default '+' stays a '+'.
func parseRawQuery(raw string, plusAsSpace bool) (map[string]string, error) {
	out := map[string]string{}
	for _, part := range strings.Split(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		if plusAsSpace {
			k, v = strings.ReplaceAll(k, "+", " "), strings.ReplaceAll(v, "+", " ")
		}
		var err error
		if k, err = url.PathUnescape(k); err != nil {
			return nil, fmt.Errorf("bad query parameter: %v", err)
		}
		if v, err = url.PathUnescape(v); err != nil {
			return nil, fmt.Errorf("bad value of %s: %v", k, err)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("query option %s given twice", k)
		}
		out[k] = v
	}
	return out, nil
}

func parseQueryOpts(q map[string]string, sc *schema, t *entityType) (*queryOpts, error) {
	o := &queryOpts{top: -1}
	for k, v := range q {
		var err error
		switch k {
		case "$filter":
			o.filter, err = parseFilter(v)
		case "$select", "$expand":
			err = o.parseSelectExpand(k, v, sc, t, 0)
		case "$orderby":
			o.orderby, err = parseOrderBy(v)
		case "$top", "$skip", "$skiptoken":
			n, perr := strconv.Atoi(v)
			if perr != nil || n < 0 {
				err = fmt.Errorf("must be a non-negative integer")
			}
			switch k {
			case "$top":
				o.top = n
			case "$skip":
				o.skip = n
			default:
				o.skipTok = n
			}
		case "$count":
			if v != "true" && v != "false" {
				err = fmt.Errorf("must be true or false")
			}
			o.count = v == "true"
		case "$format":
			if v != "json" && !strings.HasPrefix(v, "application/json") {
				err = fmt.Errorf("only json is supported")
			}
		default:
			if strings.HasPrefix(k, "$") {
				err = fmt.Errorf("query option not supported")
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %v", k, err)
		}
	}
	return o, nil
}

// splitTop splits s on sep outside parentheses.
func splitTop(s string, sep byte) ([]string, error) {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
			if depth < 0 {
				return nil, fmt.Errorf("unbalanced parentheses")
			}
		case sep:
			if depth == 0 {
				out = append(out, strings.TrimSpace(s[start:i]))
				start = i + 1
			}
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("unbalanced parentheses")
	}
	return append(out, strings.TrimSpace(s[start:])), nil
}

func (o *queryOpts) parseSelectExpand(k, v string, sc *schema, t *entityType, depth int) error {
	if depth > 8 {
		return fmt.Errorf("$expand nested too deeply")
	}
	items, err := splitTop(v, ',')
	if err != nil {
		return err
	}
	for _, it := range items {
		if it == "" {
			return fmt.Errorf("empty item")
		}
		if k == "$select" {
			if it != "*" && t != nil && !t.Abstract && !hasField(t, it) {
				return fmt.Errorf("unknown property %q", it)
			}
			o.sel = append(o.sel, it)
			continue
		}
		name, inner, hasInner := strings.Cut(it, "(")
		name = strings.TrimSpace(name)
		target, err := navTarget(sc, t, name)
		if err != nil {
			return err
		}
		sub := &queryOpts{top: -1}
		if hasInner {
			if !strings.HasSuffix(inner, ")") {
				return fmt.Errorf("bad expand %q", it)
			}
			parts, err := splitTop(strings.TrimSuffix(inner, ")"), ';')
			if err != nil {
				return err
			}
			for _, p := range parts {
				pk, pv, ok := strings.Cut(p, "=")
				if !ok {
					return fmt.Errorf("bad nested option %q", p)
				}
				switch pk {
				case "$select", "$expand":
					if err := sub.parseSelectExpand(pk, pv, sc, target, depth+1); err != nil {
						return err
					}
				case "$filter":
					if sub.filter, err = parseFilter(pv); err != nil {
						return err
					}
				case "$orderby":
					if sub.orderby, err = parseOrderBy(pv); err != nil {
						return err
					}
				case "$top":
					if sub.top, err = strconv.Atoi(pv); err != nil {
						return fmt.Errorf("bad nested $top")
					}
				default:
					return fmt.Errorf("nested option %s not supported", pk)
				}
			}
		}
		if o.expand == nil {
			o.expand = map[string]*queryOpts{}
		}
		if _, dup := o.expand[name]; !dup {
			o.expOrd = append(o.expOrd, name)
		}
		o.expand[name] = sub
	}
	return nil
}

func hasField(t *entityType, f string) bool {
	if _, ok := t.Fields[f]; ok {
		return true
	}
	if _, ok := t.Navs[f]; ok {
		return true
	}
	return isCustomField(f)
}

// navTarget is the entity type behind navigation name of t (nil when t is abstract: any set).
func navTarget(sc *schema, t *entityType, name string) (*entityType, error) {
	if t == nil || t.Abstract {
		return nil, nil
	}
	if n, ok := t.Navs[name]; ok {
		return sc.get(n.Target), nil
	}
	if c, ok := t.Colls[name]; ok {
		return sc.get(c.Set), nil
	}
	return nil, fmt.Errorf("%s has no navigation property %q", t.Set, name)
}

func parseOrderBy(v string) ([]orderKey, error) {
	var out []orderKey
	for _, it := range strings.Split(v, ",") {
		f := strings.Fields(it)
		if len(f) == 0 || len(f) > 2 {
			return nil, fmt.Errorf("bad order key %q", it)
		}
		k := orderKey{path: strings.Split(f[0], "/")}
		if len(f) == 2 {
			switch f[1] {
			case "asc":
			case "desc":
				k.desc = true
			default:
				return nil, fmt.Errorf("bad direction %q", f[1])
			}
		}
		out = append(out, k)
	}
	return out, nil
}

// isCustomField reports whether name is a custom field: a GUID with '-' replaced by "__" and a
// leading '_' (reference 1.3).
func isCustomField(name string) bool {
	if !strings.HasPrefix(name, "_") {
		return false
	}
	return reGUID.MatchString(strings.ReplaceAll(name[1:], "__", "-")) && len(name) == 1+32+4*2
}
