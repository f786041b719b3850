package pki

import (
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ocsp"
)

func TestEncryptedKeysWithOpenSSL(t *testing.T) {
	ca := newCA(t, InitOptions{Intermediate: true})
	tmp := t.TempDir()
	right := writeFile(t, filepath.Join(tmp, "right"), append(testPass, '\n'))
	wrong := writeFile(t, filepath.Join(tmp, "wrong"), []byte("not the passphrase\n"))
	for _, f := range []string{RootKeyFile, IntermediateKeyFile} {
		path := filepath.Join(ca.Dir(), f)
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v %v", f, fi.Mode(), err)
		}
		b, _ := os.ReadFile(path)
		if blk, _ := pem.Decode(b); blk == nil || blk.Type != "ENCRYPTED PRIVATE KEY" {
			t.Errorf("%s is not an encrypted PKCS#8 key", f)
		}
		mustOpenSSL(t, "pkey", "-in", path, "-passin", "file:"+right, "-noout")
		if out, err := openssl(t, "pkey", "-in", path, "-passin", "file:"+wrong, "-noout"); err == nil {
			t.Errorf("openssl opened %s with the wrong passphrase:\n%s", f, out)
		}
		// openssl reports the algorithms: PBES2, scrypt, AES-256-CBC.
		asn := mustOpenSSL(t, "asn1parse", "-in", path)
		for _, want := range []string{":PBES2", ":scrypt", ":aes-256-cbc"} {
			if !strings.Contains(asn, want) {
				t.Errorf("%s: asn1parse lacks %s:\n%s", f, want, asn)
			}
		}
	}
	// Leaf keys: encrypted on request, readable by openssl.
	iss, err := ca.Issue(IssueRequest{Profile: ProfileServer, CN: "a", DNS: []string{"a.example"}, KeyType: KeyECDSAP384})
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := iss.KeyPEM(testPass)
	plain, _ := iss.KeyPEM(nil)
	encPath := writeFile(t, filepath.Join(tmp, "enc.pem"), enc)
	mustOpenSSL(t, "pkey", "-in", encPath, "-passin", "file:"+right, "-noout")
	if blk, _ := pem.Decode(plain); blk == nil || blk.Type != "PRIVATE KEY" {
		t.Errorf("plain key: %s", plain[:40])
	}
	k, err := ParseKeyPEM(enc, testPass)
	if err != nil || !samePublicKey(k.Public(), iss.Key.Public()) {
		t.Errorf("round trip: %v", err)
	}
	if _, err := ParseKeyPEM(enc, []byte("nope")); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("wrong passphrase: %v", err)
	}
}

func TestPKCS12WithOpenSSL(t *testing.T) {
	ca := newCA(t, InitOptions{Intermediate: true})
	iss, err := ca.Issue(IssueRequest{Profile: ProfileClient, CN: "partner-a", IPs: []net.IP{net.IPv4(10, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	pw := writeFile(t, filepath.Join(tmp, "pw"), []byte("p12 password\n"))
	for _, legacy := range []bool{false, true} {
		b, err := iss.PKCS12("p12 password", legacy)
		if err != nil {
			t.Fatal(err)
		}
		p := writeFile(t, filepath.Join(tmp, "b.p12"), b)
		out := mustOpenSSL(t, "pkcs12", "-info", "-in", p, "-passin", "file:"+pw, "-nokeys")
		want := map[bool]string{false: "PBES2, PBKDF2, AES-256-CBC", true: "pbeWithSHA1And3-KeyTripleDES-CBC"}[legacy]
		if !strings.Contains(out, want) || strings.Count(out, "BEGIN CERTIFICATE") != 2 || !strings.Contains(out, "CN = partner-a") {
			t.Errorf("legacy=%v: want %q and 2 certificates:\n%s", legacy, want, out)
		}
		if out, err := openssl(t, "pkcs12", "-info", "-in", p, "-passin", "pass:wrong", "-noout"); err == nil {
			t.Errorf("legacy=%v: wrong password accepted:\n%s", legacy, out)
		}
	}
}

func TestRSA3072(t *testing.T) {
	if testing.Short() {
		t.Skip("RSA-3072 key generation is slow")
	}
	// The one RSA CA of the suite: init, issue (with an RSA leaf), CRL and
	// OCSP signing all exercised once.
	ca := newCA(t, InitOptions{KeyType: KeyRSA3072})
	iss, err := ca.Issue(IssueRequest{Profile: ProfileServer, CN: "rsa", DNS: []string{"rsa.example"}})
	if err != nil {
		t.Fatal(err)
	}
	leaf := writeFile(t, filepath.Join(t.TempDir(), "leaf.pem"), iss.ChainPEM())
	if out := mustOpenSSL(t, "verify", "-CAfile", filepath.Join(ca.Dir(), RootCertFile), leaf); !strings.Contains(out, ": OK") {
		t.Error(out)
	}
	if _, err := ca.Revoke(t.Context(), iss.Cert().SerialNumber, ReasonSuperseded); err != nil {
		t.Fatal(err)
	}
	if text := mustOpenSSL(t, "crl", "-in", filepath.Join(ca.Dir(), CRLFile), "-noout", "-text"); !strings.Contains(text, "sha256WithRSAEncryption") {
		t.Errorf("CRL:\n%s", text)
	}
	r, err := NewResponder(ca)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := ocsp.CreateRequest(iss.Cert(), ca.Issuer(), nil)
	der, err := r.Respond(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := ocsp.ParseResponse(der, ca.Issuer()); err != nil || resp.Status != ocsp.Revoked {
		t.Errorf("OCSP: %+v %v", resp, err)
	}
}
