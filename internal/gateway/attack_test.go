package gateway

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/testpki"
)

// rawRequest sends req (an HTTP/1.1 request, bytes exactly as given) over
// a new TLS connection and returns the status and body.
func rawRequest(t *testing.T, addr string, cfg *tls.Config, req string) (int, string) {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	// A write error is not fatal: the gateway may answer (431, 400) and
	// close before the whole request is written.
	io.WriteString(conn, req)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// identityConfig: optional client auth, a public route, an admin route
// only for the admin SPIFFE ID, and an API route for the billing tree.
func identityConfig(p *pkiSet, backend, headers string) string {
	return `server_tls:
  certificates: [{cert: server.pem, key: server-key.pem}]
client_auth: { mode: optional, trusted_cas: [ca.pem] }
identity_headers: ` + headers + `
routes:
  - name: public
    path: /
    backend: ` + backend + `
    require_client_cert: false
  - name: admin
    path: /admin/
    backend: ` + backend + `
    allow:
      - spiffe_id: "spiffe://example.com/admin/*"
  - name: billing
    path: /billing/
    backend: ` + backend + `
    allow:
      - spiffe_id: "spiffe://example.com/billing/**"
      - subject: { cn: partner-a, o: "Partner Inc" }
`
}

func TestPerRouteAuthorization(t *testing.T) {
	p := newPKI(t)
	be := newBackend(t)
	g := startGateway(t, p.dir, identityConfig(p, be.URL, "[xfcc]"))
	partner := p.inter.Leaf(t, testpki.LeafOptions{CN: "partner-a", Org: "Partner Inc"})
	impostor := p.inter.Leaf(t, testpki.LeafOptions{CN: "partner-a", Org: "partner inc"}) // case trick
	admin := p.inter.Leaf(t, testpki.LeafOptions{CN: "ops", URIs: []string{"spiffe://example.com/admin/alice"}})
	for _, tc := range []struct {
		name   string
		leaf   *testpki.Leaf
		path   string
		status int
		reason string
	}{
		{"public without certificate", nil, "/status", 200, ""},
		{"protected without certificate", nil, "/billing/invoices", 403, "route requires a client certificate"},
		{"spiffe match", p.client, "/billing/invoices", 200, ""},
		{"subject match", partner, "/billing/x", 200, ""},
		{"subject case trick", impostor, "/billing/x", 403, "no allow rule matched"},
		{"wrong spiffe for admin", p.client, "/admin/users", 403, "no allow rule matched"},
		{"admin", admin, "/admin/users", 200, ""},
	} {
		forEachEngine(t, func(t *testing.T, e engine) {
			t.Run(tc.name, func(t *testing.T) {
				before := len(be.requests())
				status, body, _ := get(t, g.client(p.clientTLS(tc.leaf, "localhost"), e.h2), "localhost", tc.path)
				if status != tc.status {
					t.Fatalf("status %d, want %d: %s", status, tc.status, body)
				}
				if tc.status == 403 {
					if len(be.requests()) != before {
						t.Error("the backend saw a refused request")
					}
					if strings.Contains(string(body), "rule") || strings.Contains(string(body), "spiffe") {
						t.Errorf("client learns the policy: %s", body)
					}
					if !strings.Contains(g.auditLog(), tc.reason) {
						t.Errorf("audit log lacks %q", tc.reason)
					}
				}
			})
		})
	}
	// The denial record names who, which route and why.
	var rec map[string]any
	for _, line := range strings.Split(g.auditLog(), "\n") {
		if strings.Contains(line, `"route":"admin"`) && strings.Contains(line, `"status":403`) {
			json.Unmarshal([]byte(line), &rec)
		}
	}
	if rec == nil || rec["subject"] != "CN=client-a,O=Partner Inc" || rec["serial"] != identity.SerialHex(p.client.Cert.SerialNumber) ||
		rec["issuer"] != "CN=Test Issuing CA,O=gatehouse test" || !strings.Contains(rec["reason"].(string), "spiffe_id") ||
		fmt.Sprint(rec["sans"]) != "[URI:spiffe://example.com/billing/api]" {
		t.Errorf("denial record %v", rec)
	}
}

// Spoofed identity headers in every spelling, and Connection: tricks,
// never reach the backend; only the gateway's verified values do.
func TestSpoofedIdentityHeaders(t *testing.T) {
	p := newPKI(t)
	be := newBackend(t)
	g := startGateway(t, p.dir, identityConfig(p, be.URL, "[xfcc, rfc9440]"))
	spoof := [][2]string{
		{"X-Forwarded-Client-Cert", "Hash=forged;URI=spiffe://example.com/admin/root"},
		{"x_forwarded_client_cert", "forged"},
		{"X-FORWARDED-CLIENT-CERT", "forged"},
		{"Client-Cert", ":Zm9yZ2Vk:"},
		{"client_cert_chain", ":Zm9yZ2Vk:"},
		{"X-Client-Verify", "SUCCESS"},
		{"X-SSL-Client-S-DN", "CN=admin"},
		{"X_Client_DN", "CN=admin"},
		{"X-Forwarded-For", "6.6.6.6"},
		{"X-Forwarded-Host", "evil.example"},
		{"Forwarded", "for=6.6.6.6;host=evil.example"},
	}
	// HTTP/2 forbids connection-specific headers; on HTTP/1.1 a client
	// nominates the identity headers, hoping a proxy drops the verified ones.
	h1Only := [][2]string{{"Connection", "X-Forwarded-Client-Cert, Client-Cert"}}
	forEachEngine(t, func(t *testing.T, eng engine) {
		hdr := spoof
		if !eng.h2 {
			hdr = append(append([][2]string{}, spoof...), h1Only...)
		}
		for _, tc := range []struct {
			name string
			leaf *testpki.Leaf
			path string
		}{
			{"verified client", p.client, "/billing/x"},
			{"anonymous on public route", nil, "/public"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				status, body := send(t, eng, g.addr, p.clientTLS(tc.leaf, "localhost"), "GET", "localhost", tc.path, hdr, "")
				if status != 200 {
					t.Fatalf("status %d: %s", status, body)
				}
				var e echoed
				json.Unmarshal([]byte(body), &e)
				for name, values := range e.Header {
					l := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
					for _, v := range values {
						if strings.Contains(v, "forged") || strings.Contains(v, "Zm9yZ2Vk") || strings.Contains(v, "SUCCESS") || strings.Contains(v, "CN=admin") {
							t.Errorf("backend saw spoofed %s: %s", name, v)
						}
					}
					if (strings.HasPrefix(l, "x-client") || strings.HasPrefix(l, "x-ssl")) && len(values) > 0 {
						t.Errorf("backend saw %s", name)
					}
				}
				if got := e.Header.Values("X-Forwarded-For"); len(got) != 1 || got[0] != "127.0.0.1" {
					t.Errorf("X-Forwarded-For = %q, want the gateway's view of the client only", got)
				}
				if e.Header.Get("X-Forwarded-Host") != "localhost" || e.Header.Get("Forwarded") != "" {
					t.Errorf("forwarding headers from the client survived: %v", e.Header)
				}
				xfcc := e.Header.Values("X-Forwarded-Client-Cert")
				if tc.leaf == nil {
					if len(xfcc) != 0 || e.Header.Get("Client-Cert") != "" {
						t.Errorf("anonymous request carries identity headers: %v", e.Header)
					}
					return
				}
				if len(xfcc) != 1 || !strings.Contains(xfcc[0], "URI=spiffe://example.com/billing/api") ||
					!strings.HasPrefix(xfcc[0], "Hash="+identityFingerprint(p.client)) {
					t.Errorf("X-Forwarded-Client-Cert = %q", xfcc)
				}
				if cc := e.Header.Values("Client-Cert"); len(cc) != 1 || !strings.HasPrefix(cc[0], ":MII") {
					t.Errorf("Client-Cert = %q", cc)
				}
				if e.Header.Get("Client-Cert-Chain") == "" {
					t.Error("Client-Cert-Chain missing")
				}
			})
		}
	})
}

