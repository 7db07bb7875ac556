package tribe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"

	"reflect"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

const odataPath = "/v1/odata/"

// Page is one decoded list answer.
type Page struct {
	Values   []json.RawMessage
	NextLink string
	Count    *int64
}

// DecodePage decodes an OData list answer: {"@odata.context": …, "value": […],
// "@odata.nextLink"?: …, "@odata.count"?: …}. A missing value array is an error, so an error body
// or a single entity is never taken for an empty page.
func DecodePage(b []byte) (Page, error) {
	var raw struct {
		Value    *[]json.RawMessage `json:"value"`
		NextLink *string            `json:"@odata.nextLink"`
		Count    json.RawMessage    `json:"@odata.count"`
	}
	if err := decodeJSON(b, &raw); err != nil {
		return Page{}, fmt.Errorf("decode page: %w", err)
	}
	if raw.Value == nil {
		return Page{}, errors.New("decode page: no value array")
	}
	p := Page{Values: *raw.Value}
	if raw.NextLink != nil {
		p.NextLink = *raw.NextLink
	}
	for i, v := range p.Values {
		if len(v) == 0 || v[0] != '{' {
			return Page{}, fmt.Errorf("decode page: value[%d] is not an object", i)
		}
	}
	if len(raw.Count) > 0 && string(raw.Count) != "null" {
		var n int64
		if err := json.Unmarshal(raw.Count, &n); err != nil {
			return Page{}, fmt.Errorf("decode page: bad @odata.count")
		}
		p.Count = &n
	}
	return p, nil
}

// extras is implemented by entities with fields whose names are configured (external ID,
// invoice dates).
type extras interface {
	setExtras(cfg *Config, m map[string]json.RawMessage)
}

func decodeEntity[T any](cfg *Config, raw []byte) (T, error) {
	var v T
	if err := decodeJSON(raw, &v); err != nil {
		return v, err
	}
	if x, ok := any(&v).(extras); ok {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return v, err
		}
		x.setExtras(cfg, m)
	}
	return v, nil
}

func rawString(m map[string]json.RawMessage, k string) string {
	var s string
	if v, ok := m[k]; ok {
		_ = json.Unmarshal(v, &s)
	}
	return s
}

func rawTime(m map[string]json.RawMessage, k string) *time.Time {
	s := rawString(m, k)
	if s == "" {
		return nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return &t
		}
	}
	return nil
}

func setPath(set string) (string, error) {
	if !rePath.MatchString(set) || strings.Contains(set, "/") {
		return "", fmt.Errorf("bad entity set %q", set)
	}
	return odataPath + set, nil
}

// Get reads one record of set by ID.
func Get[T any](ctx context.Context, c *Client, set, id string, q Query) (T, error) {
	var zero T
	endpoint := "GET " + odataPath + set + "({id})"
	p, err := setPath(set)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", endpoint, err)
	}
	if !reGUID.MatchString(id) {
		return zero, fmt.Errorf("%s: %q is not a GUID", endpoint, id)
	}
	if q.err != nil {
		return zero, fmt.Errorf("%s: %w", endpoint, q.err)
	}
	q.hasTop = false
	body, _, err := c.do(ctx, call{method: http.MethodGet, path: p + "(" + strings.ToLower(id) + ")", query: encodeParams(q.params(0, 0, false)), endpoint: endpoint})
	if err != nil {
		return zero, err
	}
	v, err := decodeEntity[T](&c.cfg, body)
	if err != nil {
		return zero, fmt.Errorf("%s: decode: %w", endpoint, err)
	}
	return v, nil
}

