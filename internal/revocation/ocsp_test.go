package revocation

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/gatehouse/gatehouse/internal/serial"
	"github.com/gatehouse/gatehouse/internal/testpki"
)

// ocspSetup is a root, an intermediate that issues clients and answers
// OCSP for them, and a client certificate naming the responder.
type ocspSetup struct {
	*env
	root, inter *testpki.CA
	resp        *testResponder
	leaf        *testpki.Leaf
	chain       []*x509.Certificate
}

func newOCSPSetup(t *testing.T) *ocspSetup {
	e := newEnv(t)
	s := &ocspSetup{env: e, root: testpki.NewRoot(t, "root")}
	s.inter = s.root.Intermediate(t, "inter")
	s.resp = newTestResponder(t, s.inter, e.clock)
	s.leaf = s.inter.Leaf(t, testpki.LeafOptions{CN: "c", OCSPServer: []string{s.resp.URL}})
	s.chain = verified(t, s.leaf, s.root)
	return s
}

func (s *ocspSetup) checker(mode OCSPMode, cfg Config) *Checker {
	cfg.OCSP = mode
	cfg.TrustedCAs = []*x509.Certificate{s.root.Cert}
	return s.newChecker(cfg, nil)
}

func TestOCSPGoodRevokedAndCached(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []OCSPMode{OCSPPrefer, OCSPRequire} {
		t.Run(string(mode), func(t *testing.T) {
			s := newOCSPSetup(t)
			c := s.checker(mode, Config{})
			wantErr(t, c.Check(ctx, s.chain), nil)
			wantErr(t, c.Check(ctx, s.chain), nil)
			if n := s.resp.posts.Load(); n != 1 {
				t.Fatalf("%d OCSP POSTs for two checks, want 1 (cached)", n)
			}

			// Revoked at the responder: the cached good answer holds until
			// its nextUpdate (an hour), then the new answer is fetched.
			s.resp.set(s.leaf.Cert.SerialNumber, ocspAnswer{status: ocsp.Revoked, revokedAt: s.clock.Now(), reason: 4})
			s.clock.Add(time.Hour)
			err := c.Check(ctx, s.chain)
			var re *RevokedError
			if !errors.As(err, &re) || re.Reason != 4 || re.Source != "OCSP "+s.resp.URL {
				t.Fatalf("after revocation: %v", err)
			}
		})
	}
}

// Past half its validity a cached answer is renewed in the background:
// the Check that notices returns at once from the cache.
func TestOCSPRefreshAhead(t *testing.T) {
	ctx := context.Background()
	s := newOCSPSetup(t)
	c := s.checker(OCSPRequire, Config{})
	wantErr(t, c.Check(ctx, s.chain), nil)
	s.resp.set(s.leaf.Cert.SerialNumber, ocspAnswer{status: ocsp.Revoked, revokedAt: s.clock.Now()})
	s.resp.setDelay(300 * time.Millisecond)
	s.clock.Add(31 * time.Minute)
	start := time.Now()
	wantErr(t, c.Check(ctx, s.chain), nil) // still the cached good answer
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("Check with a cached answer took %v: it waited for the responder", d)
	}
	c.wg.Wait()
	if n := s.resp.posts.Load(); n != 2 {
		t.Fatalf("%d POSTs, want a background refresh", n)
	}
	wantErr(t, c.Check(ctx, s.chain), ErrRevoked)
}