func identityFingerprint(l *testpki.Leaf) string {
	id := verifyLeaf(l)
	return id.Fingerprint()
}

// SNI and Host must select the same virtual host (DESIGN.md invariant 5).
func TestSNIHostMismatch(t *testing.T) {
	p := newPKI(t)
	be := newBackend(t)
	secure := p.inter.Server(t, "secure.example.com")
	secure.Write(t, p.dir, "secure")
	yaml := strings.Replace(baseConfig(p, be.URL, ""), "      key: server-key.pem\n",
		"      key: server-key.pem\n    - cert: secure.pem\n      key: secure-key.pem\n", 1)
	g := startGateway(t, p.dir, yaml)
	for _, tc := range []struct {
		name, sni, host string
		status          int
	}{
		{"same", "api.example.com", "api.example.com", 200},
		{"case and trailing dot", "api.example.com", "API.Example.COM.", 200},
		{"with port", "localhost", "localhost:8443", 200},
		{"other host", "api.example.com", "other.example.com", 421},
		{"other vhost", "api.example.com", "secure.example.com", 421},
		{"no SNI, default vhost", "", "127.0.0.1", 200},
		{"no SNI, Host of another vhost", "", "secure.example.com", 421},
	} {
		forEachEngine(t, func(t *testing.T, e engine) {
			t.Run(tc.name, func(t *testing.T) {
				cfg := p.clientTLS(p.client, tc.sni)
				if tc.sni == "" {
					cfg.InsecureSkipVerify = true // an IP literal sends no SNI; we only test the answer
					cfg.ServerName = "127.0.0.1"  // else Go's HTTP/2 client sends the URL's host
				}
				before := len(be.requests())
				status, body := send(t, e, g.addr, cfg, "GET", tc.host, "/x", nil, "")
				if status != tc.status {
					t.Fatalf("status %d, want %d: %s", status, tc.status, body)
				}
				if tc.status == 421 && len(be.requests()) != before {
					t.Error("the backend saw a misdirected request")
				}
			})
		})
	}
}

