package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/scan"
	"github.com/gatehouse/gatehouse/internal/testpki"
)

func scanRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env := &Env{Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }}
	code := Run(env, append([]string{"scan"}, args...))
	return code, stdout.String(), stderr.String()
}

// TestScanConfig runs `gatehouse scan --config` against `gatehouse serve`
// with the same file: A+, every mTLS check passed, JSON on stdout, a
// progress line per step on stderr, and --fail-below's exit codes.
func TestScanConfig(t *testing.T) {
	dir := t.TempDir()
	root := testpki.NewRoot(t, "CLI Scan Root")
	inter := root.Intermediate(t, "CLI Scan Issuing CA")
	inter.Server(t, "api.example.com").Write(t, dir, "api")
	inter.Server(t, "other.example.com").Write(t, dir, "other")
	clientCert, clientKey := inter.Client(t, "cli-scan-client").Write(t, dir, "client")
	root.WriteCert(t, dir, "ca.pem")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // serve listens on it again
	cfg := filepath.Join(dir, "gatehouse.yaml")
	testpki.WriteFile(t, cfg, []byte(fmt.Sprintf(`listen: %q
server_tls:
  certificates:
    - { cert: api.pem, key: api-key.pem }
    - { cert: other.pem, key: other-key.pem }
client_auth:
  mode: require
  trusted_cas: [ca.pem]
routes:
  - { name: all, path: /, backend: %s }
log: { audit: "off" }
# Two scans in a row from one address fail more handshakes than the
# default budget (burst 50) allows; the second would be throttled, which
# the scan reports (internal_error answers, grade A- at best).
limits: { failed_handshakes_per_ip: { rate: 100/s, burst: 1000 } }
`, addr, newEchoBackend(t))))
	startServe(t, cfg)

	code, out, errOut := scanRun(t, "--config", cfg, "--cert", clientCert, "--key", clientKey, "--http", "--json", "--fail-below", "A+")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	var r scan.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if r.Schema != scan.SchemaVersion || r.Grade.Grade != "A+" || r.ServerName != "api.example.com" || r.Target != addr {
		t.Errorf("report: schema %d grade %s name %q target %q (caps %+v)", r.Schema, r.Grade.Grade, r.ServerName, r.Target, r.Grade.Caps)
	}
	for _, c := range r.MTLS {
		if c.ID != "requested" && c.Status != scan.Pass {
			t.Errorf("mTLS %s: %s %s", c.ID, c.Status, c.Detail)
		}
	}
	if len(r.MTLS) != 8 {
		t.Errorf("%d mTLS checks, want 8: %+v", len(r.MTLS), r.MTLS)
	}
	if !strings.Contains(errOut, "scanning "+addr+": protocols and cipher suites") {
		t.Errorf("no progress on stderr: %q", errOut)
	}

	// Without --http there is no HSTS evidence: A, below A+ -> exit 3.
	code, out, errOut = scanRun(t, "--config", cfg, "--fail-below", "A+")
	if code != ExitGradeBelow || !strings.Contains(errOut, "grade A is below A+") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{"Overall rating: A", "capped at A  A+ needs HSTS", "Client certificates (mTLS)",
		"impostor CA (trusted CA's name, other key) refused pass", "certificate without clientAuth EKU refused         pass"} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b[") {
		t.Error("colour codes in a report that is not on a terminal")
	}
}

func TestScanUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, ExitUsage, "give HOST:PORT or --config FILE"},
		{[]string{"example"}, ExitUsage, "want HOST:PORT"},
		{[]string{"127.0.0.1:1", "--fail-below", "Z"}, ExitUsage, `--fail-below "Z": not a grade`},
		{[]string{"127.0.0.1:1", "--cert", "x.pem"}, ExitUsage, "--cert and --key go together"},
		{[]string{"127.0.0.1:1", "--ca", "/nonexistent.pem"}, ExitUsage, "--ca"},
		{[]string{"--config", "/nonexistent.yaml"}, ExitUsage, "read config"},
		{[]string{"127.0.0.1:1"}, ExitError, "connect 127.0.0.1:1"},
	} {
		code, _, errOut := scanRun(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("scan %v: exit %d, stderr %q; want %d and %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
}
