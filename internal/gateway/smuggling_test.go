package gateway

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawBackend is a TCP backend that records the exact bytes of every
// request gatehouse sends it and answers each with a small 200.
type rawBackend struct {
	ln   net.Listener
	mu   sync.Mutex
	seen []string
	// respond, if set, writes the answer instead of the small 200.
	respond func(c net.Conn, req *http.Request)
}

func newRawBackend(t *testing.T) *rawBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &rawBackend{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go b.serve(c)
		}
	}()
	return b
}

func (b *rawBackend) serve(c net.Conn) {
	defer c.Close()
	var rec bytes.Buffer
	br := bufio.NewReader(io.TeeReader(c, &rec))
	for {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		req, err := http.ReadRequest(br)
		if err != nil {
			if rec.Len() > 0 {
				b.record(rec.String() + "\n[unparsable: " + err.Error() + "]")
			}
			return
		}
		io.Copy(io.Discard, req.Body)
		// What the parser consumed is the request; what it buffered
		// beyond belongs to the next one.
		raw := rec.Bytes()[:rec.Len()-br.Buffered()]
		b.record(string(raw))
		rest := append([]byte(nil), rec.Bytes()[len(raw):]...)
		rec.Reset()
		rec.Write(rest)
		if b.respond != nil {
			b.respond(c, req)
			continue
		}
		if req.Header.Get("Upgrade") != "" {
			// A backend (or sidecar) that accepts any upgrade, h2c
			// included, and then serves whatever comes.
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+req.Header.Get("Upgrade")+"\r\n\r\n")
			io.Copy(io.Discard, br)
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok")
	}
}

func (b *rawBackend) record(s string) {
	b.mu.Lock()
	b.seen = append(b.seen, s)
	b.mu.Unlock()
}

func (b *rawBackend) requests() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.seen...)
}

func (b *rawBackend) url() string { return "http://" + b.ln.Addr().String() }

// exchange writes raw on a new HTTP/1.1 TLS connection and reads every
// response until the gateway closes it.
func exchange(t *testing.T, addr string, cfg *tls.Config, raw string) []int {
	t.Helper()
	return exchangeHalfClose(t, addr, cfg, raw, false)
}

// exchangeHalfClose is exchange, optionally closing the write side after
// raw (a client that stops mid-body).
func exchangeHalfClose(t *testing.T, addr string, cfg *tls.Config, raw string, closeWrite bool) []int {
	t.Helper()
	c := cfg.Clone()
	c.NextProtos = []string{"http/1.1"}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, c)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, raw)
	if closeWrite {
		conn.CloseWrite()
	}
	br := bufio.NewReader(conn)
	var statuses []int
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return statuses
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
		if resp.StatusCode >= 400 {
			if resp.Header.Get("Strict-Transport-Security") == "" || resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("refusal %d without HSTS or JSON: %v", resp.StatusCode, resp.Header)
			}
		}
		if resp.Close {
			return statuses
		}
	}
}

