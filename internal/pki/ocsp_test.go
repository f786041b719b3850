package pki

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// startServer runs ca serve's HTTP server on 127.0.0.1:0 until the test
// ends and returns its base URL.
func startServer(t *testing.T, ca *CA, poll time.Duration) (*Server, string) {
	t.Helper()
	srv, err := NewServer(ca, ServerOptions{Poll: poll, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
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
			t.Errorf("Serve: %v", err)
		}
	})
	return srv, "http://" + ln.Addr().String()
}

func ocspQuery(t *testing.T, base string, leaf, issuer *x509.Certificate, get bool) *ocsp.Response {
	t.Helper()
	req, err := ocsp.CreateRequest(leaf, issuer, &ocsp.RequestOptions{Hash: crypto.SHA256})
	if err != nil {
		t.Fatal(err)
	}
	var resp *http.Response
	if get {
		resp, err = http.Get(base + "/ocsp/" + base64.StdEncoding.EncodeToString(req))
	} else {
		resp, err = http.Post(base+"/ocsp", "application/ocsp-request", bytes.NewReader(req))
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/ocsp-response" {
		t.Fatalf("content type %q", ct)
	}
	r, err := ocsp.ParseResponseForCert(body, leaf, issuer)
	if err != nil {
		t.Fatalf("parse OCSP response: %v", err)
	}
	return r
}

func TestOCSPWithOpenSSL(t *testing.T) {
	for _, kt := range []KeyType{KeyECDSAP256, KeyEd25519} {
		t.Run(string(kt), func(t *testing.T) {
			ca := newCA(t, InitOptions{KeyType: kt, Intermediate: true})
			srv, base := startServer(t, ca, time.Hour)
			iss := issueClient(t, ca, "partner-a")
			tmp := t.TempDir()
			leaf := writeFile(t, filepath.Join(tmp, "leaf.pem"), iss.ChainPEM())
			query := func() string {
				out := mustOpenSSL(t, "ocsp", "-issuer", filepath.Join(ca.Dir(), IntermediateCertFile),
					"-CAfile", filepath.Join(ca.Dir(), RootCertFile), "-cert", leaf, "-url", base+"/ocsp")
				if !strings.Contains(out, "Response verify OK") || strings.Contains(out, "nonce") {
					t.Errorf("openssl ocsp:\n%s", out)
				}
				return out
			}
			if out := query(); !strings.Contains(out, leaf+": good") {
				t.Errorf("want good:\n%s", out)
			}
			// Another handle revokes, as `ca revoke` in another process.
			other, err := Open(ca.Dir(), testPass)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := other.Revoke(context.Background(), iss.Cert().SerialNumber, ReasonKeyCompromise); err != nil {
				t.Fatal(err)
			}
			other.Close()
			if err := srv.Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
			out := query()
			if !strings.Contains(out, leaf+": revoked") || !strings.Contains(out, "Reason: keyCompromise") || !strings.Contains(out, "Revocation Time:") {
				t.Errorf("want revoked:\n%s", out)
			}
			// The CRL endpoint serves the new CRL, in DER and in PEM.
			for _, format := range []string{"", "?format=pem"} {
				resp, err := http.Get(base + "/crl" + format)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				crlFile := writeFile(t, filepath.Join(tmp, "crl"+format), body)
				inform := map[string]string{"": "DER", "?format=pem": "PEM"}[format]
				text := mustOpenSSL(t, "crl", "-inform", inform, "-in", crlFile, "-text", "-noout")
				if !strings.Contains(text, strings.ToUpper(iss.Cert().SerialNumber.Text(16))) {
					t.Errorf("served CRL (%s) lacks the revoked serial:\n%s", inform, text)
				}
			}
		})
	}
}

