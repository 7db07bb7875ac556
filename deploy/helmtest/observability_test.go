package helmtest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// The chart ships koppel's alert rules and dashboards from its files/ folder, the canonical
// copies; deploy/prometheus and deploy/grafana hold links to them for whatever reads the old
// paths (services/devstack/observability_test.go checks their content).
var (
	ruleFile      = filepath.Join(chartDir, "files", "prometheus", "koppel-rules.yaml")
	dashboardGlob = filepath.Join(chartDir, "files", "grafana", "*.json")
)

// checkRules: one PrometheusRule whose groups are the rule file's groups, exactly, and every
// field of which the Prometheus Operator knows.
func checkRules(t *testing.T, m *manifests) {
	t.Helper()
	if len(m.PrometheusRules) != 1 {
		t.Fatalf("%d PrometheusRules, want one", len(m.PrometheusRules))
	}
	pr := m.PrometheusRules[0]
	file, err := os.ReadFile(ruleFile)
	if err != nil {
		t.Fatal(err)
	}
	// Strictly typed first: a field the operator's CRD does not know would be dropped.
	var typed struct {
		Groups []ruleGroup `json:"groups"`
	}
	if err := yaml.UnmarshalStrict(file, &typed); err != nil {
		t.Fatalf("%s: not what a PrometheusRule's spec takes: %v", ruleFile, err)
	}
	if len(typed.Groups) == 0 {
		t.Fatalf("%s: no groups", ruleFile)
	}
	// Then as plain YAML, so that nothing the types would blur (an empty value, a number
	// turned string) goes unseen.
	var want, got struct {
		Groups []any `json:"groups"`
	}
	var rendered struct {
		Spec *struct {
			Groups []any `json:"groups"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(file, &want); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(m.Docs["PrometheusRule/"+pr.Name], &rendered); err != nil || rendered.Spec == nil {
		t.Fatalf("PrometheusRule %s: %v", pr.Name, err)
	}
	got.Groups = rendered.Spec.Groups
	if reflect.DeepEqual(got.Groups, want.Groups) {
		return
	}
	var gotNames, wantNames []string
	for _, g := range pr.Spec.Groups {
		gotNames = append(gotNames, g.Name)
	}
	for _, g := range typed.Groups {
		wantNames = append(wantNames, g.Name)
	}
	if !slices.Equal(gotNames, wantNames) {
		t.Fatalf("PrometheusRule %s: groups %v, the rule file has %v", pr.Name, gotNames, wantNames)
	}
	for i := range want.Groups {
		if !reflect.DeepEqual(got.Groups[i], want.Groups[i]) {
			t.Errorf("PrometheusRule %s: group %s differs from the rule file's:\n got %v\nwant %v", pr.Name, wantNames[i], got.Groups[i], want.Groups[i])
		}
	}
}

// checkDashboards: every dashboard file is in exactly one ConfigMap that carries the Grafana
// sidecar's label, byte for byte, under its file name, and is JSON; and those ConfigMaps hold
// nothing else.
func checkDashboards(t *testing.T, m *manifests, label, value string) {
	t.Helper()
	files, err := filepath.Glob(dashboardGlob)
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards match %s (%v)", dashboardGlob, err)
	}
	// where: the ConfigMap of each data key, over every labelled ConfigMap.
	where := map[string]string{}
	data := map[string]string{}
	for _, cm := range m.ConfigMaps {
		if v, ok := cm.Labels[label]; !ok || v != value {
			continue
		}
		if len(cm.BinaryData) > 0 {
			t.Errorf("ConfigMap %s: binaryData; the sidecar reads data", cm.Name)
		}
		for k, v := range cm.Data {
			if other, dup := where[k]; dup {
				t.Errorf("%s is in ConfigMaps %s and %s", k, other, cm.Name)
			}
			where[k], data[k] = cm.Name, v
		}
	}
	for _, f := range files {
		name := filepath.Base(f)
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(b) {
			t.Errorf("%s: not valid JSON", f)
		}
		got, ok := data[name]
		switch {
		case !ok:
			t.Errorf("dashboard %s is in no ConfigMap labelled %s=%s", name, label, value)
		case got != string(b):
			t.Errorf("ConfigMap %s: %s differs from %s (%d bytes, want %d)", where[name], name, f, len(got), len(b))
		case !json.Valid([]byte(got)):
			t.Errorf("ConfigMap %s: %s is not valid JSON", where[name], name)
		}
		delete(data, name)
	}
	for k := range data {
		t.Errorf("ConfigMap %s: %s is no dashboard of %s", where[k], k, dashboardGlob)
	}
}

// TestMonitoringValues: the labels, namespace and annotations of the rule and the dashboards
// come from the values, and each switches off.
func TestMonitoringValues(t *testing.T) {
	m := render(t, nil, `
metrics:
  prometheusRule: {labels: {release: kube-prometheus-stack}}
  grafanaDashboards:
    label: grafana.example.com/dashboard
    labelValue: koppel
    namespace: grafana
    annotations: {grafana_folder: koppel}
`)
	checkRules(t, m)
	if got := m.PrometheusRules[0].Labels["release"]; got != "kube-prometheus-stack" {
		t.Errorf("PrometheusRule %s: label release %q, want the value's", m.PrometheusRules[0].Name, got)
	}
	checkDashboards(t, m, "grafana.example.com/dashboard", "koppel")
	for _, cm := range m.ConfigMaps {
		if _, ok := cm.Labels["grafana_dashboard"]; ok {
			t.Errorf("ConfigMap %s: still labelled grafana_dashboard", cm.Name)
		}
		if cm.Namespace != "grafana" || cm.Annotations["grafana_folder"] != "koppel" {
			t.Errorf("ConfigMap %s: namespace %q, annotations %v; want grafana and the folder", cm.Name, cm.Namespace, cm.Annotations)
		}
	}

	m = render(t, nil, "metrics: {prometheusRule: {enabled: false}, grafanaDashboards: {enabled: false}}")
	if len(m.PrometheusRules) != 0 || len(m.ConfigMaps) != 0 {
		t.Errorf("switched off, yet %d PrometheusRules and %d ConfigMaps", len(m.PrometheusRules), len(m.ConfigMaps))
	}
}

// TestOldPathsLinkToTheChart: deploy/prometheus and deploy/grafana hold links to the chart's
// files and nothing else, so that no second copy drifts from what the chart ships.
func TestOldPathsLinkToTheChart(t *testing.T) {
	dashboards, err := filepath.Glob(dashboardGlob)
	if err != nil || len(dashboards) == 0 {
		t.Fatalf("no dashboards match %s (%v)", dashboardGlob, err)
	}
	for dir, canonical := range map[string][]string{
		"../prometheus": {ruleFile},
		"../grafana":    dashboards,
	} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		var want []string
		for _, f := range canonical {
			want = append(want, filepath.Base(f))
		}
		if !slices.Equal(sorted(names), sorted(want)) {
			t.Errorf("%s holds %v, want links to %v", dir, names, want)
		}
		for _, f := range canonical {
			old := filepath.Join(dir, filepath.Base(f))
			target, err := os.Readlink(old)
			if err != nil {
				t.Errorf("%s: not a link to %s: %v", old, f, err)
				continue
			}
			if filepath.IsAbs(target) || !strings.HasPrefix(filepath.Clean(filepath.Join(dir, target)), chartDir+"/") {
				t.Errorf("%s links to %s, want a relative link into the chart", old, target)
			}
			a, errA := os.Stat(old)
			b, errB := os.Stat(f)
			if errA != nil || errB != nil || !os.SameFile(a, b) {
				t.Errorf("%s does not lead to %s (%v, %v)", old, f, errA, errB)
			}
		}
	}
}
