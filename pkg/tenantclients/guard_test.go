package tenantclients

import (
	"errors"
	"testing"

	"github.com/koppel/koppel/pkg/apicall"
	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/config"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
)

// TestBaseURLsOffTheAllowListAreRefused: with the services' default configuration a client
// for a host that is not e-Boekhouden's or Tribe's is never built, and a worker that meets such
// a stored URL records an issue instead of retrying.
func TestBaseURLsOffTheAllowListAreRefused(t *testing.T) {
	var opts Options
	if err := config.Load(&opts, func(string) (string, bool) { return "", false }); err != nil {
		t.Fatal(err)
	}
	c, err := New(nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	eb, tr := c.Callers()
	for _, u := range []string{"https://api.e-boekhouden.nl", "https://api.e-boekhouden.nl/"} {
		if _, err := NewEBoekhouden(eb, "acme", u, "token"); err != nil {
			t.Errorf("e-Boekhouden %s: %v", u, err)
		}
	}
	if _, err := NewTribe(tr, "acme", "https://api.tribecrm.nl", "https://auth.tribecrm.nl", "id", "secret"); err != nil {
		t.Errorf("Tribe: %v", err)
	}
	for _, u := range []string{"http://169.254.169.254/latest", "https://evil.example", "http://api.e-boekhouden.nl", "https://api.e-boekhouden.nl:8443"} {
		if _, err := NewEBoekhouden(eb, "acme", u, "token"); !errors.Is(err, apicall.ErrHostNotAllowed) {
			t.Errorf("e-Boekhouden %s: %v, want ErrHostNotAllowed", u, err)
		}
	}
	_, err = NewTribe(tr, "acme", "https://api.tribecrm.nl", "https://10.0.0.1", "id", "secret")
	if !errors.Is(err, apicall.ErrHostNotAllowed) {
		t.Fatalf("Tribe auth URL off the list: %v", err)
	}
	if perr := AsIssue(&mappingv1.Tenant{Id: "acme"}, err); !bus.IsPermanent(perr) {
		t.Errorf("a refused stored URL is not a permanent failure with an issue: %v", perr)
	}
}
