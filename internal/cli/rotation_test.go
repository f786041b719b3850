package cli

import (
	"context"
	"crypto/tls"
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
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testpki"
)

// writeAtomic replaces path the way cert-manager and editors do: write a
// temporary file beside it, then rename over it.
func writeAtomic(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	testpki.WriteFile(t, tmp, data)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// Under a bounded concurrent load (new connections and keep-alive ones),
// the server certificate and key, the CA bundle and a route are replaced
// on disk; the gateway picks each up within seconds and no request fails.
func TestRotationUnderLoad(t *testing.T) {
	dir := t.TempDir()
	root := testpki.NewRoot(t, "Rotation Root")
	inter := root.Intermediate(t, "Rotation Issuing CA")
	other := testpki.NewRoot(t, "Second Root")
	root.WriteCert(t, dir, "ca.pem")
	v1 := inter.Server(t, "localhost")
	v1.Write(t, dir, "server")
	client := inter.Client(t, "load-client")

	echo := func(name string) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, name)
		}))
		t.Cleanup(s.Close)
		return s.URL
	}
	b1, b2 := echo("backend-1"), echo("backend-2")
	yaml := func(apiBackend, extraRoute string) string {
		return `listen: "127.0.0.1:0"
server_tls:
  certificates: [{cert: server.pem, key: server-key.pem}]
client_auth: { mode: require, trusted_cas: [ca.pem] }
routes:
  - name: api
    path: /api/
    backend: ` + apiBackend + `
` + extraRoute + `log: { audit: off }
`
	}
	cfgPath := filepath.Join(dir, "gatehouse.yaml")
	testpki.WriteFile(t, cfgPath, []byte(yaml(b1, "")))
	addr, logs := startServe(t, cfgPath)

	tlsConf := func() *tls.Config {
		cert := client.TLSCertificate()
		return &tls.Config{RootCAs: testpki.Pool(root), ServerName: "localhost",
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }}
	}
	newClient := func(keepAlive bool) *http.Client {
		d := &net.Dialer{Timeout: 5 * time.Second}
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: tlsConf(), DisableKeepAlives: !keepAlive, ForceAttemptHTTP2: keepAlive,
			DialContext: func(ctx context.Context, n, _ string) (net.Conn, error) { return d.DialContext(ctx, n, addr) },
		}}
	}
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	const workers, maxPerWorker = 8, 5000 // bounded even if stop never comes
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := newClient(w%2 == 0) // half keep-alive (h2), half a handshake per request
			for i := 0; i < maxPerWorker; i++ {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get("https://localhost/api/x")
				if err == nil {
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "backend-") {
						err = fmt.Errorf("status %d: %s", resp.StatusCode, body)
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				ok.Add(1)
			}
		}(w)
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s not picked up within 15s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	servedSerial := func() string {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, tlsConf())
		if err != nil {
			return ""
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	body := func(path string) string {
		resp, err := newClient(false).Get("https://localhost" + path)
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	for ok.Load() < 300 { // the load is under way before anything changes
		time.Sleep(10 * time.Millisecond)
	}

	// 1. Server certificate and key rotation (key first: for a moment the
	// pair does not match, and that state is refused, not served).
	v2 := inter.Server(t, "localhost")
	writeAtomic(t, filepath.Join(dir, "server-key.pem"), v2.KeyPEM(t))
	writeAtomic(t, filepath.Join(dir, "server.pem"), v2.ChainPEM())
	waitFor("server certificate rotation", func() bool { return servedSerial() == v2.Cert.SerialNumber.String() })

	// 2. CA bundle: a second root is added.
	writeAtomic(t, filepath.Join(dir, "ca.pem"), append(root.CertPEM(), other.CertPEM()...))
	otherClient := other.Client(t, "second-root-client")
	waitFor("CA bundle change", func() bool {
		cert := otherClient.TLSCertificate()
		c := tlsConf()
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
		conn, err := tls.Dial("tcp", addr, c)
		if err != nil {
			return false
		}
		defer conn.Close()
		io.WriteString(conn, "GET /api/x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
		b, _ := io.ReadAll(conn)
		return strings.Contains(string(b), " 200 ")
	})

	// 3. Routes: the API moves to another backend and a route is added.
	writeAtomic(t, cfgPath, []byte(yaml(b2, "  - name: new\n    path: /new/\n    backend: "+b1+"\n")))
	waitFor("route change", func() bool { return body("/api/x") == "backend-2" && body("/new/x") == "backend-1" })

	// 4. A broken configuration is refused; the gateway keeps serving.
	writeAtomic(t, cfgPath, []byte("routes: [oops\n"))
	time.Sleep(500 * time.Millisecond) // give the watcher time to (wrongly) act
	if body("/api/x") != "backend-2" {
		t.Fatal("a broken configuration disturbed the running one")
	}
	waitFor("the refusal in the log", func() bool {
		return strings.Contains(logs.String(), "reload refused; the running configuration keeps serving")
	})

	// 5. SIGHUP reloads on demand.
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitFor("SIGHUP", func() bool { return strings.Contains(logs.String(), "trigger=SIGHUP") })

	for ok.Load() < 2000 && failed.Load() == 0 { // a few thousand requests in all
		select {
		case <-time.After(10 * time.Millisecond):
		case <-t.Context().Done():
		}
		if ok.Load()+failed.Load() >= workers*maxPerWorker {
			break
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("%d requests succeeded, %d failed during rotation", ok.Load(), failed.Load())
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d requests failed during rotation; first: %v", n, firstErr.Load())
	}
}
