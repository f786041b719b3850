package enroll

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse/gatehouse/internal/pki"
	"github.com/gatehouse/gatehouse/internal/units"
)

// An enrollment token is a JWT (RFC 7519) signed by the issuing CA's key
// (JWS compact serialization, encoded and verified by go-jose): the CA
// needs no second secret, `ca token` and `ca serve` share nothing but the
// CA directory, and the signature algorithm is pinned to the issuer's key
// type when verifying. The token names everything the certificate will
// carry; "jti" is a random 128-bit id that the inventory records on first
// use, which makes the token single use across restarts.

// Audience is the "aud" of every enrollment token.
const Audience = "gatehouse-enroll"

// Token lifetimes.
const (
	DefaultTokenTTL = 15 * time.Minute
	MaxTokenTTL     = 7 * units.Day
)

// Claims are what a token grants.
type Claims struct {
	jwt.Claims
	// Profile is "client" or "server".
	Profile string `json:"profile"`
	// DNS, IPs, URIs and Emails are the subject alternative names the
	// certificate gets; the CN is the registered "sub" claim.
	DNS    []string `json:"dns,omitempty"`
	IPs    []string `json:"ips,omitempty"`
	URIs   []string `json:"uris,omitempty"`
	Emails []string `json:"emails,omitempty"`
	// Validity, if set, is the certificate's validity ("24h"); else the
	// profile's default.
	Validity string `json:"validity,omitempty"`
}

// TokenRequest describes a token to mint.
type TokenRequest struct {
	Profile pki.Profile
	CN      string
	DNS     []string
	IPs     []net.IP
	URIs    []*url.URL
	Emails  []string
	// TTL is how long the token can be used. If zero, DefaultTokenTTL;
	// at most MaxTokenTTL.
	TTL time.Duration
	// Validity of the certificate; zero means the profile default.
	Validity time.Duration
}

// issuerID names the CA in the "iss" claim: the issuing certificate's
// subject key identifier, so a token from another CA is told apart
// before its signature is even checked.
func issuerID(ca *pki.CA) string {
	return "gatehouse-ca:" + hex.EncodeToString(ca.Issuer().SubjectKeyId)
}

// MintToken signs a one-time token for req with the CA's key.
func MintToken(ca *pki.CA, req TokenRequest, now time.Time) (string, Claims, error) {
	if _, err := pki.ParseProfile(string(req.Profile)); err != nil {
		return "", Claims{}, fmt.Errorf("mint token: %w", err)
	}
	if strings.TrimSpace(req.CN) == "" {
		return "", Claims{}, errors.New("mint token: a common name is required (--cn)")
	}
	if req.Profile == pki.ProfileServer && len(req.DNS) == 0 && len(req.IPs) == 0 {
		return "", Claims{}, errors.New("mint token: a server certificate needs at least one DNS name or IP address (--dns, --ip)")
	}
	ttl := req.TTL
	if ttl == 0 {
		ttl = DefaultTokenTTL
	}
	if ttl < 0 || ttl > MaxTokenTTL {
		return "", Claims{}, fmt.Errorf("mint token: ttl %s must be positive and at most %s", units.FormatDuration(ttl), units.FormatDuration(MaxTokenTTL))
	}
	if req.Validity != 0 {
		if _, max := ca.ProfileValidity(req.Profile); req.Validity < 0 || req.Validity > max {
			return "", Claims{}, fmt.Errorf("mint token: validity %s must be positive and at most the %s profile's maximum of %s",
				units.FormatDuration(req.Validity), req.Profile, units.FormatDuration(max))
		}
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return "", Claims{}, fmt.Errorf("mint token: %w", err)
	}
	c := Claims{
		Claims: jwt.Claims{
			ID:        hex.EncodeToString(id),
			Issuer:    issuerID(ca),
			Subject:   req.CN,
			Audience:  jwt.Audience{Audience},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)),
			Expiry:    jwt.NewNumericDate(now.Add(ttl)),
		},
		Profile: string(req.Profile),
		DNS:     req.DNS,
		Emails:  req.Emails,
	}
	for _, ip := range req.IPs {
		c.IPs = append(c.IPs, ip.String())
	}
	for _, u := range req.URIs {
		c.URIs = append(c.URIs, u.String())
	}
	if req.Validity != 0 {
		c.Validity = units.FormatDuration(req.Validity)
	}
	key, err := ca.TokenSigner()
	if err != nil {
		return "", Claims{}, fmt.Errorf("mint token: %w", err)
	}
	alg, err := tokenAlg(key.Public())
	if err != nil {
		return "", Claims{}, fmt.Errorf("mint token: %w", err)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: cryptosigner.Opaque(key)},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", Claims{}, fmt.Errorf("mint token: %w", err)
	}
	tok, err := jwt.Signed(sig).Claims(c).Serialize()
	if err != nil {
		return "", Claims{}, fmt.Errorf("mint token: %w", err)
	}
	return tok, c, nil
}

