package tribe_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shopspring/decimal"

	"github.com/koppel/koppel/pkg/apicall"
	"github.com/koppel/koppel/pkg/tribe"
	"github.com/koppel/koppel/services/sandbox/tribesim"
)

type fixture struct {
	sim  *tribesim.Simulator
	srv  *httptest.Server
	env  tribesim.EnvironmentInfo
	c    *tribe.Client
	ctx  context.Context
	call *apicall.Caller
	reg  *prometheus.Registry
}

func newFixture(t *testing.T, opts tribesim.Options, spec tribesim.EnvironmentSpec, mod func(*tribe.Config)) *fixture {
	t.Helper()
	sim := tribesim.New(opts)
	t.Cleanup(sim.Close)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	env, err := sim.CreateEnvironment(spec)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	caller, err := apicall.New("tribe", apicall.WithRegisterer(reg), apicall.WithBackoff(time.Millisecond, 5*time.Millisecond),
		apicall.WithRandSeed(1), apicall.WithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	cfg := tribe.Config{BaseURL: srv.URL, AuthURL: srv.URL, ClientID: env.ClientID, ClientSecret: env.ClientSecret, Caller: caller}
	if mod != nil {
		mod(&cfg)
	}
	c, err := tribe.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return &fixture{sim: sim, srv: srv, env: env, c: c, ctx: ctx, call: caller, reg: reg}
}

func TestOAuth(t *testing.T) {
	f := newFixture(t, tribesim.Options{}, tribesim.EnvironmentSpec{ID: "t1"}, nil)
	if err := f.c.Ping(f.ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	emp, err := f.c.CurrentEmployee(f.ctx)
	if err != nil || emp.ID != f.env.EmployeeID || emp.Person == nil || emp.Person.LastName != "Koppeling" {
		t.Fatalf("CurrentEmployee = %+v, %v", emp, err)
	}
	id, err := f.c.Identity(f.ctx)
	if err != nil || id.RelationID != f.env.OwnOrganizationID {
		t.Fatalf("Identity = %+v, %v", id, err)
	}

	// A revoked token is replaced transparently.
	if err := f.sim.ExpireTokens("t1"); err != nil {
		t.Fatal(err)
	}
	if err := f.c.Ping(f.ctx); err != nil {
		t.Fatalf("Ping after expiry: %v", err)
	}

	for name, mod := range map[string]func(*tribe.Config){
		"bad secret":     func(c *tribe.Config) { c.ClientSecret = "wrong-secret-value" },
		"unknown client": func(c *tribe.Config) { c.ClientID = "nobody" },
		"scope":          func(c *tribe.Config) { c.Scopes = []string{"read", "write", "offline"} },
	} {
		cfg := tribe.Config{BaseURL: f.srv.URL, AuthURL: f.srv.URL, ClientID: f.env.ClientID, ClientSecret: f.env.ClientSecret, Caller: f.call}
		mod(&cfg)
		c, err := tribe.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		err = c.Ping(f.ctx)
		if !errors.Is(err, tribe.ErrInvalidCredentials) {
			t.Errorf("%s: got %v, want ErrInvalidCredentials", name, err)
		}
		var ae *tribe.AuthError
		if !errors.As(err, &ae) || ae.Code == "" {
			t.Errorf("%s: no AuthError in %v", name, err)
		}
		if err != nil && (strings.Contains(err.Error(), "wrong-secret-value") || strings.Contains(err.Error(), f.env.ClientSecret)) {
			t.Errorf("%s: error leaks the secret: %v", name, err)
		}
		if tribe.IsRetryable(err) {
			t.Errorf("%s: credential error is retryable", name)
		}
	}

	// Token requests count in the API metrics like any call, refusals by their status, so an
	// alert sees a refused client secret.
	tokens := map[string]float64{}
	families, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() != "koppel_api_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["endpoint"] == "POST /oauth2/token" {
				tokens[labels["status"]] += m.GetCounter().GetValue()
			}
		}
	}
	if tokens["200"] < 2 || tokens["400"]+tokens["401"] < 3 {
		t.Errorf("token requests counted by status: %v; want at least 2 granted and 3 refused", tokens)
	}
}

