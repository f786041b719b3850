package metrics

import (
	"flag"
	"os"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the metric list in README.md")

const (
	readmePath  = "../../../README.md"
	readmeBegin = "<!-- metrics:begin (generated: go test ./internal/telemetry/metrics -run TestREADME -update) -->\n"
	readmeEnd   = "<!-- metrics:end -->\n"
)

// metricList is the README's metric list, generated from the catalog.
func metricList() string {
	var b strings.Builder
	for _, exp := range []struct{ who, title string }{{"gateway", "`gatehouse serve` (admin `/metrics`)"}, {"ca", "`gatehouse ca serve --metrics-listen`"}} {
		b.WriteString("\n" + exp.title + ":\n\n| metric | type | labels | meaning |\n| --- | --- | --- | --- |\n")
		for _, s := range Catalog {
			if s.Exporter != exp.who && s.Exporter != "both" {
				continue
			}
			labels := "—"
			if len(s.Labels) > 0 {
				labels = "`" + strings.Join(s.Labels, "`, `") + "`"
			}
			b.WriteString("| `" + s.Name + "` | " + s.Type + " | " + labels + " | " + s.Help + " |\n")
		}
	}
	b.WriteString("\nLabel values:\n\n")
	lv := LabelValues()
	keys := make([]string, 0, len(lv))
	for k := range lv {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b.WriteString("- " + k + ": `" + strings.Join(lv[k], "`, `") + "`\n")
	}
	b.WriteString("\nBoth also export the Go runtime (`go_*`) and process (`process_*`) collectors.\n\n")
	return b.String()
}

// TestREADME: the README's metric list is the catalog's.
func TestREADME(t *testing.T) {
	data, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	i, j := strings.Index(s, readmeBegin), strings.Index(s, readmeEnd)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the markers %q ... %q", readmeBegin, readmeEnd)
	}
	want := s[:i+len(readmeBegin)] + metricList() + s[j:]
	if want == s {
		return
	}
	if *update {
		if err := os.WriteFile(readmePath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Error("README.md's metric list differs from the catalog: run go test ./internal/telemetry/metrics -run TestREADME -update")
}
