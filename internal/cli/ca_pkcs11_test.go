//go:build pkcs11

package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testhsm"
)

// TestCAPKCS11CLI: ca init --key-store puts the keys in the token; issue,
// revoke and crl then sign there without a passphrase, and no output or
// file of the CA holds the PIN.
func TestCAPKCS11CLI(t *testing.T) {
	tok := testhsm.Get(t)
	dir := filepath.Join(t.TempDir(), "ca")
	var all strings.Builder
	run := func(args ...string) string {
		t.Helper()
		code, out, errs := caRun(t, nil, args...)
		all.WriteString(out + errs)
		if code != 0 {
			t.Fatalf("gatehouse %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
		}
		return out
	}
	out := run("ca", "init", "--dir", dir, "--intermediate", "--key-store", tok.URI("clitest"))
	if !strings.Contains(out, "keys generated in the token") {
		t.Errorf("init output:\n%s", out)
	}
	prefix := filepath.Join(t.TempDir(), "api")
	out = run("ca", "issue", "--dir", dir, "--profile", "server", "--cn", "api.example.com", "--dns", "api.example.com", "--out", prefix)
	serial := regexpSerial.FindStringSubmatch(out)
	if serial == nil {
		t.Fatalf("no serial in:\n%s", out)
	}
	caMustOpenSSL(t, "verify", "-CAfile", filepath.Join(dir, "ca.pem"), "-untrusted", filepath.Join(dir, "intermediate.pem"), prefix+".pem")
	// A served certificate's key made in the token, its CSR signed by the CA.
	csr := filepath.Join(t.TempDir(), "web.csr")
	run("ca", "csr", "--key-store", tok.URI("cli-web"), "--cn", "web.example.com", "--dns", "web.example.com", "--out", csr)
	web := filepath.Join(t.TempDir(), "web.pem")
	run("ca", "sign", "--dir", dir, "--csr", csr, "--profile", "server", "--out", web)
	caMustOpenSSL(t, "verify", "-CAfile", filepath.Join(dir, "ca.pem"), "-untrusted", filepath.Join(dir, "intermediate.pem"), web)
	run("ca", "revoke", "--dir", dir, "--serial", serial[1], "--reason", "keyCompromise")
	run("ca", "crl", "--dir", dir, "--out", filepath.Join(t.TempDir(), "ca.crl"))
	if strings.Contains(all.String(), tok.PIN) {
		t.Fatal("command output holds the PIN")
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		if strings.Contains(string(b), tok.PIN) {
			t.Errorf("%s holds the PIN", e.Name())
		}
		if strings.Contains(e.Name(), "key") {
			t.Errorf("key file %s in a token CA", e.Name())
		}
	}
}
