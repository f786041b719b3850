package gateway

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Idle HTTP/1.1 keep-alive connections are parked: they leave fasthttp
// (buffers released) and wait for the next request in the engine's poller
// (Linux: epoll, no goroutine each) or on a small goroutine.
// These tests park a connection after every request (a linger of 1ns) and
// check that nothing changes for the client or the defences: keep-alive
// requests with and without bodies, pipelining, the framing gate's state
// across parks, the idle timeout and shutdown.

func startParked(t *testing.T, extra string) (*gw, *pkiSet, *backend) {
	t.Helper()
	p := newPKI(t)
	be := newBackend(t)
	g := startGatewayWith(t, p.dir, baseConfig(p, be.URL, extra), Options{h1Linger: time.Nanosecond})
	return g, p, be
}

func dialH1(t *testing.T, g *gw, p *pkiSet) (*tls.Conn, *bufio.Reader) {
	t.Helper()
	cfg := p.clientTLS(p.client, "localhost")
	cfg.NextProtos = []string{"http/1.1"}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", g.addr, cfg)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c, bufio.NewReader(c)
}

func readStatus(t *testing.T, br *bufio.Reader, method string) (int, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp.StatusCode, string(b)
}

func TestParkedKeepAlive(t *testing.T) {
	g, p, be := startParked(t, "")
	c, br := dialH1(t, g, p)
	reqs := []struct{ method, raw string }{
		{"GET", "GET /a HTTP/1.1\r\nHost: localhost\r\n\r\n"},
		{"POST", "POST /b HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello"},
		{"POST", "POST /c HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
		{"HEAD", "HEAD /d HTTP/1.1\r\nHost: localhost\r\n\r\n"},
	}
	for i, r := range reqs {
		// Sent in two writes with a pause: the connection parks between
		// requests and in the middle of one.
		k := len(r.raw) / 2
		io.WriteString(c, r.raw[:k])
		time.Sleep(5 * time.Millisecond)
		io.WriteString(c, r.raw[k:])
		if status, body := readStatus(t, br, r.method); status != 200 {
			t.Fatalf("request %d (%s): %d %s", i, r.method, status, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Pipelined: both answered, in order.
	io.WriteString(c, "GET /p1 HTTP/1.1\r\nHost: localhost\r\n\r\nGET /p2 HTTP/1.1\r\nHost: localhost\r\n\r\n")
	for i := 0; i < 2; i++ {
		if status, body := readStatus(t, br, "GET"); status != 200 {
			t.Fatalf("pipelined %d: %d %s", i, status, body)
		}
	}
	seen := be.requests()
	var paths []string
	for _, e := range seen {
		paths = append(paths, e.Path)
	}
	if got := strings.Join(paths, ","); got != "/a,/b,/c,/d,/p1,/p2" {
		t.Fatalf("backend saw %s", got)
	}
	if n := strings.Count(g.auditLog(), `"status":200`); n != 6 {
		t.Fatalf("%d audit records with status 200, want 6", n)
	}
}

// The gate keeps its state across parks: ambiguous framing after a
// parked wait is still refused, and never reaches the backend.
func TestParkedGate(t *testing.T) {
	g, p, be := startParked(t, "")
	c, br := dialH1(t, g, p)
	io.WriteString(c, "GET /ok HTTP/1.1\r\nHost: localhost\r\n\r\n")
	if status, _ := readStatus(t, br, "GET"); status != 200 {
		t.Fatalf("first request: %d", status)
	}
	time.Sleep(20 * time.Millisecond)
	io.WriteString(c, "POST /smuggle HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
	if status, _ := readStatus(t, br, "POST"); status != 400 {
		t.Fatalf("CL+TE after a park: %d, want 400", status)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("connection still open after a framing refusal")
	}
	for _, e := range be.requests() {
		if e.Path == "/smuggle" {
			t.Fatal("the refused request reached the backend")
		}
	}
}

// A parked connection is closed after timeouts.idle, silently.
func TestParkedIdleTimeout(t *testing.T) {
	g, p, _ := startParked(t, "timeouts: { idle: 300ms }\n")
	c, br := dialH1(t, g, p)
	io.WriteString(c, "GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n")
	if status, _ := readStatus(t, br, "GET"); status != 200 {
		t.Fatalf("request: %d", status)
	}
	start := time.Now()
	_, err := br.ReadByte()
	if err == nil {
		t.Fatal("the server sent bytes on an idle connection")
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("idle connection not closed by the server")
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 5*time.Second {
		t.Fatalf("idle connection closed after %v, want about 300ms", d)
	}
}

// Shutdown closes parked connections at once and does not wait for them.
func TestParkedShutdown(t *testing.T) {
	g, p, _ := startParked(t, "timeouts: { shutdown: 10s }\n")
	c, br := dialH1(t, g, p)
	io.WriteString(c, "GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n")
	if status, _ := readStatus(t, br, "GET"); status != 200 {
		t.Fatalf("request: %d", status)
	}
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	if err := g.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("shutdown took %v with only a parked connection", d)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("parked connection still open after shutdown")
	}
}

// On Linux a connection parked after a request holds no goroutine: 40
// idle connections add (almost) none, and each still serves its next
// request when it comes.
func TestParkedHoldNoGoroutine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the goroutine-free poller is Linux's (epoll)")
	}
	g, p, _ := startParked(t, "")
	const n = 40
	type cl struct {
		c  *tls.Conn
		br *bufio.Reader
	}
	conns := make([]cl, n)
	for i := range conns {
		c, br := dialH1(t, g, p)
		conns[i] = cl{c, br}
	}
	// The handshake goroutines have ended and the first requests parked
	// nothing yet: this is the baseline.
	request := func(i int, path string) {
		io.WriteString(conns[i].c, "GET "+path+" HTTP/1.1\r\nHost: localhost\r\n\r\n")
		if status, body := readStatus(t, conns[i].br, "GET"); status != 200 {
			t.Fatalf("connection %d %s: %d %s", i, path, status, body)
		}
	}
	for i := range conns {
		request(i, "/first")
	}
	settle := func() int {
		// Goroutines that served the requests end as their connections
		// park; wait for the count to stop falling.
		last := runtime.NumGoroutine()
		for range 50 {
			time.Sleep(20 * time.Millisecond)
			cur := runtime.NumGoroutine()
			if cur == last {
				return cur
			}
			last = cur
		}
		return last
	}
	parked := settle()
	for i := range conns {
		conns[i].c.Close()
	}
	base := settle()
	if extra := parked - base; extra > n/4 {
		t.Fatalf("%d parked connections held %d goroutines (with them %d, after closing them %d): want none each", n, extra, parked, base)
	}
	// Closed while parked: the server noticed (no goroutine was reading
	// them, the poller saw the FIN) and the rest still serve.
	conns = conns[:0]
	for range 4 {
		c, br := dialH1(t, g, p)
		conns = append(conns, cl{c, br})
	}
	for round := range 3 {
		for i := range conns {
			request(i, "/again")
		}
		if round < 2 {
			time.Sleep(20 * time.Millisecond) // parked between rounds
		}
	}
}
