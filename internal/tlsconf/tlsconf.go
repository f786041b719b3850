package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
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
