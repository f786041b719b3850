package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gatehouse/gatehouse/internal/identity"
)

// Groups are the key exchange groups in preference order: the post-quantum
// hybrid first, then classical ECDHE (DESIGN.md invariant 1).
var Groups = []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256, tls.CurveP384}

// Suites12 are the TLS 1.2 suites: ECDHE key exchange with an AEAD only.
// TLS 1.3 suites are all AEAD and not configurable in crypto/tls.
var Suites12 = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// Version parses "1.2" or "1.3".
func Version(s string) (uint16, error) {
	switch s {
	case "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("unsupported TLS version %q (use 1.2 or 1.3)", s)
}

// Params are the inputs of ServerConfig.
type Params struct {
	// MinVersion is tls.VersionTLS12 or tls.VersionTLS13. Zero means 1.2.
	MinVersion uint16
	// CipherSuites are TLS 1.2 suites; nil means Suites12.
	CipherSuites []uint16
	// Certificates are served by SNI; the first is the default.
	Certificates []tls.Certificate
	// ClientAuth is the client certificate request policy: NoClientCert or
	// RequestClientCert. The chain is never verified by crypto/tls itself
	// and a missing one is not refused by it either: Verifier does both in
	// VerifyConnection, so that every refusal is logged with its reason.
	ClientAuth tls.ClientAuthType
	// ClientCAs, if not nil, are advertised to clients as acceptable issuers.
	ClientCAs *x509.CertPool
}

// ServerConfig returns the hardened base configuration. Callers add
// VerifyConnection (per connection) and session ticket wrapping.
func ServerConfig(p Params) *tls.Config {
	minV := p.MinVersion
	if minV < tls.VersionTLS12 {
		minV = tls.VersionTLS12
	}
	suites := p.CipherSuites
	if suites == nil {
		suites = Suites12
	}
	return &tls.Config{
		MinVersion:       minV,
		MaxVersion:       tls.VersionTLS13,
		CipherSuites:     suites,
		CurvePreferences: Groups,
		Certificates:     p.Certificates,
		NextProtos:       []string{"h2", "http/1.1"},
		ClientAuth:       p.ClientAuth,
		ClientCAs:        p.ClientCAs,
		// crypto/tls never renegotiates as a server and has no compression;
		// nothing to turn off for those.
	}
}

// ClientAuthType maps a config mode to the crypto/tls request policy.
// "require" also only requests: Verifier.Required refuses a missing
// certificate in VerifyConnection, where the refusal can be audited
// (crypto/tls would refuse it before any callback runs).
func ClientAuthType(mode string) tls.ClientAuthType {
	switch mode {
	case "require", "optional":
		return tls.RequestClientCert
	}
	return tls.NoClientCert
}

// ErrNoCertificate is returned when a certificate is required and none was sent.
var ErrNoCertificate = errors.New("no client certificate presented")

var (
	errCAAsClient   = errors.New("a CA certificate cannot be used as a client certificate")
	errNoClientAuth = errors.New("not valid for client authentication (the clientAuth extended key usage is missing)")
)

// Verifier verifies client certificate chains against the configured CAs
// only, requiring the clientAuth EKU and checking validity at Now.
type Verifier struct {
	// Roots are the trusted CAs. If nil, every certificate is refused.
	Roots *x509.CertPool
	// Required makes a missing certificate an error.
	Required bool
	// Now returns the current time. If nil, time.Now is used.
	Now func() time.Time
}

// Verify checks the certificates a client presented (leaf first) and
// returns the verified identity. It returns (nil, nil) when no
// certificate was presented and none is required.
func (v *Verifier) Verify(certs []*x509.Certificate) (*identity.Identity, error) {
	if len(certs) == 0 {
		if v.Required {
			return nil, ErrNoCertificate
		}
		return nil, nil
	}
	if v.Roots == nil {
		return nil, errors.New("no trusted client CAs configured")
	}
	// crypto/x509 reads a missing EKU extension as "any usage"; a client
	// certificate must name clientAuth itself (DESIGN.md invariant 2), and
	// a CA certificate is never a client identity.
	leaf := certs[0]
	if leaf.IsCA {
		return nil, &VerifyError{Leaf: leaf, Err: errCAAsClient}
	}
	if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return nil, &VerifyError{Leaf: leaf, Err: errNoClientAuth}
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	opts := x509.VerifyOptions{
		Roots:       v.Roots,
		CurrentTime: now(),
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if len(certs) > 1 {
		opts.Intermediates = x509.NewCertPool()
		for _, c := range certs[1:] {
			opts.Intermediates.AddCert(c)
		}
	}
	chains, err := certs[0].Verify(opts)
	if err != nil {
		return nil, &VerifyError{Leaf: certs[0], Err: err}
	}
	return identity.New(chains[0]), nil
}

// VerifyError is a client chain that failed verification; it names the
// certificate so that logs can say who was refused and why.
type VerifyError struct {
	Leaf *x509.Certificate
	Err  error
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("client certificate (subject %q, serial %s, issuer %q): %s",
		e.Leaf.Subject, e.Leaf.SerialNumber.Text(16), e.Leaf.Issuer, Reason(e.Err))
}

func (e *VerifyError) Unwrap() error { return e.Err }

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
