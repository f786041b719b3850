//go:build pkcs11

package pki

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/keystore"
	"github.com/gatehouse/gatehouse/internal/testhsm"
	"github.com/gatehouse/gatehouse/internal/testpg"
)

// TestPKCS11CA runs a CA whose root and intermediate keys were generated
// in a real SoftHSM2 token: no key file in DIR, the token keys sensitive
// and not extractable, and issue, revoke, CRL and OCSP verified by openssl.
func TestPKCS11CA(t *testing.T) {
	tok := testhsm.Get(t)
	dir := filepath.Join(t.TempDir(), "ca")
	ca, err := Init(dir, InitOptions{KeyStore: tok.URI("pkitest"), Intermediate: true, Name: "HSM CA"})
	if err != nil {
		t.Fatal(err)
	}
	ca.Close()
	for _, f := range listDir(t, dir) {
		if strings.Contains(f, "key") {
			t.Errorf("key file %s in a CA whose keys are in the token", f)
		}
	}
	s := ca.Settings()
	if s.Keys == nil || !strings.Contains(s.Keys.Root, "object=pkitest-root") || !strings.Contains(s.Keys.Intermediate, "object=pkitest-intermediate") {
		t.Fatalf("settings keys: %+v", s.Keys)
	}
	for _, ref := range []string{s.Keys.Root, s.Keys.Intermediate} {
		k, err := keystore.Open(ref, nil)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := keystore.NonExtractable(k); err != nil || !ok {
			t.Errorf("%s: extractable or not sensitive (%v)", ref, err)
		}
		k.Close()
	}
	if b, _ := os.ReadFile(filepath.Join(dir, SettingsFile)); strings.Contains(string(b), tok.PIN) {
		t.Fatal("ca.json holds the PIN")
	}

	ca, err = Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	rk, err := ca.OpenRootKey(nil)
	if err != nil || !samePublicKey(rk.Public(), ca.Root().PublicKey) {
		t.Fatalf("OpenRootKey: %v", err)
	}
	CloseKey(rk)
	iss, err := ca.Issue(IssueRequest{Profile: ProfileServer, CN: "api.example.com", DNS: []string{"api.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	leaf := writeFile(t, filepath.Join(tmp, "leaf.pem"), CertsPEM(iss.Cert()))
	root, inter := filepath.Join(dir, RootCertFile), filepath.Join(dir, IntermediateCertFile)
	mustOpenSSL(t, "verify", "-CAfile", root, "-untrusted", inter, leaf)

	_, base := startServer(t, ca, 50*time.Millisecond)
	out := mustOpenSSL(t, "ocsp", "-issuer", inter, "-CAfile", root, "-cert", leaf, "-url", base+"/ocsp")
	if !strings.Contains(out, leaf+": good") || !strings.Contains(out, "Response verify OK") {
		t.Fatalf("openssl ocsp before revoke:\n%s", out)
	}
	if _, err := ca.Revoke(context.Background(), iss.Cert().SerialNumber, ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	crlFile := filepath.Join(dir, CRLFile)
	bundle := writeFile(t, filepath.Join(tmp, "bundle.pem"), CertsPEM(ca.Issuer(), ca.Root()))
	if out := mustOpenSSL(t, "crl", "-in", crlFile, "-CAfile", bundle, "-noout"); !strings.Contains(out, "verify OK") {
		t.Fatalf("openssl crl: %s", out)
	}
	out, err = openssl(t, "verify", "-crl_check", "-CRLfile", crlFile, "-CAfile", root, "-untrusted", inter, leaf)
	if err == nil || !strings.Contains(out, "certificate revoked") {
		t.Fatalf("openssl verify -crl_check after revoke: %v\n%s", err, out)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		out = mustOpenSSL(t, "ocsp", "-issuer", inter, "-CAfile", root, "-cert", leaf, "-url", base+"/ocsp")
		if strings.Contains(out, leaf+": revoked") && strings.Contains(out, "Response verify OK") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("openssl ocsp after revoke:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPKCS11InitFailureDeletesKeys: an init that fails after generating
// its keys in the token (here: the PostgreSQL inventory is not empty)
// deletes them, so the same labels can be used again.
func TestPKCS11InitFailureDeletesKeys(t *testing.T) {
	tok := testhsm.Get(t)
	used := newCA(t, InitOptions{Store: testpg.NewDB(t)})
	_, err := Init(filepath.Join(t.TempDir(), "ca"), InitOptions{KeyStore: tok.URI("retry"), Intermediate: true, Store: used.Settings().Store})
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("init on a used inventory: %v", err)
	}
	if _, err := keystore.Open(strings.Replace(tok.URI("retry"), "object=retry", "object=retry-root", 1), nil); err == nil {
		t.Error("the failed init left its root key in the token")
	}
	ca, err := Init(filepath.Join(t.TempDir(), "ca"), InitOptions{KeyStore: tok.URI("retry"), Intermediate: true})
	if err != nil {
		t.Fatalf("init again with the same labels: %v", err)
	}
	ca.Close()
}
