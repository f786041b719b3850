package pipeline_test

import (
	"context"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/guard"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// withGuard attaches a guard built from extra (route billing's rate limit
// etc.) to the fixture's policy.
func withGuard(t testing.TB, f *fixture, billing string) {
	t.Helper()
	yaml := `server_tls: { certificates: [{cert: s.pem, key: k.pem}] }
client_auth: { trusted_cas: [ca.pem] }
routes:
  - { name: public, path: /, backend: "http://127.0.0.1:9" }
  - name: billing
    path: /billing/
    backend: "http://127.0.0.1:9"
` + billing
	cf, err := config.Parse("g.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	g, err := guard.Build(cf, guard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f.pol.Guard = g
	for _, r := range f.pol.Routes {
		r.Guard = g.Route(r.Name)
	}
}

func TestDecideRateLimited(t *testing.T) {
	f := newFixture(t)
	withGuard(t, f, "    rate_limit: { per: identity, rate: 1/m, burst: 2 }\n")
	c := f.conn("api.example.com", f.client)
	r := get("/billing/orders/1")
	for i := range 3 {
		ex := f.p.Begin(c, r)
		rf := ex.Decide(context.Background(), r)
		switch {
		case i < 2 && rf != nil:
			t.Fatalf("request %d refused: %s", i, rf.Reason)
		case i == 2 && (rf == nil || rf.Status != 429 || rf.Decision != "limit"):
			t.Fatalf("third request: %+v", rf)
		}
		rec := ex.Record()
		if rec.Limit != "billing" || rec.LimitKey != "spiffe:spiffe://example.com/billing/api" {
			t.Fatalf("record names %q/%q", rec.Limit, rec.LimitKey)
		}
		ex.Finish(200, 0, "")
		ex.Release()
	}
}

// BenchmarkDecideRateLimited is BenchmarkDecide with a rate limit (per
// identity, in memory) and the in-flight bounds on the route: what the
// limits add to a request's decisions.
func BenchmarkDecideRateLimited(b *testing.B) {
	f := newFixture(b)
	withGuard(b, f, "    rate_limit: { per: identity, rate: 1000000000/s, burst: 1000000000 }\n    max_in_flight: 100000\n")
	f.p.Audit = telemetry.NewDiscardAudit()
	benchAllowedPath(b, f)
}
