package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/koppel/koppel/pkg/mapping"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/koppel/koppel/services/devstack/internal/stack"
)

// sandboxTenant creates an e-Boekhouden administration with n relations and a Tribe environment
// in the sandbox, and a koppel tenant wired to both through the mapping API, active.
type sandboxTenant struct {
	s        *stack.Stack
	id       string
	ebAdmin  string
	tribeEnv string
	m        *mapping.Client
}

func sandboxJSON(t testing.TB, s *stack.Stack, method, path string, body, out any) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, "http://"+s.Addrs["sandbox"]+path, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %d", method, path, resp.StatusCode)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

func newSandboxTenant(t *testing.T, s *stack.Stack, id string, relations int) *sandboxTenant {
	t.Helper()
	var adm struct{ ID, AccessToken string }
	sandboxJSON(t, s, "POST", "/eboekhouden/_sim/admins", map[string]any{"company": "Jansen BV", "relations": relations, "seed": 11}, &adm)
	var env struct {
		ID           string `json:"id"`
		ClientID     string `json:"clientId"`
		ClientSecret string `json:"clientSecret"`
	}
	sandboxJSON(t, s, "POST", "/tribe/_sim/environments", map[string]any{"id": id, "name": "Koppel Demo B.V."}, &env)
	m, err := s.DialMapping()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	ctx := context.Background()
	sb := "http://" + s.Addrs["sandbox"]
	_, err = m.CreateTenant(ctx, &mappingv1.CreateTenantRequest{Tenant: &mappingv1.Tenant{Id: id, State: mappingv1.TenantState_TENANT_STATE_ACTIVE,
		Settings: &mappingv1.TenantSettings{EboekhoudenBaseUrl: sb + "/eboekhouden", TribeBaseUrl: sb + "/tribe", TribeAuthUrl: sb + "/tribe", TribeClientId: env.ClientID}}})
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"eboekhouden_token": adm.AccessToken, "tribe_client_secret": env.ClientSecret} {
		if _, err := m.PutSecret(ctx, &mappingv1.PutSecretRequest{TenantId: id, Name: name, Value: []byte(v)}); err != nil {
			t.Fatal(err)
		}
	}
	return &sandboxTenant{s: s, id: id, ebAdmin: adm.ID, tribeEnv: env.ID, m: m}
}

// importedIDs returns, per e-Boekhouden ID, how many Tribe relations carry it.
func (st *sandboxTenant) importedIDs(t *testing.T) map[string]int {
	seen := map[string]int{}
	for _, set := range []string{"Relation_Organization", "Relation_Person"} {
		for _, e := range tribeEntities(t, st.s, st.tribeEnv, set) {
			if id, _ := e["ImportId"].(string); id != "" {
				seen[id]++
			}
		}
	}
	return seen
}

// tribeEntities lists a set of a Tribe environment through the simulator's admin API.
func tribeEntities(t testing.TB, s *stack.Stack, env, set string) []map[string]any {
	var list struct {
		Value []map[string]any `json:"value"`
	}
	sandboxJSON(t, s, "GET", "/tribe/_sim/environments/"+env+"/entities/"+set, nil, &list)
	return list.Value
}

func (st *sandboxTenant) activeRelations(t *testing.T) map[string]bool {
	var rels []struct {
		ID       int64 `json:"id"`
		Inactive bool  `json:"inactive"`
	}
	sandboxJSON(t, st.s, "GET", "/eboekhouden/_sim/admins/"+st.ebAdmin+"/state?kind=relations", nil, &rels)
	out := map[string]bool{}
	for _, r := range rels {
		if !r.Inactive {
			out[strconv.FormatInt(r.ID, 10)] = true
		}
	}
	if len(out) == 0 {
		t.Fatal("the e-Boekhouden administration has no active relation")
	}
	return out
}

