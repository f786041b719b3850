package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const caTestPass = "correct horse battery staple"

// caRun runs gatehouse with args as a process would (the error printed on
// stderr) and returns exit code, stdout and stderr.
func caRun(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(&Env{
		Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb,
		Getenv: func(k string) string { return env[k] },
		Ctx:    t.Context(),
	}, args)
	return code, out.String(), errb.String()
}

// caMust runs gatehouse and fails the test unless it exits 0.
func caMust(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	code, out, errs := caRun(t, env, args...)
	if code != 0 {
		t.Fatalf("gatehouse %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

func caOpenSSL(t *testing.T, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	out, err := exec.Command("openssl", args...).CombinedOutput()
	return string(out), err
}

func caMustOpenSSL(t *testing.T, args ...string) string {
	t.Helper()
	out, err := caOpenSSL(t, args...)
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func caWrite(t *testing.T, path, data string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// caFiles names the files in dir.
func caFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// lockedBuffer is a bytes.Buffer safe for one writer and one reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// caServe starts `gatehouse ca serve` on 127.0.0.1:0 and returns its base
// URL once it prints its ready line; it is stopped at the end of the test.
func caServe(t *testing.T, env map[string]string, dir string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run(&Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr,
			Getenv: func(k string) string { return env[k] }, Ctx: ctx},
			[]string{"ca", "serve", "--dir", dir, "--listen", "127.0.0.1:0", "--poll", "50ms"})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("ca serve exit %d: %s", code, stderr.String())
			}
		case <-time.After(10 * time.Second):
			t.Error("ca serve did not stop")
		}
	})
	ready := regexp.MustCompile(`OCSP at (http://127\.0\.0\.1:\d+)/ocsp`)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if m := ready.FindStringSubmatch(stdout.String()); m != nil {
			return m[1]
		}
		select {
		case code := <-done:
			t.Fatalf("ca serve exited %d: %s", code, stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatal("ca serve did not start")
	return ""
}

// TestCAEndToEnd is the flow a team adopting mTLS follows: create a CA,
// issue server and client certificates, sign a CSR, serve CRL and OCSP,
// revoke the client and see CRL and OCSP say so, all checked by openssl.
func TestCAEndToEnd(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "pki")
	passFile := caWrite(t, filepath.Join(tmp, "ca-pass"), caTestPass+"\n")
	out := caMust(t, nil, "ca", "init", "--dir", dir, "--name", "Test CA", "--intermediate",
		"--url", "http://127.0.0.1:8089", "--passphrase-file", passFile)
	if !strings.Contains(out, `created CA "Test CA"`) {
		t.Errorf("init output:\n%s", out)
	}
	root, inter := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "intermediate.pem")
	env := map[string]string{passphraseEnv: caTestPass}

	// A server certificate; its key unencrypted with a warning.
	code, out, errs := caRun(t, env, "ca", "issue", "--dir", dir, "--profile", "server", "--cn", "api.example.com",
		"--dns", "api.example.com", "--ip", "127.0.0.1", "--out", filepath.Join(tmp, "api"))
	if code != 0 || !strings.Contains(errs, "api-key.pem is not encrypted") {
		t.Fatalf("issue server: %d\n%s%s", code, out, errs)
	}
	// A client certificate with an encrypted key and a PKCS#12 bundle.
	p12Pass := caWrite(t, filepath.Join(tmp, "p12-pass"), "p12 secret\n")
	keyPass := caWrite(t, filepath.Join(tmp, "key-pass"), "key secret\n")
	caMust(t, env, "ca", "issue", "--dir", dir, "--profile", "client", "--cn", "partner-a",
		"--uri", "spiffe://example.com/partner-a", "--email", "ops@partner.example", "--validity", "30d",
		"--out", filepath.Join(tmp, "partner"), "--p12", "--p12-password-file", p12Pass, "--key-passphrase-file", keyPass)
	api, partner := filepath.Join(tmp, "api.pem"), filepath.Join(tmp, "partner.pem")
	for leaf, purpose := range map[string]string{api: "sslserver", partner: "sslclient"} {
		if out := caMustOpenSSL(t, "verify", "-purpose", purpose, "-CAfile", root, "-untrusted", inter, leaf); !strings.Contains(out, ": OK") {
			t.Errorf("verify %s: %s", leaf, out)
		}
		if n := strings.Count(caMustOpenSSL(t, "crl2pkcs7", "-nocrl", "-certfile", leaf), "BEGIN PKCS7"); n != 1 {
			t.Errorf("%s unreadable", leaf)
		}
	}
	text := caMustOpenSSL(t, "x509", "-in", partner, "-noout", "-text")
	for _, want := range []string{"TLS Web Client Authentication", "Digital Signature", "CA:FALSE",
		"URI:spiffe://example.com/partner-a", "email:ops@partner.example",
		"URI:http://127.0.0.1:8089/crl", "OCSP - URI:http://127.0.0.1:8089/ocsp", "Issuer: CN = Test CA Intermediate"} {
		if !strings.Contains(text, want) {
			t.Errorf("partner certificate lacks %q:\n%s", want, text)
		}
	}
	if strings.Count(readFile(t, partner), "BEGIN CERTIFICATE") != 2 {
		t.Error("partner.pem is not leaf + intermediate")
	}
	caMustOpenSSL(t, "pkey", "-in", filepath.Join(tmp, "partner-key.pem"), "-passin", "file:"+keyPass, "-noout")
	if out, err := caOpenSSL(t, "pkey", "-in", filepath.Join(tmp, "partner-key.pem"), "-passin", "pass:wrong", "-noout"); err == nil {
		t.Errorf("encrypted key opened with a wrong passphrase:\n%s", out)
	}
	if out := caMustOpenSSL(t, "pkcs12", "-info", "-in", filepath.Join(tmp, "partner.p12"), "-passin", "file:"+p12Pass, "-passout", "pass:x"); !strings.Contains(out, "PBES2") {
		t.Errorf("pkcs12 -info:\n%s", out)
	}
	for _, f := range []string{"api-key.pem", "partner-key.pem", "partner.p12"} {
		if fi, err := os.Stat(filepath.Join(tmp, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", f, fi.Mode(), err)
		}
	}
	// The CA keys open with openssl and the passphrase, and only with it.
	caMustOpenSSL(t, "pkey", "-in", filepath.Join(dir, "intermediate-key.pem"), "-passin", "file:"+passFile, "-noout")
	if _, err := caOpenSSL(t, "pkey", "-in", filepath.Join(dir, "ca-key.pem"), "-passin", "file:"+p12Pass, "-noout"); err == nil {
		t.Error("CA key opened with a wrong passphrase")
	}

	// A CSR made by openssl req, signed by ca sign.
	csr := filepath.Join(tmp, "web.csr")
	caMustOpenSSL(t, "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", filepath.Join(tmp, "web-key.pem"),
		"-out", csr, "-subj", "/CN=web.example.com", "-addext", "subjectAltName=DNS:web.example.com")
	caMust(t, env, "ca", "sign", "--dir", dir, "--csr", csr, "--profile", "server", "--out", filepath.Join(tmp, "web.pem"))
	if out := caMustOpenSSL(t, "verify", "-purpose", "sslserver", "-CAfile", root, "-untrusted", inter, filepath.Join(tmp, "web.pem")); !strings.Contains(out, ": OK") {
		t.Error(out)
	}
	if text := caMustOpenSSL(t, "x509", "-in", filepath.Join(tmp, "web.pem"), "-noout", "-text"); !strings.Contains(text, "Key Encipherment") {
		t.Errorf("RSA server certificate lacks keyEncipherment:\n%s", text)
	}

	// The inventory lists all three.
	var entries []listEntry
	if err := json.Unmarshal([]byte(caMust(t, nil, "ca", "list", "--dir", dir, "--json")), &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 {
		t.Fatalf("ca list: %d entries", len(entries))
	}
	var partnerSerial string
	for _, e := range entries {
		if e.Subject == "CN=partner-a" {
			partnerSerial = e.Serial
			if !slices.Contains(e.SANs, "uri:spiffe://example.com/partner-a") || e.Profile != "client" || e.Status != "valid" {
				t.Errorf("partner entry: %+v", e)
			}
		}
	}
	if n := len(jsonList(t, "ca", "list", "--dir", dir, "--json", "--expiring-within", "31d")); n != 1 {
		t.Errorf("expiring within 31d: %d entries, want the 30d client", n)
	}

	// ca serve answers OCSP: good, then revoked after ca revoke (another
	// CA handle, as another process would be).
	base := caServe(t, env, dir)
	ocspStatus := func() string {
		return caMustOpenSSL(t, "ocsp", "-issuer", inter, "-CAfile", root, "-cert", partner, "-url", base+"/ocsp")
	}
	if out := ocspStatus(); !strings.Contains(out, partner+": good") || !strings.Contains(out, "Response verify OK") {
		t.Fatalf("OCSP before revoke:\n%s", out)
	}
	out = caMust(t, env, "ca", "revoke", "--dir", dir, "--serial", strings.ToUpper(partnerSerial), "--reason", "keyCompromise")
	if !strings.Contains(out, "revoked "+partnerSerial) {
		t.Errorf("revoke output: %s", out)
	}
	deadline := time.Now().Add(15 * time.Second)
	for out = ocspStatus(); !strings.Contains(out, partner+": revoked"); out = ocspStatus() {
		if time.Now().After(deadline) {
			t.Fatalf("OCSP never said revoked:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(out, "Reason: keyCompromise") {
		t.Errorf("OCSP after revoke:\n%s", out)
	}
	// Revoking twice is reported, not duplicated.
	code, _, errs = caRun(t, env, "ca", "revoke", "--dir", dir, "--serial", partnerSerial, "--reason", "superseded")
	if code != 0 || !strings.Contains(errs, "already revoked") || !strings.Contains(errs, "keyCompromise") {
		t.Errorf("second revoke: %d %s", code, errs)
	}

	// The CRL, from ca crl and from ca serve, makes openssl refuse the
	// revoked certificate and accept the others.
	crl := filepath.Join(tmp, "ca.crl")
	caMust(t, nil, "ca", "crl", "--dir", dir, "--out", crl)
	text = caMustOpenSSL(t, "crl", "-in", crl, "-noout", "-text")
	if !strings.Contains(text, strings.ToUpper(partnerSerial)) || !strings.Contains(text, "X509v3 CRL Number") {
		t.Errorf("openssl crl -text:\n%s", text)
	}
	served := filepath.Join(tmp, "served.crl")
	resp := httpGet(t, base+"/crl")
	caWrite(t, served, resp)
	for _, c := range []struct{ file, form string }{{crl, "PEM"}, {served, "DER"}} {
		pemCRL := c.file
		if c.form == "DER" {
			pemCRL = c.file + ".pem"
			caMustOpenSSL(t, "crl", "-inform", "DER", "-in", c.file, "-out", pemCRL)
		}
		if out, err := caOpenSSL(t, "verify", "-crl_check", "-CRLfile", pemCRL, "-CAfile", root, "-untrusted", inter, partner); err == nil || !strings.Contains(out, "certificate revoked") {
			t.Errorf("%s CRL: revoked certificate verified: %v\n%s", c.form, err, out)
		}
		if out, err := caOpenSSL(t, "verify", "-crl_check", "-CRLfile", pemCRL, "-CAfile", root, "-untrusted", inter, api); err != nil {
			t.Errorf("%s CRL: good certificate refused: %v\n%s", c.form, err, out)
		}
	}
	out = caMust(t, nil, "ca", "list", "--dir", dir, "--revoked")
	if !strings.Contains(out, partnerSerial) || !strings.Contains(out, "revoked (keyCompromise)") || strings.Contains(out, "api.example.com") {
		t.Errorf("ca list --revoked:\n%s", out)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func jsonList(t *testing.T, args ...string) []listEntry {
	t.Helper()
	var entries []listEntry
	if err := json.Unmarshal([]byte(caMust(t, nil, args...)), &entries); err != nil {
		t.Fatal(err)
	}
	return entries
}
