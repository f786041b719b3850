package enroll

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse/gatehouse/internal/pki"
	"github.com/gatehouse/gatehouse/internal/pki/store"
	"github.com/gatehouse/gatehouse/internal/serial"
)

var testPass = []byte("test passphrase")

type env struct {
	t      *testing.T
	dir    string
	ca     *pki.CA
	srv    *Server
	url    string
	client *Client
}

// newEnv creates a CA with an intermediate and serves its enrollment API
// on a real TLS listener on loopback.
func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	dir := t.TempDir()
	// The CA is born three days ago, so that tests can issue certificates
	// that have already expired.
	born := time.Now().Add(-72 * time.Hour)
	ca, err := pki.Init(dir, pki.InitOptions{Passphrase: testPass, Intermediate: true, Now: func() time.Time { return born },
		Profiles: map[pki.Profile]pki.ProfileLimits{pki.ProfileClient: {DefaultValidity: pki.Duration(24 * time.Hour), MaxValidity: pki.Duration(48 * time.Hour)}}})
	if err != nil {
		t.Fatal(err)
	}
	ca.Now = nil
	t.Cleanup(func() { ca.Close() })
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	srv, err := New(ca, opts)
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
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	roots := x509.NewCertPool()
	roots.AddCert(ca.Root())
	u := "https://" + ln.Addr().String()
	c, err := NewClient(u, roots)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, dir: dir, ca: ca, srv: srv, url: u, client: c}
}