// The request smuggling and desync corpus through the real gateway: every
// ambiguous framing is refused with 400 and the connection closed before
// the backend sees a byte; what passes reaches the backend re-framed by
// gatehouse (one Host, Content-Length or chunked as gatehouse chose, no
// client framing headers).
func TestSmugglingCorpus(t *testing.T) {
	p := newPKI(t)
	be := newRawBackend(t)
	g := startGateway(t, p.dir, baseConfig(p, be.url(), ""))
	cfg := p.clientTLS(p.client, "localhost")
	const h = "Host: localhost\r\n"
	for _, tc := range []struct {
		name     string
		raw      string
		statuses []int // the answers, in order, until the gateway closes
		backend  int   // requests the backend must see
	}{
		{"CL.TE", "POST / HTTP/1.1\r\n" + h + "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG", []int{400}, 0},
		{"TE.CL", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n", []int{400}, 0},
		{"TE.TE obfuscated", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\nTransfer-encoding: x\r\n\r\n0\r\n\r\n", []int{400}, 0},
		{"TE identity", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: identity\r\nContent-Length: 1\r\n\r\nx", []int{400}, 0},
		{"TE gzip,chunked", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", []int{400}, 0},
		{"TE on HTTP/1.0", "POST / HTTP/1.0\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", []int{400}, 0},
		{"TE space before colon", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", []int{400}, 0},
		{"CL duplicate", "POST / HTTP/1.1\r\n" + h + "Content-Length: 1\r\nContent-Length: 1\r\n\r\nx", []int{400}, 0},
		{"CL malformed", "POST / HTTP/1.1\r\n" + h + "Content-Length: 1,2\r\n\r\nxx", []int{400}, 0},
		{"obs-fold TE", "POST / HTTP/1.1\r\n" + h + "X: y\r\n Transfer-Encoding: chunked\r\n\r\n", []int{400}, 0},
		{"bare LF", "GET / HTTP/1.1\n" + h + "\n", []int{400}, 0},
		{"bare LF in field", "GET / HTTP/1.1\r\n" + h + "X: 1\nTransfer-Encoding: chunked\r\n\r\n", []int{400}, 0},
		{"NUL in value", "GET / HTTP/1.1\r\n" + h + "X: a\x00b\r\n\r\n", []int{400}, 0},
		{"empty header name", "GET / HTTP/1.1\r\n" + h + ": x\r\n\r\n", []int{400}, 0},
		{"extra space in request line", "GET  / HTTP/1.1\r\n" + h + "\r\n", []int{400}, 0},
		{"chunk size with space", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n1 \r\nx\r\n0\r\n\r\n", []int{400}, 0},
		{"chunk ext bare LF", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n1;a\nx\r\n0\r\n\r\n", []int{400}, 0},
		{"chunk data overrun", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n1\r\nxGET /admin HTTP/1.1\r\n\r\n0\r\n\r\n", []int{400}, 0},
		{"absolute form other host", "GET https://evil.example/x HTTP/1.1\r\n" + h + "\r\n", []int{400}, 0},
		{"smuggled after a good request", "GET /1 HTTP/1.1\r\n" + h + "\r\nGET /2 HTTP/1.1\r\n" + h + "Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", []int{200, 400}, 1},

		{"chunked passes re-framed", "POST /c HTTP/1.1\r\n" + h + "Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\n\r\n", []int{200}, 1},
		{"pipelined pass", "GET /1 HTTP/1.1\r\n" + h + "\r\nGET /2 HTTP/1.1\r\n" + h + "Connection: close\r\n\r\n", []int{200, 200}, 2},
		{"absolute form same host", "GET https://localhost/abs HTTP/1.1\r\n" + h + "Connection: close\r\n\r\n", []int{200}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(be.requests())
			got := exchange(t, g.addr, cfg, tc.raw)
			if len(got) != len(tc.statuses) || strings.Trim(strings.Join(strings.Fields(itoaAll(got)), ","), ",") != itoaAll(tc.statuses) {
				t.Fatalf("answers %v, want %v; backend %q", got, tc.statuses, be.requests()[before:])
			}
			seen := be.requests()[before:]
			if len(seen) != tc.backend {
				t.Fatalf("backend saw %d requests, want %d:\n%q", len(seen), tc.backend, seen)
			}
			for _, raw := range seen {
				head, _, _ := strings.Cut(raw, "\r\n\r\n")
				lower := strings.ToLower(head)
				if !strings.Contains(strings.ToLower(tc.raw), "content-type") && strings.Contains(lower, "content-type:") {
					t.Errorf("backend received a Content-Type the client did not send:\n%q", raw)
				}
				if strings.Count(lower, "\r\nhost:") != 1 || strings.Contains(raw, "[unparsable") ||
					strings.Contains(lower, "ext=1") || strings.Contains(lower, "connection: close") ||
					strings.Count(lower, "content-length:")+strings.Count(lower, "transfer-encoding:") > 1 {
					t.Errorf("backend received a request gatehouse did not frame:\n%q", raw)
				}
			}
		})
	}
	// Every refused request has its audit record, with the reason.
	if !strings.Contains(g.auditLog(), "Content-Length with Transfer-Encoding") {
		t.Errorf("audit log lacks the framing refusal:\n%s", g.auditLog())
	}
}

func itoaAll(ns []int) string {
	var s []string
	for _, n := range ns {
		s = append(s, itoa(n))
	}
	return strings.Join(s, ",")
}
