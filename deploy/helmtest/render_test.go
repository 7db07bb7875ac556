package helmtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

const (
	// helmModule is the helm command, from the Go module proxy like every other tool of the repo.
	helmModule = "helm.sh/helm/v3/cmd/helm@v3.22.0"
	chartDir   = "../helm/koppel"
	release    = "koppel"
	namespace  = "koppel"
	// kubeVersion is the cluster version the chart is rendered for. A helm built with go install
	// believes in Kubernetes v1.20 otherwise, older than the chart's kubeVersion.
	kubeVersion = "1.33.0"
)

// helmBin is the helm binary TestMain built for this run.
var helmBin string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "koppel-helm-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "helmtest:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	// Outside the workspace: helm's own go.mod decides its dependencies. Only the build cache
	// is shared between runs, so the link is the only real work after the first run.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "install", helmModule)
	// GOFLAGS is replaced: a -mod flag meant for the workspace would make go install refuse.
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOWORK=off", "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "helmtest: go install %s: %v\n%s", helmModule, err, out)
		return 1
	}
	helmBin = filepath.Join(dir, "helm")
	return m.Run()
}

var chartOnce sync.Once

// runHelm runs helm with args and returns its standard output, or an error that carries its
// standard error.
func runHelm(args ...string) (string, error) {
	chartOnce.Do(func() { _ = trackInputs(chartDir, false) })
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(helmBin, args...)
	// Keep helm away from the user's repositories, plugins and cache.
	home, err := os.MkdirTemp("", "koppel-helm-home-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(home)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home+"/cache", "HELM_CONFIG_HOME="+home+"/config", "HELM_DATA_HOME="+home+"/data")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// trackInputs reads (or, with statOnly, stats) every file under dir, so that go test's cache,
// which knows only the files the test process itself touches, runs the tests again when one of
// them changes: helm and go build read them in processes of their own.
func trackInputs(dir string, statOnly bool) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if statOnly {
			_, err = os.Stat(path)
		} else {
			_, err = os.ReadFile(path)
		}
		return err
	})
}

// valuesArgs turns values files and inline values into helm flags. An inline value is YAML,
// written to a temp file so that it is read exactly as a values file would be.
func valuesArgs(t *testing.T, files []string, inline string) []string {
	t.Helper()
	var args []string
	for _, f := range files {
		args = append(args, "-f", f)
	}
	if inline != "" {
		// Not t.TempDir: its path carries the test's name, and helm splits -f at commas.
		dir, err := os.MkdirTemp("", "koppel-values-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		p := filepath.Join(dir, "values.yaml")
		if err := os.WriteFile(p, []byte(inline), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-f", p)
	}
	return args
}

// templateChart renders the chart with the values files and the inline values (may be empty),
// and any further helm flags.
func templateChart(t *testing.T, files []string, inline string, flags ...string) (string, error) {
	t.Helper()
	args := append([]string{"template", release, chartDir, "--namespace", namespace, "--kube-version", kubeVersion},
		valuesArgs(t, files, inline)...)
	return runHelm(append(args, flags...)...)
}

// scaledObject is a KEDA ScaledObject (keda.sh/v1alpha1), as far as the chart uses it.
type scaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		ScaleTargetRef struct {
			APIVersion string `json:"apiVersion,omitempty"`
			Kind       string `json:"kind,omitempty"`
			Name       string `json:"name"`
		} `json:"scaleTargetRef"`
		PollingInterval *int32 `json:"pollingInterval,omitempty"`
		CooldownPeriod  *int32 `json:"cooldownPeriod,omitempty"`
		MinReplicaCount *int32 `json:"minReplicaCount,omitempty"`
		MaxReplicaCount *int32 `json:"maxReplicaCount,omitempty"`
		Triggers        []struct {
			Type string `json:"type"`
			Name string `json:"name,omitempty"`
			// KEDA reads trigger metadata as strings; a number here would be rejected.
			Metadata map[string]string `json:"metadata"`
		} `json:"triggers"`
	} `json:"spec"`
}

// serviceMonitor is a Prometheus Operator ServiceMonitor (monitoring.coreos.com/v1), as far as
// the chart uses it.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector *struct {
			Any        bool     `json:"any,omitempty"`
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector,omitempty"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path,omitempty"`
			Interval      string `json:"interval,omitempty"`
			ScrapeTimeout string `json:"scrapeTimeout,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// prometheusRule is a Prometheus Operator PrometheusRule (monitoring.coreos.com/v1) with every
// field of a rule group and a rule that the operator's CRD knows, so that strict decoding fails
// on a field the operator would drop.
type prometheusRule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Groups []ruleGroup `json:"groups"`
	} `json:"spec"`
}

type ruleGroup struct {
	Name                    string            `json:"name"`
	Labels                  map[string]string `json:"labels,omitempty"`
	Interval                string            `json:"interval,omitempty"`
	QueryOffset             string            `json:"query_offset,omitempty"`
	Limit                   *int              `json:"limit,omitempty"`
	PartialResponseStrategy string            `json:"partial_response_strategy,omitempty"`
	Rules                   []struct {
		Record        string            `json:"record,omitempty"`
		Alert         string            `json:"alert,omitempty"`
		Expr          string            `json:"expr"`
		For           string            `json:"for,omitempty"`
		KeepFiringFor string            `json:"keep_firing_for,omitempty"`
		Labels        map[string]string `json:"labels,omitempty"`
		Annotations   map[string]string `json:"annotations,omitempty"`
	} `json:"rules"`
}

