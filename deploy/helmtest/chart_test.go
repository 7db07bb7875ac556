package helmtest

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/koppel/koppel/pkg/bus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const (
	componentLabel = "app.kubernetes.io/component"
	opsPort        = 9090
)

// workerConsumers are the consumers each worker service consumes, by base name: the handler
// maps of services/<name>/main.go. TestWorkerConsumersCoverTheBus keeps this list whole.
var workerConsumers = map[string][]string{
	"relation": {bus.ConsumerRelationEvents, bus.ConsumerRelationCommands},
	"product":  {bus.ConsumerProductCommands},
	"invoice":  {bus.ConsumerInvoiceEvents},
	"payment":  {bus.ConsumerPaymentCommands},
}

// busServices are the services that use NATS and call the mapping service; the mapping service
// is the other one.
var busServices = []string{"gateway", "admin", "scheduler", "relation", "product", "invoice", "payment"}

// renders are the values the invariants are checked with: the defaults, and a tenant moved to
// a shard of its own beside a shared named shard. tenants says where each tenant must end up.
var renders = []struct {
	name    string
	files   []string
	tenants map[string]string
}{
	{name: "defaults", tenants: map[string]string{"acme": "default", "globex": "default", "initech": "default"}},
	{name: "moved-tenant", files: []string{"testdata/moved-tenant.yaml"},
		tenants: map[string]string{"acme": "acme", "globex": "eu", "initech": "eu", "hooli": "default"}},
}

func TestLint(t *testing.T) {
	for _, r := range renders {
		t.Run(r.name, func(t *testing.T) {
			args := append([]string{"lint", chartDir, "--strict", "--kube-version", kubeVersion}, valuesArgs(t, r.files, "")...)
			if out, err := runHelm(args...); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
		})
	}
	// helm lint logs a template's fail without failing, so only the schema's rules count here;
	// TestBadValuesFail covers the rest with helm template.
	t.Run("fails on a bad shard name", func(t *testing.T) {
		args := append([]string{"lint", chartDir, "--strict", "--kube-version", kubeVersion},
			valuesArgs(t, nil, "shards: [{name: Big, tenants: [acme]}]")...)
		out, err := runHelm(args...)
		if err == nil || !strings.Contains(out, "'Big' does not match pattern") {
			t.Fatalf("lint of a bad shard name: err %v, output:\n%s", err, out)
		}
	})
}

func TestInvariants(t *testing.T) {
	for _, r := range renders {
		t.Run(r.name, func(t *testing.T) {
			m := render(t, r.files, "")
			checkDeployments(t, m)
			checkNetworkPolicies(t, m)
			checkSecrets(t, m)
			checkEnv(t, m)
			checkShards(t, m, r.tenants)
			checkRules(t, m)
			checkDashboards(t, m, "grafana_dashboard", "1")
		})
	}
}

// checkDeployments: every Deployment selects only its own pods, runs its image, has probes on
// the ops port, requests and limits, exactly one PodDisruptionBudget and a ServiceMonitor.
func checkDeployments(t *testing.T, m *manifests) {
	t.Helper()
	components := map[string]int{}
	for _, d := range m.Deployments {
		pods := d.Spec.Template.Labels
		component := pods[componentLabel]
		components[component]++
		for _, other := range m.Deployments {
			if got := selects(t, d.Spec.Selector, other.Spec.Template.Labels); got != (other == d) {
				t.Errorf("Deployment %s: selector matches the pods of %s: %v", d.Name, other.Name, got)
			}
		}
		if len(d.Spec.Template.Spec.Containers) != 1 {
			t.Fatalf("Deployment %s: want one container, got %d", d.Name, len(d.Spec.Template.Spec.Containers))
		}
		c := d.Spec.Template.Spec.Containers[0]
		if repo, ok := strings.CutPrefix(c.Image, "ghcr.io/koppel/"+component); !ok || !imageRef.MatchString(repo) {
			t.Errorf("Deployment %s: image %q, want ghcr.io/koppel/%s:<tag> or @sha256:<digest>", d.Name, c.Image, component)
		}
		if v, _ := envValue(c, "KOPPEL_OPS_ADDR"); v != fmt.Sprintf(":%d", opsPort) {
			t.Errorf("Deployment %s: KOPPEL_OPS_ADDR %q, want :%d", d.Name, v, opsPort)
		}
		checkProbe(t, d.Name, "liveness", c, c.LivenessProbe, "/healthz")
		checkProbe(t, d.Name, "readiness", c, c.ReadinessProbe, "/readyz")
		for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, hasReq := c.Resources.Requests[res]
			lim, hasLim := c.Resources.Limits[res]
			if !hasReq || !hasLim {
				t.Errorf("Deployment %s: %s request set %v, limit set %v; want both", d.Name, res, hasReq, hasLim)
			} else if req.Cmp(lim) > 0 {
				t.Errorf("Deployment %s: %s request %s above its limit %s", d.Name, res, req.String(), lim.String())
			}
		}
		var pdbs []string
		for _, p := range m.PDBs {
			if selects(t, p.Spec.Selector, pods) {
				pdbs = append(pdbs, p.Name)
			}
		}
		// The eviction API refuses to evict a pod that more than one budget covers.
		if len(pdbs) != 1 {
			t.Errorf("Deployment %s: PodDisruptionBudgets %v, want exactly one", d.Name, pdbs)
		}
		if !scraped(t, m, d, c) {
			t.Errorf("Deployment %s: no ServiceMonitor scrapes /metrics on its ops port through a Service", d.Name)
		}
	}
	for _, want := range append([]string{"mapping"}, busServices...) {
		if components[want] == 0 {
			t.Errorf("no Deployment of %s", want)
		}
	}
	if components["sandbox"] != 0 {
		t.Error("the sandbox simulators are deployed; they are for local runs only")
	}
}

