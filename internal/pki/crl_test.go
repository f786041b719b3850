package pki

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func issueClient(t testing.TB, ca *CA, cn string) *Issued {
	t.Helper()
	iss, err := ca.Issue(IssueRequest{Profile: ProfileClient, CN: cn})
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

func TestRevokeCRLWithOpenSSL(t *testing.T) {
	ctx := context.Background()
	ca := newCA(t, InitOptions{Intermediate: true})
	tmp := t.TempDir()
	good, bad := issueClient(t, ca, "good"), issueClient(t, ca, "bad")
	goodPEM := writeFile(t, filepath.Join(tmp, "good.pem"), good.ChainPEM())
	badPEM := writeFile(t, filepath.Join(tmp, "bad.pem"), bad.ChainPEM())

	before, err := ca.LatestCRL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := ca.Revoke(ctx, bad.Cert().SerialNumber, ReasonKeyCompromise)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Revoke(ctx, bad.Cert().SerialNumber, ReasonSuperseded); !errors.Is(err, ErrAlreadyRevoked) {
		t.Errorf("second revoke: %v", err)
	}
	if _, err := ca.Revoke(ctx, big.NewInt(12345), ReasonSuperseded); !errors.Is(err, ErrUnknownSerial) {
		t.Errorf("unknown serial: %v", err)
	}
	crlPath := filepath.Join(ca.Dir(), CRLFile)
	b, _ := os.ReadFile(crlPath)
	block, _ := pem.Decode(b)
	crl, err := x509.ParseRevocationList(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if crl.Number.Int64() <= before.Number || len(crl.RevokedCertificateEntries) != 1 ||
		crl.RevokedCertificateEntries[0].SerialNumber.Cmp(bad.Cert().SerialNumber) != 0 ||
		crl.RevokedCertificateEntries[0].ReasonCode != int(ReasonKeyCompromise) ||
		!crl.RevokedCertificateEntries[0].RevocationTime.Equal(rec.RevokedAt) {
		t.Errorf("CRL %d (before %d): %+v", crl.Number, before.Number, crl.RevokedCertificateEntries)
	}
	if err := crl.CheckSignatureFrom(ca.Issuer()); err != nil {
		t.Error(err)
	}
	text := mustOpenSSL(t, "crl", "-in", crlPath, "-text", "-noout")
	for _, want := range []string{
		"X509v3 CRL Number:", "X509v3 Authority Key Identifier:", "Next Update:", "Last Update:",
		"Serial Number: " + opensslSerial(bad.Cert().SerialNumber), "Key Compromise",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("openssl crl -text lacks %q:\n%s", want, text)
		}
	}
	verify := func(leaf string) (string, error) {
		return openssl(t, "verify", "-CAfile", filepath.Join(ca.Dir(), RootCertFile),
			"-untrusted", filepath.Join(ca.Dir(), IntermediateCertFile), "-crl_check", "-CRLfile", crlPath, leaf)
	}
	if out, err := verify(goodPEM); err != nil {
		t.Errorf("good certificate with -crl_check: %v\n%s", err, out)
	}
	if out, err := verify(badPEM); err == nil || !strings.Contains(out, "certificate revoked") {
		t.Errorf("revoked certificate with -crl_check: %v\n%s", err, out)
	}
}

func TestCurrentCRLResignsWhenStale(t *testing.T) {
	ctx := context.Background()
	clock := newClock()
	ca := newCA(t, InitOptions{Now: clock.Now})
	first, err := ca.CurrentCRL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Duration(ca.Settings().CRLValidity)/2 - time.Second)
	if c, _ := ca.CurrentCRL(ctx); c.Number != first.Number {
		t.Errorf("fresh CRL re-signed: %d -> %d", first.Number, c.Number)
	}
	clock.Add(2 * time.Second)
	c, err := ca.CurrentCRL(ctx)
	if err != nil || c.Number != first.Number+1 || !c.ThisUpdate.Equal(clock.Now()) {
		t.Errorf("stale CRL: %+v %v", c, err)
	}
	if got := c.NextUpdate.Sub(c.ThisUpdate); got != DefaultCRLValidity {
		t.Errorf("CRL validity %v", got)
	}
}

func TestPublicCAcannotSign(t *testing.T) {
	ca := newCA(t, InitOptions{})
	pub, err := OpenPublic(ca.Dir())
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if _, err := pub.Issue(IssueRequest{Profile: ProfileClient, CN: "x"}); !errors.Is(err, ErrNoKey) {
		t.Errorf("issue: %v", err)
	}
	if _, err := pub.Revoke(context.Background(), big.NewInt(1), 0); !errors.Is(err, ErrNoKey) {
		t.Errorf("revoke: %v", err)
	}
}

// opensslSerial formats a serial as openssl prints it: upper-case hex of
// whole bytes (a leading zero when the top nibble is zero).
func opensslSerial(n *big.Int) string {
	return strings.ToUpper(hex.EncodeToString(n.Bytes()))
}
