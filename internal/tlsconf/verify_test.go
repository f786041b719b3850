package tlsconf

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/revocation"
	"github.com/gatehouse/gatehouse/internal/testpki"
)

// certWith signs a leaf under ca from a template the test shapes freely.
func certWith(t testing.TB, ca *testpki.CA, pub crypto.PublicKey, edit func(*x509.Certificate)) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "c"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if edit != nil {
		edit(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ecKey(t testing.TB, c elliptic.Curve) crypto.PublicKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &k.PublicKey
}

// rsaPub is an RSA public key of n bits. Its private half is never needed:
// the CA signs the certificate, and Verify refuses before any handshake.
func rsaPub(n int) crypto.PublicKey {
	m := new(big.Int).Lsh(big.NewInt(1), uint(n-1))
	return &rsa.PublicKey{N: m.Add(m, big.NewInt(1)), E: 65537}
}

func wantCode(t *testing.T, err error, code Code) {
	t.Helper()
	if got := ReasonCode(err); got != code {
		t.Fatalf("ReasonCode = %q, want %q (err: %v)", got, code, err)
	}
	if code == "" {
		return
	}
	var ve *VerifyError
	if code != CodeNoCertificate && (!errors.As(err, &ve) || !strings.Contains(err.Error(), "serial ")) {
		t.Errorf("error does not name the certificate: %v", err)
	}
}

// The root cause is reported first: the chain, then validity, then usage
// (issue 12 item 2: an untrusted certificate without EKU was reported as
// "clientAuth missing", and after that fix failed again as untrusted).
func TestVerifyOrderAndCodes(t *testing.T) {
	root := testpki.NewRoot(t, "root")
	inter := root.Intermediate(t, "inter")
	other := testpki.NewRoot(t, "other")
	now := time.Now()
	v := &Verifier{Roots: testpki.Pool(root), Required: true, Now: func() time.Time { return now }}
	p256 := func() crypto.PublicKey { return ecKey(t, elliptic.P256()) }
	chain := func(c *x509.Certificate, ca *testpki.CA) []*x509.Certificate {
		out := []*x509.Certificate{c}
		if len(ca.Parents) > 0 {
			out = append(out, ca.Cert)
		}
		return out
	}
	noEKU := func(c *x509.Certificate) { c.ExtKeyUsage = nil }
	serverOnly := func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} }
	expired := func(c *x509.Certificate) { c.NotBefore, c.NotAfter = now.Add(-3*time.Hour), now.Add(-2*time.Hour) }
	future := func(c *x509.Certificate) { c.NotBefore, c.NotAfter = now.Add(2*time.Hour), now.Add(3*time.Hour) }
	both := func(fs ...func(*x509.Certificate)) func(*x509.Certificate) {
		return func(c *x509.Certificate) {
			for _, f := range fs {
				f(c)
			}
		}
	}
	for _, tc := range []struct {
		name  string
		certs []*x509.Certificate
		code  Code
	}{
		{"good", chain(certWith(t, inter, p256(), nil), inter), ""},
		{"untrusted, no EKU", chain(certWith(t, other, p256(), noEKU), other), CodeUntrustedIssuer},
		{"untrusted, serverAuth only", chain(certWith(t, other, p256(), serverOnly), other), CodeUntrustedIssuer},
		{"untrusted and expired", chain(certWith(t, other, p256(), expired), other), CodeUntrustedIssuer},
		{"untrusted, expired, no EKU", chain(certWith(t, other, p256(), both(expired, noEKU)), other), CodeUntrustedIssuer},
		{"untrusted RSA-1024", chain(certWith(t, other, rsaPub(1024), nil), other), CodeUntrustedIssuer},
		{"missing intermediate", []*x509.Certificate{certWith(t, inter, p256(), nil)}, CodeUntrustedIssuer},
		{"expired, no EKU", chain(certWith(t, inter, p256(), both(expired, noEKU)), inter), CodeExpired},
		{"not yet valid, serverAuth", chain(certWith(t, inter, p256(), both(future, serverOnly)), inter), CodeNotYetValid},
		{"expired", chain(certWith(t, inter, p256(), expired), inter), CodeExpired},
		{"no EKU", chain(certWith(t, inter, p256(), noEKU), inter), CodeMissingClientAuthEKU},
		{"serverAuth only", chain(certWith(t, inter, p256(), serverOnly), inter), CodeMissingClientAuthEKU},
		{"keyUsage without digitalSignature", chain(certWith(t, inter, p256(), func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageKeyEncipherment }), inter), CodeBadKeyUsage},
		{"keyUsage keyAgreement only", chain(certWith(t, inter, p256(), func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageKeyAgreement }), inter), CodeBadKeyUsage},
		{"no keyUsage extension", chain(certWith(t, inter, p256(), func(c *x509.Certificate) { c.KeyUsage = 0 }), inter), ""},
		{"RSA-1024", chain(certWith(t, inter, rsaPub(1024), nil), inter), CodeWeakKey},
		{"RSA-2048", chain(certWith(t, inter, rsaPub(2048), nil), inter), ""},
		{"RSA-4096", chain(certWith(t, inter, rsaPub(4096), nil), inter), ""},
		{"RSA-8192", chain(certWith(t, inter, rsaPub(8192), nil), inter), CodeWeakKey},
		{"P-224", chain(certWith(t, inter, ecKey(t, elliptic.P224()), nil), inter), CodeWeakKey},
		{"P-384", chain(certWith(t, inter, ecKey(t, elliptic.P384()), nil), inter), ""},
		{"P-521", chain(certWith(t, inter, ecKey(t, elliptic.P521()), nil), inter), ""},
		{"the root itself", []*x509.Certificate{root.Cert}, CodeCAAsClient},
		{"SPIFFE ID with fragment", chain(certWith(t, inter, p256(), func(c *x509.Certificate) {
			c.URIs = []*url.URL{{Scheme: "spiffe", Host: "example.com", Path: "/billing", Fragment: "admin"}}
		}), inter), CodeBadSPIFFEID},
		{"SPIFFE ID with query", chain(certWith(t, inter, p256(), func(c *x509.Certificate) {
			c.URIs = []*url.URL{{Scheme: "spiffe", Host: "example.com", Path: "/billing", RawQuery: "x=1"}}
		}), inter), CodeBadSPIFFEID},
		// net/url drops an empty "#": only the raw SAN shows it.
		{"SPIFFE ID with an empty fragment", chain(certWith(t, inter, p256(), rawURISAN("spiffe://example.com/billing#")), inter), CodeBadSPIFFEID},
		{"SPIFFE ID with an empty query", chain(certWith(t, inter, p256(), rawURISAN("spiffe://example.com/billing?")), inter), CodeBadSPIFFEID},
		{"SPIFFE ID, raw", chain(certWith(t, inter, p256(), rawURISAN("spiffe://example.com/billing")), inter), ""},
		{"SPIFFE ID", chain(certWith(t, inter, p256(), func(c *x509.Certificate) {
			c.URIs = []*url.URL{{Scheme: "spiffe", Host: "example.com", Path: "/billing"}}
		}), inter), ""},
		{"none", nil, CodeNoCertificate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := v.Verify(tc.certs)
			wantCode(t, err, tc.code)
			if tc.code == "" && (id == nil || id.Leaf != tc.certs[0]) {
				t.Fatalf("identity %v", id)
			}
		})
	}
}