// Every path trick that would move a request from the public route to the
// admin route, or smuggle a different path to the backend, fails.
func TestPathBypass(t *testing.T) {
	p := newPKI(t)
	be := newBackend(t)
	g := startGateway(t, p.dir, identityConfig(p, be.URL, "[]"))
	for _, tc := range []struct {
		path     string
		status   int
		wantPath string // what the backend must see when it sees anything
	}{
		{"/public/../admin/users", 403, ""},
		{"/public/%2e%2e/admin/users", 400, ""},
		{"/public/%2E%2E%2Fadmin/users", 400, ""},
		{"/public/..%2fadmin/users", 400, ""},
		{"//admin/users", 403, ""},
		{"/./admin/users", 403, ""},
		{"/%61dmin/users", 403, ""},
		{"/admin;x=1/users", 400, ""},
		{"/public/..;/admin/users", 400, ""},
		{"/public/%252e%252e/admin/users", 400, ""},
		{"/public\\..\\admin/users", 400, ""},
		{"/ADMIN/users", 200, "/ADMIN/users"},
		{"/public//x/./y/../z", 200, "/public/x/z"},
	} {
		forEachEngine(t, func(t *testing.T, e engine) {
			t.Run(tc.path, func(t *testing.T) {
				before := len(be.requests())
				status, body := send(t, e, g.addr, p.clientTLS(nil, "localhost"), "GET", "localhost", tc.path, nil, "")
				if status != tc.status {
					t.Fatalf("status %d, want %d: %s", status, tc.status, body)
				}
				seen := be.requests()[before:]
				if tc.wantPath == "" && len(seen) != 0 {
					t.Fatalf("backend saw %q", seen[0].RawPath)
				}
				if tc.wantPath != "" && (len(seen) != 1 || seen[0].RawPath != tc.wantPath) {
					t.Fatalf("backend saw %v, want exactly %q", seen, tc.wantPath)
				}
			})
		})
	}
}

// everyKeyCache offers the last session it stored for any server name,
// as an attacker replaying a ticket under another SNI would.
type everyKeyCache struct{ last *tls.ClientSessionState }

func (c *everyKeyCache) Get(string) (*tls.ClientSessionState, bool) { return c.last, c.last != nil }
func (c *everyKeyCache) Put(_ string, s *tls.ClientSessionState) {
	if s != nil {
		c.last = s
	}
}