// Concurrent checks of one certificate share one OCSP query.
func TestOCSPSingleflight(t *testing.T) {
	s := newOCSPSetup(t)
	c := s.checker(OCSPRequire, Config{})
	s.resp.setDelay(200 * time.Millisecond)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Go(func() { errs <- c.Check(context.Background(), s.chain) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		wantErr(t, err, nil)
	}
	if n := s.resp.posts.Load(); n != 1 {
		t.Errorf("%d OCSP queries for 32 concurrent checks, want 1", n)
	}
}

// The responder down, slow or answering unknown: require applies the
// unavailable policy, prefer falls back to the CRL.
func TestOCSPUnavailable(t *testing.T) {
	ctx := context.Background()
	type fault struct {
		name  string
		setup func(s *ocspSetup) Config
		want  string
	}
	faults := []fault{
		{"down", func(s *ocspSetup) Config { return Config{OCSPURL: deadURL(t)} }, "connection refused"},
		{"slow", func(s *ocspSetup) Config {
			s.resp.setDelay(5 * time.Second)
			return Config{OCSPTimeout: 200 * time.Millisecond}
		}, "deadline exceeded"},
		{"unknown", func(s *ocspSetup) Config {
			s.resp.set(s.leaf.Cert.SerialNumber, ocspAnswer{status: ocsp.Unknown})
			return Config{}
		}, "answered unknown"},
	}
	for _, f := range faults {
		t.Run(f.name+"/require", func(t *testing.T) {
			s := newOCSPSetup(t)
			c := s.checker(OCSPRequire, f.setup(s))
			start := time.Now()
			err := c.Check(ctx, s.chain)
			wantErr(t, err, ErrUnavailable)
			if !strings.Contains(err.Error(), f.want) {
				t.Errorf("error %q does not say %q", err, f.want)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v", d)
			}
		})
		t.Run(f.name+"/require/allow-with-warning", func(t *testing.T) {
			s := newOCSPSetup(t)
			cfg := f.setup(s)
			cfg.Unavailable = UnavailableAllow
			c := s.checker(OCSPRequire, cfg)
			wantErr(t, c.Check(ctx, s.chain), nil)
			if !strings.Contains(s.logs.String(), "allowed by policy allow-with-warning") || !strings.Contains(s.logs.String(), "serial="+serial.Format(s.leaf.Cert.SerialNumber)) {
				t.Errorf("no warning naming the certificate:\n%s", s.logs)
			}
		})
		t.Run(f.name+"/prefer", func(t *testing.T) {
			s := newOCSPSetup(t)
			cfg := f.setup(s)
			// Without a CRL there is nothing to fall back on.
			wantErr(t, s.checker(OCSPPrefer, cfg).Check(ctx, s.chain), ErrUnavailable)
			// With the intermediate's CRL, it decides.
			cfg.CRLs = []string{s.writeCRL("inter.crl", s.crl(s.inter, 1), false)}
			wantErr(t, s.checker(OCSPPrefer, cfg).Check(ctx, s.chain), nil)
			cfg.CRLs = []string{s.writeCRL("inter2.crl", s.crl(s.inter, 1, s.leaf.Cert.SerialNumber), false)}
			wantErr(t, s.checker(OCSPPrefer, cfg).Check(ctx, s.chain), ErrRevoked)
		})
	}
}

// A failed query is remembered for ocspRetryAfter: a responder that is
// down costs one timeout per certificate per interval, not per handshake.
func TestOCSPFailureBackoff(t *testing.T) {
	ctx := context.Background()
	s := newOCSPSetup(t)
	s.resp.set(s.leaf.Cert.SerialNumber, ocspAnswer{status: ocsp.Unknown})
	c := s.checker(OCSPRequire, Config{})
	wantErr(t, c.Check(ctx, s.chain), ErrUnavailable)
	wantErr(t, c.Check(ctx, s.chain), ErrUnavailable)
	if n := s.resp.posts.Load(); n != 1 {
		t.Fatalf("%d queries within the retry interval", n)
	}
	s.resp.set(s.leaf.Cert.SerialNumber, ocspAnswer{status: ocsp.Good})
	s.clock.Add(ocspRetryAfter)
	wantErr(t, c.Check(ctx, s.chain), nil)
	if n := s.resp.posts.Load(); n != 2 {
		t.Fatalf("%d queries after the retry interval", n)
	}
}

// A failed renewal keeps the cached answer until its nextUpdate.
func TestOCSPRefreshFailureKeepsAnswer(t *testing.T) {
	ctx := context.Background()
	s := newOCSPSetup(t)
	c := s.checker(OCSPRequire, Config{})
	wantErr(t, c.Check(ctx, s.chain), nil)
	s.resp.Close()
	s.clock.Add(40 * time.Minute)
	wantErr(t, c.Check(ctx, s.chain), nil) // starts a refresh, which fails
	c.wg.Wait()
	wantErr(t, c.Check(ctx, s.chain), nil)
	if !strings.Contains(s.logs.String(), "refresh failed, keeping the cached answer") {
		t.Errorf("failed refresh not logged:\n%s", s.logs)
	}
	s.clock.Add(20 * time.Minute) // the answer's nextUpdate
	wantErr(t, c.Check(ctx, s.chain), ErrUnavailable)
}

// Answers that must not be believed.
func TestOCSPBadResponses(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name  string
		setup func(s *ocspSetup)
		want  string
	}{
		{"signed by another CA", func(s *ocspSetup) {
			other := testpki.NewRoot(t, "other")
			s.resp.configure(func(r *testResponder) { r.signer, r.signerCert = other.Key, other.Cert })
		}, "bad OCSP signature"},
		{"delegated to a certificate without OCSPSigning", func(s *ocspSetup) {
			client := s.inter.Client(t, "mallory") // any certificate of the CA
			s.resp.configure(func(r *testResponder) { r.signer, r.signerCert, r.embed = client.Key, client.Cert, client.Cert })
		}, "lacks the OCSPSigning"},
		{"about another issuer's certificate", func(s *ocspSetup) {
			other := testpki.NewRoot(t, "other")
			s.resp.configure(func(r *testResponder) { r.ca = other }) // CertID hashes of another CA, signed by ours
		}, "another issuer"},
		{"thisUpdate in the future", func(s *ocspSetup) {
			s.resp.set(s.leaf.Cert.SerialNumber, ocspAnswer{status: ocsp.Good, thisUpdate: s.clock.Now().Add(time.Hour)})
		}, "in the future"},
		{"past nextUpdate", func(s *ocspSetup) {
			now := s.clock.Now()
			s.resp.set(s.leaf.Cert.SerialNumber, ocspAnswer{status: ocsp.Good, thisUpdate: now.Add(-2 * time.Hour), nextUpdate: now.Add(-time.Hour)})
		}, "stale"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newOCSPSetup(t)
			tc.setup(s)
			err := s.checker(OCSPRequire, Config{}).Check(ctx, s.chain)
			wantErr(t, err, ErrUnavailable)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
	t.Run("delegated responder with OCSPSigning", func(t *testing.T) {
		s := newOCSPSetup(t)
		d := s.inter.Leaf(t, testpki.LeafOptions{CN: "ocsp", EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}})
		s.resp.configure(func(r *testResponder) { r.signer, r.signerCert, r.embed = d.Key, d.Cert, d.Cert })
		wantErr(t, s.checker(OCSPRequire, Config{}).Check(ctx, s.chain), nil)
	})
}

func TestOCSPResponderChoice(t *testing.T) {
	ctx := context.Background()
	s := newOCSPSetup(t)
	noAIA := s.inter.Client(t, "no-aia")
	chain := verified(t, noAIA, s.root)
	// prefer without a responder: the CRL decides, nothing is asked.
	crl := s.writeCRL("inter.crl", s.crl(s.inter, 1), false)
	wantErr(t, s.checker(OCSPPrefer, Config{CRLs: []string{crl}}).Check(ctx, chain), nil)
	// require without a responder: unavailable.
	err := s.checker(OCSPRequire, Config{}).Check(ctx, chain)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "names no responder") {
		t.Fatalf("require, no responder: %v", err)
	}
	if s.resp.posts.Load() != 0 {
		t.Fatal("a responder was asked")
	}
	// A configured responder is used for every certificate.
	wantErr(t, s.checker(OCSPRequire, Config{OCSPURL: s.resp.URL}).Check(ctx, chain), nil)
	if s.resp.posts.Load() != 1 {
		t.Fatal("configured responder not asked")
	}
	// off never asks.
	wantErr(t, s.checker(OCSPOff, Config{}).Check(ctx, s.chain), nil)
	if s.resp.posts.Load() != 1 {
		t.Fatal("mode off asked the responder")
	}
}

