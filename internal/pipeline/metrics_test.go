package pipeline_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/telemetry/metrics"
)

// BenchmarkDecideMetrics is BenchmarkDecide with Pipeline.Metrics set and
// the route's metrics resolved as the gateway does at provisioning: the
// difference between the two is what metrics cost a request (budget 1 µs).
func BenchmarkDecideMetrics(b *testing.B) {
	f := newFixture(b)
	f.p.Audit = telemetry.NewDiscardAudit()
	f.p.Metrics = metrics.New(prometheus.NewRegistry())
	for _, rt := range f.p.Policy().Routes {
		rt.Metrics = f.p.Metrics.Route(rt.Name)
	}
	benchAllowedPath(b, f)
}