// certificate is a cert-manager Certificate (cert-manager.io/v1), as far as the chart uses it.
type certificate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SecretName  string   `json:"secretName"`
		CommonName  string   `json:"commonName,omitempty"`
		DNSNames    []string `json:"dnsNames,omitempty"`
		Usages      []string `json:"usages,omitempty"`
		Duration    string   `json:"duration,omitempty"`
		RenewBefore string   `json:"renewBefore,omitempty"`
		PrivateKey  *struct {
			Algorithm      string `json:"algorithm,omitempty"`
			Size           int    `json:"size,omitempty"`
			RotationPolicy string `json:"rotationPolicy,omitempty"`
		} `json:"privateKey,omitempty"`
		IssuerRef struct {
			Name  string `json:"name"`
			Kind  string `json:"kind,omitempty"`
			Group string `json:"group,omitempty"`
		} `json:"issuerRef"`
	} `json:"spec"`
}

// manifests are the objects of one render, by kind.
type manifests struct {
	Deployments     []*appsv1.Deployment
	Services        []*corev1.Service
	ServiceAccounts []*corev1.ServiceAccount
	PDBs            []*policyv1.PodDisruptionBudget
	NetworkPolicies []*networkingv1.NetworkPolicy
	Ingresses       []*networkingv1.Ingress
	ScaledObjects   []*scaledObject
	ServiceMonitors []*serviceMonitor
	PrometheusRules []*prometheusRule
	ConfigMaps      []*corev1.ConfigMap
	Certificates    []*certificate
	// Docs are the rendered documents by kind and name ("PrometheusRule/koppel-alerts"), for
	// comparisons that the typed objects would blur.
	Docs map[string][]byte
}

// decodeManifests decodes every document of a helm template output strictly (an unknown or
// duplicate field is an error) into its API type. A kind the chart is not expected to render,
// a Secret above all, is an error too.
func decodeManifests(out string) (*manifests, error) {
	m := manifests{Docs: map[string][]byte{}}
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(out)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if isEmptyDoc(doc) {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return nil, fmt.Errorf("type of %s: %w", source(doc), err)
		}
		var obj interface {
			GetName() string
			GetNamespace() string
		}
		switch tm.APIVersion + " " + tm.Kind {
		case "apps/v1 Deployment":
			o := &appsv1.Deployment{}
			m.Deployments, obj = append(m.Deployments, o), o
		case "v1 Service":
			o := &corev1.Service{}
			m.Services, obj = append(m.Services, o), o
		case "v1 ServiceAccount":
			o := &corev1.ServiceAccount{}
			m.ServiceAccounts, obj = append(m.ServiceAccounts, o), o
		case "policy/v1 PodDisruptionBudget":
			o := &policyv1.PodDisruptionBudget{}
			m.PDBs, obj = append(m.PDBs, o), o
		case "networking.k8s.io/v1 NetworkPolicy":
			o := &networkingv1.NetworkPolicy{}
			m.NetworkPolicies, obj = append(m.NetworkPolicies, o), o
		case "networking.k8s.io/v1 Ingress":
			o := &networkingv1.Ingress{}
			m.Ingresses, obj = append(m.Ingresses, o), o
		case "keda.sh/v1alpha1 ScaledObject":
			o := &scaledObject{}
			m.ScaledObjects, obj = append(m.ScaledObjects, o), o
		case "monitoring.coreos.com/v1 ServiceMonitor":
			o := &serviceMonitor{}
			m.ServiceMonitors, obj = append(m.ServiceMonitors, o), o
		case "monitoring.coreos.com/v1 PrometheusRule":
			o := &prometheusRule{}
			m.PrometheusRules, obj = append(m.PrometheusRules, o), o
		case "v1 ConfigMap":
			o := &corev1.ConfigMap{}
			m.ConfigMaps, obj = append(m.ConfigMaps, o), o
		case "cert-manager.io/v1 Certificate":
			o := &certificate{}
			m.Certificates, obj = append(m.Certificates, o), o
		default:
			return nil, fmt.Errorf("%s: unexpected kind %s %s", source(doc), tm.APIVersion, tm.Kind)
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", source(doc), tm.Kind, err)
		}
		if obj.GetName() == "" {
			return nil, fmt.Errorf("%s: %s without a name", source(doc), tm.Kind)
		}
		key := tm.Kind + "/" + obj.GetName()
		if _, seen := m.Docs[key]; seen {
			return nil, fmt.Errorf("%s: %s rendered twice", source(doc), key)
		}
		m.Docs[key] = doc
	}
	return &m, nil
}

// isEmptyDoc reports whether a YAML document holds only comments and blank lines.
func isEmptyDoc(doc []byte) bool {
	for line := range strings.SplitSeq(string(doc), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && line != "---" && !strings.HasPrefix(line, "#") {
			return false
		}
	}
	return true
}

// source returns the template a document came from, from helm's "# Source:" comment.
func source(doc []byte) string {
	for line := range strings.SplitSeq(string(doc), "\n") {
		if s, ok := strings.CutPrefix(line, "# Source: "); ok {
			return s
		}
	}
	return "a rendered document"
}

// render renders and decodes the chart, failing the test on any error.
func render(t *testing.T, files []string, inline string) *manifests {
	t.Helper()
	out, err := templateChart(t, files, inline)
	if err != nil {
		t.Fatal(err)
	}
	m, err := decodeManifests(out)
	if err != nil {
		t.Fatalf("decode rendered chart: %v", err)
	}
	if len(m.Deployments) == 0 {
		t.Fatal("the chart rendered no Deployment")
	}
	return m
}
