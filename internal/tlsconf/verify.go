package tlsconf

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/keypolicy"
	"github.com/gatehouse/gatehouse/internal/serial"
)

// DefaultMaxChainLength is how many certificates a client may present
// (leaf and intermediates, and the root if it sends it) when
// Verifier.MaxChainLength is zero: a leaf under two intermediates, plus
// the root, fits.
const DefaultMaxChainLength = 4

// ErrNoCertificate is returned when a certificate is required and none was sent.
var ErrNoCertificate = errors.New("no client certificate presented")

// Verifier verifies client certificate chains against the configured CAs
// only. Its checks run in a fixed order, so that a refusal names the root
// cause: first the cost bounds (chain length, key sizes: before any
// signature is checked), then trust (the chain to a configured CA), then
// validity (dates), then usage (CA flag, clientAuth EKU, keyUsage, key
// policy, SPIFFE ID form).
type Verifier struct {
	// Roots are the trusted CAs. If nil, every certificate is refused.
	Roots *x509.CertPool
	// Required makes a missing certificate an error.
	Required bool
	// Now returns the current time. If nil, time.Now is used.
	Now func() time.Time
	// MaxChainLength bounds the certificates a client may present. If
	// zero, DefaultMaxChainLength.
	MaxChainLength int
	// AllowMissingEKU accepts a leaf that has no extended key usage
	// extension at all (as `openssl x509 -req` without -extfile makes).
	// A leaf whose EKU extension lacks clientAuth is always refused.
	AllowMissingEKU bool

	// accepted remembers chains this verifier accepted (see Verify). The
	// fields above must not change once Verify has been called.
	accepted acceptedChains
}

// Verify checks the certificates a client presented (leaf first) and
// returns the verified identity. It returns (nil, nil) when no
// certificate was presented and none is required. A refusal is a
// *VerifyError (or ErrNoCertificate) whose Code says why.
func (v *Verifier) Verify(certs []*x509.Certificate) (*identity.Identity, error) {
	if len(certs) == 0 {
		if v.Required {
			return nil, ErrNoCertificate
		}
		return nil, nil
	}
	leaf := certs[0]
	if v.Roots == nil {
		return nil, refuse(leaf, CodeUntrustedIssuer, errors.New("no trusted client CAs configured"))
	}
	// Cost bounds first: nothing below is paid for a chain that fails them.
	maxLen := v.MaxChainLength
	if maxLen <= 0 {
		maxLen = DefaultMaxChainLength
	}
	if len(certs) > maxLen {
		return nil, refuse(leaf, CodeChainTooLong, fmt.Errorf("the client sent %d certificates, more than client_auth.max_chain_length (%d)", len(certs), maxLen))
	}
	for i, c := range certs {
		if keypolicy.TooCostly(c.PublicKey) {
			return nil, refuse(leaf, CodeWeakKey, fmt.Errorf("certificate %d of the chain (subject %q) has a %s key, larger than the key policy allows (%s)",
				i, c.Subject, keypolicy.Describe(c.PublicKey), keypolicy.Allowed))
		}
	}

	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	t := now()
	// The same certificates (the same bytes) accepted before by this
	// verifier: their chain's signatures, usage and policy checks give
	// the same answer; only validity depends on the time.
	key := identity.ChainKey(certs)
	if id := v.accepted.get(key, t); id != nil {
		return id, nil
	}
	opts := x509.VerifyOptions{
		Roots:       v.Roots,
		CurrentTime: t,
		// Usage is checked below, after trust and validity, so that the
		// reason given is the root cause.
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}
	if len(certs) > 1 {
		opts.Intermediates = x509.NewCertPool()
		for _, c := range certs[1:] {
			opts.Intermediates.AddCert(c)
		}
	}
	chains, err := leaf.Verify(opts)
	if err != nil {
		return nil, v.chainError(leaf, opts, err)
	}
	if err := v.checkUsage(leaf, chains); err != nil {
		return nil, err
	}
	id := identity.New(chains[0])
	v.accepted.put(key, id, chains, t)
	return id, nil
}

