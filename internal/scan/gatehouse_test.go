package scan

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/testpki"
)

// gatehouseTarget is a running gatehouse with two virtual hosts and what
// a scan needs to check it.
type gatehouseTarget struct {
	addr    string
	root    *testpki.CA
	client  *testpki.Leaf
	server  *testpki.Leaf
	cfgFile string
}

// startGatehouse serves a gatehouse configuration (require mode, two
// virtual hosts) on 127.0.0.1 through gateway.New and Serve.
func startGatehouse(t *testing.T) *gatehouseTarget {
	t.Helper()
	return startGatehouseWith(t, "")
}

// startGatehouseWith is startGatehouse with extra top-level configuration.
func startGatehouseWith(t *testing.T, extra string) *gatehouseTarget {
	t.Helper()
	dir := t.TempDir()
	root := testpki.NewRoot(t, "Gatehouse Scan Root")
	inter := root.Intermediate(t, "Gatehouse Scan Issuing CA")
	// The API certificate names an OCSP responder: gatehouse staples.
	responder := httptest.NewServer(ocspResponder(inter))
	t.Cleanup(responder.Close)
	api := inter.Leaf(t, testpki.LeafOptions{CN: "api.example.com", DNS: []string{"api.example.com"},
		IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		OCSPServer: []string{responder.URL}})
	other := inter.Server(t, "other.example.com")
	api.Write(t, dir, "api")
	other.Write(t, dir, "other")
	root.WriteCert(t, dir, "ca.pem")
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") }))
	t.Cleanup(backend.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`listen: %q
server_tls:
  certificates:
    - { cert: api.pem, key: api-key.pem }
    - { cert: other.pem, key: other-key.pem }
  ocsp_stapling: true
client_auth:
  mode: require
  trusted_cas: [ca.pem]
routes:
  - name: all
    path: /
    backend: %s
%s`, ln.Addr().String(), backend.URL, extra)
	path := filepath.Join(dir, "gatehouse.yaml")
	testpki.WriteFile(t, path, []byte(cfg))
	f, err := config.Load(path)
	if err != nil {
		t.Fatalf("load config: %v", err)
	}
	srv, err := gateway.New(f, gateway.Options{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("gateway: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Errorf("gateway did not stop")
		}
	})
	waitStaple(t, ln.Addr().String(), "api.example.com")
	return &gatehouseTarget{addr: ln.Addr().String(), root: root, client: inter.Client(t, "scan-client"), server: api, cfgFile: path}
}

// gatehouseOptions are what `gatehouse scan --config` derives from the
// configuration, plus --cert/--key and --http.
func (g *gatehouseTarget) options() Options {
	client, noEKU := g.client.TLSCertificate(), g.server.TLSCertificate()
	roots := x509.NewCertPool()
	roots.AddCert(g.root.Cert)
	return Options{Addr: g.addr, ServerName: "api.example.com", Roots: roots, HTTP: true, Fetch: true,
		ClientCert: &client, NoEKUCert: &noEKU, ClientCAs: []*x509.Certificate{g.root.Cert},
		RequireClientCert: true, MisdirectedHost: "other.example.com"}
}

func TestGatehouse(t *testing.T) {
	t.Parallel() // testssl.sh takes most of a minute: run it beside the other
	g := startGatehouse(t)
	r := scanFor(t, g.options())
	if r.Grade.Grade != "A+" || len(r.Grade.Warnings) > 0 {
		t.Errorf("grade %s, want A+ with no warning (caps %+v, warnings %v)", r.Grade.Grade, r.Grade.Caps, r.Grade.Warnings)
	}
	want := []string{"requested", "no_cert", "self_signed", "impostor_ca", "no_client_eku", "valid_cert", "resumption", "misdirected"}
	for _, id := range want {
		c := check(r, id)
		switch {
		case c == nil:
			t.Errorf("mTLS check %s missing", id)
		case id == "requested" && c.Status != Info:
			t.Errorf("%s: %+v", id, c)
		case id != "requested" && c.Status != Pass:
			t.Errorf("mTLS check %s: %s: %s", id, c.Status, c.Detail)
		}
	}
	if r.HTTP == nil || r.HTTP.HSTSMaxAge < hstsMinAge || r.HTTP.MisdirectedStatus != http.StatusMisdirectedRequest {
		t.Errorf("HTTP: %+v", r.HTTP)
	}
	if r.offered(VersionTLS11) || !r.offered(VersionTLS13) {
		t.Errorf("protocols: %+v", r.Protocols)
	}
	if len(r.Groups) == 0 || r.Groups[0] != "X25519MLKEM768" {
		t.Errorf("groups %v, want X25519MLKEM768 first", r.Groups)
	}
	// A P-256 key in TLS 1.3 signs with ecdsa_secp256r1_sha256 only.
	if len(r.SignatureAlgorithms13) != 1 || r.SignatureAlgorithms13[0] != "ecdsa_secp256r1_sha256" {
		t.Errorf("TLS 1.3 signature algorithms %v, want [ecdsa_secp256r1_sha256]", r.SignatureAlgorithms13)
	}
	for _, p := range r.Protocols {
		for _, s := range p.Suites {
			if !s.AEAD || !s.FS {
				t.Errorf("%s offered with %s", s.Name, p.Name)
			}
		}
	}
	if r.Behaviour.ClientRenegotiation != "refused" || r.Behaviour.Compression || r.Behaviour.FallbackSCSV != "supported" {
		t.Errorf("behaviour: %+v", r.Behaviour)
	}
	if c := r.Certificates; !c.OCSPStapled || c.OCSPStaple != "good" || c.OCSP != "good" {
		t.Errorf("OCSP: stapled %v %q, responder %q", c.OCSPStapled, c.OCSPStaple, c.OCSP)
	}
	if !r.Certificates.Trusted || r.Certificates.Incomplete || r.Certificates.RootSent {
		t.Errorf("certificates: %+v", r.Certificates)
	}

	ts := runTestssl(t, g.addr, "api.example.com")
	compareTestssl(t, r, ts)
	compareSSLScan(t, r, g.addr, "api.example.com")
}

