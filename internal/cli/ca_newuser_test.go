package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ca issue never overwrites a certificate, key or keystore unless --force;
// with --force a keystore of the replaced key does not stay behind.
func TestCAIssueRefusesOverwrite(t *testing.T) {
	dir := caInit(t)
	env := map[string]string{passphraseEnv: caTestPass}
	out := t.TempDir()
	prefix := filepath.Join(out, "api")
	pw := caWrite(t, filepath.Join(out, "pw"), "p12 password\n")
	caMust(t, env, "ca", "issue", "--dir", dir, "--profile", "client", "--cn", "a", "--out", prefix, "--p12", "--p12-password-file", pw)
	key1, _ := os.ReadFile(prefix + "-key.pem")

	code, _, stderr := caRun(t, env, "ca", "issue", "--dir", dir, "--profile", "client", "--cn", "b", "--out", prefix)
	if code != ExitUsage || !strings.Contains(stderr, "already exists; not overwriting (use --force") {
		t.Fatalf("second issue: exit %d, %s", code, stderr)
	}
	if key2, _ := os.ReadFile(prefix + "-key.pem"); string(key2) != string(key1) {
		t.Fatal("refused issue changed the key")
	}
	// Only the stale .p12 left: still refused.
	os.Remove(prefix + ".pem")
	os.Remove(prefix + "-key.pem")
	if code, _, stderr := caRun(t, env, "ca", "issue", "--dir", dir, "--profile", "client", "--cn", "b", "--out", prefix); code == 0 || !strings.Contains(stderr, prefix+".p12") {
		t.Fatalf("issue beside a stale .p12: exit %d, %s", code, stderr)
	}
	caMust(t, env, "ca", "issue", "--dir", dir, "--profile", "client", "--cn", "b", "--out", prefix, "--force")
	if _, err := os.Stat(prefix + ".p12"); !os.IsNotExist(err) {
		t.Errorf("--force without --p12 left the old keystore: %v", err)
	}
	for _, name := range caFiles(t, out) {
		if strings.Contains(name, ".tmp-") {
			t.Errorf("temporary file left: %s", name)
		}
	}

	// ca sign: the same rule for its --out.
	csr := filepath.Join(out, "req.csr")
	caMustOpenSSL(t, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", filepath.Join(out, "req-key.pem"), "-out", csr, "-subj", "/CN=c")
	if code, _, stderr := caRun(t, env, "ca", "sign", "--dir", dir, "--csr", csr, "--profile", "client", "--out", prefix+".pem"); code == 0 || !strings.Contains(stderr, "already exists") {
		t.Fatalf("sign over an existing file: exit %d, %s", code, stderr)
	}
	caMust(t, env, "ca", "sign", "--dir", dir, "--csr", csr, "--profile", "client", "--out", prefix+".pem", "--force")
}

// ca sign accepts the SAN flags its own error suggests, and they replace
// the CSR's names; a refused EKU is named as openssl names it.
func TestCASignSANFlags(t *testing.T) {
	dir := caInit(t)
	env := map[string]string{passphraseEnv: caTestPass}
	out := t.TempDir()
	csr := filepath.Join(out, "web.csr")
	// The tutorial CSR: no subjectAltName at all.
	caMustOpenSSL(t, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", filepath.Join(out, "web-key.pem"), "-out", csr, "-subj", "/CN=web.example.com")
	code, _, stderr := caRun(t, env, "ca", "sign", "--dir", dir, "--csr", csr, "--profile", "server", "--out", filepath.Join(out, "web.pem"))
	if code == 0 || !strings.Contains(stderr, "--dns") {
		t.Fatalf("server CSR without names: exit %d, %s", code, stderr)
	}
	caMust(t, env, "ca", "sign", "--dir", dir, "--csr", csr, "--profile", "server",
		"--dns", "web.example.com", "--ip", "127.0.0.1", "--out", filepath.Join(out, "web.pem"))
	text := caMustOpenSSL(t, "x509", "-in", filepath.Join(out, "web.pem"), "-noout", "-ext", "subjectAltName")
	if !strings.Contains(text, "DNS:web.example.com") || !strings.Contains(text, "IP Address:127.0.0.1") {
		t.Errorf("SANs not applied:\n%s", text)
	}

	// The flags replace what the CSR asked for.
	csr2 := filepath.Join(out, "two.csr")
	caMustOpenSSL(t, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", filepath.Join(out, "two-key.pem"), "-out", csr2, "-subj", "/CN=two",
		"-addext", "subjectAltName=DNS:evil.example.com", "-addext", "extendedKeyUsage=codeSigning")
	code, _, stderr = caRun(t, env, "ca", "sign", "--dir", dir, "--csr", csr2, "--profile", "client", "--out", filepath.Join(out, "two.pem"))
	if code == 0 || !strings.Contains(stderr, "extended key usage codeSigning (1.3.6.1.5.5.7.3.3)") {
		t.Fatalf("codeSigning CSR: exit %d, %s", code, stderr)
	}
	csr3 := filepath.Join(out, "three.csr")
	caMustOpenSSL(t, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", filepath.Join(out, "three-key.pem"), "-out", csr3, "-subj", "/CN=three",
		"-addext", "subjectAltName=DNS:evil.example.com")
	caMust(t, env, "ca", "sign", "--dir", dir, "--csr", csr3, "--profile", "server", "--dns", "good.example.com", "--out", filepath.Join(out, "three.pem"))
	text = caMustOpenSSL(t, "x509", "-in", filepath.Join(out, "three.pem"), "-noout", "-ext", "subjectAltName")
	if !strings.Contains(text, "DNS:good.example.com") || strings.Contains(text, "evil") {
		t.Errorf("--dns did not replace the CSR's names:\n%s", text)
	}
}

// Serials are printed as openssl prints them, by issue, list and revoke,
// and accepted in lower case and with colons.
func TestCASerialsInOpenSSLForm(t *testing.T) {
	dir := caInit(t)
	env := map[string]string{passphraseEnv: caTestPass}
	out := t.TempDir()
	var serials []string
	for i := range 3 { // the leading-zero case is pinned by internal/serial's openssl test
		prefix := filepath.Join(out, "c"+string(rune('a'+i)))
		issued := caMust(t, env, "ca", "issue", "--dir", dir, "--profile", "client", "--cn", "c", "--out", prefix)
		got := strings.TrimPrefix(strings.TrimSpace(caMustOpenSSL(t, "x509", "-in", prefix+".pem", "-noout", "-serial")), "serial=")
		if !strings.Contains(issued, "serial "+got+",") {
			t.Fatalf("ca issue printed %q; openssl says serial=%s", issued, got)
		}
		serials = append(serials, got)
	}
	list := caMust(t, env, "ca", "list", "--dir", dir)
	for _, s := range serials {
		if !strings.Contains(list, s+" ") {
			t.Errorf("ca list lacks %s:\n%s", s, list)
		}
	}
	// Lower case with colons, as `openssl x509 -text` shows it.
	var colons []string
	for i := 0; i < len(serials[0]); i += 2 {
		colons = append(colons, strings.ToLower(serials[0][i:i+2]))
	}
	rev := caMust(t, env, "ca", "revoke", "--dir", dir, "--serial", strings.Join(colons, ":"))
	if !strings.Contains(rev, "revoked "+serials[0]+" ") {
		t.Errorf("ca revoke printed %q, want serial %s", rev, serials[0])
	}
	rev = caMust(t, env, "ca", "revoke", "--dir", dir, "--serial", "serial="+serials[1])
	if !strings.Contains(rev, "revoked "+serials[1]+" ") {
		t.Errorf("ca revoke printed %q, want serial %s", rev, serials[1])
	}
}

// ca crl --out - writes the CRL to standard output (no file named "-"),
// and ca serve's help shows the OCSP command that works for an
// intermediate CA.
func TestCACRLStdoutAndServeHelp(t *testing.T) {
	dir := caInit(t)
	env := map[string]string{passphraseEnv: caTestPass}
	tmp := t.TempDir()
	t.Chdir(tmp)
	code, out, errs := caRun(t, env, "ca", "crl", "--dir", dir, "--out", "-")
	if code != 0 || !strings.HasPrefix(out, "-----BEGIN X509 CRL-----") || !strings.Contains(errs, "standard output") {
		t.Fatalf("ca crl --out -: exit %d, stdout %.60q, stderr %q", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(tmp, "-")); err == nil {
		t.Error("a file named - was written")
	}
	crl := caWrite(t, filepath.Join(tmp, "stdout.crl"), out)
	caMustOpenSSL(t, "crl", "-in", crl, "-noout", "-CAfile", filepath.Join(dir, "ca.pem"))

	help := caMust(t, nil, "ca", "serve", "--help")
	if !strings.Contains(help, "openssl ocsp -issuer pki/intermediate.pem -CAfile pki/ca.pem") {
		t.Errorf("ca serve --help lacks the intermediate OCSP example:\n%s", help)
	}
}
