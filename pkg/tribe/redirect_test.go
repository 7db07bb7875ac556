package tribe_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/koppel/koppel/pkg/apicall"
	"github.com/koppel/koppel/pkg/tribe"
	"github.com/prometheus/client_golang/prometheus"
)

// TestTokenRequestFollowsNoRedirect: an auth host that redirects the token request does not get
// the client secret re-posted to the host it points at; the redirect is a failed token request.
func TestTokenRequestFollowsNoRedirect(t *testing.T) {
	var stolen atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stolen.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"x","token_type":"bearer","expires_in":3600}`))
	}))
	defer elsewhere.Close()
	auth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer auth.Close()
	caller, err := apicall.New("tribe", apicall.WithRegisterer(prometheus.NewRegistry()), apicall.WithMaxAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	c, err := tribe.New(tribe.Config{BaseURL: auth.URL, AuthURL: auth.URL, ClientID: "id", ClientSecret: "secret", Caller: caller})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Ping(context.Background())
	var ae *tribe.AuthError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusTemporaryRedirect {
		t.Errorf("ping through a redirecting auth host: %v, want a token error with the 307", err)
	}
	if stolen.Load() != 0 {
		t.Fatalf("the token request was re-posted to the redirect's target %d times", stolen.Load())
	}
}
