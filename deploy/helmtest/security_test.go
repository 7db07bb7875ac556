package helmtest

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// outboundServices are the services that call e-Boekhouden and Tribe: the admin service logs in
// to both when credentials are stored and registers the webhooks; the gateway calls neither.
var outboundServices = []string{"admin", "relation", "product", "invoice", "payment"}

// TestSecurityDefaults: what helm template renders without values carries the hardening of
// issue 11: each caller's own mapping token and the mapping service's token hashes, the outbound
// allow-list on the services that call out, bounded streams with the events' de-duplication
// window on every bus service, the webhook intake's limits, and internet egress that leaves out
// link-local and carrier-grade NAT beside the private ranges.
func TestSecurityDefaults(t *testing.T) {
	m := render(t, nil, "")
	for _, d := range m.Deployments {
		component := d.Spec.Template.Labels[componentLabel]
		c := d.Spec.Template.Spec.Containers[0]
		if slices.Contains(busServices, component) {
			e, ok := env(c, "KOPPEL_MAPPING_TOKEN")
			if !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Key != component || e.ValueFrom.SecretKeyRef.Name != "koppel-mapping-auth" {
				t.Errorf("Deployment %s: KOPPEL_MAPPING_TOKEN %+v, want key %q of the Secret koppel-mapping-auth", d.Name, e, component)
			}
			for k, want := range map[string]string{"KOPPEL_STREAM_MAX_BYTES": "1073741824", "KOPPEL_EVENT_DEDUP_WINDOW": "15m"} {
				if v, _ := envValue(c, k); v != want {
					t.Errorf("Deployment %s: %s %q, want %q", d.Name, k, v, want)
				}
			}
		}
		v, ok := envValue(c, "KOPPEL_OUTBOUND_HOSTS")
		if slices.Contains(outboundServices, component) != ok {
			t.Errorf("Deployment %s: KOPPEL_OUTBOUND_HOSTS set %v", d.Name, ok)
		} else if ok && v != "api.e-boekhouden.nl,api.tribecrm.nl,auth.tribecrm.nl" {
			t.Errorf("Deployment %s: KOPPEL_OUTBOUND_HOSTS %q, want the real e-Boekhouden and Tribe hosts", d.Name, v)
		}
		if component == "mapping" {
			e, ok := env(c, "KOPPEL_GRPC_CALLER_TOKEN_HASHES")
			if !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Key != "token-hashes" {
				t.Errorf("mapping: KOPPEL_GRPC_CALLER_TOKEN_HASHES %+v, want a reference to token-hashes", e)
			}
		}
		if component == "gateway" {
			for k, want := range map[string]string{"KOPPEL_WEBHOOK_CONCURRENCY": "32", "KOPPEL_WEBHOOK_REPLAY_WINDOW": "5m"} {
				if v, _ := envValue(c, k); v != want {
					t.Errorf("gateway: %s %q, want %q", k, v, want)
				}
			}
		}
	}
	for _, np := range m.NetworkPolicies {
		for _, rule := range np.Spec.Egress {
			for _, peer := range rule.To {
				if peer.IPBlock == nil || peer.IPBlock.CIDR != "0.0.0.0/0" {
					continue
				}
				for _, want := range []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10"} {
					if !slices.Contains(peer.IPBlock.Except, want) {
						t.Errorf("NetworkPolicy %s: egress to the internet does not leave out %s: %v", np.Name, want, peer.IPBlock.Except)
					}
				}
			}
		}
	}
	if len(m.Certificates) != 0 {
		t.Errorf("%d Certificates without mappingAuth.tls", len(m.Certificates))
	}
}

