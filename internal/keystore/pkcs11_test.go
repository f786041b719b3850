//go:build pkcs11

package keystore_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/keystore"
	"github.com/gatehouse/gatehouse/internal/testhsm"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testhsm.Cleanup()
	os.Exit(code)
}

func parse(t *testing.T, s string) *keystore.PKCS11URI {
	t.Helper()
	u, err := keystore.ParsePKCS11URI(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestPKCS11GenerateSignReopen generates keys in a real SoftHSM2 token,
// signs with them, reopens them by URI, and checks that the private half
// is sensitive and not extractable.
func TestPKCS11GenerateSignReopen(t *testing.T) {
	tok := testhsm.Get(t)
	for _, alg := range []string{keystore.AlgECDSAP256, keystore.AlgRSA3072} {
		t.Run(alg, func(t *testing.T) {
			uri := tok.URI("ks-" + alg)
			k, err := keystore.GeneratePKCS11(parse(t, uri), alg)
			if err != nil {
				t.Fatal(err)
			}
			defer k.Close()
			ok, err := keystore.NonExtractable(k)
			if err != nil || !ok {
				t.Fatalf("key extractable or not sensitive: %v %v", ok, err)
			}
			digest := sha256.Sum256([]byte("hello"))
			sig, err := k.Sign(rand.Reader, digest[:], crypto.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			again, err := keystore.Open(uri, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer again.Close()
			switch pub := again.Public().(type) {
			case *ecdsa.PublicKey:
				if !ecdsa.VerifyASN1(pub, digest[:], sig) {
					t.Fatal("signature does not verify with the reopened key's public key")
				}
			case *rsa.PublicKey:
				if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := keystore.GeneratePKCS11(parse(t, uri), alg); err == nil || !strings.Contains(err.Error(), "already holds") {
				t.Errorf("second generate with the same label: %v", err)
			}
		})
	}
}

// TestPKCS11ErrorsHidePIN: every failure names what is wrong, and none
// carries the PIN.
func TestPKCS11ErrorsHidePIN(t *testing.T) {
	tok := testhsm.Get(t)
	wrongPin := filepath.Join(t.TempDir(), "wrong")
	os.WriteFile(wrongPin, []byte("not-"+tok.PIN+"\n"), 0o600)
	cases := map[string]string{
		tok.URI("no-such-key"): "holds no key pair",
		strings.Replace(tok.URI("x"), "token=gatehouse", "token=nope", 1):     "open token",
		strings.Replace(tok.URI("x"), tok.PinFile, wrongPin, 1):               "not accepted",
		strings.Replace(tok.URI("x"), tok.PinFile, tok.PinFile+".missing", 1): "read PIN",
	}
	for uri, want := range cases {
		_, err := keystore.Open(uri, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Open(%s) = %v, want %q", uri, err, want)
			continue
		}
		if strings.Contains(err.Error(), tok.PIN) {
			t.Errorf("error carries the PIN: %v", err)
		}
	}
}

// The PIN file follows the rule of every secret file (secretfile.Read):
// "\r\n" is a line ending, and a second line is refused even when the
// first holds the right PIN, naming the file and not the PIN.
func TestPKCS11PinFileRule(t *testing.T) {
	tok := testhsm.Get(t)
	if _, err := keystore.GeneratePKCS11(parse(t, tok.URI("pin-rule")), keystore.AlgECDSAP256); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	open := func(content string) (string, error) {
		p := filepath.Join(dir, "pin")
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		k, err := keystore.Open(strings.Replace(tok.URI("pin-rule"), tok.PinFile, p, 1), nil)
		if err == nil {
			k.Close()
		}
		return p, err
	}
	if _, err := open(tok.PIN + "\r\n"); err != nil {
		t.Fatalf("PIN file with CRLF: %v", err)
	}
	p, err := open(tok.PIN + "\nold-pin\n")
	if err == nil || !strings.Contains(err.Error(), "read PIN file "+p+": it has more than one line") {
		t.Fatalf("two-line PIN file: %v", err)
	}
	if strings.Contains(err.Error(), tok.PIN) {
		t.Fatalf("error carries the PIN: %v", err)
	}
}
