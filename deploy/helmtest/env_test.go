package helmtest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/koppel/koppel/pkg/config"
)

// chartServices are the services the chart deploys, by their folder under services/ and their
// component label.
var chartServices = []string{"mapping", "gateway", "admin", "scheduler", "relation", "product", "invoice", "payment"}

// repoRoot is the repository root, seen from this package's folder (deploy/helmtest), where
// go test runs it.
const repoRoot = "../.."

var (
	varsOnce sync.Once
	varsOf   map[string][]config.Var
	varsErr  error
)

// serviceVars asks every service the chart deploys which variables it reads: each binary,
// built from this tree, prints them when run with -config-vars (pkg/service). So the chart is
// checked against the code, not against a list that could drift from it. Built once per run;
// the build cache makes that a link after the first time.
func serviceVars(t *testing.T) map[string][]config.Var {
	t.Helper()
	varsOnce.Do(func() { varsOf, varsErr = buildAndAsk(chartServices) })
	if varsErr != nil {
		t.Fatal(varsErr)
	}
	return varsOf
}

func buildAndAsk(services []string) (map[string][]config.Var, error) {
	dir, err := os.MkdirTemp("", "koppel-services-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	// What the binaries are built from, for go test's cache.
	sources := []string{filepath.Join(repoRoot, "pkg"), filepath.Join(repoRoot, "proto")}
	for _, s := range services {
		sources = append(sources, filepath.Join(repoRoot, "services", s))
	}
	for _, src := range sources {
		if err := trackInputs(src, true); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	args := []string{"build", "-o", dir + string(os.PathSeparator)}
	for _, s := range services {
		args = append(args, "./services/"+s)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build the services: %w\n%s", err, out)
	}
	vars := map[string][]config.Var{}
	for _, s := range services {
		out, err := exec.CommandContext(ctx, filepath.Join(dir, s), "-config-vars").Output()
		if err != nil {
			return nil, fmt.Errorf("%s -config-vars: %w", s, err)
		}
		var vs []config.Var
		if err := json.Unmarshal(out, &vs); err != nil {
			return nil, fmt.Errorf("%s -config-vars: %w", s, err)
		}
		if len(vs) == 0 {
			return nil, fmt.Errorf("%s -config-vars: no variables", s)
		}
		vars[s] = vs
	}
	return vars, nil
}

// checkEnv: every variable the chart gives a service is one the service reads (a variable it
// does not read is a setting that silently does nothing, or a secret handed to a service that
// has no use for it), every variable it requires is given, and KOPPEL_HTTP_ADDR is the port
// the container, its Service and its NetworkPolicy open.
func checkEnv(t *testing.T, m *manifests) {
	t.Helper()
	vars := serviceVars(t)
	for _, d := range m.Deployments {
		component := d.Spec.Template.Labels[componentLabel]
		reads, ok := vars[component]
		if !ok {
			t.Errorf("Deployment %s: component %q is no service the test knows (chartServices)", d.Name, component)
			continue
		}
		c := d.Spec.Template.Spec.Containers[0]
		var given []string
		for _, e := range c.Env {
			given = append(given, e.Name)
			if !slices.ContainsFunc(reads, func(v config.Var) bool { return v.Name == e.Name }) {
				t.Errorf("Deployment %s: sets %s, which %s does not read", d.Name, e.Name, component)
			}
		}
		for _, v := range reads {
			if v.Required && !slices.Contains(given, v.Name) {
				t.Errorf("Deployment %s: %s requires %s, the chart does not set it", d.Name, component, v.Name)
			}
		}
		addr, hasAddr := envValue(c, "KOPPEL_HTTP_ADDR")
		var httpPort int32
		for _, p := range c.Ports {
			if p.Name == "http" {
				httpPort = p.ContainerPort
			}
		}
		if hasAddr != (httpPort != 0) || (hasAddr && addr != fmt.Sprintf(":%d", httpPort)) {
			t.Errorf("Deployment %s: KOPPEL_HTTP_ADDR %q and container port http %d disagree", d.Name, addr, httpPort)
		}
	}
}

// TestEnvIsWhatEachServiceReads runs checkEnv on renders that turn on what the defaults leave
// off: mTLS to the mapping service, Secrets for the NATS and Redis URLs, outbound networks, the
// admin Ingress, a shard.
func TestEnvIsWhatEachServiceReads(t *testing.T) {
	for _, r := range renders {
		t.Run(r.name, func(t *testing.T) {
			checkEnv(t, render(t, r.files, ""))
		})
	}
	t.Run("everything on", func(t *testing.T) {
		m := render(t, []string{"testdata/moved-tenant.yaml"}, `
mappingAuth: {tls: {enabled: true, certManager: {issuerRef: {name: koppel-ca}}}}
nats: {urlSecret: {name: nats-creds, key: url}}
outbound: {networks: [10.20.0.0/16]}
admin: {ingress: {enabled: true, hosts: [koppel-admin.example.com], tls: [{secretName: koppel-admin-tls, hosts: [koppel-admin.example.com]}]}}
`)
		checkEnv(t, m)
		for _, d := range m.Deployments {
			c := d.Spec.Template.Spec.Containers[0]
			// What this render turns on must have reached the services, or checkEnv saw less
			// than it should.
			if _, ok := env(c, "KOPPEL_MAPPING_TLS_CA"); !ok && d.Spec.Template.Labels[componentLabel] != "mapping" {
				t.Errorf("Deployment %s: no KOPPEL_MAPPING_TLS_CA with mappingAuth.tls on", d.Name)
			}
		}
		if v, _ := envValue(deploymentsOf(m, "admin")[0].Spec.Template.Spec.Containers[0], "KOPPEL_OUTBOUND_NETWORKS"); v != "10.20.0.0/16" {
			t.Errorf("admin: KOPPEL_OUTBOUND_NETWORKS %q", v)
		}
	})
}
