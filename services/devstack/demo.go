package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/koppel/koppel/pkg/adminapi"
	"github.com/koppel/koppel/services/devstack/internal/stack"
)

// seedDemo makes the demo tenant of make run: 250 relations and 40 products in e-Boekhouden, a
// quarter of the relations kept in Tribe already (one with another phone number: the demo's one
// issue, which shows how koppel treats records that meet for the first time).
func seedDemo(ctx context.Context, s *stack.Stack) (string, error) {
	return "demo", seedTenant(ctx, s, sandboxSpec{id: "demo", name: "Demo B.V.", company: "Demo Boekhouding B.V.", relations: 250, products: 40, seed: 1,
		inTribe: 4, differing: 1})
}

// sandboxSpec describes a tenant against the sandbox: its ID (also its Tribe environment) and
// what its e-Boekhouden administration holds.
type sandboxSpec struct {
	id, name, company         string
	relations, products, seed int
	// inTribe, when above zero, puts every inTribe-th active relation in Tribe too before the
	// import, as a Tribe user kept it (same debtor number, name and address); the first
	// differing of them with another phone number.
	inTribe, differing int
}

// demoUnits are the units a Dutch administration's products use that Tribe lacks out of the
// box; an administrator adds them in Tribe, and so does the sandbox for the demo.
var demoUnits = []map[string]string{{"code": "BOX", "name": "Doos"}, {"code": "KG", "name": "Kilogram"},
	{"code": "M", "name": "Meter"}, {"code": "M2", "name": "Vierkante meter"}, {"code": "LIC", "name": "Licentie"}}

// seedTenant makes a tenant against the sandbox, the way an operator would: an e-Boekhouden
// administration with generated relations and a Tribe environment, then the tenant through the
// admin API (credentials, configuration, links, activate), which starts the initial import.
func seedTenant(ctx context.Context, s *stack.Stack, spec sandboxSpec) error {
	sb := "http://" + s.Addrs["sandbox"]
	var adm struct{ ID, AccessToken string }
	if err := call(ctx, "POST", sb+"/eboekhouden/_sim/admins", "", map[string]any{"company": spec.company, "relations": spec.relations, "products": spec.products, "seed": spec.seed}, &adm); err != nil {
		return fmt.Errorf("create e-Boekhouden administration: %w", err)
	}
	var env struct {
		ClientID          string `json:"clientId"`
		ClientSecret      string `json:"clientSecret"`
		OwnOrganizationID string `json:"ownOrganizationId"`
	}
	if err := call(ctx, "POST", sb+"/tribe/_sim/environments", "", map[string]any{"id": spec.id, "name": spec.name, "units": demoUnits}, &env); err != nil {
		return fmt.Errorf("create Tribe environment: %w", err)
	}
	if spec.inTribe > 0 {
		if err := seedKnownRelations(ctx, sb, adm.ID, spec.id, env.OwnOrganizationID, spec.inTribe, spec.differing); err != nil {
			return fmt.Errorf("relations Tribe has already: %w", err)
		}
	}
	api := &adminapi.Client{Base: "http://" + s.Addrs["admin"], Token: s.AdminToken}
	tenant := "/admin/v1/tenants/" + spec.id
	if err := api.Do(ctx, "POST", "/admin/v1/tenants", adminapi.CreateTenant{ID: spec.id, DisplayName: spec.name}, nil); err != nil {
		return fmt.Errorf("create tenant: %w", err)
	}
	var creds adminapi.Credentials
	creds.EBoekhouden.BaseURL, creds.EBoekhouden.Token = sb+"/eboekhouden", adm.AccessToken
	creds.Tribe.BaseURL, creds.Tribe.AuthURL = sb+"/tribe", sb+"/tribe"
	creds.Tribe.ClientID, creds.Tribe.ClientSecret = env.ClientID, env.ClientSecret
	if err := api.Do(ctx, "PUT", tenant+"/credentials", creds, nil); err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	var cfg adminapi.Configuration
	if err := api.Do(ctx, "GET", tenant+"/configuration", nil, &cfg); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	links := adminapi.Links{AutoDebtorNumbers: true, DebtorNumberStart: 50000, RevenueLedgers: map[string]string{}, VATCodes: map[string]string{}}
	for _, l := range cfg.Ledgers {
		if l.Category == "DEB" {
			links.DebtorLedger = l.ID
			break
		}
	}
	if len(cfg.InvoiceTemplates) > 0 {
		links.InvoiceTemplate = cfg.InvoiceTemplates[0].ID
	}
	// Every Tribe VAT group books on the first revenue ledger, with the sale VAT code of the
	// same percentage.
	for _, g := range cfg.VATGroups {
		for _, l := range cfg.Ledgers {
			if l.Category == "VW" {
				links.RevenueLedgers[g.ID] = l.ID
				break
			}
		}
		for _, c := range cfg.VATCodes {
			// GEEN (no VAT) is for sales too; it is the 0% groups' code.
			if (c.Category == "sale" || c.Category == "both") && (links.VATCodes[g.ID] == "" || sameRate(c.Percentage, g.Percentage)) {
				links.VATCodes[g.ID] = c.Code
			}
		}
	}
	if err := api.Do(ctx, "PUT", tenant+"/links", links, nil); err != nil {
		return fmt.Errorf("links: %w", err)
	}
	if err := api.Do(ctx, "POST", tenant+"/activate", nil, nil); err != nil {
		return fmt.Errorf("activate: %w", err)
	}
	return nil
}

