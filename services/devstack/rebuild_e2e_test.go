package main

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/koppel/koppel/pkg/adminapi"
	"github.com/koppel/koppel/pkg/tenantclients"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
)

// newTribeCustomer creates an organisation in Tribe and makes it a customer, as a Tribe user
// does, and returns the debtor number koppel gave it once it is in e-Boekhouden.
func newTribeCustomer(t *testing.T, st *sandboxTenant, name string) int {
	t.Helper()
	var env struct {
		Own string `json:"ownOrganizationId"`
	}
	sandboxJSON(t, st.s, "GET", "/tribe/_sim/environments/"+st.tribeEnv, nil, &env)
	var org map[string]any
	sandboxJSON(t, st.s, "POST", "/tribe/_sim/environments/"+st.tribeEnv+"/entities/Relation_Organization", map[string]any{"Name": name}, &org)
	id, _ := org["ID"].(string)
	if id == "" {
		t.Fatalf("created organisation: %v", org)
	}
	sandboxJSON(t, st.s, "POST", "/tribe/_sim/environments/"+st.tribeEnv+"/entities/Relationship_Organization_CommercialRelationship_Customer",
		map[string]any{"Relation": map[string]string{"ID": env.Own}, "Organization": map[string]string{"ID": id}}, nil)
	var code string
	eventually(t, name+" in e-Boekhouden", 30*time.Second, func() bool {
		for _, e := range tribeEntities(t, st.s, st.tribeEnv, "Relation_Organization") {
			if e["ID"] == id {
				code, _ = e["DebtorNumber"].(string)
				return code != "" && e["ImportId"] != nil && e["ImportId"] != ""
			}
		}
		return false
	})
	n, err := strconv.Atoi(code)
	if err != nil {
		t.Fatalf("debtor number %q of %s", code, name)
	}
	return n
}

// ebRelationCodes counts the e-Boekhouden administration's relations by code.
func (st *sandboxTenant) ebRelationCodes(t *testing.T) map[string]int {
	t.Helper()
	var rels []struct{ Code string }
	sandboxJSON(t, st.s, "GET", "/eboekhouden/_sim/admins/"+st.ebAdmin+"/state?kind=relations", nil, &rels)
	out := map[string]int{}
	for _, r := range rels {
		out[r.Code]++
	}
	return out
}

