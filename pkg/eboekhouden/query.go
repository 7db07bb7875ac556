package eboekhouden

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Op is a filter operator of the API's param[op]=value syntax.
type Op string

// Operators: eq, not_eq, like, not_like for strings; eq, not_eq, gt, gte, lt, lte, range for
// numbers and dates. Like patterns use % (any run) and ? (one character).
const (
	OpEq      Op = "eq"
	OpNotEq   Op = "not_eq"
	OpLike    Op = "like"
	OpNotLike Op = "not_like"
	OpGt      Op = "gt"
	OpGte     Op = "gte"
	OpLt      Op = "lt"
	OpLte     Op = "lte"
	OpRange   Op = "range"
)

// Filter is one condition on one list parameter.
type Filter struct {
	Field string
	Op    Op
	Value string
}

// Eq matches field equal to v (a string, integer, Date or time.Time).
func Eq(field string, v any) Filter { return Filter{field, OpEq, formatValue(v)} }

// NotEq matches field not equal to v.
func NotEq(field string, v any) Filter { return Filter{field, OpNotEq, formatValue(v)} }

// Like matches field against pattern, with % for any run and ? for one character.
func Like(field, pattern string) Filter { return Filter{field, OpLike, pattern} }

// NotLike matches field not matching pattern.
func NotLike(field, pattern string) Filter { return Filter{field, OpNotLike, pattern} }

// Gt matches field > v.
func Gt(field string, v any) Filter { return Filter{field, OpGt, formatValue(v)} }

// Gte matches field >= v.
func Gte(field string, v any) Filter { return Filter{field, OpGte, formatValue(v)} }

// Lt matches field < v.
func Lt(field string, v any) Filter { return Filter{field, OpLt, formatValue(v)} }

// Lte matches field <= v.
func Lte(field string, v any) Filter { return Filter{field, OpLte, formatValue(v)} }

// Range matches from <= field <= to.
func Range(field string, from, to any) Filter {
	return Filter{field, OpRange, formatValue(from) + "," + formatValue(to)}
}

func formatValue(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int:
		return strconv.Itoa(x)
	case int32:
		return strconv.FormatInt(int64(x), 10)
	case int64:
		return strconv.FormatInt(x, 10)
	case MutationType:
		return strconv.Itoa(int(x))
	case Date:
		return x.String()
	case time.Time:
		return x.Format(time.DateOnly)
	case bool:
		return strconv.FormatBool(x)
	case fmt.Stringer:
		return x.String()
	}
	return fmt.Sprint(v)
}

// ErrBadFilter is returned for a filter the API would not understand.
var ErrBadFilter = errors.New("bad filter")

var validOps = map[Op]bool{OpEq: true, OpNotEq: true, OpLike: true, OpNotLike: true,
	OpGt: true, OpGte: true, OpLt: true, OpLte: true, OpRange: true}

// Page selects a window of a list: Limit 1..2000 (0 means the API's default of 100), Offset >= 0.
type Page struct {
	Limit  int
	Offset int
}

// encodeQuery builds "limit=..&offset=..&field[op]=value" with values escaped, brackets literal as
// in the API's documentation. The API allows one filter per parameter.
func encodeQuery(page Page, filters []Filter) (string, error) {
	var parts []string
	seen := map[string]bool{}
	for _, f := range filters {
		if f.Field == "" || strings.ContainsAny(f.Field, "[]&=?# ") {
			return "", fmt.Errorf("%w: field %q", ErrBadFilter, f.Field)
		}
		op := f.Op
		if op == "" {
			op = OpEq
		}
		if !validOps[op] {
			return "", fmt.Errorf("%w: operator %q", ErrBadFilter, op)
		}
		if seen[f.Field] {
			return "", fmt.Errorf("%w: second filter on %q (the API allows one per parameter)", ErrBadFilter, f.Field)
		}
		seen[f.Field] = true
		key := url.QueryEscape(f.Field)
		if op != OpEq {
			key += "[" + string(op) + "]"
		}
		parts = append(parts, key+"="+url.QueryEscape(f.Value))
	}
	if page.Limit < 0 || page.Limit > 2000 {
		return "", fmt.Errorf("%w: limit %d outside 1..2000", ErrBadFilter, page.Limit)
	}
	if page.Offset < 0 {
		return "", fmt.Errorf("%w: negative offset", ErrBadFilter)
	}
	slices.Sort(parts)
	if page.Limit > 0 {
		parts = append(parts, "limit="+strconv.Itoa(page.Limit))
	}
	if page.Offset > 0 {
		parts = append(parts, "offset="+strconv.Itoa(page.Offset))
	}
	return strings.Join(parts, "&"), nil
}

// listEnvelope is the {items, count} answer of every list endpoint. count is ignored on purpose:
// whether it is the page length or the total is undocumented.
type listEnvelope[T any] struct {
	Items []T `json:"items"`
}

// list fetches one page of a list endpoint.
func list[T any](ctx context.Context, c *Client, what, path string, page Page, filters []Filter) ([]T, error) {
	q, err := encodeQuery(page, filters)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", what, err)
	}
	var env listEnvelope[T]
	if err := c.call(ctx, "GET", path, "GET "+path, q, nil, &env); err != nil {
		return nil, fmt.Errorf("list %s: %w", what, err)
	}
	return env.Items, nil
}

// all pages through a list endpoint until a short page. The first error ends the sequence.
func all[T any](ctx context.Context, c *Client, what, path string, filters []Filter) iter.Seq2[T, error] {
	return Paginate(ctx, c.pageSize, func(ctx context.Context, p Page) ([]T, error) {
		return list[T](ctx, c, what, path, p, filters)
	})
}

// Paginate yields the items of successive pages of size pageSize fetched by fetch, stopping after
// the first page shorter than pageSize (never trusting a count). The first error is yielded once
// and ends the sequence; stopping the range early stops fetching.
func Paginate[T any](ctx context.Context, pageSize int, fetch func(context.Context, Page) ([]T, error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		for offset := 0; ; offset += pageSize {
			items, err := fetch(ctx, Page{Limit: pageSize, Offset: offset})
			if err != nil {
				yield(zero, err)
				return
			}
			for _, it := range items {
				if !yield(it, nil) {
					return
				}
			}
			if len(items) < pageSize {
				return
			}
		}
	}
}

// Collect gathers a sequence into a slice, stopping at the first error.
func Collect[T any](seq iter.Seq2[T, error]) ([]T, error) {
	var out []T
	for v, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, v)
	}
	return out, nil
}
