package gateway

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// Issue 9 item 6: every response keeps the promises. After a backend's
// 1xx the final answer has HSTS; a flood of 1xx is not relayed and ends in
// a bounded error; OPTIONS * goes through the request checks and is
// audited; errors gatehouse writes itself are JSON with HSTS.
func TestResponsesKeepThePromises(t *testing.T) {
	p := newPKI(t)
	be := newRawBackend(t)
	be.respond = func(c net.Conn, req *http.Request) {
		switch req.URL.Path {
		case "/early":
			io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"+
				"HTTP/1.1 102 Processing\r\n\r\n"+
				"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		case "/flood":
			io.WriteString(c, strings.Repeat("HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n", 2000)+
				"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		default:
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	}
	g := startGateway(t, p.dir, baseConfig(p, be.url(), ""))
	forEachEngine(t, func(t *testing.T, e engine) {
		c := g.client(p.clientTLS(p.client, "localhost"), e.h2)
		for _, tc := range []struct {
			path   string
			status int
		}{{"/early", 200}, {"/flood", 502}} {
			status, body, hdr := get(t, c, "localhost", tc.path)
			if status != tc.status || hdr.Get("Strict-Transport-Security") == "" {
				t.Errorf("%s: %d %q, HSTS %q; want %d with HSTS", tc.path, status, body, hdr.Get("Strict-Transport-Security"), tc.status)
			}
			if tc.status == 502 && hdr.Get("Content-Type") != "application/json" {
				t.Errorf("%s: the 502 is not gatehouse's JSON: %v", tc.path, hdr)
			}
		}
		// OPTIONS * is answered by gatehouse, after the Host checks, and
		// audited; it never reaches a backend.
		before := len(be.requests())
		status, body := send(t, e, g.addr, p.clientTLS(p.client, "localhost"), "OPTIONS", "localhost", "*", nil, "")
		if status != 400 || !strings.Contains(body, `"status":400`) {
			t.Errorf("OPTIONS *: %d %s", status, body)
		}
		status, _ = send(t, e, g.addr, p.clientTLS(p.client, "localhost"), "OPTIONS", "other.example.com", "*", nil, "")
		if status != 421 {
			t.Errorf("OPTIONS * with another Host: %d, want 421", status)
		}
		if len(be.requests()) != before {
			t.Error("OPTIONS * reached the backend")
		}
	})
	if !strings.Contains(g.auditLog(), "OPTIONS * is not forwarded") {
		t.Errorf("OPTIONS * has no audit record")
	}
}

// A client's malformed chunked body is the client's error (400), never
// blamed on the backend (502), also when it breaks after the first 64 KiB
// were already streamed; and an HTTP/1.1 request without Host, or with a
// header name fasthttp cannot parse, gets gatehouse's JSON with HSTS.
func TestClientErrorsAre400(t *testing.T) {
	p := newPKI(t)
	be := newBackend(t)
	g := startGateway(t, p.dir, baseConfig(p, be.URL, ""))
	cfg := p.clientTLS(p.client, "localhost")
	big := strings.Repeat("x", 100<<10)
	for _, tc := range []struct{ name, raw string }{
		{"bad chunk early", "POST /c HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n"},
		{"bad chunk after 100 KiB", "POST /c HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n" +
			fmt.Sprintf("%x", len(big)) + "\r\n" + big + "\r\nzz\r\n"},
		{"chunked body cut short", "POST /c HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n" +
			fmt.Sprintf("%x", len(big)) + "\r\n" + big[:1000]},
		{"no Host", "GET / HTTP/1.1\r\n\r\n"},
		{"header name with a slash", "GET / HTTP/1.1\r\nHost: localhost\r\nBad/Name: 1\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := tc.raw
			closeWrite := strings.HasSuffix(tc.name, "cut short")
			got := exchangeHalfClose(t, g.addr, cfg, raw, closeWrite)
			if len(got) != 1 || got[0] != 400 {
				t.Fatalf("answers %v, want [400]", got)
			}
		})
	}
}