func checkProbe(t *testing.T, deployment, kind string, c corev1.Container, p *corev1.Probe, path string) {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Errorf("Deployment %s: no HTTP %s probe", deployment, kind)
		return
	}
	if port := containerPort(c, p.HTTPGet.Port); port != opsPort || p.HTTPGet.Path != path {
		t.Errorf("Deployment %s: %s probe on port %d path %s, want %d %s", deployment, kind, port, p.HTTPGet.Path, opsPort, path)
	}
}

// scraped reports whether a ServiceMonitor selects a Service that selects the Deployment's
// pods, through a Service port that leads to the container's ops port.
func scraped(t *testing.T, m *manifests, d *appsv1.Deployment, c corev1.Container) bool {
	t.Helper()
	for _, svc := range m.Services {
		if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
			continue
		}
		for _, sm := range m.ServiceMonitors {
			if !selects(t, &sm.Spec.Selector, svc.Labels) {
				continue
			}
			for _, ep := range sm.Spec.Endpoints {
				for _, sp := range svc.Spec.Ports {
					if sp.Name == ep.Port && containerPort(c, sp.TargetPort) == opsPort && ep.Path == "/metrics" {
						return true
					}
				}
			}
		}
	}
	return false
}

// checkNetworkPolicies: every Deployment's pods are isolated both ways by one NetworkPolicy that
// opens exactly the ports the service needs, lets Prometheus scrape, and lets only koppel's own
// pods call the mapping service.
func checkNetworkPolicies(t *testing.T, m *manifests) {
	t.Helper()
	in := map[string][]string{
		"gateway": {"TCP/8080", "TCP/9090"}, "admin": {"TCP/8082", "TCP/9090"},
		"mapping": {"TCP/9000", "TCP/9090"}, "scheduler": {"TCP/9090"},
	}
	dns := []string{"TCP/53", "UDP/53"}
	// The gateway calls nothing outside the cluster: the admin service registers the webhooks
	// and checks credentials, the workers sync.
	out := map[string][]string{
		"gateway":   append([]string{"TCP/4222", "TCP/9000"}, dns...),
		"admin":     append([]string{"TCP/4222", "TCP/9000", "TCP/443"}, dns...),
		"scheduler": append([]string{"TCP/4222", "TCP/9000"}, dns...),
		"mapping":   append([]string{"TCP/6379"}, dns...),
	}
	for w := range workerConsumers {
		in[w] = []string{"TCP/9090"}
		out[w] = out["admin"]
	}
	mappingPods := podsOf(m, "mapping")
	for _, d := range m.Deployments {
		component := d.Spec.Template.Labels[componentLabel]
		var np *networkingv1.NetworkPolicy
		for _, p := range m.NetworkPolicies {
			if selects(t, &p.Spec.PodSelector, d.Spec.Template.Labels) {
				if np != nil {
					t.Errorf("Deployment %s: NetworkPolicies %s and %s both select it", d.Name, np.Name, p.Name)
				}
				np = p
			}
		}
		if np == nil {
			t.Errorf("Deployment %s: no NetworkPolicy", d.Name)
			continue
		}
		if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
			t.Errorf("NetworkPolicy %s: policyTypes %v, want Ingress and Egress", np.Name, np.Spec.PolicyTypes)
		}
		var inPorts, outPorts []string
		for _, rule := range np.Spec.Ingress {
			ports := policyPorts(t, np.Name, rule.Ports)
			inPorts = append(inPorts, ports...)
			if slices.Contains(ports, fmt.Sprintf("TCP/%d", opsPort)) && !fromPrometheus(rule.From) {
				t.Errorf("NetworkPolicy %s: the ops port is open to %v, want the Prometheus namespace only", np.Name, rule.From)
			}
			if slices.Contains(ports, "TCP/9000") {
				checkMappingCallers(t, m, np.Name, rule.From)
			}
			// The admin API is private: a rule without peers would open it to every address.
			if slices.Contains(ports, "TCP/8082") && len(rule.From) == 0 {
				t.Errorf("NetworkPolicy %s: the admin API's port is open to anyone", np.Name)
			}
		}
		for _, rule := range np.Spec.Egress {
			ports := policyPorts(t, np.Name, rule.Ports)
			outPorts = append(outPorts, ports...)
			if slices.Contains(ports, "TCP/9000") && !peersSelect(t, rule.To, mappingPods) {
				t.Errorf("NetworkPolicy %s: egress to 9000 does not reach the mapping pods", np.Name)
			}
		}
		if got, want := sorted(inPorts), sorted(in[component]); !slices.Equal(got, want) {
			t.Errorf("NetworkPolicy %s: ingress ports %v, want %v", np.Name, got, want)
		}
		if got, want := sorted(outPorts), sorted(out[component]); !slices.Equal(got, want) {
			t.Errorf("NetworkPolicy %s: egress ports %v, want %v", np.Name, got, want)
		}
	}
}

