package pki

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/gatehouse/gatehouse/internal/keypolicy"
)

// ErrBadCSR is returned for a CSR that cannot be parsed, whose signature
// does not verify, or that asks for what a profile does not allow.
var ErrBadCSR = errors.New("bad certificate request")

// ParseCSR decodes a certificate signing request in PEM ("CERTIFICATE
// REQUEST", as `openssl req -new` writes) or DER, and checks its
// signature.
func ParseCSR(data []byte) (*x509.CertificateRequest, error) {
	der := data
	if block, _ := pem.Decode(data); block != nil {
		if block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST" {
			return nil, fmt.Errorf("%w: PEM block is %q, want \"CERTIFICATE REQUEST\"", ErrBadCSR, block.Type)
		}
		der = block.Bytes
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCSR, err)
	}
	// The key policy first: a huge RSA key costs more to check than to refuse.
	if err := keypolicy.Check(csr.PublicKey); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCSR, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: signature does not verify: %v", ErrBadCSR, err)
	}
	return csr, nil
}

// SignRequest says how to sign a CSR.
type SignRequest struct {
	// Profile is ProfileServer or ProfileClient. Required.
	Profile Profile
	// Validity as in IssueRequest: zero means the default.
	Validity time.Duration
	// DNS, IPs, URIs and Emails, when any is set, replace the CSR's
	// subject alternative names (as `step ca sign --san` does): the CA
	// decides the names, the CSR only proves the key. All empty: the
	// CSR's names are used.
	DNS    []string
	IPs    []net.IP
	URIs   []*url.URL
	Emails []string
}

var (
	oidBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidExtKeyUsage      = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidServerAuth       = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 1}
	oidClientAuth       = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 2}
)

// Sign issues a certificate for the key in csr (whose signature must have
// been checked, as ParseCSR does). The subject and the subject alternative
// names come from the CSR; everything else from the profile and the CA. A
// CSR that asks for CA:TRUE or for an extended key usage other than the
// profile's is refused, not silently trimmed, so nobody believes they got
// what they asked for.
func (ca *CA) Sign(csr *x509.CertificateRequest, req SignRequest) (*Issued, error) {
	cn := csr.Subject.CommonName
	if err := keypolicy.Check(csr.PublicKey); err != nil {
		return nil, fmt.Errorf("sign CSR %q: %w: %v", cn, ErrBadCSR, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("sign CSR %q: %w: signature does not verify: %v", cn, ErrBadCSR, err)
	}
	if err := checkCSRExtensions(csr, req.Profile); err != nil {
		return nil, fmt.Errorf("sign CSR %q: %w", cn, err)
	}
	tmpl, err := ca.leafTemplate(req.Profile, cn, req.Validity)
	if err != nil {
		return nil, fmt.Errorf("sign CSR %q: %w", cn, err)
	}
	tmpl.Subject = csr.Subject
	tmpl.Subject.ExtraNames = nil
	dns, ips, uris, emails := csr.DNSNames, csr.IPAddresses, csr.URIs, csr.EmailAddresses
	if len(req.DNS)+len(req.IPs)+len(req.URIs)+len(req.Emails) > 0 {
		dns, ips, uris, emails = req.DNS, req.IPs, req.URIs, req.Emails
	}
	if err := setSANs(tmpl, dns, ips, uris, emails); err != nil {
		return nil, fmt.Errorf("sign CSR %q: %w", cn, err)
	}
	if err := checkProfileNames(req.Profile, tmpl); err != nil {
		return nil, fmt.Errorf("sign CSR %q: %w", cn, err)
	}
	iss, err := ca.sign(tmpl, csr.PublicKey, req.Profile)
	if err != nil {
		return nil, fmt.Errorf("sign CSR %q: %w", cn, err)
	}
	return iss, nil
}

func checkCSRExtensions(csr *x509.CertificateRequest, p Profile) error {
	want := oidClientAuth
	if p == ProfileServer {
		want = oidServerAuth
	}
	for _, ext := range csr.Extensions {
		switch {
		case ext.Id.Equal(oidBasicConstraints):
			var bc struct {
				IsCA       bool `asn1:"optional"`
				MaxPathLen int  `asn1:"optional,default:-1"`
			}
			if _, err := asn1.Unmarshal(ext.Value, &bc); err != nil {
				return fmt.Errorf("%w: basicConstraints: %v", ErrBadCSR, err)
			}
			if bc.IsCA {
				return fmt.Errorf("%w: it asks for CA:TRUE; gatehouse signs only end-entity certificates", ErrBadCSR)
			}
		case ext.Id.Equal(oidExtKeyUsage):
			var ekus []asn1.ObjectIdentifier
			if _, err := asn1.Unmarshal(ext.Value, &ekus); err != nil {
				return fmt.Errorf("%w: extendedKeyUsage: %v", ErrBadCSR, err)
			}
			for _, e := range ekus {
				if !e.Equal(want) {
					return fmt.Errorf("%w: it asks for extended key usage %s, which the %s profile does not allow (remove extendedKeyUsage from the request, or sign it with the profile that has it)", ErrBadCSR, ekuName(e), p)
				}
			}
		}
	}
	return nil
}

// ekuNames are the extended key usages by the names openssl prints.
var ekuNames = []struct {
	oid  asn1.ObjectIdentifier
	name string
}{
	{oidServerAuth, "serverAuth"},
	{oidClientAuth, "clientAuth"},
	{asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 3}, "codeSigning"},
	{asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 4}, "emailProtection"},
	{asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 8}, "timeStamping"},
	{asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 9}, "OCSPSigning"},
	{asn1.ObjectIdentifier{2, 5, 29, 37, 0}, "anyExtendedKeyUsage"},
}

// ekuName names an extended key usage, with its OID: "codeSigning
// (1.3.6.1.5.5.7.3.3)"; an unknown one is its OID alone.
func ekuName(oid asn1.ObjectIdentifier) string {
	for _, e := range ekuNames {
		if e.oid.Equal(oid) {
			return e.name + " (" + oid.String() + ")"
		}
	}
	return oid.String()
}
