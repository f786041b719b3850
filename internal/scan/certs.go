package scan

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"golang.org/x/crypto/ocsp"
)

// maxFetch bounds what the scanner reads from an AIA, CRL or OCSP URL.
const maxFetch = 4 << 20

// certInfo describes one certificate.
func certInfo(c *x509.Certificate) CertInfo {
	ci := CertInfo{
		Subject: c.Subject.String(), Issuer: c.Issuer.String(),
		Serial:    c.SerialNumber.Text(16),
		NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(),
		SigAlg: c.SignatureAlgorithm.String(), IsCA: c.IsCA,
		SelfSigned:  bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil,
		OCSPServers: c.OCSPServer, CRLPoints: c.CRLDistributionPoints,
		SAN: []string{}, EKU: []string{},
	}
	sum := sha256.Sum256(c.Raw)
	ci.SHA256 = hex.EncodeToString(sum[:])
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		ci.KeyType, ci.KeyBits = "RSA", k.N.BitLen()
	case *ecdsa.PublicKey:
		ci.KeyType, ci.KeyBits = "ECDSA", k.Curve.Params().BitSize
	case ed25519.PublicKey:
		ci.KeyType, ci.KeyBits = "Ed25519", 256
	default:
		ci.KeyType = c.PublicKeyAlgorithm.String()
	}
	switch c.SignatureAlgorithm {
	case x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1, x509.MD5WithRSA, x509.MD2WithRSA:
		ci.WeakSig = true
	}
	ci.SAN = append(ci.SAN, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		ci.SAN = append(ci.SAN, ip.String())
	}
	for _, u := range c.URIs {
		ci.SAN = append(ci.SAN, u.String())
	}
	ci.SAN = append(ci.SAN, c.EmailAddresses...)
	for _, e := range c.ExtKeyUsage {
		ci.EKU = append(ci.EKU, ekuName(e))
	}
	return ci
}

func ekuName(e x509.ExtKeyUsage) string {
	switch e {
	case x509.ExtKeyUsageServerAuth:
		return "serverAuth"
	case x509.ExtKeyUsageClientAuth:
		return "clientAuth"
	case x509.ExtKeyUsageAny:
		return "any"
	case x509.ExtKeyUsageCodeSigning:
		return "codeSigning"
	case x509.ExtKeyUsageEmailProtection:
		return "emailProtection"
	case x509.ExtKeyUsageOCSPSigning:
		return "OCSPSigning"
	}
	return fmt.Sprintf("eku(%d)", e)
}

