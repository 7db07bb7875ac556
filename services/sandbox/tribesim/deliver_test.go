package tribesim_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/koppel/koppel/services/sandbox/tribesim"
)

// Each Tribe environment's webhooks go out on their own: an environment whose receiver is stuck
// (or has a long queue, an import's echoes) does not hold up another environment's.
func TestEnvironmentsDeliverIndependently(t *testing.T) {
	busy := start(t, tribesim.Options{}, tribesim.EnvironmentSpec{ID: "busy"})
	env, err := busy.sim.CreateEnvironment(tribesim.EnvironmentSpec{ID: "calm"})
	if err != nil {
		t.Fatal(err)
	}
	calm := &harness{t: t, sim: busy.sim, srv: busy.srv, env: env}
	_, tok := calm.token(env.ClientID, env.ClientSecret, "")
	calm.tok = tok["access_token"].(string)

	release := make(chan struct{})
	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	t.Cleanup(func() { close(release); stuck.Close() })
	got := make(chan struct{}, 10)
	fine := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- struct{}{} }))
	t.Cleanup(fine.Close)

	for _, c := range []struct {
		h   *harness
		url string
	}{{busy, stuck.URL}, {calm, fine.URL}} {
		if st, reg := c.h.do("POST", "/v1/webhooks", map[string]any{"entityType": "Relation.Organization", "webhookUrl": c.url}); st != 201 {
			t.Fatal(st, reg)
		}
	}
	for range 5 {
		busy.do("POST", "/v1/odata/Relation_Organization", map[string]any{"Name": "Druk B.V."})
	}
	calm.do("POST", "/v1/odata/Relation_Organization", map[string]any{"Name": "Rustig B.V."})
	select {
	case <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("the calm environment's webhook waited behind the busy one's stuck deliveries")
	}
}
