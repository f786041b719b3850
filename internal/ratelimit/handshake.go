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
// handshake with an alert) for a client IP over its handshake budget.
var ErrHandshakeRate = errors.New("tls handshake rate exceeded for this client address")

// HandshakeOptions configure a HandshakeLimiter. A zero Rate is no limit.
type HandshakeOptions struct {
	// Rate and Burst bound every handshake per client IP.
	Rate  Rate
	Burst int64
	// FailedRate and FailedBurst bound failed handshakes per client IP: an
	// IP over this budget is refused at its next ClientHello, whatever
	// certificate it would have sent, until the budget refills.
	FailedRate  Rate
	FailedBurst int64
	// Memory configures the stores (their clock and size).
	Memory MemoryOptions
}

// HandshakeLimiter bounds TLS handshakes per client IP, so that a flood of
// handshakes (with junk certificates, say) from one address cannot take
// the CPU: a full mTLS handshake costs the gateway ~650 µs, a refusal
// costs reading one ClientHello.
//
// Two budgets: failed handshakes (the junk-certificate flood; a client
// whose handshakes succeed never spends it, so busy honest clients are not
// slowed) and, optionally, all handshakes. The latter counts every
// ClientHello, resumptions included: before the handshake runs nobody can
// tell whether a ticket will be accepted, and a client offering a junk
// ticket costs a full handshake.
type HandshakeLimiter struct {
	all, failed *Limiter
	failedMem   *Memory
	refused     atomic.Int64
}

// NewHandshakeLimiter returns a limiter for o.
func NewHandshakeLimiter(o HandshakeOptions) (*HandshakeLimiter, error) {
	h := &HandshakeLimiter{}
	if o.Rate.N > 0 {
		l, err := New(Policy{Name: "handshakes", Rate: o.Rate, Burst: o.Burst}, NewMemory(o.Memory))
		if err != nil {
			return nil, err
		}
		h.all = l
	}
	if o.FailedRate.N > 0 {
		h.failedMem = NewMemory(o.Memory)
		l, err := New(Policy{Name: "failed-handshakes", Rate: o.FailedRate, Burst: o.FailedBurst}, h.failedMem)
		if err != nil {
			return nil, err
		}
		h.failed = l
	}
	return h, nil
}

// Allow decides at the ClientHello whether addr's IP may handshake, and
// spends one of its handshakes. Addresses without an IP are never limited.
func (h *HandshakeLimiter) Allow(addr net.Addr) bool {
	k := IPKey(addr)
	if k == "" {
		return true
	}
	if h.failed != nil && !h.failedMem.Peek(k, h.failed.interval, h.failed.tolerance) {
		h.refused.Add(1)
		return false
	}
	if h.all != nil && !h.all.Allow(k).Allowed {
		h.refused.Add(1)
		return false
	}
	return true
}

// Failed spends one failed handshake of addr's IP. The accept loop calls
// it when a handshake it let through failed after the server's key
// exchange (the costly part); failures before it cost nothing to count.
func (h *HandshakeLimiter) Failed(addr net.Addr) {
	if h.failed == nil {
		return
	}
	if k := IPKey(addr); k != "" {
		h.failed.Allow(k)
	}
}

// Refused counts the handshakes refused so far.
func (h *HandshakeLimiter) Refused() int64 { return h.refused.Load() }

// Config returns a copy of base whose GetConfigForClient first checks the
// client's handshake budget (before any key exchange or certificate work)
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
