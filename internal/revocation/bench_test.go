package revocation

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testpki"
)

// hotSetup is a client under an intermediate, with CRLs of 10,000
// revoked serials for the root and the intermediate, and an OCSP
// responder for the client: the shape of a busy deployment.
type hotSetup struct {
	*env
	root, inter *testpki.CA
	resp        *testResponder
	chain       []*x509.Certificate
	crls        []string
}

func newHotSetup(tb testing.TB) *hotSetup {
	e := newEnv(tb)
	s := &hotSetup{env: e, root: testpki.NewRoot(tb, "root")}
	s.inter = s.root.Intermediate(tb, "inter")
	s.resp = newTestResponder(tb, s.inter, e.clock)
	leaf := s.inter.Leaf(tb, testpki.LeafOptions{CN: "c", OCSPServer: []string{s.resp.URL}})
	s.chain = verified(tb, leaf, s.root)
	for _, ca := range []*testpki.CA{s.root, s.inter} {
		s.crls = append(s.crls, e.writeCRL(ca.Cert.Subject.CommonName+".crl", bigCRL(tb, ca, e.clock.Now(), 10_000), false))
	}
	return s
}

func bigCRL(tb testing.TB, ca *testpki.CA, now time.Time, n int) []byte {
	entries := make([]x509.RevocationListEntry, n)
	limit := new(big.Int).Lsh(big.NewInt(1), 127)
	for i := range entries {
		sn, _ := rand.Int(rand.Reader, limit)
		entries[i] = x509.RevocationListEntry{SerialNumber: sn, RevocationTime: now, ReasonCode: 1}
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: now, NextUpdate: now.Add(time.Hour), RevokedCertificateEntries: entries,
	}, ca.Cert, ca.Key)
	if err != nil {
		tb.Fatal(err)
	}
	return der
}

func (s *hotSetup) checkers(tb testing.TB) map[string]*Checker {
	trusted := []*x509.Certificate{s.root.Cert}
	m := map[string]*Checker{
		"CRL":            s.newChecker(Config{CRLs: s.crls, TrustedCAs: trusted}, nil),
		"OCSPCached":     s.newChecker(Config{OCSP: OCSPRequire, TrustedCAs: trusted}, nil),
		"CRL+OCSPCached": s.newChecker(Config{CRLs: s.crls, OCSP: OCSPPrefer, TrustedCAs: trusted}, nil),
	}
	for name, c := range m {
		if err := c.Check(context.Background(), s.chain); err != nil { // warms the caches
			tb.Fatalf("%s: %v", name, err)
		}
		if c.mode == OCSPPrefer { // the CRL decided; the OCSP answer arrives in the background
			waitFor(tb, func() bool { return c.ocsp.get(s.chain[0].Raw) != nil })
		}
	}
	return m
}

// BenchmarkCheck measures Check for a good client whose status is known:
// CRLs loaded and signature checks cached, or an OCSP answer cached. This
// is the cost every handshake and every request pays.
func BenchmarkCheck(b *testing.B) {
	s := newHotSetup(b)
	ctx := context.Background()
	checkers := s.checkers(b)
	for _, name := range []string{"CRL", "OCSPCached", "CRL+OCSPCached"} {
		c := checkers[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Check(ctx, s.chain); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := c.Check(ctx, s.chain); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
	if n := s.resp.posts.Load(); n > 2 {
		b.Errorf("%d OCSP queries during the benchmark; cached statuses must not go to the network", n)
	}
}

// TestCheckDoesNotAllocate pins the benchmark's promise: a known good
// status costs no allocation.
func TestCheckDoesNotAllocate(t *testing.T) {
	s := newHotSetup(t)
	for name, c := range s.checkers(t) {
		if n := testing.AllocsPerRun(200, func() { c.Check(context.Background(), s.chain) }); n != 0 {
			t.Errorf("%s: %v allocations per Check", name, n)
		}
	}
	if n := s.resp.posts.Load(); n != 2 {
		t.Errorf("%d OCSP queries, want one per OCSP checker", n)
	}
}
