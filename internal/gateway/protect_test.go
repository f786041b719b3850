package gateway

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testpki"
	"github.com/gatehouse/gatehouse/internal/testredis"
)

// do sends one request through c and returns the response (body read).
func do(t *testing.T, c *http.Client, method, target string, hdr map[string]string, body string) (*http.Response, string) {
	t.Helper()
	var rb io.Reader
	if body != "" {
		rb = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "https://localhost"+target, rb)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// A bounded concurrent load loop through the real gateway, on each engine:
// the rate limit holds to within a few percent, 429s carry Retry-After and
// the RateLimit headers, and the audit record names the limit and key.
func TestRateLimitThroughGateway(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		p := newPKI(t)
		be := newBackend(t)
		g := startGateway(t, p.dir, baseConfig(p, be.URL, "    rate_limit: { per: identity, rate: 100/s, burst: 20 }\n"))
		c := g.client(p.clientTLS(p.client, "localhost"), e.h2)
		defer c.CloseIdleConnections()
		var ok, limited atomic.Int64
		var firstAnswer atomic.Int64 // unix ns of the first answer: when the bucket began to drain
		var sample atomic.Pointer[http.Header]
		var wg sync.WaitGroup
		const d = time.Second
		start := time.Now()
		end := start.Add(d)
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(end) {
					req, _ := http.NewRequest("GET", "https://localhost/x", nil)
					resp, err := c.Do(req)
					if err != nil {
						t.Error(err)
						return
					}
					firstAnswer.CompareAndSwap(0, time.Now().UnixNano())
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					switch resp.StatusCode {
					case 200:
						ok.Add(1)
					case 429:
						limited.Add(1)
						h := resp.Header.Clone()
						sample.Store(&h)
					default:
						t.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			}()
		}
		wg.Wait()
		// The upper bound is the limit's promise, over the whole run; the
		// lower bound counts only from the first answer, since the
		// handshakes before it take a while on a loaded machine.
		max := (20 + 100*time.Since(start).Seconds()) * 1.03
		min := 0.6 * (20 + 100*time.Since(time.Unix(0, firstAnswer.Load())).Seconds())
		t.Logf("%s: %d passed, %d got 429 at 100/s burst 20 (allowed %.0f to %.0f)", e.name, ok.Load(), limited.Load(), min, max)
		if f := float64(ok.Load()); f > max || f < min || limited.Load() == 0 {
			t.Fatalf("%d passed; want %.0f to %.0f", ok.Load(), min, max)
		}
		if n := len(be.requests()); int64(n) != ok.Load() {
			t.Fatalf("backend saw %d requests; %d were allowed", n, ok.Load())
		}
		h := *sample.Load()
		if h.Get("Retry-After") != "1" || h.Get("RateLimit-Policy") != `"all";q=100;w=1` ||
			!strings.HasPrefix(h.Get("RateLimit"), `"all";r=0;t=`) || h.Get("Strict-Transport-Security") == "" {
			t.Fatalf("429 headers: %v", h)
		}
		log := g.auditLog()
		if !strings.Contains(log, `"limit":"all"`) || !strings.Contains(log, `"limit_key":"spiffe:spiffe://example.com/billing/api"`) ||
			!strings.Contains(log, `"status":429`) {
			t.Fatalf("audit records lack the limit and key:\n%.2000s", log)
		}
	})
}

func openAPIConfig(t *testing.T, p *pkiSet, backendURL, extra string) string {
	spec, err := os.ReadFile("testdata/orders-api.yaml")
	if err != nil {
		t.Fatal(err)
	}
	testpki.WriteFile(t, filepath.Join(p.dir, "orders-api.yaml"), spec)
	return baseConfig(p, backendURL, "    openapi: { spec: orders-api.yaml }\n"+extra)
}

