package helmtest

import (
	"slices"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
)

// The admin API (issue 11 item 7) has its own service and port, is left out of the public
// Ingress, and gets an Ingress of its own only when asked, and then only with TLS.

const adminHTTPPort = 8082

// adminPaths are requests to the admin service: the API and the console.
var adminPaths = []string{"/admin/v1/tenants", "/console/"}

// prefixMatches is an Ingress path of type Prefix matching a request path: element by element.
func prefixMatches(prefix, path string) bool {
	prefix = strings.TrimSuffix(prefix, "/")
	return prefix == "" || path == prefix || strings.HasPrefix(path, prefix+"/")
}

func TestAdminIngress(t *testing.T) {
	t.Run("off by default", func(t *testing.T) {
		for _, r := range renders {
			m := render(t, r.files, "")
			admin := serviceNamed(m, "koppel-admin")
			if admin == nil {
				t.Fatalf("%s: no Service koppel-admin", r.name)
			}
			for _, ing := range m.Ingresses {
				for _, rule := range ing.Spec.Rules {
					if rule.HTTP == nil {
						continue
					}
					for _, p := range rule.HTTP.Paths {
						for _, req := range adminPaths {
							if prefixMatches(p.Path, req) {
								t.Errorf("%s: Ingress %s sends %s%s (path %s) to %s", r.name, ing.Name, rule.Host, req, p.Path, p.Backend.Service.Name)
							}
						}
						if p.Backend.Service != nil && p.Backend.Service.Name == admin.Name {
							t.Errorf("%s: Ingress %s leads to the admin service", r.name, ing.Name)
						}
					}
				}
			}
		}
	})

	t.Run("on, with TLS", func(t *testing.T) {
		m := render(t, []string{"testdata/moved-tenant.yaml"}, `
admin:
  ingress:
    enabled: true
    className: nginx-internal
    annotations: {nginx.ingress.kubernetes.io/whitelist-source-range: 10.0.0.0/8}
    hosts: [koppel-admin.example.com]
    tls: [{secretName: koppel-admin-tls, hosts: [koppel-admin.example.com]}]
`)
		var ing *networkingv1.Ingress
		for _, i := range m.Ingresses {
			if i.Labels[componentLabel] == "admin" {
				if ing != nil {
					t.Fatalf("Ingresses %s and %s of the admin service", ing.Name, i.Name)
				}
				ing = i
			}
		}
		if ing == nil || len(m.Ingresses) != 2 {
			t.Fatalf("%d Ingresses, want the gateway's and one of the admin service", len(m.Ingresses))
		}
		admin := deploymentsOf(m, "admin")[0]
		routes := ingressRoutes(t, m, ing, admin, adminHTTPPort)
		if len(routes) != 1 || len(routes["koppel-admin.example.com"]) == 0 {
			t.Errorf("admin Ingress routes %v, want koppel-admin.example.com only", routes)
		}
		for _, req := range adminPaths {
			if !slices.ContainsFunc(routes["koppel-admin.example.com"], func(p string) bool { return prefixMatches(p, req) }) {
				t.Errorf("admin Ingress: %s does not reach the admin service (paths %v)", req, routes["koppel-admin.example.com"])
			}
		}
		if len(ing.Spec.TLS) != 1 || ing.Spec.TLS[0].SecretName != "koppel-admin-tls" || !slices.Equal(ing.Spec.TLS[0].Hosts, []string{"koppel-admin.example.com"}) {
			t.Errorf("admin Ingress TLS %+v, want koppel-admin-tls for koppel-admin.example.com", ing.Spec.TLS)
		}
		if c := ing.Spec.IngressClassName; c == nil || *c != "nginx-internal" {
			t.Errorf("admin Ingress class %v, want nginx-internal", c)
		}
		if ing.Annotations["nginx.ingress.kubernetes.io/whitelist-source-range"] != "10.0.0.0/8" {
			t.Errorf("admin Ingress annotations %v", ing.Annotations)
		}
		// Tribe still reaches the gateway, not the admin host.
		if v, _ := envValue(admin.Spec.Template.Spec.Containers[0], "KOPPEL_PUBLIC_URL"); v != "https://koppel.example.com" {
			t.Errorf("admin: KOPPEL_PUBLIC_URL %q, want the gateway's Ingress host", v)
		}
		for _, i := range m.Ingresses {
			if i != ing {
				if r := ingressRoutes(t, m, i, deploymentsOf(m, "gateway")[0], 8080); !slices.Equal(r["koppel.example.com"], []string{"/webhooks"}) {
					t.Errorf("gateway Ingress routes %v beside the admin Ingress", r)
				}
			}
		}
	})

	// An enabled admin Ingress without TLS would carry the bearer tokens in the clear. The
	// schema refuses it; the template too, for installs that skip the schema.
	for _, tc := range []struct{ name, values, want string }{
		{"refused without TLS", "admin: {ingress: {enabled: true, hosts: [a.example.com]}}",
			"admin.ingress.tls: an enabled admin Ingress needs TLS"},
		{"refused with a host outside TLS", "admin: {ingress: {enabled: true, hosts: [a.example.com, b.example.com], tls: [{secretName: s, hosts: [a.example.com]}]}}",
			`admin.ingress.tls: host "b.example.com" is in no tls entry's hosts`},
		{"refused without hosts", "admin: {ingress: {enabled: true, hosts: [], tls: [{secretName: s, hosts: [a.example.com]}]}}",
			"admin.ingress.hosts: at least one host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := templateChart(t, nil, tc.values, "--skip-schema-validation")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to say %q; rendered:\n%.300s", err, tc.want, out)
			}
		})
	}
	t.Run("the schema refuses it without TLS", func(t *testing.T) {
		_, err := templateChart(t, nil, "admin: {ingress: {enabled: true, hosts: [a.example.com], tls: []}}")
		if err == nil || !strings.Contains(err.Error(), "/admin/ingress/tls") {
			t.Fatalf("error %v, want the schema to name /admin/ingress/tls", err)
		}
	})
}