// A server that starts failing the scan's handshakes (here gatehouse's
// failed-handshake limit, which answers internal_error) is not taken at
// its word: the report counts the failures and warns that what it shows
// as not offered may be offered, the grade drops below A, and a client
// check the limit answered is inconclusive, never passed or failed.
func TestGatehouseThrottled(t *testing.T) {
	t.Parallel()
	g := startGatehouseWith(t, "limits: { failed_handshakes_per_ip: { rate: 1/h, burst: 5 } }\n")
	r := scanFor(t, g.options())
	if r.Behaviour.InternalErrors == 0 {
		t.Fatalf("no internal_error answers counted; behaviour %+v", r.Behaviour)
	}
	warned := false
	for _, w := range r.Grade.Warnings {
		warned = warned || strings.Contains(w, "internal_error") && strings.Contains(w, "failed_handshakes_per_ip")
	}
	if !warned || !GradeBelow(r.Grade.Grade, "A") {
		t.Errorf("grade %s, warnings %v: want below A with the internal_error warning", r.Grade.Grade, r.Grade.Warnings)
	}
	for _, c := range r.MTLS {
		if strings.Contains(c.Detail, "internal error") && c.Status != Inconclusive || c.Status == Fail {
			t.Errorf("mTLS check %s, answered by the limit only, is %s: %s", c.ID, c.Status, c.Detail)
		}
	}
	// The limit answered the probes after the listing, and part of the
	// listing itself: no verdict may pass for "not vulnerable", neither
	// a probe's nor one inferred from the suites listed ("no RC4 suite
	// accepted" while RC4 hellos got internal_error).
	probes := map[string]bool{"crime": true, "heartbleed": true, "ccs_injection": true, "ticketbleed": true, "rc4": true}
	for _, v := range r.Vulns {
		delete(probes, v.ID)
		if v.Status == NotVulnerable {
			t.Errorf("%s judged %q (%s) while throttled: %s", v.ID, v.Status, v.Method, v.Detail)
		}
	}
	if len(probes) > 0 {
		t.Errorf("verdicts missing from the report: %v", probes)
	}
}

// TestUnverifiedClientCerts scans a Go server that asks for a client
// certificate and accepts whatever it gets, with old protocols and 3DES
// enabled (which Debian's OpenSSL no longer has).
func TestUnverifiedClientCerts(t *testing.T) {
	root := testpki.NewRoot(t, "Lax Root")
	leaf := root.Server(t, "lax.test")
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") }))
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{leaf.TLSCertificate()},
		ClientAuth:   tls.RequestClientCert,
		MinVersion:   tls.VersionTLS10,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
			tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA},
		ClientCAs: testpki.Pool(root),
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()
	roots := testpki.Pool(root)
	r := scanFor(t, Options{Addr: addr, ServerName: "lax.test", Roots: roots, HTTP: true})
	for id, want := range map[string]Status{"no_cert": Warn, "self_signed": Fail, "impostor_ca": Fail} {
		if c := check(r, id); c == nil || c.Status != want {
			t.Errorf("mTLS %s = %+v, want %s", id, c, want)
		}
	}
	if !r.offered(VersionTLS10) {
		t.Errorf("TLS 1.0 not found")
	}
	// Go serves 3DES only with an RSA certificate; this one is ECDSA, so
	// 3DES must not be reported.
	if v := vuln(r, "sweet32"); v == nil || v.Status != NotVulnerable {
		t.Errorf("sweet32: %+v", v)
	}
	if v := vuln(r, "poodle_tls"); v == nil || v.Status != NotVulnerable || v.Method != "probed" {
		t.Errorf("poodle_tls = %+v, want a probed not vulnerable", v)
	}
	if r.Grade.Grade != "B" || !hasCap(r, "B") {
		t.Errorf("grade %s (%+v)", r.Grade.Grade, r.Grade.Caps)
	}
	compareSSLScan(t, r, addr, "lax.test")
}

// waitStaple waits until the server at addr staples an OCSP response
// (the stapler fetches in the background after startup).
func waitStaple(t *testing.T, addr, sni string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var staple []byte
		c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: sni, InsecureSkipVerify: true,
			VerifyConnection: func(cs tls.ConnectionState) error { staple = cs.OCSPResponse; return nil }})
		if err == nil {
			c.Close()
		}
		if len(staple) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gatehouse did not staple an OCSP response within 10s (%v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