// parseChain parses the served DER certificates.
func parseChain(ders [][]byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for i, d := range ders {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			return nil, fmt.Errorf("parse served certificate %d: %w", i, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// analyzeChain fills r.Certificates from the served chain and staple.
func (s *scanner) analyzeChain(ctx context.Context, r *Report, chain []*x509.Certificate, staple []byte) {
	cr := &r.Certificates
	cr.Chain = []CertInfo{}
	for _, c := range chain {
		cr.Chain = append(cr.Chain, certInfo(c))
	}
	if len(chain) == 0 {
		cr.TrustError = "no certificate was served"
		return
	}
	leaf := chain[0]
	now := s.now()
	cr.Expired = now.After(leaf.NotAfter)
	cr.NotYetValid = now.Before(leaf.NotBefore)
	cr.DaysLeft = int(leaf.NotAfter.Sub(now).Hours() / 24)
	name := s.opts.ServerName
	if name == "" {
		name = s.host
	}
	cr.NameMatch = leaf.VerifyHostname(name) == nil
	cr.InOrder = true
	for i := 0; i+1 < len(chain); i++ {
		if !bytes.Equal(chain[i].RawIssuer, chain[i+1].RawSubject) || chain[i].CheckSignatureFrom(chain[i+1]) != nil {
			cr.InOrder = false
		}
	}
	for _, c := range chain[1:] {
		if cr.Chain[0].SelfSigned {
			break
		}
		if bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil {
			cr.RootSent = true
		}
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	// Verify at a time the leaf is valid, so that the chain itself is
	// judged too; expiry is reported on its own.
	vtime := now
	switch {
	case cr.Expired:
		vtime = leaf.NotAfter.Add(-time.Minute)
	case cr.NotYetValid:
		vtime = leaf.NotBefore.Add(time.Minute)
	}
	vo := x509.VerifyOptions{Roots: s.opts.Roots, Intermediates: inter, CurrentTime: vtime,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	chains, err := leaf.Verify(vo)
	var unknown x509.UnknownAuthorityError
	if err != nil && errors.As(err, &unknown) && s.opts.Fetch {
		// Complete the chain from the AIA caIssuers URLs, as browsers do;
		// if that works, the served chain is incomplete.
		if extra := s.fetchIssuers(ctx, r, chain[len(chain)-1]); len(extra) > 0 {
			for _, c := range extra {
				inter.AddCert(c)
			}
			if chains, err = leaf.Verify(vo); err == nil {
				cr.Incomplete = true
			}
		}
	}
	if err != nil && errors.As(err, &unknown) && s.opts.Intermediates != nil {
		pool := s.opts.Intermediates.Clone() // the caller's pool stays as given
		for _, c := range chain[1:] {
			pool.AddCert(c)
		}
		vo.Intermediates = pool
		if chains, err = leaf.Verify(vo); err == nil {
			cr.Incomplete = true
		}
	}
	var problems []string
	if cr.Expired {
		problems = append(problems, "the certificate expired on "+leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if cr.NotYetValid {
		problems = append(problems, "the certificate is not valid before "+leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	if err != nil {
		problems = append(problems, err.Error())
	} else {
		for _, c := range chains[0] {
			cr.VerifiedPath = append(cr.VerifiedPath, c.Subject.String())
		}
		for _, c := range chains[0][1 : len(chains[0])-1] { // intermediates (not the root)
			if certInfo(c).WeakSig {
				problems = append(problems, "an intermediate is signed with "+c.SignatureAlgorithm.String())
			}
		}
	}
	if cr.Chain[0].WeakSig {
		problems = append(problems, "the certificate is signed with "+leaf.SignatureAlgorithm.String())
	}
	cr.Trusted = len(problems) == 0
	cr.TrustError = strings.Join(problems, "; ")
	var issuer *x509.Certificate
	if chains != nil && len(chains[0]) > 1 {
		issuer = chains[0][1]
	} else if len(chain) > 1 {
		issuer = chain[1]
	}
	if len(staple) > 0 {
		cr.OCSPStapled = true
		r.Behaviour.OCSPStapling = true
		cr.OCSPStaple = ocspVerdict(staple, leaf, issuer, now)
	}
	if s.opts.Fetch && issuer != nil {
		if len(leaf.CRLDistributionPoints) > 0 {
			cr.CRL = s.checkCRL(ctx, r, leaf, issuer)
		}
		if len(leaf.OCSPServer) > 0 {
			cr.OCSP = s.checkOCSP(ctx, r, leaf, issuer)
		}
	}
}

// ocspVerdict checks an OCSP response for leaf: signed by the issuer (or
// its delegate), and current.
func ocspVerdict(der []byte, leaf, issuer *x509.Certificate, now time.Time) string {
	if issuer == nil {
		return "invalid: issuer unknown"
	}
	resp, err := ocsp.ParseResponseForCert(der, leaf, issuer)
	if err != nil {
		return "invalid: " + err.Error()
	}
	if now.Before(resp.ThisUpdate.Add(-5*time.Minute)) || (!resp.NextUpdate.IsZero() && now.After(resp.NextUpdate)) {
		return "stale"
	}
	switch resp.Status {
	case ocsp.Good:
		return "good"
	case ocsp.Revoked:
		return "revoked"
	}
	return "unknown"
}

// get fetches url with the scan's bounds.
func (s *scanner) get(ctx context.Context, r *Report, url string, req *http.Request) ([]byte, error) {
	r.Certificates.Fetched = append(r.Certificates.Fetched, url)
	if req == nil {
		var err error
		if req, err = http.NewRequestWithContext(ctx, http.MethodGet, url, nil); err != nil {
			return nil, fmt.Errorf("fetch %s: %w", url, err)
		}
	}
	resp, err := s.httpClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch %s: %s", url, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxFetch+1))
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", url, err)
	}
	if len(b) > maxFetch {
		return nil, fmt.Errorf("fetch %s: more than %d bytes", url, maxFetch)
	}
	return b, nil
}

// fetchIssuers follows caIssuers URLs up from c (a few steps at most).
func (s *scanner) fetchIssuers(ctx context.Context, r *Report, c *x509.Certificate) []*x509.Certificate {
	var out []*x509.Certificate
	for depth := 0; depth < 3 && len(c.IssuingCertificateURL) > 0; depth++ {
		b, err := s.get(ctx, r, c.IssuingCertificateURL[0], nil)
		if err != nil {
			r.Errors = append(r.Errors, err.Error())
			return out
		}
		next, err := x509.ParseCertificate(b)
		if err != nil {
			r.Errors = append(r.Errors, fmt.Sprintf("parse issuer from %s: %v", c.IssuingCertificateURL[0], err))
			return out
		}
		out = append(out, next)
		if bytes.Equal(next.RawIssuer, next.RawSubject) {
			break
		}
		c = next
	}
	return out
}

// checkCRL fetches the leaf's first CRL and looks for its serial.
func (s *scanner) checkCRL(ctx context.Context, r *Report, leaf, issuer *x509.Certificate) string {
	url := leaf.CRLDistributionPoints[0]
	b, err := s.get(ctx, r, url, nil)
	if err != nil {
		return "unavailable: " + err.Error()
	}
	crl, err := x509.ParseRevocationList(b)
	if err != nil {
		return "invalid: " + err.Error()
	}
	if err := crl.CheckSignatureFrom(issuer); err != nil {
		return "invalid: signature: " + err.Error()
	}
	if !crl.NextUpdate.IsZero() && s.now().After(crl.NextUpdate) {
		return "stale"
	}
	for _, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
			return "revoked"
		}
	}
	return "good"
}

// checkOCSP asks the leaf's first OCSP responder.
func (s *scanner) checkOCSP(ctx context.Context, r *Report, leaf, issuer *x509.Certificate) string {
	url := leaf.OCSPServer[0]
	der, err := ocsp.CreateRequest(leaf, issuer, &ocsp.RequestOptions{})
	if err != nil {
		return "unavailable: " + err.Error()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(der))
	if err != nil {
		return "unavailable: " + err.Error()
	}
	req.Header.Set("Content-Type", "application/ocsp-request")
	b, err := s.get(ctx, r, url, req)
	if err != nil {
		return "unavailable: " + err.Error()
	}
	return ocspVerdict(b, leaf, issuer, s.now())
}
