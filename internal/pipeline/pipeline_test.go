package pipeline_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testpki"
	"github.com/gatehouse/gatehouse/internal/tlsconf"
)

// req is a Request with fixed values.
type req struct {
	method, authority, target, proto string
	cl                               int64
	hdr                              [][2]string
}

func (r *req) Method() string       { return r.method }
func (r *req) Authority() string    { return r.authority }
func (r *req) Target() string       { return r.target }
func (r *req) Proto() string        { return r.proto }
func (r *req) ContentLength() int64 { return r.cl }
func (r *req) VisitHeaders(v pipeline.HeaderVisitor) {
	for _, h := range r.hdr {
		if !v.VisitHeader(h[0], h[1]) {
			return
		}
	}
}

func get(target string, hdr ...[2]string) *req {
	return &req{method: "GET", authority: "api.example.com", target: target, proto: "HTTP/1.1", hdr: hdr}
}

type fixture struct {
	p      *pipeline.Pipeline
	pol    *pipeline.Policy
	client *identity.Identity
	other  *identity.Identity
	audit  *bytes.Buffer
	a      *telemetry.Audit
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	root := testpki.NewRoot(t, "Root")
	inter := root.Intermediate(t, "Issuing")
	client := inter.Leaf(t, testpki.LeafOptions{CN: "client-a", URIs: []string{"spiffe://example.com/billing/api"}})
	other := inter.Leaf(t, testpki.LeafOptions{CN: "other", URIs: []string{"spiffe://example.com/other"}})
	billing, err := authz.Compile([]authz.Rule{{SPIFFEID: "spiffe://example.com/billing/*"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	open, _ := authz.Compile(nil, nil)
	pol := pipeline.NewPolicy(&pipeline.Policy{
		Routes: []*pipeline.Route{
			{Name: "public", Path: "/", MaxBody: 1 << 20, Authz: open},
			{Name: "billing", Host: "api.example.com", Path: "/billing/", Requires: true, Authz: billing,
				Methods: map[string]bool{"GET": true, "POST": true}, Allow: "GET, POST", MaxBody: 16,
				Upgrades: map[string]bool{"websocket": true}},
		},
		CertNames: [][]string{{"api.example.com"}, {"secure.example.com"}},
		HSTS:      "max-age=63072000",
		XFCC:      true,
		Verifier:  &tlsconf.Verifier{Roots: testpki.Pool(root)},
	})
	f := &fixture{pol: pol, client: identity.New(client.Chain), other: identity.New(other.Chain), audit: &bytes.Buffer{}}
	f.a, err = telemetry.OpenAudit("stdout", f.audit, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	f.p = &pipeline.Pipeline{Policy: func() *pipeline.Policy { return f.pol }, Audit: f.a}
	return f
}

func (f *fixture) conn(sni string, id *identity.Identity) *pipeline.Conn {
	c := &pipeline.Conn{SNI: sni, Remote: "192.0.2.7:4711", RemoteIP: "192.0.2.7"}
	if id != nil {
		c.Peer = id.Chain
	}
	c.SetVerified(pipeline.NewVerification(f.pol, id))
	return c
}

func (f *fixture) records(t *testing.T) []map[string]any {
	t.Helper()
	f.a.Reopen() // flush
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(f.audit.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestDecide(t *testing.T) {
	f := newFixture(t)
	post := func(target string, cl int64) *req {
		r := get(target)
		r.method, r.cl = "POST", cl
		return r
	}
	for _, tc := range []struct {
		name   string
		sni    string
		id     *identity.Identity
		r      *req
		status int    // 0: allowed
		reason string // in the refusal's reason
		route  string
	}{
		{"public", "api.example.com", nil, get("/x"), 0, "", "public"},
		{"billing", "api.example.com", f.client, get("/billing/a?q=1"), 0, "", "billing"},
		{"no certificate", "api.example.com", nil, get("/billing/a"), 403, "requires a client certificate", "billing"},
		{"no allow rule", "api.example.com", f.other, get("/billing/a"), 403, "spiffe_id", "billing"},
		{"method", "api.example.com", f.client, &req{method: "DELETE", authority: "api.example.com", target: "/billing/a", proto: "HTTP/1.1"}, 405, "DELETE", "billing"},
		{"declared body", "api.example.com", f.client, post("/billing/a", 17), 413, "exceeds max_body", "billing"},
		{"SNI differs", "secure.example.com", f.client, get("/x"), 421, "differs from TLS SNI", ""},
		{"no SNI, other vhost", "", f.client, &req{method: "GET", authority: "secure.example.com", target: "/x", proto: "HTTP/1.1"}, 421, "no SNI sent", ""},
		{"no SNI, default vhost", "", nil, &req{method: "GET", authority: "api.example.com", target: "/x", proto: "HTTP/1.1"}, 0, "", "public"},
		{"encoded dot", "api.example.com", nil, get("/x/%2e%2e/billing/a"), 400, "encoded", ""},
		{"dot segments", "api.example.com", nil, get("/x/../billing/a"), 403, "requires", "billing"},
		{"second host in authority", "api.example.com", nil, &req{method: "GET", authority: "api.example.com:443,b.example", target: "/", proto: "HTTP/1.1"}, 400, "authority", ""},
		{"empty port", "api.example.com", nil, &req{method: "GET", authority: "api.example.com:", target: "/", proto: "HTTP/1.1"}, 400, "authority", ""},
		{"no host", "api.example.com", nil, &req{method: "GET", target: "/", proto: "HTTP/1.1"}, 400, "no Host", ""},
		{"absolute form agrees", "api.example.com", nil, get("https://api.example.com/x"), 0, "", "public"},
		{"absolute form disagrees", "api.example.com", nil, get("https://evil.example/billing/a"), 400, "differs from Host", ""},
		{"OPTIONS *", "api.example.com", nil, &req{method: "OPTIONS", authority: "api.example.com", target: "*", proto: "HTTP/1.1"}, 400, "OPTIONS *", ""},
		{"fragment", "api.example.com", nil, get("/x?a#b"), 400, "\"#\"", ""},
		{"no route for host", "", nil, &req{method: "GET", authority: "unknown.example", target: "/billing/a", proto: "HTTP/1.1"}, 0, "", "public"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex := f.p.Begin(f.conn(tc.sni, tc.id), tc.r)
			defer ex.Release()
			rf := ex.Decide(context.Background(), tc.r)
			switch {
			case tc.status == 0 && rf != nil:
				t.Fatalf("refused %d: %s", rf.Status, rf.Reason)
			case tc.status != 0 && rf == nil:
				t.Fatalf("allowed, want %d", tc.status)
			case rf != nil && (rf.Status != tc.status || !strings.Contains(rf.Reason, tc.reason)):
				t.Fatalf("refused %d %q, want %d %q", rf.Status, rf.Reason, tc.status, tc.reason)
			}
			if got := ""; ex.Route() != nil {
				got = ex.Route().Name
				if got != tc.route {
					t.Errorf("route %q, want %q", got, tc.route)
				}
			} else if tc.route != "" {
				t.Errorf("no route, want %q", tc.route)
			}
			if rf != nil && rf.Status == 405 && !slices.Contains(rf.Headers, [2]string{"Allow", "GET, POST"}) {
				t.Errorf("405 without Allow: %v", rf.Headers)
			}
		})
	}
}

// A refusal renders as short JSON with HSTS; the reason stays out.
func TestRefusalRender(t *testing.T) {
	rf := &pipeline.Refusal{Status: 403, Public: "forbidden", Reason: "no allow rule matched: spiffe_id"}
	h := map[string]string{}
	status, body := rf.Render("max-age=1", func(k, v string) { h[k] = v })
	if status != 403 || string(body) != `{"error":"forbidden","status":403}`+"\n" ||
		h["Strict-Transport-Security"] != "max-age=1" || h["Content-Type"] != "application/json" {
		t.Fatalf("%d %s %v", status, body, h)
	}
}

type sink [][2]string

func (s *sink) AddHeader(k, v string) { *s = append(*s, [2]string{k, v}) }

// Header hygiene: every spelling of identity and forwarding headers, and
// names the client's Connection header nominates, are dropped; gatehouse's
// own values are added after and cannot be removed.
func TestWriteHeaders(t *testing.T) {
	f := newFixture(t)
	r := get("/billing/a",
		[2]string{"X-Forwarded-Client-Cert", "forged"}, [2]string{"x_forwarded_client_cert", "forged"},
		[2]string{"Client-Cert", ":Zm9yZ2Vk:"}, [2]string{"X-Client-Verify", "SUCCESS"},
		[2]string{"X_Forwarded_For", "6.6.6.6"}, [2]string{"X-Forwarded-Host", "evil"},
		[2]string{"x_forwarded_proto", "http"}, [2]string{"Forwarded", "for=6.6.6.6"},
		[2]string{"X-Real-IP", "6.6.6.6"}, [2]string{"X_Original_URL", "/admin"},
		[2]string{"Connection", "keep-alive, X-Custom, X_Forwarded_Client_Cert"}, [2]string{"X-Custom", "dropped"},
		[2]string{"Keep-Alive", "timeout=5"}, [2]string{"Transfer-Encoding", "chunked"}, [2]string{"TE", "trailers"},
		[2]string{"Upgrade", "h2c"}, [2]string{"HTTP2-Settings", "AAMAAABkAAQAoAAAAAIAAAAA"},
		[2]string{"X-Request-Id", "client-chosen"}, [2]string{"Expect", "100-continue"},
		[2]string{"Accept", "application/json"}, [2]string{"Authorization", "Bearer t"},
	)
	ex := f.p.Begin(f.conn("api.example.com", f.client), r)
	defer ex.Release()
	if rf := ex.Decide(context.Background(), r); rf != nil {
		t.Fatalf("refused: %v", rf.Reason)
	}
	if ex.Upgrade() != "" {
		t.Fatalf("h2c upgrade passed: %q", ex.Upgrade())
	}
	var got sink
	ex.WriteHeaders(r, &got)
	want := sink{
		{"Accept", "application/json"}, {"Authorization", "Bearer t"},
		{"X-Forwarded-For", "192.0.2.7"}, {"X-Forwarded-Host", "api.example.com"}, {"X-Forwarded-Proto", "https"},
		{"X-Request-Id", ex.RequestID()},
		{"X-Forwarded-Client-Cert", identity.XFCC(f.client)},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("backend headers:\n%q\nwant\n%q", got, want)
	}
}

func TestWebSocketUpgradeOnlyWhereNamed(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		target, upgrade, want string
	}{
		{"/billing/ws", "websocket", "websocket"},
		{"/billing/ws", "WebSocket", "websocket"},
		{"/billing/ws", "h2c", ""},
		{"/billing/ws", "websocket, h2c", ""},
		{"/public", "websocket", ""}, // the public route names no upgrade
	} {
		r := get(tc.target, [2]string{"Connection", "Upgrade"}, [2]string{"Upgrade", tc.upgrade})
		ex := f.p.Begin(f.conn("api.example.com", f.client), r)
		if rf := ex.Decide(context.Background(), r); rf != nil {
			t.Fatalf("%s %s: refused %s", tc.target, tc.upgrade, rf.Reason)
		}
		if ex.Upgrade() != tc.want {
			t.Errorf("%s Upgrade %q: passed %q, want %q", tc.target, tc.upgrade, ex.Upgrade(), tc.want)
		}
		var got sink
		ex.WriteHeaders(r, &got)
		for _, h := range got {
			if strings.EqualFold(h[0], "upgrade") && tc.want == "" {
				t.Errorf("%s Upgrade %q reached the backend", tc.target, tc.upgrade)
			}
		}
		ex.Release()
	}
}

// Exactly one audit record per request, with path and route on refusals
// and the identity on allowed requests, serial as openssl prints it.
func TestAuditRecord(t *testing.T) {
	f := newFixture(t)
	r := get("/billing/a")
	ex := f.p.Begin(f.conn("api.example.com", f.client), r)
	if rf := ex.Decide(context.Background(), r); rf != nil {
		t.Fatal(rf.Reason)
	}
	ex.Finish(200, 42, "")
	ex.Release()
	r = get("/billing/b")
	ex = f.p.Begin(f.conn("api.example.com", nil), r)
	rf := ex.Decide(context.Background(), r)
	ex.Finish(rf.Status, 10, "")
	ex.Release()
	recs := f.records(t)
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	ok, deny := recs[0], recs[1]
	if ok["route"] != "billing" || ok["path"] != "/billing/a" || ok["status"] != 200.0 || ok["bytes_out"] != 42.0 ||
		ok["decision"] != "allow" || ok["subject"] != f.client.Subject() || ok["serial"] != f.client.Serial() ||
		ok["spiffe_id"] != "spiffe://example.com/billing/api" || ok["remote"] != "192.0.2.7:4711" || ok["request_id"] == "" {
		t.Errorf("allowed record %v", ok)
	}
	if deny["route"] != "billing" || deny["path"] != "/billing/b" || deny["status"] != 403.0 || deny["decision"] != "deny" ||
		!strings.Contains(deny["reason"].(string), "requires a client certificate") {
		t.Errorf("refused record %v", deny)
	}
	if s := f.client.Serial(); s != strings.ToUpper(s) || len(s)%2 != 0 {
		t.Errorf("serial %q is not openssl's form", s)
	}
}

// The body reader cuts at max_body whatever the declared length, and a
// client read error is the client's (400), not the backend's.
func TestBody(t *testing.T) {
	f := newFixture(t)
	r := get("/billing/a")
	r.method, r.cl = "POST", -1
	ex := f.p.Begin(f.conn("api.example.com", f.client), r)
	defer ex.Release()
	if rf := ex.Decide(context.Background(), r); rf != nil {
		t.Fatal(rf.Reason)
	}
	n, err := io.Copy(io.Discard, ex.Body(strings.NewReader(strings.Repeat("x", 17))))
	if !errors.Is(err, pipeline.ErrBodyTooLarge) || n != 16 {
		t.Fatalf("copied %d, %v", n, err)
	}
	if rf := ex.UpstreamError(err); rf.Status != 413 {
		t.Errorf("mapped to %d", rf.Status)
	}
	_, err = io.Copy(io.Discard, ex.Body(io.MultiReader(strings.NewReader("x"), errReader{})))
	if rf := ex.UpstreamError(err); rf.Status != 400 {
		t.Errorf("client body error mapped to %d, want 400", rf.Status)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("malformed chunk") }

// BenchmarkDecide measures the pipeline's whole per-request work on the
// allowed path (verified client, allow rule, XFCC, header hygiene, audit
// record to a discarding stream): the part every engine shares.
func BenchmarkDecide(b *testing.B) {
	f := newFixture(b)
	f.p.Audit = telemetry.NewDiscardAudit()
	benchAllowedPath(b, f)
}

// The rendered identity headers are cached per certificate (and chain,
// for RFC 9440): the same certificate gets the same strings, another
// certificate or another chain never gets a cached one.
func TestVerificationRenderCache(t *testing.T) {
	root := testpki.NewRoot(t, "Root")
	interA := root.Intermediate(t, "Issuing A")
	interB := root.Intermediate(t, "Issuing B")
	a := interA.Leaf(t, testpki.LeafOptions{CN: "client-a"})
	b := interA.Leaf(t, testpki.LeafOptions{CN: "client-b"})
	pol := pipeline.NewPolicy(&pipeline.Policy{XFCC: true, RFC9440: true})
	header := func(v *pipeline.Verification, name string) string {
		for _, h := range v.Headers {
			if h[0] == name {
				return h[1]
			}
		}
		return ""
	}
	va1 := pipeline.NewVerification(pol, identity.New(a.Chain))
	va2 := pipeline.NewVerification(pol, identity.New(a.Chain))
	vb := pipeline.NewVerification(pol, identity.New(b.Chain))
	if x := header(va1, "X-Forwarded-Client-Cert"); x == "" || x != header(va2, "X-Forwarded-Client-Cert") {
		t.Fatalf("same certificate, different XFCC: %q", x)
	}
	if !strings.Contains(header(va1, "X-Forwarded-Client-Cert"), "client-a") ||
		!strings.Contains(header(vb, "X-Forwarded-Client-Cert"), "client-b") {
		t.Fatal("XFCC names the wrong certificate")
	}
	if va1.ID == va2.ID {
		t.Fatal("verifications share an identity")
	}
	// The same leaf presented with another chain: its own chain header.
	other := append([]*x509.Certificate{a.Cert}, interB.Cert)
	vo := pipeline.NewVerification(pol, identity.New(other))
	if header(vo, "Client-Cert-Chain") == header(va1, "Client-Cert-Chain") {
		t.Fatal("another chain got the cached Client-Cert-Chain")
	}
	if header(vo, "Client-Cert") != header(va1, "Client-Cert") {
		t.Fatal("same leaf, different Client-Cert")
	}
}

// benchAllowedPath runs the allowed path of one request through f's
// pipeline per iteration: Begin, Decide, WriteHeaders, Finish, Release.
func benchAllowedPath(b *testing.B, f *fixture) {
	b.Helper()
	c := f.conn("api.example.com", f.client)
	r := get("/billing/orders/12345?expand=items",
		[2]string{"Accept", "application/json"}, [2]string{"User-Agent", "bench"}, [2]string{"Authorization", "Bearer abc"})
	var s sink
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		ex := f.p.Begin(c, r)
		if rf := ex.Decide(ctx, r); rf != nil {
			b.Fatal(rf.Reason)
		}
		s = s[:0]
		ex.WriteHeaders(r, &s)
		ex.Finish(200, 512, "")
		ex.Release()
	}
}

// A connection's authorization is remembered per route: requests that go
// from one route to another on the same connection get each route's own
// answer, in any order.
func TestAuthorizePerRoute(t *testing.T) {
	f := newFixture(t)
	billing, _ := authz.Compile([]authz.Rule{{SPIFFEID: "spiffe://example.com/billing/*"}}, nil)
	others, _ := authz.Compile([]authz.Rule{{SPIFFEID: "spiffe://example.com/other"}}, nil)
	f.pol = pipeline.NewPolicy(&pipeline.Policy{
		Routes: []*pipeline.Route{
			{Name: "billing", Path: "/billing/", Requires: true, Authz: billing, MaxBody: 16},
			{Name: "others", Path: "/others/", Requires: true, Authz: others, MaxBody: 16},
		},
		CertNames: [][]string{{"api.example.com"}},
		Verifier:  f.pol.Verifier,
	})
	for _, id := range []*identity.Identity{f.client, f.other} {
		c := f.conn("api.example.com", id)
		for i, path := range []string{"/billing/a", "/others/a", "/billing/b", "/billing/c", "/others/b"} {
			r := get(path)
			ex := f.p.Begin(c, r)
			rf := ex.Decide(context.Background(), r)
			ex.Release()
			want := (id == f.client) == strings.HasPrefix(path, "/billing/")
			if got := rf == nil; got != want {
				t.Fatalf("%s request %d %s: allowed=%v, want %v (%v)", id.Subject(), i, path, got, want, rf)
			}
		}
	}
}
