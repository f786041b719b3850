package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every configuration in examples/ passes `gatehouse config check`, with
// the files it names minted at test time by gatehouse's own CA (an
// example is copied beside them; CRL URLs are pointed at a running
// `gatehouse ca serve`).
func TestExamplesPassConfigCheck(t *testing.T) {
	examples, _ := filepath.Glob("../../examples/*.yaml")
	if len(examples) < 6 {
		t.Fatalf("found %d examples, want at least 6", len(examples))
	}
	dir := t.TempDir()
	pki := filepath.Join(dir, "pki")
	env := map[string]string{passphraseEnv: caTestPass}
	caMust(t, env, "ca", "init", "--dir", pki, "--name", "Example CA", "--intermediate")
	caMust(t, env, "ca", "issue", "--dir", pki, "--profile", "server", "--cn", "api.example.com", "--dns", "api.example.com", "--out", filepath.Join(pki, "api"))
	caMust(t, env, "ca", "issue", "--dir", pki, "--profile", "client", "--cn", "gatehouse-gw", "--out", filepath.Join(pki, "gw"))
	partner := filepath.Join(dir, "partner")
	caMust(t, env, "ca", "init", "--dir", partner, "--name", "Partner A CA")
	for from, to := range map[string]string{filepath.Join(partner, "ca.pem"): "partner-ca.pem", filepath.Join(pki, "ca.pem"): "backend-ca.pem"} {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		caWrite(t, filepath.Join(pki, to), string(b))
	}
	publisher := caServe(t, env, pki)

	for _, ex := range examples {
		name := filepath.Base(ex)
		t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
			b, err := os.ReadFile(ex)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(b, []byte("# ")) {
				t.Errorf("%s does not start with a comment saying what it is for", name)
			}
			cfg := caWrite(t, filepath.Join(dir, name), strings.ReplaceAll(string(b), "http://127.0.0.1:8089", publisher))
			code, stdout, stderr := caRun(t, nil, "config", "check", cfg)
			if code != 0 || !strings.Contains(stdout, ": OK (") {
				t.Errorf("config check %s: exit %d\n%s%s", name, code, stdout, stderr)
			}
		})
	}
}
