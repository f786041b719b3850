package revocation

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/gatehouse/gatehouse/internal/testpki"
)

type stapleSetup struct {
	*env
	root, inter *testpki.CA
	resp        *testResponder
	server      *testpki.Leaf
}

func newStapleSetup(t *testing.T) *stapleSetup {
	e := newEnv(t)
	s := &stapleSetup{env: e, root: testpki.NewRoot(t, "root")}
	s.inter = s.root.Intermediate(t, "inter")
	s.resp = newTestResponder(t, s.inter, e.clock)
	s.server = s.inter.Leaf(t, testpki.LeafOptions{CN: "api.test", DNS: []string{"api.test"},
		EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, OCSPServer: []string{s.resp.URL}})
	return s
}

func (s *stapleSetup) stapler(prev *Stapler, certs ...tls.Certificate) *Stapler {
	if len(certs) == 0 {
		certs = []tls.Certificate{s.server.TLSCertificate()}
	}
	return NewStapler(context.Background(), certs, StaplerOptions{Now: s.clock.Now, Log: s.log, Prev: prev})
}

func (s *stapleSetup) wantGoodStaple(st *Stapler, i int) []byte {
	s.t.Helper()
	der := st.Staple(i)
	if der == nil {
		s.t.Fatalf("no staple for certificate %d", i)
	}
	r, err := ocsp.ParseResponseForCert(der, s.server.Cert, s.inter.Cert)
	if err != nil || r.Status != ocsp.Good {
		s.t.Fatalf("staple: %v, status %v", err, r)
	}
	return der
}

// A served certificate gets a verified staple, and a real TLS client sees it.
func TestStapleInHandshake(t *testing.T) {
	s := newStapleSetup(t)
	st := s.stapler(nil)
	der := s.wantGoodStaple(st, 0)

	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return st.Certificate(0), nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.(*tls.Conn).Handshake()
			conn.Close()
		}
	}()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(),
		&tls.Config{RootCAs: testpki.Pool(s.root), ServerName: "api.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got := conn.ConnectionState().OCSPResponse; !bytes.Equal(got, der) {
		t.Fatalf("client saw staple %x, want %x", got, der)
	}
}

// Renewed at half-life; a failing responder leaves the previous staple in
// place until its nextUpdate, and never past it.
func TestStapleRefreshAndExpiry(t *testing.T) {
	s := newStapleSetup(t)
	st := s.stapler(nil)
	first := s.wantGoodStaple(st, 0)

	s.clock.Add(29 * time.Minute)
	if wait := st.refreshDue(context.Background()); wait < time.Minute || s.resp.posts.Load() != 1 {
		t.Fatalf("fetched before half-life (wait %v, %d POSTs)", wait, s.resp.posts.Load())
	}
	s.clock.Add(time.Minute)
	st.refreshDue(context.Background())
	second := s.wantGoodStaple(st, 0)
	if s.resp.posts.Load() != 2 || bytes.Equal(first, second) {
		t.Fatal("not renewed at half-life")
	}

	s.resp.Close() // responder down from here on
	s.clock.Add(31 * time.Minute)
	st.refreshDue(context.Background())
	if !bytes.Equal(s.wantGoodStaple(st, 0), second) {
		t.Fatal("previous staple not kept")
	}
	if !strings.Contains(s.logs.String(), "fetch failed, keeping the current response") {
		t.Errorf("failure not logged:\n%s", s.logs)
	}
	s.clock.Add(29 * time.Minute) // second's nextUpdate: thisUpdate(30m) + 1h
	st.refreshDue(context.Background())
	if st.Staple(0) != nil || st.Certificate(0).OCSPStaple != nil {
		t.Fatal("stale staple served")
	}
	if st.Certificate(0) == nil || len(st.Certificate(0).Certificate) != 2 {
		t.Fatal("certificate not served without its staple")
	}
}

// Revoked, unknown, stale or badly signed answers are never stapled; a
// revoked answer removes a good staple at once.
func TestStapleNeverBad(t *testing.T) {
	cases := map[string]func(s *stapleSetup){
		"revoked": func(s *stapleSetup) {
			s.resp.set(s.server.Cert.SerialNumber, ocspAnswer{status: ocsp.Revoked, revokedAt: s.clock.Now()})
		},
		"unknown": func(s *stapleSetup) { s.resp.set(s.server.Cert.SerialNumber, ocspAnswer{status: ocsp.Unknown}) },
		"stale": func(s *stapleSetup) {
			now := s.clock.Now()
			s.resp.set(s.server.Cert.SerialNumber, ocspAnswer{status: ocsp.Good, thisUpdate: now.Add(-2 * time.Hour), nextUpdate: now.Add(-time.Hour)})
		},
		"wrong signer": func(s *stapleSetup) {
			other := testpki.NewRoot(s.t, "other")
			s.resp.configure(func(r *testResponder) { r.signer, r.signerCert = other.Key, other.Cert })
		},
	}
	for name, setup := range cases {
		t.Run(name, func(t *testing.T) {
			s := newStapleSetup(t)
			setup(s)
			if st := s.stapler(nil); st.Staple(0) != nil || st.Certificate(0).OCSPStaple != nil {
				t.Fatal("bad answer stapled")
			}
		})
	}
	t.Run("revoked after good", func(t *testing.T) {
		s := newStapleSetup(t)
		st := s.stapler(nil)
		s.wantGoodStaple(st, 0)
		s.resp.set(s.server.Cert.SerialNumber, ocspAnswer{status: ocsp.Revoked, revokedAt: s.clock.Now()})
		s.clock.Add(30 * time.Minute)
		st.refreshDue(context.Background())
		if st.Staple(0) != nil {
			t.Fatal("good staple kept after a revoked answer")
		}
		if !strings.Contains(s.logs.String(), "gateway's certificate is revoked") {
			t.Errorf("revocation not logged:\n%s", s.logs)
		}
	})
}

// Certificates without a responder or without their issuer are served
// without a staple and cost no query.
func TestStapleSkips(t *testing.T) {
	s := newStapleSetup(t)
	noAIA := s.inter.Leaf(t, testpki.LeafOptions{CN: "x", EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	leafOnly := s.server.TLSCertificate()
	leafOnly.Certificate = leafOnly.Certificate[:1]
	st := s.stapler(nil, noAIA.TLSCertificate(), leafOnly, s.server.TLSCertificate())
	if st.Staple(0) != nil || st.Staple(1) != nil || st.Staple(3) != nil || st.Staple(-1) != nil || st.Certificate(3) != nil {
		t.Fatal("staple where none can be")
	}
	s.wantGoodStaple(st, 2)
	if n := s.resp.posts.Load(); n != 1 {
		t.Errorf("%d queries, want 1", n)
	}
	for _, want := range []string{"names no OCSP responder", "issuer is neither in the chain nor among the trusted CAs"} {
		if !strings.Contains(s.logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, s.logs)
		}
	}
}

// A reload reuses the previous stapler's responses.
func TestStaplePrev(t *testing.T) {
	s := newStapleSetup(t)
	prev := s.stapler(nil)
	der := s.wantGoodStaple(prev, 0)
	next := s.stapler(prev)
	if !bytes.Equal(s.wantGoodStaple(next, 0), der) || s.resp.posts.Load() != 1 {
		t.Fatal("previous staple not reused")
	}
}

func TestStapleRunStops(t *testing.T) {
	s := newStapleSetup(t)
	st := s.stapler(nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { st.Run(ctx); close(done) }()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
}
