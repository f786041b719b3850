package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/testpki"
)

var lookPath = exec.LookPath

func TestMTLSRoundTrip(t *testing.T) {
	p := newPKI(t)
	be := newBackend(t)
	g := startGateway(t, p.dir, baseConfig(p, be.URL, ""))
	for _, h2 := range []bool{false, true} {
		c := g.client(p.clientTLS(p.client, "localhost"), h2)
		resp, err := c.Get("https://localhost/orders/1?x=y")
		if err != nil {
			t.Fatalf("h2=%v: %v", h2, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("h2=%v: status %d: %s", h2, resp.StatusCode, body)
		}
		wantProto := map[bool]string{false: "HTTP/1.1", true: "HTTP/2.0"}[h2]
		if resp.Proto != wantProto {
			t.Errorf("proto %s, want %s", resp.Proto, wantProto)
		}
		if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=63072000" {
			t.Errorf("HSTS = %q", got)
		}
		if resp.TLS.NegotiatedProtocol != map[bool]string{false: "", true: "h2"}[h2] && h2 {
			t.Errorf("ALPN = %q", resp.TLS.NegotiatedProtocol)
		}
		if resp.TLS.CurveID != tls.X25519MLKEM768 {
			t.Errorf("key exchange group = %v, want X25519MLKEM768", resp.TLS.CurveID)
		}
		if n := len(resp.TLS.PeerCertificates); n != 2 {
			t.Errorf("server sent %d certificates, want leaf + intermediate", n)
		}
		var e echoed
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatal(err)
		}
		if e.Path != "/orders/1" || e.Header.Get("X-Forwarded-Proto") != "https" ||
			e.Header.Get("X-Forwarded-Host") != "localhost" || e.Header.Get("X-Forwarded-For") != "127.0.0.1" {
			t.Errorf("backend saw %+v", e)
		}
	}
}

// handshake dials the gateway with cfg and completes the handshake and one
// request, returning the first error.
func handshake(t *testing.T, addr string, cfg *tls.Config) error {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	// In TLS 1.3 the server's verdict on the client certificate arrives
	// after the client's handshake completes: read it.
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"); err != nil {
		return err
	}
	b, err := io.ReadAll(conn)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(string(b), "HTTP/1.1 200") {
		return &unexpected{string(b)}
	}
	return nil
}

type unexpected struct{ resp string }

func (u *unexpected) Error() string { return "unexpected response: " + u.resp }

