package pki

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"net/url"
	"time"
)

// KeyRequest asks for a certificate for a key the requester holds, with
// names the CA decided (from an enrollment token or from the certificate
// being renewed) rather than names a CSR asked for.
type KeyRequest struct {
	// PublicKey is the key to certify, usually from a CSR whose signature
	// proved possession. Required.
	PublicKey crypto.PublicKey
	// Profile is ProfileServer or ProfileClient. Required.
	Profile Profile
	// Subject is the certificate's subject; its CommonName is required.
	// ExtraNames are dropped.
	Subject pkix.Name
	// DNS, IPs, URIs and Emails are the subject alternative names.
	DNS    []string
	IPs    []net.IP
	URIs   []*url.URL
	Emails []string
	// Validity as in IssueRequest: zero means the profile's default.
	Validity time.Duration
	// Lifetime, if set, is the exact span from NotBefore to NotAfter, and
	// Validity is ignored: renewal keeps the lifetime of the certificate it
	// replaces. NotBefore lies a minute before now, as for every leaf, or
	// half the lifetime (whole seconds) before now for a lifetime of two
	// minutes or less; the part after now is checked against the profile's
	// maximum as Validity is. If zero, Validity applies.
	Lifetime time.Duration
}

// leafBackdate is how far before now a leaf's NotBefore lies, tolerating
// a little clock skew between the CA and the certificate's users.
const leafBackdate = time.Minute

// lifetimeSplit divides an exact lifetime into the backdate before now and
// the validity after it: the usual minute, but never more than half of a
// short lifetime, so that a certificate of a minute or less still lasts
// past now. Whole seconds, since X.509 times have no finer resolution.
func lifetimeSplit(lifetime time.Duration) (backdate, validity time.Duration) {
	backdate = min(leafBackdate, (lifetime / 2).Truncate(time.Second))
	return backdate, lifetime - backdate
}

// SignKey issues a certificate for req.PublicKey with exactly the names in
// req. It goes through the same key policy, template, name and chain
// checks as Issue and Sign, and records the certificate in the inventory.
func (ca *CA) SignKey(req KeyRequest) (*Issued, error) {
	cn := req.Subject.CommonName
	if req.PublicKey == nil {
		return nil, fmt.Errorf("sign key for %q: no public key", cn)
	}
	validity := req.Validity
	if req.Lifetime < 0 {
		return nil, fmt.Errorf("sign key for %q: lifetime %s is negative", cn, req.Lifetime)
	}
	if req.Lifetime > 0 {
		_, validity = lifetimeSplit(req.Lifetime)
	}
	tmpl, err := ca.leafTemplate(req.Profile, cn, validity)
	if err != nil {
		return nil, fmt.Errorf("sign key for %q: %w", cn, err)
	}
	if req.Lifetime > 0 {
		tmpl.NotBefore = tmpl.NotAfter.Add(-req.Lifetime)
	}
	tmpl.Subject = req.Subject
	tmpl.Subject.ExtraNames = nil
	if err := setSANs(tmpl, req.DNS, req.IPs, req.URIs, req.Emails); err != nil {
		return nil, fmt.Errorf("sign key for %q: %w", cn, err)
	}
	if err := checkProfileNames(req.Profile, tmpl); err != nil {
		return nil, fmt.Errorf("sign key for %q: %w", cn, err)
	}
	iss, err := ca.sign(tmpl, req.PublicKey, req.Profile)
	if err != nil {
		return nil, fmt.Errorf("sign key for %q: %w", cn, err)
	}
	return iss, nil
}

// CheckCSR checks what a CSR asks for beyond its names against profile p:
// CA:TRUE and foreign extended key usages are refused, as Sign does.
func CheckCSR(csr *x509.CertificateRequest, p Profile) error {
	if err := csr.CheckSignature(); err != nil {
		return fmt.Errorf("%w: signature does not verify: %v", ErrBadCSR, err)
	}
	return checkCSRExtensions(csr, p)
}

// Chain is the issuing chain served with every leaf: the intermediates,
// never the root.
func (ca *CA) Chain() []*x509.Certificate { return append([]*x509.Certificate(nil), ca.chain...) }

// TokenSigner is the key that signs enrollment tokens: the issuing CA's,
// so that `ca serve` verifies tokens with the certificate it already
// trusts, and no second secret has to be kept. It fails with ErrNoKey for
// a CA opened without its key.
func (ca *CA) TokenSigner() (crypto.Signer, error) {
	s, err := ca.signer()
	if err != nil {
		return nil, fmt.Errorf("token signer: %w", err)
	}
	return s, nil
}