// TestAdminNetworkPolicy: the admin API's port admits networkPolicy.adminIngressPeers only: by
// default the pods of the release's namespace, and nobody when the list is empty (kubectl
// port-forward still works: it enters the pod's own network namespace).
func TestAdminNetworkPolicy(t *testing.T) {
	for _, tc := range []struct {
		name, values string
		// want is the peers of the admin port's rule; nil: no rule opens it.
		want func(p []networkingv1.NetworkPolicyPeer) bool
	}{
		{"default: the release's namespace", "", func(p []networkingv1.NetworkPolicyPeer) bool {
			return len(p) == 1 && p[0].PodSelector != nil && len(p[0].PodSelector.MatchLabels) == 0 &&
				len(p[0].PodSelector.MatchExpressions) == 0 && p[0].NamespaceSelector == nil && p[0].IPBlock == nil
		}},
		{"an ingress controller", "networkPolicy: {adminIngressPeers: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ingress-nginx}}}]}",
			func(p []networkingv1.NetworkPolicyPeer) bool {
				return len(p) == 1 && p[0].PodSelector == nil && p[0].NamespaceSelector != nil &&
					p[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] == "ingress-nginx"
			}},
		{"empty: nobody", "networkPolicy: {adminIngressPeers: []}", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := render(t, nil, tc.values)
			admins := podsOf(m, "admin")
			if len(admins) != 1 {
				t.Fatalf("%d Deployments of admin, want one", len(admins))
			}
			var rules []networkingv1.NetworkPolicyIngressRule
			for _, np := range m.NetworkPolicies {
				if !selects(t, &np.Spec.PodSelector, admins[0]) {
					continue
				}
				for _, rule := range np.Spec.Ingress {
					if slices.Contains(policyPorts(t, np.Name, rule.Ports), "TCP/8082") {
						rules = append(rules, rule)
					}
				}
			}
			switch {
			case tc.want == nil && len(rules) != 0:
				t.Errorf("admin port open to %+v, want no rule", rules)
			case tc.want != nil && (len(rules) != 1 || !tc.want(rules[0].From)):
				t.Errorf("admin port rules %+v", rules)
			}
		})
	}
}
