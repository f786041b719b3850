package enroll

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/pki"
)

// recClock fires every wait at once and records it.
type recClock struct {
	mu sync.Mutex
	ws []time.Duration
}

func (c *recClock) Now() time.Time { return time.Now() }
func (c *recClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.ws = append(c.ws, d)
	c.mu.Unlock()
	ch := make(chan time.Time, 1)
	ch <- time.Now()
	return ch
}

func (c *recClock) waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.ws...)
}

// flakyAPI serves e's API on a second listener whose first `fail` renew
// requests get 503, as from a CA that is down.
func flakyAPI(t *testing.T, e *env, fail int32) *Client {
	t.Helper()
	var n atomic.Int32
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == PathRenew && n.Add(1) <= fail {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		e.srv.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h, TLSConfig: e.srv.TLSConfig()}
	go hs.ServeTLS(ln, "", "")
	t.Cleanup(func() { hs.Close() })
	c, err := NewClient("https://"+ln.Addr().String(), e.client.Roots)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writePair(t *testing.T, dir string, iss *pki.Issued) (string, string) {
	t.Helper()
	certFile, keyFile := filepath.Join(dir, "svc.pem"), filepath.Join(dir, "svc-key.pem")
	keyPEM, err := iss.KeyPEM(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.WriteFiles(pki.File{Path: certFile, Data: iss.ChainPEM(), Perm: 0o644},
		pki.File{Path: keyFile, Data: keyPEM, Perm: 0o600}); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestRenewerDaemon(t *testing.T) {
	e := newEnv(t, Options{})
	iss, err := e.ca.Issue(pki.IssueRequest{Profile: pki.ProfileClient, CN: "svc", Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := writePair(t, t.TempDir(), iss)
	clock := &recClock{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		mu      sync.Mutex
		serials []string
	)
	r := &Renewer{Client: flakyAPI(t, e, 2), CertFile: certFile, KeyFile: keyFile, Clock: clock, Log: e.srv.log,
		Hook: func(_ context.Context, leaf *x509.Certificate) error {
			mu.Lock()
			defer mu.Unlock()
			serials = append(serials, leaf.SerialNumber.Text(16))
			if len(serials) == 3 {
				cancel()
			}
			return nil
		}}
	if err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if len(serials) != 3 || serials[0] == serials[1] || serials[1] == serials[2] {
		t.Fatalf("renewals %v", serials)
	}
	ws := clock.waits()
	// wait for 2/3 of 1h01m (less up to 1/20 of jitter), two backoffs
	// (1s, then 2s, each halved by jitter at worst), then the next
	// renewals at about 2/3 of the lifetime again.
	if len(ws) < 4 {
		t.Fatalf("waits %v", ws)
	}
	due := func(w time.Duration) bool { return w > 36*time.Minute && w < 41*time.Minute }
	if !due(ws[0]) || ws[1] < 500*time.Millisecond || ws[1] > time.Second || ws[2] < time.Second || ws[2] > 2*time.Second || !due(ws[3]) {
		t.Fatalf("waits %v; want ~40m, backoff 1s and 2s, ~40m", ws)
	}
	// The files now hold the last renewal, for a new key, readable as a pair.
	cur, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if leaf, _ := x509.ParseCertificate(cur.Certificate[0]); leaf.SerialNumber.Text(16) != serials[2] {
		t.Fatalf("files hold %x; want %s", leaf.SerialNumber, serials[2])
	}
	if fi, _ := os.Stat(keyFile); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v", fi.Mode().Perm())
	}
}

// A refusal that no retry can cure stops the daemon with an error.
func TestRenewerStopsWhenRevoked(t *testing.T) {
	e := newEnv(t, Options{})
	iss, _ := e.ca.Issue(pki.IssueRequest{Profile: pki.ProfileClient, CN: "svc", Validity: time.Hour})
	if _, err := e.ca.Revoke(context.Background(), iss.Cert().SerialNumber, pki.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := writePair(t, t.TempDir(), iss)
	before, _ := os.ReadFile(certFile)
	r := &Renewer{Client: e.client, CertFile: certFile, KeyFile: keyFile, Clock: &recClock{}, Log: e.srv.log}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := r.Run(ctx)
	if ctx.Err() != nil {
		t.Fatal("the daemon kept renewing a revoked certificate")
	}
	mustRefuse(t, err, "certificate revoked")
	if after, _ := os.ReadFile(certFile); string(after) != string(before) {
		t.Fatal("a refused renewal touched the certificate file")
	}
}
