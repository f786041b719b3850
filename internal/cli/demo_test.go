package cli

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The demo's printed curl commands behave as printed: the first succeeds
// and shows the verified identity header, the second is refused, the
// third (public) succeeds. A second run reuses the directory.
func TestDemo(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	dir := filepath.Join(t.TempDir(), "demo dir") // a space, to test the quoting
	for run := 0; run < 2; run++ {
		var stdout, stderr lockedBuffer
		ctx, cancel := context.WithCancel(context.Background())
		env := &Env{Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }, Ctx: ctx}
		ready := make(chan net.Addr, 1)
		done := make(chan error, 1)
		go func() { done <- runDemo(ctx, env, dir, "127.0.0.1:0", func(a net.Addr) { ready <- a }) }()
		select {
		case <-ready:
		case err := <-done:
			t.Fatalf("demo exited: %v\n%s", err, stderr.String())
		case <-time.After(30 * time.Second):
			t.Fatal("demo did not start within 30s")
		}
		if run == 1 && !strings.Contains(stderr.String(), "reusing the CA") {
			t.Errorf("second run did not reuse %s:\n%s", dir, stderr.String())
		}
		var cmds []string
		for _, line := range strings.Split(stderr.String(), "\n") {
			if strings.HasPrefix(line, "  curl ") {
				cmds = append(cmds, strings.TrimSpace(line))
			}
		}
		if len(cmds) != 3 {
			t.Fatalf("demo printed %d curl commands, want 3:\n%s", len(cmds), stderr.String())
		}
		for i, want := range []string{`"X-Forwarded-Client-Cert"`, `{"error":"client certificate required","status":403}`, `"path": "/healthz"`} {
			out, err := exec.Command("sh", "-c", cmds[i]+" -sS").CombinedOutput()
			if err != nil || !strings.Contains(string(out), want) {
				t.Errorf("run %d: %s\n=> %v\n%s\nwant output containing %s", run, cmds[i], err, out, want)
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("demo stopped with %v", err)
		}
		// The audit log is buffered; stopping flushes it.
		if run == 0 && !strings.Contains(stdout.String(), `"route":"api"`) {
			t.Errorf("no audit record on stdout:\n%s", stdout.String())
		}
	}
}
