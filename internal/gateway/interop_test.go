package gateway

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// run runs a command with a time limit and returns its combined output.
func run(t *testing.T, dir string, name string, args ...string) (string, error) {
	t.Helper()
	return runIn(t, dir, "", name, args...)
}

// runIn is run with stdin.
func runIn(t *testing.T, dir, stdin string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustRun(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	out, err := run(t, dir, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func TestCurl(t *testing.T) {
	requireCurl(t)
	p := newPKI(t)
	p.client.Write(t, p.dir, "client")
	be := newBackend(t)
	g := startGateway(t, p.dir, baseConfig(p, be.URL, ""))
	_, port, _ := strings.Cut(g.addr, ":")
	url := "https://localhost:" + port + "/hello"
	resolve := "localhost:" + port + ":127.0.0.1"

	for _, proto := range []struct{ flag, status string }{{"--http2", "http/2 200"}, {"--http1.1", "http/1.1 200"}} {
		out := mustRun(t, p.dir, "curl", "-sS", proto.flag, "--resolve", resolve, "--cacert", "ca.pem",
			"--cert", "client.pem", "--key", "client-key.pem", "-D", "-", url)
		for _, want := range []string{proto.status, "strict-transport-security: max-age=63072000", `"path":"/hello"`} {
			if !strings.Contains(strings.ToLower(out), want) {
				t.Errorf("curl %s with certificate: output lacks %q:\n%s", proto.flag, want, out)
			}
		}
	}
	out, err := run(t, p.dir, "curl", "-sS", "--resolve", resolve, "--cacert", "ca.pem", url)
	if err == nil {
		t.Fatalf("curl without a certificate succeeded:\n%s", out)
	}
	// The gateway lingers after a refusal so that curl reads the alert
	// instead of a connection reset.
	if !strings.Contains(out, "alert bad certificate") {
		t.Errorf("curl without certificate: expected a TLS alert, got:\n%s", out)
	}
	if !strings.Contains(g.auditLog(), "no client certificate presented") {
		t.Errorf("audit log lacks the refusal:\n%s", g.auditLog())
	}
}

func TestOpenSSLClient(t *testing.T) {
	requireOpenSSL(t)
	p := newPKI(t)
	p.client.Write(t, p.dir, "client")
	g := startGateway(t, p.dir, baseConfig(p, newBackend(t).URL, ""))
	// s_client sends one request, so that the server's verdict on the
	// client certificate is seen (in TLS 1.3 it comes after the handshake).
	sclient := func(args ...string) (string, error) {
		base := []string{"s_client", "-connect", g.addr, "-servername", "localhost", "-CAfile", "ca.pem",
			"-cert", "client.pem", "-cert_chain", "client.pem", "-key", "client-key.pem", "-ign_eof"}
		return runIn(t, p.dir, "GET /s_client HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", "openssl", append(base, args...)...)
	}
	out, err := sclient("-tls1_3", "-showcerts")
	if err != nil {
		t.Fatalf("TLS 1.3: %v\n%s", err, out)
	}
	if n := strings.Count(out, "-----BEGIN CERTIFICATE-----"); n != 2 {
		t.Errorf("server sent %d certificates, want 2 (leaf + intermediate)", n)
	}
	for _, want := range []string{"New, TLSv1.3, Cipher is TLS_AES_128_GCM_SHA256", "Verify return code: 0 (ok)", "HTTP/1.1 200 OK", "Server Temp Key: X25519"} {
		if !strings.Contains(out, want) {
			t.Errorf("TLS 1.3 output lacks %q:\n%s", want, out)
		}
	}
	out, err = sclient("-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256")
	if err != nil || !strings.Contains(out, "Cipher is ECDHE-ECDSA-AES128-GCM-SHA256") || !strings.Contains(out, "HTTP/1.1 200 OK") {
		t.Errorf("TLS 1.2 AEAD suite: %v\n%s", err, out)
	}
	if !strings.Contains(out, "Compression: NONE") {
		t.Errorf("TLS 1.2: compression not NONE:\n%s", out)
	}
	for _, args := range [][]string{
		{"-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"},
		{"-tls1", "-cipher", "DEFAULT@SECLEVEL=0"},
		{"-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA256"},
		{"-tls1_2", "-cipher", "AES128-GCM-SHA256"}, // static RSA key exchange
	} {
		if out, _ := sclient(args...); strings.Contains(out, "HTTP/1.1 200") || strings.Contains(out, "Cipher is ECDHE") {
			t.Errorf("openssl s_client %s was accepted:\n%s", strings.Join(args, " "), out)
		}
	}
}

// A CA and certificates made with the plain openssl commands a user would
// type work as trusted_cas and as the server certificate; keys in PKCS#1
// (genrsa -traditional), SEC1 (ecparam) and PKCS#8 (genpkey) all load.
func TestOpenSSLMadePKI(t *testing.T) {
	requireOpenSSL(t)
	requireCurl(t)
	dir := t.TempDir()
	sh := func(args ...string) { mustRun(t, dir, "openssl", args...) }
	sh("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ca.key")
	sh("req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=Acme Root CA/O=Acme", "-days", "30", "-out", "ca.crt")
	writeFile(t, dir, "server.ext", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n")
	writeFile(t, dir, "client.ext", "extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n")
	sh("genrsa", "-traditional", "-out", "server.key", "2048")
	sh("req", "-new", "-key", "server.key", "-subj", "/CN=localhost", "-out", "server.csr")
	sh("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "30", "-extfile", "server.ext", "-out", "server.crt")
	sh("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "client.key")
	sh("req", "-new", "-key", "client.key", "-subj", "/CN=acme-client/O=Acme", "-out", "client.csr")
	sh("x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "30", "-extfile", "client.ext", "-out", "client.crt")
	if key := mustRun(t, dir, "head", "-1", "server.key"); !strings.Contains(key, "RSA PRIVATE KEY") {
		t.Fatalf("expected a PKCS#1 server key, got %q", key)
	}

	be := newBackend(t)
	g := startGateway(t, dir, `server_tls:
  certificates: [{cert: server.crt, key: server.key}]
client_auth:
  mode: require
  trusted_cas: [ca.crt]
identity_headers: []
routes:
  - name: all
    backend: `+be.URL+"\n")
	_, port, _ := strings.Cut(g.addr, ":")
	out := mustRun(t, dir, "curl", "-sS", "--resolve", "localhost:"+port+":127.0.0.1", "--cacert", "ca.crt",
		"--cert", "client.crt", "--key", "client.key", "https://localhost:"+port+"/openssl")
	var e echoed
	if err := json.Unmarshal([]byte(out), &e); err != nil || e.Path != "/openssl" {
		t.Fatalf("curl with openssl-made certificates: %v\n%s", err, out)
	}
	if !strings.Contains(g.auditLog(), `"subject":"CN=acme-client,O=Acme"`) {
		t.Errorf("audit log lacks the client subject:\n%s", g.auditLog())
	}
}