func (st *sandboxTenant) run(t testing.TB, kind string) *mappingv1.Run {
	res, err := st.m.ListRuns(context.Background(), &mappingv1.ListRunsRequest{TenantId: st.id, Kind: kind, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Current) > 0 {
		return res.Current[0]
	}
	if len(res.Finished) > 0 {
		return res.Finished[0]
	}
	return nil
}

func TestImportSurvivesTheRelationServiceBeingKilled(t *testing.T) {
	// The e-Boekhouden simulator's rate limit makes the import take long enough to kill it midway.
	s := startStackEnv(t, map[string]string{"KOPPEL_SANDBOX_EBOEKHOUDEN_RATE": "150", "KOPPEL_TRIBE_RATE": "1000", "KOPPEL_EBOEKHOUDEN_RATE": "1000"}, "scheduler")
	st := newSandboxTenant(t, s, "acme", 400)
	admin := &client{t: t, base: "http://" + s.Addrs["admin"], token: s.AdminToken}
	if code, body := admin.do("POST", "/admin/v1/tenants/acme/sync/import", nil); code != 202 {
		t.Fatalf("start import: %d %v", code, body)
	}
	eventually(t, "the import to be under way", 30*time.Second, func() bool {
		r := st.run(t, "import")
		return r != nil && r.Done > 0 && r.Done < r.Total
	})
	s.Kill("relation")
	killedAt := st.run(t, "import").Done
	if err := s.Restart(context.Background(), "relation"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the import to finish", 120*time.Second, func() bool {
		r := st.run(t, "import")
		return r != nil && r.Status == mappingv1.RunStatus_RUN_STATUS_SUCCEEDED
	})
	run := st.run(t, "import")
	active := st.activeRelations(t)
	seen := st.importedIDs(t)
	for id, n := range seen {
		if n != 1 {
			t.Errorf("e-Boekhouden relation %s is in Tribe %d times", id, n)
		}
		if !active[id] {
			t.Errorf("inactive relation %s was imported", id)
		}
	}
	for id := range active {
		if seen[id] == 0 {
			t.Errorf("active relation %s is missing in Tribe", id)
		}
	}
	t.Logf("killed at %d of %d; run counts %v", killedAt, run.Total, run.Counts)
	// Created, or found again after the kill (unchanged, or updated when the kill fell between
	// creating a relation in Tribe and linking it): every active relation exactly once.
	c := run.Counts
	if len(active) < 300 || int(c.Created+c.Updated+c.Unchanged) != len(active) || int(c.Skipped) != 400-len(active) || c.Failed != 0 {
		t.Fatalf("run counts %v for %d active relations", run.Counts, len(active))
	}
}

