package gateway

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testpki"
)

// tryGet makes one request on a new connection and returns its status,
// or 0 when the handshake or the request fails.
func tryGet(addr string, tc *tls.Config) int {
	tr := &http.Transport{TLSClientConfig: tc, DisableKeepAlives: true,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	req, _ := http.NewRequest("GET", "https://"+addr+"/x", nil)
	req.Host = tc.ServerName // the virtual host the SNI names
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("%s: not within 10s", what)
}

// crlServer serves a CRL that the test swaps.
type crlServer struct {
	*httptest.Server
	mu  sync.Mutex
	der []byte
}

func newCRLServer(t *testing.T, der []byte) *crlServer {
	s := &crlServer{der: der}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		w.Write(s.der)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *crlServer) set(der []byte) {
	s.mu.Lock()
	s.der = der
	s.mu.Unlock()
}

// Issue 9 item 1 through the real gateway: the intermediate's CRL URL
// serves a forgery (the intermediate's name, another key, a key identifier
// of no CA, a huge CRL number) when the gateway starts. Its clients are
// refused, never let in unchecked; the genuine CRL, once served, is
// loaded at the next refresh and its revocations apply.
func TestForgedCRLThroughGateway(t *testing.T) {
	p := newPKI(t)
	be := newBackend(t)
	now := time.Now()
	key := testpki.NewKey(t)
	fake := *p.inter.Cert
	fake.PublicKey, fake.SubjectKeyId = key.Public(), []byte("no CA has this key id")
	forged, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1 << 62), ThisUpdate: now, NextUpdate: now.Add(time.Hour),
	}, &fake, key)
	if err != nil {
		t.Fatal(err)
	}
	srv := newCRLServer(t, forged)
	yaml := strings.Replace(baseConfig(p, be.URL, ""), "trusted_cas: [ca.pem]",
		"trusted_cas: [ca.pem]\n  revocation: {crl: [\""+srv.URL+"\"], refresh: 1s}", 1)
	g := startGateway(t, p.dir, yaml)
	tc := p.clientTLS(p.client, "localhost")
	if st := tryGet(g.addr, tc); st != 0 {
		t.Fatalf("client under a forged CRL: status %d, want the handshake refused", st)
	}
	if !strings.Contains(g.auditLog(), "not issued by it") {
		t.Errorf("audit log does not say why:\n%s", g.auditLog())
	}

	srv.set(p.inter.CRL(t, 1, now, now.Add(time.Hour)))
	eventually(t, "genuine CRL loaded after the forgery", func() bool { return tryGet(g.addr, tc) == 200 })
	srv.set(p.inter.CRL(t, 2, now, now.Add(time.Hour), p.client.Cert.SerialNumber))
	eventually(t, "revocation in the genuine CRL applied", func() bool { return tryGet(g.addr, tc) == 0 })
}

// The certificate the common openssl recipe makes (no extensions at all)
// is refused by default with a log line that names the fix, and accepted
// with client_auth.allow_missing_eku: true.
func TestNoEKUCertificateTeachesAndOptIn(t *testing.T) {
	p := newPKI(t)
	be := newBackend(t)
	bare := p.inter.Leaf(t, testpki.LeafOptions{CN: "openssl-recipe", EKU: []x509.ExtKeyUsage{}})
	yaml := baseConfig(p, be.URL, "")
	g := startGateway(t, p.dir, yaml)
	if st := tryGet(g.addr, p.clientTLS(bare, "localhost")); st != 0 {
		t.Fatalf("no-EKU certificate: status %d, want refused", st)
	}
	for _, want := range []string{"extendedKeyUsage=clientAuth", "-extfile", "gatehouse ca sign"} {
		if !strings.Contains(g.auditLog(), want) {
			t.Errorf("refusal log does not say %q:\n%s", want, g.auditLog())
		}
	}
	optIn := startGateway(t, p.dir, strings.Replace(yaml, "trusted_cas: [ca.pem]", "trusted_cas: [ca.pem]\n  allow_missing_eku: true", 1))
	if st := tryGet(optIn.addr, p.clientTLS(bare, "localhost")); st != 200 {
		t.Fatalf("no-EKU certificate with allow_missing_eku: status %d", st)
	}
	serverOnly := p.inter.Leaf(t, testpki.LeafOptions{CN: "server-only", EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if st := tryGet(optIn.addr, p.clientTLS(serverOnly, "localhost")); st != 0 {
		t.Fatalf("serverAuth-only certificate with allow_missing_eku: status %d, want refused", st)
	}
}

// The openssl tutorial recipe, end to end with openssl and curl (issue 12
// item 1): `openssl x509 -req` without -extfile makes a certificate with
// no EKU. It is refused, the log line names the fix, and with
// allow_missing_eku the same curl gets 200.
func TestOpenSSLRecipeCertificate(t *testing.T) {
	requireOpenSSL(t)
	requireCurl(t)
	p := newPKI(t)
	be := newBackend(t)
	opensslRecipeCert(t, p, "c", "openssl-client")

	curl := func(g *gw) (string, error) {
		_, port, _ := strings.Cut(g.addr, ":")
		return run(t, p.dir, "curl", "-sS", "--resolve", "localhost:"+port+":127.0.0.1", "--cacert", "ca.pem",
			"--cert", "c.pem", "--key", "c-key.pem", "-o", "/dev/null", "-w", "%{http_code}", "https://localhost:"+port+"/x")
	}
	yaml := baseConfig(p, be.URL, "")
	g := startGateway(t, p.dir, yaml)
	if out, err := curl(g); err == nil && strings.HasSuffix(out, "200") {
		t.Fatalf("openssl-recipe certificate accepted by default: %s", out)
	}
	eventually(t, "refusal logged with the fix", func() bool {
		return strings.Contains(g.auditLog(), "extendedKeyUsage=clientAuth") && strings.Contains(g.auditLog(), "openssl-client")
	})
	optIn := startGateway(t, p.dir, strings.Replace(yaml, "trusted_cas: [ca.pem]", "trusted_cas: [ca.pem]\n  allow_missing_eku: true", 1))
	if out, err := curl(optIn); err != nil || out != "200" {
		t.Fatalf("with allow_missing_eku: %v %s", err, out)
	}
}
