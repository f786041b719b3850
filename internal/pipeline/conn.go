package pipeline

import (
	"crypto/x509"
	"sync/atomic"

	"github.com/gatehouse/gatehouse/internal/authz"
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

	// allowed is the last route's authorization decision: the allow
	// rules read only the certificate, so a connection's requests to the
	// same route get the same answer (HTTP/2 streams read it at once).
	allowed atomic.Pointer[allowMemo]
}

type allowMemo struct {
	route *Route
	d     authz.Decision
}

// authorize is rt's allow rules on v's identity, evaluated once per route
// while the connection stays on it. Routes belong to the policy v was
// made under; a reload makes a new Verification.
func (v *Verification) authorize(rt *Route) authz.Decision {
	if m := v.allowed.Load(); m != nil && m.route == rt {
		return m.d
	}
	d := rt.Authz.Evaluate(v.ID)
	v.allowed.Store(&allowMemo{route: rt, d: d})
	return d
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

// NewVerification renders id's headers and audit strings under p. The
// rendering depends only on the certificates and p, and many connections
// present the same certificate, so it is done once per certificate (and
// chain, for RFC 9440) and policy: the strings are shared, which saves
// the handshake the work and each connection the memory (the XFCC value,
// a URL-encoded PEM certificate, is the largest per-connection string).
// The verification runs on every handshake (tlsconf.Verifier answers a
// chain it accepted before from memory only while the chain is valid;
// revocation is checked every time); only what is rendered from its
// result is shared here.
func NewVerification(p *Policy, id *identity.Identity) *Verification {
	v := &Verification{Policy: p, ID: id}
	if id == nil {
		return v
	}
	key := renderKey(p, id)
	r, ok := p.renders.Get(key)
	if !ok {
		r = render(p, id)
		p.renders.Put(key, r)
	}
	v.Headers = r.headers
	v.subject, v.serial, v.issuer = r.subject, r.serial, r.issuer
	v.spiffe, v.fingerprint, v.sans = r.spiffe, r.fingerprint, r.sans
	v.keys = r.keys
	return v
}

// rendered is what a Verification carries about a certificate.
type rendered struct {
	headers                                      [][2]string
	subject, serial, issuer, spiffe, fingerprint string
	sans                                         []string
	keys                                         ratelimit.IdentityKeys
}

func render(p *Policy, id *identity.Identity) *rendered {
	r := &rendered{}
	if p.XFCC {
		r.headers = append(r.headers, [2]string{"X-Forwarded-Client-Cert", identity.XFCC(id)})
	}
	if p.RFC9440 {
		cert, chain := identity.RFC9440(id)
		r.headers = append(r.headers, [2]string{"Client-Cert", cert})
		if chain != "" {
			r.headers = append(r.headers, [2]string{"Client-Cert-Chain", chain})
		}
	}
	r.subject = id.Subject()
	r.issuer = id.IssuerName()
	r.serial = id.Serial()
	r.fingerprint = id.Fingerprint()
	r.sans = SANList(id)
	r.keys = ratelimit.KeysOf(id)
	for _, u := range id.URIs() {
		if u != nil && u.Scheme == "spiffe" {
			r.spiffe = u.String()
			break
		}
	}
	return r
}

// renderKey identifies what render reads: the leaf (its SHA-256), and,
// when the RFC 9440 chain header is rendered, the whole chain.
func renderKey(p *Policy, id *identity.Identity) [32]byte {
	if !p.RFC9440 || len(id.Chain) < 2 {
		return id.FingerprintSHA256
	}
	return identity.ChainKey(id.Chain)
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
