package pki

import (
	"bytes"
	"context"
	"crypto/x509"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// TestDelegatedOCSP: ca serve signs OCSP answers with a short-lived
// certificate it issued itself (id-kp-OCSPSigning, ocsp-nocheck, not a CA),
// carried in the response; openssl accepts it; past half-life the server
// renews it, and the renewal is in the inventory.
func TestDelegatedOCSP(t *testing.T) {
	clock := newClock()
	ca := newCA(t, InitOptions{Intermediate: true, Now: clock.Now})
	ca.Now = clock.Now
	srv, base := startServer(t, ca, time.Hour) // refreshed by hand below
	signer := srv.ocsp.SignerCert()
	if signer == nil {
		t.Fatal("no delegated OCSP signer")
	}
	if signer.IsCA || len(signer.ExtKeyUsage) != 1 || signer.ExtKeyUsage[0] != x509.ExtKeyUsageOCSPSigning ||
		signer.KeyUsage != x509.KeyUsageDigitalSignature || signer.NotAfter.Sub(signer.NotBefore) > DefaultOCSPSignerValidity+time.Minute {
		t.Errorf("signer certificate: CA %v EKU %v KU %v life %s", signer.IsCA, signer.ExtKeyUsage, signer.KeyUsage, signer.NotAfter.Sub(signer.NotBefore))
	}
	nocheck := false
	for _, e := range signer.Extensions {
		nocheck = nocheck || e.Id.Equal(oidOCSPNoCheck)
	}
	if !nocheck {
		t.Error("signer certificate lacks id-pkix-ocsp-nocheck")
	}
	if err := signer.CheckSignatureFrom(ca.Issuer()); err != nil {
		t.Errorf("signer not issued by the issuing CA: %v", err)
	}

	iss, err := ca.Issue(IssueRequest{Profile: ProfileClient, CN: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	resp := ocspQuery(t, base, iss.Cert(), ca.Issuer(), false)
	if resp.Status != ocsp.Good || resp.Certificate == nil || !bytes.Equal(resp.Certificate.Raw, signer.Raw) {
		t.Fatalf("response status %d, certificate %v", resp.Status, resp.Certificate != nil)
	}
	if resp.NextUpdate.After(signer.NotAfter) {
		t.Errorf("answer outlasts its signer: %s > %s", resp.NextUpdate, signer.NotAfter)
	}

	dir := t.TempDir()
	leaf := writeFile(t, filepath.Join(dir, "leaf.pem"), CertsPEM(iss.Cert()))
	root, inter := filepath.Join(ca.Dir(), RootCertFile), filepath.Join(ca.Dir(), IntermediateCertFile)
	out := mustOpenSSL(t, "ocsp", "-issuer", inter, "-CAfile", root, "-cert", leaf, "-url", base+"/ocsp", "-resp_text")
	if !strings.Contains(out, "Response verify OK") || !strings.Contains(out, leaf+": good") ||
		!strings.Contains(out, "OCSP Signing") || !strings.Contains(out, "OCSP No Check") {
		t.Fatalf("openssl ocsp:\n%s", out)
	}

	// Before half-life nothing changes; after it, a new signer.
	clock.Add(DefaultOCSPSignerValidity / 4)
	if err := srv.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if srv.ocsp.SignerCert() != signer {
		t.Error("signer renewed before half-life")
	}
	clock.Add(DefaultOCSPSignerValidity / 3)
	if err := srv.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	renewed := srv.ocsp.SignerCert()
	if renewed == signer || renewed.SerialNumber.Cmp(signer.SerialNumber) == 0 {
		t.Fatal("signer not renewed past half-life")
	}
	resp = ocspQuery(t, base, iss.Cert(), ca.Issuer(), true)
	if !bytes.Equal(resp.Certificate.Raw, renewed.Raw) {
		t.Error("answers still signed by the old signer after renewal")
	}
	recs, _ := ca.Store().List(context.Background(), storeFilterAll)
	n := 0
	for _, r := range recs {
		if r.Profile == ProfileOCSPSigner {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d OCSP signers in the inventory, want 2", n)
	}
}

func TestOpenRootKeyFile(t *testing.T) {
	ca := newCA(t, InitOptions{Intermediate: true})
	k, err := ca.OpenRootKey(testPass)
	if err != nil || !samePublicKey(k.Public(), ca.Root().PublicKey) {
		t.Fatalf("OpenRootKey: %v", err)
	}
	CloseKey(k)
	if _, err := ca.OpenRootKey([]byte("wrong")); err == nil || !strings.Contains(err.Error(), "wrong passphrase") {
		t.Errorf("wrong passphrase: %v", err)
	}
}