func TestOCSPAnswers(t *testing.T) {
	clock := newClock()
	ca := newCA(t, InitOptions{Now: clock.Now})
	srv, base := startServer(t, ca, time.Hour)
	iss := issueClient(t, ca, "c")
	for _, get := range []bool{false, true} {
		r := ocspQuery(t, base, iss.Cert(), ca.Issuer(), get)
		if r.Status != ocsp.Good || !r.ThisUpdate.Equal(clock.Now()) || r.NextUpdate.Sub(r.ThisUpdate) != DefaultOCSPValidity {
			t.Errorf("get=%v: status %d this %v next %v", get, r.Status, r.ThisUpdate, r.NextUpdate)
		}
	}
	// Unknown: a certificate with a serial this CA never recorded.
	stranger := *iss.Cert()
	stranger.SerialNumber = new(big.Int).Add(stranger.SerialNumber, big.NewInt(1))
	if r := ocspQuery(t, base, &stranger, ca.Issuer(), false); r.Status != ocsp.Unknown {
		t.Errorf("stranger: status %d", r.Status)
	}
	// Cached until the status changes: the same bytes, even with the clock
	// moved a little; fresh bytes after a revocation.
	req, _ := ocsp.CreateRequest(iss.Cert(), ca.Issuer(), nil)
	a, errA := srv.ocsp.Respond(context.Background(), req)
	clock.Add(time.Minute)
	b, errB := srv.ocsp.Respond(context.Background(), req)
	if errA != nil || errB != nil || !bytes.Equal(a, b) {
		t.Errorf("not cached: %v %v", errA, errB)
	}
	if _, err := ca.Revoke(context.Background(), iss.Cert().SerialNumber, ReasonSuperseded); err != nil {
		t.Fatal(err)
	}
	srv.Refresh(context.Background())
	r := ocspQuery(t, base, iss.Cert(), ca.Issuer(), true)
	if r.Status != ocsp.Revoked || r.RevocationReason != int(ReasonSuperseded) || !r.RevokedAt.Equal(clock.Now()) {
		t.Errorf("after revoke: %+v", r)
	}
	// And cached answers expire after half their validity.
	c, _ := srv.ocsp.Respond(context.Background(), req)
	clock.Add(DefaultOCSPValidity/2 + time.Second)
	if d, _ := srv.ocsp.Respond(context.Background(), req); bytes.Equal(c, d) {
		t.Error("cached answer served past half its validity")
	}
}

func TestOCSPRefusals(t *testing.T) {
	ca := newCA(t, InitOptions{})
	other := newCA(t, InitOptions{})
	srv, base := startServer(t, ca, time.Hour)
	foreign := issueClient(t, other, "x")
	req, _ := ocsp.CreateRequest(foreign.Cert(), other.Issuer(), nil)
	if resp, err := srv.ocsp.Respond(context.Background(), req); !errors.Is(err, ErrOCSPUnauthorized) || !bytes.Equal(resp, ocsp.UnauthorizedErrorResponse) {
		t.Errorf("foreign issuer: %v", err)
	}
	for _, body := range [][]byte{nil, []byte("garbage"), append(req, 0)} {
		if resp, err := srv.ocsp.Respond(context.Background(), body); !errors.Is(err, ErrOCSPMalformed) || !bytes.Equal(resp, ocsp.MalformedRequestErrorResponse) {
			t.Errorf("malformed %q: %v", body, err)
		}
	}
	// Bad base64 in a GET is an OCSP "malformed" answer; unknown paths 404.
	for path, want := range map[string]int{"/ocsp/%25%25": http.StatusOK, "/ocsp/!!": http.StatusOK, "/nope": http.StatusNotFound} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || (want == http.StatusOK && !bytes.Equal(body, ocsp.MalformedRequestErrorResponse)) {
			t.Errorf("GET %s: %d %x, want %d", path, resp.StatusCode, body, want)
		}
	}
	resp, err := http.Post(base+"/ocsp", "application/ocsp-request", bytes.NewReader(make([]byte, maxOCSPRequest+1)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("large POST: %d", resp.StatusCode)
	}
}

