package tribesim

import (
	"fmt"
	"math/big"
	"regexp"
	"strings"
	"time"
)

// The $filter subset of section 1.3 of the reference: eq ne gt ge lt le, and or not, parentheses,
// contains/startswith/endswith (case-insensitive), navigation paths, string literals with ''
// escapes, numbers, true/false/null, unquoted GUIDs and DateTimeOffsets. `in` and `has` are
// documented as unsupported and rejected.

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tString
	tNumber
	tTime
	tGUID
	tLParen
	tRParen
	tComma
	tSlash
)

type token struct {
	kind tokKind
	text string
	pos  int
}

var (
	reGUID = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)
	reTime = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?`)
	reNum  = regexp.MustCompile(`^-?\d+(\.\d+)?([eE][+-]?\d+)?`)
)

func lex(s string) ([]token, error) {
	var out []token
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			out = append(out, token{tLParen, "(", i})
			i++
		case c == ')':
			out = append(out, token{tRParen, ")", i})
			i++
		case c == ',':
			out = append(out, token{tComma, ",", i})
			i++
		case c == '/':
			out = append(out, token{tSlash, "/", i})
			i++
		case c == '\'':
			var b strings.Builder
			j := i + 1
			for {
				if j >= len(s) {
					return nil, fmt.Errorf("unterminated string at %d", i)
				}
				if s[j] == '\'' {
					if j+1 < len(s) && s[j+1] == '\'' {
						b.WriteByte('\'')
						j += 2
						continue
					}
					break
				}
				b.WriteByte(s[j])
				j++
			}
			out = append(out, token{tString, b.String(), i})
			i = j + 1
		default:
			rest := s[i:]
			if m := reGUID.FindString(rest); m != "" && !identByte(rest, len(m)) {
				out = append(out, token{tGUID, m, i})
				i += len(m)
			} else if m := reTime.FindString(rest); m != "" && strings.Contains(m, "-") && !identByte(rest, len(m)) {
				out = append(out, token{tTime, m, i})
				i += len(m)
			} else if m := reNum.FindString(rest); m != "" {
				out = append(out, token{tNumber, m, i})
				i += len(m)
			} else if c == '_' || c == '@' || c == '$' || (c|0x20 >= 'a' && c|0x20 <= 'z') {
				j := i
				for j < len(s) && (s[j] == '_' || s[j] == '.' || s[j] == '@' || s[j] == '$' || isAlnum(s[j])) {
					j++
				}
				out = append(out, token{tIdent, s[i:j], i})
				i = j
			} else {
				return nil, fmt.Errorf("unexpected %q at %d", c, i)
			}
		}
	}
	return append(out, token{tEOF, "", len(s)}), nil
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func identByte(s string, i int) bool { return i < len(s) && (isAlnum(s[i]) || s[i] == '_') }

// node is a parsed $filter expression.
type node interface{}

type (
	binNode struct {
		op   string // and, or, eq, ne, gt, ge, lt, le
		l, r node
	}
	notNode  struct{ x node }
	callNode struct {
		fn   string
		args []node
	}
	pathNode struct{ segs []string }
	litNode  struct{ v any } // nil, string, *big.Rat, bool, time.Time, guid
)

type guid string

type parser struct {
	toks []token
	i    int
}

// parseFilter parses a $filter expression. It never panics: bad input gives an error.
func parseFilter(s string) (node, error) {
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	n, err := p.or(0)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, fmt.Errorf("unexpected %q at %d", t.text, t.pos)
	}
	return n, nil
}

const maxDepth = 64

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}
func (p *parser) keyword(k string) bool {
	t := p.peek()
	if t.kind == tIdent && t.text == k {
		p.i++
		return true
	}
	return false
}

func (p *parser) or(d int) (node, error) {
	if d > maxDepth {
		return nil, fmt.Errorf("expression nested too deeply")
	}
	l, err := p.and(d)
	if err != nil {
		return nil, err
	}
	for p.keyword("or") {
		r, err := p.and(d)
		if err != nil {
			return nil, err
		}
		l = binNode{"or", l, r}
	}
	return l, nil
}

func (p *parser) and(d int) (node, error) {
	l, err := p.unary(d)
	if err != nil {
		return nil, err
	}
	for p.keyword("and") {
		r, err := p.unary(d)
		if err != nil {
			return nil, err
		}
		l = binNode{"and", l, r}
	}
	return l, nil
}

func (p *parser) unary(d int) (node, error) {
	if p.keyword("not") {
		x, err := p.unary(d + 1)
		if err != nil {
			return nil, err
		}
		return notNode{x}, nil
	}
	return p.comparison(d)
}

var compareOps = map[string]bool{"eq": true, "ne": true, "gt": true, "ge": true, "lt": true, "le": true}

func (p *parser) comparison(d int) (node, error) {
	l, err := p.primary(d)
	if err != nil {
		return nil, err
	}
	t := p.peek()
	if t.kind == tIdent && (t.text == "in" || t.text == "has") {
		return nil, fmt.Errorf("operator %q is not supported", t.text)
	}
	if t.kind == tIdent && compareOps[t.text] {
		p.next()
		r, err := p.primary(d)
		if err != nil {
			return nil, err
		}
		return binNode{t.text, l, r}, nil
	}
	return l, nil
}

var functions = map[string]int{"contains": 2, "startswith": 2, "endswith": 2, "tolower": 1, "toupper": 1}

func (p *parser) primary(d int) (node, error) {
	t := p.next()
	switch t.kind {
	case tLParen:
		n, err := p.or(d + 1)
		if err != nil {
			return nil, err
		}
		if p.next().kind != tRParen {
			return nil, fmt.Errorf("missing ) for ( at %d", t.pos)
		}
		return n, nil
	case tString:
		return litNode{t.text}, nil
	case tGUID:
		return litNode{guid(strings.ToLower(t.text))}, nil
	case tNumber:
		r, ok := new(big.Rat).SetString(t.text)
		if !ok {
			return nil, fmt.Errorf("bad number %q", t.text)
		}
		return litNode{r}, nil
	case tTime:
		tm, err := parseTime(t.text)
		if err != nil {
			return nil, fmt.Errorf("bad date %q", t.text)
		}
		return litNode{tm}, nil
	case tIdent:
		switch t.text {
		case "true", "false":
			return litNode{t.text == "true"}, nil
		case "null":
			return litNode{nil}, nil
		}
		if p.peek().kind == tLParen {
			n, ok := functions[t.text]
			if !ok {
				return nil, fmt.Errorf("function %q is not supported", t.text)
			}
			p.next()
			var args []node
			for {
				a, err := p.or(d + 1)
				if err != nil {
					return nil, err
				}
				args = append(args, a)
				if p.peek().kind == tComma {
					p.next()
					continue
				}
				break
			}
			if p.next().kind != tRParen {
				return nil, fmt.Errorf("missing ) after arguments of %s", t.text)
			}
			if len(args) != n {
				return nil, fmt.Errorf("%s takes %d arguments", t.text, n)
			}
			return callNode{t.text, args}, nil
		}
		segs := []string{t.text}
		for p.peek().kind == tSlash {
			p.next()
			s := p.next()
			if s.kind != tIdent {
				return nil, fmt.Errorf("bad path after %q", strings.Join(segs, "/"))
			}
			segs = append(segs, s.text)
		}
		return pathNode{segs}, nil
	}
	return nil, fmt.Errorf("unexpected %q at %d", t.text, t.pos)
}

func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("bad time %q", s)
}

// resolver gives the typed value of a property path on the record under test.
type resolver func(segs []string) (any, error)

func evalBool(n node, res resolver) (bool, error) {
	v, err := eval(n, res)
	if err != nil {
		return false, err
	}
	switch b := v.(type) {
	case bool:
		return b, nil
	case nil:
		return false, nil
	}
	return false, fmt.Errorf("expression is not boolean")
}

func eval(n node, res resolver) (any, error) {
	switch n := n.(type) {
	case litNode:
		return n.v, nil
	case pathNode:
		return res(n.segs)
	case notNode:
		b, err := evalBool(n.x, res)
		return !b, err
	case binNode:
		if n.op == "and" || n.op == "or" {
			l, err := evalBool(n.l, res)
			if err != nil {
				return nil, err
			}
			r, err := evalBool(n.r, res)
			if err != nil {
				return nil, err
			}
			if n.op == "and" {
				return l && r, nil
			}
			return l || r, nil
		}
		l, err := eval(n.l, res)
		if err != nil {
			return nil, err
		}
		r, err := eval(n.r, res)
		if err != nil {
			return nil, err
		}
		return compare(n.op, l, r)
	case callNode:
		var args []any
		for _, a := range n.args {
			v, err := eval(a, res)
			if err != nil {
				return nil, err
			}
			args = append(args, v)
		}
		str := func(v any) (string, bool, error) {
			switch s := v.(type) {
			case string:
				return s, true, nil
			case guid:
				return string(s), true, nil
			case nil:
				return "", false, nil
			}
			return "", false, fmt.Errorf("%s needs string arguments", n.fn)
		}
		a, aok, err := str(args[0])
		if err != nil {
			return nil, err
		}
		switch n.fn {
		case "tolower", "toupper":
			if !aok {
				return nil, nil
			}
			if n.fn == "tolower" {
				return strings.ToLower(a), nil
			}
			return strings.ToUpper(a), nil
		}
		b, bok, err := str(args[1])
		if err != nil {
			return nil, err
		}
		if !aok || !bok {
			return false, nil
		}
		a, b = strings.ToLower(a), strings.ToLower(b)
		switch n.fn {
		case "contains":
			return strings.Contains(a, b), nil
		case "startswith":
			return strings.HasPrefix(a, b), nil
		default:
			return strings.HasSuffix(a, b), nil
		}
	}
	return nil, fmt.Errorf("bad expression")
}

func compare(op string, l, r any) (bool, error) {
	if l == nil || r == nil {
		eq := l == nil && r == nil
		switch op {
		case "eq":
			return eq, nil
		case "ne":
			return !eq, nil
		}
		return false, nil
	}
	var c int
	switch a := l.(type) {
	case string:
		switch b := r.(type) {
		case string:
			c = strings.Compare(a, b)
		case guid:
			c = strings.Compare(strings.ToLower(a), string(b))
		default:
			return false, fmt.Errorf("cannot compare text with %T", r)
		}
	case guid:
		switch b := r.(type) {
		case string:
			c = strings.Compare(string(a), strings.ToLower(b))
		case guid:
			c = strings.Compare(string(a), string(b))
		default:
			return false, fmt.Errorf("cannot compare a GUID with %T", r)
		}
	case *big.Rat:
		b, ok := r.(*big.Rat)
		if !ok {
			return false, fmt.Errorf("cannot compare a number with %s", typeName(r))
		}
		c = a.Cmp(b)
	case bool:
		b, ok := r.(bool)
		if !ok || (op != "eq" && op != "ne") {
			return false, fmt.Errorf("cannot compare a boolean that way")
		}
		if a != b {
			c = 1
		}
	case time.Time:
		b, ok := r.(time.Time)
		if !ok {
			return false, fmt.Errorf("cannot compare a date with %s", typeName(r))
		}
		c = a.Compare(b)
	default:
		return false, fmt.Errorf("cannot compare %s", typeName(l))
	}
	switch op {
	case "eq":
		return c == 0, nil
	case "ne":
		return c != 0, nil
	case "gt":
		return c > 0, nil
	case "ge":
		return c >= 0, nil
	case "lt":
		return c < 0, nil
	}
	return c <= 0, nil
}

func typeName(v any) string {
	switch v.(type) {
	case string:
		return "text"
	case *big.Rat:
		return "a number"
	case time.Time:
		return "a date"
	case bool:
		return "a boolean"
	case guid:
		return "a GUID"
	}
	return fmt.Sprintf("%T", v)
}
