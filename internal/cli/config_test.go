package cli

import (
	"bytes"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/pki"
	"github.com/gatehouse/gatehouse/internal/testpki"
)

var update = flag.Bool("update", false, "rewrite golden files")

// Each testdata/check/NAME.yaml is checked; the output (exit code and
// stderr) must match NAME.golden word for word. Run with -update after a
// deliberate wording change.
func TestConfigCheckGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/check/*.yaml")
	if len(files) == 0 {
		t.Fatal("no golden inputs")
	}
	for _, in := range files {
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Run(&Env{Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }},
				[]string{"config", "check", "--config", in})
			got := "exit " + strconv.Itoa(code) + "\n" + stderr.String()
			golden := strings.TrimSuffix(in, ".yaml") + ".golden"
			if *update {
				os.WriteFile(golden, []byte(got), 0o644)
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden (run with -update to create it): %v", err)
			}
			if got != string(want) {
				t.Errorf("output differs from %s:\n--- got\n%s--- want\n%s", golden, got, want)
			}
			if code == 0 {
				t.Errorf("invalid config passed the check")
			}
			// Every problem is one line that names the file.
			for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
				if !strings.HasPrefix(line, in) && !strings.HasPrefix(line, "gatehouse: "+in) {
					t.Errorf("line does not start with the file name: %q", line)
				}
			}
		})
	}
}

func TestConfigCheckValid(t *testing.T) {
	dir := t.TempDir()
	root := testpki.NewRoot(t, "root")
	root.WriteCert(t, dir, "ca.pem")
	root.Server(t, "localhost").Write(t, dir, "server")
	cfg := filepath.Join(dir, "gatehouse.yaml")
	testpki.WriteFile(t, cfg, []byte(`server_tls:
  certificates: [{cert: server.pem, key: server-key.pem}]
client_auth: { mode: require, trusted_cas: [ca.pem] }
routes:
  - { name: api, path: /api/, backend: "http://127.0.0.1:9001" }
`))
	var stdout, stderr bytes.Buffer
	code := Run(&Env{Stdout: &stdout, Stderr: &stderr}, []string{"config", "check", "--config", cfg})
	if code != 0 || stdout.String() != cfg+": OK (1 routes, 1 certificates, client_auth require)\n" || stderr.Len() != 0 {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
	// A server certificate without serverAuth is caught by the check.
	root.Client(t, "not-a-server").Write(t, dir, "server")
	stdout.Reset()
	code = Run(&Env{Stdout: &stdout, Stderr: &stderr}, []string{"config", "check", "--config", cfg})
	if code == 0 || !strings.Contains(stderr.String(), "lacks the serverAuth extended key usage") {
		t.Fatalf("client cert as server cert: exit %d, %s", code, stderr.String())
	}
}

// encryptedKeyConfig writes a configuration whose server key is encrypted
// with the passphrase "key secret", read from key.pass (not written
// here); it returns the configuration's path and key.pass's.
func encryptedKeyConfig(t *testing.T) (cfg, pass string) {
	t.Helper()
	dir := t.TempDir()
	root := testpki.NewRoot(t, "root")
	root.WriteCert(t, dir, "ca.pem")
	leaf := root.Server(t, "localhost")
	leaf.Write(t, dir, "server")
	enc, err := pki.MarshalKeyPEM(leaf.Key, []byte("key secret"))
	if err != nil {
		t.Fatal(err)
	}
	testpki.WriteFile(t, filepath.Join(dir, "server-key.pem"), enc)
	cfg = filepath.Join(dir, "gatehouse.yaml")
	testpki.WriteFile(t, cfg, []byte(`server_tls:
  certificates: [{cert: server.pem, key: server-key.pem, key_passphrase_file: key.pass}]
client_auth: { mode: require, trusted_cas: [ca.pem] }
routes:
  - { name: api, backend: "http://127.0.0.1:9001" }
`))
	return cfg, filepath.Join(dir, "key.pass")
}

// configCheck runs `config check --config cfg`.
func configCheck(cfg string) (code int, stderr string) {
	var out, errOut bytes.Buffer
	code = Run(&Env{Stdout: &out, Stderr: &errOut}, []string{"config", "check", "--config", cfg})
	return code, errOut.String()
}

// An encrypted server key loads with its passphrase file; a wrong
// passphrase is one clear line.
func TestConfigCheckEncryptedKey(t *testing.T) {
	cfg, pass := encryptedKeyConfig(t)
	testpki.WriteFile(t, pass, []byte("key secret\n"))
	if code, stderr := configCheck(cfg); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	testpki.WriteFile(t, pass, []byte("wrong\n"))
	code, stderr := configCheck(cfg)
	want := cfg + ":2: server_tls.certificates[0]: key " + filepath.Join(filepath.Dir(cfg), "server-key.pem") + ": wrong passphrase (or the key file is corrupt)\n"
	if code != 1 || !strings.HasPrefix(stderr, want) {
		t.Fatalf("exit %d, stderr:\n%s\nwant first line:\n%s", code, stderr, want)
	}
}

// The admin listener answers /healthz and /readyz on loopback.
func TestAdminEndpoints(t *testing.T) {
	dir := t.TempDir()
	root := testpki.NewRoot(t, "root")
	root.WriteCert(t, dir, "ca.pem")
	root.Server(t, "localhost").Write(t, dir, "server")
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	adminAddr := ln.Addr().String()
	ln.Close()
	cfg := filepath.Join(dir, "gatehouse.yaml")
	testpki.WriteFile(t, cfg, []byte(`listen: "127.0.0.1:0"
server_tls:
  certificates: [{cert: server.pem, key: server-key.pem}]
client_auth: { mode: require, trusted_cas: [ca.pem] }
admin: { listen: "`+adminAddr+`" }
routes:
  - { name: api, backend: "http://127.0.0.1:9001" }
`))
	startServe(t, cfg)
	for path, want := range map[string]string{"/healthz": "ok\n", "/readyz": "ready\n"} {
		resp, err := http.Get("http://" + adminAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != want {
			t.Errorf("%s: %d %q", path, resp.StatusCode, b)
		}
	}
}
