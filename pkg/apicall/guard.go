package apicall

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrHostNotAllowed marks a URL whose scheme, host or port is not on the Guard's allow-list.
var ErrHostNotAllowed = errors.New("host not allowed")

// ErrAddressNotAllowed marks a connection refused at dial time because the address it would go
// to is private, loopback, link-local or otherwise not public, and not allowed.
var ErrAddressNotAllowed = errors.New("address not allowed")

// Guard keeps outbound calls where they belong: to an allow-list of origins (scheme, host and
// port), and, at dial time, away from addresses that are not public unless allowed. The URL
// check stops a tenant's base URL from naming a foreign host; the dial check stops a name that
// resolves (or is rebound) to the cluster's own addresses, the cloud's metadata service or the
// node. Together with a client that follows no redirect, the stored credentials go only to the
// hosts they were meant for.
type Guard struct {
	origins []origin
	allowed []netip.Prefix
}

type origin struct {
	scheme, host, port string
}

// NewGuard returns a Guard. Each allowed host is an origin: "api.e-boekhouden.nl" (https on
// 443), "host:8443" (https on that port) or "http://127.0.0.1:8081" (exactly that); a URL must
// match one. Each allowed network is a CIDR ("127.0.0.0/8") whose addresses may be dialled
// although they are not public.
func NewGuard(allowedHosts, allowedNetworks []string) (*Guard, error) {
	g := &Guard{}
	for _, h := range allowedHosts {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		raw := h
		if !strings.Contains(raw, "://") {
			raw = "https://" + raw
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return nil, fmt.Errorf("allowed host %q: want host, host:port or scheme://host[:port]", h)
		}
		g.origins = append(g.origins, originOf(u))
	}
	if len(g.origins) == 0 {
		return nil, errors.New("allowed hosts: none given")
	}
	for _, n := range allowedNetworks {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		p, err := netip.ParsePrefix(n)
		if err != nil {
			return nil, fmt.Errorf("allowed network %q: want a CIDR such as 127.0.0.0/8", n)
		}
		g.allowed = append(g.allowed, p.Masked())
	}
	return g, nil
}

func originOf(u *url.URL) origin {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return origin{scheme: u.Scheme, host: strings.ToLower(strings.TrimSuffix(u.Hostname(), ".")), port: port}
}

// CheckURL reports whether raw is an absolute http(s) URL, without user information, on an
// allowed origin. The error wraps ErrHostNotAllowed and names neither the URL's path nor query.
func (g *Guard) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" {
		return fmt.Errorf("%w: not an absolute http(s) URL", ErrHostNotAllowed)
	}
	if u.User != nil {
		return fmt.Errorf("%w: a URL with user information", ErrHostNotAllowed)
	}
	o := originOf(u)
	for _, a := range g.origins {
		if a == o {
			return nil
		}
	}
	return fmt.Errorf("%w: %s://%s", ErrHostNotAllowed, o.scheme, net.JoinHostPort(o.host, o.port))
}

// CheckAddress reports whether a connection to addr (an IP address) may be made: public
// addresses may, others only inside an allowed network.
func (g *Guard) CheckAddress(addr netip.Addr) error {
	addr = addr.Unmap()
	for _, p := range g.allowed {
		if p.Contains(addr) {
			return nil
		}
	}
	if !IsPublic(addr) {
		return fmt.Errorf("%w: %s is not a public address", ErrAddressNotAllowed, addr)
	}
	return nil
}

// control is the net.Dialer's Control: it sees the address after name resolution, just before
// the connection is made, so a host name that resolves to an inner address is caught whatever
// the DNS answered when the URL was checked.
func (g *Guard) control(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrAddressNotAllowed, err)
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("%w: %q is not an IP address", ErrAddressNotAllowed, host)
	}
	return g.CheckAddress(addr)
}

// Transport returns an HTTP transport that dials through the Guard's check (proxies from the
// environment are used as usual; an in-cluster proxy's network must then be allowed).
func (g *Guard) Transport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 100
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: g.control}
	tr.DialContext = d.DialContext
	return tr
}

// notPublic are the ranges IsPublic refuses beside what netip classifies itself.
var notPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT, also some clusters' pod ranges
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and the broadcast address
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64: an IPv4 address in disguise
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("2002::/16"),       // 6to4: an IPv4 address in disguise
	netip.MustParsePrefix("2001::/32"),       // Teredo
}

// IsPublic reports whether addr is a public unicast address: not loopback, private (RFC 1918,
// unique local), link-local (169.254.0.0/16 with the cloud metadata service, fe80::/10),
// carrier-grade NAT, unspecified, multicast, documentation, reserved, or an IPv4 address
// wrapped in IPv6.
func IsPublic(addr netip.Addr) bool {
	addr = addr.Unmap()
	if !addr.IsValid() || addr.IsLoopback() || addr.IsPrivate() || addr.IsLinkLocalUnicast() || addr.IsLinkLocalMulticast() ||
		addr.IsInterfaceLocalMulticast() || addr.IsMulticast() || addr.IsUnspecified() {
		return false
	}
	for _, p := range notPublic {
		if p.Contains(addr) {
			return false
		}
	}
	return true
}

// noRedirect makes a client hand a redirect back as the answer instead of following it: a
// remote API that redirects is either misconfigured or sending the credentials elsewhere.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// WithGuard sends every call through g: URLs are checked against its allow-list before any
// connection, and connections against its address rules at dial time. It replaces the default
// HTTP client (not one given with WithHTTPClient, which is used as is).
func WithGuard(g *Guard) Option { return func(k *Caller) { k.guard = g } }

// CheckURL checks raw against the Caller's Guard; without one every URL passes.
func (c *Caller) CheckURL(raw string) error {
	if c.guard == nil {
		return nil
	}
	return c.guard.CheckURL(raw)
}

// HTTPClient returns a client on the Caller's transport (the Guard's dial check included) that
// follows no redirect, with an overall timeout, for the calls a library makes itself (an OAuth
// token request).
func (c *Caller) HTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{Transport: c.client.Transport, CheckRedirect: noRedirect, Timeout: timeout}
}
