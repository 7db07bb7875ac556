package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/koppel/koppel/pkg/stack"
)

// seedDemo makes the demo tenant of make run: 250 relations and 40 products in e-Boekhouden.
func seedDemo(ctx context.Context, s *stack.Stack) (string, error) {
	return "demo", seedTenant(ctx, s, sandboxSpec{id: "demo", name: "Demo B.V.", company: "Demo Boekhouding B.V.", relations: 250, products: 40, seed: 1})
}

// sandboxSpec describes a tenant against the sandbox: its ID (also its Tribe environment) and
// what its e-Boekhouden administration holds.
type sandboxSpec struct {
	id, name, company         string
	relations, products, seed int
}

// seedTenant makes a tenant against the sandbox, the way an operator would: an e-Boekhouden
// administration with generated relations and a Tribe environment, then the tenant through the
// admin API (credentials, configuration, links, activate), which starts the initial import.
func seedTenant(ctx context.Context, s *stack.Stack, spec sandboxSpec) error {
	sb := "http://" + s.Addrs["sandbox"]
	gw := "http://" + s.Addrs["gateway"]
	var adm struct{ AccessToken string }
	if err := call(ctx, "POST", sb+"/eboekhouden/_sim/admins", "", map[string]any{"company": spec.company, "relations": spec.relations, "products": spec.products, "seed": spec.seed}, &adm); err != nil {
		return fmt.Errorf("create e-Boekhouden administration: %w", err)
	}
	var env struct {
		ClientID     string `json:"clientId"`
		ClientSecret string `json:"clientSecret"`
	}
	if err := call(ctx, "POST", sb+"/tribe/_sim/environments", "", map[string]any{"id": spec.id, "name": spec.name}, &env); err != nil {
		return fmt.Errorf("create Tribe environment: %w", err)
	}
	tok := s.AdminToken
	if err := call(ctx, "POST", gw+"/admin/v1/tenants", tok, map[string]string{"id": spec.id, "display_name": spec.name}, nil); err != nil {
		return fmt.Errorf("create tenant: %w", err)
	}
	creds := map[string]any{
		"eboekhouden": map[string]string{"base_url": sb + "/eboekhouden", "token": adm.AccessToken},
		"tribe":       map[string]string{"base_url": sb + "/tribe", "auth_url": sb + "/tribe", "client_id": env.ClientID, "client_secret": env.ClientSecret},
	}
	if err := call(ctx, "PUT", gw+"/admin/v1/tenants/"+spec.id+"/credentials", tok, creds, nil); err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	type option struct {
		ID         string `json:"id"`
		Code       string `json:"code"`
		Category   string `json:"category"`
		Percentage string `json:"percentage"`
	}
	var cfg struct {
		Ledgers          []option `json:"ledgers"`
		VATCodes         []option `json:"vat_codes"`
		InvoiceTemplates []option `json:"invoice_templates"`
		VATGroups        []option `json:"vat_groups"`
	}
	if err := call(ctx, "GET", gw+"/admin/v1/tenants/"+spec.id+"/configuration", tok, nil, &cfg); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	links := map[string]any{"auto_debtor_numbers": true, "debtor_number_start": 50000}
	for _, l := range cfg.Ledgers {
		if l.Category == "DEB" {
			links["debtor_ledger"] = l.ID
			break
		}
	}
	if len(cfg.InvoiceTemplates) > 0 {
		links["invoice_template"] = cfg.InvoiceTemplates[0].ID
	}
	// Every Tribe VAT group books on the first revenue ledger, with the sale VAT code of the
	// same percentage.
	revenue, codes := map[string]string{}, map[string]string{}
	for _, g := range cfg.VATGroups {
		for _, l := range cfg.Ledgers {
			if l.Category == "VW" {
				revenue[g.ID] = l.ID
				break
			}
		}
		for _, c := range cfg.VATCodes {
			if c.Category == "sale" && (codes[g.ID] == "" || sameRate(c.Percentage, g.Percentage)) {
				codes[g.ID] = c.Code
			}
		}
	}
	links["revenue_ledgers"], links["vat_codes"] = revenue, codes
	if err := call(ctx, "PUT", gw+"/admin/v1/tenants/"+spec.id+"/links", tok, links, nil); err != nil {
		return fmt.Errorf("links: %w", err)
	}
	if err := call(ctx, "POST", gw+"/admin/v1/tenants/"+spec.id+"/activate", tok, nil, nil); err != nil {
		return fmt.Errorf("activate: %w", err)
	}
	return nil
}

func call(ctx context.Context, method, url, token string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, bytes.TrimSpace(raw))
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

func sameRate(a, b string) bool {
	var x, y float64
	_, errA := fmt.Sscan(a, &x)
	_, errB := fmt.Sscan(b, &y)
	return errA == nil && errB == nil && x == y
}
