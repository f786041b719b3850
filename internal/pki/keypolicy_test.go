package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/keypolicy"
)

func csrFor(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "client-a"},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// The CA issues only keys the gateway accepts (issue 9: `ca sign` issued
// certificates for RSA-1024, P-224 and RSA-16384 keys).
func TestSignKeyPolicy(t *testing.T) {
	ca := newCA(t, InitOptions{})
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for name, key := range map[string]crypto.Signer{"RSA-1024": rsa1024, "P-224": p224} {
		csrPEM := csrFor(t, key)
		_, err := ParseCSR(csrPEM)
		if !errors.Is(err, ErrBadCSR) || !strings.Contains(err.Error(), keypolicy.Allowed) || !strings.Contains(err.Error(), strings.TrimPrefix(name, "P-")) {
			t.Errorf("%s: ParseCSR: %v", name, err)
		}
		// Sign on its own (the enrollment API's path) refuses it too.
		block, _ := pem.Decode(csrPEM)
		csr, _ := x509.ParseCertificateRequest(block.Bytes)
		if _, err := ca.Sign(csr, SignRequest{Profile: ProfileClient}); !errors.Is(err, ErrBadCSR) || !strings.Contains(err.Error(), keypolicy.Allowed) {
			t.Errorf("%s: Sign: %v", name, err)
		}
	}
	csr, err := ParseCSR(csrFor(t, p256))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Sign(csr, SignRequest{Profile: ProfileClient}); err != nil {
		t.Errorf("P-256: %v", err)
	}
	// RSA-16384: no such key needs generating to test the one place every
	// issuance goes through.
	n := new(big.Int).Lsh(big.NewInt(1), 16383)
	tmpl, err := ca.leafTemplate(ProfileClient, "huge", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.sign(tmpl, &rsa.PublicKey{N: n.Add(n, big.NewInt(1)), E: 65537}, ProfileClient); !errors.Is(err, keypolicy.ErrKey) || !strings.Contains(err.Error(), "RSA-16384") {
		t.Errorf("RSA-16384: %v", err)
	}
}

// What the CA generates, the gateway accepts: every key type is inside
// the one key policy.
func TestKeyTypesInsidePolicy(t *testing.T) {
	for _, kt := range KeyTypes() {
		k, err := kt.Generate()
		if err != nil {
			t.Fatal(err)
		}
		if err := keypolicy.Check(k.Public()); err != nil {
			t.Errorf("%s: %v", kt, err)
		}
	}
}