// resume makes one request on a new connection with cfg and reports
// whether the session was resumed; err is a refused handshake or request.
func resume(t *testing.T, addr string, cfg *tls.Config) (resumed bool, status int, err error) {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return false, 0, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	host := cfg.ServerName
	if _, err := io.WriteString(conn, "GET /x HTTP/1.1\r\nHost: "+host+"\r\n\r\n"); err != nil {
		return false, 0, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return false, 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	// A second request lets the client read the TLS 1.3 session ticket.
	io.WriteString(conn, "GET /x HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n")
	if resp2, err := http.ReadResponse(br, nil); err == nil {
		io.Copy(io.Discard, resp2.Body)
		resp2.Body.Close()
	}
	return conn.ConnectionState().DidResume, resp.StatusCode, nil
}

func TestSessionResumptionPolicy(t *testing.T) {
	for _, version := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			p := newPKI(t)
			be := newBackend(t)
			yaml := baseConfig(p, be.URL, "")
			g := startGateway(t, p.dir, yaml)
			cache := &everyKeyCache{}
			cfg := func(sni string) *tls.Config {
				c := p.clientTLS(p.client, sni)
				c.ClientSessionCache = cache
				c.MaxVersion = version
				return c
			}
			if r, status, err := resume(t, g.addr, cfg("localhost")); err != nil || r || status != 200 {
				t.Fatalf("first connection: resumed=%v status=%d err=%v", r, status, err)
			}
			if r, _, err := resume(t, g.addr, cfg("localhost")); err != nil || !r {
				t.Fatalf("same SNI: resumed=%v err=%v (tickets should work)", r, err)
			}
			// A ticket minted under one SNI is not resumed under another.
			if r, status, err := resume(t, g.addr, cfg("api.example.com")); err != nil || r || status != 200 {
				t.Fatalf("other SNI: resumed=%v status=%d err=%v, want a full handshake", r, status, err)
			}
			resume(t, g.addr, cfg("localhost")) // a fresh localhost ticket

			// The CA set changes (another CA is added): old tickets are not
			// resumed, the client still gets in with a full handshake.
			p.foreign.WriteCert(t, p.dir, "foreign.pem")
			reload(t, g, p.dir, strings.Replace(yaml, "trusted_cas: [ca.pem]", "trusted_cas: [ca.pem, foreign.pem]", 1))
			if r, status, err := resume(t, g.addr, cfg("localhost")); err != nil || r || status != 200 {
				t.Fatalf("after CA change: resumed=%v status=%d err=%v, want a full handshake", r, status, err)
			}
			// The client's CA is removed: neither a ticket nor a full
			// handshake gets it in, and an open connection's next request
			// is refused too.
			var opens []*http.Client
			for _, e := range engines {
				open := g.client(p.clientTLS(p.client, "localhost"), e.h2)
				if status, _, _ := get(t, open, "localhost", "/x"); status != 200 {
					t.Fatalf("%s keep-alive connection: %d", e.name, status)
				}
				opens = append(opens, open)
			}
			reload(t, g, p.dir, strings.Replace(yaml, "trusted_cas: [ca.pem]", "trusted_cas: [foreign.pem]", 1))
			if r, status, err := resume(t, g.addr, cfg("localhost")); err == nil && status == 200 {
				t.Fatalf("client of a removed CA got in (resumed=%v)", r)
			}
			for i, open := range opens {
				if status, body, _ := get(t, open, "localhost", "/x"); status != 403 {
					t.Fatalf("%s open connection after its CA was removed: %d %s", engines[i].name, status, body)
				}
			}
			if !strings.Contains(g.auditLog(), "after reload: client certificate") {
				t.Error("audit log does not say why the open connection was refused")
			}
		})
	}
}

func reload(t *testing.T, g *gw, dir, yaml string) {
	t.Helper()
	path := dir + "/gatehouse.yaml"
	testpki.WriteFile(t, path, []byte(yaml))
	f, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.srv.Reload(f); err != nil {
		t.Fatalf("reload: %v", err)
	}
}