func TestHandshakePolicy(t *testing.T) {
	p := newPKI(t)
	be := newBackend(t)
	g := startGateway(t, p.dir, baseConfig(p, be.URL, ""))
	expired := p.inter.Leaf(t, testpki.LeafOptions{CN: "expired", NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	serverOnly := p.inter.Leaf(t, testpki.LeafOptions{CN: "server-as-client", EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	foreign := p.foreign.Client(t, "intruder")
	tls12 := func(c *tls.Config) *tls.Config { c.MaxVersion = tls.VersionTLS12; return c }

	for _, tc := range []struct {
		name    string
		cfg     *tls.Config
		ok      bool
		errHas  string // what the client sees
		auditHs string // what the audit log says
	}{
		{name: "valid tls1.3", cfg: p.clientTLS(p.client, "localhost"), ok: true},
		{name: "valid tls1.2", cfg: tls12(p.clientTLS(p.client, "localhost")), ok: true},
		{name: "tls1.1", cfg: &tls.Config{RootCAs: testpki.Pool(p.root), ServerName: "localhost", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, errHas: "protocol version"},
		{name: "tls1.0", cfg: &tls.Config{RootCAs: testpki.Pool(p.root), ServerName: "localhost", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}, errHas: "protocol version"},
		{name: "cbc suite", cfg: &tls.Config{RootCAs: testpki.Pool(p.root), ServerName: "localhost", MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256}}, errHas: "handshake failure"},
		{name: "no client cert", cfg: p.clientTLS(nil, "localhost"), errHas: "bad certificate", auditHs: "no client certificate presented"},
		{name: "no client cert tls1.2", cfg: tls12(p.clientTLS(nil, "localhost")), errHas: "bad certificate", auditHs: "no client certificate presented"},
		{name: "foreign CA", cfg: p.clientTLS(foreign, "localhost"), errHas: "bad certificate", auditHs: "not issued by a trusted client CA"},
		{name: "serverAuth only", cfg: p.clientTLS(serverOnly, "localhost"), errHas: "bad certificate", auditHs: "clientAuth extended key usage is missing"},
		{name: "expired", cfg: p.clientTLS(expired, "localhost"), errHas: "bad certificate", auditHs: "expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := handshake(t, g.addr, tc.cfg)
			if tc.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted, want refusal")
			}
			if !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("error %q, want it to mention %q", err, tc.errHas)
			}
			if tc.auditHs != "" && !strings.Contains(g.auditLog(), tc.auditHs) {
				t.Errorf("audit log lacks %q:\n%s", tc.auditHs, g.auditLog())
			}
		})
	}
}

// The refused handshake is logged with who was refused and why.
func TestHandshakeRefusalAudit(t *testing.T) {
	p := newPKI(t)
	g := startGateway(t, p.dir, baseConfig(p, newBackend(t).URL, ""))
	intruder := p.foreign.Leaf(t, testpki.LeafOptions{CN: "mallory", Org: "Evil"})
	if err := handshake(t, g.addr, p.clientTLS(intruder, "localhost")); err == nil {
		t.Fatal("foreign client accepted")
	}
	var rec map[string]any
	for _, line := range strings.Split(strings.TrimSpace(g.auditLog()), "\n") {
		if strings.Contains(line, "handshake_refused") {
			json.Unmarshal([]byte(line), &rec)
		}
	}
	if rec == nil {
		t.Fatalf("no handshake_refused record:\n%s", g.auditLog())
	}
	if rec["subject"] != "CN=mallory,O=Evil" || rec["serial"] != identity.SerialHex(intruder.Cert.SerialNumber) ||
		rec["issuer"] != "CN=Foreign Root,O=gatehouse test" {
		t.Errorf("record %v", rec)
	}
}

func TestMinVersion13(t *testing.T) {
	p := newPKI(t)
	yaml := strings.Replace(baseConfig(p, newBackend(t).URL, ""), "      key: server-key.pem\n", "      key: server-key.pem\n  min_version: \"1.3\"\n", 1)
	g := startGateway(t, p.dir, yaml)
	cfg := p.clientTLS(p.client, "localhost")
	cfg.MaxVersion = tls.VersionTLS12
	if err := handshake(t, g.addr, cfg); err == nil || !strings.Contains(err.Error(), "protocol version") {
		t.Fatalf("TLS 1.2 against 1.3-only: %v", err)
	}
	if err := handshake(t, g.addr, p.clientTLS(p.client, "localhost")); err != nil {
		t.Fatalf("TLS 1.3: %v", err)
	}
}

// Several certificates are chosen by SNI; the first is the default.
func TestSNICertificateSelection(t *testing.T) {
	p := newPKI(t)
	second := p.inter.Server(t, "second.example.com")
	second.Write(t, p.dir, "second")
	yaml := strings.Replace(baseConfig(p, newBackend(t).URL, ""), "      key: server-key.pem\n",
		"      key: server-key.pem\n    - cert: second.pem\n      key: second-key.pem\n", 1)
	g := startGateway(t, p.dir, yaml)
	for sni, want := range map[string]string{"second.example.com": "second.example.com", "localhost": "localhost", "": "localhost"} {
		cfg := p.clientTLS(p.client, sni)
		cfg.InsecureSkipVerify = sni == "" // no name to verify against; we only look at the cert
		conn, err := tls.Dial("tcp", g.addr, cfg)
		if err != nil {
			t.Fatalf("SNI %q: %v", sni, err)
		}
		got := conn.ConnectionState().PeerCertificates[0].Subject.CommonName
		conn.Close()
		if got != want {
			t.Errorf("SNI %q: served %q, want %q", sni, got, want)
		}
	}
}

// A raw TCP client that never sends a ClientHello is cut off by the
// handshake deadline.
func TestHandshakeDeadline(t *testing.T) {
	p := newPKI(t)
	g := startGateway(t, p.dir, baseConfig(p, newBackend(t).URL, "timeouts: { handshake: 300ms }\n"))
	conn, err := net.Dial("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = conn.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("connection still open after 10s; handshake deadline not enforced")
	}
	if err == nil {
		t.Fatal("server sent data to a silent client")
	}
}

func writeFile(t *testing.T, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	testpki.WriteFile(t, p, []byte(data))
	return p
}
