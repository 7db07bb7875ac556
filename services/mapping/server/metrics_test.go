package server_test

import (
	"strings"
	"testing"

	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The tenant collector reports what Redis holds at the moment of the scrape: tenants by state,
// each tenant's open issues (resolving one lowers the count) and schedules (its own or the default).
func TestTenantCollector(t *testing.T) {
	s, rdb, rs := newServer(t)
	col := s.TenantCollector()

	for _, id := range []string{"acme", "globex"} {
		if _, err := s.CreateTenant(ctx, &mappingv1.CreateTenantRequest{Tenant: &mappingv1.Tenant{Id: id}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.UpdateTenantSettings(ctx, &mappingv1.UpdateTenantSettingsRequest{TenantId: "acme",
		Settings: &mappingv1.TenantSettings{ScheduleSeconds: map[string]int64{"product": 3600}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetTenantState(ctx, &mappingv1.SetTenantStateRequest{TenantId: "acme", State: mappingv1.TenantState_TENANT_STATE_ACTIVE}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b"} {
		if _, err := s.RecordIssue(ctx, &mappingv1.RecordIssueRequest{TenantId: "acme", Issue: &mappingv1.Issue{Key: k, Code: "c", Message: "m"}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.ResolveIssue(ctx, &mappingv1.ResolveIssueRequest{TenantId: "acme", Key: "a"}); err != nil {
		t.Fatal(err)
	}
	// An index entry without a tenant (a create that failed half-way) is not a tenant.
	if err := rdb.SAdd(ctx, "koppel:tenants", "ghost").Err(); err != nil {
		t.Fatal(err)
	}

	want := `
# HELP koppel_tenant_open_issues Open issues of a tenant: problems the tenant has to act on.
# TYPE koppel_tenant_open_issues gauge
koppel_tenant_open_issues{tenant="acme"} 1
koppel_tenant_open_issues{tenant="globex"} 0
# HELP koppel_tenant_schedule_seconds A tenant's interval between scheduled runs of a kind (its own setting, else the default).
# TYPE koppel_tenant_schedule_seconds gauge
koppel_tenant_schedule_seconds{kind="payment",tenant="acme"} 3600
koppel_tenant_schedule_seconds{kind="product",tenant="acme"} 3600
koppel_tenant_schedule_seconds{kind="relation",tenant="acme"} 86400
koppel_tenant_schedule_seconds{kind="relation-scan",tenant="acme"} 300
koppel_tenant_schedule_seconds{kind="tribe-scan",tenant="acme"} 900
koppel_tenant_schedule_seconds{kind="payment",tenant="globex"} 3600
koppel_tenant_schedule_seconds{kind="product",tenant="globex"} 600
koppel_tenant_schedule_seconds{kind="relation",tenant="globex"} 86400
koppel_tenant_schedule_seconds{kind="relation-scan",tenant="globex"} 300
koppel_tenant_schedule_seconds{kind="tribe-scan",tenant="globex"} 900
# HELP koppel_tenant_state 1 for the state a tenant is in (setup, active, paused), per tenant.
# TYPE koppel_tenant_state gauge
koppel_tenant_state{state="active",tenant="acme"} 1
koppel_tenant_state{state="setup",tenant="globex"} 1
# HELP koppel_tenants Tenants by state (setup, active, paused).
# TYPE koppel_tenants gauge
koppel_tenants{state="active"} 1
koppel_tenants{state="paused"} 0
koppel_tenants{state="setup"} 1
# HELP koppel_tenant_scan_success 1 when the tenant metrics of this scrape could be read from Redis, 0 when not (they are then missing).
# TYPE koppel_tenant_scan_success gauge
koppel_tenant_scan_success 1
`
	if err := testutil.CollectAndCompare(col, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}

	// Without Redis the scrape says so instead of reporting an empty fleet.
	rs.Stop()
	down := `
# HELP koppel_tenant_scan_success 1 when the tenant metrics of this scrape could be read from Redis, 0 when not (they are then missing).
# TYPE koppel_tenant_scan_success gauge
koppel_tenant_scan_success 0
`
	if err := testutil.CollectAndCompare(col, strings.NewReader(down)); err != nil {
		t.Fatal(err)
	}
}
