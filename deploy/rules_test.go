package deploy_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/gatehouse/gatehouse/internal/telemetry/metrics"
)

const (
	rulesFile     = "prometheus/gatehouse-rules.yaml"
	rulesTestFile = "prometheus/gatehouse-rules.test.yaml"
	dashboardFile = "grafana/gatehouse.json"
)

// tool returns the path of a binary from Debian's prometheus package, or
// fails the test saying how to get it.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: install the Debian package prometheus (scripts/packages.txt; scripts/test.sh installs it as root)", name)
	}
	return p
}

func TestPromtoolCheckRules(t *testing.T) {
	out, err := exec.Command(tool(t, "promtool"), "check", "rules", rulesFile).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}

func TestPromtoolTestRules(t *testing.T) {
	cmd := exec.Command(tool(t, "promtool"), "test", "rules", "gatehouse-rules.test.yaml")
	cmd.Dir = "prometheus"
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert string `yaml:"alert"`
			Expr  string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

type ruleTests struct {
	Tests []struct {
		Name          string `yaml:"name"`
		AlertRuleTest []struct {
			Alertname string           `yaml:"alertname"`
			ExpAlerts []map[string]any `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// Every alert has a promtool test in which it fires.
func TestEveryAlertIsTested(t *testing.T) {
	var rf ruleFile
	var rt ruleTests
	readYAML(t, rulesFile, &rf)
	readYAML(t, rulesTestFile, &rt)
	fires := map[string]bool{}
	for _, tc := range rt.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			}
		}
	}
	n := 0
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			n++
			if !fires[r.Alert] {
				t.Errorf("alert %s has no test in %s where it fires", r.Alert, rulesTestFile)
			}
		}
	}
	if n < 7 {
		t.Errorf("only %d alerts", n)
	}
}

var metricName = regexp.MustCompile(`\b(gatehouse_[a-z0-9_]+|go_[a-z0-9_]+|process_[a-z0-9_]+)\b`)

// exported returns every series name a scrape of gatehouse can return:
// the catalog, and the Go and process collectors as registered here.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, n := range metrics.Names() {
		names[n] = true
	}
	reg := prometheus.NewRegistry()
	metrics.RegisterRuntime(reg)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		names[mf.GetName()] = true
		if mf.GetType().String() == "HISTOGRAM" || mf.GetType().String() == "SUMMARY" {
			names[mf.GetName()+"_bucket"], names[mf.GetName()+"_sum"], names[mf.GetName()+"_count"] = true, true, true
		}
	}
	return names
}

// queries returns every PromQL string in the dashboard: panel targets
// and template variable queries.
func queries(t *testing.T, v any, key string, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		if x["type"] == "datasource" {
			return // the data source variable: its query is a plugin type
		}
		for k, c := range x {
			if s, ok := c.(string); ok && (k == "expr" || (k == "query" && key == "templating") || k == "definition") {
				*out = append(*out, s)
				continue
			}
			next := key
			if k == "templating" {
				next = "templating"
			}
			queries(t, c, next, out)
		}
	case []any:
		for _, c := range x {
			queries(t, c, key, out)
		}
	}
}

func loadDashboard(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// The dashboard and the rules query only metrics the code exports: a
// renamed or removed metric fails here, not silently on a user's screen.
func TestQueriesUseExportedMetrics(t *testing.T) {
	names := exported(t)
	var rf ruleFile
	readYAML(t, rulesFile, &rf)
	var exprs []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}
	queries(t, loadDashboard(t), "", &exprs)
	used := map[string]bool{}
	for _, e := range exprs {
		ms := metricName.FindAllString(e, -1)
		if len(ms) == 0 {
			t.Errorf("query %q uses no gatehouse metric", e)
		}
		for _, m := range ms {
			used[m] = true
			if !names[m] {
				t.Errorf("query %q uses %s, which gatehouse does not export", e, m)
			}
		}
	}
	// The dashboard and rules together cover what operators watch.
	for _, want := range []string{"gatehouse_certificate_not_after_timestamp_seconds", "gatehouse_crl_next_update_timestamp_seconds",
		"gatehouse_tls_handshake_failures_total", "gatehouse_authz_denials_total", "gatehouse_request_duration_seconds_bucket",
		"gatehouse_ocsp_staple_age_seconds", "gatehouse_ca_certificate_not_after_timestamp_seconds"} {
		if !used[want] {
			t.Errorf("neither the dashboard nor the rules use %s", want)
		}
	}
}

// The dashboard is importable: unique panel ids, a grid position and the
// templated data source on every panel, and the certificate table sorted
// by time left, soonest first.
func TestDashboardShape(t *testing.T) {
	d := loadDashboard(t)
	if d["uid"] != "gatehouse" || d["title"] != "gatehouse" {
		t.Errorf("uid %v title %v", d["uid"], d["title"])
	}
	panels, _ := d["panels"].([]any)
	if len(panels) < 20 {
		t.Fatalf("%d panels", len(panels))
	}
	ids := map[float64]bool{}
	kinds := map[string]bool{"row": true, "timeseries": true, "stat": true, "table": true, "bargauge": true}
	sortedTable := false
	for _, p := range panels {
		p := p.(map[string]any)
		id, _ := p["id"].(float64)
		if ids[id] {
			t.Errorf("panel id %v twice", id)
		}
		ids[id] = true
		typ, _ := p["type"].(string)
		if !kinds[typ] {
			t.Errorf("panel %v: type %q", p["title"], typ)
		}
		if _, ok := p["gridPos"].(map[string]any); !ok {
			t.Errorf("panel %v has no gridPos", p["title"])
		}
		if typ == "row" {
			continue
		}
		if ds, _ := p["datasource"].(map[string]any); ds["uid"] != "${datasource}" {
			t.Errorf("panel %v: datasource %v (use the ${datasource} variable)", p["title"], p["datasource"])
		}
		if typ == "table" && strings.Contains(p["title"].(string), "Certificate expiry") {
			b, _ := json.Marshal(p["transformations"])
			sortedTable = strings.Contains(string(b), `"sortBy"`) && strings.Contains(string(b), `"desc":false`)
		}
	}
	if !sortedTable {
		t.Error("no certificate expiry table sorted by time left")
	}
	var vars []string
	for _, v := range d["templating"].(map[string]any)["list"].([]any) {
		vars = append(vars, v.(map[string]any)["name"].(string))
	}
	if !slices.Contains(vars, "datasource") || !slices.Contains(vars, "instance") {
		t.Errorf("template variables %v", vars)
	}
}
