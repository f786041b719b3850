package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/gatehouse/gatehouse/internal/testpki"
)

func TestErrorsAreShortJSON(t *testing.T) {
	p := newPKI(t)
	be := newBackend(t)
	// A backend that is down: a listener we close at once.
	dead := newBackend(t)
	dead.Close()
	slow := newSlowBackend(t)
	yaml := baseConfig(p, be.URL, `  - name: dead
    path: /dead/
    backend: `+dead.URL+`
  - name: slow
    path: /slow/
    backend: `+slow+`
  - name: limited
    path: /limited/
    backend: `+be.URL+`
    methods: [GET]
    max_body: 16B
    host: localhost
timeouts: { backend_response: 300ms }
`)
	yaml = strings.Replace(yaml, "  - name: all\n    path: /\n", "  - name: all\n    path: /api/\n", 1)
	g := startGateway(t, p.dir, yaml)
	forEachEngine(t, func(t *testing.T, e engine) {
		c := g.client(p.clientTLS(p.client, "localhost"), e.h2)
		for _, tc := range []struct {
			method, path, body string
			status             int
			msg                string
			reason             string
		}{
			{"GET", "/nothing-here", "", 404, "no route", `no route for host \"localhost\" path \"/nothing-here\"`},
			{"GET", "/dead/x", "", 502, "backend unavailable", "backend error"},
			{"GET", "/slow/x", "", 504, "backend timeout", "backend timeout"},
			{"POST", "/limited/x", "", 405, "method not allowed", `method \"POST\" not in the route's methods`},
			{"GET", "/limited/x", strings.Repeat("x", 17), 413, "request body too large", "exceeds max_body"},
			{"GET", "/public/%2e%2e/admin", "", 400, "bad request path", "path"},
		} {
			req, _ := http.NewRequest(tc.method, "https://localhost/", strings.NewReader(tc.body))
			req.URL.Opaque = "//localhost" + tc.path
			req.Host = "localhost"
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", tc.method, tc.path, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			want := `{"error":"` + tc.msg + `","status":` + itoa(tc.status) + "}\n"
			if resp.StatusCode != tc.status || string(body) != want || resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("%s %s: %d %q, want %d %q", tc.method, tc.path, resp.StatusCode, body, tc.status, want)
			}
			if resp.Header.Get("Strict-Transport-Security") == "" {
				t.Errorf("%s: no HSTS on an error response", tc.path)
			}
			if !strings.Contains(g.auditLog(), tc.reason) {
				t.Errorf("%s: audit log lacks %q", tc.path, tc.reason)
			}
		}
		// A chunked body over the limit, without Content-Length, is cut off too.
		pr, pw := io.Pipe()
		go func() { pw.Write([]byte(strings.Repeat("y", 64))); pw.Close() }()
		req, _ := http.NewRequest("GET", "https://localhost/limited/chunked", pr)
		req.Host = "localhost"
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 413 {
			t.Errorf("chunked body over max_body: status %d, want 413", resp.StatusCode)
		}
	})
}

func itoa(n int) string { return strconv.Itoa(n) }

// newSlowBackend answers only when the client gives up.
func newSlowBackend(t *testing.T) string {
	t.Helper()
	b := newBackend(t)
	b.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(20 * time.Second):
		}
	})
	return b.URL
}

// A streamed response reaches the client chunk by chunk, before the
// backend has finished.
func TestStreamingFlush(t *testing.T) {
	p := newPKI(t)
	be := newBackend(t)
	release := make(chan struct{})
	be.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-time.After(20 * time.Second):
		}
		io.WriteString(w, "second\n")
	})
	g := startGateway(t, p.dir, baseConfig(p, be.URL, ""))
	for _, h2 := range []bool{false, true} {
		resp, err := g.client(p.clientTLS(p.client, "localhost"), h2).Get("https://localhost/stream")
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(resp.Body)
		line, err := br.ReadString('\n') // blocks forever if the gateway buffers
		if err != nil || line != "first\n" {
			t.Fatalf("h2=%v: first chunk %q, %v", h2, line, err)
		}
		release <- struct{}{}
		rest, _ := io.ReadAll(br)
		resp.Body.Close()
		if string(rest) != "second\n" {
			t.Errorf("h2=%v: rest %q", h2, rest)
		}
	}
}

