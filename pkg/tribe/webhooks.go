package tribe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Webhook is a registration. The create answer's shape is UNCONFIRMED: the ID is read from id, ID
// or webhookId, and the secret, when Tribe returns it, from secret.
type Webhook struct {
	ID         string
	EntityType string
	URL        string
	Headers    []WebhookHeader
	// Secret signs deliveries. It is only set when the API returns it (otherwise it is shown on
	// Tribe's webhook page). Never log it.
	Secret string
}

// WebhookHeader is a custom header Tribe adds to every delivery (an API key for the gateway, say).
type WebhookHeader struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// String leaves the secret out, so a logged Webhook does not leak it.
func (w Webhook) String() string {
	return fmt.Sprintf("webhook %s (%s → %s)", w.ID, w.EntityType, w.URL)
}

type wireWebhook struct {
	ID         string          `json:"id"`
	IDUpper    string          `json:"ID"`
	WebhookID  string          `json:"webhookId"`
	EntityType string          `json:"entityType"`
	EntityTypU string          `json:"EntityType"`
	URL        string          `json:"webhookUrl"`
	URLUpper   string          `json:"WebhookUrl"`
	Headers    []WebhookHeader `json:"headers"`
	Secret     string          `json:"secret"`
}

func (w wireWebhook) webhook() Webhook {
	first := func(xs ...string) string {
		for _, x := range xs {
			if x != "" {
				return x
			}
		}
		return ""
	}
	return Webhook{ID: first(w.ID, w.IDUpper, w.WebhookID), EntityType: first(w.EntityType, w.EntityTypU),
		URL: first(w.URL, w.URLUpper), Headers: w.Headers, Secret: w.Secret}
}

// ListWebhooks lists the environment's webhooks (GET /v1/webhooks; a bare array or an OData-style
// {"value": […]} are both accepted).
func (c *Client) ListWebhooks(ctx context.Context) ([]Webhook, error) {
	const endpoint = "GET /v1/webhooks"
	body, _, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/webhooks", endpoint: endpoint})
	if err != nil {
		return nil, err
	}
	var arr []wireWebhook
	if err := json.Unmarshal(body, &arr); err != nil {
		var wrapped struct {
			Value []wireWebhook `json:"value"`
			Data  []wireWebhook `json:"data"`
		}
		if err := json.Unmarshal(body, &wrapped); err != nil {
			return nil, fmt.Errorf("%s: decode: %w", endpoint, err)
		}
		arr = append(wrapped.Value, wrapped.Data...)
	}
	out := make([]Webhook, 0, len(arr))
	for _, w := range arr {
		out = append(out, w.webhook())
	}
	return out, nil
}

// CreateWebhook registers url for mutations of entityType (dotted, e.g. "Relation.Organization").
func (c *Client) CreateWebhook(ctx context.Context, entityType, url string, headers []WebhookHeader) (Webhook, error) {
	const endpoint = "POST /v1/webhooks"
	if entityType == "" || strings.Contains(entityType, "_") {
		return Webhook{}, fmt.Errorf("%s: entity type %q must be the dotted _Type", endpoint, entityType)
	}
	if headers == nil {
		headers = []WebhookHeader{}
	}
	body, _, err := c.do(ctx, call{method: http.MethodPost, path: "/v1/webhooks", endpoint: endpoint,
		body: map[string]any{"entityType": entityType, "webhookUrl": url, "headers": headers}})
	if err != nil {
		return Webhook{}, err
	}
	var w wireWebhook
	if err := json.Unmarshal(body, &w); err != nil {
		return Webhook{}, fmt.Errorf("%s: decode: %w", endpoint, err)
	}
	out := w.webhook()
	if out.ID == "" {
		return Webhook{}, errors.New(endpoint + ": the answer carries no webhook ID")
	}
	return out, nil
}

// DeleteWebhook removes a registration.
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	if id == "" || strings.ContainsAny(id, "/?#") {
		return fmt.Errorf("DELETE /v1/webhooks/{id}: bad id %q", id)
	}
	_, _, err := c.do(ctx, call{method: http.MethodDelete, path: "/v1/webhooks/" + id, endpoint: "DELETE /v1/webhooks/{id}"})
	return err
}