// Revocation evidence from any source wins: a revoked serial in the CRL is
// refused without asking the responder, even if it would say good.
func TestOCSPGoodDoesNotOverrideCRLRevoked(t *testing.T) {
	s := newOCSPSetup(t)
	crl := s.writeCRL("inter.crl", s.crl(s.inter, 1, s.leaf.Cert.SerialNumber), false)
	c := s.checker(OCSPPrefer, Config{CRLs: []string{crl}})
	wantErr(t, c.Check(context.Background(), s.chain), ErrRevoked)
	if s.resp.posts.Load() != 0 {
		t.Error("responder asked about a serial the CRL revokes")
	}
}

// The caller's context bounds its wait; the shared query goes on.
func TestOCSPCallerContext(t *testing.T) {
	s := newOCSPSetup(t)
	s.resp.setDelay(time.Second)
	c := s.checker(OCSPRequire, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.Check(ctx, s.chain)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "abandoned") {
		t.Fatalf("Check: %v", err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("took %v", d)
	}
	// The query completed for the next caller.
	wantErr(t, c.Check(context.Background(), s.chain), nil)
	if n := s.resp.posts.Load(); n != 1 {
		t.Errorf("%d queries", n)
	}
}

// A reload carries the cached answers over: no query storm.
func TestOCSPReloadKeepsCache(t *testing.T) {
	s := newOCSPSetup(t)
	prev := s.checker(OCSPRequire, Config{})
	wantErr(t, prev.Check(context.Background(), s.chain), nil)
	next := s.newChecker(Config{OCSP: OCSPRequire, TrustedCAs: []*x509.Certificate{s.root.Cert}}, prev)
	wantErr(t, next.Check(context.Background(), s.chain), nil)
	if n := s.resp.posts.Load(); n != 1 {
		t.Errorf("%d queries, want the answer reused", n)
	}
}