// chainError classifies a failed x509 verification: trust first. An
// expired certificate of an untrusted chain is reported as untrusted.
func (v *Verifier) chainError(leaf *x509.Certificate, opts x509.VerifyOptions, err error) error {
	var inv x509.CertificateInvalidError
	var ua x509.UnknownAuthorityError
	switch {
	case errors.As(err, &ua):
		return refuse(leaf, CodeUntrustedIssuer, err)
	case errors.As(err, &inv) && inv.Reason == x509.Expired:
		// Would the chain be trusted within the leaf's own validity? If
		// not, that is the root cause.
		at := opts
		at.CurrentTime = leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
		if _, err2 := leaf.Verify(at); err2 != nil && !errors.As(err2, &inv) {
			return refuse(leaf, CodeUntrustedIssuer, err2)
		}
		if opts.CurrentTime.Before(leaf.NotBefore) {
			return refuse(leaf, CodeNotYetValid, err)
		}
		return refuse(leaf, CodeExpired, err)
	case errors.As(err, &inv) && inv.Reason == x509.NotAuthorizedToSign:
		return refuse(leaf, CodeUntrustedIssuer, err)
	}
	return refuse(leaf, CodeInvalid, err)
}

// checkUsage checks what the certificate may be used for, once trust and
// validity hold.
func (v *Verifier) checkUsage(leaf *x509.Certificate, chains [][]*x509.Certificate) error {
	// A CA certificate is never a client identity.
	if leaf.IsCA {
		return refuse(leaf, CodeCAAsClient, errCAAsClient)
	}
	// crypto/x509 reads a missing EKU extension as "any usage"; a client
	// certificate must name clientAuth itself (DESIGN.md invariant 2),
	// unless the operator opted in for certificates with no EKU at all.
	noEKU := len(leaf.ExtKeyUsage) == 0 && len(leaf.UnknownExtKeyUsage) == 0
	if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) && !(noEKU && v.AllowMissingEKU) {
		return refuse(leaf, CodeMissingClientAuthEKU, errNoClientAuth)
	}
	// The CAs above must allow clientAuth too, where they restrict EKUs.
	if !slices.ContainsFunc(chains, chainAllowsClientAuth) {
		return refuse(leaf, CodeMissingClientAuthEKU, errors.New("a CA in the chain restricts its extended key usages and clientAuth is not among them"))
	}
	// RFC 5280 4.2.1.3: when keyUsage is present, a TLS client key must be
	// usable for signatures (openssl -purpose sslclient says the same).
	if leaf.KeyUsage != 0 && leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return refuse(leaf, CodeBadKeyUsage, errors.New("its keyUsage extension lacks digitalSignature, which a TLS client key needs"))
	}
	if err := keypolicy.Check(leaf.PublicKey); err != nil {
		return refuse(leaf, CodeWeakKey, err)
	}
	for _, u := range leaf.URIs {
		if strings.EqualFold(u.Scheme, "spiffe") && (u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.RawFragment != "") {
			return refuse(leaf, CodeBadSPIFFEID, fmt.Errorf("URI SAN %q is not a SPIFFE ID: a SPIFFE ID has no query or fragment", u))
		}
	}
	// net/url drops an empty fragment ("spiffe://td/x#"), so the parsed
	// URIs above cannot show it: read the URI SANs as the certificate
	// holds them.
	if raw := rawSPIFFEWithQueryOrFragment(leaf); raw != "" {
		return refuse(leaf, CodeBadSPIFFEID, fmt.Errorf("URI SAN %q is not a SPIFFE ID: a SPIFFE ID has no query or fragment", raw))
	}
	return nil
}