func TestEntitiesRoundTrip(t *testing.T) {
	for _, style := range []tribe.UpdateStyle{tribe.UpdateByPut, tribe.UpdateByPost} {
		f := newFixture(t, tribesim.Options{}, tribesim.EnvironmentSpec{ID: "t1"}, func(c *tribe.Config) { c.UpdateStyle = style })
		ctx, c := f.ctx, f.c
		countries, err := c.Countries(ctx)
		if err != nil || len(countries) == 0 {
			t.Fatalf("Countries: %v %v", countries, err)
		}
		types, err := c.AddressTypes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		code := func(ls []tribe.Lookup, code string) string {
			for _, l := range ls {
				if l.Code == code {
					return l.ID
				}
			}
			t.Fatalf("no lookup %s", code)
			return ""
		}

		// Customer with a new organisation in one call (deep insert).
		ident, _ := c.Identity(ctx)
		created, err := c.CreateRelationship(ctx, tribe.SetOrgCustomer, tribe.RelationshipInput{
			Relation:          tribe.Link(ident.RelationID),
			NewOrganization:   &tribe.OrganizationInput{Name: tribe.Ptr("Bakkerij 't Hoekje B.V."), DebtorNumber: tribe.Ptr("10042"), VATNumber: tribe.Ptr("NL001234567B01")},
			PaymentTermInDays: tribe.Ptr(30),
			ExternalID:        tribe.Ptr("eb-rel-1"),
		})
		if err != nil {
			t.Fatalf("CreateRelationship: %v", err)
		}
		relID := created.ID
		rel, err := c.Relationship(ctx, tribe.SetOrgCustomer, relID, tribe.Q().Expand("Organization"))
		if err != nil || rel.Organization == nil || rel.Organization.Name != "Bakkerij 't Hoekje B.V." || *rel.PaymentTermInDays != 30 || rel.ExternalID != "eb-rel-1" {
			t.Fatalf("Relationship = %+v, %v", rel, err)
		}
		orgID := rel.Organization.ID

		addrID, err := c.CreateAddress(ctx, tribe.AddressInput{Street: tribe.Ptr("Dorpsstraat"), HouseNumber: tribe.Ptr(12.0), HouseNumberSuffix: tribe.Ptr("A"),
			Postalcode: tribe.Ptr("1234 AB"), City: tribe.Ptr("Utrecht"), Country: tribe.Link(code(countries, "NL")), AddressType: tribe.Link(code(types, "Invoice")), Organization: tribe.Link(orgID)})
		if err != nil {
			t.Fatalf("CreateAddress: %v", err)
		}
		if err := c.UpdateOrganization(ctx, orgID, tribe.OrganizationInput{InvoiceAddress: tribe.Link(addrID), Website: tribe.Ptr("https://hoekje.nl"), ExternalID: tribe.Ptr("eb-42")}); err != nil {
			t.Fatalf("UpdateOrganization: %v", err)
		}
		org, err := c.Organization(ctx, orgID, tribe.Q().Expand("InvoiceAddress", tribe.Q().Expand("Country").Expand("AddressType")).Expand("Addresses"))
		if err != nil {
			t.Fatal(err)
		}
		if org.Website != "https://hoekje.nl" || org.DebtorNumber != "10042" || org.ExternalID != "eb-42" || org.InvoiceAddress == nil ||
			org.InvoiceAddress.Country.Code != "NL" || org.InvoiceAddress.AddressType.Code != "Invoice" || *org.InvoiceAddress.HouseNumber != 12 || len(org.Addresses) != 1 {
			t.Fatalf("organisation = %+v", org)
		}
		found, err := tribe.FindByExternalID[tribe.Organization](ctx, c, tribe.SetOrganization, "eb-42", tribe.Q())
		if err != nil || len(found) != 1 || found[0].ID != orgID {
			t.Fatalf("FindByExternalID = %v, %v", found, err)
		}
		if found, _ := tribe.FindByExternalID[tribe.Organization](ctx, c, tribe.SetOrganization, "eb-4", tribe.Q()); len(found) != 0 {
			t.Fatalf("FindByExternalID matched a prefix: %v", found)
		}

		// Person and B2C customer linking an existing person.
		pid, err := c.CreatePerson(ctx, tribe.PersonInput{FirstName: tribe.Ptr("Joost"), MiddleName: tribe.Ptr("de"), LastName: tribe.Ptr("Tester")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateRelationship(ctx, tribe.SetPersonCustomer, tribe.RelationshipInput{Relation: tribe.Link(ident.RelationID), Person: tribe.Link(pid)}); err != nil {
			t.Fatal(err)
		}
		p, err := c.Person(ctx, pid, tribe.Q())
		if err != nil || p.Name != "Joost de Tester" || p.SortName != "Tester, Joost de" {
			t.Fatalf("Person = %+v, %v", p, err)
		}
		if _, err := c.CreatePerson(ctx, tribe.PersonInput{FirstName: tribe.Ptr("No")}); err == nil {
			t.Fatal("person without LastName accepted")
		}

		// Product with look-ups; prices stay exact.
		units, _ := c.Units(ctx)
		vats, _ := c.VatGroups(ctx)
		groups, _ := c.ProductGroups(ctx)
		prodID, err := c.CreateProduct(ctx, tribe.ProductInput{Name: tribe.Ptr("Adviesuur"), Code: tribe.Ptr("ADV"), SalesPrice: tribe.Ptr(decimal.RequireFromString("95.15")),
			PurchasePrice: tribe.Ptr(decimal.RequireFromString("0.10")), Unit: tribe.Link(code(units, "HOUR")), VatGroup: tribe.Link(code(vats, "HIGH")), ProductGroup: tribe.Link(code(groups, "SERV")), ExternalID: tribe.Ptr("p-7")})
		if err != nil {
			t.Fatalf("CreateProduct: %v", err)
		}
		prod, err := c.Product(ctx, prodID, tribe.Q().Expand("Unit").Expand("VatGroup").Expand("ProductGroup"))
		if err != nil || !prod.SalesPrice.Equal(decimal.RequireFromString("95.15")) || prod.Unit.Code != "HOUR" || !prod.VatGroup.Percentage.Decimal.Equal(decimal.NewFromInt(21)) || prod.ExternalID != "p-7" {
			t.Fatalf("Product = %+v, %v", prod, err)
		}
		if err := c.UpdateProduct(ctx, prodID, tribe.ProductInput{IsInactive: tribe.Ptr(true)}); err != nil {
			t.Fatal(err)
		}
		if prod, _ = c.Product(ctx, prodID, tribe.Q()); !prod.IsInactive || prod.Name != "Adviesuur" {
			t.Fatalf("partial update lost fields: %+v", prod)
		}

		// Invoice with lines; Sent assigns number and date, then the invoice is frozen.
		invID, err := c.CreateInvoice(ctx, tribe.InvoiceInput{Subject: tribe.Ptr("Advies maart"), Currency: tribe.Ptr("EUR"), Relationship: tribe.Link(relID),
			ProductLines: []tribe.ProductLineInput{
				{Description: tribe.Ptr("Adviesuur"), Quantity: tribe.Ptr(decimal.NewFromInt(3)), Price: tribe.Ptr(decimal.RequireFromString("95.15")), VatPercentage: tribe.Ptr(decimal.NewFromInt(21)), Product: tribe.Link(prodID)},
				{Description: tribe.Ptr("Reiskosten"), Quantity: tribe.Ptr(decimal.RequireFromString("0.5")), Price: tribe.Ptr(decimal.RequireFromString("0.1")), VatPercentage: tribe.Ptr(decimal.NewFromInt(21))},
			}})
		if err != nil {
			t.Fatalf("CreateInvoice: %v", err)
		}
		inv, err := c.Invoice(ctx, invID, tribe.InvoiceQuery())
		if err != nil {
			t.Fatal(err)
		}
		if inv.Phase.Code != "Draft" || inv.Number != "" || inv.InvoiceDate != nil || len(inv.ProductLines) != 2 || !inv.Amount.Equal(decimal.RequireFromString("285.50")) ||
			inv.Relationship.Organization.InvoiceAddress.Country.Code != "NL" {
			t.Fatalf("draft invoice = %+v", inv)
		}
		sent, err := c.PhaseByCode(ctx, "Sent")
		if err != nil {
			t.Fatal(err)
		}
		if err := c.SetInvoicePhase(ctx, invID, sent.ID); err != nil {
			t.Fatalf("SetInvoicePhase: %v", err)
		}
		inv, _ = c.Invoice(ctx, invID, tribe.InvoiceQuery())
		if inv.Phase.Code != "Sent" || inv.Number == "" || inv.InvoiceDate == nil || inv.DueDate == nil || inv.DueDate.Sub(*inv.InvoiceDate) != 30*24*time.Hour {
			t.Fatalf("sent invoice = %+v", inv)
		}
		err = c.UpdateInvoice(ctx, invID, tribe.InvoiceInput{Subject: tribe.Ptr("changed")})
		var ae *tribe.APIError
		if !errors.As(err, &ae) || ae.Code != "InvoiceFinalized" || tribe.IsRetryable(err) {
			t.Fatalf("update of a sent invoice: %v", err)
		}
		sentList, err := tribe.Collect(c.Invoices(ctx, tribe.Q().Filter(tribe.Eq("Phase/Code", "Sent"))))
		if err != nil || len(sentList) != 1 {
			t.Fatalf("Phase/Code filter: %v %v", sentList, err)
		}
	}
}

func TestQueryEscaping(t *testing.T) {
	f := newFixture(t, tribesim.Options{}, tribesim.EnvironmentSpec{ID: "t1"}, nil)
	names := []string{"Peter's company", "A&B + C = 100%", "Ä#?/ éé", "''quoted''"}
	for _, n := range names {
		if _, err := f.c.CreateOrganization(f.ctx, tribe.OrganizationInput{Name: tribe.Ptr(n)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range names {
		got, err := tribe.Collect(f.c.Organizations(f.ctx, tribe.Q().Filter(tribe.Eq("Name", n)).Select("Name")))
		if err != nil || len(got) != 1 || got[0].Name != n {
			t.Errorf("Eq(Name, %q) = %v, %v", n, got, err)
		}
	}
	got, err := tribe.Collect(f.c.Organizations(f.ctx, tribe.Q().Filter(tribe.And(tribe.Contains("Name", "PETER'S"), tribe.Not(tribe.Eq("Name", "x"))))))
	if err != nil || len(got) != 1 {
		t.Errorf("contains is not case-insensitive: %v %v", got, err)
	}
	since := time.Now().Add(-time.Hour)
	got, err = tribe.Collect(f.c.Organizations(f.ctx, tribe.Q().Filter(tribe.Or(tribe.Ge("CreationDate", since), tribe.Ge("LastMutationDate", since)))))
	if err != nil || len(got) != len(names)+1 {
		t.Errorf("date filter: %d %v", len(got), err)
	}
	if _, err := tribe.Collect(f.c.Organizations(f.ctx, tribe.Q().Filter(tribe.Eq("Name", struct{}{})))); err == nil {
		t.Error("unsupported literal accepted")
	}

	for _, c := range []struct {
		v    any
		want string
	}{
		{"Peter's", "'Peter''s'"}, {tribe.GUID("B724D383-BB70-480A-B03D-512B9AAEC15A"), "b724d383-bb70-480a-b03d-512b9aaec15a"},
		{decimal.RequireFromString("1234.50"), "1234.5"}, {time.Date(2024, 1, 1, 1, 0, 0, 0, time.FixedZone("", 3600)), "2024-01-01T00:00:00Z"},
		{tribe.Date{Year: 2024, Month: 5, Day: 1}, "2024-05-01"}, {nil, "null"}, {true, "true"}, {42, "42"},
	} {
		if got, err := tribe.Literal(c.v); err != nil || got != c.want {
			t.Errorf("Literal(%v) = %q, %v; want %q", c.v, got, err, c.want)
		}
	}
	if _, err := tribe.Literal(tribe.GUID("nope")); err == nil {
		t.Error("bad GUID accepted")
	}
	q := tribe.Q().Select("Name", "ID").Expand("InvoiceAddress", tribe.Q().Select("City").Expand("Country", tribe.Q().Select("Code"))).Filter(tribe.Eq("Name", "a b")).OrderByDesc("Name").Top(5)
	if got := q.Encode(); strings.Contains(got, "+") || !strings.Contains(got, "$expand=InvoiceAddress%28%24select%3DCity%3B%24expand%3DCountry%28%24select%3DCode%29%29") {
		t.Errorf("Encode = %s", got)
	}
	if tribe.Q().Select("a b").Err() == nil || tribe.Q().Filter(tribe.Eq("x;y", 1)).Err() == nil {
		t.Error("bad names accepted")
	}
}

func TestPaging(t *testing.T) {
	for _, serverPage := range []int{0, 30} {
		f := newFixture(t, tribesim.Options{ServerPageSize: serverPage}, tribesim.EnvironmentSpec{ID: "t1", Generate: &tribesim.GenerateSpec{Organizations: 95}}, func(c *tribe.Config) { c.PageSize = 40 })
		all, err := tribe.Collect(f.c.Relationships(f.ctx, tribe.SetOrgCustomer, tribe.Q().OrderBy("Organization/Name").Expand("Organization")))
		if err != nil || len(all) != 95 {
			t.Fatalf("server page %d: %d records, %v", serverPage, len(all), err)
		}
		seen := map[string]bool{}
		for i, r := range all {
			if seen[r.ID] {
				t.Fatalf("duplicate %s", r.ID)
			}
			seen[r.ID] = true
			if i > 0 && all[i-1].Organization.Name > r.Organization.Name {
				t.Fatalf("not ordered at %d", i)
			}
		}
		some, err := tribe.Collect(f.c.Relationships(f.ctx, tribe.SetOrgCustomer, tribe.Q().Skip(10).Top(65)))
		if err != nil || len(some) != 65 || some[0].ID != f.mustIDs(t)[10] {
			t.Fatalf("server page %d: skip/top gave %d, %v", serverPage, len(some), err)
		}
		// Breaking out of the loop stops paging.
		n := 0
		for _, err := range f.c.Relationships(f.ctx, tribe.SetOrgCustomer, tribe.Q()) {
			if err != nil {
				t.Fatal(err)
			}
			if n++; n == 3 {
				break
			}
		}
		reqs := f.sim.Requests("t1")
		usedNext := false
		for _, r := range reqs {
			usedNext = usedNext || strings.Contains(r.Query, "skiptoken")
		}
		if usedNext != (serverPage > 0) {
			t.Errorf("server page %d: nextLink followed = %v", serverPage, usedNext)
		}
	}
}

func (f *fixture) mustIDs(t *testing.T) []string {
	recs, err := f.sim.Entities("t1", tribesim.SetOrgCustomer)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range recs {
		ids = append(ids, r["ID"].(string))
	}
	return ids
}

func TestErrorsAndRetries(t *testing.T) {
	f := newFixture(t, tribesim.Options{}, tribesim.EnvironmentSpec{ID: "t1"}, nil)
	_, err := f.c.Organization(f.ctx, "b724d383-bb70-480a-b03d-512b9aaec15a", tribe.Q())
	if !tribe.IsNotFound(err) || tribe.IsRetryable(err) {
		t.Fatalf("unknown ID: %v", err)
	}
	_, err = tribe.Collect(f.c.Organizations(f.ctx, tribe.Q().Filter(tribe.Raw("Name in ('a')"))))
	var ae *tribe.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 400 || ae.Message == "" {
		t.Fatalf("in operator: %v", err)
	}

	if err := f.sim.SetFaults("t1", tribesim.Faults{Next429: 2, RetryAfterSeconds: -1}); err != nil {
		t.Fatal(err)
	}
	if err := f.c.Ping(f.ctx); err != nil {
		t.Fatalf("after two 429s: %v", err)
	}
	_ = f.sim.SetFaults("t1", tribesim.Faults{Next5xx: 3, ErrorStatus: 502})
	if _, err := f.c.Phases(f.ctx); err != nil {
		t.Fatalf("after three 502s: %v", err)
	}
	_ = f.sim.SetFaults("t1", tribesim.Faults{Next5xx: 50})
	_, err = f.c.Phases(f.ctx)
	if !errors.As(err, &ae) || ae.StatusCode != 503 || !tribe.IsRetryable(err) {
		t.Fatalf("persistent 503: %v", err)
	}
	_ = f.sim.SetFaults("t1", tribesim.Faults{})

	g := newFixture(t, tribesim.Options{}, tribesim.EnvironmentSpec{ID: "t2", InvoicingDisabled: true}, nil)
	if _, err := tribe.Collect(g.c.Invoices(g.ctx, tribe.Q())); !errors.Is(err, tribe.ErrModuleNotEnabled) || tribe.IsNotFound(err) {
		t.Fatalf("module disabled: %v", err)
	}
}

func TestWebhookManagement(t *testing.T) {
	f := newFixture(t, tribesim.Options{}, tribesim.EnvironmentSpec{ID: "t1"}, nil)
	w, err := f.c.CreateWebhook(f.ctx, "Relation.Organization", "https://gateway.example/tribe/t1", []tribe.WebhookHeader{{Name: "X-Api-Key", Value: "k"}})
	if err != nil || w.ID == "" || w.Secret == "" {
		t.Fatalf("CreateWebhook = %v, %v", w, err)
	}
	if strings.Contains(w.String(), w.Secret) {
		t.Error("String leaks the secret")
	}
	if _, err := f.c.CreateWebhook(f.ctx, "Relation_Organization", "https://x", nil); err == nil {
		t.Error("underscored entity type accepted")
	}
	list, err := f.c.ListWebhooks(f.ctx)
	if err != nil || len(list) != 1 || list[0].EntityType != "Relation.Organization" || list[0].URL != "https://gateway.example/tribe/t1" {
		t.Fatalf("ListWebhooks = %v, %v", list, err)
	}
	if err := f.c.DeleteWebhook(f.ctx, w.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.c.DeleteWebhook(f.ctx, w.ID); !tribe.IsNotFound(err) {
		t.Fatalf("second delete: %v", err)
	}
}

// A bulk listing asks for large pages. Tribe's largest page is UNCONFIRMED: whether the server
// serves it, refuses it or quietly cuts it, every record is read exactly once.
func TestBulkListingSurvivesEveryPageLimit(t *testing.T) {
	for _, c := range []struct {
		name string
		opts tribesim.Options
	}{
		{"no limit", tribesim.Options{}},
		{"cut to 100", tribesim.Options{MaxTop: 100}},
		{"refuses over 100", tribesim.Options{MaxTop: 100, MaxTopRefuses: true}},
		{"server pages of 30", tribesim.Options{ServerPageSize: 30}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, c.opts, tribesim.EnvironmentSpec{ID: "t1", Generate: &tribesim.GenerateSpec{Organizations: 250}}, nil)
			for round := range 2 {
				orgs, err := tribe.Collect(f.c.Organizations(f.ctx, tribe.Q().Select("ID", "DebtorNumber").Bulk()))
				if err != nil {
					t.Fatal(err)
				}
				seen := map[string]bool{}
				for _, o := range orgs {
					if seen[o.ID] {
						t.Fatalf("round %d: %s read twice", round, o.ID)
					}
					seen[o.ID] = true
				}
				// 250 generated plus the own organisation.
				if len(orgs) != 251 {
					t.Fatalf("round %d: %d organisations, want 251", round, len(orgs))
				}
			}
		})
	}
}

// A customer created with its organisation in one call (deep insert) yields the organisation's ID
// whether Tribe's answer is expanded (as OData 4.0 asks) or not.
func TestDeepInsertAnswer(t *testing.T) {
	for _, plain := range []bool{false, true} {
		f := newFixture(t, tribesim.Options{PlainCreateAnswer: plain}, tribesim.EnvironmentSpec{ID: "t1"}, nil)
		ident, err := f.c.Identity(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		created, err := f.c.CreateRelationship(f.ctx, tribe.SetOrgCustomer, tribe.RelationshipInput{Relation: tribe.Link(ident.RelationID),
			NewOrganization: &tribe.OrganizationInput{Name: tribe.Ptr("Bos Groep"), NewInvoiceAddress: &tribe.AddressInput{Street: tribe.Ptr("Hoofdweg"), City: tribe.Ptr("Zwolle")}}})
		if err != nil {
			t.Fatal(err)
		}
		if got := created.Organization != nil && created.Organization.ID != ""; got == plain {
			t.Fatalf("plain answer %v: organisation in the answer = %v", plain, got)
		}
		rel, err := f.c.Relationship(f.ctx, tribe.SetOrgCustomer, created.ID, tribe.Q().Expand("Organization", tribe.Q().Expand("InvoiceAddress")))
		if err != nil || rel.Organization == nil || rel.Organization.InvoiceAddress == nil || rel.Organization.InvoiceAddress.City != "Zwolle" {
			t.Fatalf("deep insert stored %+v, %v", rel.Organization, err)
		}
		if !plain && created.Organization.InvoiceAddress.ID != rel.Organization.InvoiceAddress.ID {
			t.Fatal("the expanded answer names another address")
		}
	}
}
