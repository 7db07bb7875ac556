package ebsim

import (
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

type paramKind int

const (
	pString paramKind = iota
	pInt
	pDate
	pBool
)

// cond is one parsed filter param[op]=value.
type cond struct {
	field  string
	kind   paramKind
	op     string
	s      string // string operand (lower-cased unless case-sensitive)
	lo, hi int64  // numeric operands; dates as yyyymmdd
}

var stringOps = map[string]bool{"eq": true, "not_eq": true, "like": true, "not_like": true}
var numberOps = map[string]bool{"eq": true, "not_eq": true, "gt": true, "gte": true, "lt": true, "lte": true, "range": true}

// listQuery is a parsed list request.
type listQuery struct {
	limit, offset int
	conds         []cond
	fold          bool
	always        bool // apply match even without conditions
}

// parseList reads limit, offset and the filters on the allowed parameters. Unknown parameters are
// ignored (like ASP.NET's binder); an unknown operator, a second filter on one parameter and a
// malformed value are ERR_002.
func (s *Simulator) parseList(r *http.Request, allowed map[string]paramKind) (listQuery, *apiError) {
	q := listQuery{limit: 100, fold: !s.opt.CaseSensitiveFilters}
	vals := r.URL.Query()
	if v, ok := vals["limit"]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(v[0]))
		if err != nil {
			return q, errBadValue("limit")
		}
		if n < 1 || n > s.opt.MaxLimit {
			return q, verr("PAGE_001", "limit", fmtErr("Limit must be between 1 and %d.", s.opt.MaxLimit))
		}
		q.limit = n
	}
	if v, ok := vals["offset"]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(v[0]))
		if err != nil {
			return q, errBadValue("offset")
		}
		if n < 0 {
			return q, verr("PAGE_002", "offset", "Offset must be greater than or equal to 0.")
		}
		q.offset = n
	}
	seen := map[string]bool{}
	for key, vs := range vals {
		field, op := key, "eq"
		if i := strings.IndexByte(key, '['); i >= 0 {
			if !strings.HasSuffix(key, "]") {
				return q, errBadValue(key)
			}
			field, op = key[:i], key[i+1:len(key)-1]
		}
		kind, ok := allowed[field]
		if !ok {
			continue
		}
		if seen[field] || len(vs) > 1 {
			return q, verr("ERR_002", field, "Only one filter can be applied to a parameter.")
		}
		seen[field] = true
		c := cond{field: field, kind: kind, op: op}
		val := vs[0]
		switch kind {
		case pString:
			if !stringOps[op] {
				return q, errBadValue(field)
			}
			c.s = val
			if q.fold {
				c.s = strings.ToLower(val)
			}
		case pBool:
			if op != "eq" && op != "not_eq" {
				return q, errBadValue(field)
			}
			b, err := strconv.ParseBool(val)
			if err != nil {
				return q, errBadValue(field)
			}
			c.lo = 0
			if b {
				c.lo = 1
			}
		case pInt, pDate:
			if !numberOps[op] {
				return q, errBadValue(field)
			}
			parse := parseIntVal
			if kind == pDate {
				parse = parseDateVal
			}
			if op == "range" {
				a, b, found := strings.Cut(val, ",")
				if !found {
					return q, errBadValue(field)
				}
				var ok1, ok2 bool
				c.lo, ok1 = parse(a)
				c.hi, ok2 = parse(b)
				if !ok1 || !ok2 {
					return q, errBadValue(field)
				}
			} else {
				var ok bool
				if c.lo, ok = parse(val); !ok {
					return q, errBadValue(field)
				}
			}
		}
		q.conds = append(q.conds, c)
	}
	return q, nil
}

func parseIntVal(s string) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	return n, err == nil
}

func parseDateVal(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	if len(s) > 10 && s[10] == 'T' {
		s = s[:10]
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return 0, false
	}
	return dateKey(t), true
}

func dateKey(t time.Time) int64 {
	return int64(t.Year()*10000 + int(t.Month())*100 + t.Day())
}

func (c *cond) matchString(v string, fold bool) bool {
	if fold {
		v = strings.ToLower(v)
	}
	switch c.op {
	case "eq":
		return v == c.s
	case "not_eq":
		return v != c.s
	case "like":
		return wildcard(c.s, v)
	case "not_like":
		return !wildcard(c.s, v)
	}
	return false
}

func (c *cond) matchInt(v int64) bool {
	switch c.op {
	case "eq":
		return v == c.lo
	case "not_eq":
		return v != c.lo
	case "gt":
		return v > c.lo
	case "gte":
		return v >= c.lo
	case "lt":
		return v < c.lo
	case "lte":
		return v <= c.lo
	case "range":
		return v >= c.lo && v <= c.hi
	}
	return false
}

// wildcard matches s against pattern with % (any run, possibly empty) and ? (one character),
// iteratively so hostile patterns cannot blow up.
func wildcard(pattern, s string) bool {
	p, x := 0, 0
	star, mark := -1, 0
	for x < len(s) {
		if p < len(pattern) && pattern[p] == '?' {
			_, w := utf8.DecodeRuneInString(s[x:])
			p++
			x += w
			continue
		}
		if p < len(pattern) && pattern[p] == '%' {
			star, mark = p, x
			p++
			continue
		}
		if p < len(pattern) && pattern[p] == s[x] {
			p++
			x++
			continue
		}
		if star >= 0 {
			p = star + 1
			_, w := utf8.DecodeRuneInString(s[mark:])
			mark += w
			x = mark
			continue
		}
		return false
	}
	for p < len(pattern) && pattern[p] == '%' {
		p++
	}
	return p == len(pattern)
}

// envelope is the {items, count} answer of a list.
type envelope[T any] struct {
	Items []T `json:"items"`
	Count int `json:"count"`
}

// pageOf filters items with match and returns the requested window with count per Options.Count.
func pageOf[T any, S any](s *Simulator, q listQuery, items []S, match func(S) bool, conv func(S) T) envelope[T] {
	out := envelope[T]{Items: make([]T, 0, min(q.limit, 256))}
	if len(q.conds) == 0 && !q.always {
		total := len(items)
		if q.offset < total {
			for _, it := range items[q.offset:min(total, q.offset+q.limit)] {
				out.Items = append(out.Items, conv(it))
			}
		}
		out.Count = len(out.Items)
		if s.opt.Count == CountTotal {
			out.Count = total
		}
		return out
	}
	n := 0
	for _, it := range items {
		if !match(it) {
			continue
		}
		if n >= q.offset && len(out.Items) < q.limit {
			out.Items = append(out.Items, conv(it))
		} else if len(out.Items) >= q.limit && s.opt.Count != CountTotal {
			break
		}
		n++
	}
	out.Count = len(out.Items)
	if s.opt.Count == CountTotal {
		out.Count = n
	}
	return out
}

// matchAll applies every condition through get, which returns a condition's field value as a
// string (string params) or an int64 (int, date and bool params).
func (q *listQuery) matchAll(str func(field string) string, num func(field string) int64) bool {
	for i := range q.conds {
		c := &q.conds[i]
		if c.kind == pString {
			if !c.matchString(str(c.field), q.fold) {
				return false
			}
		} else if !c.matchInt(num(c.field)) {
			return false
		}
	}
	return true
}
