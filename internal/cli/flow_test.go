package cli

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The whole flow a team follows, with gatehouse alone: create a CA, issue
// server and client certificates with the CLI, put them on the gateway,
// call it with curl using the PEM files and the PKCS#12 bundle, revoke the
// client with `gatehouse ca revoke` while `gatehouse ca serve` publishes
// the CRL, see the CRL say so and the gateway cut the client off.
func TestCAToGatewayFlow(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	dir := t.TempDir()
	pki := filepath.Join(dir, "pki")
	env := map[string]string{"GATEHOUSE_CA_PASSPHRASE": caTestPass}
	caWrite(t, filepath.Join(dir, "p12-pass.txt"), "bundle-secret\n")
	caMust(t, env, "ca", "init", "--dir", pki, "--name", "Flow Root", "--intermediate")
	caMust(t, env, "ca", "issue", "--dir", pki, "--profile", "server", "--cn", "localhost", "--dns", "localhost", "--ip", "127.0.0.1", "--out", filepath.Join(dir, "server"))
	caMust(t, env, "ca", "issue", "--dir", pki, "--profile", "client", "--cn", "partner-a", "--uri", "spiffe://example.com/partner-a",
		"--out", filepath.Join(dir, "partner"), "--p12", "--p12-password-file", filepath.Join(dir, "p12-pass.txt"))
	backend := newEchoBackend(t)
	publisher := caServe(t, env, pki)
	cfg := caWrite(t, filepath.Join(dir, "gatehouse.yaml"), fmt.Sprintf(`listen: "127.0.0.1:0"
server_tls:
  certificates: [{cert: server.pem, key: server-key.pem}]
client_auth:
  mode: require
  trusted_cas: [pki/ca.pem]
  revocation: { crl: ["%s/crl"], refresh: 1s }
identity_headers: [xfcc]
routes:
  - name: api
    backend: %s
    allow:
      - spiffe_id: "spiffe://example.com/*"
log: { audit: off }
`, publisher, backend))
	addr, _ := startServe(t, cfg)
	_, port, _ := net.SplitHostPort(addr)
	url := "https://localhost:" + port + "/orders"
	curl := func(args ...string) (string, error) {
		base := []string{"-sS", "--resolve", "localhost:" + port + ":127.0.0.1", "--cacert", filepath.Join(pki, "ca.pem")}
		out, err := exec.Command("curl", append(append(base, args...), url)...).CombinedOutput()
		return string(out), err
	}
	for name, args := range map[string][]string{
		"pem": {"--cert", filepath.Join(dir, "partner.pem"), "--key", filepath.Join(dir, "partner-key.pem")},
		"p12": {"--cert-type", "P12", "--cert", filepath.Join(dir, "partner.p12") + ":bundle-secret"},
	} {
		out, err := curl(args...)
		if err != nil || !strings.Contains(out, "URI=spiffe://example.com/partner-a") {
			t.Errorf("curl with %s: %v\n%s", name, err, out)
		}
	}
	if out, err := curl(); err == nil {
		t.Errorf("curl without a certificate got in:\n%s", out)
	}

	list := jsonList(t, "ca", "list", "--dir", pki, "--json")
	var partnerSerial string
	for _, e := range list {
		if strings.Contains(e.Subject, "partner-a") {
			partnerSerial = e.Serial
		}
	}
	if partnerSerial == "" {
		t.Fatalf("partner-a not in the inventory: %+v", list)
	}
	caMust(t, env, "ca", "revoke", "--dir", pki, "--serial", partnerSerial, "--reason", "keyCompromise")
	crl := caMustOpenSSL(t, "crl", "-in", filepath.Join(pki, "ca.crl"), "-noout", "-text")
	if !strings.Contains(strings.ToLower(crl), strings.ToLower(partnerSerial)) || !strings.Contains(crl, "Key Compromise") {
		t.Errorf("CRL does not list %s as key compromise:\n%s", partnerSerial, crl)
	}
	// The gateway fetches the published CRL every second: the revoked
	// client is refused within a few refreshes (bounded wait).
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := curl("--cert", filepath.Join(dir, "partner.pem"), "--key", filepath.Join(dir, "partner-key.pem"))
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("revoked client still served 15s after ca revoke:\n%s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// startServe runs `gatehouse serve` in-process and returns its address
// and its log (stderr).
func startServe(t *testing.T, cfg string) (string, *lockedBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout lockedBuffer
	stderr := &lockedBuffer{}
	env := &Env{Stdout: &stdout, Stderr: stderr, Getenv: func(string) string { return "" }, Ctx: ctx}
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, env, cfg, func(a net.Addr) { ready <- a }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	select {
	case a := <-ready:
		return a.String(), stderr
	case err := <-done:
		t.Fatalf("serve exited: %v\n%s", err, stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not start")
	}
	return "", nil
}

// newEchoBackend serves EchoHandler on 127.0.0.1 and returns its URL.
func newEchoBackend(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(EchoHandler())
	t.Cleanup(srv.Close)
	return srv.URL
}
