package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/koppel/koppel/services/devstack/internal/stack"
	"github.com/nats-io/nats.go/jetstream"
	"gopkg.in/yaml.v3"
)

// The dashboards in deploy/grafana and the rules in deploy/prometheus are checked here: that
// they are well-formed, and that every metric they query is one the services really export,
// scraped from a running stack after some traffic.

// promqlMetrics returns the koppel metric names an expression selects: identifiers starting with
// koppel_ (exported) or koppel: (recorded by a rule), outside string literals and label matchers.
// It is not a PromQL parser, only careful enough for these files: a name in a label value or a
// matcher is not taken for a metric, and a function call is not a selector.
func promqlMetrics(expr string) []string {
	var names []string
	isIdent := func(c byte) bool {
		return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
	}
	braces := 0
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			// A string literal: skip to its unescaped end.
			j := i + 1
			for j < len(expr) && expr[j] != c {
				if expr[j] == '\\' && c != '`' {
					j++
				}
				j++
			}
			i = j + 1
		case c == '#':
			for i < len(expr) && expr[i] != '\n' {
				i++
			}
		case c == '{':
			braces++
			i++
		case c == '}':
			braces--
			i++
		case isIdent(c) && !(c >= '0' && c <= '9'):
			j := i
			for j < len(expr) && isIdent(expr[j]) {
				j++
			}
			word := expr[i:j]
			k := j
			for k < len(expr) && (expr[k] == ' ' || expr[k] == '\t' || expr[k] == '\n') {
				k++
			}
			call := k < len(expr) && expr[k] == '('
			prev := byte(' ')
			if i > 0 {
				prev = expr[i-1]
			}
			// $var and ${var} are Grafana variables, not selectors.
			if braces == 0 && !call && prev != '$' && (strings.HasPrefix(word, "koppel_") || strings.HasPrefix(word, "koppel:")) {
				names = append(names, word)
			}
			i = j
		case c >= '0' && c <= '9':
			// A number or a duration (1e-9, 15m, 0x1f): letters after digits belong to it.
			for i < len(expr) && (isIdent(expr[i]) || expr[i] == '.' || (expr[i] == '-' || expr[i] == '+') && (expr[i-1] == 'e' || expr[i-1] == 'E')) {
				i++
			}
		default:
			i++
		}
	}
	return names
}

func TestPromqlMetrics(t *testing.T) {
	for expr, want := range map[string][]string{
		`koppel_a`: {"koppel_a"},
		`max by (tenant) (koppel_a{tenant="koppel_not", kind=~"koppel_x|y"})`:                        {"koppel_a"},
		`sum(rate(koppel_b_bucket[5m])) / clamp_min(sum(rate(koppel_c[$__rate_interval])), 1e-9)`:    {"koppel_b_bucket", "koppel_c"},
		"koppel_d\n  or\nlast_over_time(koppel:rec:latest[2h])":                                      {"koppel_d", "koppel:rec:latest"},
		`(time() - koppel:x) > on (tenant, kind) (2 * max by (tenant, kind) (koppel_y) + 900)`:       {"koppel:x", "koppel_y"},
		`koppel_e > 1/60 and koppel_f == 1`:                                                          {"koppel_e", "koppel_f"},
		`sum by (system) (increase(koppel_g{endpoint!="POST /v1/session", status="403"}[15m])) >= 3`: {"koppel_g"},
		`topk(10, koppel_h) # koppel_comment`:                                                        {"koppel_h"},
		`label_values(koppel_i, tenant)`:                                                             {"koppel_i"},
		`up{job="koppel_j"} + vector(0) + ${koppel_var} + $koppel_var`:                               nil,
		`koppel_fn(koppel_k)`:              {"koppel_k"},
		`"escaped \" koppel_l" + koppel_m`: {"koppel_m"},
	} {
		if got := promqlMetrics(expr); !slices.Equal(got, want) {
			t.Errorf("promqlMetrics(%q) = %q, want %q", expr, got, want)
		}
	}
}

// balanced reports whether the brackets of a PromQL expression pair up, outside strings.
func balanced(expr string) bool {
	var stack []byte
	pairs := map[byte]byte{')': '(', ']': '[', '}': '{'}
	for i := 0; i < len(expr); i++ {
		switch c := expr[i]; c {
		case '"', '\'', '`':
			j := i + 1
			for j < len(expr) && expr[j] != c {
				if expr[j] == '\\' && c != '`' {
					j++
				}
				j++
			}
			if j >= len(expr) {
				return false
			}
			i = j
		case '(', '[', '{':
			stack = append(stack, c)
		case ')', ']', '}':
			if len(stack) == 0 || stack[len(stack)-1] != pairs[c] {
				return false
			}
			stack = stack[:len(stack)-1]
		}
	}
	return len(stack) == 0
}