// TestMappingMutualTLS: with mappingAuth.tls and cert-manager, the mapping service gets a server
// certificate for its Service's names and every caller a client certificate named after it,
// each mounted where the service's TLS variables point.
func TestMappingMutualTLS(t *testing.T) {
	m := render(t, nil, "mappingAuth: {tls: {enabled: true, certManager: {issuerRef: {name: koppel-ca, kind: ClusterIssuer}}}}")
	certs := map[string]*certificate{}
	for _, c := range m.Certificates {
		certs[c.Spec.SecretName] = c
		if c.Spec.IssuerRef.Name != "koppel-ca" || c.Spec.IssuerRef.Kind != "ClusterIssuer" {
			t.Errorf("Certificate %s: issuer %+v", c.Name, c.Spec.IssuerRef)
		}
	}
	mappingSvc := "koppel-mapping"
	for _, s := range busServices {
		if len(deploymentsOf(m, s)) == 0 {
			t.Errorf("no Deployment of %s, a caller of the mapping service", s)
		}
	}
	for _, d := range m.Deployments {
		component := d.Spec.Template.Labels[componentLabel]
		pod := d.Spec.Template.Spec
		c := pod.Containers[0]
		var secret string
		for _, v := range pod.Volumes {
			if v.Name == "mapping-tls" && v.Secret != nil {
				secret = v.Secret.SecretName
			}
		}
		cert := certs[secret]
		if cert == nil {
			t.Errorf("Deployment %s: mounts no Secret of a Certificate (%q)", d.Name, secret)
			continue
		}
		dir := ""
		for _, vm := range c.VolumeMounts {
			if vm.Name == "mapping-tls" && vm.ReadOnly {
				dir = vm.MountPath
			}
		}
		vars := []string{"KOPPEL_MAPPING_TLS_CA", "KOPPEL_MAPPING_TLS_CERT", "KOPPEL_MAPPING_TLS_KEY"}
		if component == "mapping" {
			vars = []string{"KOPPEL_GRPC_TLS_CLIENT_CA", "KOPPEL_GRPC_TLS_CERT", "KOPPEL_GRPC_TLS_KEY"}
			if !slices.Contains(cert.Spec.DNSNames, mappingSvc) || !slices.Equal(cert.Spec.Usages, []string{"server auth"}) {
				t.Errorf("mapping Certificate: names %v usages %v, want %s for server auth", cert.Spec.DNSNames, cert.Spec.Usages, mappingSvc)
			}
		} else if cert.Spec.CommonName != component || !slices.Equal(cert.Spec.Usages, []string{"client auth"}) {
			t.Errorf("Deployment %s: client Certificate CN %q usages %v, want CN %q for client auth", d.Name, cert.Spec.CommonName, cert.Spec.Usages, component)
		}
		for i, name := range vars {
			want := fmt.Sprintf("%s/%s", dir, []string{"ca.crt", "tls.crt", "tls.key"}[i])
			if v, _ := envValue(c, name); dir == "" || v != want {
				t.Errorf("Deployment %s: %s %q, want %s in the mounted Secret", d.Name, name, v, want)
			}
		}
	}
	if addr, _ := envValue(deploymentsOf(m, "gateway")[0].Spec.Template.Spec.Containers[0], "KOPPEL_MAPPING_ADDR"); !strings.HasPrefix(addr, mappingSvc+":") {
		t.Errorf("KOPPEL_MAPPING_ADDR %q is not a name of the server certificate", addr)
	}
}

// TestImagesPinnedByDigest: a service's digest makes its image a reference by digest, and with
// image.requireDigest a service without one does not render.
func TestImagesPinnedByDigest(t *testing.T) {
	digest := func(i int) string { return fmt.Sprintf("sha256:%064x", i) }
	values := fmt.Sprintf(`
image: {requireDigest: true}
gateway: {image: {repository: ghcr.io/koppel/gateway, digest: %q}}
scheduler: {image: {repository: ghcr.io/koppel/scheduler, digest: %q}}
mapping: {image: {repository: ghcr.io/koppel/mapping, digest: %q}}
workers:
  relation: {image: {repository: ghcr.io/koppel/relation, digest: %q}}
  product: {image: {repository: ghcr.io/koppel/product, digest: %q}}
  invoice: {image: {repository: ghcr.io/koppel/invoice, digest: %q}}
  payment: {image: {repository: ghcr.io/koppel/payment, digest: %q}}
admin: {image: {repository: ghcr.io/koppel/admin, digest: %q}}
`, digest(1), digest(2), digest(3), digest(4), digest(5), digest(6), digest(7), digest(8))
	m := render(t, nil, values)
	want := map[string]string{"gateway": digest(1), "scheduler": digest(2), "mapping": digest(3), "relation": digest(4), "product": digest(5), "invoice": digest(6), "payment": digest(7), "admin": digest(8)}
	for _, s := range chartServices {
		if _, ok := want[s]; !ok || len(deploymentsOf(m, s)) == 0 {
			t.Errorf("%s: no digest given or no Deployment rendered", s)
		}
	}
	for _, d := range m.Deployments {
		component := d.Spec.Template.Labels[componentLabel]
		if img := d.Spec.Template.Spec.Containers[0].Image; img != "ghcr.io/koppel/"+component+"@"+want[component] {
			t.Errorf("Deployment %s: image %q, want it by digest %s", d.Name, img, want[component])
		}
		if d.Spec.Template.Spec.Containers[0].ImagePullPolicy != corev1.PullIfNotPresent {
			t.Errorf("Deployment %s: pull policy %s", d.Name, d.Spec.Template.Spec.Containers[0].ImagePullPolicy)
		}
	}
}

// digestsExcept is values that give every service of the chart an image digest but skip, so
// that image.requireDigest can only fail on skip.
func digestsExcept(skip string) string {
	var top, workers []string
	for i, s := range chartServices {
		if s == skip {
			continue
		}
		line := fmt.Sprintf("%s: {image: {repository: ghcr.io/koppel/%s, digest: 'sha256:%064x'}}", s, s, i+1)
		if _, worker := workerConsumers[s]; worker {
			workers = append(workers, "  "+line)
		} else {
			top = append(top, line)
		}
	}
	return strings.Join(top, "\n") + "\nworkers:\n" + strings.Join(workers, "\n") + "\n"
}
