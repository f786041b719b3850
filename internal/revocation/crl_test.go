package revocation

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/serial"
	"github.com/gatehouse/gatehouse/internal/testpki"
)

func TestCRLFileGoodAndRevoked(t *testing.T) {
	for _, asPEM := range []bool{false, true} {
		t.Run(map[bool]string{false: "DER", true: "PEM"}[asPEM], func(t *testing.T) {
			e := newEnv(t)
			root := testpki.NewRoot(t, "root")
			good, bad := root.Client(t, "good"), root.Client(t, "bad")
			path := e.writeCRL("root.crl", crlWithReason(t, root, 1, e.clock.Now(), bad.Cert.SerialNumber, 1), asPEM)
			c := e.newChecker(Config{CRLs: []string{path}, TrustedCAs: []*x509.Certificate{root.Cert}}, nil)

			wantErr(t, c.Check(context.Background(), verified(t, good, root)), nil)
			err := c.Check(context.Background(), verified(t, bad, root))
			wantErr(t, err, ErrRevoked)
			var re *RevokedError
			if !errors.As(err, &re) || re.Serial != serial.Format(bad.Cert.SerialNumber) || re.Reason != 1 ||
				!re.RevokedAt.Equal(e.clock.Now().Add(-time.Minute)) || re.Source != "CRL "+path {
				t.Errorf("revoked error %+v", re)
			}
			for _, want := range []string{"serial " + re.Serial, `subject "CN=bad"`, "keyCompromise", "per CRL " + path} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			if e.logs.Count("CRL: none configured") != 0 {
				t.Errorf("covered CA reported as uncovered:\n%s", e.logs)
			}
		})
	}
}

// An intermediate's CRL is verified against the intermediate in the
// client's chain on first use; the root's CRL covers the intermediate.
func TestCRLIntermediate(t *testing.T) {
	e := newEnv(t)
	root := testpki.NewRoot(t, "root")
	inter := root.Intermediate(t, "inter")
	good, bad := inter.Client(t, "good"), inter.Client(t, "bad")
	interCRL := e.writeCRL("inter.crl", e.crl(inter, 1, bad.Cert.SerialNumber), false)
	rootCRL := e.writeCRL("root.crl", e.crl(root, 1), false)
	c := e.newChecker(Config{CRLs: []string{interCRL, rootCRL}, TrustedCAs: []*x509.Certificate{root.Cert}}, nil)
	if !strings.Contains(e.logs.String(), "held pending, used for nothing until it verifies") {
		t.Errorf("pending intermediate CRL not logged:\n%s", e.logs)
	}
	wantErr(t, c.Check(context.Background(), verified(t, good, root)), nil)
	wantErr(t, c.Check(context.Background(), verified(t, bad, root)), ErrRevoked)
	if n := e.logs.Count("signature verified against the issuer in the client's chain"); n != 1 {
		t.Errorf("intermediate verified %d times, want once (cached)", n)
	}

	// The root revokes the intermediate: every client under it is refused.
	e.writeCRL("root.crl", e.crl(root, 2, inter.Cert.SerialNumber), false)
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	err := c.Check(context.Background(), verified(t, good, root))
	var re *RevokedError
	if !errors.As(err, &re) || re.Serial != serial.Format(inter.Cert.SerialNumber) {
		t.Fatalf("revoked intermediate: %v", err)
	}

	// A refreshed intermediate CRL is now verified at load against the
	// intermediate learnt from client chains: a forgery is refused there
	// and never replaces the good one.
	e.writeCRL("inter.crl", forgedCRL(t, inter, 9, e.clock.Now()), false)
	if err := c.Refresh(context.Background()); err == nil || !strings.Contains(err.Error(), "not signed by that CA") {
		t.Fatalf("forged intermediate CRL: %v", err)
	}
	e.writeCRL("root.crl", e.crl(root, 3), false)
	c.Refresh(context.Background())
	wantErr(t, c.Check(context.Background(), verified(t, bad, root)), ErrRevoked)
}

