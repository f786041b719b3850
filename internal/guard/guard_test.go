package guard

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/internal/testpki"
	"github.com/gatehouse/gatehouse/internal/validate"
)

const base = `server_tls:
  certificates: [{cert: s.pem, key: k.pem}]
client_auth:
  trusted_cas: [ca.pem]
routes:
  - name: orders
    path: /orders
    backend: http://127.0.0.1:9001
    rate_limit: { per: identity, rate: 10/s, burst: 3 }
    max_in_flight: 2
    openapi: { spec: orders.yaml }
    circuit_breaker: { failures: 2, cooldown: 1s }
  - name: public
    path: /public/
    backend: http://127.0.0.1:9001
  - name: free
    path: /free/
    backend: http://127.0.0.1:9001
    rate_limit: { per: none }
rate_limit: { per: ip, rate: 1/s, burst: 1 }
limits:
  in_flight_per_identity: 3
  max_headers: 20
`

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func parse(t *testing.T, yaml string) *config.File {
	t.Helper()
	dir := t.TempDir()
	spec, err := os.ReadFile("testdata/orders.yaml")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "orders.yaml"), spec, 0o600)
	p := filepath.Join(dir, "gatehouse.yaml")
	os.WriteFile(p, []byte(yaml), 0o600)
	f, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func client(t *testing.T, cn, ip string) *Client {
	root := testpki.NewRoot(t, "Guard CA")
	return &Client{Keys: ratelimit.KeysOf(identity.New(root.Client(t, cn).Chain)), IP: ip}
}

