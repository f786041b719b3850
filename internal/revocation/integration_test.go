package revocation

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/gatehouse/gatehouse/internal/pki"
	"github.com/gatehouse/gatehouse/internal/tlsconf"
)

var testPass = []byte("correct horse battery staple")

// pkiSetup is the project's own CA, published by `ca serve`'s server on
// 127.0.0.1, with the CA URL in every certificate it issues (CRL
// distribution point and OCSP responder).
type pkiSetup struct {
	*env
	ca     *pki.CA
	srv    *pki.Server
	base   string
	stop   func() // stops the server
	stopCh chan error
}

func newPKISetup(t *testing.T, intermediate bool) *pkiSetup {
	e := newEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &pkiSetup{env: e, base: "http://" + ln.Addr().String()}
	s.ca, err = pki.Init(filepath.Join(t.TempDir(), "ca"), pki.InitOptions{
		Passphrase: testPass, URL: s.base, Intermediate: intermediate, Now: e.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.ca.Close() })
	s.srv, err = pki.NewServer(s.ca, pki.ServerOptions{Poll: time.Hour, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stopCh = make(chan error, 1)
	go func() { s.stopCh <- s.srv.Serve(ctx, ln) }()
	stopped := false
	s.stop = func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-s.stopCh; err != nil {
				t.Errorf("Serve: %v", err)
			}
		}
	}
	t.Cleanup(s.stop)
	return s
}

// client issues a client certificate and returns the chain the gateway's
// verifier builds for it.
func (s *pkiSetup) client(cn string) (*pki.Issued, []*x509.Certificate) {
	s.t.Helper()
	iss, err := s.ca.Issue(pki.IssueRequest{Profile: pki.ProfileClient, CN: cn})
	if err != nil {
		s.t.Fatal(err)
	}
	if len(iss.Cert().OCSPServer) != 1 || len(iss.Cert().CRLDistributionPoints) != 1 {
		s.t.Fatalf("issued certificate lacks AIA/CDP: %v %v", iss.Cert().OCSPServer, iss.Cert().CRLDistributionPoints)
	}
	roots := x509.NewCertPool()
	roots.AddCert(s.ca.Root())
	id, err := (&tlsconf.Verifier{Roots: roots, Now: s.clock.Now}).Verify(iss.Chain)
	if err != nil {
		s.t.Fatal(err)
	}
	return iss, id.Chain
}

func (s *pkiSetup) revoke(iss *pki.Issued, reason pki.Reason) {
	s.t.Helper()
	if _, err := s.ca.Revoke(context.Background(), iss.Cert().SerialNumber, reason); err != nil {
		s.t.Fatal(err)
	}
	if err := s.srv.Refresh(context.Background()); err != nil {
		s.t.Fatal(err)
	}
}

func (s *pkiSetup) checker(cfg Config) *Checker {
	cfg.TrustedCAs = []*x509.Certificate{s.ca.Root()}
	return s.newChecker(cfg, nil)
}

// ca revoke, then the CRL from `ca serve`'s /crl, refreshed, refuses the
// client; with and without an intermediate.
func TestPKIRevokeViaCRLURL(t *testing.T) {
	for _, intermediate := range []bool{false, true} {
		t.Run(map[bool]string{false: "root", true: "intermediate"}[intermediate], func(t *testing.T) {
			ctx := context.Background()
			s := newPKISetup(t, intermediate)
			iss, chain := s.client("partner-a")
			_, otherChain := s.client("partner-b")
			c := s.checker(Config{CRLs: []string{iss.Cert().CRLDistributionPoints[0]}, Refresh: time.Minute})
			wantErr(t, c.Check(ctx, chain), nil)

			s.revoke(iss, pki.ReasonKeyCompromise)
			wantErr(t, c.Check(ctx, chain), nil) // not refreshed yet
			s.clock.Add(time.Minute)
			if err := c.refreshAll(ctx, false); err != nil {
				t.Fatal(err)
			}
			err := c.Check(ctx, chain)
			var re *RevokedError
			if !errors.As(err, &re) || re.Reason != int(pki.ReasonKeyCompromise) || !re.RevokedAt.Equal(s.clock.Now().Add(-time.Minute)) {
				t.Fatalf("after revoke: %v", err)
			}
			wantErr(t, c.Check(ctx, otherChain), nil)
		})
	}
}