func (e *env) token(req TokenRequest) string {
	e.t.Helper()
	tok, _, err := MintToken(e.ca, req, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

func tlsCert(iss *pki.Issued) tls.Certificate {
	var c tls.Certificate
	for _, x := range iss.Chain {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	c.PrivateKey, c.Leaf = iss.Key, iss.Cert()
	return c
}

func chainCert(chain []*x509.Certificate, key any) tls.Certificate {
	var c tls.Certificate
	for _, x := range chain {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	c.PrivateKey, c.Leaf = key, chain[0]
	return c
}

func mustRefuse(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want refusal %q", want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q; want it to contain %q", err, want)
	}
}

func TestTokenEnrollment(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	spiffe, _ := url.Parse("spiffe://example.com/partner-a")
	tok := e.token(TokenRequest{Profile: pki.ProfileClient, CN: "partner-a", URIs: []*url.URL{spiffe}})
	key, _ := pki.KeyECDSAP256.Generate()
	chain, err := e.client.Request(ctx, tok, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf := chain[0]
	if leaf.Subject.CommonName != "partner-a" || len(leaf.URIs) != 1 || leaf.URIs[0].String() != spiffe.String() {
		t.Fatalf("issued %v %v", leaf.Subject, leaf.URIs)
	}
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life != 24*time.Hour+time.Minute {
		t.Errorf("lifetime %s; want the client profile default 24h (+1m backdating)", life)
	}
	if len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Errorf("EKU %v", leaf.ExtKeyUsage)
	}
	// Who asked, and from where, is recorded.
	ens, err := e.ca.Store().(store.EnrollmentStore).Enrollments(ctx, store.FormatSerial(leaf.SerialNumber))
	if err != nil || len(ens) != 1 || ens[0].Method != "token" || !strings.HasPrefix(ens[0].Requester, "token:") ||
		!strings.HasPrefix(ens[0].Remote, "127.0.0.1:") {
		t.Fatalf("enrollments %+v, %v", ens, err)
	}

	t.Run("replay refused", func(t *testing.T) {
		_, err := e.client.Request(ctx, tok, key)
		mustRefuse(t, err, "enrollment token already used")
	})
	t.Run("replay refused after a restart", func(t *testing.T) {
		// A second server on the same inventory (a restarted ca serve).
		e2 := &env{t: t, ca: e.ca}
		srv2, err := New(e.ca, Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		ctx2, cancel := context.WithCancel(ctx)
		defer cancel()
		go srv2.Serve(ctx2, ln)
		e2.client, _ = NewClient("https://"+ln.Addr().String(), e.client.Roots)
		_, err = e2.client.Request(ctx, tok, key)
		mustRefuse(t, err, "enrollment token already used")
	})
	t.Run("expired refused", func(t *testing.T) {
		old, _, err := MintToken(e.ca, TokenRequest{Profile: pki.ProfileClient, CN: "late", TTL: time.Minute}, time.Now().Add(-2*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.client.Request(ctx, old, key)
		mustRefuse(t, err, "enrollment token expired")
	})
	t.Run("other names refused", func(t *testing.T) {
		tok := e.token(TokenRequest{Profile: pki.ProfileServer, CN: "api.example.com", DNS: []string{"api.example.com"}})
		claims, _ := ReadClaims(tok)
		kr, _ := claims.keyRequest()
		csr, _ := makeCSR(key, kr.Subject, []string{"api.example.com", "admin.example.com"}, nil, nil, nil)
		_, err := e.client.post(ctx, PathRequest, csr, nil, "Bearer "+tok, key)
		mustRefuse(t, err, "the CSR asks for names the token does not grant")
		// And the refusal did not spend the token: the honest request works.
		if _, err := e.client.Request(ctx, tok, key); err != nil {
			t.Fatalf("honest request after a refused one: %v", err)
		}
	})
	t.Run("other subject refused", func(t *testing.T) {
		tok := e.token(TokenRequest{Profile: pki.ProfileClient, CN: "partner-b"})
		claims, _ := ReadClaims(tok)
		kr, _ := claims.keyRequest()
		kr.Subject.Organization = []string{"Partner Inc"}
		csr, _ := makeCSR(key, kr.Subject, nil, nil, nil, nil)
		_, err := e.client.post(ctx, PathRequest, csr, nil, "Bearer "+tok, key)
		mustRefuse(t, err, "the CSR asks for names the token does not grant")
	})
	t.Run("token of another CA refused", func(t *testing.T) {
		other, err := pki.Init(t.TempDir(), pki.InitOptions{Passphrase: testPass})
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		forged, _, err := MintToken(other, TokenRequest{Profile: pki.ProfileClient, CN: "partner-a"}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.client.Request(ctx, forged, key)
		mustRefuse(t, err, "invalid enrollment token")
	})
	t.Run("token signed by another key refused", func(t *testing.T) {
		// Everything right but the signature: this CA's issuer id, signed
		// by another CA's key.
		other, err := pki.Init(t.TempDir(), pki.InitOptions{Passphrase: testPass})
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		_, c, _ := MintToken(e.ca, TokenRequest{Profile: pki.ProfileClient, CN: "partner-a"}, time.Now())
		key, _ := other.TokenSigner()
		sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: cryptosigner.Opaque(key)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		forged, err := jwt.Signed(sig).Claims(c).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.client.Request(ctx, forged, key)
		mustRefuse(t, err, "invalid enrollment token")
		// An unsigned token ("alg": "none") is refused too.
		parts := strings.Split(forged, ".")
		none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."
		_, err = e.client.Request(ctx, none, key)
		mustRefuse(t, err, "")
	})
	t.Run("tampered token refused", func(t *testing.T) {
		tok := e.token(TokenRequest{Profile: pki.ProfileClient, CN: "partner-c"})
		parts := strings.Split(tok, ".")
		// Flip one character of the payload.
		p := []byte(parts[1])
		p[5] ^= 1
		_, err := e.client.Request(ctx, parts[0]+"."+string(p)+"."+parts[2], key)
		if err == nil {
			t.Fatal("tampered token accepted")
		}
	})
	t.Run("no token", func(t *testing.T) {
		csr, _ := makeCSR(key, leaf.Subject, nil, nil, nil, nil)
		_, err := e.client.post(ctx, PathRequest, csr, nil, "", key)
		mustRefuse(t, err, "an enrollment token is required")
	})
}

func TestRenew(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	iss, err := e.ca.Issue(pki.IssueRequest{Profile: pki.ProfileClient, CN: "svc", DNS: []string{"svc.example.com"}, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	newKey, _ := pki.KeyECDSAP256.Generate()
	chain, err := e.client.Renew(ctx, tlsCert(iss), newKey)
	if err != nil {
		t.Fatal(err)
	}
	got := chain[0]
	if got.Subject.String() != iss.Cert().Subject.String() || len(got.DNSNames) != 1 || got.DNSNames[0] != "svc.example.com" {
		t.Fatalf("renewed %v %v", got.Subject, got.DNSNames)
	}
	if got.SerialNumber.Cmp(iss.Cert().SerialNumber) == 0 || !got.NotAfter.After(iss.Cert().NotAfter.Add(-time.Second)) {
		t.Fatalf("not a fresh certificate: serial %x not_after %s", got.SerialNumber, got.NotAfter)
	}
	if life := got.NotAfter.Sub(got.NotBefore); life != time.Hour+time.Minute {
		t.Errorf("lifetime %s; want the old one's, 1h", life)
	}
	// Same key is allowed too, and the renewed certificate renews again.
	if _, err := e.client.Renew(ctx, chainCert(chain, newKey), newKey); err != nil {
		t.Fatalf("renew the renewed certificate with the same key: %v", err)
	}
	rec, _ := e.ca.Store().Get(ctx, store.FormatSerial(got.SerialNumber))
	if rec.Profile != "client" {
		t.Errorf("profile %q", rec.Profile)
	}
	ens, _ := e.ca.Store().(store.EnrollmentStore).Enrollments(ctx, rec.Serial)
	if len(ens) != 1 || ens[0].Requester != "serial:"+serial.Format(iss.Cert().SerialNumber) {
		t.Errorf("enrollment %+v", ens)
	}

	t.Run("revoked refused", func(t *testing.T) {
		iss, _ := e.ca.Issue(pki.IssueRequest{Profile: pki.ProfileClient, CN: "gone", Validity: time.Hour})
		if _, err := e.ca.Revoke(ctx, iss.Cert().SerialNumber, pki.ReasonKeyCompromise); err != nil {
			t.Fatal(err)
		}
		_, err := e.client.Renew(ctx, tlsCert(iss), iss.Key)
		mustRefuse(t, err, "certificate revoked")
	})
	t.Run("expired refused", func(t *testing.T) {
		iss := issueExpired(t, e, time.Hour)
		_, err := e.client.Renew(ctx, tlsCert(iss), iss.Key)
		mustRefuse(t, err, "certificate expired")
	})
	t.Run("foreign CA refused", func(t *testing.T) {
		other, err := pki.Init(t.TempDir(), pki.InitOptions{Passphrase: testPass, Name: e.ca.Root().Subject.CommonName, Intermediate: true})
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		iss, _ := other.Issue(pki.IssueRequest{Profile: pki.ProfileClient, CN: "svc", DNS: []string{"svc.example.com"}, Validity: time.Hour})
		_, err = e.client.Renew(ctx, tlsCert(iss), iss.Key)
		mustRefuse(t, err, "certificate not issued by this CA")
	})
	t.Run("no certificate", func(t *testing.T) {
		key, _ := pki.KeyECDSAP256.Generate()
		csr, _ := makeCSR(key, got.Subject, got.DNSNames, nil, nil, nil)
		_, err := e.client.post(ctx, PathRenew, csr, nil, "", key)
		mustRefuse(t, err, "a client certificate issued by this CA is required")
	})
	t.Run("other names refused", func(t *testing.T) {
		key, _ := pki.KeyECDSAP256.Generate()
		csr, _ := makeCSR(key, got.Subject, []string{"svc.example.com", "admin.example.com"}, nil, nil, nil)
		cur := chainCert(chain, newKey)
		_, err := e.client.post(ctx, PathRenew, csr, &cur, "", key)
		mustRefuse(t, err, "the CSR must name the same subject")
	})
}

// issueExpired issues, through a second handle on the CA whose clock is
// in the past, a certificate that expired `ago`.
func issueExpired(t *testing.T, e *env, ago time.Duration) *pki.Issued {
	t.Helper()
	past, err := pki.Open(e.dir, testPass)
	if err != nil {
		t.Fatal(err)
	}
	defer past.Close()
	start := time.Now().Add(-ago - time.Hour)
	past.Now = func() time.Time { return start }
	iss, err := past.Issue(pki.IssueRequest{Profile: pki.ProfileClient, CN: "late", Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

func TestRenewGrace(t *testing.T) {
	e := newEnv(t, Options{Grace: 24 * time.Hour, RevokeSuperseded: true})
	ctx := context.Background()
	recent := issueExpired(t, e, time.Hour)
	chain, err := e.client.Renew(ctx, tlsCert(recent), recent.Key)
	if err != nil {
		t.Fatalf("expired 1h ago with a 24h grace: %v", err)
	}
	if !chain[0].NotAfter.After(time.Now()) {
		t.Fatal("renewal is not valid now")
	}
	// --revoke-superseded: the old one is revoked, and cannot renew again.
	rec, _ := e.ca.Store().Get(ctx, recent.Record.Serial)
	if rec.Status != store.StatusRevoked || pki.Reason(rec.Reason) != pki.ReasonSuperseded {
		t.Fatalf("old certificate %s %d; want revoked superseded", rec.Status, rec.Reason)
	}
	_, err = e.client.Renew(ctx, tlsCert(recent), recent.Key)
	mustRefuse(t, err, "certificate revoked")

	old := issueExpired(t, e, 48*time.Hour)
	_, err = e.client.Renew(ctx, tlsCert(old), old.Key)
	mustRefuse(t, err, "certificate expired")

	if _, err := New(e.ca, Options{Grace: 8 * 24 * time.Hour}); err == nil {
		t.Fatal("a grace beyond MaxGrace was accepted")
	}
}

func TestConcurrentRenewals(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	const n = 16
	var certs []*pki.Issued
	for i := range n {
		iss, err := e.ca.Issue(pki.IssueRequest{Profile: pki.ProfileClient, CN: "fleet-" + string(rune('a'+i)), Validity: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, iss)
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		serials = map[string]bool{}
		failed  atomic.Int32
	)
	for _, iss := range certs {
		for range 3 {
			wg.Go(func() {
				chain, err := e.client.Renew(ctx, tlsCert(iss), iss.Key)
				if err != nil {
					t.Errorf("renew %s: %v", iss.Cert().Subject.CommonName, err)
					failed.Add(1)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				s := store.FormatSerial(chain[0].SerialNumber)
				if serials[s] {
					t.Errorf("duplicated serial %s", s)
				}
				serials[s] = true
			})
		}
	}
	wg.Wait()
	all, err := e.ca.Store().List(ctx, store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	// n originals + 3n renewals + the listener's certificate.
	if want := n + 3*n + 1; len(all) != want || len(serials) != 3*n {
		t.Fatalf("inventory holds %d certificates, %d renewals seen; want %d and %d", len(all), len(serials), want, 3*n)
	}
	for _, r := range all {
		if _, err := x509.ParseCertificate(r.DER); err != nil {
			t.Fatalf("inventory record %s: %v", r.Serial, err)
		}
	}
	ens, _ := e.ca.Store().(store.EnrollmentStore).Enrollments(ctx, "")
	if len(ens) != 3*n {
		t.Fatalf("%d enrollments recorded; want %d", len(ens), 3*n)
	}
}

func TestListenerCertificate(t *testing.T) {
	e := newEnv(t, Options{Names: []string{"localhost", "127.0.0.1"}})
	c := e.srv.ListenerCert()
	if len(c.DNSNames) != 1 || c.DNSNames[0] != "localhost" || len(c.IPAddresses) != 1 {
		t.Fatalf("listener names %v %v", c.DNSNames, c.IPAddresses)
	}
	// A client trusting only the system roots cannot reach it; one
	// trusting the CA root can.
	resp, err := http.Get(e.url + estPrefix + "cacerts")
	if err == nil {
		resp.Body.Close()
		t.Fatal("system roots trusted the CA's listener")
	}
}
