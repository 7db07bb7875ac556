// Package schedule is when each tenant's sync kinds run: the default intervals, a tenant's own
// intervals from its settings, and the slot a moment falls in. Each tenant and kind has its own
// phase within the interval, so a thousand tenants do not all pull at midnight. The scheduler
// fires one command per slot; the status API shows the next slot.
package schedule

import (
	"hash/fnv"
	"time"

	"github.com/koppel/koppel/pkg/bus"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
)

// DefaultIntervals are the schedules of a tenant whose settings do not override them.
var DefaultIntervals = map[string]time.Duration{
	bus.KindRelation:     24 * time.Hour,
	bus.KindRelationScan: 5 * time.Minute,
	bus.KindProduct:      10 * time.Minute,
	bus.KindPayment:      time.Hour,
	// The safety net under Tribe's webhooks: a webhook lost reaches e-Boekhouden within this.
	bus.KindTribeScan: 15 * time.Minute,
}

// SlotStart is the start of the slot of kind for tenant that now falls in.
func SlotStart(tenant, kind string, interval time.Duration, now time.Time) time.Time {
	h := fnv.New64a()
	h.Write([]byte(tenant + "/" + kind))
	phase := time.Duration(h.Sum64() % uint64(interval))
	n := (now.UnixNano() - int64(phase)) / int64(interval)
	if now.UnixNano()-int64(phase) < 0 {
		n--
	}
	return time.Unix(0, n*int64(interval)+int64(phase)).UTC()
}

// Interval is the tenant's interval for kind.
func Interval(t *mappingv1.Tenant, kind string) time.Duration {
	if s := t.GetSettings().GetScheduleSeconds()[kind]; s > 0 {
		return time.Duration(s) * time.Second
	}
	return DefaultIntervals[kind]
}

// Next is when the next slot of kind starts for the tenant.
func Next(t *mappingv1.Tenant, kind string, now time.Time) time.Time {
	iv := Interval(t, kind)
	return SlotStart(t.GetId(), kind, iv, now).Add(iv)
}