// The fix for the commonest refusal is in the log line.
func TestMissingEKUTeaches(t *testing.T) {
	root := testpki.NewRoot(t, "root")
	v := &Verifier{Roots: testpki.Pool(root)}
	_, err := v.Verify([]*x509.Certificate{certWith(t, root, ecKey(t, elliptic.P256()), func(c *x509.Certificate) { c.ExtKeyUsage = nil })})
	for _, want := range []string{"extendedKeyUsage=clientAuth", "-extfile", "gatehouse ca sign", "allow_missing_eku"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
}

// allow_missing_eku accepts a certificate with no EKU extension at all,
// and nothing else: an EKU extension without clientAuth is still refused,
// and so is an untrusted or expired certificate.
func TestAllowMissingEKU(t *testing.T) {
	root := testpki.NewRoot(t, "root")
	other := testpki.NewRoot(t, "other")
	v := &Verifier{Roots: testpki.Pool(root), AllowMissingEKU: true}
	p := ecKey(t, elliptic.P256())
	_, err := v.Verify([]*x509.Certificate{certWith(t, root, p, func(c *x509.Certificate) { c.ExtKeyUsage = nil; c.KeyUsage = 0 })})
	wantCode(t, err, "")
	_, err = v.Verify([]*x509.Certificate{certWith(t, root, p, func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} })})
	wantCode(t, err, CodeMissingClientAuthEKU)
	_, err = v.Verify([]*x509.Certificate{certWith(t, root, p, func(c *x509.Certificate) {
		c.ExtKeyUsage = nil
		c.UnknownExtKeyUsage = []asn1.ObjectIdentifier{{1, 2, 3}}
	})})
	wantCode(t, err, CodeMissingClientAuthEKU)
	_, err = v.Verify([]*x509.Certificate{certWith(t, other, p, func(c *x509.Certificate) { c.ExtKeyUsage = nil })})
	wantCode(t, err, CodeUntrustedIssuer)
	// A CA above that restricts EKUs to serverAuth still stops it.
	strict := newRestrictedIntermediate(t, root, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth})
	_, err = v.Verify([]*x509.Certificate{certWith(t, strict, p, func(c *x509.Certificate) { c.ExtKeyUsage = nil }), strict.Cert})
	wantCode(t, err, CodeMissingClientAuthEKU)
	_, err = (&Verifier{Roots: testpki.Pool(root)}).Verify([]*x509.Certificate{certWith(t, strict, p, nil), strict.Cert})
	wantCode(t, err, CodeMissingClientAuthEKU)
}

