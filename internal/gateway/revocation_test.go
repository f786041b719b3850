package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"github.com/coder/websocket"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/gatehouse/gatehouse/internal/pki"
	"github.com/gatehouse/gatehouse/internal/testpki"
)

// caPublisher is the project's own CA with `ca serve` running on loopback,
// publishing its CRL and answering OCSP.
type caPublisher struct {
	ca  *pki.CA
	url string
	dir string
}

func newCAPublisher(t *testing.T) *caPublisher {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	dir := filepath.Join(t.TempDir(), "ca")
	ca, err := pki.Init(dir, pki.InitOptions{Name: "Revocation Test CA", Passphrase: []byte("test passphrase"), URL: base})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ca.Close() })
	srv, err := pki.NewServer(ca, pki.ServerOptions{Poll: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return &caPublisher{ca: ca, url: base, dir: dir}
}

// issue writes NAME.pem and NAME-key.pem into dir.
func (c *caPublisher) issue(t *testing.T, dir, name string, req pki.IssueRequest) *pki.Issued {
	t.Helper()
	iss, err := c.ca.Issue(req)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := iss.KeyPEM(nil)
	testpki.WriteFile(t, filepath.Join(dir, name+".pem"), iss.ChainPEM())
	testpki.WriteFile(t, filepath.Join(dir, name+"-key.pem"), key)
	return iss
}

// waitOCSPStatus asks the publisher's OCSP responder until it answers
// want for iss (it notices inventory changes by polling), or fails after
// a generous bound.
func (c *caPublisher) waitOCSPStatus(t *testing.T, iss *pki.Issued, want int) {
	t.Helper()
	req, err := ocsp.CreateRequest(iss.Cert(), c.ca.Root(), nil)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Post(c.url+"/ocsp", "application/ocsp-request", bytes.NewReader(req))
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if r, err := ocsp.ParseResponseForCert(body, iss.Cert(), c.ca.Root()); err == nil && r.Status == want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("OCSP responder did not answer status %d within 15s", want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *caPublisher) leaf(iss *pki.Issued) *testpki.Leaf {
	return &testpki.Leaf{Cert: iss.Cert(), Key: iss.Key, Chain: iss.Chain}
}

// `ca revoke` on a client in use cuts it off within the refresh interval
// on every path in: a new handshake, a resumed session, and the next
// request of an already open HTTP/2 connection.
func TestRevocationByCRL(t *testing.T) {
	pub := newCAPublisher(t)
	dir := t.TempDir()
	testpki.WriteFile(t, filepath.Join(dir, "ca.pem"), testpki.CertsPEM(pub.ca.Root()))
	pub.issue(t, dir, "server", pki.IssueRequest{Profile: pki.ProfileServer, CN: "localhost", DNS: []string{"localhost"}})
	alice := pub.issue(t, dir, "alice", pki.IssueRequest{Profile: pki.ProfileClient, CN: "alice"})
	bob := pub.issue(t, dir, "bob", pki.IssueRequest{Profile: pki.ProfileClient, CN: "bob"})
	be := newBackend(t)
	ws := newBackend(t)
	ws.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			if _, _, err := c.Read(r.Context()); err != nil {
				return
			}
		}
	})
	// A server-sent event stream: one event every 200 ms, forever.
	sse := newBackend(t)
	sse.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(w, "data: %d\n\n", i); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	})
	g := startGateway(t, dir, fmt.Sprintf(`server_tls:
  certificates: [{cert: server.pem, key: server-key.pem}]
client_auth:
  mode: require
  trusted_cas: [ca.pem]
  revocation: { crl: ["%s/crl"], refresh: 1s }
routes:
  - { name: api, backend: "%s" }
  - { name: ws, path: /ws, backend: "%s" }
  - { name: events, path: /events, backend: "%s" }
`, pub.url, be.URL, ws.URL, sse.URL))
	roots := testpki.Pool(&testpki.CA{Cert: pub.ca.Root()})
	clientConf := func(l *testpki.Leaf, cache tls.ClientSessionCache) *tls.Config {
		cert := l.TLSCertificate()
		return &tls.Config{RootCAs: roots, ServerName: "localhost", ClientSessionCache: cache,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }}
	}
	cache := &everyKeyCache{}
	if _, status, err := resume(t, g.addr, clientConf(pub.leaf(alice), cache)); err != nil || status != 200 {
		t.Fatalf("alice before revocation: %d %v", status, err)
	}
	var opens []*http.Client
	for _, e := range engines {
		open := g.client(clientConf(pub.leaf(alice), nil), e.h2)
		if status, _, _ := get(t, open, "localhost", "/x"); status != 200 {
			t.Fatalf("%s open connection before revocation: %d", e.name, status)
		}
		opens = append(opens, open)
	}

	// And event streams on both engines, which make no further requests.
	var streams []*http.Response
	for _, e := range engines {
		sc := g.client(clientConf(pub.leaf(alice), nil), e.h2)
		sc.Timeout = 0 // the stream must be cut by the gateway, not by the client
		resp, err := sc.Get("https://localhost/events")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s event stream before revocation: %v %v", e.name, resp, err)
		}
		defer resp.Body.Close()
		streams = append(streams, resp)
	}
	// And a WebSocket tunnel, which makes no further requests.
	wsCtx, wsCancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer wsCancel()
	tunnel, _, err := websocket.Dial(wsCtx, "wss://localhost/ws", &websocket.DialOptions{
		HTTPClient: g.client(clientConf(pub.leaf(alice), nil), false), Host: "localhost"})
	if err != nil {
		t.Fatalf("websocket before revocation: %v", err)
	}
	defer tunnel.CloseNow()

	if _, err := pub.ca.Revoke(context.Background(), alice.Cert().SerialNumber, pki.Reason(1)); err != nil {
		t.Fatal(err)
	}
	// The gateway refreshes every second; allow a generous bound.
	revoked := time.Now()
	deadline := revoked.Add(15 * time.Second)
	for i, open := range opens {
		for {
			status, body, _ := get(t, open, "localhost", "/x")
			if status == 403 {
				break
			}
			if time.Now().After(deadline) {
				// Say what the gateway still answered and what it logged
				// about the CRL, so that a failure on a loaded machine
				// can be told from a refresh that never came.
				var crlLog []string
				for _, line := range strings.Split(g.logs(), "\n") {
					if strings.Contains(line, "CRL") {
						crlLog = append(crlLog, line)
					}
				}
				t.Fatalf("%s open connection still served %v after revocation: last answer %d %q; CRL log lines:\n%s",
					engines[i].name, time.Since(revoked).Round(time.Millisecond), status, body, strings.Join(crlLog, "\n"))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	for i, resp := range streams {
		done := make(chan error, 1)
		go func() { _, err := io.Copy(io.Discard, resp.Body); done <- err }()
		select {
		case <-done:
		case <-time.After(time.Until(deadline.Add(2 * time.Second))):
			t.Fatalf("%s: the revoked client's event stream still flows", engines[i].name)
		}
	}
	readCtx, readCancel := context.WithDeadline(context.Background(), deadline.Add(2*time.Second))
	_, _, err = tunnel.Read(readCtx)
	expired := readCtx.Err() != nil
	readCancel()
	if err == nil || expired {
		t.Fatalf("the revoked client's WebSocket tunnel is still open (%v)", err)
	}
	if r, status, err := resume(t, g.addr, clientConf(pub.leaf(alice), cache)); err == nil && status == 200 {
		t.Fatalf("revoked client got in on a resumed session (resumed=%v)", r)
	}
	if err := handshake(t, g.addr, clientConf(pub.leaf(alice), nil)); err == nil {
		t.Fatal("revoked client completed a new handshake")
	}
	if err := handshake(t, g.addr, clientConf(pub.leaf(bob), nil)); err != nil {
		t.Fatalf("bob, not revoked, refused: %v", err)
	}
	log := g.auditLog()
	refusedAtHandshake := false
	for _, line := range strings.Split(log, "\n") {
		refusedAtHandshake = refusedAtHandshake || strings.Contains(line, "handshake_refused") &&
			strings.Contains(line, `"subject":"CN=alice"`) && strings.Contains(line, "revoked at")
	}
	if !refusedAtHandshake {
		t.Error("the revoked client was not refused at the handshake")
	}
	for _, want := range []string{"revoked at", "keyCompromise", `"subject":"CN=alice"`} {
		if !strings.Contains(log, want) {
			t.Errorf("audit log lacks %q", want)
		}
	}
}

// With OCSP required, a revoked certificate is refused by the responder's
// answer, and a responder that is down refuses everyone (reject) or lets
// them in with a warning (allow-with-warning).
func TestRevocationByOCSP(t *testing.T) {
	pub := newCAPublisher(t)
	dir := t.TempDir()
	testpki.WriteFile(t, filepath.Join(dir, "ca.pem"), testpki.CertsPEM(pub.ca.Root()))
	pub.issue(t, dir, "server", pki.IssueRequest{Profile: pki.ProfileServer, CN: "localhost", DNS: []string{"localhost"}})
	good := pub.issue(t, dir, "good", pki.IssueRequest{Profile: pki.ProfileClient, CN: "good"})
	bad := pub.issue(t, dir, "bad", pki.IssueRequest{Profile: pki.ProfileClient, CN: "bad"})
	if _, err := pub.ca.Revoke(context.Background(), bad.Cert().SerialNumber, pki.Reason(4)); err != nil {
		t.Fatal(err)
	}
	pub.waitOCSPStatus(t, bad, ocsp.Revoked)
	be := newBackend(t)
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadURL := "http://" + dead.Addr().String() + "/ocsp"
	dead.Close()
	roots := testpki.Pool(&testpki.CA{Cert: pub.ca.Root()})
	conf := func(iss *pki.Issued) *tls.Config {
		cert := pub.leaf(iss).TLSCertificate()
		return &tls.Config{RootCAs: roots, ServerName: "localhost",
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }}
	}
	for _, tc := range []struct {
		name, extra string
		goodOK      bool
		logHas      string
	}{
		{"responder from AIA", "", true, "superseded"},
		{"responder down, reject", "ocsp_url: " + deadURL, false, "status unavailable"},
		{"responder down, allow-with-warning", "ocsp_url: " + deadURL + ", unavailable: allow-with-warning", true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := startGateway(t, dir, fmt.Sprintf(`server_tls:
  certificates: [{cert: server.pem, key: server-key.pem}]
client_auth:
  mode: require
  trusted_cas: [ca.pem]
  revocation: { ocsp: require, %s }
routes:
  - { name: api, backend: "%s" }
`, tc.extra, be.URL))
			err := handshake(t, g.addr, conf(good))
			if tc.goodOK != (err == nil) {
				t.Errorf("good certificate: err = %v, want ok=%v", err, tc.goodOK)
			}
			if tc.name == "responder from AIA" {
				if err := handshake(t, g.addr, conf(bad)); err == nil {
					t.Error("certificate revoked per OCSP got in")
				}
			}
			if tc.logHas != "" && !strings.Contains(g.auditLog(), tc.logHas) {
				t.Errorf("audit log lacks %q:\n%s", tc.logHas, g.auditLog())
			}
		})
	}
}