// List iterates over the records of set matching q, page by page. It follows @odata.nextLink
// when the server sends one and otherwise pages with $top/$skip (PageSize at a time); q's own Top
// and Skip bound the whole listing. Iteration stops at the first error, which it yields.
func List[T any](ctx context.Context, c *Client, set string, q Query) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		endpoint := "GET " + odataPath + set
		p, err := setPath(set)
		if err == nil {
			err = q.err
		}
		if err != nil {
			yield(zero, fmt.Errorf("%s: %w", endpoint, err))
			return
		}
		// A client page is one $top/$skip request; the server may split it further with
		// nextLinks, which are followed before the next client page is asked for.
		pageSize := c.cfg.PageSize
		if q.bulk {
			pageSize = c.cfg.BulkPageSize
			if n := int(c.bulkCap.Load()); n > 0 {
				pageSize = min(pageSize, n)
			}
		}
		// A page larger than the size client code is seen to use may be cut short by a server
		// that caps $top without a nextLink (UNCONFIRMED); then a short page does not prove the
		// end, and one more page is asked for.
		unproven := func() bool { return pageSize > DefaultPageSize && c.bulkCap.Load() == 0 }
		got, skip, next, want, pageGot := 0, q.skip, "", 0, 0
		short := 0 // the size of the last page that came back short without ending the listing
		for {
			k := call{method: http.MethodGet, endpoint: endpoint}
			if next != "" {
				k.rawURL = next
			} else {
				want = pageSize
				if q.hasTop {
					want = min(want, q.top-got)
				}
				if want <= 0 {
					return
				}
				pageGot = 0
				k.path, k.query = p, encodeParams(q.params(want, skip, true))
			}
			body, _, err := c.do(ctx, k)
			var api *APIError
			if next == "" && unproven() && errors.As(err, &api) && api.StatusCode == http.StatusBadRequest {
				// The server refuses a page this large: fall back to the proven size.
				c.bulkCap.Store(DefaultPageSize)
				pageSize = DefaultPageSize
				continue
			}
			if err != nil {
				yield(zero, err)
				return
			}
			page, err := DecodePage(body)
			if err != nil {
				yield(zero, fmt.Errorf("%s: %w", endpoint, err))
				return
			}
			for _, raw := range page.Values {
				if q.hasTop && got >= q.top {
					return
				}
				v, err := decodeEntity[T](&c.cfg, raw)
				if err != nil {
					yield(zero, fmt.Errorf("%s: decode: %w", endpoint, err))
					return
				}
				got++
				if !yield(v, nil) {
					return
				}
			}
			pageGot += len(page.Values)
			if page.NextLink != "" {
				if len(page.Values) == 0 {
					yield(zero, fmt.Errorf("%s: empty page with a nextLink", endpoint))
					return
				}
				if next, err = c.sameOrigin(page.NextLink); err != nil {
					yield(zero, fmt.Errorf("%s: %w", endpoint, err))
					return
				}
				continue
			}
			next = ""
			if pageGot > 0 && short > 0 {
				// A short page was not the end: the server cuts pages at that size.
				c.bulkCap.Store(int64(short))
				pageSize, want, short = min(pageSize, short), min(want, short), 0
			}
			if pageGot == 0 || (pageGot < want && !unproven()) {
				return
			}
			if pageGot < want {
				short = pageGot
			}
			skip += pageGot
		}
	}
}

// sameOrigin resolves a nextLink and refuses one pointing elsewhere, so the token is only ever
// sent to the API host.
func (c *Client) sameOrigin(link string) (string, error) {
	u, err := c.base.Parse(link)
	if err != nil {
		return "", fmt.Errorf("bad @odata.nextLink: %w", err)
	}
	if !strings.EqualFold(u.Scheme, c.base.Scheme) || !strings.EqualFold(u.Host, c.base.Host) {
		return "", errors.New("@odata.nextLink points to another host")
	}
	return u.String(), nil
}

// Collect gathers an iterator into a slice.
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

// Ref links a record by ID: {"ID": "…"} (Tribe binds navigations this way, not @odata.bind).
type Ref struct {
	ID string `json:"ID"`
}

// Link returns a Ref to id.
func Link(id string) *Ref { return &Ref{ID: id} }

// Ptr returns a pointer to v, for the optional fields of inputs.
func Ptr[T any](v T) *T { return &v }

// Fields is a raw write body, for fields the typed inputs lack (custom fields "_<guid>").
type Fields map[string]any

// encodeInput turns an input struct (pointer fields: nil = leave unchanged) into a write body:
// decimals as JSON numbers (Tribe's Double), Refs as {"ID"}, nested inputs as deep inserts, and
// the configured names for the external ID and invoice dates.
func (c *Client) encodeInput(in any) (map[string]any, error) {
	switch x := in.(type) {
	case Fields:
		return map[string]any(x), nil
	case map[string]any:
		return x, nil
	}
	v := reflect.ValueOf(in)
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil, errors.New("nil input")
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil, fmt.Errorf("input of type %T is not a struct", in)
	}
	out := map[string]any{}
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		fv := v.Field(i)
		name := sf.Name
		if tag := sf.Tag.Get("tribe"); tag != "" {
			name = tag
		}
		switch name {
		case "$external":
			name = c.cfg.ExternalIDField
		case "$invoiceDate":
			name = c.cfg.InvoiceDateField
		case "$dueDate":
			name = c.cfg.DueDateField
		case "-":
			continue
		}
		if sf.Type == reflect.TypeOf(Fields(nil)) {
			for k, val := range fv.Interface().(Fields) {
				out[k] = val
			}
			continue
		}
		if (fv.Kind() == reflect.Pointer || fv.Kind() == reflect.Slice) && fv.IsNil() {
			continue
		}
		val, err := c.encodeValue(fv)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out[name] = val
	}
	return out, nil
}

