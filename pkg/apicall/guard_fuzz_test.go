package apicall

import (
	"net"
	"net/http"
	"strings"
	"testing"
)

// FuzzCheckURL: a credential base URL the guard lets through is one Go's HTTP client sends to an
// allowed origin, whatever tricks the string holds (user information, odd ports, escapes,
// trailing dots, IPv6 literals, backslashes).
func FuzzCheckURL(f *testing.F) {
	allowed := map[string]bool{"https://api.e-boekhouden.nl:443": true, "https://api.tribecrm.nl:8443": true, "http://127.0.0.1:8081": true}
	g, err := NewGuard([]string{"api.e-boekhouden.nl", "api.tribecrm.nl:8443", "http://127.0.0.1:8081"}, nil)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"https://api.e-boekhouden.nl", "https://api.e-boekhouden.nl@evil.example/", "https://evil.example#@api.e-boekhouden.nl",
		"https://api.e-boekhouden.nl.evil.example", "https://API.E-BOEKHOUDEN.NL.:443/v1", "http://127.0.0.1:8081/eboekhouden", "http://127.0.0.1:08081",
		"https://api.tribecrm.nl:8443\\@evil", "https://[::ffff:127.0.0.1]:8081", "https://api%2ee-boekhouden.nl", "//api.e-boekhouden.nl", "https:api.e-boekhouden.nl"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if g.CheckURL(raw) != nil {
			return
		}
		req, err := http.NewRequest("GET", raw, nil)
		if err != nil {
			return // the client would not send it anywhere
		}
		u := req.URL
		port := u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		origin := u.Scheme + "://" + net.JoinHostPort(strings.TrimSuffix(strings.ToLower(u.Hostname()), "."), port)
		if !allowed[origin] || u.User != nil {
			t.Fatalf("CheckURL let %q through, which goes to %s", raw, origin)
		}
	})
}
