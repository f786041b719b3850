package gateway

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Expect: 100-continue runs every decision before the client is asked for
// its body: a refused request never gets 100 Continue, an admitted one
// does, and the backend never sees the expectation. Identity headers sent
// as chunked trailers never reach the backend either.
func TestExpectContinueAndTrailers(t *testing.T) {
	p := newPKI(t)
	be := newRawBackend(t)
	g := startGateway(t, p.dir, identityConfig(p, be.url(), "[xfcc]"))
	dial := func(leaf bool) (*tls.Conn, *bufio.Reader) {
		cfg := p.clientTLS(nil, "localhost")
		if leaf {
			cfg = p.clientTLS(p.client, "localhost")
		}
		cfg.NextProtos = []string{"http/1.1"}
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", g.addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		return c, bufio.NewReader(c)
	}
	// Refused: no certificate for /billing/; the answer is 403, not 100.
	c, br := dial(false)
	io.WriteString(c, "POST /billing/x HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	line, _ := br.ReadString('\n')
	c.Close()
	if !strings.HasPrefix(line, "HTTP/1.1 403") {
		t.Fatalf("refused request with Expect: first line %q, want 403", line)
	}
	// Admitted: 100 Continue, then the body, then the answer.
	before := len(be.requests())
	c, br = dial(true)
	defer c.Close()
	io.WriteString(c, "POST /billing/x HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	if line, _ := br.ReadString('\n'); !strings.HasPrefix(line, "HTTP/1.1 100") {
		t.Fatalf("admitted request with Expect: first line %q, want 100 Continue", line)
	}
	br.ReadString('\n') // the blank line after 100
	io.WriteString(c, "hello")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after the body: %v %v", resp, err)
	}
	resp.Body.Close()
	// Chunked, with identity headers forged in the trailer section.
	io.WriteString(c, "POST /billing/y HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nTrailer: X-Forwarded-Client-Cert\r\n\r\n"+
		"5\r\nhello\r\n0\r\nX-Forwarded-Client-Cert: Hash=forged;URI=spiffe://example.com/admin/root\r\nX_Client_Verify: SUCCESS\r\n\r\n")
	// fasthttp refuses some trailer names outright (400); otherwise the
	// trailer section must not reach the backend.
	resp, err = http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 && resp.StatusCode != 400 {
		t.Fatalf("chunked with trailers: %v %v", resp, err)
	}
	seen := be.requests()[before:]
	if want := map[int]int{200: 2, 400: 1}[resp.StatusCode]; len(seen) != want {
		t.Fatalf("backend saw %d requests, want %d", len(seen), want)
	}
	for _, raw := range seen {
		if l := strings.ToLower(raw); strings.Contains(l, "expect:") || strings.Contains(l, "forged") || strings.Contains(l, "success") || strings.Contains(l, "trailer") {
			t.Errorf("backend saw:\n%q", raw)
		}
	}
}
