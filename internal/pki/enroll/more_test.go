package enroll

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/certsource"
	"github.com/gatehouse/gatehouse/internal/pki"
)

// Many concurrent uses of one token: exactly one certificate.
func TestTokenRaceSpendsOnce(t *testing.T) {
	e := newEnv(t, Options{})
	tok := e.token(TokenRequest{Profile: pki.ProfileClient, CN: "racer"})
	var (
		wg       sync.WaitGroup
		ok, used atomic.Int32
	)
	for range 12 {
		wg.Go(func() {
			key, _ := pki.KeyECDSAP256.Generate()
			_, err := e.client.Request(context.Background(), tok, key)
			switch {
			case err == nil:
				ok.Add(1)
			case strings.Contains(err.Error(), "enrollment token already used"):
				used.Add(1)
			default:
				t.Errorf("unexpected: %v", err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 || used.Load() != 11 {
		t.Fatalf("%d issued, %d refused as used; want 1 and 11", ok.Load(), used.Load())
	}
}

// An encrypted key stays encrypted, with the same passphrase, across a
// renewal.
func TestRenewerEncryptedKey(t *testing.T) {
	e := newEnv(t, Options{})
	iss, _ := e.ca.Issue(pki.IssueRequest{Profile: pki.ProfileServer, CN: "api", DNS: []string{"api.example.com"}, Validity: time.Hour})
	pass := []byte("key passphrase")
	dir := t.TempDir()
	certFile, keyFile := dir+"/api.pem", dir+"/api-key.pem"
	keyPEM, _ := iss.KeyPEM(pass)
	if err := pki.WriteFiles(pki.File{Path: certFile, Data: iss.ChainPEM()}, pki.File{Path: keyFile, Data: keyPEM}); err != nil {
		t.Fatal(err)
	}
	r := &Renewer{Client: e.client, CertFile: certFile, KeyFile: keyFile, KeyPassphrase: pass, Log: e.srv.log}
	leaf, err := r.RenewNow(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(keyFile)
	if !strings.Contains(string(b), "ENCRYPTED PRIVATE KEY") {
		t.Fatal("the renewed key was written unencrypted")
	}
	kp, err := certsource.LoadKeyPair(certFile, keyFile, pass)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := x509.ParseCertificate(kp.Certificate[0]); got.SerialNumber.Cmp(leaf.SerialNumber) != 0 || got.DNSNames[0] != "api.example.com" {
		t.Fatalf("files hold %x %v", got.SerialNumber, got.DNSNames)
	}
	if len(kp.Certificate) != 2 {
		t.Fatalf("chain of %d; want leaf and intermediate", len(kp.Certificate))
	}
}

func TestMintTokenLimits(t *testing.T) {
	e := newEnv(t, Options{})
	for _, tc := range []struct {
		req  TokenRequest
		want string
	}{
		{TokenRequest{Profile: pki.ProfileClient, CN: "a", TTL: 8 * 24 * time.Hour}, "at most 7d"},
		{TokenRequest{Profile: pki.ProfileServer, CN: "a"}, "needs at least one DNS name"},
		{TokenRequest{Profile: "ca", CN: "a"}, "unknown profile"},
		{TokenRequest{Profile: pki.ProfileClient}, "common name is required"},
		{TokenRequest{Profile: pki.ProfileClient, CN: "a", Validity: 72 * time.Hour}, "profile's maximum of 2d"},
	} {
		_, _, err := MintToken(e.ca, tc.req, time.Now())
		mustRefuse(t, err, tc.want)
	}
}

// The API's inputs never crash it: token strings and EST bodies.
func FuzzVerifyToken(f *testing.F) {
	dir := f.TempDir()
	ca, err := pki.Init(dir, pki.InitOptions{Passphrase: testPass})
	if err != nil {
		f.Fatal(err)
	}
	defer ca.Close()
	tok, _, _ := MintToken(ca, TokenRequest{Profile: pki.ProfileClient, CN: "a"}, time.Now())
	f.Add(tok)
	f.Add("e30.e30.")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		if c, err := VerifyToken(ca, s, time.Now()); err == nil && s != tok {
			t.Fatalf("accepted %q as %+v", s, c)
		}
		ReadClaims(s)
	})
}

func FuzzESTBody(f *testing.F) {
	f.Add([]byte("MIIBDzCBtwIBADAV\r\nMRMwEQYDVQQDDApkZXZpY2UtNw=="))
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		der, err := decodeBase64(b)
		if err == nil {
			pki.ParseCSR(der)
		}
	})
}

// The CA's key policy applies to enrollment: a weak key is refused and
// the token is not spent.
func TestEnrollWeakKeyRefused(t *testing.T) {
	e := newEnv(t, Options{})
	tok := e.token(TokenRequest{Profile: pki.ProfileClient, CN: "weak"})
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.client.Request(context.Background(), tok, weak)
	mustRefuse(t, err, "bad CSR (HTTP 400)")
	good, _ := pki.KeyECDSAP256.Generate()
	if _, err := e.client.Request(context.Background(), tok, good); err != nil {
		t.Fatalf("the refused weak key spent the token: %v", err)
	}
}
