package cli

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/serial"
)

// need fails the test when a tool the interoperability test runs is
// missing: a skipped interop test would hide a broken EST.
func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is required (Debian package %s; scripts/test.sh installs it): %v", tool, tool, err)
		}
	}
}

// sh runs a shell pipeline and returns its output, failing the test on error.
func sh(t *testing.T, dir, script string) string {
	t.Helper()
	cmd := exec.Command("sh", "-c", "set -e; "+script)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sh -c %q: %v\n%s", script, err, out)
	}
	return string(out)
}

// caServeTLS starts `gatehouse ca serve --tls-listen 127.0.0.1:0` and
// returns the enrollment API's base URL and the audit stream.
func caServeTLS(t *testing.T, env map[string]string, dir string, extra ...string) (string, *lockedBuffer) {
	t.Helper()
	args := append([]string{"ca", "serve", "--dir", dir, "--listen", "127.0.0.1:0", "--poll", "50ms",
		"--tls-listen", "127.0.0.1:0"}, extra...)
	return runCAServe(t, env, regexp.MustCompile(`enrollment API and EST at (https://127\.0\.0\.1:\d+)`), args)
}

// runCAServe runs `gatehouse args` (a ca serve) in-process until the test
// ends, and returns the first group of ready in its standard output once
// that matches and OCSP is up, with the output.
func runCAServe(t *testing.T, env map[string]string, ready *regexp.Regexp, args []string) (string, *lockedBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run(&Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr,
			Getenv: func(k string) string { return env[k] }, Ctx: ctx}, args)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("ca serve exit %d: %s", code, stderr.String())
			}
		case <-time.After(10 * time.Second):
			t.Error("ca serve did not stop")
		}
	})
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		if m := ready.FindStringSubmatch(stdout.String()); m != nil && strings.Contains(stdout.String(), "OCSP at") {
			return m[1], &stdout
		}
		select {
		case code := <-done:
			t.Fatalf("ca serve exited %d: %s", code, stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("ca serve did not start: %s", stdout.String())
	return "", nil
}

func leafOf(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type auditLine struct {
	Msg       string   `json:"msg"`
	Method    string   `json:"method"`
	Serial    string   `json:"serial"`
	Requester string   `json:"requester"`
	Remote    string   `json:"remote"`
	SANs      []string `json:"sans"`
}

func audits(t *testing.T, out string) []auditLine {
	var lines []auditLine
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, "{") {
			continue
		}
		var a auditLine
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatalf("audit line %q: %v", l, err)
		}
		lines = append(lines, a)
	}
	return lines
}

