package keystore

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParsePKCS11URI(t *testing.T) {
	u, err := ParsePKCS11URI("pkcs11:token=gate%20house;object=inter;id=%01%02?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/pin")
	if err != nil {
		t.Fatal(err)
	}
	if u.Token != "gate house" || u.Object != "inter" || string(u.ID) != "\x01\x02" ||
		u.ModulePath != "/usr/lib/softhsm/libsofthsm2.so" || u.PinSource != "/etc/pin" {
		t.Fatalf("parsed %+v", u)
	}
	back, err := ParsePKCS11URI(u.String())
	if err != nil || back.String() != u.String() || back.Token != u.Token || string(back.ID) != string(u.ID) {
		t.Fatalf("round trip %q: %+v %v", u.String(), back, err)
	}
	for in, want := range map[string]string{
		"pkcs11:token=a;object=b?module-path=/m&pin-value=1234": "pin-value is not accepted",
		"pkcs11:token=a;object=b?module-path=/m;pin-value=1234": "pin-value is not accepted",
		"pkcs11:token=a;object=pin%2Dvalue?module-path=/m":      "pin-value is not accepted",
		"pkcs11:token=a;object=b":                               "module-path is required",
		"pkcs11:object=b?module-path=/m":                        "exactly one of token=",
		"pkcs11:token=a;color=red?module-path=/m":               `unknown attribute "color"`,
		"pkcs11:token=a;token=b?module-path=/m":                 "given twice",
		"pkcs11:token=a;type=public?module-path=/m":             "type=private",
		"pkcs11:token=a;slot-id=x?module-path=/m":               "slot-id",
		"/etc/key.pem": "must start with pkcs11:",
	} {
		_, err := ParsePKCS11URI(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParsePKCS11URI(%q) = %v, want %q", in, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "1234") {
			t.Errorf("error quotes the PIN: %v", err)
		}
	}
}

func TestFileKey(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pem, err := MarshalPEM(k, []byte("passphrase"))
	if err != nil || !strings.Contains(string(pem), PEMEncryptedPrivateKey) {
		t.Fatalf("marshal: %v", err)
	}
	path := filepath.Join(t.TempDir(), "k.pem")
	os.WriteFile(path, pem, 0o600)
	got, err := Open(path, []byte("passphrase"))
	if err != nil || !k.PublicKey.Equal(got.Public()) {
		t.Fatalf("open: %v", err)
	}
	got.Close()
	if _, err := Open(path, []byte("wrong")); !errors.Is(err, ErrPassphrase) {
		t.Errorf("wrong passphrase: %v", err)
	}
}

// FuzzParsePKCS11URI: the parser never panics, never accepts pin-value,
// and what it accepts formats to a URI it parses back to the same thing.
func FuzzParsePKCS11URI(f *testing.F) {
	f.Add("pkcs11:token=gatehouse;object=intermediate?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/pin")
	f.Add("pkcs11:serial=abc;id=%01%ff?module-path=/m")
	f.Add("pkcs11:slot-id=3;object=a%3Bb?module-path=/m&pin-value=1")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParsePKCS11URI(s)
		if err != nil {
			return
		}
		if strings.Contains(s, "pin-value") {
			t.Fatalf("accepted pin-value: %q", s)
		}
		back, err := ParsePKCS11URI(u.String())
		if err != nil {
			t.Fatalf("String() %q of %q does not parse: %v", u.String(), s, err)
		}
		if back.String() != u.String() || back.Token != u.Token || back.Object != u.Object || string(back.ID) != string(u.ID) ||
			back.ModulePath != u.ModulePath || back.PinSource != u.PinSource || back.Serial != u.Serial {
			t.Fatalf("round trip of %q: %+v != %+v", s, back, u)
		}
	})
}

// pin reads pin-source by the shared secret-file rule, in every build.
func TestPinSourceRule(t *testing.T) {
	p := filepath.Join(t.TempDir(), "pin")
	u := &PKCS11URI{Token: "t", ModulePath: "/m", PinSource: p}
	for content, want := range map[string]string{"1234\n": "1234", "1234\r\n": "1234", "1234": "1234"} {
		os.WriteFile(p, []byte(content), 0o600)
		if got, err := u.pin(); err != nil || got != want {
			t.Errorf("pin(%q) = %q, %v; want %q", content, got, err, want)
		}
	}
	for content, want := range map[string]string{"1234\n5678\n": "has more than one line", "\n": "is empty"} {
		os.WriteFile(p, []byte(content), 0o600)
		got, err := u.pin()
		if err == nil || !strings.Contains(err.Error(), "read PIN file "+p+": it "+want) || strings.Contains(err.Error(), "1234") {
			t.Errorf("pin(%q) = %q, %v; want an error %q without the PIN", content, got, err, want)
		}
	}
	if got, err := (&PKCS11URI{}).pin(); got != "" || err != nil {
		t.Errorf("no pin-source: %q, %v", got, err)
	}
}
