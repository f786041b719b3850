package cli

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(b)
}

// caInit creates a CA for the error tests and returns its directory.
func caInit(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pki")
	caMust(t, map[string]string{passphraseEnv: caTestPass}, "ca", "init", "--dir", dir)
	return dir
}

// TestCAErrors checks each failure: one line on stderr naming the
// problem, a non-zero exit, and no file left behind.
func TestCAErrors(t *testing.T) {
	dir := caInit(t)
	good := map[string]string{passphraseEnv: caTestPass}
	out := t.TempDir()
	badCSR := filepath.Join(out, "bad.csr")
	caMustOpenSSL(t, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", filepath.Join(out, "k.pem"), "-outform", "DER", "-out", badCSR, "-subj", "/CN=x",
		"-addext", "subjectAltName=DNS:x.example")
	b, _ := os.ReadFile(badCSR)
	b[len(b)-3] ^= 0x01
	os.WriteFile(badCSR, b, 0o600)
	os.Remove(filepath.Join(out, "k.pem"))
	notCA := t.TempDir()

	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"wrong passphrase", map[string]string{passphraseEnv: "wrong passphrase"},
			[]string{"ca", "issue", "--dir", dir, "--profile", "client", "--cn", "a", "--out", filepath.Join(out, "a")},
			1, "wrong passphrase"},
		{"no passphrase", nil,
			[]string{"ca", "issue", "--dir", dir, "--profile", "client", "--cn", "a", "--out", filepath.Join(out, "a")},
			2, "no CA passphrase: use --passphrase-file FILE or set GATEHOUSE_CA_PASSPHRASE"},
		{"not a CA", good,
			[]string{"ca", "issue", "--dir", notCA, "--profile", "client", "--cn", "a", "--out", filepath.Join(out, "a")},
			1, "not a gatehouse CA directory"},
		{"unknown profile", good,
			[]string{"ca", "issue", "--dir", dir, "--profile", "admin", "--cn", "a", "--out", filepath.Join(out, "a")},
			2, `profile "admin": unknown profile`},
		{"server without names", good,
			[]string{"ca", "issue", "--dir", dir, "--profile", "server", "--cn", "a", "--out", filepath.Join(out, "a")},
			1, "needs at least one DNS name or IP"},
		{"bad duration", good,
			[]string{"ca", "issue", "--dir", dir, "--profile", "client", "--cn", "a", "--validity", "3 weeks", "--out", filepath.Join(out, "a")},
			2, "--validity"},
		{"validity over maximum", good,
			[]string{"ca", "issue", "--dir", dir, "--profile", "client", "--cn", "a", "--validity", "2y", "--out", filepath.Join(out, "a")},
			1, "exceeds this CA's maximum of 398d"},
		{"missing out dir", good,
			[]string{"ca", "issue", "--dir", dir, "--profile", "client", "--cn", "a", "--out", filepath.Join(out, "nope", "a")},
			2, "does not exist"},
		{"p12 without password", good,
			[]string{"ca", "issue", "--dir", dir, "--profile", "client", "--cn", "a", "--p12", "--out", filepath.Join(out, "a")},
			2, "--p12 and --p12-password-file go together"},
		{"bad CSR signature", good,
			[]string{"ca", "sign", "--dir", dir, "--csr", badCSR, "--profile", "server", "--out", filepath.Join(out, "x.pem")},
			1, "signature does not verify"},
		{"unknown serial", good,
			[]string{"ca", "revoke", "--dir", dir, "--serial", "abcdef"},
			1, "serial ABCDEF was not issued by this CA"},
		{"bad serial", good,
			[]string{"ca", "revoke", "--dir", dir, "--serial", "xyz"},
			2, `parse serial "xyz"`},
		{"bad reason", good,
			[]string{"ca", "revoke", "--dir", dir, "--serial", "ab", "--reason", "bored"},
			2, `unknown revocation reason "bored"`},
		{"init over a CA", good,
			[]string{"ca", "init", "--dir", dir},
			1, "already holds a CA"},
		{"init short passphrase", map[string]string{passphraseEnv: "short"},
			[]string{"ca", "init", "--dir", filepath.Join(out, "new")},
			2, "passphrase is too short"},
		{"init bad key type", good,
			[]string{"ca", "init", "--dir", filepath.Join(out, "new"), "--key-type", "dsa"},
			2, `unknown key type "dsa"`},
		{"missing --dir", good,
			[]string{"ca", "list"},
			2, `required flag(s) "dir" not set`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := caFiles(t, dir)
			code, stdout, stderr := caRun(t, tc.env, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, tc.code, tc.want)
			}
			if !strings.HasPrefix(stderr, "gatehouse: ") || strings.Count(stderr, "\n") != 1 {
				t.Errorf("stderr is not one line: %q", stderr)
			}
			if stdout != "" {
				t.Errorf("stdout: %q", stdout)
			}
			if files := caFiles(t, out); !slices.Equal(files, []string{"bad.csr"}) {
				t.Errorf("files left in the output directory: %v", files)
			}
			if after := caFiles(t, dir); !slices.Equal(before, after) {
				t.Errorf("CA directory changed: %v -> %v", before, after)
			}
			if files := caFiles(t, notCA); len(files) != 0 {
				t.Errorf("files left in the non-CA directory: %v", files)
			}
		})
	}
	code, _, _ := caRun(t, good, "ca", "list", "--dir", dir)
	if code != 0 {
		t.Errorf("ca list after the errors: exit %d", code)
	}
}

