package enroll

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/certsource"
	"github.com/gatehouse/gatehouse/internal/tlsconf"
)

// Client talks to a CA's enrollment API.
type Client struct {
	// URL is the API's https base URL, like https://ca.example.com:8443.
	URL string
	// Roots verify the API's certificate (the CA's ca.pem); never the
	// system roots.
	Roots *x509.CertPool
	// Timeout bounds one request. If zero, 30s.
	Timeout time.Duration
}

// NewClient checks caURL and returns a client trusting roots only.
func NewClient(caURL string, roots *x509.CertPool) (*Client, error) {
	u, err := url.Parse(caURL)
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, fmt.Errorf("CA URL %q: want the enrollment API's https base URL, like https://ca.example.com:8443", caURL)
	}
	if roots == nil {
		return nil, errors.New("enrollment client: no trust anchor for the CA (--root ca.pem)")
	}
	return &Client{URL: strings.TrimRight(caURL, "/"), Roots: roots}, nil
}

// LoadRoots reads the CA certificates in a PEM file.
func LoadRoots(path string) (*x509.CertPool, error) {
	pool, _, err := certsource.LoadCAs([]string{path})
	if err != nil {
		return nil, fmt.Errorf("load CA root %s: %w", path, err)
	}
	return pool, nil
}

// Request spends token on a certificate for key, with the names the token
// grants. It returns the chain (leaf first).
func (c *Client) Request(ctx context.Context, token string, key crypto.Signer) ([]*x509.Certificate, error) {
	claims, err := ReadClaims(token)
	if err != nil {
		return nil, fmt.Errorf("request certificate: %w", err)
	}
	kr, err := claims.keyRequest()
	if err != nil {
		return nil, fmt.Errorf("request certificate: %w", err)
	}
	csr, err := makeCSR(key, kr.Subject, kr.DNS, kr.IPs, kr.URIs, kr.Emails)
	if err != nil {
		return nil, fmt.Errorf("request certificate: %w", err)
	}
	chain, err := c.post(ctx, PathRequest, csr, nil, "Bearer "+strings.TrimSpace(token), key)
	if err != nil {
		return nil, fmt.Errorf("request certificate: %w", err)
	}
	return chain, nil
}

// Renew authenticates with current (over mutual TLS) and asks for a new
// certificate with the same names for key, which may be current's key or
// a new one.
func (c *Client) Renew(ctx context.Context, current tls.Certificate, key crypto.Signer) ([]*x509.Certificate, error) {
	leaf := current.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(current.Certificate[0]); err != nil {
			return nil, fmt.Errorf("renew certificate: %w", err)
		}
	}
	csr, err := makeCSR(key, leaf.Subject, leaf.DNSNames, leaf.IPAddresses, leaf.URIs, leaf.EmailAddresses)
	if err != nil {
		return nil, fmt.Errorf("renew certificate: %w", err)
	}
	chain, err := c.post(ctx, PathRenew, csr, &current, "", key)
	if err != nil {
		return nil, fmt.Errorf("renew certificate %s: %w", leaf.Subject.CommonName, err)
	}
	return chain, nil
}

func makeCSR(key crypto.Signer, subject pkix.Name, dns []string, ips []net.IP, uris []*url.URL, emails []string) ([]byte, error) {
	subject.ExtraNames = nil
	return x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: subject, DNSNames: dns, IPAddresses: ips, URIs: uris, EmailAddresses: emails,
	}, key)
}

// post sends a DER CSR and returns the verified chain of the answer.
func (c *Client) post(ctx context.Context, path string, csr []byte, cert *tls.Certificate, auth string, key crypto.Signer) ([]*x509.Certificate, error) {
	cfg := &tls.Config{
		MinVersion:       tls.VersionTLS12,
		CipherSuites:     tlsconf.Suites12,
		CurvePreferences: tlsconf.Groups,
		RootCAs:          c.Roots,
	}
	if cert != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true, Proxy: nil, DisableKeepAlives: true,
		TLSHandshakeTimeout: 10 * time.Second}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: timeout}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL+path, bytes.NewReader(csr))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/pkcs10")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := hc.Do(req)
	var cve *tls.CertificateVerificationError
	if errors.As(err, &cve) {
		// Not an outage: the CA is not the one --root names. No retry helps.
		return nil, fmt.Errorf("the CA's HTTPS certificate does not verify against the root given (--root): %w", cve)
	}
	if err != nil {
		return nil, &UnavailableError{Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, &UnavailableError{Err: err}
	}
	if resp.StatusCode != http.StatusOK {
		msg := strings.TrimSpace(string(body))
		err := fmt.Errorf("the CA refused: %s (HTTP %d)", msg, resp.StatusCode)
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			return nil, &UnavailableError{Err: err}
		}
		return nil, err
	}
	chain, err := certsource.ParseCertsPEM(body)
	if err != nil || len(chain) == 0 {
		return nil, fmt.Errorf("the CA's answer holds no certificate: %v", err)
	}
	if !samePublicKey(chain[0].PublicKey, key.Public()) {
		return nil, errors.New("the CA's certificate is not for our key")
	}
	inters := x509.NewCertPool()
	for _, ic := range chain[1:] {
		inters.AddCert(ic)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: c.Roots, Intermediates: inters,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("the CA's certificate does not verify against the root: %w", err)
	}
	return chain, nil
}

// UnavailableError is a failure worth retrying: the CA could not be
// reached or answered with a server error.
type UnavailableError struct{ Err error }

func (e *UnavailableError) Error() string { return "CA unavailable: " + e.Err.Error() }
func (e *UnavailableError) Unwrap() error { return e.Err }

func samePublicKey(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}
