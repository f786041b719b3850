package revocation

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testpki"
)

// The forged CRLs of issue 9 item 1: the issuer name of a real CA, signed
// by another key, with an authority key identifier that matches no
// trusted CA (and a CRL number far above the genuine one's). Each attack
// is one source form (file, URL) at one moment (startup, refresh, reload),
// for an intermediate and for a root-only CA. Without verification before
// holding, the forgery was held, skipped by every lookup (the identifier
// matches nobody: the CA's clients went unchecked), and then blocked the
// genuine CRL ("issued by another CA than the CRL held").

// forgedOtherAKI names ca as issuer, carries a random key identifier and
// is signed by a key that is not ca's.
func forgedOtherAKI(t testing.TB, ca *testpki.CA, now time.Time) []byte {
	t.Helper()
	key := testpki.NewKey(t)
	fake := *ca.Cert
	fake.PublicKey = key.Public()
	fake.SubjectKeyId = make([]byte, 20)
	rand.Read(fake.SubjectKeyId)
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1 << 62), ThisUpdate: now, NextUpdate: now.Add(time.Hour),
	}, &fake, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// forgeries are the two shapes of forged CRL: the CA's own key identifier
// with a bad signature, and a key identifier that matches no CA.
func forgeries(t testing.TB, ca *testpki.CA, now time.Time) map[string][]byte {
	return map[string][]byte{
		"same AKI, other key": forgedCRL(t, ca, 1<<62, now),
		"AKI of no CA":        forgedOtherAKI(t, ca, now),
	}
}

// crlSource is a CRL source whose content a test sets: a file or a URL.
type crlSource struct {
	name string
	set  func([]byte)
}

func sources(e *env, initial []byte) map[string]func() crlSource {
	return map[string]func() crlSource{
		"file": func() crlSource {
			p := e.writeCRL("src.crl", initial, false)
			return crlSource{name: p, set: func(b []byte) { e.writeCRL("src.crl", b, false) }}
		},
		"URL": func() crlSource {
			srv := newFileServer(e.t, initial)
			return crlSource{name: srv.URL, set: func(b []byte) { srv.set(b, http.StatusOK) }}
		},
	}
}

// An intermediate's forged CRL served at startup is held pending: it
// decides nothing, the intermediate's clients are refused (never passed
// unchecked), and the genuine CRL replaces it at the next refresh.
func TestForgedIntermediateCRLAtStartup(t *testing.T) {
	ctx := context.Background()
	for fname := range forgeries(t, testpki.NewRoot(t, "x"), time.Now()) {
		for sname := range sources(newEnv(t), nil) {
			t.Run(fname+"/"+sname, func(t *testing.T) {
				e := newEnv(t)
				root := testpki.NewRoot(t, "root")
				inter := root.Intermediate(t, "inter")
				good, bad := inter.Client(t, "good"), inter.Client(t, "bad")
				src := sources(e, forgeries(t, inter, e.clock.Now())[fname])[sname]()
				c := e.newChecker(Config{CRLs: []string{src.name}, TrustedCAs: []*x509.Certificate{root.Cert}, Refresh: time.Minute}, nil)

				wantErr(t, c.Check(ctx, verified(t, good, root)), ErrUnavailable)
				wantErr(t, c.Check(ctx, verified(t, bad, root)), ErrUnavailable)
				if c.Stats().CRLsRefused != 1 {
					t.Errorf("CRLsRefused = %d, want 1", c.Stats().CRLsRefused)
				}

				src.set(e.crl(inter, 1, bad.Cert.SerialNumber))
				e.clock.Add(time.Minute)
				if err := c.Refresh(ctx); err != nil {
					t.Fatalf("genuine CRL after the forgery: %v", err)
				}
				wantErr(t, c.Check(ctx, verified(t, good, root)), nil)
				wantErr(t, c.Check(ctx, verified(t, bad, root)), ErrRevoked)

				// Verified now: the forgery is refused at load from here on.
				src.set(forgeries(t, inter, e.clock.Now())[fname])
				c.Refresh(ctx) // installs the verified CRL, then reads the source
				e.clock.Add(time.Minute)
				if err := c.Refresh(ctx); err == nil {
					t.Fatal("forgery accepted once the intermediate is known")
				}
				wantErr(t, c.Check(ctx, verified(t, bad, root)), ErrRevoked)
				src.set(e.crl(inter, 2))
				e.clock.Add(time.Minute)
				if err := c.Refresh(ctx); err != nil {
					t.Fatalf("genuine CRL after a refused forgery: %v", err)
				}
				wantErr(t, c.Check(ctx, verified(t, bad, root)), nil)
			})
		}
	}
}