// tokenAlg is the one JWS algorithm tokens of a CA key use.
func tokenAlg(pub crypto.PublicKey) (jose.SignatureAlgorithm, error) {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return jose.EdDSA, nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return jose.ES256, nil
		case elliptic.P384():
			return jose.ES384, nil
		}
	case *rsa.PublicKey:
		return jose.PS256, nil
	}
	return "", fmt.Errorf("CA key type %T cannot sign tokens", pub)
}

// Errors from VerifyToken; test with errors.Is.
var (
	ErrBadToken     = errors.New("invalid enrollment token")
	ErrTokenExpired = errors.New("enrollment token expired")
)

// VerifyToken checks a token's signature (with the algorithm of the CA's
// key only), issuer, audience and validity at now, and returns its claims.
// It does not know whether the token was used; the store does.
func VerifyToken(ca *pki.CA, token string, now time.Time) (Claims, error) {
	alg, err := tokenAlg(ca.Issuer().PublicKey)
	if err != nil {
		return Claims{}, err
	}
	tok, err := jwt.ParseSigned(strings.TrimSpace(token), []jose.SignatureAlgorithm{alg})
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	var c Claims
	if err := tok.Claims(ca.Issuer().PublicKey, &c); err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	if c.ID == "" || c.Expiry == nil || c.Subject == "" {
		return Claims{}, fmt.Errorf("%w: missing jti, exp or sub", ErrBadToken)
	}
	err = c.ValidateWithLeeway(jwt.Expected{Issuer: issuerID(ca), AnyAudience: jwt.Audience{Audience}, Time: now}, 0)
	if errors.Is(err, jwt.ErrExpired) {
		return Claims{}, fmt.Errorf("%w at %s", ErrTokenExpired, c.Expiry.Time().UTC().Format(time.RFC3339))
	}
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	if c.Expiry.Time().Sub(c.IssuedAt.Time()) > MaxTokenTTL+time.Minute {
		return Claims{}, fmt.Errorf("%w: lives longer than %s", ErrBadToken, units.FormatDuration(MaxTokenTTL))
	}
	if _, err := pki.ParseProfile(c.Profile); err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	return c, nil
}

// ReadClaims returns a token's claims without verifying it: what a client
// needs to build a CSR for the names its token grants. Never authorize
// anything with them.
func ReadClaims(token string) (Claims, error) {
	tok, err := jwt.ParseSigned(strings.TrimSpace(token), []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256, jose.ES384, jose.PS256})
	if err != nil {
		return Claims{}, fmt.Errorf("read token: %w", err)
	}
	var c Claims
	if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil {
		return Claims{}, fmt.Errorf("read token: %w", err)
	}
	return c, nil
}

// request turns claims into the names of a KeyRequest.
func (c Claims) keyRequest() (pki.KeyRequest, error) {
	p, err := pki.ParseProfile(c.Profile)
	if err != nil {
		return pki.KeyRequest{}, err
	}
	kr := pki.KeyRequest{Profile: p, DNS: c.DNS, Emails: c.Emails}
	kr.Subject.CommonName = c.Subject
	for _, s := range c.IPs {
		ip := net.ParseIP(s)
		if ip == nil {
			return kr, fmt.Errorf("IP %q in token", s)
		}
		kr.IPs = append(kr.IPs, ip)
	}
	for _, s := range c.URIs {
		u, err := url.Parse(s)
		if err != nil {
			return kr, fmt.Errorf("URI %q in token", s)
		}
		kr.URIs = append(kr.URIs, u)
	}
	if c.Validity != "" {
		if kr.Validity, err = units.ParseDuration(c.Validity); err != nil {
			return kr, fmt.Errorf("validity in token: %w", err)
		}
	}
	return kr, nil
}
