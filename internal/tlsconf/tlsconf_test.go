package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testpki"
)

func TestServerConfig(t *testing.T) {
	c := ServerConfig(Params{})
	if c.MinVersion != tls.VersionTLS12 || c.MaxVersion != tls.VersionTLS13 {
		t.Errorf("versions %x-%x", c.MinVersion, c.MaxVersion)
	}
	if c.CurvePreferences[0] != tls.X25519MLKEM768 {
		t.Errorf("first group %v, want X25519MLKEM768", c.CurvePreferences[0])
	}
	insecure := map[uint16]bool{}
	for _, s := range tls.InsecureCipherSuites() {
		insecure[s.ID] = true
	}
	for _, id := range c.CipherSuites {
		name := tls.CipherSuiteName(id)
		if insecure[id] || !strings.Contains(name, "ECDHE") || !(strings.Contains(name, "GCM") || strings.Contains(name, "CHACHA20")) {
			t.Errorf("suite %s is not ECDHE+AEAD", name)
		}
	}
	if !slices.Equal(c.NextProtos, []string{"h2", "http/1.1"}) {
		t.Errorf("ALPN %v", c.NextProtos)
	}
	if ServerConfig(Params{MinVersion: tls.VersionTLS10}).MinVersion != tls.VersionTLS12 {
		t.Error("a lower minimum was accepted")
	}
	if _, err := Version("1.1"); err == nil {
		t.Error("Version(1.1) accepted")
	}
}

func TestVerifier(t *testing.T) {
	root := testpki.NewRoot(t, "root")
	inter := root.Intermediate(t, "inter")
	other := testpki.NewRoot(t, "other")
	now := time.Now()
	good := inter.Client(t, "good")
	v := &Verifier{Roots: testpki.Pool(root), Required: true, Now: func() time.Time { return now }}
	for _, tc := range []struct {
		name   string
		certs  []*x509.Certificate
		reason string // "" = accepted
	}{
		{"leaf and intermediate", good.Chain, ""},
		{"leaf without its intermediate", good.Chain[:1], "not issued by a trusted client CA"},
		{"foreign", other.Client(t, "x").Chain, "not issued by a trusted client CA"},
		{"serverAuth only", inter.Leaf(t, testpki.LeafOptions{CN: "s", EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}).Chain, "clientAuth extended key usage is missing"},
		{"expired", inter.Leaf(t, testpki.LeafOptions{CN: "e", NotBefore: now.Add(-2 * time.Hour), NotAfter: now.Add(-time.Minute)}).Chain, "expired or not yet valid"},
		{"not yet valid", inter.Leaf(t, testpki.LeafOptions{CN: "f", NotBefore: now.Add(time.Hour), NotAfter: now.Add(2 * time.Hour)}).Chain, "expired or not yet valid"},
		{"the root itself", []*x509.Certificate{root.Cert}, "a CA certificate cannot be used as a client certificate"},
		{"no EKU extension", inter.Leaf(t, testpki.LeafOptions{CN: "n", EKU: []x509.ExtKeyUsage{}}).Chain, "clientAuth extended key usage is missing"},
		{"none", nil, "no client certificate presented"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := v.Verify(tc.certs)
			if tc.reason == "" {
				if err != nil || id == nil || id.Leaf != tc.certs[0] || id.Anchor() != root.Cert {
					t.Fatalf("id %v, err %v", id, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("err %v, want %q", err, tc.reason)
			}
			var ve *VerifyError
			if len(tc.certs) > 0 && (!errors.As(err, &ve) || !strings.Contains(err.Error(), "serial ")) {
				t.Errorf("error does not name the certificate: %v", err)
			}
		})
	}
	opt := &Verifier{Roots: testpki.Pool(root)}
	if id, err := opt.Verify(nil); id != nil || err != nil {
		t.Errorf("optional, no certificate: %v, %v", id, err)
	}
	if _, err := (&Verifier{}).Verify(good.Chain); err == nil {
		t.Error("a verifier without roots accepted a chain")
	}
}
