package deps

import "testing"

func TestWorkerConfigShards(t *testing.T) {
	base := WorkerConfig{Config: Config{MappingAddr: "mapping:9000", StreamReplicas: 1}, Concurrency: 8}
	for _, tc := range []struct {
		shards, shard string
		ok            bool
	}{
		{"", "default", true},
		{"big=acme", "big", true},
		{"big=acme", "default", true},
		{"", "big", false},               // a worker of a shard nobody routes to would idle forever
		{"big=acme;big=x", "big", false}, // a malformed list is refused, naming the variable
	} {
		cfg := base
		cfg.Shards, cfg.Shard = tc.shards, tc.shard
		if err := cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("shards %q shard %q: err = %v, want ok %v", tc.shards, tc.shard, err, tc.ok)
		}
	}
}
