package pipeline_test

import (
	"context"
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
	c := f.conn("api.example.com", f.client)
	r := get("/billing/orders/12345?expand=items",
		[2]string{"Accept", "application/json"}, [2]string{"User-Agent", "bench"}, [2]string{"Authorization", "Bearer abc"})
	var s sink
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		ex := f.p.Begin(c, r)
		if rf := ex.Decide(ctx, r); rf != nil {
			b.Fatal(rf.Reason)
		}
		s = s[:0]
		ex.WriteHeaders(r, &s)
		ex.Finish(200, 512, "")
		ex.Release()
	}
}
