package schedule

import (
	"testing"
	"time"

	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
)

func TestSlotStartIsStableWithinASlot(t *testing.T) {
	base := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for _, interval := range []time.Duration{5 * time.Minute, time.Hour, 24 * time.Hour} {
		s := SlotStart("acme", "product", interval, base)
		if s.After(base) || base.Sub(s) >= interval {
			t.Fatalf("%s: slot %s does not contain %s", interval, s, base)
		}
		if got := SlotStart("acme", "product", interval, s.Add(interval-time.Nanosecond)); !got.Equal(s) {
			t.Fatalf("%s: last instant of the slot maps to %s, want %s", interval, got, s)
		}
		if got := SlotStart("acme", "product", interval, s.Add(interval)); !got.Equal(s.Add(interval)) {
			t.Fatalf("%s: next slot = %s", interval, got)
		}
	}
	if SlotStart("acme", "product", time.Hour, base).Equal(SlotStart("other", "product", time.Hour, base)) &&
		SlotStart("b", "product", time.Hour, base).Equal(SlotStart("c", "product", time.Hour, base)) {
		t.Fatal("tenants share one phase")
	}
}

func TestNextHonoursTenantSettings(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	ten := &mappingv1.Tenant{Id: "acme", Settings: &mappingv1.TenantSettings{ScheduleSeconds: map[string]int64{"product": 120}}}
	if next := Next(ten, "product", now); !next.After(now) || next.Sub(now) > 2*time.Minute {
		t.Fatalf("next product slot %s is not within 2 minutes of %s", next, now)
	}
	if next := Next(ten, "relation", now); !next.After(now) || next.Sub(now) > 24*time.Hour {
		t.Fatalf("next relation slot %s is not within a day", next)
	}
}
