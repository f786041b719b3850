package revocation

import (
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gatehouse/gatehouse/internal/testpki"
)

// Run's schedule in a synctest bubble, on its fake clock: a file change
// is seen within DefaultFilePoll; a vanished file keeps its CRL until the
// CRL's nextUpdate, then the unavailable policy applies.
func TestRunSchedule(t *testing.T) {
	root := testpki.NewRoot(t, "root")
	revoked, good := root.Client(t, "revoked"), root.Client(t, "good")
	revokedChain, goodChain := verified(t, revoked, root), verified(t, good, root)
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		log, logs := newLog()
		path := filepath.Join(dir, "root.crl")
		now := time.Now() // the bubble's clock
		testpki.WriteFile(t, path, root.CRL(t, 1, now, now.Add(time.Hour)))
		c, err := New(context.Background(), Config{CRLs: []string{path}, TrustedCAs: []*x509.Certificate{root.Cert},
			Refresh: time.Minute, Log: log}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { c.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()

		loaded := time.Now()
		testpki.WriteFile(t, path, root.CRL(t, 2, loaded, loaded.Add(time.Hour), revoked.Cert.SerialNumber))
		time.Sleep(DefaultFilePoll + time.Millisecond)
		synctest.Wait()
		wantErr(t, c.Check(ctx, revokedChain), ErrRevoked)

		os.Remove(path)
		time.Sleep(59 * time.Minute)
		synctest.Wait()
		wantErr(t, c.Check(ctx, revokedChain), ErrRevoked)
		wantErr(t, c.Check(ctx, goodChain), nil)
		if !strings.Contains(logs.String(), "fetch failed, keeping the last good CRL") {
			t.Errorf("failure not logged:\n%s", logs)
		}
		time.Sleep(loaded.Add(time.Hour).Sub(time.Now()))
		synctest.Wait()
		wantErr(t, c.Check(ctx, goodChain), ErrUnavailable)
		wantErr(t, c.Check(ctx, revokedChain), ErrRevoked) // a stale CRL still proves a revocation
	})
}

func TestCheckEdges(t *testing.T) {
	e := newEnv(t)
	root := testpki.NewRoot(t, "root")
	c := e.newChecker(Config{TrustedCAs: []*x509.Certificate{root.Cert}}, nil)
	wantErr(t, c.Check(context.Background(), nil), nil)
	wantErr(t, c.Check(context.Background(), []*x509.Certificate{root.Cert}), nil)
	// No CRL and OCSP off: nothing to check, and startup said so.
	wantErr(t, c.Check(context.Background(), verified(t, root.Client(t, "c"), root)), nil)
	if !strings.Contains(e.logs.String(), "CRL: none configured for CA CN=root") {
		t.Errorf("uncovered CA not stated:\n%s", e.logs)
	}
	c.Close()
	c.Close()
	c.Run(context.Background()) // returns at once: closed, and no sources

	// OCSP required: every client is checked without a CRL; no warning.
	e2 := newEnv(t)
	e2.newChecker(Config{TrustedCAs: []*x509.Certificate{root.Cert}, OCSP: OCSPRequire}, nil).Close()
	if strings.Contains(e2.logs.String(), "none configured") {
		t.Errorf("warned of a CA without CRL under OCSP require:\n%s", e2.logs)
	}
}

func TestReasonString(t *testing.T) {
	for code, want := range map[int]string{0: "unspecified", 1: "keyCompromise", 6: "certificateHold", 7: "reason(7)", 99: "reason(99)", -1: "reason(-1)"} {
		if got := ReasonString(code); got != want {
			t.Errorf("ReasonString(%d) = %q, want %q", code, got, want)
		}
	}
}
