package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fastClock runs a renewer's waits at most max long, so that a
// two-minute certificate renews every few hundred milliseconds.
type fastClock struct{ max time.Duration }

func (c fastClock) Now() time.Time { return time.Now() }
func (c fastClock) After(d time.Duration) <-chan time.Time {
	return time.After(min(d, c.max))
}

// A gateway whose short-lived server certificate renews itself from the
// CA's enrollment API keeps serving a bounded load with no failed request
// while the certificate is replaced several times.
func TestGatewayRenewsItsCertificate(t *testing.T) {
	env := map[string]string{passphraseEnv: caTestPass}
	dir := t.TempDir()
	pkiDir := filepath.Join(dir, "pki")
	caMust(t, env, "ca", "init", "--dir", pkiDir, "--intermediate")
	api, _ := caServeTLS(t, env, pkiDir)
	caMust(t, env, "ca", "issue", "--dir", pkiDir, "--profile", "server", "--cn", "localhost", "--dns", "localhost",
		"--validity", "2m", "--out", filepath.Join(dir, "server"))
	caMust(t, env, "ca", "issue", "--dir", pkiDir, "--profile", "client", "--cn", "load-client", "--out", filepath.Join(dir, "client"))
	first := leafOf(t, filepath.Join(dir, "server.pem"))

	backend := newEchoBackend(t)
	cfg := filepath.Join(dir, "gatehouse.yaml")
	caWrite(t, cfg, `listen: "127.0.0.1:0"
server_tls:
  certificates:
    - cert: server.pem
      key: server-key.pem
      renew: { ca_url: "`+api+`", root: pki/ca.pem }
client_auth: { mode: require, trusted_cas: [pki/ca.pem] }
routes:
  - { name: api, path: /, backend: "`+backend+`" }
log: { audit: off }
`)
	renewClock = fastClock{max: 300 * time.Millisecond}
	defer func() { renewClock = nil }()
	addr, logs := startServe(t, cfg)

	clientCert, err := tls.LoadX509KeyPair(filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	b, _ := os.ReadFile(filepath.Join(pkiDir, "ca.pem"))
	roots.AppendCertsFromPEM(b)
	tlsConf := func() *tls.Config {
		return &tls.Config{RootCAs: roots, ServerName: "localhost", Certificates: []tls.Certificate{clientCert}}
	}
	newClient := func(keepAlive bool) *http.Client {
		d := &net.Dialer{Timeout: 5 * time.Second}
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: tlsConf(), DisableKeepAlives: !keepAlive, ForceAttemptHTTP2: keepAlive,
			DialContext: func(ctx context.Context, n, _ string) (net.Conn, error) { return d.DialContext(ctx, n, addr) },
		}}
	}
	var (
		ok, failed atomic.Int64
		firstErr   atomic.Value
		wg         sync.WaitGroup
	)
	stop := make(chan struct{})
	const workers, maxPerWorker = 4, 3000 // bounded even if stop never comes
	for w := range workers {
		wg.Go(func() {
			c := newClient(w%2 == 0)
			for range maxPerWorker {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get("https://localhost/x")
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				ok.Add(1)
			}
		})
	}
	served := func() *x509.Certificate {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, tlsConf())
		if err != nil {
			return nil
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0]
	}
	seen := map[string]bool{first.SerialNumber.Text(16): true}
	deadline := time.Now().Add(30 * time.Second)
	for len(seen) < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("served %d certificates in 30s; want the first and 3 renewals\n%s", len(seen), logs.String())
		}
		if c := served(); c != nil {
			if c.Subject.CommonName != "localhost" || c.NotAfter.Sub(c.NotBefore) != 3*time.Minute {
				t.Fatalf("served %v valid %s", c.Subject, c.NotAfter.Sub(c.NotBefore))
			}
			seen[c.SerialNumber.Text(16)] = true
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d requests succeeded, %d failed while the certificate renewed %d times", ok.Load(), failed.Load(), len(seen)-1)
	if failed.Load() != 0 {
		t.Fatalf("%d requests failed during renewal; first: %v", failed.Load(), firstErr.Load())
	}
	if ok.Load() == 0 {
		t.Fatal("no request succeeded")
	}
	if !strings.Contains(logs.String(), "trigger=\"certificate renewed\"") {
		t.Errorf("no reload by renewal in the log:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "reload refused") {
		t.Errorf("a reload saw a half-written pair:\n%s", logs.String())
	}
}

func TestConfigCheckWarnsShortLived(t *testing.T) {
	env := map[string]string{passphraseEnv: caTestPass}
	dir := t.TempDir()
	pkiDir := filepath.Join(dir, "pki")
	caMust(t, env, "ca", "init", "--dir", pkiDir)
	caMust(t, env, "ca", "issue", "--dir", pkiDir, "--profile", "server", "--cn", "localhost", "--dns", "localhost",
		"--validity", "2m", "--out", filepath.Join(dir, "server"))
	yaml := func(refresh string) string {
		return `listen: "127.0.0.1:0"
server_tls:
  certificates:
    - cert: server.pem
      key: server-key.pem
client_auth:
  mode: require
  trusted_cas: [pki/ca.pem]
  revocation: { crl: [pki/ca.crl], refresh: ` + refresh + ` }
routes:
  - { name: api, path: /, backend: "http://127.0.0.1:9" }
`
	}
	cfg := caWrite(t, filepath.Join(dir, "gatehouse.yaml"), yaml("5m"))
	code, out, errs := caRun(t, nil, "config", "check", "--config", cfg)
	if code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("exit %d %s %s", code, out, errs)
	}
	want := "warning: " + cfg + ":4: server_tls.certificates[0].cert: the certificate lives 3m, shorter than client_auth.revocation.refresh (5m)"
	if !strings.Contains(errs, want) {
		t.Fatalf("stderr %q; want %q", errs, want)
	}
	caWrite(t, cfg, yaml("1m"))
	if code, _, errs := caRun(t, nil, "config", "check", "--config", cfg); code != 0 || strings.Contains(errs, "warning") {
		t.Fatalf("refresh 1m: exit %d %s", code, errs)
	}
}

