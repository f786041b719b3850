package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testpki"
)

// config check warns (and still passes) when a private key or passphrase
// file is readable by group or others; a 0600 file says nothing.
func TestConfigCheckWarnsLooseKeyModes(t *testing.T) {
	dir := t.TempDir()
	root := testpki.NewRoot(t, "root")
	root.WriteCert(t, dir, "ca.pem")
	root.Server(t, "localhost").Write(t, dir, "server")
	testpki.WriteFile(t, filepath.Join(dir, "key.pass"), []byte("x\n"))
	cfg := filepath.Join(dir, "gatehouse.yaml")
	testpki.WriteFile(t, cfg, []byte(`server_tls:
  certificates:
    - cert: server.pem
      key: server-key.pem
client_auth: { mode: require, trusted_cas: [ca.pem] }
routes:
  - { name: api, backend: "http://127.0.0.1:9001" }
`))
	key := filepath.Join(dir, "server-key.pem")
	run := func() (int, string) {
		var stdout, stderr bytes.Buffer
		code := Run(&Env{Stdout: &stdout, Stderr: &stderr}, []string{"config", "check", "--config", cfg})
		return code, stderr.String()
	}
	os.Chmod(key, 0o600)
	if code, stderr := run(); code != 0 || stderr != "" {
		t.Fatalf("0600 key: exit %d, stderr %q", code, stderr)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644} {
		os.Chmod(key, mode)
		code, stderr := run()
		want := "warning: " + cfg + ":4: server_tls.certificates[0].key: server-key.pem is readable by group or others"
		if code != 0 || !strings.Contains(stderr, want) || !strings.Contains(stderr, "chmod 600 "+key) {
			t.Fatalf("mode %o: exit %d, stderr %q, want %q", mode, code, stderr, want)
		}
	}
}

func TestConfigCheckWarnsAllowMissingEKU(t *testing.T) {
	dir := t.TempDir()
	root := testpki.NewRoot(t, "root")
	root.WriteCert(t, dir, "ca.pem")
	root.Server(t, "localhost").Write(t, dir, "server")
	cfg := filepath.Join(dir, "gatehouse.yaml")
	testpki.WriteFile(t, cfg, []byte(`server_tls:
  certificates: [{cert: server.pem, key: server-key.pem}]
client_auth:
  trusted_cas: [ca.pem]
  allow_missing_eku: true
routes:
  - { name: api, backend: "http://127.0.0.1:9001" }
`))
	var stdout, stderr bytes.Buffer
	code := Run(&Env{Stdout: &stdout, Stderr: &stderr}, []string{"config", "check", "--config", cfg})
	if want := "warning: " + cfg + ":5: client_auth.allow_missing_eku:"; code != 0 || !strings.Contains(stderr.String(), want) {
		t.Fatalf("exit %d, stderr %q, want %q", code, stderr.String(), want)
	}
}