// The genuine CRL is held and verified; a forgery then served at a
// refresh or at a configuration reload neither replaces nor blocks it.
func TestForgedIntermediateCRLAtRefreshAndReload(t *testing.T) {
	ctx := context.Background()
	for fname := range forgeries(t, testpki.NewRoot(t, "x"), time.Now()) {
		for sname := range sources(newEnv(t), nil) {
			t.Run(fname+"/"+sname, func(t *testing.T) {
				e := newEnv(t)
				root := testpki.NewRoot(t, "root")
				inter := root.Intermediate(t, "inter")
				bad := inter.Client(t, "bad")
				src := sources(e, e.crl(inter, 1, bad.Cert.SerialNumber))[sname]()
				cfg := Config{CRLs: []string{src.name}, TrustedCAs: []*x509.Certificate{root.Cert}, Refresh: time.Minute}
				prev := e.newChecker(cfg, nil)
				wantErr(t, prev.Check(ctx, verified(t, bad, root)), ErrRevoked)

				src.set(forgeries(t, inter, e.clock.Now())[fname])
				e.clock.Add(time.Minute)
				if err := prev.Refresh(ctx); err == nil || !strings.Contains(err.Error(), "not signed by that CA") {
					t.Fatalf("refresh with a forgery: %v", err)
				}
				wantErr(t, prev.Check(ctx, verified(t, bad, root)), ErrRevoked)

				next := e.newChecker(cfg, prev) // a reload while the forgery is served
				wantErr(t, next.Check(ctx, verified(t, bad, root)), ErrRevoked)
				if next.Stats().CRLsRefused != 1 {
					t.Errorf("reload: CRLsRefused = %d, want 1", next.Stats().CRLsRefused)
				}

				src.set(e.crl(inter, 2))
				e.clock.Add(time.Minute)
				if err := next.Refresh(ctx); err != nil {
					t.Fatalf("genuine CRL after the forgery: %v", err)
				}
				wantErr(t, next.Check(ctx, verified(t, bad, root)), nil)
			})
		}
	}
}

// A root-only CA: its CRL is verified at load. A forgery at startup stops
// startup; at refresh or reload it is refused and the genuine CRL stays.
func TestForgedRootCRL(t *testing.T) {
	ctx := context.Background()
	for fname := range forgeries(t, testpki.NewRoot(t, "x"), time.Now()) {
		for sname := range sources(newEnv(t), nil) {
			t.Run(fname+"/"+sname, func(t *testing.T) {
				e := newEnv(t)
				root := testpki.NewRoot(t, "root")
				bad := root.Client(t, "bad")
				src := sources(e, forgeries(t, root, e.clock.Now())[fname])[sname]()
				cfg := Config{CRLs: []string{src.name}, TrustedCAs: []*x509.Certificate{root.Cert}, Refresh: time.Minute}
				if _, err := New(ctx, e.config(cfg), nil); err == nil || !strings.Contains(err.Error(), "matches no trusted CA") {
					t.Fatalf("startup with a forged root CRL: %v", err)
				}

				src.set(e.crl(root, 1, bad.Cert.SerialNumber))
				prev := e.newChecker(cfg, nil)
				src.set(forgeries(t, root, e.clock.Now())[fname])
				e.clock.Add(time.Minute)
				if err := prev.Refresh(ctx); err == nil {
					t.Fatal("forged root CRL accepted at refresh")
				}
				wantErr(t, prev.Check(ctx, verified(t, bad, root)), ErrRevoked)
				next := e.newChecker(cfg, prev)
				wantErr(t, next.Check(ctx, verified(t, bad, root)), ErrRevoked)

				src.set(e.crl(root, 2))
				e.clock.Add(time.Minute)
				if err := next.Refresh(ctx); err != nil {
					t.Fatalf("genuine CRL after the forgery: %v", err)
				}
				wantErr(t, next.Check(ctx, verified(t, bad, root)), nil)
			})
		}
	}
}

// Two sources name the same intermediate, one genuine, one forged: the
// forgery neither passes the revoked client nor refuses the good one.
func TestForgedCRLBesideGenuine(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	root := testpki.NewRoot(t, "root")
	inter := root.Intermediate(t, "inter")
	good, bad := inter.Client(t, "good"), inter.Client(t, "bad")
	forged := e.writeCRL("forged.crl", forgedOtherAKI(t, inter, e.clock.Now()), false)
	genuine := e.writeCRL("genuine.crl", e.crl(inter, 1, bad.Cert.SerialNumber), false)
	for _, order := range [][]string{{forged, genuine}, {genuine, forged}} {
		c := e.newChecker(Config{CRLs: order, TrustedCAs: []*x509.Certificate{root.Cert}}, nil)
		wantErr(t, c.Check(ctx, verified(t, good, root)), nil)
		wantErr(t, c.Check(ctx, verified(t, bad, root)), ErrRevoked)
	}
}

// A pending CRL that proves forged makes its source be asked again within
// retryAfterFailure, not at the next refresh: the window in which the
// intermediate's clients are refused is short.
func TestForgedPendingCRLRefetchedSoon(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	root := testpki.NewRoot(t, "root")
	inter := root.Intermediate(t, "inter")
	good := inter.Client(t, "good")
	srv := newFileServer(t, forgedOtherAKI(t, inter, e.clock.Now()))
	c := e.newChecker(Config{CRLs: []string{srv.URL}, TrustedCAs: []*x509.Certificate{root.Cert}, Refresh: time.Hour}, nil)
	wantErr(t, c.Check(ctx, verified(t, good, root)), ErrUnavailable)
	srv.set(e.crl(inter, 1), http.StatusOK)
	e.clock.Add(retryAfterFailure)
	c.refreshAll(ctx, false)
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("%d fetches, want the source asked again after %v", n, retryAfterFailure)
	}
	wantErr(t, c.Check(ctx, verified(t, good, root)), nil)
}
