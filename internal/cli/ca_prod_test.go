package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testhsm"
	"github.com/gatehouse/gatehouse/internal/testpg"
)

// TestMain stops what the tests started once for the package: the
// PostgreSQL cluster and the SoftHSM2 token directory.
func TestMain(m *testing.M) {
	code := m.Run()
	testpg.Stop()
	testhsm.Cleanup()
	os.Exit(code)
}

// regexpSerial finds the serial in `ca issue` output.
var regexpSerial = regexp.MustCompile(`serial ([0-9a-f]+),`)

// TestCAMigrateThenReplicas moves a working CA's inventory from SQLite to
// a real PostgreSQL with `ca migrate` (same records after, counts
// verified, a second move refused), then runs two `ca serve` replicas on
// it: a `ca revoke` is answered revoked by both, checked by openssl.
func TestCAMigrateThenReplicas(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "pki")
	env := map[string]string{passphraseEnv: caTestPass}
	caMust(t, env, "ca", "init", "--dir", dir, "--intermediate")
	var serials []string
	for _, cn := range []string{"a", "b", "c"} {
		out := caMust(t, env, "ca", "issue", "--dir", dir, "--profile", "client", "--cn", cn, "--out", filepath.Join(tmp, cn))
		serials = append(serials, regexpSerial.FindStringSubmatch(out)[1])
	}
	caMust(t, env, "ca", "revoke", "--dir", dir, "--serial", serials[0], "--reason", "superseded")
	before := caMust(t, nil, "ca", "list", "--dir", dir, "--json")

	url := testpg.NewDB(t)
	out := caMust(t, nil, "ca", "migrate", "--dir", dir, "--from", "sqlite", "--to", url)
	if !strings.Contains(out, "3 certificates (1 revoked)") || !strings.Contains(out, "counts verified") {
		t.Errorf("migrate output:\n%s", out)
	}
	if after := caMust(t, nil, "ca", "list", "--dir", dir, "--json"); after != before {
		t.Errorf("inventory changed in the move:\nbefore %s\nafter  %s", before, after)
	}
	if code, _, errs := caRun(t, nil, "ca", "migrate", "--dir", dir, "--to", url); code == 0 || !strings.Contains(errs, "already in PostgreSQL") {
		t.Errorf("second migrate: exit %d %s", code, errs)
	}
	if code, _, errs := caRun(t, nil, "ca", "migrate", "--dir", dir, "--to", "postgres://u:secret@127.0.0.1/x"); code == 0 || strings.Contains(errs, "secret") {
		t.Errorf("migrate with a password in the URL: exit %d %s", code, errs)
	}

	// Two replicas; the CLI revokes on the shared inventory.
	baseA, baseB := caServe(t, env, dir), caServe(t, env, dir)
	caMust(t, env, "ca", "revoke", "--dir", dir, "--serial", serials[1], "--reason", "keyCompromise")
	root, inter := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "intermediate.pem")
	leaf := filepath.Join(tmp, "b.pem")
	for _, base := range []string{baseA, baseB} {
		deadline := time.Now().Add(2 * time.Second) // poll 50ms; NOTIFY is sooner
		for {
			out := caMustOpenSSL(t, "ocsp", "-issuer", inter, "-CAfile", root, "-cert", leaf, "-url", base+"/ocsp")
			if strings.Contains(out, "Response verify OK") && strings.Contains(out, leaf+": revoked") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica %s after ca revoke:\n%s", base, out)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