// OpenAPI validation through the real gateway, on each engine: violations
// are refused with problem+json naming the field and never reach the
// backend; a valid body reaches it whole.
func TestOpenAPIThroughGateway(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		p := newPKI(t)
		be := newBackend(t)
		g := startGateway(t, p.dir, openAPIConfig(t, p, be.URL, ""))
		c := g.client(p.clientTLS(p.client, "localhost"), e.h2)
		defer c.CloseIdleConnections()
		tenant := map[string]string{"X-Tenant": "acme"}
		js := map[string]string{"X-Tenant": "acme", "Content-Type": "application/json"}
		good := `{"customer":{"id":"c-42"},"items":[{"sku":"AB-1","qty":2}]}`
		for _, tc := range []struct {
			name, method, target string
			hdr                  map[string]string
			body                 string
			status               int
			field                string
		}{
			{"valid get", "GET", "/orders?limit=5", tenant, "", 200, ""},
			{"valid post", "POST", "/orders", js, good, 200, ""},
			{"unknown path", "GET", "/customers", tenant, "", 404, "path"},
			{"wrong method", "PUT", "/orders", tenant, "", 405, "method"},
			{"bad query", "GET", "/orders?limit=SECRETVALUE", tenant, "", 400, "query.limit"},
			{"missing header", "GET", "/orders", nil, "", 400, "header.X-Tenant"},
			{"bad path param", "GET", "/orders/0", nil, "", 400, "path.id"},
			{"bad nested body", "POST", "/orders", js, `{"customer":{"id":"c-42"},"items":[{"sku":"SECRETVALUE lower","qty":2}]}`, 400, "body/items/0/sku"},
			{"large bad body", "POST", "/orders", js, `{"customer":{"id":"c-42"},"note":"` + strings.Repeat("x", 100<<10) + `","items":[{"sku":"A","qty":0}]}`, 400, "body/items/0/qty"},
		} {
			before := len(be.requests())
			resp, body := do(t, c, tc.method, tc.target, tc.hdr, tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("%s: status %d (%s); want %d", tc.name, resp.StatusCode, body, tc.status)
			}
			if tc.status == 200 {
				if len(be.requests()) != before+1 {
					t.Fatalf("%s: the backend did not see the request", tc.name)
				}
				continue
			}
			if len(be.requests()) != before {
				t.Fatalf("%s: a refused request reached the backend", tc.name)
			}
			var pb map[string]any
			if resp.Header.Get("Content-Type") != "application/problem+json" || json.Unmarshal([]byte(body), &pb) != nil ||
				pb["field"] != tc.field || pb["status"] != float64(tc.status) {
				t.Fatalf("%s: not a problem naming %s: %s %s", tc.name, tc.field, resp.Header.Get("Content-Type"), body)
			}
			if strings.Contains(body, "SECRETVALUE") {
				t.Fatalf("%s: the problem echoes the value: %s", tc.name, body)
			}
			if tc.status == 405 && resp.Header.Get("Allow") != "GET, POST" {
				t.Fatalf("405 Allow = %q", resp.Header.Get("Allow"))
			}
		}
	})
}

// Limits without a document: header count and URL length.
func TestRequestLimitsThroughGateway(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		p := newPKI(t)
		be := newBackend(t)
		g := startGateway(t, p.dir, baseConfig(p, be.URL, "limits: { max_headers: 20, max_url_length: 1KiB, max_query_params: 3 }\n"))
		c := g.client(p.clientTLS(p.client, "localhost"), e.h2)
		defer c.CloseIdleConnections()
		many := map[string]string{}
		for i := range 25 {
			many["X-H"+itoa(i)] = "v"
		}
		if resp, _ := do(t, c, "GET", "/a", many, ""); resp.StatusCode != 431 {
			t.Fatalf("25 headers: %d", resp.StatusCode)
		}
		if resp, _ := do(t, c, "GET", "/"+strings.Repeat("a", 2000), nil, ""); resp.StatusCode != 414 {
			t.Fatalf("long URL: %d", resp.StatusCode)
		}
		if resp, _ := do(t, c, "GET", "/a?a=1&b=2&c=3&d=4", nil, ""); resp.StatusCode != 400 {
			t.Fatalf("4 query parameters: %d", resp.StatusCode)
		}
		if resp, _ := do(t, c, "GET", "/a?a=1", nil, ""); resp.StatusCode != 200 {
			t.Fatalf("within limits: %d", resp.StatusCode)
		}
	})
}

