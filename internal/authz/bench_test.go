package authz

import (
	"crypto/x509/pkix"
	"net"
	"net/url"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testpki"
)

// BenchmarkEvaluate measures the per-request cost of a realistic five-rule
// policy: "allow-last" is the worst allowed case (four rules fail before the
// fifth matches, no allocation), "deny" adds building the log reason.
func BenchmarkEvaluate(b *testing.B) {
	ca := testpki.NewRoot(b, "bench root")
	p := mustCompile(b,
		Rule{SPIFFEID: "spiffe://example.com/billing/*"},
		Rule{Subject: Subject{CN: "partner-a", O: "Partner Inc"}},
		Rule{SANDNS: "*.svc.example.com"},
		Rule{FingerprintSHA256: "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29"},
		Rule{SPIFFEID: "spiffe://example.com/orders/**", SANIP: "10.0.0.0/8"},
	)
	allow := issue(b, ca, certOpts{
		names: []pkix.AttributeTypeAndValue{org("Other Inc"), cn("orders-api")},
		dns:   []string{"orders.example.com"},
		ips:   []net.IP{net.ParseIP("10.1.2.3")},
		uris:  []*url.URL{mustURL(b, "spiffe://example.com/orders/api/v1")},
	})
	deny := issue(b, ca, certOpts{
		names: []pkix.AttributeTypeAndValue{cn("stranger")},
		dns:   []string{"stranger.example.org"},
		uris:  []*url.URL{mustURL(b, "spiffe://example.org/x")},
	})
	b.Run("allow-last", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !p.Evaluate(allow).Allowed {
				b.Fatal("denied")
			}
		}
	})
	b.Run("deny", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if p.Evaluate(deny).Allowed {
				b.Fatal("allowed")
			}
		}
	})
}
