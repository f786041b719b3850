//go:build pkcs11

package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/keystore"
	"github.com/gatehouse/gatehouse/internal/testhsm"
	"github.com/gatehouse/gatehouse/internal/testpki"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testhsm.Cleanup()
	os.Exit(code)
}

// TestServedKeyInToken serves a certificate whose private key was
// generated in a real SoftHSM2 token and is named in the configuration by
// its pkcs11: URI; curl completes a request through the gateway, so the
// handshake's signature was made inside the token.
func TestServedKeyInToken(t *testing.T) {
	requireCurl(t)
	tok := testhsm.Get(t)
	uri := tok.URI("gw-served")
	u, err := keystore.ParsePKCS11URI(uri)
	if err != nil {
		t.Fatal(err)
	}
	key, err := keystore.GeneratePKCS11(u, keystore.AlgECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	defer key.Close()
	p := newPKI(t)
	p.client.Write(t, p.dir, "client")
	leaf := p.inter.Leaf(t, testpki.LeafOptions{CN: "localhost", DNS: []string{"localhost"},
		EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, Key: key})
	testpki.WriteFile(t, filepath.Join(p.dir, "hsm.pem"), leaf.ChainPEM())
	be := newBackend(t)
	cfg := strings.Replace(baseConfig(p, be.URL, ""), "cert: server.pem\n      key: server-key.pem",
		"cert: hsm.pem\n      key: \""+uri+"\"", 1)
	g := startGateway(t, p.dir, cfg)
	_, port, _ := strings.Cut(g.addr, ":")
	out := mustRun(t, p.dir, "curl", "-sS", "--resolve", "localhost:"+port+":127.0.0.1", "--cacert", "ca.pem",
		"--cert", "client.pem", "--key", "client-key.pem", "-D", "-", "https://localhost:"+port+"/hsm")
	if !strings.Contains(out, " 200") || !strings.Contains(out, `"path":"/hsm"`) {
		t.Fatalf("curl through the gateway with the key in the token:\n%s", out)
	}
	// Hot reload onto a new token key and its certificate: the next
	// handshake is made with the new key, inside the token.
	u2, _ := keystore.ParsePKCS11URI(tok.URI("gw-served-2"))
	key2, err := keystore.GeneratePKCS11(u2, keystore.AlgECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	defer key2.Close()
	leaf2 := p.inter.Leaf(t, testpki.LeafOptions{CN: "localhost", DNS: []string{"localhost"},
		EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, Key: key2})
	testpki.WriteFile(t, filepath.Join(p.dir, "hsm.pem"), leaf2.ChainPEM())
	reload(t, g, p.dir, strings.Replace(cfg, uri, u2.String(), 1))
	conn, err := tls.Dial("tcp", g.addr, p.clientTLS(p.client, "localhost"))
	if err != nil {
		t.Fatalf("handshake after reload: %v", err)
	}
	got := conn.ConnectionState().PeerCertificates[0]
	conn.Close()
	if !got.Equal(leaf2.Cert) {
		t.Errorf("after reload the gateway serves %q serial %x, want the new certificate", got.Subject, got.SerialNumber)
	}
	for _, f := range listFiles(t, p.dir) {
		if strings.HasPrefix(f, "hsm") && strings.Contains(f, "key") {
			t.Errorf("key file %s written for a token key", f)
		}
	}
}

func listFiles(t *testing.T, dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}