// A CRL source that cannot be loaded stops startup: never fail open.
func TestRevocationSourceMissingStopsStartup(t *testing.T) {
	p := newPKI(t)
	yaml := strings.Replace(baseConfig(p, "http://127.0.0.1:1", ""), "  trusted_cas: [ca.pem]\n",
		"  trusted_cas: [ca.pem]\n  revocation: { crl: [missing.crl] }\n", 1)
	testpki.WriteFile(t, filepath.Join(p.dir, "gatehouse.yaml"), []byte(yaml))
	f := mustLoad(t, filepath.Join(p.dir, "gatehouse.yaml"))
	_, err := New(f, Options{Log: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "missing.crl") || !strings.Contains(err.Error(), "client_auth.revocation") {
		t.Fatalf("err = %v", err)
	}
}

// With ocsp_stapling on, the gateway staples a verified good OCSP answer
// for its certificate, seen by Go and by openssl s_client -status.
func TestOCSPStapling(t *testing.T) {
	pub := newCAPublisher(t)
	dir := t.TempDir()
	testpki.WriteFile(t, filepath.Join(dir, "ca.pem"), testpki.CertsPEM(pub.ca.Root()))
	srv := pub.issue(t, dir, "server", pki.IssueRequest{Profile: pki.ProfileServer, CN: "localhost", DNS: []string{"localhost"}})
	client := pub.issue(t, dir, "client", pki.IssueRequest{Profile: pki.ProfileClient, CN: "client"})
	g := startGateway(t, dir, fmt.Sprintf(`server_tls:
  certificates: [{cert: server.pem, key: server-key.pem}]
  ocsp_stapling: true
client_auth: { mode: require, trusted_cas: [ca.pem] }
routes:
  - { name: api, backend: "%s" }
`, newBackend(t).URL))
	for _, sni := range []string{"localhost", ""} {
		cert := pub.leaf(client).TLSCertificate()
		conn, err := tls.Dial("tcp", g.addr, &tls.Config{RootCAs: testpki.Pool(&testpki.CA{Cert: pub.ca.Root()}),
			ServerName: sni, InsecureSkipVerify: sni == "",
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }})
		if err != nil {
			t.Fatal(err)
		}
		staple := conn.ConnectionState().OCSPResponse
		conn.Close()
		if len(staple) == 0 {
			t.Fatalf("SNI %q: no OCSP staple", sni)
		}
		resp, err := ocsp.ParseResponseForCert(staple, srv.Cert(), pub.ca.Root())
		if err != nil || resp.Status != ocsp.Good {
			t.Fatalf("SNI %q: staple %v, %v", sni, resp, err)
		}
	}
	requireOpenSSL(t)
	out, _ := runIn(t, dir, "", "openssl", "s_client", "-connect", g.addr, "-servername", "localhost", "-status", "-CAfile", "ca.pem")
	for _, want := range []string{"OCSP Response Status: successful", "Cert Status: good"} {
		if !strings.Contains(out, want) {
			t.Errorf("openssl s_client -status lacks %q:\n%s", want, out)
		}
	}
}
