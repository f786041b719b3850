package gateway

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// Issue 9 item 8: a backend that writes an extra response late on a
// pooled connection cannot have it delivered to another request: a
// connection with bytes nobody asked for is closed, never reused.
func TestUnsolicitedBackendBytesAreNotDelivered(t *testing.T) {
	p := newPKI(t)
	be := newRawBackend(t)
	be.respond = func(c net.Conn, req *http.Request) {
		switch req.URL.Path {
		case "/first":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst")
			go func() {
				time.Sleep(30 * time.Millisecond)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nHIJACK")
			}()
		default:
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond")
		}
	}
	g := startGateway(t, p.dir, baseConfig(p, be.url(), ""))
	forEachEngine(t, func(t *testing.T, e engine) {
		c := g.client(p.clientTLS(p.client, "localhost"), e.h2)
		for i := 0; i < 5; i++ {
			if status, body, _ := get(t, c, "localhost", "/first"); status != 200 || string(body) != "first" {
				t.Fatalf("first: %d %q", status, body)
			}
			time.Sleep(100 * time.Millisecond) // the late extra response arrives
			if status, body, _ := get(t, c, "localhost", "/second"); status != 200 || string(body) != "second" {
				t.Fatalf("round %d: the next request got %d %q: another request's response", i, status, body)
			}
		}
	})
}
