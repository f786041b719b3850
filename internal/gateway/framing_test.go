package gateway

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// Response framing survives the relay on both engines (engines.md pitfall
// 3): Content-Length, chunked, close-delimited, large, HEAD, 204 and 304.
func TestResponseFraming(t *testing.T) {
	p := newPKI(t)
	be := newRawBackend(t)
	big := strings.Repeat("0123456789abcdef", 64<<10) // 1 MiB
	be.respond = func(c net.Conn, req *http.Request) {
		switch req.URL.Path {
		case "/cl":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: \"x\"\r\n\r\nhello")
		case "/chunked":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n")
		case "/close":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello")
			c.Close()
		case "/big":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+itoa(len(big))+"\r\n\r\n"+big)
		case "/204":
			io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
		case "/304":
			io.WriteString(c, "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n")
		}
	}
	g := startGateway(t, p.dir, baseConfig(p, be.url(), ""))
	forEachEngine(t, func(t *testing.T, e engine) {
		c := g.client(p.clientTLS(p.client, "localhost"), e.h2)
		for _, tc := range []struct {
			method, path string
			status       int
			body         string
			length       int64 // Content-Length the client sees (-1: any)
		}{
			{"GET", "/cl", 200, "hello", 5},
			{"GET", "/chunked", 200, "hello", -1},
			{"GET", "/close", 200, "hello", -1},
			{"GET", "/big", 200, big, int64(len(big))},
			{"HEAD", "/cl", 200, "", 5},
			{"GET", "/204", 204, "", -1},
			{"GET", "/304", 304, "", -1},
			{"GET", "/cl", 200, "hello", 5}, // the pool survived all of the above
		} {
			req, _ := http.NewRequest(tc.method, "https://localhost"+tc.path, nil)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", tc.method, tc.path, err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != tc.status || string(b) != tc.body {
				t.Errorf("%s %s: %d, %d bytes, %v; want %d %d bytes", tc.method, tc.path, resp.StatusCode, len(b), err, tc.status, len(tc.body))
			}
			if tc.length >= 0 && resp.ContentLength != tc.length {
				t.Errorf("%s %s: Content-Length %d, want %d", tc.method, tc.path, resp.ContentLength, tc.length)
			}
			if resp.Header.Get("Strict-Transport-Security") == "" {
				t.Errorf("%s %s: no HSTS", tc.method, tc.path)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "" {
				t.Errorf("%s %s: Content-Type %q invented (the backend sent none)", tc.method, tc.path, ct)
			}
		}
	})
}
