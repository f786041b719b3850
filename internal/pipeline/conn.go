package pipeline

import (
	"crypto/x509"
	"sync/atomic"

	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/internal/tlsconf"
)

// Conn is what the handshake learned about one client connection. The
// gateway fills SNI, Remote and Peer before the connection serves any
// request; only the verification changes afterwards.
type Conn struct {
	// SNI is the normalized SNI name, "" when none was sent.
	SNI string
	// Remote is the client's address, "ip:port".
	Remote string
	// RemoteIP is Remote without the port (X-Forwarded-For).
	RemoteIP string
	// LimitIP is ratelimit.IPKey of the client's address: what per-IP
	// limits count (IPv6 per /64).
	LimitIP string
	// Peer is the chain the client presented (nil for none), verified
	// again under a newer Policy after a reload.
	Peer []*x509.Certificate

	// verified is atomic because HTTP/2 serves a connection's requests
	// concurrently.
	verified atomic.Pointer[Verification]
}

// SetVerified records the verdict of the handshake.
func (c *Conn) SetVerified(v *Verification) { c.verified.Store(v) }

// Verified returns the current verification, nil before the handshake.
func (c *Conn) Verified() *Verification { return c.verified.Load() }

// Verification is a client chain's verdict under one Policy, with every
// string that requests carry about it rendered once: identity headers for
// the backend (URL-encoding a PEM certificate is the costliest part of a
// request's own work) and the audit fields. Never modified.
type Verification struct {
	Policy *Policy
	// ID is nil when the client presented no certificate.
	ID *identity.Identity
	// Headers are the identity headers for the backend.
	Headers [][2]string

	// Refused is set when the client presented a certificate that was
	// not accepted and the policy answers that in HTTP (RefuseInHTTP):
	// every request of the connection is refused with Code.
	Refused error
	Code    string

	subject, serial, issuer, spiffe, fingerprint string
	sans                                         []string
	// keys are the identity's rate limit keys, rendered once.
	keys ratelimit.IdentityKeys
}

// NewRefusedVerification records that the client's certificate was refused
// with err, whose reason code (tlsconf.ReasonCode) the client is told.
func NewRefusedVerification(p *Policy, err error) *Verification {
	return &Verification{Policy: p, Refused: err, Code: string(tlsconf.ReasonCode(err))}
}

// LimitKey is the identity's key for per-identity bounds (in-flight
// requests, open connections): its SPIFFE ID, else issuer and serial; ""
// without a certificate.
func (v *Verification) LimitKey() string { return v.keys.Key("") }

// NewVerification renders id's headers and audit strings under p.
func NewVerification(p *Policy, id *identity.Identity) *Verification {
	v := &Verification{Policy: p, ID: id}
	if id == nil {
		return v
	}
	if p.XFCC {
		v.Headers = append(v.Headers, [2]string{"X-Forwarded-Client-Cert", identity.XFCC(id)})
	}
	if p.RFC9440 {
		cert, chain := identity.RFC9440(id)
		v.Headers = append(v.Headers, [2]string{"Client-Cert", cert})
		if chain != "" {
			v.Headers = append(v.Headers, [2]string{"Client-Cert-Chain", chain})
		}
	}
	v.subject = id.Subject()
	v.issuer = id.IssuerName()
	v.serial = id.Serial()
	v.fingerprint = id.Fingerprint()
	v.sans = SANList(id)
	v.keys = ratelimit.KeysOf(id)
	for _, u := range id.URIs() {
		if u != nil && u.Scheme == "spiffe" {
			v.spiffe = u.String()
			break
		}
	}
	return v
}

// SANList returns the leaf's SANs as typed strings ("URI:...", "DNS:...").
func SANList(id *identity.Identity) []string {
	var out []string
	for _, u := range id.URIs() {
		if u != nil {
			out = append(out, "URI:"+u.String())
		}
	}
	for _, d := range id.DNSNames() {
		out = append(out, "DNS:"+d)
	}
	for _, e := range id.Emails() {
		out = append(out, "email:"+e)
	}
	for _, ip := range id.IPs() {
		out = append(out, "IP:"+ip.String())
	}
	return out
}