// rawSPIFFEWithQueryOrFragment returns the first URI SAN of c, as encoded,
// that has the spiffe scheme and holds "?" or "#"; "" when there is none or
// the extension cannot be read (crypto/x509 already parsed it).
func rawSPIFFEWithQueryOrFragment(c *x509.Certificate) string {
	for _, ext := range c.Extensions {
		if !ext.Id.Equal(oidSubjectAltName) {
			continue
		}
		in := cryptobyte.String(ext.Value)
		var names cryptobyte.String
		if !in.ReadASN1(&names, cbasn1.SEQUENCE) {
			return ""
		}
		for !names.Empty() {
			var name cryptobyte.String
			var tag cbasn1.Tag
			if !names.ReadAnyASN1(&name, &tag) {
				return ""
			}
			if tag != cbasn1.Tag(6).ContextSpecific() { // uniformResourceIdentifier [6] IA5String
				continue
			}
			v := string(name)
			if len(v) >= 7 && strings.EqualFold(v[:7], "spiffe:") && strings.ContainsAny(v, "?#") {
				return v
			}
		}
	}
	return ""
}

var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// chainAllowsClientAuth applies RFC 5280's EKU nesting as crypto/x509 does:
// every CA above the leaf that carries an EKU extension names clientAuth
// or anyExtendedKeyUsage.
func chainAllowsClientAuth(chain []*x509.Certificate) bool {
	for _, c := range chain[1:] {
		if len(c.ExtKeyUsage) == 0 && len(c.UnknownExtKeyUsage) == 0 {
			continue
		}
		if !slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageClientAuth) && !slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageAny) {
			return false
		}
	}
	return true
}

var (
	errCAAsClient   = errors.New("a CA certificate cannot be used as a client certificate")
	errNoClientAuth = errors.New("not valid for client authentication (the clientAuth extended key usage is missing)")
)

func refuse(leaf *x509.Certificate, code Code, err error) *VerifyError {
	return &VerifyError{Leaf: leaf, Code: code, Err: err}
}

// VerifyError is a client chain that failed verification; it names the
// certificate so that logs can say who was refused and why.
type VerifyError struct {
	Leaf *x509.Certificate
	// Code is the reason, for clients and metrics.
	Code Code
	Err  error
}

func (e *VerifyError) Error() string {
	msg := fmt.Sprintf("client certificate (subject %q, serial %s, issuer %q): %s",
		e.Leaf.Subject, serial.Format(e.Leaf.SerialNumber), e.Leaf.Issuer, Reason(e.Err))
	if hint := e.Code.hint(); hint != "" {
		msg += " (" + hint + ")"
	}
	return msg
}

func (e *VerifyError) Unwrap() error { return e.Err }

// ReasonCode returns the reason code of a refusal, for the HTTP layer to
// answer with (e.g. 400 {"reason":"missing_client_auth_eku"} in mode
// optional) and for metrics: no more detail than the code. Errors from the
// revocation checker are recognized by their ReasonCode method. An error
// of no known kind is CodeInvalid; nil is "".
func ReasonCode(err error) Code {
	var ve *VerifyError
	var rc interface{ ReasonCode() string }
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrNoCertificate):
		return CodeNoCertificate
	case errors.As(err, &ve):
		return ve.Code
	case errors.As(err, &rc):
		return Code(rc.ReasonCode())
	}
	return CodeInvalid
}

// Reason explains a verification error in words an operator can act on.
func Reason(err error) string {
	var inv x509.CertificateInvalidError
	var ua x509.UnknownAuthorityError
	switch {
	case errors.As(err, &inv):
		switch inv.Reason {
		case x509.Expired:
			return "expired or not yet valid: " + inv.Detail
		case x509.IncompatibleUsage:
			return "not valid for client authentication (the clientAuth extended key usage is missing)"
		case x509.NotAuthorizedToSign:
			return "issued by a certificate that is not a CA"
		}
		return inv.Error()
	case errors.As(err, &ua):
		return "not issued by a trusted client CA"
	}
	return err.Error()
}
