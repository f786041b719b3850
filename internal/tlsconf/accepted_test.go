package tlsconf

import (
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/testpki"
)

// A verifier answers certificates it accepted before from memory, with the
// same identity, and verifies again in full whenever the answer could
// differ: another set of certificates, a certificate of the chain out of
// its validity, the TTL passed. Refusals are never remembered.
func TestAcceptedChains(t *testing.T) {
	clock := testpki.NewClock()
	root := testpki.NewRoot(t, "Accepted Root")
	other := testpki.NewRoot(t, "Other Root")
	leaf := certWith(t, root, ecKey(t, elliptic.P256()), nil)
	v := &Verifier{Roots: testpki.Pool(root), Required: true, Now: clock.Now}

	id1, err := v.Verify([]*x509.Certificate{leaf})
	if err != nil {
		t.Fatal(err)
	}
	id2, err := v.Verify([]*x509.Certificate{leaf})
	if err != nil {
		t.Fatal(err)
	}
	if id1 != id2 {
		t.Fatal("the same certificate was verified again in full: not remembered")
	}
	fresh, err := (&Verifier{Roots: testpki.Pool(root), Required: true, Now: clock.Now}).Verify([]*x509.Certificate{leaf})
	if err != nil {
		t.Fatal(err)
	}
	sameIdentity(t, id2, fresh)

	// Other bytes presented: another key, verified in full.
	withRoot, err := v.Verify([]*x509.Certificate{leaf, root.Cert})
	if err != nil {
		t.Fatal(err)
	}
	if withRoot == id1 {
		t.Fatal("a different certificate list was answered from memory")
	}

	// A refusal is not remembered, and does not disturb what was accepted.
	stranger := certWith(t, other, ecKey(t, elliptic.P256()), nil)
	for range 2 {
		_, err := v.Verify([]*x509.Certificate{stranger})
		wantCode(t, err, CodeUntrustedIssuer)
	}
	if id, err := v.Verify([]*x509.Certificate{leaf}); err != nil || id != id1 {
		t.Fatalf("accepted certificate after refusals: %v (same identity %v)", err, id == id1)
	}

	// The TTL: verified in full again, still accepted.
	clock.Add(acceptedTTL + time.Second)
	id3, err := v.Verify([]*x509.Certificate{leaf})
	if err != nil {
		t.Fatal(err)
	}
	if id3 == id1 {
		t.Fatal("answered from memory after acceptedTTL")
	}
	sameIdentity(t, id3, fresh)
}

// A certificate of the chain that expires (here the intermediate, before
// the leaf and before the TTL) is refused at once, as a full verification
// would: the remembered answer holds only while every certificate of the
// chain is valid.
func TestAcceptedChainsExpire(t *testing.T) {
	clock := testpki.NewClock()
	root := testpki.NewRoot(t, "Accepted Root")
	inter := shortCA(t, root, clock.Now().Add(5*time.Minute))
	leaf := certWith(t, inter, ecKey(t, elliptic.P256()), func(c *x509.Certificate) {
		c.NotBefore, c.NotAfter = clock.Now().Add(-time.Hour), clock.Now().Add(time.Hour)
	})
	v := &Verifier{Roots: testpki.Pool(root), Required: true, Now: clock.Now}
	chain := []*x509.Certificate{leaf, inter.Cert}
	for range 2 {
		if _, err := v.Verify(chain); err != nil {
			t.Fatal(err)
		}
	}
	clock.Add(6 * time.Minute) // within acceptedTTL, past the intermediate
	_, err := v.Verify(chain)
	wantCode(t, err, CodeExpired)

	// And a leaf that is not yet valid at a time before it was accepted
	// (a clock set back) is verified in full, and refused.
	clock2 := testpki.NewClock()
	late := certWith(t, root, ecKey(t, elliptic.P256()), func(c *x509.Certificate) {
		c.NotBefore, c.NotAfter = clock2.Now().Add(-time.Minute), clock2.Now().Add(time.Hour)
	})
	v2 := &Verifier{Roots: testpki.Pool(root), Required: true, Now: clock2.Now}
	if _, err := v2.Verify([]*x509.Certificate{late}); err != nil {
		t.Fatal(err)
	}
	clock2.Add(-2 * time.Minute)
	_, err = v2.Verify([]*x509.Certificate{late})
	wantCode(t, err, CodeNotYetValid)
}

func sameIdentity(t *testing.T, a, b *identity.Identity) {
	t.Helper()
	if a.FingerprintSHA256 != b.FingerprintSHA256 || a.SPKISHA256 != b.SPKISHA256 || a.Subject() != b.Subject() ||
		a.Serial() != b.Serial() || len(a.Chain) != len(b.Chain) {
		t.Fatalf("remembered identity differs from a fresh verification: %+v vs %+v", a, b)
	}
	for i := range a.Chain {
		if !a.Chain[i].Equal(b.Chain[i]) {
			t.Fatalf("chain certificate %d differs", i)
		}
	}
}

// shortCA is an intermediate under parent that expires at notAfter.
func shortCA(t *testing.T, parent *testpki.CA, notAfter time.Time) *testpki.CA {
	t.Helper()
	key := testpki.NewKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "Short Intermediate"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent.Cert, key.Public(), parent.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testpki.CA{Cert: c, Key: key, Parents: []*testpki.CA{parent}}
}

// BenchmarkVerify is one client chain (leaf under an intermediate)
// verified in full (a verifier that has not seen it) and answered from
// memory (the same verifier again).
func BenchmarkVerify(b *testing.B) {
	root := testpki.NewRoot(b, "Bench Root")
	inter := root.Intermediate(b, "Bench Issuing")
	leaf := inter.Client(b, "bench-client")
	certs := []*x509.Certificate{leaf.Cert, inter.Cert}
	pool := testpki.Pool(root)
	b.Run("full", func(b *testing.B) {
		for b.Loop() {
			if _, err := (&Verifier{Roots: pool, Required: true}).Verify(certs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("remembered", func(b *testing.B) {
		v := &Verifier{Roots: pool, Required: true}
		for b.Loop() {
			if _, err := v.Verify(certs); err != nil {
				b.Fatal(err)
			}
		}
	})
}