// A flood of handshakes with junk certificates from one IP is cut to its
// failure budget (further ones are refused at the ClientHello, before any
// certificate work), while another IP still connects.
func TestHandshakeFloodThroughGateway(t *testing.T) {
	p := newPKI(t)
	be := newBackend(t)
	g := startGateway(t, p.dir, baseConfig(p, be.URL, "limits: { failed_handshakes_per_ip: { rate: 1/m, burst: 5 } }\n"))
	junk := p.foreign.Client(t, "attacker")
	dial := func(from string, leaf *testpki.Leaf) error {
		d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		cfg := p.clientTLS(leaf, "localhost")
		cfg.NextProtos = []string{"http/1.1"}
		conn, err := tls.DialWithDialer(d, "tcp", g.addr, cfg)
		if err != nil {
			return err
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(conn, "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
		b, err := io.ReadAll(conn)
		if err != nil && len(b) == 0 {
			return err
		}
		if !strings.HasPrefix(string(b), "HTTP/1.1 200") {
			return io.ErrUnexpectedEOF
		}
		return nil
	}
	for range 30 {
		if dial("127.0.0.1", junk) == nil {
			t.Fatal("a junk certificate got through")
		}
	}
	// Failed handshakes are charged after they end; let the last ones land.
	time.Sleep(100 * time.Millisecond)
	verified := strings.Count(g.auditLog(), `"event":"handshake_refused"`)
	t.Logf("of 30 junk handshakes, %d reached certificate verification", verified)
	if verified < 5 || verified > 8 {
		t.Fatalf("%d junk handshakes reached certificate verification; want the burst, 5 (a few more at most)", verified)
	}
	if err := dial("127.0.0.1", p.client); err == nil {
		t.Fatal("the flooding IP got through while over its budget")
	}
	if err := dial("127.0.0.2", p.client); err != nil {
		t.Fatalf("another IP could not connect during the flood: %v", err)
	}
}

// Open connections per client IP: the excess is closed at accept.
func TestConnectionsPerIPThroughGateway(t *testing.T) {
	p := newPKI(t)
	be := newBackend(t)
	g := startGateway(t, p.dir, baseConfig(p, be.URL, "limits: { connections_per_ip: 2 }\n"))
	var held []net.Conn
	for range 2 {
		c, err := tls.Dial("tcp", g.addr, p.clientTLS(p.client, "localhost"))
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	if c, err := tls.Dial("tcp", g.addr, p.clientTLS(p.client, "localhost")); err == nil {
		c.Close()
		t.Fatal("a third connection from one IP was served")
	}
	held[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := tls.Dial("tcp", g.addr, p.clientTLS(p.client, "localhost"))
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a freed connection slot was not reused")
		}
		time.Sleep(20 * time.Millisecond)
	}
	held[1].Close()
}

// In flight per route: a request beyond max_in_flight gets 503 at once.
func TestInFlightThroughGateway(t *testing.T) {
	p := newPKI(t)
	release := make(chan struct{})
	entered := make(chan struct{}, 4)
	slow := newHoldingBackend(t, entered, release)
	g := startGateway(t, p.dir, baseConfig(p, slow, "    max_in_flight: 1\n"))
	c := g.client(p.clientTLS(p.client, "localhost"), false)
	defer c.CloseIdleConnections()
	done := make(chan int)
	go func() {
		req, _ := http.NewRequest("GET", "https://localhost/slow", nil)
		resp, err := c.Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	<-entered
	start := time.Now()
	resp, body := do(t, g.client(p.clientTLS(p.client, "localhost"), false), "GET", "/second", nil, "")
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" || !strings.Contains(body, "in flight") || time.Since(start) > 2*time.Second {
		t.Fatalf("second request: %d %q after %v", resp.StatusCode, body, time.Since(start))
	}
	close(release)
	if st := <-done; st != 200 {
		t.Fatalf("first request: %d", st)
	}
	if resp, _ := do(t, c, "GET", "/third", nil, ""); resp.StatusCode != 200 {
		t.Fatalf("after the first finished: %d", resp.StatusCode)
	}
}

func newHoldingBackend(t *testing.T, entered chan<- struct{}, release <-chan struct{}) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			entered <- struct{}{}
			<-release
		}
		io.WriteString(w, "ok")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// A backend that keeps failing opens the circuit: 503 at once, and the
// backend is no longer tried.
func TestCircuitBreakerThroughGateway(t *testing.T) {
	p := newPKI(t)
	var hits atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(503)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	g := startGateway(t, p.dir, baseConfig(p, "http://"+ln.Addr().String(), "    circuit_breaker: { failures: 3, cooldown: 1m }\n"))
	c := g.client(p.clientTLS(p.client, "localhost"), false)
	defer c.CloseIdleConnections()
	for range 3 {
		if resp, _ := do(t, c, "GET", "/a", nil, ""); resp.StatusCode != 503 {
			t.Fatalf("backend's own 503 not relayed: %d", resp.StatusCode)
		}
	}
	resp, body := do(t, c, "GET", "/a", nil, "")
	if resp.StatusCode != 503 || !strings.Contains(body, "backend unavailable") || hits.Load() != 3 {
		t.Fatalf("open circuit: %d %q, backend hit %d times; want 503 from the gateway after 3 hits", resp.StatusCode, body, hits.Load())
	}
}

// config check compiles the OpenAPI document: a broken one is one located
// error at the route's openapi.spec line.
func TestCheckReportsBrokenSpec(t *testing.T) {
	p := newPKI(t)
	testpki.WriteFile(t, filepath.Join(p.dir, "orders-api.yaml"), []byte("openapi: 3.0.3\ninfo: {title: x, version: \"1\"}\npaths:\n  /a/{id}:\n    get:\n      responses: {\"200\": {description: ok}}\n"))
	path := filepath.Join(p.dir, "gatehouse.yaml")
	testpki.WriteFile(t, path, []byte(baseConfig(p, "http://127.0.0.1:9", "    openapi: { spec: orders-api.yaml }\n")))
	err := Check(mustLoad(t, path))
	want := path + ":13: routes[0].openapi.spec: orders-api.yaml: invalid OpenAPI document: "
	if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("got %v; want one line starting %q", err, want)
	}
}

