package bus

import (
	"fmt"
	"slices"
	"strings"
)

// DefaultShard is the shard of every tenant not named in a shard list.
const DefaultShard = "default"

// Shards say which tenants were moved off the default shard, so that a big tenant gets its own
// consumers and workers (and its own autoscaling on their lag).
//
// A tenant's messages carry its shard as a fifth subject token (tribe.evt.acme.Relation_Person.big);
// the default shard's messages have four tokens, so a default consumer's filter
// (tribe.evt.*.Relation_Person) never matches a named shard's message. Routing happens at publish
// time and every message exists once, in one stream: moving a tenant loses nothing (the new
// shard's consumers are created before anything is published to them) and duplicates nothing
// (a message published before the move stays with the old shard's consumer, and a redelivered
// webhook still collapses on its message ID, which JetStream de-duplicates per stream, whatever
// the subject).
//
// The zero value is a single default shard.
type Shards struct {
	byTenant map[string]string
	names    []string // named shards, sorted; DefaultShard not included
}

// ParseShards reads a shard list of the form "big=acme,globex;eu=foo" (shards separated by
// semicolons, tenants by commas; spaces around names are ignored). An empty string means every
// tenant is in the default shard.
func ParseShards(s string) (Shards, error) {
	sh := Shards{byTenant: map[string]string{}}
	for part := range strings.SplitSeq(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, list, ok := strings.Cut(part, "=")
		name = strings.TrimSpace(name)
		if !ok {
			return Shards{}, fmt.Errorf("shard %q: want name=tenant,tenant", part)
		}
		if !ValidTenantID(name) {
			return Shards{}, fmt.Errorf("shard name %q: want lower-case letters, digits and dashes", name)
		}
		if name == DefaultShard {
			return Shards{}, fmt.Errorf("shard %q: the default shard takes every tenant not named and cannot be listed", name)
		}
		if slices.Contains(sh.names, name) {
			return Shards{}, fmt.Errorf("shard %q: listed twice", name)
		}
		sh.names = append(sh.names, name)
		for t := range strings.SplitSeq(list, ",") {
			t = strings.TrimSpace(t)
			if t == "" {
				continue
			}
			if !ValidTenantID(t) {
				return Shards{}, fmt.Errorf("shard %q: invalid tenant ID %q", name, t)
			}
			if other, dup := sh.byTenant[t]; dup {
				return Shards{}, fmt.Errorf("tenant %q is in shard %q and in shard %q", t, other, name)
			}
			sh.byTenant[t] = name
		}
	}
	slices.Sort(sh.names)
	return sh, nil
}

// MustParseShards is ParseShards for constants in tests; it panics on a bad list.
func MustParseShards(s string) Shards {
	sh, err := ParseShards(s)
	if err != nil {
		panic(err)
	}
	return sh
}

// Names returns every shard: the default shard first, then the named ones in order.
func (s Shards) Names() []string { return append([]string{DefaultShard}, s.names...) }

// Has reports whether name is a shard of the list (the default shard always is).
func (s Shards) Has(name string) bool {
	return name == DefaultShard || slices.Contains(s.names, name)
}

// Of returns the shard of a tenant.
func (s Shards) Of(tenantID string) string {
	if name, ok := s.byTenant[tenantID]; ok {
		return name
	}
	return DefaultShard
}

// Route returns the subject a message of a work subject is published on: the subject without
// any shard token, with the shard token of its tenant's current shard appended unless that is the
// default shard. Other subjects are returned unchanged.
func (s Shards) Route(subject string) string {
	if !strings.HasPrefix(subject, "tribe.evt.") && !strings.HasPrefix(subject, "sync.cmd.") {
		return subject
	}
	parts := strings.Split(subject, ".")
	if len(parts) < 4 {
		return subject
	}
	base := strings.Join(parts[:4], ".")
	if shard := s.Of(parts[2]); shard != DefaultShard {
		return base + "." + shard
	}
	return base
}

// ShardConsumer is the durable name of a worker consumer in a shard: the base name in the
// default shard ("relation-evt"), the base name and the shard in a named one ("relation-evt-big").
func ShardConsumer(base, shard string) string {
	if shard == "" || shard == DefaultShard {
		return base
	}
	return base + "-" + shard
}