// The CA's CRL file (DIR/ca.crl, rewritten by every revocation) as a file
// source, with Run picking the change up by itself.
func TestPKIRevokeViaCRLFileWithRun(t *testing.T) {
	ctx := context.Background()
	s := newPKISetup(t, true)
	iss, chain := s.client("partner-a")
	c := s.checker(Config{CRLs: []string{filepath.Join(s.ca.Dir(), pki.CRLFile)}, Refresh: time.Hour})
	wantErr(t, c.Check(ctx, chain), nil)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { c.Run(runCtx); close(done) }()
	defer func() { cancel(); <-done }()

	s.revoke(iss, pki.ReasonSuperseded)
	// Run polls the file every DefaultFilePoll; give it a bounded while.
	deadline := time.Now().Add(10 * time.Second)
	for !errors.Is(c.Check(ctx, chain), ErrRevoked) {
		if time.Now().After(deadline) {
			t.Fatal("revocation not picked up from the CRL file within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// OCSP against `ca serve`'s responder: good, then revoked once the cached
// answer is renewed.
func TestPKIRevokeViaOCSP(t *testing.T) {
	for _, mode := range []OCSPMode{OCSPPrefer, OCSPRequire} {
		t.Run(string(mode), func(t *testing.T) {
			ctx := context.Background()
			s := newPKISetup(t, true)
			iss, chain := s.client("partner-a")
			c := s.checker(Config{OCSP: mode})
			wantErr(t, c.Check(ctx, chain), nil)

			s.revoke(iss, pki.ReasonCessationOfOperation)
			s.clock.Add(31 * time.Minute) // past half the answer's validity (pki.DefaultOCSPValidity)
			wantErr(t, c.Check(ctx, chain), nil)
			c.wg.Wait() // the background renewal
			err := c.Check(ctx, chain)
			var re *RevokedError
			if !errors.As(err, &re) || re.Reason != int(pki.ReasonCessationOfOperation) || !strings.HasPrefix(re.Source, "OCSP "+s.base) {
				t.Fatalf("after revoke: %v", err)
			}
		})
	}
}

// The responder down, slow, or answering unknown.
func TestPKIOCSPUnavailable(t *testing.T) {
	ctx := context.Background()
	t.Run("down", func(t *testing.T) {
		s := newPKISetup(t, true)
		_, chain := s.client("partner-a")
		crlURL := s.base + "/crl"
		prefer := s.checker(Config{OCSP: OCSPPrefer, CRLs: []string{crlURL}})
		s.stop()
		wantErr(t, s.checker(Config{OCSP: OCSPRequire}).Check(ctx, chain), ErrUnavailable)
		wantErr(t, prefer.Check(ctx, chain), nil) // the CRL loaded before decides
	})
	t.Run("slow", func(t *testing.T) {
		s := newPKISetup(t, true)
		_, chain := s.client("partner-a")
		target, _ := url.Parse(s.base)
		proxy := httputil.NewSingleHostReverseProxy(target)
		slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Read the request first: net/http notices a client that
			// gave up only once the body is consumed.
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			select {
			case <-time.After(3 * time.Second):
				proxy.ServeHTTP(w, r)
			case <-r.Context().Done():
			}
		}))
		defer slow.Close()
		c := s.checker(Config{OCSP: OCSPRequire, OCSPURL: slow.URL + "/ocsp", OCSPTimeout: 200 * time.Millisecond})
		start := time.Now()
		err := c.Check(ctx, chain)
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "deadline exceeded") {
			t.Fatalf("slow responder: %v", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("Check took %v with a 200ms OCSP timeout", d)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		s := newPKISetup(t, true)
		iss, chain := s.client("partner-a")
		// A serial the CA never recorded: its responder answers unknown.
		stranger := *iss.Cert()
		stranger.SerialNumber = new(big.Int).Add(stranger.SerialNumber, big.NewInt(1))
		chain = append([]*x509.Certificate{&stranger}, chain[1:]...)
		err := s.checker(Config{OCSP: OCSPRequire}).Check(ctx, chain)
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "answered unknown") {
			t.Fatalf("unknown: %v", err)
		}
	})
}

// The gateway's own certificate, issued by the CA, stapled from its
// responder.
func TestPKIStaple(t *testing.T) {
	s := newPKISetup(t, true)
	iss, err := s.ca.Issue(pki.IssueRequest{Profile: pki.ProfileServer, CN: "api.test", DNS: []string{"api.test"}})
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{PrivateKey: iss.Key, Leaf: iss.Cert()}
	for _, c := range iss.Chain {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	st := NewStapler(context.Background(), []tls.Certificate{cert}, StaplerOptions{Now: s.clock.Now, Log: s.log})
	der := st.Staple(0)
	if der == nil {
		t.Fatalf("no staple:\n%s", s.logs)
	}
	r, err := ocsp.ParseResponseForCert(der, iss.Cert(), s.ca.Issuer())
	if err != nil || r.Status != ocsp.Good {
		t.Fatalf("staple: %v %v", r, err)
	}
	// The responder goes away: the staple stays until its nextUpdate.
	s.stop()
	s.clock.Add(pki.DefaultOCSPValidity / 2)
	st.refreshDue(context.Background())
	if st.Staple(0) == nil {
		t.Fatal("staple dropped before its nextUpdate")
	}
	s.clock.Add(pki.DefaultOCSPValidity / 2)
	if st.Staple(0) != nil {
		t.Fatal("staple served past its nextUpdate")
	}
}