// seedKnownRelations puts every every-th active relation of the administration into the Tribe
// environment as a customer, as a Tribe user would have kept it; the first differing of them get
// another phone number.
func seedKnownRelations(ctx context.Context, sb, admID, envID, own string, every, differing int) error {
	var rels []map[string]any
	if err := call(ctx, "GET", sb+"/eboekhouden/_sim/admins/"+admID+"/state?kind=relations", "", nil, &rels); err != nil {
		return err
	}
	str := func(r map[string]any, k string) string { v, _ := r[k].(string); return v }
	var countryRows struct{ Value []map[string]any }
	if err := call(ctx, "GET", sb+"/tribe/_sim/environments/"+envID+"/entities/Datastore_Country", "", nil, &countryRows); err != nil {
		return err
	}
	countries := map[string]string{}
	for _, c := range countryRows.Value {
		countries[str(c, "Code")] = str(c, "ID")
	}
	address := func(r map[string]any, suffix string) map[string]any {
		return tribeAddress(str(r, "address"+suffix), str(r, "postalCode"+suffix), str(r, "city"+suffix), countries[str(r, "country"+suffix)])
	}
	n := 0
	for i, r := range rels {
		if i%every != 0 || r["inactive"] == true {
			continue
		}
		fields := map[string]any{"DebtorNumber": str(r, "code"), "PhoneNumber": str(r, "phoneNumber"), "IBAN": str(r, "iban"), "BIC": str(r, "bic")}
		if n < differing {
			fields["PhoneNumber"] = "020-5550" + fmt.Sprintf("%03d", n)
		}
		if a := address(r, ""); a != nil {
			fields["InvoiceAddress"] = a
		}
		if a := address(r, "2"); a != nil {
			fields["PostalAddress"] = a
		}
		set, nav := "Relationship_Organization_CommercialRelationship_Customer", "Organization"
		if str(r, "type") == "P" {
			set, nav = "Relationship_Person_CommercialRelationship_Customer", "Person"
			first, last, _ := strings.Cut(str(r, "name"), " ")
			if last == "" {
				first, last = "", first
			}
			fields["FirstName"], fields["LastName"] = first, last
		} else {
			fields["Name"], fields["Website"], fields["VATNumber"] = str(r, "name"), str(r, "website"), str(r, "vatNumber")
			fields["ChamberOfCommerceNumber"] = str(r, "companyRegistrationNumber")
		}
		for k, v := range fields {
			if v == "" {
				delete(fields, k)
			}
		}
		body := map[string]any{"Relation": map[string]any{"ID": own}, nav: fields}
		if err := call(ctx, "POST", sb+"/tribe/_sim/environments/"+envID+"/entities/"+set, "", body, nil); err != nil {
			return err
		}
		n++
	}
	return nil
}

// tribeAddress is an e-Boekhouden address as Tribe keeps it: street, house number and suffix
// apart ("Kerkstraat 12 A").
func tribeAddress(line, postcode, city, countryID string) map[string]any {
	if line == "" && postcode == "" && city == "" {
		return nil
	}
	a := map[string]any{"Street": line, "Postalcode": postcode, "City": city}
	if countryID != "" {
		a["Country"] = map[string]any{"ID": countryID}
	}
	words := strings.Fields(line)
	for i := len(words) - 1; i > 0; i-- {
		if n, err := strconv.Atoi(words[i]); err == nil && n > 0 {
			a["Street"], a["HouseNumber"] = strings.Join(words[:i], " "), n
			if suffix := strings.Join(words[i+1:], " "); suffix != "" {
				a["HouseNumberSuffix"] = suffix
			}
			break
		}
	}
	return a
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
