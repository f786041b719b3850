package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `cert request` does not overwrite an existing certificate or key unless
// --force; the refusal comes before the token is sent, so the same token
// still works afterwards.
func TestCertRequestRefusesOverwrite(t *testing.T) {
	env := map[string]string{passphraseEnv: caTestPass}
	work := t.TempDir()
	dir := filepath.Join(work, "pki")
	caMust(t, env, "ca", "init", "--dir", dir)
	api, _ := caServeTLS(t, env, dir)
	root := filepath.Join(dir, "ca.pem")
	token := func() string {
		return strings.TrimSpace(caMust(t, env, "ca", "token", "--dir", dir, "--profile", "client", "--cn", "partner-a"))
	}
	out := filepath.Join(work, "partner-a")
	caMust(t, env, "cert", "request", "--ca-url", api, "--root", root, "--token", token(), "--out", out)
	certBefore, _ := os.ReadFile(out + ".pem")
	keyBefore, _ := os.ReadFile(out + "-key.pem")

	tok := token()
	code, _, stderr := caRun(t, env, "cert", "request", "--ca-url", api, "--root", root, "--token", tok, "--out", out)
	if code != ExitUsage || !strings.Contains(stderr, out+".pem, "+out+"-key.pem already exists; not overwriting (use --force") {
		t.Fatalf("second request into the same prefix: exit %d, stderr %q; want a refusal naming both files and --force", code, stderr)
	}
	certAfter, _ := os.ReadFile(out + ".pem")
	keyAfter, _ := os.ReadFile(out + "-key.pem")
	if !bytes.Equal(certBefore, certAfter) || !bytes.Equal(keyBefore, keyAfter) {
		t.Fatal("the refused request changed the files")
	}
	// Only the key left from an earlier run is refused as well.
	os.Remove(out + ".pem")
	if code, _, stderr := caRun(t, env, "cert", "request", "--ca-url", api, "--root", root, "--token", tok, "--out", out); code != ExitUsage ||
		!strings.Contains(stderr, out+"-key.pem already exists") {
		t.Fatalf("key left behind: exit %d, stderr %q", code, stderr)
	}
	// The refused token was not spent: with --force it replaces the files.
	caMust(t, env, "cert", "request", "--ca-url", api, "--root", root, "--token", tok, "--out", out, "--force")
	keyAfter, _ = os.ReadFile(out + "-key.pem")
	if bytes.Equal(keyBefore, keyAfter) {
		t.Fatal("--force did not write a new key")
	}
	if leafOf(t, out+".pem").Subject.CommonName != "partner-a" {
		t.Fatal("--force did not write the new certificate")
	}
}