// TestShortLivedCertificates is the README's "Short-lived certificates"
// flow: a CA serving its enrollment API, a partner getting its first
// certificate with a one-time token, then renewing it without a person.
func TestShortLivedCertificates(t *testing.T) {
	need(t, "openssl", "curl")
	env := map[string]string{passphraseEnv: caTestPass}
	work := t.TempDir()
	dir := filepath.Join(work, "pki")
	caMust(t, env, "ca", "init", "--dir", dir, "--intermediate", "--client-validity", "24h", "--client-max-validity", "7d")
	api, auditOut := caServeTLS(t, env, dir, "--renew-grace", "1h")
	root := filepath.Join(dir, "ca.pem")

	tok := strings.TrimSpace(caMust(t, env, "ca", "token", "--dir", dir, "--profile", "client", "--cn", "partner-a",
		"--uri", "spiffe://example.com/partner-a", "--ttl", "10m"))
	out := filepath.Join(work, "partner-a")
	caMust(t, env, "cert", "request", "--ca-url", api, "--root", root, "--token", tok, "--out", out)
	leaf := leafOf(t, out+".pem")
	if leaf.Subject.CommonName != "partner-a" || len(leaf.URIs) != 1 || leaf.URIs[0].String() != "spiffe://example.com/partner-a" {
		t.Fatalf("issued %v %v", leaf.Subject, leaf.URIs)
	}
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life != 24*time.Hour+time.Minute {
		t.Errorf("lifetime %s; want the client profile's 24h", life)
	}
	if fi, _ := os.Stat(out + "-key.pem"); fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v", fi.Mode().Perm())
	}
	caMustOpenSSL(t, "verify", "-CAfile", root, "-untrusted", filepath.Join(dir, "intermediate.pem"), out+".pem")

	// The token is spent: a replay is refused.
	code, _, errs := caRun(t, env, "cert", "request", "--ca-url", api, "--root", root, "--token", tok, "--out", filepath.Join(work, "again"))
	if code != ExitError || !strings.Contains(errs, "enrollment token already used") {
		t.Fatalf("replay: exit %d %s", code, errs)
	}
	// A client that trusts another CA's root does not talk to this one.
	tok2 := strings.TrimSpace(caMust(t, env, "ca", "token", "--dir", dir, "--profile", "server", "--cn", "api.example.com", "--dns", "api.example.com"))
	otherCA := filepath.Join(work, "other-ca")
	caMust(t, env, "ca", "init", "--dir", otherCA)
	code, _, errs = caRun(t, env, "cert", "request", "--ca-url", api, "--root", filepath.Join(otherCA, "ca.pem"), "--token", tok2, "--out", filepath.Join(work, "x"))
	if code != ExitError || !strings.Contains(errs, "does not verify against the root given (--root)") {
		t.Fatalf("a client trusting another root: exit %d %s", code, errs)
	}

	// Renew once, with a hook.
	marker := filepath.Join(work, "hook")
	caMust(t, env, "cert", "renew", "--ca-url", api, "--root", root, "--cert", out+".pem", "--key", out+"-key.pem",
		"--exec", "echo $GATEHOUSE_SERIAL >> "+marker)
	renewed := leafOf(t, out+".pem")
	if renewed.SerialNumber.Cmp(leaf.SerialNumber) == 0 || renewed.Subject.String() != leaf.Subject.String() {
		t.Fatalf("renewal %x %v", renewed.SerialNumber, renewed.Subject)
	}
	if b, _ := os.ReadFile(marker); strings.TrimSpace(string(b)) != serial.Format(renewed.SerialNumber) {
		t.Fatalf("hook wrote %q", b)
	}
	caMustOpenSSL(t, "x509", "-in", out+".pem", "-noout", "-checkend", "3600")

	// Every issuance is in the audit stream with who asked.
	var sawToken, sawRenew bool
	for _, a := range audits(t, auditOut.String()) {
		switch {
		case a.Method == "token" && a.Serial == serial.Format(leaf.SerialNumber) && strings.HasPrefix(a.Requester, "token:"):
			sawToken = true
		case a.Method == "renew" && a.Serial == serial.Format(renewed.SerialNumber) && a.Requester == "serial:"+serial.Format(leaf.SerialNumber) &&
			strings.HasPrefix(a.Remote, "127.0.0.1:"):
			sawRenew = true
		}
	}
	if !sawToken || !sawRenew {
		t.Fatalf("audit stream lacks the issuances:\n%s", auditOut.String())
	}

	t.Run("daemon", func(t *testing.T) {
		clock := &stepClock{}
		renewClock = clock
		defer func() { renewClock = nil }()
		count := filepath.Join(work, "daemon-hook")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan int, 1)
		var stderr lockedBuffer
		go func() {
			done <- Run(&Env{Stdin: strings.NewReader(""), Stdout: &lockedBuffer{}, Stderr: &stderr, Ctx: ctx},
				[]string{"cert", "renew", "--ca-url", api, "--root", root, "--cert", out + ".pem", "--key", out + "-key.pem",
					"--daemon", "--exec", "echo renewed >> " + count})
		}()
		deadline := time.Now().Add(20 * time.Second)
		for {
			b, _ := os.ReadFile(count)
			if strings.Count(string(b), "renewed") >= 3 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("daemon renewed %d times: %s", strings.Count(string(b), "renewed"), stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		if code := <-done; code != 0 {
			t.Fatalf("daemon exit %d: %s", code, stderr.String())
		}
		// It waited until two thirds of the 24h lifetime (less jitter).
		for _, w := range clock.waits() {
			if w < 14*time.Hour+45*time.Minute || w > 16*time.Hour {
				t.Errorf("daemon waited %s; want about 16h (2/3 of 24h, less up to 1h12m of jitter)", w)
			}
		}
		if strings.Count(stderr.String(), "certificate renewed") < 3 {
			t.Errorf("daemon log: %s", stderr.String())
		}
	})

	t.Run("encrypted key and --signal", func(t *testing.T) {
		d := t.TempDir()
		pass := caWrite(t, filepath.Join(d, "pass"), "key passphrase\n")
		tok := strings.TrimSpace(caMust(t, env, "ca", "token", "--dir", dir, "--profile", "client", "--cn", "svc-b"))
		out := filepath.Join(d, "svc-b")
		caMust(t, env, "cert", "request", "--ca-url", api, "--root", root, "--token", tok, "--out", out, "--key-passphrase-file", pass)
		caMustOpenSSL(t, "pkey", "-in", out+"-key.pem", "-passin", "file:"+pass, "-noout")
		// The process to signal is this one: signal.Notify receives
		// SIGHUP even when the test was started with it ignored (under
		// nohup, where a shell's trap could not catch it), and the wait
		// is bounded.
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		caMust(t, env, "cert", "renew", "--ca-url", api, "--root", root, "--cert", out+".pem", "--key", out+"-key.pem",
			"--key-passphrase-file", pass, "--signal", strconv.Itoa(os.Getpid()))
		select {
		case <-hup:
		case <-time.After(10 * time.Second):
			t.Fatal("cert renew --signal: no SIGHUP within 10s of the renewal")
		}
		// The new key is encrypted with the same passphrase.
		if b, _ := os.ReadFile(out + "-key.pem"); !strings.Contains(string(b), "ENCRYPTED PRIVATE KEY") {
			t.Fatal("renewed key not encrypted")
		}
		caMustOpenSSL(t, "pkey", "-in", out+"-key.pem", "-passin", "file:"+pass, "-noout")
	})

	t.Run("EST with curl and openssl", func(t *testing.T) {
		est := api + "/.well-known/est"
		d := t.TempDir()
		curl := "curl -sS --fail-with-body --cacert " + root + " "
		// cacerts: the intermediate and the root, PKCS#7 certs-only.
		got := sh(t, d, curl+est+"/cacerts | openssl base64 -d | openssl pkcs7 -inform DER -print_certs -noout")
		if !strings.Contains(got, "gatehouse CA Intermediate") || strings.Count(got, "subject=") != 2 {
			t.Fatalf("cacerts: %s", got)
		}
		// csrattrs.
		got = sh(t, d, curl+est+"/csrattrs | openssl base64 -d | openssl asn1parse -inform DER")
		if !strings.Contains(got, "ecdsa-with-SHA256") {
			t.Fatalf("csrattrs: %s", got)
		}
		// simpleenroll with a token as the HTTP Basic password.
		tok := strings.TrimSpace(caMust(t, env, "ca", "token", "--dir", dir, "--profile", "client", "--cn", "device-7", "--dns", "device-7.example.com"))
		sh(t, d, `openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout dev-key.pem -subj /CN=device-7 `+
			`-addext subjectAltName=DNS:device-7.example.com -outform DER -out csr.der 2>/dev/null && openssl base64 -in csr.der -out csr.b64`)
		sh(t, d, curl+`--data-binary @csr.b64 -H 'Content-Type: application/pkcs10' -u device-7:`+tok+" "+est+"/simpleenroll -o cert.p7")
		got = sh(t, d, `openssl base64 -d -in cert.p7 | openssl pkcs7 -inform DER -print_certs -out dev.pem && openssl x509 -in dev.pem -noout -subject -ext subjectAltName`)
		if !strings.Contains(got, "CN = device-7") || !strings.Contains(got, "DNS:device-7.example.com") {
			t.Fatalf("simpleenroll: %s", got)
		}
		sh(t, d, "openssl verify -CAfile "+root+" -untrusted "+filepath.Join(dir, "intermediate.pem")+" dev.pem")
		// Replaying the token through EST is refused too.
		code := sh(t, d, curl+`-o /dev/null -w '%{http_code}' --data-binary @csr.b64 -H 'Content-Type: application/pkcs10' -u device-7:`+tok+" "+est+"/simpleenroll || true")
		if !strings.HasSuffix(code, "403") {
			t.Fatalf("EST replay answered %s", code)
		}
		// simplereenroll with the certificate over mutual TLS, new key.
		sh(t, d, `openssl x509 -in dev.pem -out dev-leaf.pem && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout dev2-key.pem -subj /CN=device-7 `+
			`-addext subjectAltName=DNS:device-7.example.com -outform DER -out csr2.der 2>/dev/null && openssl base64 -in csr2.der -out csr2.b64`)
		sh(t, d, curl+`--cert dev-leaf.pem --key dev-key.pem --data-binary @csr2.b64 -H 'Content-Type: application/pkcs10' `+est+"/simplereenroll -o cert2.p7")
		got = sh(t, d, `openssl base64 -d -in cert2.p7 | openssl pkcs7 -inform DER -print_certs -out dev2.pem && openssl x509 -in dev2.pem -noout -serial -subject && openssl x509 -in dev.pem -noout -serial`)
		serials := regexp.MustCompile(`serial=(\w+)`).FindAllStringSubmatch(got, -1)
		if len(serials) != 2 || serials[0][1] == serials[1][1] || !strings.Contains(got, "CN = device-7") {
			t.Fatalf("simplereenroll: %s", got)
		}
		// The new key matches the new certificate.
		a := sh(t, d, "openssl x509 -in dev2.pem -noout -pubkey")
		b := sh(t, d, "openssl pkey -in dev2-key.pem -pubout")
		if a != b {
			t.Fatal("reenrolled certificate is not for the new key")
		}
		// Without credentials: 401.
		code = sh(t, d, curl+`-o /dev/null -w '%{http_code}' --data-binary @csr2.b64 -H 'Content-Type: application/pkcs10' `+est+"/simplereenroll || true")
		if !strings.HasSuffix(code, "401") {
			t.Fatalf("simplereenroll without a certificate answered %s", code)
		}
	})
}

// stepClock fires every wait after a short real pause and records it: the
// daemon's schedule is checked without waiting hours.
type stepClock struct {
	mu sync.Mutex
	ws []time.Duration
}

func (c *stepClock) Now() time.Time { return time.Now() }

func (c *stepClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.ws = append(c.ws, d)
	c.mu.Unlock()
	return time.After(20 * time.Millisecond)
}

func (c *stepClock) waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.ws...)
}