func TestCRLWrongCA(t *testing.T) {
	ctx := context.Background()
	t.Run("forged root CRL refused at startup", func(t *testing.T) {
		e := newEnv(t)
		root := testpki.NewRoot(t, "root")
		path := e.writeCRL("root.crl", forgedCRL(t, root, 1, e.clock.Now()), false)
		_, err := New(ctx, e.config(Config{CRLs: []string{path}, TrustedCAs: []*x509.Certificate{root.Cert}}), nil)
		if err == nil || !strings.Contains(err.Error(), "load CRL "+path) || !strings.Contains(err.Error(), "not signed by that CA") {
			t.Fatalf("New: %v", err)
		}
	})
	t.Run("forged root CRL refused at refresh", func(t *testing.T) {
		e := newEnv(t)
		root := testpki.NewRoot(t, "root")
		cl := root.Client(t, "c")
		path := e.writeCRL("root.crl", e.crl(root, 1, cl.Cert.SerialNumber), false)
		c := e.newChecker(Config{CRLs: []string{path}, TrustedCAs: []*x509.Certificate{root.Cert}}, nil)
		e.writeCRL("root.crl", forgedCRL(t, root, 2, e.clock.Now()), false) // would un-revoke cl
		if err := c.Refresh(ctx); err == nil {
			t.Fatal("forged CRL accepted")
		}
		if !strings.Contains(e.logs.String(), "CRL: refused, keeping the CRL held") {
			t.Errorf("refusal not logged:\n%s", e.logs)
		}
		wantErr(t, c.Check(ctx, verified(t, cl, root)), ErrRevoked)
	})
	t.Run("forged intermediate CRL makes status unavailable", func(t *testing.T) {
		e := newEnv(t)
		root := testpki.NewRoot(t, "root")
		inter := root.Intermediate(t, "inter")
		cl := inter.Client(t, "c")
		path := e.writeCRL("inter.crl", forgedCRL(t, inter, 1<<62, e.clock.Now()), false)
		c := e.newChecker(Config{CRLs: []string{path}, TrustedCAs: []*x509.Certificate{root.Cert}}, nil)
		wantErr(t, c.Check(ctx, verified(t, cl, root)), ErrUnavailable)
		wantErr(t, c.Check(ctx, verified(t, cl, root)), ErrUnavailable)
		if n := e.logs.Count("not issued by the issuer in the client's chain"); n != 1 {
			t.Errorf("forgery logged %d times, want once:\n%s", n, e.logs)
		}
		// The forgery's CRL number does not block the genuine CRL.
		e.writeCRL("inter.crl", e.crl(inter, 1), false)
		if err := c.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		wantErr(t, c.Check(ctx, verified(t, cl, root)), nil)
	})
	t.Run("another CA's CRL never applies", func(t *testing.T) {
		e := newEnv(t)
		a, b := testpki.NewRoot(t, "a"), testpki.NewRoot(t, "b")
		serial := big.NewInt(4242)
		ca := a.Leaf(t, testpki.LeafOptions{CN: "a-client", Serial: serial})
		cb := b.Leaf(t, testpki.LeafOptions{CN: "b-client", Serial: serial})
		pathB := e.writeCRL("b.crl", e.crl(b, 1, serial), false)
		c := e.newChecker(Config{CRLs: []string{pathB}, TrustedCAs: []*x509.Certificate{a.Cert, b.Cert}}, nil)
		wantErr(t, c.Check(ctx, verified(t, ca, a)), nil)
		wantErr(t, c.Check(ctx, verified(t, cb, b)), ErrRevoked)
		if !strings.Contains(e.logs.String(), "CRL: none configured for CA CN=a,O=gatehouse test") ||
			strings.Contains(e.logs.String(), "none configured for CA CN=b") {
			t.Errorf("startup coverage log:\n%s", e.logs)
		}
	})
	t.Run("same name, another key", func(t *testing.T) {
		// Two roots with one name: the CRL's AuthorityKeyId says whose it is.
		e := newEnv(t)
		a1, a2 := testpki.NewRoot(t, "a"), testpki.NewRoot(t, "a")
		serial := big.NewInt(7)
		c1 := a1.Leaf(t, testpki.LeafOptions{CN: "c1", Serial: serial})
		c2 := a2.Leaf(t, testpki.LeafOptions{CN: "c2", Serial: serial})
		path := e.writeCRL("a2.crl", e.crl(a2, 1, serial), false)
		c := e.newChecker(Config{CRLs: []string{path}, TrustedCAs: []*x509.Certificate{a1.Cert, a2.Cert}}, nil)
		wantErr(t, c.Check(ctx, verified(t, c1, a1)), nil)
		wantErr(t, c.Check(ctx, verified(t, c2, a2)), ErrRevoked)
	})
}

