package cli

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// ca serve drops GATEHOUSE_CA_PASSPHRASE from its environment once it has
// read it, and logs refused OCSP requests boundedly: a flood of 200 bad
// requests gives ocspRefusedBurst lines and one summary with the count.
func TestCAServeEnvAndLogBound(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "pki")
	t.Setenv(passphraseEnv, caTestPass)
	caMust(t, map[string]string{passphraseEnv: caTestPass}, "ca", "init", "--dir", dir, "--name", "Test CA")
	oldWindow := ocspRefusedWindow
	ocspRefusedWindow = 2 * time.Second
	defer func() { ocspRefusedWindow = oldWindow }()

	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run(&Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: os.Getenv, Ctx: ctx},
			[]string{"ca", "serve", "--dir", dir, "--listen", "127.0.0.1:0"})
	}()
	defer func() { cancel(); <-done }()
	ready := regexp.MustCompile(`OCSP at (http://127\.0\.0\.1:\d+)/ocsp`)
	var base string
	for deadline := time.Now().Add(20 * time.Second); base == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := ready.FindStringSubmatch(stdout.String()); m != nil {
			base = m[1]
		}
	}
	if base == "" {
		t.Fatalf("ca serve did not start: %s", stderr.String())
	}
	if v, ok := os.LookupEnv(passphraseEnv); ok {
		t.Errorf("%s still set in ca serve's environment (%d bytes)", passphraseEnv, len(v))
	}

	for range 200 {
		resp, err := http.Post(base+"/ocsp", "application/ocsp-request", strings.NewReader("not an OCSP request"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if n := strings.Count(stderr.String(), `msg="ca serve: OCSP request refused"`); n != ocspRefusedBurst {
		t.Errorf("%d refused-request lines for 200 requests, want %d", n, ocspRefusedBurst)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if strings.Contains(stderr.String(), "suppressed=190") {
			return
		}
	}
	t.Errorf("no summary of the suppressed lines:\n%s", stderr.String())
}
