package pki

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCurlClientCertificate has curl present an issued client certificate,
// as PEM with an encrypted key and as PKCS#12, to a server using an issued
// server certificate that requires client certificates from the CA.
func TestCurlClientCertificate(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	ca := newCA(t, InitOptions{Intermediate: true})
	srvCert, err := ca.Issue(IssueRequest{Profile: ProfileServer, CN: "localhost", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	client, err := ca.Issue(IssueRequest{Profile: ProfileClient, CN: "partner-a"})
	if err != nil {
		t.Fatal(err)
	}
	srvKey, _ := srvCert.KeyPEM(nil)
	pair, err := tls.X509KeyPair(srvCert.ChainPEM(), srvKey)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Root())
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("hello " + r.TLS.PeerCertificates[0].Subject.CommonName))
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: roots}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	defer srv.Close()

	tmp := t.TempDir()
	caFile := filepath.Join(ca.Dir(), RootCertFile)
	keyPEM, _ := client.KeyPEM([]byte("key secret"))
	p12, err := client.PKCS12("p12 secret", false)
	if err != nil {
		t.Fatal(err)
	}
	certFile := writeFile(t, filepath.Join(tmp, "c.pem"), client.ChainPEM())
	keyFile := writeFile(t, filepath.Join(tmp, "c-key.pem"), keyPEM)
	p12File := writeFile(t, filepath.Join(tmp, "c.p12"), p12)
	for name, args := range map[string][]string{
		"PEM":    {"--cert", certFile, "--key", keyFile, "--pass", "key secret"},
		"PKCS12": {"--cert", p12File + ":p12 secret", "--cert-type", "P12"},
	} {
		out, err := exec.Command("curl", append([]string{"-sS", "--fail", "--cacert", caFile, srv.URL}, args...)...).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "hello partner-a" {
			t.Errorf("curl with %s client certificate: %v\n%s", name, err, out)
		}
	}
	if out, err := exec.Command("curl", "-sS", "--fail", "--cacert", caFile, srv.URL).CombinedOutput(); err == nil {
		t.Errorf("curl without a client certificate got in:\n%s", out)
	}
}
