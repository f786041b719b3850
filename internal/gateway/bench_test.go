package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkProxy compares a small GET sent straight to the backend (over
// TLS, keep-alive) with the same GET through the gateway (mTLS, routing,
// header hygiene, identity headers, audit record). The difference is the
// gateway's cost per request; handshakes are amortized by keep-alive.
func BenchmarkProxy(b *testing.B) {
	p := newPKI(b)
	be := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer be.Close()
	plain := newBackend(b)
	plain.Config.Handler = be.Config.Handler

	fetch := func(b *testing.B, c *http.Client, url string) {
		for b.Loop() {
			resp, err := c.Get(url)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	}
	b.Run("direct", func(b *testing.B) {
		fetch(b, be.Client(), be.URL+"/small")
	})
	for _, h2 := range []bool{false, true} {
		name := map[bool]string{false: "gateway-h1", true: "gateway-h2"}[h2]
		b.Run(name, func(b *testing.B) {
			g := startGateway(b, p.dir, baseConfig(p, plain.URL, "identity_headers: [xfcc]\n"))
			fetch(b, g.client(p.clientTLS(p.client, "localhost"), h2), "https://localhost/small")
		})
	}
}