func TestWebSocket(t *testing.T) {
	p := newPKI(t)
	be := newBackend(t)
	be.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		for {
			typ, msg, err := c.Read(ctx)
			if err != nil {
				return
			}
			c.Write(ctx, typ, append([]byte("echo: "), msg...))
		}
	})
	g := startGateway(t, p.dir, baseConfig(p, be.URL, ""))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "wss://localhost/ws", &websocket.DialOptions{
		HTTPClient: g.client(p.clientTLS(p.client, "localhost"), false),
		Host:       "localhost",
	})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.CloseNow()
	for _, msg := range []string{"hello", "again"} {
		if err := conn.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, got, err := conn.Read(ctx)
		if err != nil || string(got) != "echo: "+msg {
			t.Fatalf("read %q, %v", got, err)
		}
	}
	conn.Close(websocket.StatusNormalClosure, "")
	// The tunnel is audited when it ends: a 101 with its bytes both ways.
	deadline := time.Now().Add(5 * time.Second)
	for !regexp.MustCompile(`"status":101,"bytes_in":[1-9][0-9]*,"bytes_out":[1-9]`).MatchString(g.auditLog()) {
		if time.Now().After(deadline) {
			t.Fatalf("no audit record for the tunnel:\n%s", g.auditLog())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// SIGTERM (a cancelled Serve context) lets an in-flight request finish.
func TestGracefulShutdown(t *testing.T) {
	forEachEngine(t, testGracefulShutdown)
}

func testGracefulShutdown(t *testing.T, e engine) {
	p := newPKI(t)
	be := newBackend(t)
	started := make(chan struct{})
	finish := make(chan struct{})
	be.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-finish
		io.WriteString(w, "done")
	})
	g := startGateway(t, p.dir, baseConfig(p, be.URL, ""))
	c := g.client(p.clientTLS(p.client, "localhost"), e.h2)
	type result struct {
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := c.Get("https://localhost/slow")
		if err != nil {
			res <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- result{string(b), err}
	}()
	<-started
	stopped := make(chan error, 1)
	go func() { stopped <- g.stop() }()
	// The gateway stops accepting while it drains.
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", g.addr, time.Second)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("gateway still accepting 10s after shutdown began")
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(finish)
	r := <-res
	if r.err != nil || r.body != "done" {
		t.Fatalf("in-flight request: %q, %v", r.body, r.err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

// HTTPS backends are verified: against upstream_tls.ca when given, else
// the system roots (which do not know a private CA, so the request fails
// with 502 rather than going to an unverified backend). The gateway can
// present its own client certificate to the backend.
func TestHTTPSBackend(t *testing.T) {
	p := newPKI(t)
	be := newBackend(t)
	be.Close()
	backendCert := p.inter.Server(t, "backend.internal")
	gwCert := p.inter.Client(t, "gatehouse-gateway")
	gwCert.Write(t, p.dir, "gw")
	be.Server = httptest.NewUnstartedServer(be.Config.Handler)
	be.TLS = &tls.Config{
		Certificates: []tls.Certificate{backendCert.TLSCertificate()},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    testpki.Pool(p.root),
	}
	be.StartTLS()
	yaml := baseConfig(p, be.URL, `  - name: verified
    path: /verified/
    backend: `+be.URL+`
    upstream_tls: { ca: ca.pem, cert: gw.pem, key: gw-key.pem, server_name: backend.internal }
  - name: system-roots
    path: /system/
    backend: `+be.URL+`
`)
	g := startGateway(t, p.dir, yaml)
	forEachEngine(t, func(t *testing.T, e engine) {
		c := g.client(p.clientTLS(p.client, "localhost"), e.h2)
		if status, body, _ := get(t, c, "localhost", "/verified/x"); status != 200 {
			t.Fatalf("verified https backend: %d %s\n%s", status, body, g.auditLog())
		}
		if status, _, _ := get(t, c, "localhost", "/system/x"); status != 502 {
			t.Fatalf("backend with a private CA, verified against system roots: %d, want 502", status)
		}
		if !strings.Contains(g.auditLog(), "certificate signed by unknown authority") {
			t.Errorf("audit log does not say why the backend failed:\n%s", g.auditLog())
		}
	})
}

// Request headers beyond limits.max_header_bytes are refused before any
// routing (431), and the backend never sees them.
func TestHeaderSizeLimit(t *testing.T) {
	p := newPKI(t)
	be := newBackend(t)
	g := startGateway(t, p.dir, baseConfig(p, be.URL, "limits: { max_header_bytes: 4KiB }\n"))
	big := strings.Repeat("a", 16<<10)
	forEachEngine(t, func(t *testing.T, e engine) {
		status, _ := send(t, e, g.addr, p.clientTLS(p.client, "localhost"), "GET", "localhost", "/x", [][2]string{{"X-Big", big}}, "")
		if status != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("status %d, want 431", status)
		}
		if len(be.requests()) != 0 {
			t.Fatal("the backend saw an oversized request")
		}
	})
}