// A bookkeeper's koppel loses its Redis, without a backup: every link between Tribe and
// e-Boekhouden, and the sequence of debtor numbers koppel gives new customers, are gone. The
// operator creates the tenant again with koppelctl (credentials, links), rebuilds (a dry run
// first) and activates it. The books must show what they showed: nothing created twice by the
// import, and the next new Tribe customer gets a debtor number of its own, not one koppel gave
// before the loss. Every service a real process, koppelctl the real binary.
func TestRebuildAfterRedisLossEndToEnd(t *testing.T) {
	s := startStackEnv(t, map[string]string{"KOPPEL_TRIBE_RATE": "1000", "KOPPEL_EBOEKHOUDEN_RATE": "1000"}, "scheduler")
	ctx := context.Background()
	if err := seedTenant(ctx, s, sandboxSpec{id: "books", name: "Boekhouding B.V.", company: "Boekhouding", relations: 10, products: 2, seed: 5, inTribe: 3}); err != nil {
		t.Fatal(err)
	}
	m, err := s.DialMapping()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var admins []struct{ ID string }
	sandboxJSON(t, s, "GET", "/eboekhouden/_sim/admins", nil, &admins)
	st := &sandboxTenant{s: s, id: "books", tribeEnv: "books", ebAdmin: admins[0].ID, m: m}
	eventually(t, "the import", 60*time.Second, func() bool {
		r := st.run(t, "import")
		return r != nil && r.Status == mappingv1.RunStatus_RUN_STATUS_SUCCEEDED
	})
	first := newTribeCustomer(t, st, "Eerste Nieuwe Klant B.V.")

	// What the operator has on file: the tenant's settings, links and credentials.
	res, err := m.GetTenant(ctx, &mappingv1.GetTenantRequest{TenantId: "books"})
	if err != nil {
		t.Fatal(err)
	}
	settings := res.GetTenant().GetSettings()
	links, err := json.Marshal(storedLinks(t, st))
	if err != nil {
		t.Fatal(err)
	}
	secret := func(name string) string {
		res, err := m.GetSecret(ctx, &mappingv1.GetSecretRequest{TenantId: "books", Name: name})
		if err != nil {
			t.Fatal(err)
		}
		return string(res.GetValue())
	}
	t.Setenv("KOPPEL_EBOEKHOUDEN_TOKEN", secret(tenantclients.SecretEBoekhoudenToken))
	t.Setenv("KOPPEL_TRIBE_CLIENT_SECRET", secret(tenantclients.SecretTribeClientSecret))
	ebBefore, tribeBefore := st.ebRelationCodes(t), st.importedIDs(t)

	if err := s.Redis.FlushAll(); err != nil {
		t.Fatal(err)
	}

	url := "http://" + s.Addrs["admin"]
	ctl := func(stdin string, args ...string) string {
		t.Helper()
		out, code := koppelctl(t, url, s.AdminToken, stdin, args...)
		if code != 0 {
			t.Fatalf("koppelctl %s: exit %d: %s", strings.Join(args, " "), code, out)
		}
		return out
	}
	ctl("", "tenants", "create", "books", "Boekhouding B.V.")
	ctl("", "tenants", "credentials", "books", "-eboekhouden-url", settings.GetEboekhoudenBaseUrl(), "-tribe-url", settings.GetTribeBaseUrl(),
		"-tribe-auth-url", settings.GetTribeAuthUrl(), "-tribe-client-id", settings.GetTribeClientId())
	ctl(string(links), "tenants", "links", "books", "-f", "-")

	// The dry run says what the rebuild will link, and links nothing.
	if out := ctl("", "rebuild", "books", "-dry-run"); !strings.Contains(out, "WOULD LINK") {
		t.Fatalf("dry run:\n%s", out)
	}
	var dry adminapi.RebuildReport
	if out := ctl("", "-o", "json", "rebuild", "books", "-dry-run"); json.Unmarshal([]byte(out), &dry) != nil || !dry.DryRun {
		t.Fatalf("dry run -o json:\n%s", out)
	}
	var rep adminapi.RebuildReport
	if out := ctl("", "-o", "json", "rebuild", "books"); json.Unmarshal([]byte(out), &rep) != nil || rep.DryRun {
		t.Fatalf("rebuild -o json:\n%s", out)
	}
	linked := map[string]int{}
	for _, k := range rep.Kinds {
		linked[k.Kind] = k.Linked
		if k.AlreadyLinked != 0 {
			t.Errorf("%s: %d already linked after the loss: the dry run linked", k.Kind, k.AlreadyLinked)
		}
	}
	relations := 0
	for _, n := range tribeBefore {
		relations += n
	}
	if linked["organization"]+linked["person"] != relations {
		t.Errorf("relations linked %v, want the %d Tribe relations that carry an e-Boekhouden ID", linked, relations)
	}
	if rep.DebtorNumbers.HighestUsed < int64(first) || rep.DebtorNumbers.Sequence < int64(first) {
		t.Errorf("debtor numbers %+v: the sequence must pass %d, the number koppel gave before the loss", rep.DebtorNumbers, first)
	}

	// Activated again, the import finds every relation linked and writes none.
	ctl("", "tenants", "activate", "books", "-watch")
	second := newTribeCustomer(t, st, "Tweede Nieuwe Klant B.V.")
	if second <= first {
		t.Fatalf("the customer after the loss got debtor number %d, at or below %d which koppel gave before it", second, first)
	}
	ebAfter, tribeAfter := st.ebRelationCodes(t), st.importedIDs(t)
	for code, n := range ebAfter {
		if n > 1 {
			t.Errorf("e-Boekhouden has %d relations with code %s", n, code)
		}
	}
	if len(ebAfter) != len(ebBefore)+1 || ebAfter[strconv.Itoa(second)] != 1 {
		t.Errorf("e-Boekhouden relations: %d before, %d after; want one more, %d", len(ebBefore), len(ebAfter), second)
	}
	for id, n := range tribeAfter {
		if n > 1 {
			t.Errorf("%d Tribe relations carry e-Boekhouden ID %s", n, id)
		}
	}
	if out := ctl("", "issues", "books"); strings.Contains(out, "debtor_number_taken") {
		t.Errorf("issues after the rebuild:\n%s", out)
	}
}
