package cli

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/pki/store"
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
var regexpSerial = regexp.MustCompile(`serial ([0-9A-Fa-f]+),`)

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
	// A token spent before the move (as `ca serve` spends one).
	ctx := context.Background()
	inv, err := store.OpenSQLite(ctx, filepath.Join(dir, "inventory.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := inv.UseToken(ctx, "spent-before-move", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	inv.Close()

	url := testpg.NewDB(t)
	out := caMust(t, nil, "ca", "migrate", "--dir", dir, "--from", "sqlite", "--to", url)
	if !strings.Contains(out, "3 certificates (1 revoked)") || !strings.Contains(out, "1 spent enrollment tokens") || !strings.Contains(out, "counts verified") {
		t.Errorf("migrate output:\n%s", out)
	}
	pg, err := store.OpenPostgres(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if err := pg.UseToken(ctx, "spent-before-move", time.Now().Add(time.Hour)); !errors.Is(err, store.ErrTokenUsed) {
		t.Errorf("a token spent before the move, presented after it: %v; want ErrTokenUsed", err)
	}
	pg.Close()
	if after := caMust(t, nil, "ca", "list", "--dir", dir, "--json"); after != before {
		t.Errorf("inventory changed in the move:\nbefore %s\nafter  %s", before, after)
	}
	if code, _, errs := caRun(t, nil, "ca", "migrate", "--dir", dir, "--to", url); code == 0 || !strings.Contains(errs, "already in PostgreSQL") {
		t.Errorf("second migrate: exit %d %s", code, errs)
	}
	if code, _, errs := caRun(t, nil, "ca", "migrate", "--dir", dir, "--to", "postgres://u:secret@127.0.0.1/x"); code == 0 || strings.Contains(errs, "secret") {
		t.Errorf("migrate with a password in the URL: exit %d %s", code, errs)
	}

	// Two replicas, each its own process; the CLI revokes on the shared
	// inventory.
	baseA, baseB := caServeProcess(t, dir), caServeProcess(t, dir)
	caMust(t, env, "ca", "revoke", "--dir", dir, "--serial", serials[1], "--reason", "keyCompromise")
	root, inter := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "intermediate.pem")
	leaf := filepath.Join(tmp, "b.pem")
	for _, base := range []string{baseA, baseB} {
		deadline := time.Now().Add(2 * time.Second) // bound: --poll 1s; NOTIFY is sooner
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

// TestHelperCAServe is not a test: caServeProcess re-executes the test
// binary to run it as a separate `ca serve` process.
func TestHelperCAServe(t *testing.T) {
	dir := os.Getenv("GATEHOUSE_TEST_CA_SERVE_DIR")
	if dir == "" {
		return
	}
	os.Exit(Run(&Env{Stdin: strings.NewReader(""), Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv},
		[]string{"ca", "serve", "--dir", dir, "--listen", "127.0.0.1:0", "--poll", "1s"}))
}

// caServeProcess starts `ca serve` on dir in a process of its own and
// returns its base URL; the process is killed when the test ends.
func caServeProcess(t *testing.T, dir string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperCAServe$")
	cmd.Env = append(os.Environ(), "GATEHOUSE_TEST_CA_SERVE_DIR="+dir, passphraseEnv+"="+caTestPass)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := regexp.MustCompile(`OCSP at (http://127\.0\.0\.1:\d+)/ocsp`).FindStringSubmatch(sc.Text()); m != nil {
				ready <- m[1]
			}
		}
	}()
	select {
	case base := <-ready:
		return base
	case <-time.After(20 * time.Second):
		t.Fatalf("ca serve process did not start: %s", stderr.String())
		return ""
	}
}
