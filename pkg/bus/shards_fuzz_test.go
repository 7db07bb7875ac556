package bus_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/koppel/koppel/pkg/bus"
)

// FuzzParseShards: whatever KOPPEL_SHARDS holds, ParseShards either refuses it or returns shards
// the services can rely on: valid names other than "default", each tenant in one shard, routing
// that sends a tenant's subjects to its shard only, and the same shards when written back.
func FuzzParseShards(f *testing.F) {
	for _, s := range []string{"", "big=acme", "big=acme,globex;eu=foo", " big = acme , ; ", "default=acme", "big=acme;big=foo",
		"big=acme;eu=acme", "Big=acme", "big=acme_corp", "=acme", "big", ";;", "a=b=c", "big=acme.x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sh, err := bus.ParseShards(s)
		if err != nil {
			return
		}
		names := sh.Names()
		if names[0] != bus.DefaultShard || slices.Contains(names[1:], bus.DefaultShard) {
			t.Fatalf("%q: shards %v", s, names)
		}
		var parts []string
		seen := map[string]bool{}
		for _, name := range names[1:] {
			if !bus.ValidTenantID(name) || seen[name] {
				t.Fatalf("%q: shard name %q", s, name)
			}
			seen[name] = true
			var tenants []string
			for _, part := range strings.Split(s, ";") {
				n, list, _ := strings.Cut(part, "=")
				if strings.TrimSpace(n) != name {
					continue
				}
				for tn := range strings.SplitSeq(list, ",") {
					if tn = strings.TrimSpace(tn); tn != "" {
						tenants = append(tenants, tn)
					}
				}
			}
			for _, tn := range tenants {
				if !bus.ValidTenantID(tn) || sh.Of(tn) != name {
					t.Fatalf("%q: tenant %q of shard %s is in shard %q", s, tn, name, sh.Of(tn))
				}
				subj, err := bus.TribeEventSubject(tn, bus.EntityPerson)
				if err != nil {
					t.Fatal(err)
				}
				if routed := sh.Route(subj); routed != subj+"."+name || bus.TenantOf(routed) != tn {
					t.Fatalf("%q: %s routed to %s", s, subj, routed)
				}
			}
			parts = append(parts, name+"="+strings.Join(tenants, ","))
		}
		again, err := bus.ParseShards(strings.Join(parts, ";"))
		if err != nil || !slices.Equal(again.Names(), names) {
			t.Fatalf("%q written back as %q: %v, %v", s, strings.Join(parts, ";"), again.Names(), err)
		}
	})
}
