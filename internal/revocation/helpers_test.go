package revocation

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/gatehouse/gatehouse/internal/testpki"
	"github.com/gatehouse/gatehouse/internal/tlsconf"
)

func newClock() *testpki.Clock { return testpki.NewClock() }

// logBuf collects log output so that tests can assert on what operators see.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuf) Count(s string) int { return strings.Count(l.String(), s) }

func newLog() (*slog.Logger, *logBuf) {
	lb := &logBuf{}
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

// env is the usual test setup: a clock, a log, and a place for files.
type env struct {
	t     testing.TB
	clock *testpki.Clock
	log   *slog.Logger
	logs  *logBuf
	dir   string
}

func newEnv(t testing.TB) *env {
	log, logs := newLog()
	e := &env{t: t, clock: newClock(), log: log, logs: logs, dir: t.TempDir()}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", logs.String())
		}
	})
	return e
}

// config fills in the clock and the log.
func (e *env) config(cfg Config) Config {
	if cfg.Now == nil {
		cfg.Now = e.clock.Now
	}
	if cfg.Log == nil {
		cfg.Log = e.log
	}
	return cfg
}

func (e *env) newChecker(cfg Config, prev *Checker) *Checker {
	e.t.Helper()
	c, err := New(context.Background(), e.config(cfg), prev)
	if err != nil {
		e.t.Fatalf("New: %v", err)
	}
	e.t.Cleanup(c.Close)
	return c
}

// writeCRL writes der (as PEM when asPEM) to dir/name atomically, the way
// a CA publishes it, and returns the path.
func (e *env) writeCRL(name string, der []byte, asPEM bool) string {
	e.t.Helper()
	data := der
	if asPEM {
		data = pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
	}
	p := filepath.Join(e.dir, name)
	tmp := p + ".tmp"
	testpki.WriteFile(e.t, tmp, data)
	if err := os.Rename(tmp, p); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// crl signs a CRL with ca at the env's clock, valid for an hour.
func (e *env) crl(ca *testpki.CA, number int64, revoked ...*big.Int) []byte {
	e.t.Helper()
	now := e.clock.Now()
	return ca.CRL(e.t, number, now, now.Add(time.Hour), revoked...)
}

// crlWithReason signs a CRL listing one serial with a reason code.
func crlWithReason(t testing.TB, ca *testpki.CA, number int64, now time.Time, serial *big.Int, reason int) []byte {
	t.Helper()
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(number), ThisUpdate: now, NextUpdate: now.Add(time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: serial, RevocationTime: now.Add(-time.Minute), ReasonCode: reason}},
	}, ca.Cert, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// forgedCRL is a CRL that names ca as its issuer (name and key identifier)
// but is signed with another key.
func forgedCRL(t testing.TB, ca *testpki.CA, number int64, now time.Time, revoked ...*big.Int) []byte {
	t.Helper()
	key := testpki.NewKey(t)
	fake := *ca.Cert
	fake.PublicKey = key.Public()
	var entries []x509.RevocationListEntry
	for _, s := range revoked {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: now})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(number), ThisUpdate: now, NextUpdate: now.Add(time.Hour), RevokedCertificateEntries: entries,
	}, &fake, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// verified returns the chain tlsconf's Verifier builds for leaf: the
// chain the gateway passes to Check.
func verified(t testing.TB, leaf *testpki.Leaf, roots ...*testpki.CA) []*x509.Certificate {
	t.Helper()
	v := &tlsconf.Verifier{Roots: testpki.Pool(roots...)}
	id, err := v.Verify(leaf.Chain)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return id.Chain
}

func wantErr(t testing.TB, err, target error) {
	t.Helper()
	if target == nil {
		if err != nil {
			t.Fatalf("Check: %v, want nil", err)
		}
		return
	}
	if !errors.Is(err, target) {
		t.Fatalf("Check: %v, want %v", err, target)
	}
}

// fileServer serves settable content over HTTP on 127.0.0.1.
type fileServer struct {
	*httptest.Server
	mu     sync.Mutex
	body   []byte
	status int
	etag   string
	delay  time.Duration
	hits   atomic.Int32
}

