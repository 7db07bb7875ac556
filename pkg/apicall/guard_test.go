package apicall

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
)

// countingServer counts the requests it gets.
func countingServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if h != nil {
			h(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// TestGuardRefusesInnerAddressesAtDialTime: a URL on the allow-list whose host is a loopback
// address is refused when the connection would be made, once (no retry), and the server never
// hears of it; with the network allowed the same call goes through.
func TestGuardRefusesInnerAddressesAtDialTime(t *testing.T) {
	srv, hits := countingServer(t, nil)
	strict, err := NewGuard([]string{srv.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := newCaller(t, nil, WithGuard(strict))
	_, err = c.Do(context.Background(), &Request{URL: srv.URL + "/v1/relation", Endpoint: "GET /v1/relation"})
	if !errors.Is(err, ErrAddressNotAllowed) || IsTransient(err) {
		t.Fatalf("loopback: %v, want a permanent ErrAddressNotAllowed", err)
	}
	if hits.Load() != 0 {
		t.Fatalf("the server got %d requests", hits.Load())
	}

	open, err := NewGuard([]string{srv.URL}, []string{"127.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	c = newCaller(t, nil, WithGuard(open))
	resp, err := c.Do(context.Background(), &Request{URL: srv.URL + "/v1/relation"})
	if err != nil || resp.StatusCode != 200 || hits.Load() != 1 {
		t.Fatalf("allowed network: %v, %v, %d hits", resp, err, hits.Load())
	}
}

func TestGuardChecksTheOrigin(t *testing.T) {
	srv, hits := countingServer(t, nil)
	g, err := NewGuard([]string{"api.e-boekhouden.nl", "http://127.0.0.1:1"}, []string{"127.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	c := newCaller(t, nil, WithGuard(g))
	if _, err := c.Do(context.Background(), &Request{URL: srv.URL + "/x"}); !errors.Is(err, ErrHostNotAllowed) {
		t.Fatalf("a host off the list: %v, want ErrHostNotAllowed", err)
	}
	if hits.Load() != 0 {
		t.Fatal("a host off the list was called")
	}
	for raw, ok := range map[string]bool{
		"https://api.e-boekhouden.nl/v1":      true,
		"https://API.e-boekhouden.nl./v1":     true,
		"https://api.e-boekhouden.nl:443/v1":  true,
		"http://api.e-boekhouden.nl/v1":       false, // https only unless listed with http://
		"https://api.e-boekhouden.nl:8443/v1": false,
		"https://api.e-boekhouden.nl.evil/v1": false,
		"https://evil.example/v1":             false,
		"https://u:p@api.e-boekhouden.nl/v1":  false,
		"http://127.0.0.1:1/v1":               true,
		"http://127.0.0.1:2/v1":               false,
		"ftp://api.e-boekhouden.nl/v1":        false,
		"/v1/relation":                        false,
	} {
		if err := g.CheckURL(raw); (err == nil) != ok {
			t.Errorf("CheckURL(%q) = %v, want allowed %v", raw, err, ok)
		}
	}
	for _, bad := range [][]string{nil, {"https://host/path"}, {"ftp://host"}, {"u:p@host"}} {
		if _, err := NewGuard(bad, nil); err == nil {
			t.Errorf("NewGuard(%q) accepted", bad)
		}
	}
	if _, err := NewGuard([]string{"host"}, []string{"10.0.0.0"}); err == nil {
		t.Error("a network without a prefix length accepted")
	}
}

// TestRedirectsAreNotFollowed: a redirect comes back as the answer; the host it points at never
// sees the request (nor its Authorization header), with or without a Guard, and the token
// client does the same.
func TestRedirectsAreNotFollowed(t *testing.T) {
	elsewhere, stolen := countingServer(t, nil)
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+"/collect", http.StatusTemporaryRedirect)
	})
	g, err := NewGuard([]string{srv.URL, elsewhere.URL}, []string{"127.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*Caller{"default": newCaller(t, nil), "guarded": newCaller(t, nil, WithGuard(g))} {
		resp, err := c.Do(context.Background(), &Request{Method: "POST", URL: srv.URL + "/v1/session", Body: []byte(`{"accessToken":"t"}`),
			Header: http.Header{"Authorization": {"Bearer secret"}}})
		if err != nil || resp.StatusCode != http.StatusTemporaryRedirect {
			t.Errorf("%s: %v %v, want the 307 itself", name, resp, err)
		}
		tok, err := c.HTTPClient(0).Post(srv.URL+"/oauth2/token", "application/x-www-form-urlencoded", strings.NewReader("client_secret=s"))
		if err != nil || tok.StatusCode != http.StatusTemporaryRedirect {
			t.Errorf("%s token client: %v %v, want the 307 itself", name, tok, err)
		} else {
			tok.Body.Close()
		}
	}
	if stolen.Load() != 0 {
		t.Fatalf("the redirect was followed %d times", stolen.Load())
	}
}

func TestIsPublic(t *testing.T) {
	for _, s := range []string{"10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "127.0.0.1", "169.254.169.254",
		"100.64.0.1", "100.127.255.254", "0.0.0.0", "255.255.255.255", "224.0.0.1", "::1", "::", "fe80::1", "fc00::1", "fd12::1",
		"::ffff:10.0.0.1", "::ffff:127.0.0.1", "64:ff9b::a00:1", "2002:a00:1::1", "198.18.0.1"} {
		if IsPublic(netip.MustParseAddr(s)) {
			t.Errorf("%s counted as public", s)
		}
	}
	for _, s := range []string{"8.8.8.8", "145.131.1.1", "100.128.0.1", "172.32.0.1", "2a00:1450:400e::1", "::ffff:8.8.8.8"} {
		if !IsPublic(netip.MustParseAddr(s)) {
			t.Errorf("%s counted as not public", s)
		}
	}
}
