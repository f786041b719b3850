package cli

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testpki"
)

// The CA passphrase file, the key passphrase file of `ca issue` and the
// gateway's key_passphrase_file follow one rule (secretfile.Read): the
// content minus one trailing newline; a second line or an empty file is
// refused with the file named and the secret never shown.
func TestSecretFilesOneRule(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "pki")
	crlf := caWrite(t, filepath.Join(tmp, "crlf.pass"), caTestPass+"\r\n")
	caMust(t, nil, "ca", "init", "--dir", dir, "--passphrase-file", crlf)
	// The same passphrase, written with "\n" or without a newline, opens
	// the CA: the line ending is not part of the secret.
	for i, content := range []string{caTestPass + "\n", caTestPass} {
		p := caWrite(t, filepath.Join(tmp, "lf.pass"), content)
		caMust(t, nil, "ca", "issue", "--dir", dir, "--profile", "client", "--cn", "ok",
			"--out", filepath.Join(tmp, "ok"+strconv.Itoa(i)), "--passphrase-file", p)
	}
	for _, c := range []struct{ name, content, want string }{
		{"two lines", caTestPass + "\nold passphrase\n", "has more than one line"},
		{"blank line after", caTestPass + "\n\n", "has more than one line"},
		{"empty", "", "is empty"},
	} {
		t.Run("ca passphrase "+c.name, func(t *testing.T) {
			p := caWrite(t, filepath.Join(tmp, "bad.pass"), c.content)
			code, _, stderr := caRun(t, nil, "ca", "issue", "--dir", dir, "--profile", "client", "--cn", "a",
				"--out", filepath.Join(t.TempDir(), "a"), "--passphrase-file", p)
			if code != 2 || !strings.Contains(stderr, "read passphrase file "+p+": it "+c.want) {
				t.Fatalf("exit %d, stderr %q; want exit 2 naming %s and %q", code, stderr, p, c.want)
			}
			if strings.Contains(stderr, "horse") {
				t.Fatalf("stderr carries the passphrase: %q", stderr)
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(p), "a.pem")); err == nil {
				t.Fatal("a certificate was written")
			}
		})
	}
	t.Run("ca issue key passphrase", func(t *testing.T) {
		good := caWrite(t, filepath.Join(tmp, "ca.pass"), caTestPass+"\n")
		p := caWrite(t, filepath.Join(tmp, "key.pass"), "key secret\nkey secret 2\n")
		code, _, stderr := caRun(t, nil, "ca", "issue", "--dir", dir, "--profile", "client", "--cn", "a",
			"--out", filepath.Join(tmp, "b"), "--passphrase-file", good, "--key-passphrase-file", p)
		if code != 2 || !strings.Contains(stderr, "read key passphrase file "+p+": it has more than one line") {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
	})
}

// The gateway's key_passphrase_file: "\r\n" is a line ending, a second
// line is refused at its config line, naming the file.
func TestKeyPassphraseFileRule(t *testing.T) {
	cfg, pass := encryptedKeyConfig(t)
	testpki.WriteFile(t, pass, []byte("key secret\r\n"))
	if code, stderr := configCheck(cfg); code != 0 {
		t.Fatalf("CRLF passphrase file: exit %d: %s", code, stderr)
	}
	testpki.WriteFile(t, pass, []byte("key secret\nkey secret\n"))
	code, stderr := configCheck(cfg)
	want := cfg + ":2: server_tls.certificates[0].key_passphrase_file: read key passphrase file " + pass + ": it has more than one line"
	if code == 0 || !strings.HasPrefix(stderr, want) || strings.Contains(stderr, "key secret") {
		t.Fatalf("exit %d, stderr:\n%s\nwant it to start with:\n%s", code, stderr, want)
	}
}
