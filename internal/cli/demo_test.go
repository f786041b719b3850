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
	for run := 0; run < 3; run++ {
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
		if len(cmds) != 4 {
			t.Fatalf("demo printed %d curl commands, want 4:\n%s", len(cmds), stderr.String())
		}
		// Revocation is checked: the demo's log starts without a warning.
		if strings.Contains(stderr.String(), "level=WARN") {
			t.Errorf("run %d: the demo warns:\n%s", run, stderr.String())
		}
		if run == 2 && !strings.Contains(stderr.String(), "client certificate was revoked; issuing new certificates") {
			t.Errorf("third run reused the revoked client:\n%s", stderr.String())
		}
		for i, want := range []string{`"X-Forwarded-Client-Cert"`, `{"error":"client certificate required","status":403}`, `"path": "/healthz"`} {
			out, err := exec.Command("sh", "-c", cmds[i]+" -sS").CombinedOutput()
			if err != nil || !strings.Contains(string(out), want) {
				t.Errorf("run %d: %s\n=> %v\n%s\nwant output containing %s", run, cmds[i], err, out, want)
			}
		}
		if run == 1 {
			// The printed revoke command cuts the client off: the
			// printed curl after it fails within a few seconds.
			var revoke string
			for _, line := range strings.Split(stderr.String(), "\n") {
				if strings.HasPrefix(line, "  gatehouse ca revoke ") {
					revoke = strings.TrimSpace(line)
				}
			}
			args := shellSplit(t, revoke)
			if len(args) < 4 || args[0] != "gatehouse" {
				t.Fatalf("no revoke command printed:\n%s", stderr.String())
			}
			var out, errb lockedBuffer
			if code := Run(&Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}, args[1:]); code != 0 {
				t.Fatalf("%s: exit %d\n%s", revoke, code, errb.String())
			}
			deadline := time.Now().Add(15 * time.Second)
			for {
				out, err := exec.Command("sh", "-c", cmds[3]+" -sS").CombinedOutput()
				if err != nil || strings.Contains(string(out), `"reason":"revoked"`) {
					if !strings.Contains(string(out), `{"error":"client certificate not accepted","reason":"revoked","status":400}`) {
						t.Errorf("revoked client refused (%v), but not with the reason code: %s", err, out)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("revoked demo client still served 15s after %s:\n%s", revoke, out)
				}
				time.Sleep(100 * time.Millisecond)
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

// shellSplit splits a command line as sh would for the demo's output:
// words separated by spaces, single-quoted parts, a backslash escaping
// one character (so shellQuote's form of a quote inside a word).
func shellSplit(t *testing.T, line string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quoted && c == '\'':
			quoted = false
		case quoted:
			cur.WriteByte(c)
		case c == '\'':
			quoted, inWord = true, true
		case c == '\\' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
			inWord = true
		case c == ' ':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quoted {
		t.Fatalf("unbalanced quote in %q", line)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// A busy address makes the demo suggest --listen.
func TestDemoBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var stdout, stderr lockedBuffer
	env := &Env{Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }, Ctx: t.Context()}
	err = runDemo(t.Context(), env, t.TempDir(), ln.Addr().String(), nil)
	if err == nil || !strings.Contains(err.Error(), "already in use") || !strings.Contains(err.Error(), "--listen") {
		t.Fatalf("demo on a busy port: %v", err)
	}
}
