package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/gatehouse/gatehouse/internal/identity"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testpki"
)

// pkiSet is a test PKI written to a directory: a root, an intermediate
// that issues the server and client certificates, and a foreign CA.
type pkiSet struct {
	dir     string
	root    *testpki.CA
	inter   *testpki.CA
	server  *testpki.Leaf
	client  *testpki.Leaf
	foreign *testpki.CA
}

func newPKI(t testing.TB) *pkiSet {
	t.Helper()
	p := &pkiSet{dir: t.TempDir()}
	p.root = testpki.NewRoot(t, "Test Root")
	p.inter = p.root.Intermediate(t, "Test Issuing CA")
	p.server = p.inter.Server(t, "localhost", "api.example.com", "other.example.com")
	p.client = p.inter.Leaf(t, testpki.LeafOptions{CN: "client-a", Org: "Partner Inc", URIs: []string{"spiffe://example.com/billing/api"}})
	p.foreign = testpki.NewRoot(t, "Foreign Root")
	p.root.WriteCert(t, p.dir, "ca.pem")
	p.server.Write(t, p.dir, "server")
	return p
}

// echoBackend answers with the request it saw, as JSON.
type echoed struct {
	Method  string      `json:"method"`
	Path    string      `json:"path"`
	RawPath string      `json:"raw_path"`
	Host    string      `json:"host"`
	Header  http.Header `json:"header"`
}

// backend is a recording echo backend.
type backend struct {
	*httptest.Server
	mu   sync.Mutex
	seen []echoed
}

func newBackend(t testing.TB) *backend {
	t.Helper()
	b := &backend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := echoed{Method: r.Method, Path: r.URL.Path, RawPath: r.URL.EscapedPath(), Host: r.Host, Header: r.Header}
		b.mu.Lock()
		b.seen = append(b.seen, e)
		b.mu.Unlock()
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(e)
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *backend) requests() []echoed {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]echoed(nil), b.seen...)
}

// gw is a running gateway.
type gw struct {
	srv   *Server
	addr  string
	audit *bytes.Buffer
	auMu  *sync.Mutex
	au    *telemetry.Audit
	stop  func() error
	// logBuf holds the operational log (text), for failure messages.
	logBuf *lockedBuffer
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// startGateway writes yaml as gatehouse.yaml into dir, loads it and serves
// it on 127.0.0.1:0. The listen key in yaml is ignored.
func startGateway(t testing.TB, dir, yaml string) *gw {
	t.Helper()
	return startGatewayWith(t, dir, yaml, Options{})
}

// startGatewayWith is startGateway with opts (Log and Audit are the
// harness's).
func startGatewayWith(t testing.TB, dir, yaml string, opts Options) *gw {
	t.Helper()
	path := filepath.Join(dir, "gatehouse.yaml")
	testpki.WriteFile(t, path, []byte(yaml))
	f, err := config.Load(path)
	if err != nil {
		t.Fatalf("load config: %v", err)
	}
	g := &gw{audit: &bytes.Buffer{}, auMu: &sync.Mutex{}}
	logw := &lockedWriter{mu: g.auMu, w: g.audit}
	g.au = telemetry.NewAudit(logw)
	t.Cleanup(func() { g.au.Close() })
	g.logBuf = newLockedBuffer()
	opts.Log = slog.New(slog.NewTextHandler(g.logBuf, nil))
	opts.Audit = g.au
	srv, err := New(f, opts)
	if err != nil {
		t.Fatalf("new gateway: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	var once sync.Once
	var serveErr error
	g.srv, g.addr = srv, ln.Addr().String()
	g.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case serveErr = <-done:
			case <-time.After(30 * time.Second):
				serveErr = errors.New("gateway did not stop within 30s")
			}
		})
		return serveErr
	}
	t.Cleanup(func() { g.stop() })
	return g
}

// logs is the operational log so far.
func (g *gw) logs() string { return g.logBuf.String() }

func (g *gw) auditLog() string {
	g.au.Flush()
	g.auMu.Lock()
	defer g.auMu.Unlock()
	return g.audit.String()
}

// baseConfig returns a config for p with one catch-all route to backendURL.
func baseConfig(p *pkiSet, backendURL, extra string) string {
	return fmt.Sprintf(`listen: "127.0.0.1:0"
server_tls:
  certificates:
    - cert: server.pem
      key: server-key.pem
client_auth:
  mode: require
  trusted_cas: [ca.pem]
routes:
  - name: all
    path: /
    backend: %s
%s`, backendURL, extra)
}

// clientTLS returns a client config trusting p's root, presenting leaf
// (if not nil) and sending serverName as SNI.
func (p *pkiSet) clientTLS(leaf *testpki.Leaf, serverName string) *tls.Config {
	c := &tls.Config{RootCAs: testpki.Pool(p.root), ServerName: serverName}
	if leaf != nil {
		// Present the certificate even when the server's list of
		// acceptable CAs does not name its issuer, as an attacker would.
		cert := leaf.TLSCertificate()
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	}
	return c
}

// httpClient returns a client that connects to the gateway at addr
// whatever the URL's host, so that URLs can name the virtual host (SNI and
// Host) as a real client would; h2 selects HTTP/2.
func httpClient(addr string, tc *tls.Config, h2 bool) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		TLSClientConfig:   tc,
		ForceAttemptHTTP2: h2,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// get sends a GET through the gateway with the given Host (path is sent
// as the raw request target) and returns status, body and headers.
func get(t testing.TB, c *http.Client, host, path string) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest("GET", "https://"+host+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = "//" + host + path // send path exactly as given
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body, resp.Header
}

func requireOpenSSL(t testing.TB) {
	t.Helper()
	if _, err := lookPath("openssl"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("openssl is required in CI")
		}
		t.Skip("openssl not installed")
	}
}

func requireCurl(t testing.TB) {
	t.Helper()
	if _, err := lookPath("curl"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("curl is required in CI")
		}
		t.Skip("curl not installed")
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// client returns an HTTP client connected to this gateway.
func (g *gw) client(tc *tls.Config, h2 bool) *http.Client { return httpClient(g.addr, tc, h2) }

// verifyLeaf returns the identity of a leaf issued by the test PKI.
func verifyLeaf(l *testpki.Leaf) *identity.Identity {
	return identity.New(l.Chain)
}

func mustLoad(t testing.TB, path string) *config.File {
	t.Helper()
	f, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// opensslRecipeCert makes a client certificate as the openssl tutorials do
// (`openssl x509 -req` without -extfile: no extensions at all), signed by
// p's intermediate, and writes NAME.pem (leaf + intermediate) and
// NAME-key.pem into p.dir.
func opensslRecipeCert(t *testing.T, p *pkiSet, name, cn string) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(p.inter.Key)
	if err != nil {
		t.Fatal(err)
	}
	testpki.WriteFile(t, p.dir+"/inter-key.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	p.inter.WriteCert(t, p.dir, "inter.pem")
	mustRun(t, p.dir, "openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", name+"-key.pem", "-out", name+".csr", "-subj", "/CN="+cn)
	mustRun(t, p.dir, "openssl", "x509", "-req", "-in", name+".csr", "-CA", "inter.pem", "-CAkey", "inter-key.pem",
		"-CAcreateserial", "-out", name+"-leaf.pem", "-days", "1")
	leaf, err := os.ReadFile(p.dir + "/" + name + "-leaf.pem")
	if err != nil {
		t.Fatal(err)
	}
	testpki.WriteFile(t, p.dir+"/"+name+".pem", append(leaf, p.inter.CertPEM()...))
}