func TestCRLNumberOrder(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	root := testpki.NewRoot(t, "root")
	c1, c2 := root.Client(t, "c1"), root.Client(t, "c2")
	path := e.writeCRL("root.crl", e.crl(root, 5, c1.Cert.SerialNumber), false)
	c := e.newChecker(Config{CRLs: []string{path}, TrustedCAs: []*x509.Certificate{root.Cert}}, nil)

	e.writeCRL("root.crl", e.crl(root, 4), false) // lower: would un-revoke c1
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	wantErr(t, c.Check(ctx, verified(t, c1, root)), ErrRevoked)
	if !strings.Contains(e.logs.String(), "lower CRL number than the CRL held; refused") {
		t.Errorf("lower number not logged:\n%s", e.logs)
	}

	e.writeCRL("root.crl", e.crl(root, 5, c2.Cert.SerialNumber), false) // equal: keep the one held
	c.Refresh(ctx)
	wantErr(t, c.Check(ctx, verified(t, c1, root)), ErrRevoked)
	wantErr(t, c.Check(ctx, verified(t, c2, root)), nil)
	if !strings.Contains(e.logs.String(), "same CRL number as the CRL held") {
		t.Errorf("equal number not logged:\n%s", e.logs)
	}

	e.writeCRL("root.crl", e.crl(root, 6, c2.Cert.SerialNumber), false) // higher: replaces
	c.Refresh(ctx)
	wantErr(t, c.Check(ctx, verified(t, c1, root)), nil)
	wantErr(t, c.Check(ctx, verified(t, c2, root)), ErrRevoked)
}

// A CRL source that stops answering: the last good CRL stays in force
// until its nextUpdate, then the unavailable policy decides.
func TestCRLExpiryAndUnavailablePolicy(t *testing.T) {
	ctx := context.Background()
	for _, policy := range []Unavailable{"", UnavailableReject, UnavailableAllow} {
		t.Run(string(policy), func(t *testing.T) {
			e := newEnv(t)
			root := testpki.NewRoot(t, "root")
			cl := root.Client(t, "c")
			srv := newFileServer(t, e.crl(root, 1))
			c := e.newChecker(Config{CRLs: []string{srv.URL}, TrustedCAs: []*x509.Certificate{root.Cert},
				Unavailable: policy, Refresh: time.Minute}, nil)
			chain := verified(t, cl, root)

			srv.set(nil, http.StatusServiceUnavailable)
			e.clock.Add(59 * time.Minute)
			if err := c.refreshAll(ctx, false); err == nil {
				t.Fatal("refresh of a failing source succeeded")
			}
			wantErr(t, c.Check(ctx, chain), nil)
			if !strings.Contains(e.logs.String(), "fetch failed, keeping the last good CRL") {
				t.Errorf("fetch failure not logged:\n%s", e.logs)
			}

			e.clock.Add(time.Minute) // nextUpdate reached
			c.refreshAll(ctx, false)
			if !strings.Contains(e.logs.String(), "past its nextUpdate and no newer one loaded") {
				t.Errorf("expiry not logged:\n%s", e.logs)
			}
			if policy == UnavailableAllow {
				wantErr(t, c.Check(ctx, chain), nil)
				wantErr(t, c.Check(ctx, chain), nil)
				if n := e.logs.Count("certificate allowed by policy allow-with-warning"); n != 2 {
					t.Errorf("%d warnings for 2 allowed requests", n)
				}
			} else {
				err := c.Check(ctx, chain)
				wantErr(t, err, ErrUnavailable)
				if !strings.Contains(err.Error(), "past its nextUpdate") {
					t.Errorf("error %q does not say why", err)
				}
			}

			// The source comes back: checks pass again.
			srv.set(e.crl(root, 2), http.StatusOK)
			e.clock.Add(time.Minute)
			if err := c.refreshAll(ctx, false); err != nil {
				t.Fatal(err)
			}
			wantErr(t, c.Check(ctx, chain), nil)
		})
	}
}

