package adminapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// DefaultTimeout bounds one call of a Client.
const DefaultTimeout = 30 * time.Second

// maxAnswer bounds an answer's body.
const maxAnswer = 32 << 20

// Client calls the admin API.
type Client struct {
	// Base is the admin service's URL, such as http://127.0.0.1:8082.
	Base string
	// Token is the admin bearer token.
	Token string
	// HTTP sends the requests; its zero value is fine.
	HTTP http.Client
}

// TenantPath is the path of a tenant's resource: /admin/v1/tenants/<tenant><rest>, the tenant
// escaped; rest is "" or starts with "/" ("/status", "/sync/relation").
func TenantPath(tenant, rest string) string {
	return "/admin/v1/tenants/" + url.PathEscape(tenant) + rest
}

// Error is an error answer of the admin API.
type Error struct {
	Status  int
	Code    string
	Message string
	Field   string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s (%s, field %s)", e.Message, e.Code, e.Field)
	}
	if e.Code == "" {
		return fmt.Sprintf("HTTP %d", e.Status)
	}
	return fmt.Sprintf("%s (%s)", e.Message, e.Code)
}

// Do sends method path (below Base, such as "/admin/v1/tenants") with body encoded as JSON (nil
// for none) and decodes a JSON answer into out (nil to ignore it). An error answer is an *Error.
// The call is bounded by DefaultTimeout unless ctx ends sooner.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	ctx, cancel := context.WithTimeout(ctx, DefaultTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s %s: encode request: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var e ErrorBody
		_ = json.Unmarshal(raw, &e)
		return &Error{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message, Field: e.Error.Field}
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}
