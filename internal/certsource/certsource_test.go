package certsource

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/youmark/pkcs8"

	"github.com/gatehouse/gatehouse/internal/testpki"
)

func TestLoadKeyPairFormats(t *testing.T) {
	dir := t.TempDir()
	inter := testpki.NewRoot(t, "root").Intermediate(t, "inter")
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p8Key := testpki.NewKey(t)
	sec1, _ := x509.MarshalECPrivateKey(ecKey)
	p8, _ := x509.MarshalPKCS8PrivateKey(p8Key)
	enc, err := pkcs8.MarshalPrivateKey(p8Key, []byte("s3cret"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		certKey crypto.Signer
		block   *pem.Block
		pass    []byte
		errIs   error
		errHas  string
	}{
		{name: "pkcs1", certKey: rsaKey, block: &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}},
		{name: "sec1", certKey: ecKey, block: &pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}},
		{name: "pkcs8", certKey: p8Key, block: &pem.Block{Type: "PRIVATE KEY", Bytes: p8}},
		{name: "encrypted", certKey: p8Key, block: &pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: enc}, pass: []byte("s3cret")},
		{name: "encrypted-wrong", certKey: p8Key, block: &pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: enc}, pass: []byte("nope"), errIs: ErrPassphrase},
		{name: "encrypted-missing", certKey: p8Key, block: &pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: enc}, errIs: ErrPassphrase},
		{name: "legacy", certKey: ecKey, block: &pem.Block{Type: "EC PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: sec1}, errHas: "openssl pkcs8 -topk8"},
		{name: "mismatch", certKey: ecKey, block: &pem.Block{Type: "PRIVATE KEY", Bytes: p8}, errHas: "does not belong"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leaf := inter.Leaf(t, testpki.LeafOptions{CN: tc.name, Key: tc.certKey})
			certPath := filepath.Join(dir, tc.name+".pem")
			keyPath := filepath.Join(dir, tc.name+"-key.pem")
			testpki.WriteFile(t, certPath, leaf.ChainPEM())
			testpki.WriteFile(t, keyPath, pem.EncodeToMemory(tc.block))
			c, err := LoadKeyPair(certPath, keyPath, tc.pass)
			switch {
			case tc.errIs != nil || tc.errHas != "":
				if err == nil {
					t.Fatal("loaded, want error")
				}
				if tc.errIs != nil && !errors.Is(err, tc.errIs) {
					t.Errorf("error %v, want %v", err, tc.errIs)
				}
				if !strings.Contains(err.Error(), tc.errHas) {
					t.Errorf("error %q does not mention %q", err, tc.errHas)
				}
			case err != nil:
				t.Fatal(err)
			case len(c.Certificate) != 2:
				t.Errorf("chain has %d certificates, want leaf + intermediate", len(c.Certificate))
			}
		})
	}
}

func TestLoadKeyPairMisorderedChain(t *testing.T) {
	dir := t.TempDir()
	inter := testpki.NewRoot(t, "root").Intermediate(t, "inter")
	leaf := inter.Client(t, "c")
	_, keyPath := leaf.Write(t, dir, "c")
	certPath := filepath.Join(dir, "wrong.pem")
	other := testpki.NewRoot(t, "other")
	testpki.WriteFile(t, certPath, testpki.CertsPEM(leaf.Cert, other.Cert))
	if _, err := LoadKeyPair(certPath, keyPath, nil); err == nil || !strings.Contains(err.Error(), "is not signed by") {
		t.Fatalf("err = %v, want chain order error", err)
	}
}

// An encrypted PKCS#8 key written by `openssl genpkey -aes-256-cbc` loads.
func TestOpenSSLEncryptedKey(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "key.pem")
	out, err := exec.Command("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
		"-aes-256-cbc", "-pass", "pass:topsecret", "-out", keyPath).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl genpkey: %v\n%s", err, out)
	}
	data, _ := os.ReadFile(keyPath)
	if _, err := ParsePrivateKeyPEM(data, []byte("topsecret")); err != nil {
		t.Fatalf("parse openssl key: %v", err)
	}
	if _, err := ParsePrivateKeyPEM(data, []byte("wrong")); !errors.Is(err, ErrPassphrase) {
		t.Fatalf("wrong passphrase: err = %v", err)
	}
	// Without a passphrase the error names the key that gives one, and
	// does not also claim the passphrase was wrong.
	_, err = ParsePrivateKeyPEM(data, nil)
	if !errors.Is(err, ErrPassphrase) || !strings.Contains(err.Error(), "key_passphrase_file") || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("no passphrase: err = %v", err)
	}
}

func TestLoadCAs(t *testing.T) {
	dir := t.TempDir()
	root := testpki.NewRoot(t, "root")
	caPath := root.WriteCert(t, dir, "ca.pem")
	if _, certs, err := LoadCAs([]string{caPath}); err != nil || len(certs) != 1 {
		t.Fatalf("LoadCAs = %d, %v", len(certs), err)
	}
	leafPath, _ := root.Client(t, "c").Write(t, dir, "leaf")
	if _, _, err := LoadCAs([]string{leafPath}); err == nil || !strings.Contains(err.Error(), "not a CA") {
		t.Fatalf("leaf as CA: err = %v", err)
	}
	bad := filepath.Join(dir, "bad.pem")
	testpki.WriteFile(t, bad, []byte("hello"))
	if _, _, err := LoadCAs([]string{bad}); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("garbage: err = %v", err)
	}
	if _, _, err := LoadCAs([]string{filepath.Join(dir, "missing.pem")}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing: err = %v", err)
	}
}

// A damaged encrypted key is an error, not a panic in the decoder.
func TestCorruptEncryptedKey(t *testing.T) {
	der, err := pkcs8.MarshalPrivateKey(testpki.NewKey(t), []byte("pw"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, cut := range []int{1, 7, 16} {
		data := pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: der[:len(der)-cut]})
		if _, err := ParsePrivateKeyPEM(data, []byte("pw")); err == nil {
			t.Errorf("cut %d: parsed a damaged key", cut)
		}
	}
}
