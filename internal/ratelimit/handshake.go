package ratelimit

import (
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
)

// IPKey is the per-IP key of a client address: the IPv4 address, or the
// /64 prefix of an IPv6 address (one host usually holds a whole /64, so a
// per-address key would be free to dodge). IPv4-mapped IPv6 counts as
// IPv4. It returns "" for an address that carries no IP.
func IPKey(addr net.Addr) string {
	var ip netip.Addr
	switch a := addr.(type) {
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	default:
		if addr == nil {
			return ""
		}
		ap, err := netip.ParseAddrPort(addr.String())
		if err != nil {
			return ""
		}
		ip = ap.Addr()
	}
	return ipKey(ip)
}

func ipKey(ip netip.Addr) string {
	ip = ip.Unmap()
	switch {
	case ip.Is4():
		return ip.String()
	case ip.Is6():
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ""
}

// ErrHandshakeRate is returned to crypto/tls (which then ends the
// handshake with an alert) for a client IP over its handshake rate.
var ErrHandshakeRate = errors.New("tls handshake rate exceeded for this client address")

// HandshakeLimiter bounds TLS handshakes per client IP, so that a flood of
// handshakes (with junk certificates, say) from one address cannot take
// the CPU: a full mTLS handshake costs the gateway ~650 µs, a refusal
// costs reading one ClientHello.
//
// It counts every ClientHello, resumptions included: before the handshake
// runs nobody can tell whether a ticket will be accepted, and a client
// offering a junk ticket costs a full handshake. Size the rate for a
// client's new connections, not its requests.
type HandshakeLimiter struct {
	l       *Limiter
	refused atomic.Int64
}

// NewHandshakeLimiter allows rate handshakes per client IP with the given
// burst, keeping state in a Memory store made with o.
func NewHandshakeLimiter(rate Rate, burst int64, o MemoryOptions) (*HandshakeLimiter, error) {
	l, err := New(Policy{Name: "handshakes", Rate: rate, Burst: burst}, NewMemory(o))
	if err != nil {
		return nil, err
	}
	return &HandshakeLimiter{l: l}, nil
}

// Allow spends one handshake of addr's IP. Addresses without an IP (unix
// sockets, tests) are never limited.
func (h *HandshakeLimiter) Allow(addr net.Addr) bool {
	k := IPKey(addr)
	if k == "" || h.l.Allow(k).Allowed {
		return true
	}
	h.refused.Add(1)
	return false
}

// Refused counts the handshakes refused so far.
func (h *HandshakeLimiter) Refused() int64 { return h.refused.Load() }

// Config returns a copy of base whose GetConfigForClient first checks the
// client's handshake rate (before any key exchange or certificate work)
// and then defers to base's own GetConfigForClient, if any.
func (h *HandshakeLimiter) Config(base *tls.Config) *tls.Config {
	c := base.Clone()
	next := base.GetConfigForClient
	c.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if !h.Allow(hello.Conn.RemoteAddr()) {
			return nil, ErrHandshakeRate
		}
		if next != nil {
			return next(hello)
		}
		return nil, nil
	}
	return c
}