// A query is where a dashboard or rule reads metrics.
type query struct {
	where string // file and panel or rule, for messages
	expr  string
}

type dashboard struct {
	UID           string                   `json:"uid"`
	Title         string                   `json:"title"`
	SchemaVersion int                      `json:"schemaVersion"`
	Panels        []dashPanel              `json:"panels"`
	Templating    struct{ List []dashVar } `json:"templating"`
}

type dashPanel struct {
	ID         int             `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Datasource *dashDatasource `json:"datasource"`
	Targets    []struct {
		RefID      string          `json:"refId"`
		Expr       string          `json:"expr"`
		Datasource *dashDatasource `json:"datasource"`
	} `json:"targets"`
	Panels []dashPanel `json:"panels"` // of a collapsed row
}

type dashDatasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type dashVar struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      any             `json:"query"`
	Definition string          `json:"definition"`
	Datasource *dashDatasource `json:"datasource"`
}

var grafanaVarRef = regexp.MustCompile(`\$\{?(\w+)`)

// dashboardQueries checks every dashboard and returns its queries.
func dashboardQueries(t *testing.T) []query {
	t.Helper()
	root, err := stack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(root, "deploy", "grafana", "*.json"))
	if err != nil || len(files) < 4 {
		t.Fatalf("want the four dashboards in deploy/grafana, found %v (%v)", files, err)
	}
	var out []query
	uids := map[string]string{}
	for _, f := range files {
		name := filepath.Base(f)
		var d dashboard
		if err := json.Unmarshal(repoFile(t, filepath.Join("deploy", "grafana", name)), &d); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if d.UID == "" || d.Title == "" {
			t.Errorf("%s: no uid or title", name)
		}
		if other, dup := uids[d.UID]; dup {
			t.Errorf("%s: uid %q is also %s's", name, d.UID, other)
		}
		uids[d.UID] = name
		if d.SchemaVersion < 39 {
			t.Errorf("%s: schemaVersion %d, want at least 39", name, d.SchemaVersion)
		}
		vars := map[string]dashVar{}
		for _, v := range d.Templating.List {
			vars[v.Name] = v
		}
		if ds, ok := vars["datasource"]; !ok || ds.Type != "datasource" || ds.Query != "prometheus" {
			t.Errorf("%s: want a template variable datasource of type datasource for prometheus, got %+v", name, ds)
		}
		usesVar := func(where, expr string) {
			for _, m := range grafanaVarRef.FindAllStringSubmatch(expr, -1) {
				if _, ok := vars[m[1]]; !ok && !strings.HasPrefix(m[1], "__") {
					t.Errorf("%s: uses $%s, which the dashboard does not define", where, m[1])
				}
			}
		}
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			where := fmt.Sprintf("%s variable %s", name, v.Name)
			if v.Datasource == nil || v.Datasource.UID != "${datasource}" {
				t.Errorf("%s: not on ${datasource}", where)
			}
			out = append(out, query{where, v.Definition})
		}
		ids := map[int]bool{}
		var walk func(ps []dashPanel)
		walk = func(ps []dashPanel) {
			for _, p := range ps {
				where := fmt.Sprintf("%s panel %d %q", name, p.ID, p.Title)
				if p.ID == 0 || ids[p.ID] {
					t.Errorf("%s: panel ID missing or used twice", where)
				}
				ids[p.ID] = true
				walk(p.Panels)
				if p.Type == "row" {
					continue
				}
				if p.Datasource == nil || p.Datasource.UID != "${datasource}" || p.Datasource.Type != "prometheus" {
					t.Errorf("%s: datasource is not the ${datasource} variable: %+v", where, p.Datasource)
				}
				if len(p.Targets) == 0 {
					t.Errorf("%s: no queries", where)
				}
				for _, tg := range p.Targets {
					if strings.TrimSpace(tg.Expr) == "" || !balanced(tg.Expr) {
						t.Errorf("%s %s: empty or unbalanced expression %q", where, tg.RefID, tg.Expr)
					}
					if tg.Datasource != nil && tg.Datasource.UID != "${datasource}" {
						t.Errorf("%s %s: datasource %+v", where, tg.RefID, tg.Datasource)
					}
					usesVar(where, tg.Expr)
					out = append(out, query{where + " " + tg.RefID, tg.Expr})
				}
			}
		}
		walk(d.Panels)
	}
	return out
}

type ruleFile struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Rules    []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

var (
	durationPattern = regexp.MustCompile(`^([0-9]+(ms|s|m|h|d|w|y))+$`)
	recordPattern   = regexp.MustCompile(`^koppel:[a-z0-9_]+:[a-z0-9_]+$`)
)

// ruleQueries checks every rule file and returns the rules' expressions and the names recorded.
func ruleQueries(t *testing.T) ([]query, map[string]bool) {
	t.Helper()
	root, err := stack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(root, "deploy", "prometheus", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no rule files in deploy/prometheus (%v)", err)
	}
	var out []query
	recorded := map[string]bool{}
	alerts := map[string]bool{}
	for _, f := range files {
		name := filepath.Base(f)
		var rf ruleFile
		dec := yaml.NewDecoder(strings.NewReader(string(repoFile(t, filepath.Join("deploy", "prometheus", name)))))
		dec.KnownFields(true)
		if err := dec.Decode(&rf); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if len(rf.Groups) == 0 {
			t.Errorf("%s: no groups", name)
		}
		for _, g := range rf.Groups {
			if g.Name == "" || len(g.Rules) == 0 {
				t.Errorf("%s: group %q without a name or rules", name, g.Name)
			}
			if g.Interval != "" && !durationPattern.MatchString(g.Interval) {
				t.Errorf("%s: group %s: interval %q", name, g.Name, g.Interval)
			}
			for _, r := range g.Rules {
				where := fmt.Sprintf("%s %s%s", name, r.Alert, r.Record)
				if strings.TrimSpace(r.Expr) == "" || !balanced(r.Expr) {
					t.Errorf("%s: empty or unbalanced expr", where)
				}
				switch {
				case r.Record != "" && r.Alert == "":
					if !recordPattern.MatchString(r.Record) {
						t.Errorf("%s: want a recorded name of the form koppel:metric:operation", where)
					}
					recorded[r.Record] = true
				case r.Alert != "" && r.Record == "":
					if alerts[r.Alert] {
						t.Errorf("%s: alert defined twice", where)
					}
					alerts[r.Alert] = true
					if !durationPattern.MatchString(r.For) {
						t.Errorf("%s: for %q, want a duration", where, r.For)
					}
					if s := r.Labels["severity"]; s != "critical" && s != "warning" && s != "info" {
						t.Errorf("%s: severity %q, want critical, warning or info", where, s)
					}
					if r.Annotations["summary"] == "" || len(r.Annotations["description"]) < 80 {
						t.Errorf("%s: want a summary and a description that says what to do", where)
					}
				default:
					t.Errorf("%s: a rule is either an alert or a record", where)
				}
				out = append(out, query{where, r.Expr})
			}
		}
	}
	for _, a := range []string{"KoppelSyncStale", "KoppelDeadLetters", "KoppelBusErrorRatioHigh", "KoppelAPIServerErrorsHigh", "KoppelAuthenticationFailures"} {
		if !alerts[a] {
			t.Errorf("no alert %s", a)
		}
	}
	return out, recorded
}

// TestDashboardsAndRulesAreWellFormed is the static half, quick enough for every run.
func TestDashboardsAndRulesAreWellFormed(t *testing.T) {
	queries := dashboardQueries(t)
	rules, recorded := ruleQueries(t)
	for _, q := range append(queries, rules...) {
		names := promqlMetrics(q.expr)
		if len(names) == 0 {
			t.Errorf("%s: queries no koppel metric: %q", q.where, q.expr)
		}
		for _, n := range names {
			if strings.HasPrefix(n, "koppel:") && !recorded[n] {
				t.Errorf("%s: %s is recorded by no rule", q.where, n)
			}
		}
	}
}

// exportedFamilies scrapes a service's /metrics and returns its metric families by type.
func exportedFamilies(t *testing.T, addr string) map[string]string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("scrape %s: %s", addr, resp.Status)
	}
	families := map[string]string{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			families[f[2]] = f[3]
		}
	}
	return families
}

// family maps a series name to its family: a histogram's _bucket, _sum and _count belong to it.
func family(name string, families map[string]string) (string, bool) {
	if _, ok := families[name]; ok {
		return name, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if ok && (families[base] == "histogram" || families[base] == "summary" && suffix != "_bucket") {
			return base, true
		}
	}
	return "", false
}

// sample reads one series' value from a scrape of every service: the largest, as dashboards
// take the max over replicas.
func sample(t *testing.T, s *stack.Stack, series string) float64 {
	t.Helper()
	best := -1.0
	for _, svc := range stack.Services {
		if v := metric(t, s, svc, series); v > best {
			best = v
		}
	}
	return best
}

// Every metric the dashboards and rules query is exported by a running stack after an import
// through a 429 storm, a webhook, a run of every scheduled kind and a dead letter.
func TestDashboardsAndRulesQueryExportedMetrics(t *testing.T) {
	start := time.Now()
	s := startStackEnv(t, map[string]string{"KOPPEL_TRIBE_RATE": "1000", "KOPPEL_EBOEKHOUDEN_RATE": "1000"})
	ctx := context.Background()
	admin := &client{t: t, base: "http://" + s.Addrs["admin"], token: s.AdminToken}

	// A tenant without credentials: its webhook event ends in an issue.
	setUpTenant(t, admin, "acme", "whsec")
	if code := deliver(t, s, "acme", "whsec", orgEvent("org-1")); code != 202 {
		t.Fatalf("webhook: %d", code)
	}
	eventually(t, "the relation worker to end acme's event with an issue", 30*time.Second, func() bool { return metric(t, s, "relation", handled) == 1 })

	// A paused tenant, for the tenant counts by state.
	setUpTenant(t, admin, "paused-co", "whsec")
	if code, body := admin.do("PUT", "/admin/v1/tenants/paused-co/state", map[string]string{"state": "paused"}); code != 200 {
		t.Fatalf("pause: %d %v", code, body)
	}
	// Its webhook event is held on the bus while it is paused: a tenant with messages waiting,
	// whatever else has drained by the time of the scrape.
	if code := deliver(t, s, "paused-co", "whsec", orgEvent("org-9")); code != 202 {
		t.Fatalf("webhook of the paused tenant: %d", code)
	}

	// An event whose last allowed delivery died with its worker is dead-lettered. Ten workers
	// that died while handling it are played here by taking each delivery and refusing it while
	// the relation service is down; the restarted service sees the eleventh and gives up on it.
	s.Kill("relation")
	if code := deliver(t, s, "acme", "whsec", orgEvent("org-2")); code != 202 {
		t.Fatalf("webhook: %d", code)
	}
	failDeliveries(t, s, "tribe.evt.acme.Relation_Organization", 10)
	if err := s.Restart(ctx, "relation"); err != nil {
		t.Fatal(err)
	}
	deadLetter := `koppel_bus_dead_letters{consumer="relation-evt",tenant="acme"}`
	eventually(t, "the dead letter in the scheduler's metrics", 30*time.Second, func() bool { return metric(t, s, "scheduler", deadLetter) == 1 })

	// A tenant with data, set up while e-Boekhouden throttles a fifth of the calls (retries and
	// rate-limit waits); its import starts at activation.
	sandboxJSON(t, s, "PUT", "/eboekhouden/_sim/faults", map[string]any{"rateLimitProb": 0.2, "retryAfter": "100ms"}, nil)
	if _, err := seedDemo(ctx, s); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a retried e-Boekhouden call", 60*time.Second, func() bool {
		for _, svc := range []string{"gateway", "relation", "product", "payment"} {
			if _, ok := exportedFamilies(t, s.OpsAddrs[svc])["koppel_api_retries_total"]; ok {
				return true
			}
		}
		return false
	})
	sandboxJSON(t, s, "DELETE", "/eboekhouden/_sim/faults", nil, nil)

	// The import and a run of every kind succeed (partial runs count as having run). The
	// scheduled relation pull and scan that fired at activation were skipped, since the import
	// did their work; an operator's run-now of each comes after the import.
	eventually(t, "demo's import", 180*time.Second, func() bool {
		return sample(t, s, `koppel_sync_last_success_timestamp_seconds{kind="import",tenant="demo"}`) >= float64(start.Unix())
	})
	for _, kind := range []string{"relation", "relation-scan"} {
		if code, body := admin.do("POST", "/admin/v1/tenants/demo/sync/"+kind, nil); code != 202 {
			t.Fatalf("run %s now: %d %v", kind, code, body)
		}
		eventually(t, "demo's "+kind+" run", 60*time.Second, func() bool {
			return sample(t, s, fmt.Sprintf(`koppel_sync_last_success_timestamp_seconds{kind=%q,tenant="demo"}`, kind)) >= float64(start.Unix())
		})
	}
	for _, kind := range []string{"import", "relation", "relation-scan", "product", "payment"} {
		series := fmt.Sprintf(`koppel_sync_last_success_timestamp_seconds{kind=%q,tenant="demo"}`, kind)
		deadline := time.Now().Add(180 * time.Second)
		for sample(t, s, series) < float64(start.Unix()) {
			if time.Now().After(deadline) {
				_, status := admin.do("GET", "/admin/v1/tenants/demo/status", nil)
				t.Fatalf("no successful %s run of demo; status: %v", kind, status["runs"])
			}
			time.Sleep(500 * time.Millisecond)
		}
	}

	// The values, not only the names, are right where the test knows them.
	for series, want := range map[string]float64{
		`koppel_tenants{state="active"}`:                                       2,
		`koppel_tenants{state="paused"}`:                                       1,
		`koppel_tenant_state{state="paused",tenant="paused-co"}`:               1,
		`koppel_bus_tenant_messages{stream="TRIBE_EVENTS",tenant="paused-co"}`: 1,
		`koppel_tenant_schedule_seconds{kind="relation",tenant="demo"}`:        86400,
		`koppel_sync_runs_total{kind="import",status="failed",tenant="demo"}`:  0,
		`koppel_bus_stream_messages{stream="DEAD_LETTERS"}`:                    1,
		`koppel_bus_scan_success`:                                              1,
		`koppel_tenant_scan_success`:                                           1,
	} {
		if got := sample(t, s, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	ran := sample(t, s, `koppel_sync_runs_total{kind="import",status="succeeded",tenant="demo"}`) +
		sample(t, s, `koppel_sync_runs_total{kind="import",status="partial",tenant="demo"}`)
	if ran != 1 {
		t.Errorf("demo's import finished %v times, want once", ran)
	}
	if got := sample(t, s, `koppel_tenant_open_issues{tenant="acme"}`); got < 1 {
		t.Errorf("acme's open issues = %v, want at least the not_configured one", got)
	}
	if got := sample(t, s, `koppel_sync_last_run_records{kind="import",outcome="created",tenant="demo"}`); got < 1 {
		t.Errorf("the import created %v records, want the active relations", got)
	}

	exported := map[string]string{}
	for _, svc := range stack.Services {
		for name, typ := range exportedFamilies(t, s.OpsAddrs[svc]) {
			exported[name] = typ
		}
	}
	dash := dashboardQueries(t)
	rules, recorded := ruleQueries(t)
	used := map[string]bool{}
	for _, q := range append(dash, rules...) {
		for _, n := range promqlMetrics(q.expr) {
			if recorded[n] {
				continue
			}
			fam, ok := family(n, exported)
			if !ok {
				t.Errorf("%s: %s is exported by no service", q.where, n)
				continue
			}
			used[fam] = true
		}
	}
	var unused []string
	for name := range exported {
		if strings.HasPrefix(name, "koppel_") && !used[name] {
			unused = append(unused, name)
		}
	}
	slices.Sort(unused)
	t.Logf("koppel metric families no dashboard or rule uses: %v", unused)
}

// failDeliveries takes the relation-evt consumer's message on subject n times and refuses each
// (a nak, redelivered at once), as n workers that crashed while handling it would.
func failDeliveries(t *testing.T, s *stack.Stack, subject string, n int) {
	t.Helper()
	js := stackJetStream(t, s)
	ctx := context.Background()
	cons, err := js.Consumer(ctx, "TRIBE_EVENTS", "relation-evt")
	if err != nil {
		t.Fatal(err)
	}
	for delivered := 0; delivered < n; {
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := false
		for m := range batch.Messages() {
			got = true
			if m.Subject() != subject {
				t.Fatalf("relation-evt delivered %s, want only %s", m.Subject(), subject)
			}
			meta, err := m.Metadata()
			if err != nil {
				t.Fatal(err)
			}
			delivered = int(meta.NumDelivered)
			if err := m.Nak(); err != nil {
				t.Fatal(err)
			}
		}
		if !got {
			t.Fatalf("no delivery of %s after %d", subject, delivered)
		}
	}
}
