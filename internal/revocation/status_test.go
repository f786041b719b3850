package revocation

import (
	"context"
	"crypto/x509"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/serial"
	"github.com/gatehouse/gatehouse/internal/testpki"
)

func TestStatus(t *testing.T) {
	e := newEnv(t)
	root := testpki.NewRoot(t, "root")
	bad := root.Client(t, "bad")
	fs := newFileServer(t, e.crl(root, 4, bad.Cert.SerialNumber))
	c := e.newChecker(Config{CRLs: []string{fs.URL}, TrustedCAs: []*x509.Certificate{root.Cert}}, nil)
	if !c.Ready() {
		t.Error("not ready with its CRL loaded")
	}
	st := c.Status()
	if len(st) != 1 {
		t.Fatalf("status: %+v", st)
	}
	s := st[0]
	if s.Source != fs.URL || !s.Loaded || s.IssuerCN != "root" || s.Number.Int64() != 4 || s.Revoked != 1 ||
		!s.LastSuccess.Equal(e.clock.Now()) || s.Errors != 0 || !s.NextUpdate.Equal(e.clock.Now().Add(time.Hour)) {
		t.Errorf("status after load: %+v", s)
	}
	loaded := e.clock.Now()

	// A failed fetch is counted and keeps the CRL and the last success.
	e.clock.Add(10 * time.Minute)
	fs.set(nil, http.StatusInternalServerError)
	if err := c.Refresh(context.Background()); err == nil {
		t.Fatal("refresh from a failing server succeeded")
	}
	s = c.Status()[0]
	if s.Errors != 1 || s.LastError == "" || !s.LastErrorAt.Equal(e.clock.Now()) || !s.LastSuccess.Equal(loaded) || !s.Loaded {
		t.Errorf("status after a failure: %+v", s)
	}
	// Garbage is a failure too (each forced refresh parses it again), never a success.
	fs.set([]byte("not a CRL"), http.StatusOK)
	c.Refresh(context.Background())
	c.Refresh(context.Background())
	if s = c.Status()[0]; s.Errors != 3 || !s.LastSuccess.Equal(loaded) {
		t.Errorf("status after refused content: %+v", s)
	}
	// Past nextUpdate the checker is no longer ready.
	e.clock.Add(time.Hour)
	if c.Ready() {
		t.Error("ready with a CRL past its nextUpdate")
	}
}

func TestStaplerStatus(t *testing.T) {
	s := newStapleSetup(t)
	st := s.stapler(nil)
	got := st.Status()
	if len(got) != 1 {
		t.Fatalf("status: %+v", got)
	}
	g := got[0]
	if g.SubjectCN != "api.test" || g.Serial != serial.Format(s.server.Cert.SerialNumber) || g.Responder != s.resp.URL ||
		!g.Present || !g.NextUpdate.After(s.clock.Now()) || g.ThisUpdate.After(s.clock.Now()) {
		t.Errorf("status with a staple: %+v", g)
	}
	// Past its nextUpdate the staple is no longer served, and Status says so.
	s.clock.Add(2 * time.Hour)
	if g := st.Status()[0]; g.Present {
		t.Errorf("status with an expired staple: %+v", g)
	}
}