// checkMappingCallers: the mapping API is open to the pods of every koppel service of the
// release, selected by pod labels only (no namespace or address range).
func checkMappingCallers(t *testing.T, m *manifests, policy string, from []networkingv1.NetworkPolicyPeer) {
	t.Helper()
	if len(from) == 0 {
		t.Errorf("NetworkPolicy %s: port 9000 open to anyone", policy)
		return
	}
	for _, p := range from {
		if p.PodSelector == nil || p.NamespaceSelector != nil || p.IPBlock != nil {
			t.Errorf("NetworkPolicy %s: port 9000 open to %+v, want koppel's pods only", policy, p)
		}
	}
	for _, s := range busServices {
		if !peersSelect(t, from, podsOf(m, s)) {
			t.Errorf("NetworkPolicy %s: %s may not call the mapping service", policy, s)
		}
	}
}

func fromPrometheus(from []networkingv1.NetworkPolicyPeer) bool {
	if len(from) == 0 {
		return false
	}
	for _, p := range from {
		if p.NamespaceSelector == nil || p.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "monitoring" || p.IPBlock != nil {
			return false
		}
	}
	return true
}

// peersSelect reports whether some peer selects every pod label set of pods (all in the
// release's namespace).
func peersSelect(t *testing.T, peers []networkingv1.NetworkPolicyPeer, pods []map[string]string) bool {
	t.Helper()
	if len(pods) == 0 {
		return false
	}
	for _, labels := range pods {
		ok := false
		for _, p := range peers {
			if p.PodSelector != nil && p.NamespaceSelector == nil && selects(t, p.PodSelector, labels) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func policyPorts(t *testing.T, policy string, ports []networkingv1.NetworkPolicyPort) []string {
	t.Helper()
	if len(ports) == 0 {
		t.Errorf("NetworkPolicy %s: a rule without ports opens every port", policy)
	}
	var out []string
	for _, p := range ports {
		proto := corev1.ProtocolTCP
		if p.Protocol != nil {
			proto = *p.Protocol
		}
		if p.Port == nil || p.Port.Type != intstr.Int || p.EndPort != nil {
			t.Errorf("NetworkPolicy %s: want single numbered ports, got %+v", policy, p)
			continue
		}
		out = append(out, fmt.Sprintf("%s/%d", proto, p.Port.IntVal))
	}
	return out
}

// imageRef is what follows the repository in an image reference: a tag or a digest.
var imageRef = regexp.MustCompile(`^(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[a-f0-9]{64})$`)

// secretVars are the variables that hold secrets, and the services that need them (and so are
// the only ones to get them).
var secretVars = map[string][]string{
	"KOPPEL_ADMIN_TOKEN_HASHES":       {"admin"},
	"KOPPEL_CONSOLE_SESSION_KEY":      {"admin"},
	"KOPPEL_ENCRYPTION_KEYS":          {"mapping"},
	"KOPPEL_GRPC_CALLER_TOKEN_HASHES": {"mapping"},
	"KOPPEL_MAPPING_TOKEN":            busServices,
}

// checkSecrets: secrets come from references to existing Secrets, never inline. (A Secret
// object itself fails decodeManifests.)
func checkSecrets(t *testing.T, m *manifests) {
	t.Helper()
	for _, d := range m.Deployments {
		component := d.Spec.Template.Labels[componentLabel]
		c := d.Spec.Template.Spec.Containers[0]
		if len(c.EnvFrom) > 0 {
			t.Errorf("Deployment %s: envFrom hides which variables come from where", d.Name)
		}
		for name, owners := range secretVars {
			_, ok := env(c, name)
			if owner := slices.Contains(owners, component); !ok && owner {
				t.Errorf("Deployment %s: %s missing", d.Name, name)
			} else if ok && !owner {
				t.Errorf("Deployment %s: gets %s, a secret only %v need", d.Name, name, owners)
			}
		}
		for _, e := range c.Env {
			if _, secret := secretVars[e.Name]; secret {
				if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil ||
					e.ValueFrom.SecretKeyRef.Name == "" || e.ValueFrom.SecretKeyRef.Key == "" {
					t.Errorf("Deployment %s: %s is not a reference to a key of a Secret: %+v", d.Name, e.Name, e)
				}
			}
			for _, v := range strings.Split(e.Value, ",") {
				if u, err := url.Parse(strings.TrimSpace(v)); err == nil && u.User != nil {
					t.Errorf("Deployment %s: %s carries credentials inline", d.Name, e.Name)
				}
			}
		}
	}
}

// checkShards: the services agree on the shards, every shard has one Deployment of every worker
// service consuming that shard, each autoscaled on exactly the consumers it consumes, and every
// message of a tenant lands on a consumer of its own shard's workers.
func checkShards(t *testing.T, m *manifests, tenants map[string]string) {
	t.Helper()
	var shardsEnv *string
	for _, s := range busServices {
		for _, d := range deploymentsOf(m, s) {
			v, ok := envValue(d.Spec.Template.Spec.Containers[0], "KOPPEL_SHARDS")
			if !ok {
				t.Errorf("Deployment %s: no KOPPEL_SHARDS", d.Name)
			} else if shardsEnv == nil {
				shardsEnv = &v
			} else if v != *shardsEnv {
				t.Errorf("Deployment %s: KOPPEL_SHARDS %q, others have %q", d.Name, v, *shardsEnv)
			}
		}
	}
	if shardsEnv == nil {
		t.Fatal("no KOPPEL_SHARDS anywhere")
	}
	shards, err := bus.ParseShards(*shardsEnv)
	if err != nil {
		t.Fatalf("KOPPEL_SHARDS %q does not parse as the services parse it: %v", *shardsEnv, err)
	}
	for tenant, want := range tenants {
		if got := shards.Of(tenant); got != want {
			t.Errorf("tenant %s is in shard %q, want %q", tenant, got, want)
		}
	}

	existing := map[string]bool{}
	for _, spec := range bus.WorkerConsumers(shards) {
		existing[spec.Durable] = true
	}
	// consumedBy: each consumer that a ScaledObject scales on, and the shard of its workers.
	consumedBy := map[string]string{}
	for _, shard := range shards.Names() {
		for worker, bases := range workerConsumers {
			var ds []*appsv1.Deployment
			for _, d := range deploymentsOf(m, worker) {
				if v, _ := envValue(d.Spec.Template.Spec.Containers[0], "KOPPEL_SHARD"); v == shard {
					ds = append(ds, d)
				}
			}
			if len(ds) != 1 {
				t.Errorf("shard %s: %d Deployments of %s, want one", shard, len(ds), worker)
				continue
			}
			d := ds[0]
			if d.Spec.Replicas != nil {
				t.Errorf("Deployment %s: replicas set; KEDA owns the replica count", d.Name)
			}
			var sos []*scaledObject
			for _, so := range m.ScaledObjects {
				if so.Spec.ScaleTargetRef.Name == d.Name {
					sos = append(sos, so)
				}
			}
			if len(sos) != 1 {
				t.Errorf("Deployment %s: %d ScaledObjects, want one", d.Name, len(sos))
				continue
			}
			so := sos[0]
			if ref := so.Spec.ScaleTargetRef; (ref.Kind != "" && ref.Kind != "Deployment") || (ref.APIVersion != "" && ref.APIVersion != "apps/v1") {
				t.Errorf("ScaledObject %s: target %s %s, want a Deployment", so.Name, ref.APIVersion, ref.Kind)
			}
			if lo, hi := so.Spec.MinReplicaCount, so.Spec.MaxReplicaCount; lo == nil || hi == nil || *lo < 0 || *hi < 1 || *lo > *hi {
				t.Errorf("ScaledObject %s: replica range %v..%v", so.Name, lo, hi)
			}
			var want, got []string
			for _, base := range bases {
				want = append(want, bus.ShardConsumer(base, shard))
			}
			for _, tr := range so.Spec.Triggers {
				checkTrigger(t, so.Name, tr.Type, tr.Metadata)
				consumer := tr.Metadata["consumer"]
				got = append(got, consumer)
				if !existing[consumer] {
					t.Errorf("ScaledObject %s: consumer %q is not one the services create for shards %q", so.Name, consumer, *shardsEnv)
				}
				for _, base := range bases {
					if spec, _ := bus.ShardConsumerSpec(base, shard); spec.Durable == consumer && spec.Stream != tr.Metadata["stream"] {
						t.Errorf("ScaledObject %s: consumer %s on stream %q, the services put it on %q", so.Name, consumer, tr.Metadata["stream"], spec.Stream)
					}
				}
				consumedBy[consumer] = shard
			}
			if !slices.Equal(sorted(got), sorted(want)) {
				t.Errorf("ScaledObject %s: consumers %v, but the %s workers of shard %s consume %v", so.Name, got, worker, shard, want)
			}
		}
	}
	for _, d := range m.Deployments {
		if _, worker := workerConsumers[d.Spec.Template.Labels[componentLabel]]; !worker {
			continue
		}
		if v, _ := envValue(d.Spec.Template.Spec.Containers[0], "KOPPEL_SHARD"); !shards.Has(v) {
			t.Errorf("Deployment %s: KOPPEL_SHARD %q is not a shard of %q", d.Name, v, *shardsEnv)
		}
	}
	if len(m.ScaledObjects) != len(shards.Names())*len(workerConsumers) {
		t.Errorf("%d ScaledObjects, want one per shard and worker service", len(m.ScaledObjects))
	}

	// Where each tenant's messages go: routed as the gateway and scheduler route them, each must
	// match a consumer, and every consumer it matches must be one of its own shard's workers.
	for tenant := range tenants {
		for _, subj := range tenantSubjects(t, tenant) {
			routed := shards.Route(subj)
			var matched []string
			for _, spec := range bus.WorkerConsumers(shards) {
				if spec.Stream != streamOf(subj) || !slices.ContainsFunc(spec.FilterSubjects, func(f string) bool { return subjectMatches(f, routed) }) {
					continue
				}
				matched = append(matched, spec.Durable)
				if got := consumedBy[spec.Durable]; got != shards.Of(tenant) {
					t.Errorf("tenant %s: %s goes to consumer %s, which the workers of shard %q scale on; want shard %q", tenant, routed, spec.Durable, got, shards.Of(tenant))
				}
			}
			if len(matched) == 0 {
				t.Errorf("tenant %s: no consumer takes %s", tenant, routed)
			}
		}
	}
}

func checkTrigger(t *testing.T, so, typ string, md map[string]string) {
	t.Helper()
	if typ != "nats-jetstream" {
		t.Errorf("ScaledObject %s: trigger type %q, want nats-jetstream", so, typ)
	}
	for _, k := range []string{"natsServerMonitoringEndpoint", "account", "stream", "consumer", "lagThreshold"} {
		if md[k] == "" {
			t.Errorf("ScaledObject %s: trigger without %s", so, k)
		}
	}
	if _, _, err := net.SplitHostPort(md["natsServerMonitoringEndpoint"]); err != nil || strings.Contains(md["natsServerMonitoringEndpoint"], "{{") {
		t.Errorf("ScaledObject %s: natsServerMonitoringEndpoint %q, want host:port", so, md["natsServerMonitoringEndpoint"])
	}
}

// tenantSubjects are the subjects of every message kind of a tenant, before shard routing.
func tenantSubjects(t *testing.T, tenant string) []string {
	t.Helper()
	var out []string
	for _, e := range []string{bus.EntityOrganization, bus.EntityPerson, bus.EntityInvoice, bus.EntityOrgCustomer, bus.EntityPersonCustomer} {
		s, err := bus.TribeEventSubject(tenant, e)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	for _, k := range []string{bus.KindRelation, bus.KindRelationScan, bus.KindImport, bus.KindProduct, bus.KindPayment} {
		s, err := bus.SyncCommandSubject(tenant, k)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func streamOf(subject string) string {
	if strings.HasPrefix(subject, "tribe.evt.") {
		return bus.StreamTribeEvents
	}
	return bus.StreamSyncCommands
}

// subjectMatches is NATS subject matching: "*" matches one token, ">" the rest.
func subjectMatches(filter, subject string) bool {
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, tok := range f {
		if tok == ">" {
			return len(s) > i
		}
		if i >= len(s) || (tok != "*" && tok != s[i]) {
			return false
		}
	}
	return len(f) == len(s)
}

func TestWorkerConsumersCoverTheBus(t *testing.T) {
	var listed, bases []string
	for _, b := range workerConsumers {
		listed = append(listed, b...)
	}
	for _, spec := range bus.WorkerConsumers(bus.Shards{}) {
		bases = append(bases, spec.Durable)
	}
	if !slices.Equal(sorted(listed), sorted(bases)) {
		t.Fatalf("the test knows consumers %v, the bus has %v: update workerConsumers and the chart's koppel.workerConsumers", sorted(listed), sorted(bases))
	}
}

func TestBadValuesFail(t *testing.T) {
	for _, tc := range []struct{ name, values, want string }{
		{"duplicate tenant", "shards: [{name: big, tenants: [acme]}, {name: eu, tenants: [foo, acme]}]", `tenant "acme" is in shard "big" and in shard "eu"`},
		{"duplicate tenant in one shard", "shards: [{name: big, tenants: [acme, acme]}]", "/shards/0/tenants': items at 0 and 1 are equal"},
		{"duplicate shard", "shards: [{name: big, tenants: [acme]}, {name: big, tenants: [foo]}]", `shard "big" is listed twice`},
		{"default listed", "shards: [{name: default, tenants: [acme]}]", `the shard "default" takes every tenant not named`},
		{"bad shard name", "shards: [{name: Big, tenants: [acme]}]", "'Big' does not match pattern"},
		{"shard name too long", "shards: [{name: " + strings.Repeat("a", 41) + ", tenants: [acme]}]", "/shards/0/name"},
		{"bad tenant", "shards: [{name: big, tenants: [acme_corp]}]", "'acme_corp' does not match pattern"},
		{"typo in a shard", "shards: [{name: big, tenant: [acme]}]", "additional properties 'tenant' not allowed"},
		{"typo in autoscaling", "shards: [{name: big, tenants: [acme], autoscaling: {maxReplica: 3}}]", "additional properties 'maxReplica' not allowed"},
		{"typo in the values", "gatewy: {replicas: 3}", "additional properties 'gatewy' not allowed"},
		{"credentials in the Redis URL", "redis: {url: 'redis://:hunter2@redis:6379/0'}", "redis.url carries credentials"},
		{"secret without a name", "secrets: {adminTokenHashes: {name: ''}}", "secrets.adminTokenHashes.name"},
		{"secret as an extra env", "mapping: {env: {KOPPEL_EB_TOKEN: {secretKeyRef: {name: x, key: y}}}}", "/mapping/env/KOPPEL_EB_TOKEN': got object"},
		{"chart-owned env overridden", "workers: {relation: {env: {KOPPEL_SHARD: big}}}", "relation.env.KOPPEL_SHARD: the chart sets this variable itself"},
		{"bad dashboard label", "metrics: {grafanaDashboards: {label: 'grafana dashboard'}}", "'grafana dashboard' does not match pattern"},
		{"bad rule label", "metrics: {prometheusRule: {labels: {'a b': x}}}", "additional properties 'a b' not allowed"},
		{"number as a label value", "metrics: {prometheusRule: {labels: {release: 1}}}", "/metrics/prometheusRule/labels/release': got number, want string"},
		{"name too long", "fullnameOverride: " + strings.Repeat("k", 40) + "\nshards: [{name: " + strings.Repeat("b", 20) + ", tenants: [acme]}]", "longer than 63 characters"},
		{"an image without a digest", "image: {requireDigest: true}", "image.requireDigest is on and"},
		{"a digest that is none", "gateway: {image: {repository: r, digest: 'sha256:abc'}}", "/gateway/image/digest"},
		{"no caller authentication", "mappingAuth: {tokens: {enabled: false}}", "mappingAuth: turn on tokens, tls or both"},
		{"mTLS without an issuer", "mappingAuth: {tls: {enabled: true}}", "mappingAuth.tls.certManager.issuerRef.name"},
		{"no outbound hosts", "outbound: {hosts: []}", "/outbound/hosts"},
		{"a replay window that is no duration", "gateway: {webhooks: {replayWindow: five}}", "/gateway/webhooks/replayWindow"},
		{"the public URL set on the admin service", "admin: {env: {KOPPEL_PUBLIC_URL: 'https://x.example.com'}}", "admin.env.KOPPEL_PUBLIC_URL: the chart sets this variable itself"},
		{"an admin digest that is none", "admin: {image: {repository: r, digest: 'sha256:abc'}}", "/admin/image/digest"},
		{"an admin image without a digest", "image: {requireDigest: true}\n" + digestsExcept("admin"), "admin.image.digest: image.requireDigest is on"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := templateChart(t, nil, tc.values)
			if err == nil {
				t.Fatalf("rendered without error:\n%.2000s", out)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to say %q", err, tc.want)
			}
		})
	}
}

func TestValuesReachTheManifests(t *testing.T) {
	m := render(t, nil, `
shards: [{name: big, tenants: [acme], autoscaling: {minReplicas: 0, maxReplicas: 30}}]
workers: {relation: {image: {repository: registry.example/koppel-relation, tag: v9}, concurrency: 32}}
autoscaling: {maxReplicas: 4}
gateway: {publicURL: "https://sync.example.com", env: {KOPPEL_WEBHOOK_SIGNATURE_SCHEME: hmac-sha512-hex}}
admin: {image: {repository: registry.example/koppel-admin, tag: v9}, replicas: 3, env: {KOPPEL_TRIBE_RATE: 20}}
nats: {urlSecret: {name: nats-creds, key: url}, streamReplicas: 3}
`)
	for _, d := range deploymentsOf(m, "relation") {
		c := d.Spec.Template.Spec.Containers[0]
		if c.Image != "registry.example/koppel-relation:v9" {
			t.Errorf("Deployment %s: image %s", d.Name, c.Image)
		}
		if v, _ := envValue(c, "KOPPEL_CONCURRENCY"); v != "32" {
			t.Errorf("Deployment %s: KOPPEL_CONCURRENCY %q", d.Name, v)
		}
	}
	for _, so := range m.ScaledObjects {
		lo, hi := *so.Spec.MinReplicaCount, *so.Spec.MaxReplicaCount
		want := [2]int32{1, 4}
		if strings.HasSuffix(so.Name, "-big") {
			want = [2]int32{0, 30}
		}
		if [2]int32{lo, hi} != want {
			t.Errorf("ScaledObject %s: replicas %d..%d, want %d..%d", so.Name, lo, hi, want[0], want[1])
		}
	}
	gw := deploymentsOf(m, "gateway")[0].Spec.Template.Spec.Containers[0]
	for k, want := range map[string]string{"KOPPEL_WEBHOOK_SIGNATURE_SCHEME": "hmac-sha512-hex", "KOPPEL_STREAM_REPLICAS": "3", "KOPPEL_SHARDS": "big=acme"} {
		if v, _ := envValue(gw, k); v != want {
			t.Errorf("gateway %s = %q, want %q", k, v, want)
		}
	}
	if e, _ := env(gw, "KOPPEL_NATS_URL"); e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != "nats-creds" {
		t.Errorf("gateway KOPPEL_NATS_URL %+v, want a reference to the Secret nats-creds", e)
	}
	// gateway.publicURL is where Tribe reaches the gateway; the admin service registers the
	// webhooks there, so it is the admin service that reads it.
	admins := deploymentsOf(m, "admin")
	if len(admins) != 1 {
		t.Fatalf("%d Deployments of admin, want one", len(admins))
	}
	if r := admins[0].Spec.Replicas; r == nil || *r != 3 {
		t.Errorf("admin replicas %v, want 3", r)
	}
	admin := admins[0].Spec.Template.Spec.Containers[0]
	if admin.Image != "registry.example/koppel-admin:v9" {
		t.Errorf("admin image %s", admin.Image)
	}
	for k, want := range map[string]string{"KOPPEL_PUBLIC_URL": "https://sync.example.com", "KOPPEL_TRIBE_RATE": "20", "KOPPEL_STREAM_REPLICAS": "3", "KOPPEL_SHARDS": "big=acme"} {
		if v, _ := envValue(admin, k); v != want {
			t.Errorf("admin %s = %q, want %q", k, v, want)
		}
	}
}

// TestIngressReachesTheGateway: the gateway's Ingress sends the webhook path, and only that,
// to the gateway's HTTP port; the admin API stays off the public edge; KOPPEL_PUBLIC_URL, which
// the admin service registers Tribe's webhooks at, is the Ingress host.
func TestIngressReachesTheGateway(t *testing.T) {
	m := render(t, []string{"testdata/moved-tenant.yaml"}, "")
	if len(m.Ingresses) != 1 {
		t.Fatalf("%d Ingresses, want the gateway's alone", len(m.Ingresses))
	}
	gw := deploymentsOf(m, "gateway")[0]
	routes := ingressRoutes(t, m, m.Ingresses[0], gw, 8080)
	if got := routes["koppel.example.com"]; !slices.Equal(got, []string{"/webhooks"}) || len(routes) != 1 {
		t.Errorf("Ingress routes %v, want koppel.example.com/webhooks only", routes)
	}
	if v, ok := envValue(gw.Spec.Template.Spec.Containers[0], "KOPPEL_PUBLIC_URL"); ok {
		t.Errorf("gateway: KOPPEL_PUBLIC_URL %q; the admin service reads it", v)
	}
	for _, d := range deploymentsOf(m, "admin") {
		if v, _ := envValue(d.Spec.Template.Spec.Containers[0], "KOPPEL_PUBLIC_URL"); v != "https://koppel.example.com" {
			t.Errorf("admin: KOPPEL_PUBLIC_URL %q, want the gateway's Ingress host", v)
		}
	}
}

// ingressRoutes checks that every path of ing leads through a Service port to port of d's
// container, and returns the paths by host.
func ingressRoutes(t *testing.T, m *manifests, ing *networkingv1.Ingress, d *appsv1.Deployment, port int32) map[string][]string {
	t.Helper()
	c := d.Spec.Template.Spec.Containers[0]
	routes := map[string][]string{}
	for _, rule := range ing.Spec.Rules {
		if rule.HTTP == nil {
			t.Errorf("Ingress %s: host %q without paths", ing.Name, rule.Host)
			continue
		}
		for _, p := range rule.HTTP.Paths {
			routes[rule.Host] = append(routes[rule.Host], p.Path)
			if p.Backend.Service == nil {
				t.Errorf("Ingress %s: path %s leads to no Service", ing.Name, p.Path)
				continue
			}
			svc := serviceNamed(m, p.Backend.Service.Name)
			if svc == nil || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
				t.Errorf("Ingress %s: path %s: backend %s is not the Service of %s", ing.Name, p.Path, p.Backend.Service.Name, d.Name)
				continue
			}
			ok := false
			for _, sp := range svc.Spec.Ports {
				if sp.Name == p.Backend.Service.Port.Name && containerPort(c, sp.TargetPort) == port {
					ok = true
				}
			}
			if !ok {
				t.Errorf("Ingress %s: path %s: port %q does not lead to %s's %d", ing.Name, p.Path, p.Backend.Service.Port.Name, d.Name, port)
			}
		}
	}
	return routes
}

// TestMappingAddressResolves: KOPPEL_MAPPING_ADDR names a Service port that leads to the
// mapping pods' gRPC port.
func TestMappingAddressResolves(t *testing.T) {
	m := render(t, nil, "")
	mapping := deploymentsOf(m, "mapping")[0]
	for _, s := range busServices {
		for _, d := range deploymentsOf(m, s) {
			addr, _ := envValue(d.Spec.Template.Spec.Containers[0], "KOPPEL_MAPPING_ADDR")
			host, port, err := net.SplitHostPort(addr)
			svc := serviceNamed(m, host)
			if err != nil || svc == nil || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(mapping.Spec.Template.Labels)) {
				t.Errorf("Deployment %s: KOPPEL_MAPPING_ADDR %q is not the mapping Service", d.Name, addr)
				continue
			}
			ok := false
			for _, sp := range svc.Spec.Ports {
				if fmt.Sprint(sp.Port) == port && containerPort(mapping.Spec.Template.Spec.Containers[0], sp.TargetPort) == 9000 {
					ok = true
				}
			}
			if !ok {
				t.Errorf("Deployment %s: port %s of %s does not lead to the mapping gRPC port", d.Name, port, host)
			}
		}
	}
}

// Helpers.

func selects(t *testing.T, sel *metav1.LabelSelector, set map[string]string) bool {
	t.Helper()
	if sel == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("label selector %v: %v", sel, err)
	}
	return !s.Empty() && s.Matches(labels.Set(set))
}

func deploymentsOf(m *manifests, component string) []*appsv1.Deployment {
	var out []*appsv1.Deployment
	for _, d := range m.Deployments {
		if d.Spec.Template.Labels[componentLabel] == component {
			out = append(out, d)
		}
	}
	return out
}

func podsOf(m *manifests, component string) []map[string]string {
	var out []map[string]string
	for _, d := range deploymentsOf(m, component) {
		out = append(out, d.Spec.Template.Labels)
	}
	return out
}

func serviceNamed(m *manifests, name string) *corev1.Service {
	for _, s := range m.Services {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// containerPort resolves a numbered or named port of a container; 0 when it names none.
func containerPort(c corev1.Container, p intstr.IntOrString) int32 {
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	return 0
}

func env(c corev1.Container, name string) (corev1.EnvVar, bool) {
	var found []corev1.EnvVar
	for _, e := range c.Env {
		if e.Name == name {
			found = append(found, e)
		}
	}
	if len(found) != 1 {
		return corev1.EnvVar{}, false
	}
	return found[0], true
}

// envValue is the literal value of a variable that is set exactly once.
func envValue(c corev1.Container, name string) (string, bool) {
	e, ok := env(c, name)
	return e.Value, ok
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	sort.Strings(out)
	return out
}