// With Redis unreachable the gateway keeps limiting locally and /readyz
// says so (it stays ready).
func TestReadyzShowsRateLimitStore(t *testing.T) {
	p := newPKI(t)
	be := newBackend(t)
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := dead.Addr().String()
	dead.Close()
	g := startGateway(t, p.dir, baseConfig(p, be.URL, "    rate_limit: { per: identity, rate: 2/m, burst: 2 }\nrate_limit_store: { redis: \"redis://"+addr+"/0\" }\n"))
	c := g.client(p.clientTLS(p.client, "localhost"), false)
	defer c.CloseIdleConnections()
	var codes []int
	for range 3 {
		resp, _ := do(t, c, "GET", "/", nil, "")
		codes = append(codes, resp.StatusCode)
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != 429 {
		t.Fatalf("with Redis down: %v; want the local limit (200, 200, 429)", codes)
	}
	rec := httptest.NewRecorder()
	g.srv.AdminHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if body := rec.Body.String(); rec.Code != 200 || !strings.Contains(body, "rate_limit_store: local fallback since ") || !strings.Contains(body, "connection refused") {
		t.Fatalf("/readyz: %d %q", rec.Code, body)
	}
	if st := g.srv.LimitsStatus(); st.Store == nil || st.Store.Shared || st.Store.Outages != 1 || st.Store.LocalChecks < 3 {
		t.Fatalf("status: %+v", st.Store)
	}
}

// Two gateways sharing a real redis-server enforce one combined limit;
// with Redis killed mid-test requests keep flowing under each gateway's
// local limit; with Redis back they share again.
func TestSharedLimitTwoGateways(t *testing.T) {
	rs, err := testredis.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	p := newPKI(t)
	be := newBackend(t)
	// A generous timeout: this measures sharing, not a loaded machine's
	// latency (a slower check would rightly be decided locally).
	cfg := baseConfig(p, be.URL, "    rate_limit: { per: identity, rate: 100/s, burst: 10 }\n"+
		"rate_limit_store: { redis: \""+rs.URL()+"\", timeout: 2s, retry: 100ms }\n")
	dir2 := t.TempDir()
	for _, f := range []string{"ca.pem", "server.pem", "server-key.pem"} {
		b, err := os.ReadFile(filepath.Join(p.dir, f))
		if err != nil {
			t.Fatal(err)
		}
		testpki.WriteFile(t, filepath.Join(dir2, f), b)
	}
	gws := []*gw{startGateway(t, p.dir, cfg), startGateway(t, dir2, cfg)}
	load := func(d time.Duration) (ok, limited int64) {
		var okN, limN atomic.Int64
		var wg sync.WaitGroup
		end := time.Now().Add(d)
		for _, g := range gws {
			c := g.client(p.clientTLS(p.client, "localhost"), false)
			defer c.CloseIdleConnections()
			for range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for time.Now().Before(end) {
						req, _ := http.NewRequest("GET", "https://localhost/", nil)
						resp, err := c.Do(req)
						if err != nil {
							t.Error(err)
							return
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						switch resp.StatusCode {
						case 200:
							okN.Add(1)
						case 429:
							limN.Add(1)
						}
					}
				}()
			}
		}
		wg.Wait()
		return okN.Load(), limN.Load()
	}
	ok, limited := load(time.Second)
	t.Logf("shared: %d passed, %d limited in 1s across two gateways at 100/s burst 10 (want 110)", ok, limited)
	if ok > 114 || ok < 66 || limited == 0 {
		t.Fatalf("two gateways passed %d; want one combined limit, 110", ok)
	}

	rs.Kill()
	ok, _ = load(time.Second)
	st0, st1 := gws[0].srv.LimitsStatus().Store, gws[1].srv.LimitsStatus().Store
	t.Logf("Redis down: %d passed in 1s (local limits); status %+v", ok, st0)
	if st0.Shared || st1.Shared || ok < 66 {
		t.Fatalf("Redis down: %d passed, shared %v/%v; want requests flowing under local limits", ok, st0.Shared, st1.Shared)
	}
	// Each gateway alone: at most its own burst + rate.
	if ok > 2*110+10 {
		t.Fatalf("Redis down: %d passed; want at most each gateway's own limit", ok)
	}

	if err := rs.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !gws[0].srv.LimitsStatus().Store.Shared || !gws[1].srv.LimitsStatus().Store.Shared {
		if time.Now().After(deadline) {
			t.Fatal("the gateways did not share again within 5s of Redis returning")
		}
		load(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // let the buckets refill
	ok, _ = load(time.Second)
	t.Logf("shared again: %d passed in 1s", ok)
	if ok > 114 || ok < 66 {
		t.Fatalf("after Redis returned: %d passed; want one combined limit, 110", ok)
	}
}