func TestEnrollFlagsRefused(t *testing.T) {
	env := map[string]string{passphraseEnv: caTestPass}
	dir := filepath.Join(t.TempDir(), "pki")
	caMust(t, env, "ca", "init", "--dir", dir)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--renew-grace", "1h"}, "need --tls-listen"},
		{[]string{"--tls-listen", "127.0.0.1:0", "--renew-grace", "8d"}, "must be at most 7d"},
	} {
		args := append([]string{"ca", "serve", "--dir", dir, "--listen", "127.0.0.1:0"}, tc.args...)
		code, _, errs := caRun(t, env, args...)
		if code != ExitUsage || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d %q; want 2 and %q", tc.args, code, errs, tc.want)
		}
	}
	code, _, errs := caRun(t, env, "ca", "token", "--dir", dir, "--profile", "client", "--cn", "a", "--ttl", "8d")
	if code != ExitUsage || !strings.Contains(errs, "at most 7d") {
		t.Errorf("token ttl 8d: exit %d %q", code, errs)
	}
	code, _, errs = caRun(t, env, "cert", "renew", "--ca-url", "http://127.0.0.1:1", "--root", filepath.Join(dir, "ca.pem"),
		"--cert", "x.pem", "--key", "x-key.pem")
	if code != ExitUsage || !strings.Contains(errs, "https base URL") {
		t.Errorf("http CA URL: exit %d %q", code, errs)
	}
}

// The gateway's client certificate for an mTLS backend renews itself too:
// the backend sees new serials and every request succeeds.
func TestUpstreamCertificateRenews(t *testing.T) {
	env := map[string]string{passphraseEnv: caTestPass}
	dir := t.TempDir()
	pkiDir := filepath.Join(dir, "pki")
	caMust(t, env, "ca", "init", "--dir", pkiDir, "--intermediate")
	api, _ := caServeTLS(t, env, pkiDir)
	issue := func(args ...string) {
		caMust(t, env, append([]string{"ca", "issue", "--dir", pkiDir}, args...)...)
	}
	issue("--profile", "server", "--cn", "localhost", "--dns", "localhost", "--out", filepath.Join(dir, "server"))
	issue("--profile", "server", "--cn", "backend", "--dns", "localhost", "--ip", "127.0.0.1", "--out", filepath.Join(dir, "backend"))
	issue("--profile", "client", "--cn", "gateway", "--validity", "2m", "--out", filepath.Join(dir, "gw"))
	issue("--profile", "client", "--cn", "load-client", "--out", filepath.Join(dir, "client"))

	roots := x509.NewCertPool()
	b, _ := os.ReadFile(filepath.Join(pkiDir, "ca.pem"))
	roots.AppendCertsFromPEM(b)
	backendCert, err := tls.LoadX509KeyPair(filepath.Join(dir, "backend.pem"), filepath.Join(dir, "backend-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		serials = map[string]bool{}
	)
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		serials[r.TLS.PeerCertificates[0].SerialNumber.Text(16)] = true
		mu.Unlock()
		io.WriteString(w, "ok")
	}))
	backend.TLS = &tls.Config{Certificates: []tls.Certificate{backendCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: roots}
	backend.StartTLS()
	defer backend.Close()

	cfg := filepath.Join(dir, "gatehouse.yaml")
	caWrite(t, cfg, `listen: "127.0.0.1:0"
server_tls:
  certificates: [{cert: server.pem, key: server-key.pem}]
client_auth: { mode: require, trusted_cas: [pki/ca.pem] }
routes:
  - name: api
    path: /
    backend: "`+backend.URL+`"
    upstream_tls:
      ca: pki/ca.pem
      cert: gw.pem
      key: gw-key.pem
      renew: { ca_url: "`+api+`", root: pki/ca.pem }
log: { audit: off }
`)
	renewClock = fastClock{max: 300 * time.Millisecond}
	defer func() { renewClock = nil }()
	addr, logs := startServe(t, cfg)
	clientCert, err := tls.LoadX509KeyPair(filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "localhost", Certificates: []tls.Certificate{clientCert}},
		DialContext:     func(ctx context.Context, n, _ string) (net.Conn, error) { return d.DialContext(ctx, n, addr) },
	}}
	deadline := time.Now().Add(30 * time.Second)
	for n := 0; ; n++ {
		resp, err := c.Get("https://localhost/x")
		if err != nil {
			t.Fatalf("request %d: %v", n, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: status %d\n%s", n, resp.StatusCode, logs.String())
		}
		mu.Lock()
		seen := len(serials)
		mu.Unlock()
		if seen >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("backend saw %d client certificates in 30s; want 3\n%s", seen, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
