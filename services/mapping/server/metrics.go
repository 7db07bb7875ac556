package server

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/koppel/koppel/pkg/schedule"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"
)

// Tenant metrics are read from Redis on every scrape rather than kept as counters in memory:
// the mapping service may run several replicas and restart at any time, while the stored state is
// the truth. The scan is one pipelined round of two O(1) commands per tenant, bounded by the
// number of tenants, and by tenantScrapeTimeout.
var (
	tenantsDesc = prometheus.NewDesc("koppel_tenants",
		"Tenants by state (setup, active, paused).", []string{"state"}, nil)
	tenantStateDesc = prometheus.NewDesc("koppel_tenant_state",
		"1 for the state a tenant is in (setup, active, paused), per tenant.", []string{"tenant", "state"}, nil)
	openIssuesDesc = prometheus.NewDesc("koppel_tenant_open_issues",
		"Open issues of a tenant: problems the tenant has to act on.", []string{"tenant"}, nil)
	scheduleDesc = prometheus.NewDesc("koppel_tenant_schedule_seconds",
		"A tenant's interval between scheduled runs of a kind (its own setting, else the default).", []string{"tenant", "kind"}, nil)
	tenantScanDesc = prometheus.NewDesc("koppel_tenant_scan_success",
		"1 when the tenant metrics of this scrape could be read from Redis, 0 when not (they are then missing).", nil, nil)
)

const tenantScrapeTimeout = 5 * time.Second

// tenantStates are the state label values; every one is exported, 0 when no tenant is in it.
var tenantStates = map[mappingv1.TenantState]string{
	mappingv1.TenantState_TENANT_STATE_SETUP:  "setup",
	mappingv1.TenantState_TENANT_STATE_ACTIVE: "active",
	mappingv1.TenantState_TENANT_STATE_PAUSED: "paused",
}

// TenantCollector returns a Prometheus collector of the tenants' state, open issues and
// schedules. Register it once per process.
func (s *Server) TenantCollector() prometheus.Collector { return tenantCollector{s: s} }

type tenantCollector struct{ s *Server }

func (c tenantCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{tenantsDesc, tenantStateDesc, openIssuesDesc, scheduleDesc, tenantScanDesc} {
		ch <- d
	}
}

func (c tenantCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), tenantScrapeTimeout)
	defer cancel()
	tenants, err := c.s.scanTenants(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(tenantScanDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(tenantScanDesc, prometheus.GaugeValue, 1)
	byState := map[string]int{}
	for _, name := range tenantStates {
		byState[name] = 0
	}
	kinds := slices.Sorted(maps.Keys(schedule.DefaultIntervals))
	for _, t := range tenants {
		state, ok := tenantStates[t.tenant.GetState()]
		if !ok {
			state = strings.ToLower(strings.TrimPrefix(t.tenant.GetState().String(), "TENANT_STATE_"))
		}
		byState[state]++
		id := t.tenant.GetId()
		ch <- prometheus.MustNewConstMetric(tenantStateDesc, prometheus.GaugeValue, 1, id, state)
		ch <- prometheus.MustNewConstMetric(openIssuesDesc, prometheus.GaugeValue, float64(t.openIssues), id)
		for _, kind := range kinds {
			ch <- prometheus.MustNewConstMetric(scheduleDesc, prometheus.GaugeValue, schedule.Interval(t.tenant, kind).Seconds(), id, kind)
		}
	}
	for state, n := range byState {
		ch <- prometheus.MustNewConstMetric(tenantsDesc, prometheus.GaugeValue, float64(n), state)
	}
}

type tenantSummary struct {
	tenant     *mappingv1.Tenant
	openIssues int64
}

// scanTenants reads every indexed tenant and its number of open issues in one pipeline. An index
// entry without a tenant (a create that failed half-way) is skipped, as ListTenants does.
func (s *Server) scanTenants(ctx context.Context) ([]tenantSummary, error) {
	ids, err := s.rdb.SMembers(ctx, tenantIndexKey).Result()
	if err != nil {
		return nil, err
	}
	slices.Sort(ids)
	pipe := s.rdb.Pipeline()
	blobs := make([]*redis.StringCmd, len(ids))
	issues := make([]*redis.IntCmd, len(ids))
	for i, id := range ids {
		blobs[i] = pipe.Get(ctx, key(id, "tenant"))
		issues[i] = pipe.HLen(ctx, key(id, "issues"))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	out := make([]tenantSummary, 0, len(ids))
	for i := range ids {
		blob, err := blobs[i].Bytes()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, err
		}
		t := &mappingv1.Tenant{}
		if err := proto.Unmarshal(blob, t); err != nil {
			return nil, err
		}
		n, err := issues[i].Result()
		if err != nil {
			return nil, err
		}
		out = append(out, tenantSummary{tenant: t, openIssues: n})
	}
	return out, nil
}