// TestServePicksUpRevocationFromAnotherHandle runs the poll loop for real:
// a revocation made through another CA handle (another process, in
// production) reaches OCSP without calling Refresh.
func TestServePicksUpRevocationFromAnotherHandle(t *testing.T) {
	ca := newCA(t, InitOptions{})
	_, base := startServer(t, ca, 20*time.Millisecond)
	iss := issueClient(t, ca, "c")
	if r := ocspQuery(t, base, iss.Cert(), ca.Issuer(), false); r.Status != ocsp.Good {
		t.Fatalf("status %d", r.Status)
	}
	other, err := Open(ca.Dir(), testPass)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Revoke(context.Background(), iss.Cert().SerialNumber, ReasonCessationOfOperation); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for ocspQuery(t, base, iss.Cert(), ca.Issuer(), false).Status != ocsp.Revoked {
		if time.Now().After(deadline) {
			t.Fatal("revocation not picked up within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// withNonce adds an RFC 8954 nonce extension to an OCSP request.
func withNonce(t testing.TB, req []byte) []byte {
	t.Helper()
	var r struct {
		TBS struct {
			RequestList []asn1.RawValue
			Extensions  []pkix.Extension `asn1:"explicit,tag:2,optional"`
		}
	}
	if _, err := asn1.Unmarshal(req, &r); err != nil {
		t.Fatal(err)
	}
	nonce, _ := asn1.Marshal([]byte("0123456789abcdef"))
	r.TBS.Extensions = []pkix.Extension{{Id: oidOCSPNonce, Value: nonce}}
	out, err := asn1.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestOCSPNonce(t *testing.T) {
	ca := newCA(t, InitOptions{})
	r, err := NewResponder(ca)
	if err != nil {
		t.Fatal(err)
	}
	iss := issueClient(t, ca, "c")
	plain, _ := ocsp.CreateRequest(iss.Cert(), ca.Issuer(), nil)
	req := withNonce(t, plain)
	a, err := r.Respond(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := r.Respond(context.Background(), req)
	if bytes.Equal(a, b) {
		t.Error("answers to nonce requests are cached")
	}
	resp, err := ocsp.ParseResponseForCert(a, iss.Cert(), ca.Issuer())
	if err != nil || resp.Status != ocsp.Good {
		t.Fatalf("%+v %v", resp, err)
	}
	// The nonce is echoed in responseExtensions, where RFC 6960 puts it.
	var outer ocspResponse
	var basic struct {
		TBS ocspResponseData
		Alg pkix.AlgorithmIdentifier
		Sig asn1.BitString
	}
	if _, err := asn1.Unmarshal(a, &outer); err != nil {
		t.Fatal(err)
	}
	if _, err := asn1.Unmarshal(outer.Response.Response, &basic); err != nil {
		t.Fatal(err)
	}
	want, _ := asn1.Marshal([]byte("0123456789abcdef"))
	if len(basic.TBS.Extensions) != 1 || !basic.TBS.Extensions[0].Id.Equal(oidOCSPNonce) || !bytes.Equal(basic.TBS.Extensions[0].Value, want) {
		t.Errorf("response extensions %+v", basic.TBS.Extensions)
	}
	// Nonces longer than 32 octets are refused (RFC 8954).
	var long struct {
		TBS struct {
			RequestList []asn1.RawValue
			Extensions  []pkix.Extension `asn1:"explicit,tag:2,optional"`
		}
	}
	asn1.Unmarshal(req, &long)
	long.TBS.Extensions[0].Value, _ = asn1.Marshal(make([]byte, 33))
	lreq, _ := asn1.Marshal(long)
	if _, err := r.Respond(context.Background(), lreq); !errors.Is(err, ErrOCSPMalformed) {
		t.Errorf("long nonce: %v", err)
	}
}