func TestWebhookStormPushesEachChangeOnce(t *testing.T) {
	s := startStackEnv(t, map[string]string{"KOPPEL_TRIBE_RATE": "1000", "KOPPEL_EBOEKHOUDEN_RATE": "1000"}, "scheduler")
	st := newSandboxTenant(t, s, "acme", 6)
	if _, err := st.m.PutSecret(context.Background(), &mappingv1.PutSecretRequest{TenantId: "acme", Name: "webhook_secret", Value: []byte("whsec")}); err != nil {
		t.Fatal(err)
	}
	admin := &client{t: t, base: "http://" + s.Addrs["admin"], token: s.AdminToken}
	admin.do("POST", "/admin/v1/tenants/acme/sync/import", nil)
	eventually(t, "the import", 30*time.Second, func() bool {
		r := st.run(t, "import")
		return r != nil && r.Status == mappingv1.RunStatus_RUN_STATUS_SUCCEEDED
	})
	var org map[string]any
	for _, o := range tribeEntities(t, s, "acme", "Relation_Organization") {
		if o["ImportId"] != nil && o["ImportId"] != "" {
			org = o
		}
	}
	orgID := org["ID"].(string)
	ebID := org["ImportId"].(string)
	sandboxJSON(t, s, "PATCH", "/tribe/_sim/environments/acme/entities/Relation_Organization/"+orgID, map[string]any{"PhoneNumber": "020-1112233"}, nil)

	// The same change delivered 20 times, some out of order with an older update: one write.
	body := []byte(fmt.Sprintf(`{"webhookId":"wh","payload":{"type":"EntityUpdateMutation","entityType":"Relation.Organization","entityId":%q}}`, orgID))
	// Older, but inside the gateway's replay window, which refuses what is older still.
	older := []byte(fmt.Sprintf(`{"webhookId":"wh","payload":{"type":"EntityUpdateMutation","entityType":"Relation.Organization","entityId":%q,"timestamp":%q}}`,
		orgID, time.Now().Add(-2*time.Minute).UTC().Format(time.RFC3339Nano)))
	for i := range 20 {
		b := body
		if i%5 == 4 {
			b = older
		}
		if code := deliver(t, s, "acme", "whsec", b); code != 202 {
			t.Fatalf("delivery %d: %d", i, code)
		}
	}
	eventually(t, "the phone number in e-Boekhouden", 30*time.Second, func() bool {
		var rels []struct {
			ID    int64  `json:"id"`
			Phone string `json:"phoneNumber"`
		}
		sandboxJSON(t, s, "GET", "/eboekhouden/_sim/admins/"+st.ebAdmin+"/state?kind=relations", nil, &rels)
		for _, r := range rels {
			if strconv.FormatInt(r.ID, 10) == ebID {
				return r.Phone == "020-1112233"
			}
		}
		t.Fatalf("e-Boekhouden relation %s not found", ebID)
		return false
	})
	eventually(t, "every delivery to be handled", 30*time.Second, func() bool {
		return metric(t, s, "relation", `koppel_bus_messages_total{consumer="relation-evt",outcome="ack"}`) >= 2
	})
	var stats map[string]float64
	sandboxJSON(t, s, "GET", "/eboekhouden/_sim/stats", nil, &stats)
	if n := stats["PATCH /v1/relation/{id}"]; n != 1 {
		t.Fatalf("e-Boekhouden relation written %v times, want once", n)
	}
}

// A customer created in Tribe reaches e-Boekhouden through Tribe's own webhooks, with a debtor
// number koppel assigns, on a tenant activated through the admin API as an operator would.
func TestNewTribeCustomerIsPushedWithANewDebtorNumber(t *testing.T) {
	s := startStackEnv(t, map[string]string{"KOPPEL_TRIBE_RATE": "1000", "KOPPEL_EBOEKHOUDEN_RATE": "1000"}, "scheduler")
	ctx := context.Background()
	if _, err := seedDemo(ctx, s); err != nil {
		t.Fatal(err)
	}
	m, err := s.DialMapping()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	st := &sandboxTenant{s: s, id: "demo", tribeEnv: "demo", m: m}
	eventually(t, "the demo import", 60*time.Second, func() bool {
		r := st.run(t, "import")
		return r != nil && r.Status == mappingv1.RunStatus_RUN_STATUS_SUCCEEDED
	})
	var env struct {
		Own string `json:"ownOrganizationId"`
	}
	sandboxJSON(t, s, "GET", "/tribe/_sim/environments/demo", nil, &env)
	var org map[string]any
	sandboxJSON(t, s, "POST", "/tribe/_sim/environments/demo/entities/Relation_Organization", map[string]any{"Name": "Nieuwe Klant B.V.", "IBAN": "NL91ABNA0417164300"}, &org)
	orgID, _ := org["ID"].(string)
	if orgID == "" {
		t.Fatalf("created organisation: %v", org)
	}
	sandboxJSON(t, s, "POST", "/tribe/_sim/environments/demo/entities/Relationship_Organization_CommercialRelationship_Customer",
		map[string]any{"Relation": map[string]string{"ID": env.Own}, "Organization": map[string]string{"ID": orgID}}, nil)

	var code string
	eventually(t, "the new customer in e-Boekhouden", 30*time.Second, func() bool {
		for _, e := range tribeEntities(t, s, "demo", "Relation_Organization") {
			if e["ID"] == orgID {
				code, _ = e["DebtorNumber"].(string)
				return code != "" && e["ImportId"] != nil && e["ImportId"] != ""
			}
		}
		return false
	})
	if n, err := strconv.Atoi(code); err != nil || n < 50000 {
		t.Fatalf("debtor number %q: want one from the tenant's sequence (50000 on)", code)
	}
}