func newFileServer(t testing.TB, body []byte) *fileServer {
	fs := &fileServer{body: body, status: http.StatusOK}
	fs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fs.hits.Add(1)
		fs.mu.Lock()
		body, status, etag, delay := fs.body, fs.status, fs.etag, fs.delay
		fs.mu.Unlock()
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		if etag != "" {
			w.Header().Set("ETag", etag)
			if r.Header.Get("If-None-Match") == etag {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
		w.WriteHeader(status)
		w.Write(body)
	}))
	t.Cleanup(fs.Close)
	return fs
}

func (fs *fileServer) setDelay(d time.Duration) {
	fs.mu.Lock()
	fs.delay = d
	fs.mu.Unlock()
}

func (fs *fileServer) set(body []byte, status int) {
	fs.mu.Lock()
	fs.body, fs.status = body, status
	fs.mu.Unlock()
}

// ocspAnswer is what testResponder says about one serial.
type ocspAnswer struct {
	status     int
	thisUpdate time.Time
	nextUpdate time.Time
	revokedAt  time.Time
	reason     int
}

// testResponder is an OCSP responder on 127.0.0.1 that signs real
// responses with a testpki CA (or a delegated responder certificate).
// Answers default to good, valid for an hour from the clock.
type testResponder struct {
	*httptest.Server
	clock      *testpki.Clock
	mu         sync.Mutex
	ca         *testpki.CA   // issuer named in CertIDs
	signer     crypto.Signer // signs answers; the CA's key unless delegated
	signerCert *x509.Certificate
	embed      *x509.Certificate // certificate sent with the answer (delegation)
	answers    map[string]ocspAnswer
	delay      time.Duration
	hits       atomic.Int32
	posts      atomic.Int32
}

func newTestResponder(t testing.TB, ca *testpki.CA, clk *testpki.Clock) *testResponder {
	r := &testResponder{clock: clk, ca: ca, signer: ca.Key, signerCert: ca.Cert, answers: map[string]ocspAnswer{}}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

func (r *testResponder) set(serial *big.Int, a ocspAnswer) {
	r.mu.Lock()
	r.answers[serial.String()] = a
	r.mu.Unlock()
}

func (r *testResponder) configure(f func(r *testResponder)) {
	r.mu.Lock()
	f(r)
	r.mu.Unlock()
}

func (r *testResponder) setDelay(d time.Duration) {
	r.mu.Lock()
	r.delay = d
	r.mu.Unlock()
}

func (r *testResponder) serve(w http.ResponseWriter, req *http.Request) {
	r.hits.Add(1)
	if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/ocsp-request" {
		http.Error(w, "POST application/ocsp-request only", http.StatusBadRequest)
		return
	}
	r.posts.Add(1)
	body, _ := io.ReadAll(req.Body)
	oreq, err := ocsp.ParseRequest(body)
	if err != nil {
		w.Write(ocsp.MalformedRequestErrorResponse)
		return
	}
	r.mu.Lock()
	a, ok := r.answers[oreq.SerialNumber.String()]
	delay, ca, signer, signerCert, embed := r.delay, r.ca, r.signer, r.signerCert, r.embed
	r.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-req.Context().Done():
			return
		}
	}
	now := r.clock.Now()
	if !ok {
		a = ocspAnswer{status: ocsp.Good}
	}
	if a.thisUpdate.IsZero() {
		a.thisUpdate = now
	}
	if a.nextUpdate.IsZero() {
		a.nextUpdate = a.thisUpdate.Add(time.Hour)
	}
	der, err := ocsp.CreateResponse(ca.Cert, signerCert, ocsp.Response{
		Status: a.status, SerialNumber: oreq.SerialNumber, ThisUpdate: a.thisUpdate, NextUpdate: a.nextUpdate,
		RevokedAt: a.revokedAt, RevocationReason: a.reason, Certificate: embed,
	}, signer)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/ocsp-response")
	w.Write(der)
}

// deadURL is an http URL on 127.0.0.1 where nothing listens.
func deadURL(t testing.TB) string {
	t.Helper()
	s := httptest.NewServer(http.NotFoundHandler())
	u := s.URL
	s.Close()
	return u
}
