package pki

import (
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/units"
)

// Profile names the kind of leaf certificate to issue.
type Profile string

// The profiles gatehouse issues.
const (
	// ProfileServer is a TLS server certificate: serverAuth, at least one
	// DNS or IP subject alternative name.
	ProfileServer Profile = "server"
	// ProfileClient is a TLS client certificate: clientAuth.
	ProfileClient Profile = "client"
)

// DefaultLeafValidity is a leaf's validity when the request gives none.
const DefaultLeafValidity = 90 * units.Day

// ErrUnknownProfile is returned for a profile other than server or client.
var ErrUnknownProfile = fmt.Errorf("unknown profile (use %s or %s)", ProfileServer, ProfileClient)

// ParseProfile returns the Profile named s.
func ParseProfile(s string) (Profile, error) {
	switch p := Profile(strings.ToLower(strings.TrimSpace(s))); p {
	case ProfileServer, ProfileClient:
		return p, nil
	}
	return "", fmt.Errorf("profile %q: %w", s, ErrUnknownProfile)
}

func (p Profile) extKeyUsage() []x509.ExtKeyUsage {
	if p == ProfileServer {
		return []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	return []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
}

// keyUsage is digitalSignature, plus keyEncipherment for RSA keys, which
// TLS 1.2 RSA key exchange would need (gatehouse never negotiates it, but
// other servers using the certificate might).
func keyUsage(pub any) x509.KeyUsage {
	ku := x509.KeyUsageDigitalSignature
	if _, ok := pub.(*rsa.PublicKey); ok {
		ku |= x509.KeyUsageKeyEncipherment
	}
	return ku
}

// validity resolves a requested validity against the profile default and
// the CA's maximum.
func (ca *CA) validity(req time.Duration) (time.Duration, error) {
	if req < 0 {
		return 0, fmt.Errorf("validity %s is negative", units.FormatDuration(req))
	}
	max := time.Duration(ca.settings.MaxValidity)
	if req == 0 {
		req = min(DefaultLeafValidity, max)
	}
	if req > max {
		return 0, fmt.Errorf("validity %s exceeds this CA's maximum of %s", units.FormatDuration(req), units.FormatDuration(max))
	}
	return req, nil
}