// newRestrictedIntermediate is an intermediate whose EKU extension lists ekus.
func newRestrictedIntermediate(t testing.TB, parent *testpki.CA, ekus []x509.ExtKeyUsage) *testpki.CA {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "restricted"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true, ExtKeyUsage: ekus,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent.Cert, &key.PublicKey, parent.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &testpki.CA{Cert: c, Key: key, Parents: []*testpki.CA{parent}}
}

// A long chain is refused before any signature is checked: here every
// certificate but the leaf is garbage-signed, and the answer is still
// chain_too_long, not untrusted. An RSA-8192 intermediate likewise.
func TestChainCapBeforeSignatures(t *testing.T) {
	root := testpki.NewRoot(t, "root")
	v := &Verifier{Roots: testpki.Pool(root)}
	leaf := certWith(t, root, ecKey(t, elliptic.P256()), nil)
	junk := testpki.NewRoot(t, "junk") // signs nothing trusted
	chain := []*x509.Certificate{leaf}
	for range 50 {
		chain = append(chain, junk.Cert)
	}
	_, err := v.Verify(chain)
	wantCode(t, err, CodeChainTooLong)
	if !strings.Contains(err.Error(), "max_chain_length") {
		t.Errorf("error does not name the setting: %v", err)
	}
	_, err = v.Verify(chain[:DefaultMaxChainLength])
	wantCode(t, err, "") // the leaf verifies; the extra certificates are unused
	_, err = (&Verifier{Roots: testpki.Pool(root), MaxChainLength: 2}).Verify(chain[:3])
	wantCode(t, err, CodeChainTooLong)

	big := certWith(t, junk, rsaPub(8192), func(c *x509.Certificate) { c.IsCA, c.BasicConstraintsValid = true, true })
	_, err = v.Verify([]*x509.Certificate{leaf, big})
	wantCode(t, err, CodeWeakKey)
}

// Revocation errors carry their own codes.
func TestReasonCodeOfRevocation(t *testing.T) {
	if c := ReasonCode(&revocation.RevokedError{}); c != CodeRevoked {
		t.Errorf("revoked: %q", c)
	}
	if c := ReasonCode(&revocation.UnavailableError{}); c != CodeRevocationUnknown {
		t.Errorf("unavailable: %q", c)
	}
	if c := ReasonCode(errors.New("x")); c != CodeInvalid {
		t.Errorf("other: %q", c)
	}
	if c := ReasonCode(nil); c != "" {
		t.Errorf("nil: %q", c)
	}
}

// rawURISAN sets the certificate's subjectAltName to one URI, encoded byte
// for byte as given (crypto/x509 would re-serialize a url.URL).
func rawURISAN(uri string) func(*x509.Certificate) {
	return func(c *x509.Certificate) {
		var b cryptobyte.Builder
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.Tag(6).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(uri)) })
		})
		c.URIs = nil
		c.ExtraExtensions = append(c.ExtraExtensions, pkix.Extension{Id: oidSubjectAltName, Value: b.BytesOrPanic()})
	}
}
