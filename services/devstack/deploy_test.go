package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/koppel/koppel/pkg/config"
	"github.com/koppel/koppel/pkg/httpapi"
	"github.com/koppel/koppel/services/devstack/internal/stack"
	"gopkg.in/yaml.v3"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds every service once per test binary.
func binaries(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "koppel-bin-")
		if buildErr == nil {
			buildErr = stack.Build(context.Background(), binDir)
		}
		if buildErr == nil {
			root, _ := stack.RepoRoot()
			cmd := exec.Command("go", "build", "-o", binDir+string(os.PathSeparator), "./services/koppelctl")
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("build koppelctl: %w\n%s", err, out)
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// configVars asks every service binary which variables it reads.
func configVars(t *testing.T) map[string][]config.Var {
	t.Helper()
	dir := binaries(t)
	out := map[string][]config.Var{}
	for _, name := range stack.Services {
		raw, err := exec.Command(filepath.Join(dir, name), "-config-vars").Output()
		if err != nil {
			t.Fatalf("%s -config-vars: %v", name, err)
		}
		var vars []config.Var
		if err := json.Unmarshal(raw, &vars); err != nil {
			t.Fatalf("%s -config-vars: %v", name, err)
		}
		out[name] = vars
	}
	return out
}

func known(vars []config.Var, name string) bool {
	return slices.ContainsFunc(vars, func(v config.Var) bool { return v.Name == name })
}

func repoFile(t *testing.T, path string) []byte {
	t.Helper()
	root, err := stack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type composeFile struct {
	Services map[string]struct {
		Image   string            `yaml:"image"`
		Command []string          `yaml:"command"`
		Ports   []string          `yaml:"ports"`
		Volumes []string          `yaml:"volumes"`
		Env     map[string]string `yaml:"environment"`
		Build   struct {
			Dockerfile string            `yaml:"dockerfile"`
			Args       map[string]string `yaml:"args"`
		} `yaml:"build"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

func TestComposeWiresEveryServiceWithKnownVariables(t *testing.T) {
	var c composeFile
	if err := yaml.Unmarshal(repoFile(t, "docker-compose.yml"), &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	vars := configVars(t)
	for _, name := range stack.Services {
		svc, ok := c.Services[name]
		if !ok {
			t.Errorf("docker-compose.yml has no service %q", name)
			continue
		}
		if svc.Build.Args["SERVICE"] != name || svc.Build.Dockerfile != "deploy/Dockerfile" {
			t.Errorf("%s: builds %q from %q", name, svc.Build.Args["SERVICE"], svc.Build.Dockerfile)
		}
		for k := range svc.Env {
			if !known(vars[name], k) {
				t.Errorf("%s: sets %s, which the service does not read", name, k)
			}
		}
		for _, v := range vars[name] {
			if v.Required {
				if _, ok := svc.Env[v.Name]; !ok {
					t.Errorf("%s: required %s not set", name, v.Name)
				}
			}
		}
	}
	nats := c.Services["nats"]
	if !slices.Contains(nats.Command, "-js") || len(nats.Volumes) == 0 {
		t.Errorf("nats: want JetStream on and a volume, got %v %v", nats.Command, nats.Volumes)
	}
	redis := c.Services["redis"]
	if !strings.Contains(strings.Join(redis.Command, " "), "--appendonly yes") || len(redis.Volumes) == 0 {
		t.Errorf("redis: want AOF on and a volume, got %v %v", redis.Command, redis.Volumes)
	}
}

// TestComposeKeepsInfrastructureLocal: NATS, Redis and the sandbox are published on the
// loopback address only, and Redis wants a password, which the mapping service's URL carries.
func TestComposeKeepsInfrastructureLocal(t *testing.T) {
	var c composeFile
	if err := yaml.Unmarshal(repoFile(t, "docker-compose.yml"), &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for _, name := range []string{"nats", "redis", "sandbox"} {
		if len(c.Services[name].Ports) == 0 {
			t.Errorf("%s: no ports published (the check below would pass on nothing)", name)
		}
		for _, p := range c.Services[name].Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("%s: port %q is published on every interface, want 127.0.0.1:…", name, p)
			}
		}
	}
	redis := strings.Join(c.Services["redis"].Command, " ")
	if !strings.Contains(redis, "--requirepass ${KOPPEL_REDIS_PASSWORD:?") {
		t.Errorf("redis: %q sets no required password", redis)
	}
	if u := c.Services["mapping"].Env["KOPPEL_REDIS_URL"]; !strings.Contains(u, ":${KOPPEL_REDIS_PASSWORD") {
		t.Errorf("mapping: KOPPEL_REDIS_URL %q does not carry the Redis password", u)
	}
}

// TestComposeAuthenticatesEveryCaller: every service that calls the mapping service has a
// token whose SHA-256 the mapping service lists under that service's name, and every image
// compose pulls is pinned by digest.
func TestComposeAuthenticatesEveryCaller(t *testing.T) {
	var c composeFile
	if err := yaml.Unmarshal(repoFile(t, "docker-compose.yml"), &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	hashes := map[string]string{}
	for _, entry := range strings.Split(c.Services["mapping"].Env["KOPPEL_GRPC_CALLER_TOKEN_HASHES"], ",") {
		caller, h, _ := strings.Cut(strings.TrimSpace(entry), ":")
		hashes[caller] = h
	}
	for _, name := range []string{"gateway", "scheduler", "relation", "product", "invoice", "payment"} {
		token := c.Services[name].Env["KOPPEL_MAPPING_TOKEN"]
		if token == "" || httpapi.HashToken(token) != hashes[name] {
			t.Errorf("%s: KOPPEL_MAPPING_TOKEN %q is not the token the mapping service knows for %s", name, token, name)
		}
	}
	digest := regexp.MustCompile(`@sha256:[a-f0-9]{64}$`)
	for name, svc := range c.Services {
		if svc.Image != "" && !digest.MatchString(svc.Image) {
			t.Errorf("%s: image %q is not pinned by digest", name, svc.Image)
		}
	}
}

func TestDockerfileBuildsStaticNonRootImages(t *testing.T) {
	df := string(repoFile(t, "deploy/Dockerfile"))
	var froms, users []string
	for _, line := range strings.Split(df, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			froms = append(froms, line)
		case "USER":
			users = append(users, line)
		}
	}
	if len(froms) < 2 {
		t.Fatalf("want a multi-stage build, got %v", froms)
	}
	if !strings.Contains(froms[len(froms)-1], "distroless/static") {
		t.Errorf("final stage %q is not a small static base", froms[len(froms)-1])
	}
	if len(users) == 0 || !strings.Contains(users[len(users)-1], "nonroot") {
		t.Errorf("final stage does not run as non-root: %v", users)
	}
	for _, want := range []string{"CGO_ENABLED=0", "./services/${SERVICE}", "ENTRYPOINT"} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	// The build stage needs the go.mod of every workspace module before `go mod download`.
	for _, line := range strings.Split(string(repoFile(t, "go.work")), "\n") {
		dir := strings.TrimSpace(line)
		if !strings.HasPrefix(dir, "./") {
			continue
		}
		if mod := strings.TrimPrefix(dir, "./") + "/go.mod"; !strings.Contains(df, "COPY "+mod) {
			t.Errorf("Dockerfile does not copy %s", mod)
		}
	}
}

func TestReadmeDocumentsEveryVariable(t *testing.T) {
	readme := string(repoFile(t, "README.md"))
	for name, vars := range configVars(t) {
		for _, v := range vars {
			if !strings.Contains(readme, "`"+v.Name+"`") {
				t.Errorf("README.md does not document %s (read by %s)", v.Name, name)
			}
		}
	}
	for _, v := range config.Describe(devConfig{}) {
		if !strings.Contains(readme, "`"+v.Name+"`") {
			t.Errorf("README.md does not document %s (read by make run)", v.Name)
		}
	}
}
