package tribe

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// GUID is an entity ID. As a filter literal it is written unquoted, as OData v4 wants; the
// simulator accepts it quoted too.
type GUID string

// Date is a calendar date, written as an unquoted 2006-01-02 literal.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// Filter is a $filter expression. Build it with the functions below, which quote literals
// correctly; the zero Filter means no filter. An invalid part (a bad path or literal) makes the
// whole filter invalid, and the request using it fails before anything is sent.
type Filter struct {
	expr string
	err  error
}

// Err reports why the filter is invalid.
func (f Filter) Err() error { return f.err }

// String is the expression as sent (unescaped).
func (f Filter) String() string { return f.expr }

var (
	rePath = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*$`)
	reGUID = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

// ValidGUID reports whether s is a GUID.
func ValidGUID(s string) bool { return reGUID.MatchString(s) }

// Literal writes v as an OData literal: strings quoted with ” for ', GUIDs, dates and
// date-times unquoted, decimals exactly, nil as null.
func Literal(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "null", nil
	case string:
		return "'" + strings.ReplaceAll(x, "'", "''") + "'", nil
	case GUID:
		if !reGUID.MatchString(string(x)) {
			return "", fmt.Errorf("literal: %q is not a GUID", string(x))
		}
		return strings.ToLower(string(x)), nil
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano), nil
	case Date:
		return fmt.Sprintf("%04d-%02d-%02d", x.Year, x.Month, x.Day), nil
	case decimal.Decimal:
		return x.String(), nil
	case *decimal.Decimal:
		if x == nil {
			return "null", nil
		}
		return x.String(), nil
	case bool:
		return strconv.FormatBool(x), nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case int32:
		return strconv.FormatInt(int64(x), 10), nil
	case uint:
		return strconv.FormatUint(uint64(x), 10), nil
	case uint64:
		return strconv.FormatUint(x, 10), nil
	case float64:
		// Not for money (use decimal.Decimal): for coordinates and the like.
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	}
	return "", fmt.Errorf("literal: unsupported type %T", v)
}

func cmp(op, path string, v any) Filter {
	if !rePath.MatchString(path) {
		return Filter{err: fmt.Errorf("filter: bad property path %q", path)}
	}
	lit, err := Literal(v)
	if err != nil {
		return Filter{err: fmt.Errorf("filter %s: %w", path, err)}
	}
	return Filter{expr: path + " " + op + " " + lit}
}

// Eq is path eq v.
func Eq(path string, v any) Filter { return cmp("eq", path, v) }

// Ne is path ne v.
func Ne(path string, v any) Filter { return cmp("ne", path, v) }

// Gt is path gt v.
func Gt(path string, v any) Filter { return cmp("gt", path, v) }

// Ge is path ge v.
func Ge(path string, v any) Filter { return cmp("ge", path, v) }

// Lt is path lt v.
func Lt(path string, v any) Filter { return cmp("lt", path, v) }

// Le is path le v.
func Le(path string, v any) Filter { return cmp("le", path, v) }

func fn(name, path, s string) Filter {
	if !rePath.MatchString(path) {
		return Filter{err: fmt.Errorf("filter: bad property path %q", path)}
	}
	lit, _ := Literal(s)
	return Filter{expr: name + "(" + path + "," + lit + ")"}
}

// Contains is contains(path,'s'); Tribe compares case-insensitively.
func Contains(path, s string) Filter { return fn("contains", path, s) }

// StartsWith is startswith(path,'s').
func StartsWith(path, s string) Filter { return fn("startswith", path, s) }

// EndsWith is endswith(path,'s').
func EndsWith(path, s string) Filter { return fn("endswith", path, s) }

func join(op string, fs []Filter) Filter {
	var parts []string
	var errs []error
	for _, f := range fs {
		if f.err != nil {
			errs = append(errs, f.err)
			continue
		}
		if f.expr != "" {
			parts = append(parts, "("+f.expr+")")
		}
	}
	if len(errs) > 0 {
		return Filter{err: errors.Join(errs...)}
	}
	if len(parts) == 1 {
		return Filter{expr: strings.TrimSuffix(strings.TrimPrefix(parts[0], "("), ")")}
	}
	return Filter{expr: strings.Join(parts, " "+op+" ")}
}

// And joins filters with and; zero filters are skipped.
func And(fs ...Filter) Filter { return join("and", fs) }

// Or joins filters with or; zero filters are skipped.
func Or(fs ...Filter) Filter { return join("or", fs) }

// Not negates f.
func Not(f Filter) Filter {
	if f.err != nil || f.expr == "" {
		return f
	}
	return Filter{expr: "not (" + f.expr + ")"}
}

// Raw is a hand-written expression, for what the builders above do not cover.
func Raw(expr string) Filter { return Filter{expr: expr} }

// Query holds the OData query options of one request. Its methods return a modified copy, so a
// Query value can be shared and extended.
type Query struct {
	filter  Filter
	sel     []string
	expand  []expandItem
	orderby []string
	top     int
	skip    int
	hasTop  bool
	count   bool
	bulk    bool
	err     error
}

type expandItem struct {
	nav string
	sub *Query
}

// Q returns an empty Query.
func Q() Query { return Query{} }

func (q Query) fail(err error) Query {
	if q.err == nil {
		q.err = err
	}
	return q
}

// Filter sets $filter (replacing any earlier one; combine with And).
func (q Query) Filter(f Filter) Query {
	q.filter = f
	if f.err != nil {
		return q.fail(f.err)
	}
	return q
}

// Select adds properties to $select. ID is always returned.
func (q Query) Select(props ...string) Query {
	for _, p := range props {
		if !rePath.MatchString(p) || strings.Contains(p, "/") {
			return q.fail(fmt.Errorf("query: bad $select property %q", p))
		}
	}
	q.sel = append(q.sel[:len(q.sel):len(q.sel)], props...)
	return q
}

// Expand adds a navigation to $expand, with nested options when sub is given
// (Nav($select=…;$expand=…)).
func (q Query) Expand(nav string, sub ...Query) Query {
	if !rePath.MatchString(nav) || strings.Contains(nav, "/") {
		return q.fail(fmt.Errorf("query: bad $expand navigation %q", nav))
	}
	it := expandItem{nav: nav}
	if len(sub) > 0 {
		s := sub[0]
		if s.err != nil {
			return q.fail(s.err)
		}
		it.sub = &s
	}
	q.expand = append(q.expand[:len(q.expand):len(q.expand)], it)
	return q
}

// OrderBy adds ascending keys to $orderby.
func (q Query) OrderBy(paths ...string) Query { return q.order("", paths) }

// OrderByDesc adds descending keys to $orderby.
func (q Query) OrderByDesc(paths ...string) Query { return q.order(" desc", paths) }

func (q Query) order(dir string, paths []string) Query {
	for _, p := range paths {
		if !rePath.MatchString(p) {
			return q.fail(fmt.Errorf("query: bad $orderby path %q", p))
		}
		q.orderby = append(q.orderby[:len(q.orderby):len(q.orderby)], p+dir)
	}
	return q
}

// Top limits the number of records (across pages when listing).
func (q Query) Top(n int) Query {
	if n < 0 {
		return q.fail(fmt.Errorf("query: negative $top"))
	}
	q.top, q.hasTop = n, true
	return q
}

// Skip skips the first n records.
func (q Query) Skip(n int) Query {
	if n < 0 {
		return q.fail(fmt.Errorf("query: negative $skip"))
	}
	q.skip = n
	return q
}

// Bulk lists in pages of Config.BulkPageSize instead of Config.PageSize: for reading a whole set
// once (selecting few fields), where the number of calls matters more than the size of each.
func (q Query) Bulk() Query { q.bulk = true; return q }

// Count asks for @odata.count.
func (q Query) Count() Query { q.count = true; return q }

// Err reports why the query is invalid.
func (q Query) Err() error { return q.err }

func (q Query) inner() string {
	var parts []string
	if len(q.sel) > 0 {
		parts = append(parts, "$select="+strings.Join(q.sel, ","))
	}
	if len(q.expand) > 0 {
		parts = append(parts, "$expand="+q.expandString())
	}
	if q.filter.expr != "" {
		parts = append(parts, "$filter="+q.filter.expr)
	}
	if len(q.orderby) > 0 {
		parts = append(parts, "$orderby="+strings.Join(q.orderby, ","))
	}
	if q.hasTop {
		parts = append(parts, "$top="+strconv.Itoa(q.top))
	}
	return strings.Join(parts, ";")
}

func (q Query) expandString() string {
	var items []string
	for _, e := range q.expand {
		s := e.nav
		if e.sub != nil {
			if in := e.sub.inner(); in != "" {
				s += "(" + in + ")"
			}
		}
		items = append(items, s)
	}
	return strings.Join(items, ",")
}

// params returns the options as ordered key/value pairs; top and skip are the effective page.
func (q Query) params(top, skip int, withTop bool) [][2]string {
	var out [][2]string
	if q.filter.expr != "" {
		out = append(out, [2]string{"$filter", q.filter.expr})
	}
	if len(q.sel) > 0 {
		out = append(out, [2]string{"$select", strings.Join(q.sel, ",")})
	}
	if len(q.expand) > 0 {
		out = append(out, [2]string{"$expand", q.expandString()})
	}
	if len(q.orderby) > 0 {
		out = append(out, [2]string{"$orderby", strings.Join(q.orderby, ",")})
	}
	if withTop {
		out = append(out, [2]string{"$top", strconv.Itoa(top)})
	}
	if skip > 0 {
		out = append(out, [2]string{"$skip", strconv.Itoa(skip)})
	}
	if q.count {
		out = append(out, [2]string{"$count", "true"})
	}
	return out
}

// Encode is the query string as sent: values percent-encoded with spaces as %20, never '+',
// which Tribe is reported not to decode (reference 1.3).
func (q Query) Encode() string { return encodeParams(q.params(q.top, q.skip, q.hasTop)) }

func encodeParams(ps [][2]string) string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p[0])
		b.WriteByte('=')
		b.WriteString(escape(p[1]))
	}
	return b.String()
}

func escape(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }
