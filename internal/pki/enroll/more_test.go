package enroll

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"

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

// Tokens work for every CA key type, each with its one algorithm.
func TestTokenKeyTypes(t *testing.T) {
	for _, kt := range []pki.KeyType{pki.KeyEd25519, pki.KeyECDSAP384, pki.KeyRSA3072} {
		ca, err := pki.Init(t.TempDir(), pki.InitOptions{Passphrase: testPass, KeyType: kt})
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := MintToken(ca, TokenRequest{Profile: pki.ProfileClient, CN: "a"}, time.Now())
		if err != nil {
			t.Fatalf("%s: %v", kt, err)
		}
		if c, err := VerifyToken(ca, tok, time.Now()); err != nil || c.Subject != "a" {
			t.Fatalf("%s: verify: %v", kt, err)
		}
		ca.Close()
	}
}

// EST over Go's client: Bearer tokens, a certificate on simpleenroll,
// and the refusals of a wrong method, content type or body.
func TestESTRequests(t *testing.T) {
	e := newEnv(t, Options{})
	key, _ := pki.KeyECDSAP256.Generate()
	csrDER, _ := makeCSR(key, pkix.Name{CommonName: "dev"}, nil, nil, nil, nil)
	body := base64.StdEncoding.EncodeToString(csrDER)
	do := func(method, op, ctype, auth, body string, cert *tls.Certificate) (int, string) {
		t.Helper()
		cfg := &tls.Config{RootCAs: e.client.Roots}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
		req, _ := http.NewRequest(method, e.url+estPrefix+op, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tok := e.token(TokenRequest{Profile: pki.ProfileClient, CN: "dev"})
	code, out := do("POST", "simpleenroll", "application/pkcs10", "Bearer "+tok, body, nil)
	if code != 200 {
		t.Fatalf("simpleenroll with Bearer: %d %s", code, out)
	}
	der, _ := base64.StdEncoding.DecodeString(strings.ReplaceAll(out, "\r\n", ""))
	p7, err := pkcs7.Parse(der)
	if err != nil || len(p7.Certificates) != 2 || p7.Certificates[0].Subject.CommonName != "dev" {
		t.Fatalf("answer: %v %v", err, p7)
	}
	cur := chainCert(p7.Certificates, key)
	// simpleenroll with a certificate and no token renews it.
	if code, out := do("POST", "simpleenroll", "application/pkcs10", "", body, &cur); code != 200 {
		t.Fatalf("simpleenroll with a certificate: %d %s", code, out)
	}
	for _, tc := range []struct {
		method, op, ctype, body string
		want                    int
	}{
		{"GET", "simpleenroll", "", "", http.StatusMethodNotAllowed},
		{"POST", "simplereenroll", "application/json", body, http.StatusUnsupportedMediaType},
		{"POST", "simplereenroll", "application/pkcs10", "%%%", http.StatusBadRequest},
		{"POST", "serverkeygen", "application/pkcs10", body, http.StatusNotFound},
		{"POST", "cacerts", "", "", http.StatusMethodNotAllowed},
	} {
		if code, out := do(tc.method, tc.op, tc.ctype, "", tc.body, &cur); code != tc.want {
			t.Errorf("%s %s: %d %s; want %d", tc.method, tc.op, code, out, tc.want)
		}
	}
}

// A CA whose HTTPS certificate does not verify against --root is not an
// outage: the daemon stops at once instead of retrying forever.
func TestRenewerWrongRoot(t *testing.T) {
	e := newEnv(t, Options{})
	other, err := pki.Init(t.TempDir(), pki.InitOptions{Passphrase: testPass})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	iss, _ := e.ca.Issue(pki.IssueRequest{Profile: pki.ProfileClient, CN: "svc", Validity: time.Hour})
	certFile, keyFile := writePair(t, t.TempDir(), iss)
	c, _ := NewClient(e.url, rootPool(other))
	clock := &recClock{}
	r := &Renewer{Client: c, CertFile: certFile, KeyFile: keyFile, Clock: clock, Log: e.srv.log}
	err = r.Run(context.Background())
	mustRefuse(t, err, "does not verify against the root given")
	if n := len(clock.waits()); n != 1 {
		t.Fatalf("%d waits; want only the wait for the renewal time, no retry", n)
	}
}