// Sources that cannot be loaded at startup are errors naming them.
func TestCRLStartupRefusals(t *testing.T) {
	e := newEnv(t)
	root, other := testpki.NewRoot(t, "root"), testpki.NewRoot(t, "other")
	now := e.clock.Now()
	delta, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(2), ThisUpdate: now, NextUpdate: now.Add(time.Hour),
		ExtraExtensions: []pkix.Extension{{Id: oidDeltaCRLIndicator, Critical: true, Value: mustASN1(t, 1)}},
	}, root.Cert, root.Key)
	if err != nil {
		t.Fatal(err)
	}
	slow := newFileServer(t, e.crl(root, 1))
	slow.setDelay(5 * time.Second)
	notFound := newFileServer(t, []byte("no"))
	notFound.set([]byte("no"), http.StatusNotFound)
	cases := []struct {
		name, source, want string
	}{
		{"missing file", filepath.Join(e.dir, "nope.crl"), "no such file"},
		{"corrupt file", e.writeCRL("corrupt.crl", []byte("this is not a CRL"), false), "parse CRL"},
		{"PEM without CRL", e.writeCRL("cert.pem", root.CertPEM(), false), "no PEM block of type X509 CRL"},
		{"expired", e.writeCRL("expired.crl", root.CRL(t, 1, now.Add(-2*time.Hour), now.Add(-time.Hour)), false), "expired"},
		{"from the future", e.writeCRL("future.crl", root.CRL(t, 1, now.Add(time.Hour), now.Add(2*time.Hour)), false), "from the future"},
		{"delta CRL", e.writeCRL("delta.crl", delta, false), "delta or partitioned"},
		{"wrong CA", e.writeCRL("forged.crl", forgedCRL(t, root, 1, now), false), "not signed by that CA"},
		{"URL down", deadURL(t) + "/crl", "connection refused"},
		{"URL slow", slow.URL, "deadline exceeded"},
		{"URL 404", notFound.URL, "404"},
		{"bad scheme", "ftp://127.0.0.1/crl", "use a file path or an http(s) URL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := New(context.Background(), e.config(Config{
				CRLs:         []string{e.writeCRL("ok.crl", e.crl(other, 1), false), tc.source},
				TrustedCAs:   []*x509.Certificate{root.Cert, other.Cert},
				FetchTimeout: 300 * time.Millisecond,
			}), nil)
			if err == nil || !strings.Contains(err.Error(), tc.source) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error naming %s and saying %q", err, tc.source, tc.want)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %v: fetch not bounded", d)
			}
		})
	}
}

