package revocation

import (
	"errors"
	"fmt"
	"time"
)

// Errors returned by Check, tested with errors.Is.
var (
	ErrRevoked     = errors.New("certificate revoked")
	ErrUnavailable = errors.New("revocation status unavailable")
)

// RevokedError is a certificate found revoked. It wraps ErrRevoked.
type RevokedError struct {
	// Subject, Issuer and Serial (lower-case hex) name the certificate.
	Subject, Issuer, Serial string
	// RevokedAt is the revocation time the CRL or responder gave.
	RevokedAt time.Time
	// Reason is the RFC 5280 CRLReason code (0, unspecified, if none).
	Reason int
	// Source is "CRL <source>" or "OCSP <responder URL>".
	Source string
}

func (e *RevokedError) Error() string {
	return fmt.Sprintf("check revocation: certificate serial %s (subject %q, issuer %q) revoked at %s, reason %s, per %s",
		e.Serial, e.Subject, e.Issuer, e.RevokedAt.UTC().Format(time.RFC3339), ReasonString(e.Reason), e.Source)
}

func (e *RevokedError) Unwrap() error { return ErrRevoked }

// UnavailableError is a certificate whose status could not be
// established. It wraps ErrUnavailable.
type UnavailableError struct {
	// Subject, Issuer and Serial (lower-case hex) name the certificate.
	Subject, Issuer, Serial string
	// Reason says why no status could be established.
	Reason string
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("check revocation: certificate serial %s (subject %q, issuer %q): status unavailable: %s",
		e.Serial, e.Subject, e.Issuer, e.Reason)
}

func (e *UnavailableError) Unwrap() error { return ErrUnavailable }

var reasonNames = [...]string{
	0: "unspecified", 1: "keyCompromise", 2: "cACompromise", 3: "affiliationChanged",
	4: "superseded", 5: "cessationOfOperation", 6: "certificateHold", 8: "removeFromCRL",
	9: "privilegeWithdrawn", 10: "aACompromise",
}

// ReasonString is the RFC 5280 name of a CRLReason code.
func ReasonString(code int) string {
	if code >= 0 && code < len(reasonNames) && reasonNames[code] != "" {
		return reasonNames[code]
	}
	return fmt.Sprintf("reason(%d)", code)
}

// ReasonCode is the reason code the gateway reports for a revoked
// certificate (tlsconf.ReasonCode reads it).
func (e *RevokedError) ReasonCode() string { return "revoked" }

// ReasonCode is the reason code the gateway reports when the revocation
// status could not be established.
func (e *UnavailableError) ReasonCode() string { return "revocation_unavailable" }
