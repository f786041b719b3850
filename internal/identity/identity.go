package identity

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"math/big"
	"net"
	"net/url"

	"github.com/gatehouse/gatehouse/internal/serial"
)

// Identity is the verified identity of a client, derived only from a chain
// that crypto/x509 has verified against the configured trust anchors.
// It is immutable after New returns and safe to share between goroutines.
type Identity struct {
	// Leaf is the client's certificate.
	Leaf *x509.Certificate
	// Chain is the verified chain, leaf first, trust anchor last.
	Chain []*x509.Certificate
	// FingerprintSHA256 is the SHA-256 of the leaf's DER encoding.
	FingerprintSHA256 [32]byte
	// SPKISHA256 is the SHA-256 of the leaf's DER SubjectPublicKeyInfo.
	SPKISHA256 [32]byte

	// Rendered once for logs: every audited request names them.
	subject, issuer, serial, fingerprint string
}

// New returns the identity for a verified chain (leaf first). It returns nil
// when chain is empty.
func New(chain []*x509.Certificate) *Identity {
	if len(chain) == 0 || chain[0] == nil {
		return nil
	}
	leaf := chain[0]
	id := &Identity{
		Leaf:              leaf,
		Chain:             chain,
		FingerprintSHA256: sha256.Sum256(leaf.Raw),
		SPKISHA256:        sha256.Sum256(leaf.RawSubjectPublicKeyInfo),
		subject:           leaf.Subject.String(),
		issuer:            leaf.Issuer.String(),
		serial:            SerialHex(leaf.SerialNumber),
	}
	id.fingerprint = hex.EncodeToString(id.FingerprintSHA256[:])
	return id
}

// Anchor returns the trust anchor (root) the chain was verified against.
func (id *Identity) Anchor() *x509.Certificate { return id.Chain[len(id.Chain)-1] }

// Issuer returns the certificate that signed the leaf (the leaf itself for a
// self-signed, directly trusted certificate).
func (id *Identity) Issuer() *x509.Certificate {
	if len(id.Chain) > 1 {
		return id.Chain[1]
	}
	return id.Leaf
}

// Fingerprint returns the leaf's SHA-256 fingerprint as lower-case hex.
func (id *Identity) Fingerprint() string { return id.fingerprint }

// Serial returns the leaf's serial number as openssl prints it: upper-case
// hex of even length ("053E84F8"), so logs can be grepped with the output
// of `openssl x509 -serial`.
func (id *Identity) Serial() string { return id.serial }

// SerialHex formats a certificate serial number as openssl does; it is
// serial.Format, kept here for callers that hold an Identity's package.
func SerialHex(n *big.Int) string { return serial.Format(n) }

// Subject returns the leaf's subject in RFC 2253 form, for logs only: policy
// never matches on this string (DESIGN.md invariant 4).
func (id *Identity) Subject() string { return id.subject }

// IssuerName returns the leaf's issuer DN in RFC 2253 form, for logs only.
func (id *Identity) IssuerName() string { return id.issuer }

// URIs returns the leaf's URI SANs.
func (id *Identity) URIs() []*url.URL { return id.Leaf.URIs }

// DNSNames returns the leaf's DNS SANs.
func (id *Identity) DNSNames() []string { return id.Leaf.DNSNames }

// Emails returns the leaf's email SANs.
func (id *Identity) Emails() []string { return id.Leaf.EmailAddresses }

// IPs returns the leaf's IP SANs.
func (id *Identity) IPs() []net.IP { return id.Leaf.IPAddresses }