func mustASN1(t testing.TB, v any) []byte {
	b, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// URL sources: refreshed on the Refresh interval only, conditional GET,
// and every refusal keeps the CRL held.
func TestCRLURLRefresh(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	root, other := testpki.NewRoot(t, "root"), testpki.NewRoot(t, "other")
	cl := root.Client(t, "c")
	chain := verified(t, cl, root)
	srv := newFileServer(t, e.crl(root, 1))
	srv.etag = `"1"`
	c := e.newChecker(Config{CRLs: []string{srv.URL}, TrustedCAs: []*x509.Certificate{root.Cert}, Refresh: time.Minute}, nil)
	if srv.hits.Load() != 1 {
		t.Fatalf("%d fetches at startup", srv.hits.Load())
	}

	// Not due: no fetch, even though the content changed.
	srv.set(e.crl(root, 2, cl.Cert.SerialNumber), http.StatusOK)
	c.refreshAll(ctx, false)
	if srv.hits.Load() != 1 {
		t.Fatal("URL fetched before it was due")
	}
	wantErr(t, c.Check(ctx, chain), nil)

	// Due, but the server says not modified (same ETag): nothing changes.
	e.clock.Add(time.Minute)
	c.refreshAll(ctx, false)
	if srv.hits.Load() != 2 {
		t.Fatalf("%d fetches", srv.hits.Load())
	}
	wantErr(t, c.Check(ctx, chain), nil)

	srv.mu.Lock()
	srv.etag = `"2"`
	srv.mu.Unlock()
	e.clock.Add(time.Minute)
	if err := c.refreshAll(ctx, false); err != nil {
		t.Fatal(err)
	}
	wantErr(t, c.Check(ctx, chain), ErrRevoked)

	// Each bad answer is refused and the CRL held stays.
	srv.mu.Lock()
	srv.etag = ""
	srv.mu.Unlock()
	now := e.clock.Now()
	for name, body := range map[string][]byte{
		"corrupt":      []byte("garbage"),
		"expired":      root.CRL(t, 9, now.Add(-2*time.Hour), now.Add(-time.Minute)),
		"wrong CA":     forgedCRL(t, root, 9, now),
		"lower number": e.crl(root, 1),
		"another CA's": e.crl(other, 9),
		"empty":        nil,
	} {
		srv.set(body, http.StatusOK)
		e.clock.Add(time.Minute)
		c.refreshAll(ctx, false)
		if err := c.Check(ctx, chain); !errors.Is(err, ErrRevoked) {
			t.Errorf("%s CRL replaced the one held: %v", name, err)
		}
	}
	if !strings.Contains(e.logs.String(), "issued by another CA than the CRL held") {
		t.Errorf("issuer change not logged:\n%s", e.logs)
	}
	srv.set(e.crl(root, 10), http.StatusOK)
	e.clock.Add(time.Minute)
	c.refreshAll(ctx, false)
	wantErr(t, c.Check(ctx, chain), nil)
}

// File sources are re-read when their content changes, between refreshes,
// and not when they are merely touched.
func TestCRLFileChange(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	root := testpki.NewRoot(t, "root")
	cl := root.Client(t, "c")
	chain := verified(t, cl, root)
	first := e.crl(root, 1)
	path := e.writeCRL("root.crl", first, false)
	c := e.newChecker(Config{CRLs: []string{path}, TrustedCAs: []*x509.Certificate{root.Cert}, Refresh: time.Hour}, nil)

	// Touched, same content: not parsed again.
	future := time.Now().Add(time.Minute)
	os.Chtimes(path, future, future)
	c.refreshAll(ctx, false)
	if n := e.logs.Count("CRL: loaded"); n != 1 {
		t.Errorf("%d loads after a touch, want 1", n)
	}
	// Replaced by rename (as ca revoke and config management tools do).
	e.writeCRL("root.crl", e.crl(root, 2, cl.Cert.SerialNumber), false)
	c.refreshAll(ctx, false)
	wantErr(t, c.Check(ctx, chain), ErrRevoked)
	// Rewritten in place.
	if err := os.WriteFile(path, e.crl(root, 3), 0o600); err != nil {
		t.Fatal(err)
	}
	c.refreshAll(ctx, false)
	wantErr(t, c.Check(ctx, chain), nil)
	// Swapped through a symlink.
	link := filepath.Join(e.dir, "link.crl")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	c2 := e.newChecker(Config{CRLs: []string{link}, TrustedCAs: []*x509.Certificate{root.Cert}, Refresh: time.Hour}, nil)
	wantErr(t, c2.Check(ctx, chain), nil)
	target := e.writeCRL("v4.crl", e.crl(root, 4, cl.Cert.SerialNumber), false)
	if err := os.Symlink(target, link+".new"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(link+".new", link); err != nil {
		t.Fatal(err)
	}
	c2.refreshAll(ctx, false)
	wantErr(t, c2.Check(ctx, chain), ErrRevoked)
}

// Hot reload: a new checker takes over the previous one's CRLs when a
// source fails, and never goes back to a lower CRL number.
func TestCRLReloadWithPrev(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	root, other := testpki.NewRoot(t, "root"), testpki.NewRoot(t, "other")
	cl := root.Client(t, "c")
	chain := verified(t, cl, root)
	srv := newFileServer(t, e.crl(root, 3, cl.Cert.SerialNumber))
	cfg := Config{CRLs: []string{srv.URL}, TrustedCAs: []*x509.Certificate{root.Cert}}
	prev := e.newChecker(cfg, nil)

	srv.set(nil, http.StatusBadGateway)
	next := e.newChecker(cfg, prev)
	wantErr(t, next.Check(ctx, chain), ErrRevoked)
	if !strings.Contains(e.logs.String(), "keeping the CRL loaded before") {
		t.Errorf("reuse not logged:\n%s", e.logs)
	}
	if _, err := New(ctx, e.config(cfg), nil); err == nil {
		t.Error("failing source accepted without a previous checker")
	}

	srv.set(e.crl(root, 2), http.StatusOK) // lower than prev's
	next = e.newChecker(cfg, prev)
	wantErr(t, next.Check(ctx, chain), ErrRevoked)

	// The new configuration points the source at another CA: accepted.
	srv.set(e.crl(other, 1), http.StatusOK)
	next = e.newChecker(Config{CRLs: cfg.CRLs, TrustedCAs: []*x509.Certificate{root.Cert, other.Cert}}, prev)
	wantErr(t, next.Check(ctx, chain), nil)

	// prev's CRL past its nextUpdate is no excuse for a failing source.
	srv.set(nil, http.StatusBadGateway)
	e.clock.Add(2 * time.Hour)
	if _, err := New(ctx, e.config(cfg), prev); err == nil {
		t.Error("expired CRL of the previous checker reused")
	}
}

func TestConfigValidation(t *testing.T) {
	for _, cfg := range []Config{
		{OCSP: "sometimes"},
		{Unavailable: "shrug"},
		{OCSPURL: "ftp://127.0.0.1/ocsp"},
		{OCSPURL: "not a url"},
		{Refresh: -time.Second},
		{CRLs: []string{""}},
	} {
		if _, err := New(context.Background(), cfg, nil); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}
