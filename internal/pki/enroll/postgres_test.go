package enroll

import (
	"context"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/pki"
	"github.com/gatehouse/gatehouse/internal/testpg"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testpg.Stop()
	os.Exit(code)
}

// Two `ca serve` replicas on one PostgreSQL inventory: a token spent at
// one is refused at the other.
func TestTokenAcrossReplicas(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.Init(dir, pki.InitOptions{Passphrase: testPass, Store: testpg.NewDB(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	replica := func() *Client {
		h, err := pki.Open(dir, testPass)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		srv, err := New(h, Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ctx, ln) }()
		t.Cleanup(func() { cancel(); <-done })
		c, err := NewClient("https://"+ln.Addr().String(), rootPool(ca))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := replica(), replica()
	tok, _, err := MintToken(ca, TokenRequest{Profile: pki.ProfileClient, CN: "partner-a"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	key, _ := pki.KeyECDSAP256.Generate()
	chain, err := a.Request(context.Background(), tok, key)
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Request(context.Background(), tok, key)
	mustRefuse(t, err, "enrollment token already used")
	// The certificate issued at one replica renews at the other.
	if _, err := b.Renew(context.Background(), chainCert(chain, key), key); err != nil {
		t.Fatalf("renew at the other replica: %v", err)
	}
}

func rootPool(ca *pki.CA) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Root())
	return p
}