func (c *Client) encodeValue(fv reflect.Value) (any, error) {
	switch x := fv.Interface().(type) {
	case *decimal.Decimal:
		return json.Number(x.String()), nil
	case decimal.Decimal:
		return json.Number(x.String()), nil
	case *time.Time:
		return x.UTC().Format(time.RFC3339), nil
	case *Ref:
		if !reGUID.MatchString(x.ID) {
			return nil, fmt.Errorf("link to %q: not a GUID", x.ID)
		}
		return map[string]any{"ID": strings.ToLower(x.ID)}, nil
	case *string, *bool, *int, *int64, *float64:
		return fv.Elem().Interface(), nil
	}
	if fv.Kind() == reflect.Slice {
		arr := make([]any, 0, fv.Len())
		for i := range fv.Len() {
			m, err := c.encodeInput(fv.Index(i).Interface())
			if err != nil {
				return nil, err
			}
			arr = append(arr, m)
		}
		return arr, nil
	}
	if fv.Kind() == reflect.Pointer && fv.Elem().Kind() == reflect.Struct {
		return c.encodeInput(fv.Interface())
	}
	return nil, fmt.Errorf("unsupported input field type %s", fv.Type())
}

// Create creates a record of set from in (an input struct or Fields) and returns the created
// record's ID. Tribe answers 200 or 201 with the entity (both accepted).
func (c *Client) Create(ctx context.Context, set string, in any) (string, error) {
	endpoint := "POST " + odataPath + set
	body, err := c.write(ctx, http.MethodPost, set, "", in, endpoint)
	if err != nil {
		return "", err
	}
	var created struct {
		ID string `json:"ID"`
	}
	if err := json.Unmarshal(body, &created); err != nil || !reGUID.MatchString(created.ID) {
		return "", fmt.Errorf("%s: the answer carries no ID", endpoint)
	}
	return strings.ToLower(created.ID), nil
}

// Update changes the fields of in on record id of set, leaving the others (partial update). It
// sends PUT /Set(id), or POST /Set with the ID (Config.UpdateStyle); both are documented.
func (c *Client) Update(ctx context.Context, set, id string, in any) error {
	if !reGUID.MatchString(id) {
		return fmt.Errorf("update %s: %q is not a GUID", set, id)
	}
	if !c.postUpdates.Load() {
		_, err := c.write(ctx, http.MethodPut, set, id, in, "PUT "+odataPath+set+"({id})")
		var ae *APIError
		if !errors.As(err, &ae) || ae.StatusCode != http.StatusMethodNotAllowed {
			return err
		}
		c.postUpdates.Store(true)
	}
	_, err := c.write(ctx, http.MethodPost, set, id, in, "POST "+odataPath+set+" (update)")
	return err
}

func (c *Client) write(ctx context.Context, method, set, id string, in any, endpoint string) ([]byte, error) {
	p, err := setPath(set)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", endpoint, err)
	}
	m, err := c.encodeInput(in)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", endpoint, err)
	}
	if id != "" {
		if method == http.MethodPut {
			p += "(" + strings.ToLower(id) + ")"
		} else {
			m = copyWith(m, "ID", strings.ToLower(id))
		}
	}
	body, _, err := c.do(ctx, call{method: method, path: p, endpoint: endpoint, body: m})
	return body, err
}

func copyWith(m map[string]any, k string, v any) map[string]any {
	out := make(map[string]any, len(m)+1)
	for kk, vv := range m {
		out[kk] = vv
	}
	out[k] = v
	return out
}

// Delete deletes record id of set (204). Deleting a relationship leaves its relations.
func (c *Client) Delete(ctx context.Context, set, id string) error {
	endpoint := "DELETE " + odataPath + set + "({id})"
	p, err := setPath(set)
	if err != nil {
		return fmt.Errorf("%s: %w", endpoint, err)
	}
	if !reGUID.MatchString(id) {
		return fmt.Errorf("%s: %q is not a GUID", endpoint, id)
	}
	_, _, err = c.do(ctx, call{method: http.MethodDelete, path: p + "(" + strings.ToLower(id) + ")", endpoint: endpoint})
	return err
}

// SetExternalID stores the e-Boekhouden ID on a Tribe record (Config.ExternalIDField).
func (c *Client) SetExternalID(ctx context.Context, set, id, externalID string) error {
	return c.Update(ctx, set, id, Fields{c.cfg.ExternalIDField: externalID})
}

// FindByExternalID returns the records of set whose external ID is exactly externalID. It filters
// with contains (what C5 does; whether eq works on ImportId is UNCONFIRMED) and keeps exact
// matches.
func FindByExternalID[T any](ctx context.Context, c *Client, set, externalID string, q Query) ([]T, error) {
	if externalID == "" {
		return nil, fmt.Errorf("find %s by external id: empty id", set)
	}
	q = q.Filter(Contains(c.cfg.ExternalIDField, externalID))
	var out []T
	for raw, err := range List[json.RawMessage](ctx, c, set, q) {
		if err != nil {
			return nil, err
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil || rawString(m, c.cfg.ExternalIDField) != externalID {
			continue
		}
		v, err := decodeEntity[T](&c.cfg, raw)
		if err != nil {
			return nil, fmt.Errorf("find %s by external id: decode: %w", set, err)
		}
		out = append(out, v)
	}
	return out, nil
}