func TestAdmitRateLimit(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	g, err := Build(parse(t, base), Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	a, b := client(t, "a", "192.0.2.1"), client(t, "b", "192.0.2.1")
	r := g.Route("orders")
	for i := range 3 {
		tk, rf := r.Admit(a)
		if rf != nil {
			t.Fatalf("request %d refused: %s", i, rf.Reason)
		}
		if tk.Limit != "orders" || !strings.HasPrefix(tk.Key, "serial:") {
			t.Fatalf("ticket names %q/%q", tk.Limit, tk.Key)
		}
		tk.Done()
	}
	_, rf := r.Admit(a)
	if rf == nil || rf.Status != 429 {
		t.Fatalf("4th request within the burst: %+v", rf)
	}
	hdr := http.Header{}
	for _, h := range rf.Headers {
		hdr.Set(h[0], h[1])
	}
	if hdr.Get("Retry-After") != "1" || hdr.Get("RateLimit-Policy") != `"orders";q=10;w=1` || hdr.Get("RateLimit") != `"orders";r=0;t=1` {
		t.Fatalf("429 headers: %v", hdr)
	}
	if rf.Limit != "orders" || rf.Key == "" || !strings.Contains(string(rf.Body), "rate limit") {
		t.Fatalf("429 record: %+v", rf)
	}
	// Per identity: b has its own bucket behind the same IP.
	if tk, rf := r.Admit(b); rf != nil {
		t.Fatalf("b refused by a's bucket: %s", rf.Reason)
	} else {
		tk.Done()
	}
	// The top-level default applies to a route without its own, per IP.
	p := g.Route("public")
	tk, rf := p.Admit(a)
	if rf != nil || tk.Limit != "public" || tk.Key != "192.0.2.1" {
		t.Fatalf("default limit: %+v %+v", tk, rf)
	}
	tk.Done()
	if _, rf := p.Admit(b); rf == nil || rf.Status != 429 {
		t.Fatal("the default per-IP limit did not hold for a second identity on the same IP")
	}
	// per: none opts a route out.
	for range 10 {
		tk, rf := g.Route("free").Admit(a)
		if rf != nil {
			t.Fatalf("per: none route refused: %s", rf.Reason)
		}
		tk.Done()
	}
}

func TestAdmitInFlight(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	f := parse(t, strings.Replace(base, "rate: 10/s, burst: 3", "rate: 1000/s, burst: 1000", 1))
	g, err := Build(f, Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	a, b := client(t, "a", "192.0.2.1"), client(t, "b", "192.0.2.2")
	r := g.Route("orders")
	t1, rf1 := r.Admit(a)
	t2, rf2 := r.Admit(b)
	if rf1 != nil || rf2 != nil {
		t.Fatal("refused within max_in_flight")
	}
	_, rf := r.Admit(a)
	if rf == nil || rf.Status != 503 || rf.Limit != "max_in_flight" || string(rf.Body) == "" {
		t.Fatalf("third in flight on a route of 2: %+v", rf)
	}
	t1.Done()
	t3, rf := r.Admit(a)
	if rf != nil {
		t.Fatalf("refused after a release: %s", rf.Reason)
	}
	t2.Done()
	t3.Done()

	// Per identity across routes: 3 in flight.
	var held []Ticket
	for range 3 {
		tk, rf := g.Route("free").Admit(a)
		if rf != nil {
			t.Fatal(rf.Reason)
		}
		held = append(held, tk)
	}
	if _, rf := g.Route("free").Admit(a); rf == nil || rf.Status != 503 || rf.Limit != "in_flight_per_identity" {
		t.Fatalf("4th in flight for one identity: %+v", rf)
	}
	if tk, rf := g.Route("free").Admit(b); rf != nil {
		t.Fatal("another identity refused")
	} else {
		tk.Done()
	}
	for i := range held {
		held[i].Done()
	}
	if g.inFlightPerID.Len() != 0 {
		t.Fatal("in-flight slots leaked")
	}
}

// A bounded concurrent load loop on the real clock holds the rate to
// within a few percent.
func TestAdmitUnderLoad(t *testing.T) {
	f := parse(t, strings.Replace(base, "rate: 10/s, burst: 3", "rate: 500/s, burst: 100", 1))
	g, err := Build(f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := client(t, "a", "192.0.2.1")
	r := g.Route("orders")
	var passed, refused atomic.Int64
	var wg sync.WaitGroup
	const d = time.Second
	end := time.Now().Add(d)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				tk, rf := r.Admit(a)
				if rf == nil {
					passed.Add(1)
					tk.Done()
				} else if rf.Status == 429 {
					refused.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	want := 100 + 500*d.Seconds()
	t.Logf("%d passed, %d refused with 429 in %v at 500/s burst 100 (want %.0f)", passed.Load(), refused.Load(), d, want)
	// The limit must hold (never more than 2% over). Fewer can pass when a
	// loaded machine deschedules the loop for longer than the burst lasts,
	// so the lower bound is looser.
	if p := float64(passed.Load()); p > want*1.02 || p < want*0.6 || refused.Load() == 0 {
		t.Fatalf("passed %d; want %.0f (at most 2%% over)", passed.Load(), want)
	}
}

func TestValidateAndLimits(t *testing.T) {
	g, err := Build(parse(t, base), Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{"X-Tenant": {"acme"}}
	get := func(n string) []string { return h[n] }
	r := g.Route("orders")
	if rf := r.Validate(&validate.Request{Method: "GET", Path: "/orders", RawQuery: "limit=5", Header: get}); rf != nil {
		t.Fatalf("valid request refused: %s", rf.Reason)
	}
	rf := r.Validate(&validate.Request{Method: "GET", Path: "/orders", RawQuery: "limit=500", Header: get})
	if rf == nil || rf.Status != 400 || rf.ContentType != "application/problem+json" || !strings.Contains(string(rf.Body), `"field":"query.limit"`) {
		t.Fatalf("invalid query: %+v", rf)
	}
	rf = r.Validate(&validate.Request{Method: "PUT", Path: "/orders", Header: get})
	if rf == nil || rf.Status != 405 || len(rf.Headers) != 1 || rf.Headers[0] != [2]string{"Allow", "GET, POST"} {
		t.Fatalf("405: %+v", rf)
	}
	if g.Route("public").Validate(&validate.Request{Method: "PUT", Path: "/x"}) != nil {
		t.Fatal("a route without openapi validated")
	}
	if rf := g.CheckLimits("/a", 21, ""); rf == nil || rf.Status != 431 {
		t.Fatalf("header count: %+v", rf)
	}
	if rf := g.CheckLimits(strings.Repeat("/a", 5000), 1, ""); rf == nil || rf.Status != 414 {
		t.Fatalf("URL length: %+v", rf)
	}
}

func TestBreakerRefusal(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	g, err := Build(parse(t, base), Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	r := g.Route("orders")
	for range 2 {
		if ok, _ := r.Backend(); !ok {
			t.Fatal("closed breaker refused")
		}
		r.BackendDone(false)
	}
	ok, rf := r.Backend()
	if ok || rf == nil || rf.Status != 503 {
		t.Fatalf("open breaker: %v %+v", ok, rf)
	}
	if ok, _ := g.Route("public").Backend(); !ok {
		t.Fatal("a route without a breaker refused")
	}
}

// A document that does not compile is a config error at its own line.
func TestBuildErrorsLocated(t *testing.T) {
	f := parse(t, base)
	os.WriteFile(f.Resolve("orders.yaml"), []byte("openapi: 3.0.3\ninfo: {title: x, version: \"1\"}\npaths:\n  /a/{id}:\n    get:\n      responses: {\"200\": {description: ok}}\n"), 0o600)
	_, err := Build(f, Options{})
	if err == nil {
		t.Fatal("a broken document was accepted")
	}
	want := f.Path + ":11: routes[0].openapi.spec: orders.yaml: invalid OpenAPI document:"
	if !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("error %q; want one line starting %q", err, want)
	}
}

// A reload keeps the buckets and in-flight counts of the limits it keeps.
func TestReloadKeepsState(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	f := parse(t, base)
	g1, err := Build(f, Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	a := client(t, "a", "192.0.2.1")
	for range 3 {
		tk, _ := g1.Route("orders").Admit(a)
		tk.Done()
	}
	held, _ := g1.Route("orders").Admit(client(t, "b", "192.0.2.9"))
	g2, err := Build(f, Options{Now: c.Now, Prev: g1})
	if err != nil {
		t.Fatal(err)
	}
	if _, rf := g2.Route("orders").Admit(a); rf == nil || rf.Status != 429 {
		t.Fatal("a reload refilled the buckets")
	}
	if g2.Route("orders").inFlight.InFlight() != 1 {
		t.Fatal("a reload lost the in-flight count")
	}
	if g2.Handshakes() != g1.Handshakes() || g2.ConnsPerIP() != g1.ConnsPerIP() {
		t.Fatal("a reload reset the handshake budgets or the connection counts")
	}
	held.Done()
	g1.Retire(g2)
}

func TestCheckDoesNotConnect(t *testing.T) {
	f := parse(t, base+"rate_limit_store: { redis: \"redis://127.0.0.1:1/0\" }\n")
	g, err := Build(f, Options{Check: true})
	if err != nil {
		t.Fatal(err)
	}
	if g.Status() != nil {
		t.Fatal("check mode made a Redis store")
	}
	g2, err := Build(f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer g2.Retire(nil)
	tk, rf := g2.Route("public").Admit(client(t, "a", "192.0.2.1"))
	if rf != nil {
		t.Fatalf("refused with Redis down: %s", rf.Reason)
	}
	tk.Done()
	if st := g2.Status(); st == nil || st.Shared {
		t.Fatalf("status with Redis down: %+v", st)
	}
}

func BenchmarkAdmit(b *testing.B) {
	dir := b.TempDir()
	spec, _ := os.ReadFile("testdata/orders.yaml")
	os.WriteFile(filepath.Join(dir, "orders.yaml"), spec, 0o600)
	p := filepath.Join(dir, "g.yaml")
	os.WriteFile(p, []byte(strings.Replace(base, "rate: 10/s, burst: 3", "rate: 1000000000/s, burst: 1000000", 1)), 0o600)
	f, err := config.Load(p)
	if err != nil {
		b.Fatal(err)
	}
	g, err := Build(f, Options{})
	if err != nil {
		b.Fatal(err)
	}
	root := testpki.NewRoot(b, "Bench CA")
	c := &Client{Keys: ratelimit.KeysOf(identity.New(root.Client(b, "bench").Chain)), IP: "127.0.0.1"}
	r := g.Route("orders")
	b.ReportAllocs()
	for b.Loop() {
		tk, rf := r.Admit(c)
		if rf != nil {
			b.Fatal(rf.Reason)
		}
		tk.Done()
	}
}