func TestCACorruptKey(t *testing.T) {
	dir := caInit(t)
	key := filepath.Join(dir, "ca-key.pem")
	b, _ := os.ReadFile(key)
	// Damage the ciphertext in the middle of the base64 body.
	lines := strings.Split(string(b), "\n")
	lines[2] = strings.Repeat("A", len(lines[2]))
	os.WriteFile(key, []byte(strings.Join(lines, "\n")), 0o600)
	code, _, stderr := caRun(t, map[string]string{passphraseEnv: caTestPass}, "ca", "revoke", "--dir", dir, "--serial", "ab")
	if code != 1 || !strings.Contains(stderr, "ca-key.pem") || !strings.Contains(stderr, "corrupt") {
		t.Errorf("exit %d: %q", code, stderr)
	}
}

func TestCAHelp(t *testing.T) {
	for _, cmd := range []string{"init", "issue", "sign", "revoke", "crl", "list", "serve"} {
		code, out, errs := caRun(t, nil, "ca", cmd, "--help")
		if code != 0 || !strings.Contains(out, "Usage:") || !strings.Contains(out, "--dir") || errs != "" {
			t.Errorf("ca %s --help: exit %d\n%s%s", cmd, code, out, errs)
		}
	}
	code, out, _ := caRun(t, nil, "ca", "--help")
	for _, cmd := range []string{"init", "issue", "sign", "revoke", "crl", "list", "serve"} {
		if code != 0 || !strings.Contains(out, "  "+cmd+" ") {
			t.Errorf("ca --help lacks %s:\n%s", cmd, out)
		}
	}
}

func TestCAKeyTypesAndDurations(t *testing.T) {
	tmp := t.TempDir()
	env := map[string]string{passphraseEnv: caTestPass}
	for _, kt := range []string{"ecdsa-p384", "ed25519"} {
		dir := filepath.Join(tmp, kt)
		caMust(t, env, "ca", "init", "--dir", dir, "--key-type", kt, "--max-validity", "2y")
		caMust(t, env, "ca", "issue", "--dir", dir, "--profile", "client", "--cn", "c", "--validity", "1y30d",
			"--key-type", kt, "--out", filepath.Join(tmp, kt+"-c"))
		text := caMustOpenSSL(t, "x509", "-in", filepath.Join(tmp, kt+"-c.pem"), "-noout", "-text")
		if want := map[string]string{"ecdsa-p384": "NIST CURVE: P-384", "ed25519": "ED25519"}[kt]; !strings.Contains(text, want) {
			t.Errorf("%s: lacks %q:\n%s", kt, want, text)
		}
		out := caMustOpenSSL(t, "verify", "-CAfile", filepath.Join(dir, "ca.pem"), filepath.Join(tmp, kt+"-c.pem"))
		if !strings.Contains(out, ": OK") {
			t.Error(out)
		}
	}
}
