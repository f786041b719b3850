package scan

import (
	"context"
	"crypto/tls"
	"fmt"
	"sync"
)

// ticketCache keeps the last TLS 1.2 session crypto/tls stored.
type ticketCache struct {
	mu sync.Mutex
	cs *tls.ClientSessionState
}

func (c *ticketCache) Get(string) (*tls.ClientSessionState, bool) { return nil, false }

func (c *ticketCache) Put(_ string, cs *tls.ClientSessionState) {
	c.mu.Lock()
	c.cs = cs
	c.mu.Unlock()
}

// ticketbleed probes CVE-2016-9244 (F5 BIG-IP): a ClientHello resuming a
// real session ticket with a 1-byte session ID. The server must echo that
// ID; a vulnerable one answers with 32 bytes, 31 of them its memory.
func (s *scanner) ticketbleed(ctx context.Context, r *Report) Vuln {
	v := Vuln{ID: "ticketbleed", Name: "Ticketbleed", CVE: "CVE-2016-9244", Method: "probed"}
	if !r.offered(VersionTLS12) {
		v.Status, v.Detail, v.Method = NotVulnerable, "no TLS 1.2 (session tickets are a TLS 1.2 feature here)", "inferred"
		return v
	}
	cache := &ticketCache{}
	h := &handshake{}
	cfg := s.tlsConfig(s.opts.ClientCert, []string{"http/1.1"}, h)
	cfg.MaxVersion = tls.VersionTLS12
	cfg.ClientSessionCache = cache
	s.dialTLS(ctx, cfg, h, false, "", false)
	cache.mu.Lock()
	cs := cache.cs
	cache.mu.Unlock()
	if cs == nil {
		v.Status, v.Detail = NotVulnerable, "no session ticket issued with TLS 1.2"
		return v
	}
	ticket, _, err := cs.ResumptionState()
	if err != nil || len(ticket) == 0 {
		v.Status, v.Detail = NotVulnerable, "no session ticket issued with TLS 1.2"
		return v
	}
	_, suites := r.bestLegacy()
	ch := s.p.baseHello(VersionTLS12, suites)
	ch.sessionID, ch.ticket = []byte{0x42}, ticket
	res, err := s.p.hello(ctx, ch, false, false)
	switch {
	case err != nil:
		v.Status, v.Detail = NotTested, err.Error()
	case !res.accepted():
		v.Status, v.Detail = NotTested, "the resuming ClientHello was refused"
	case len(res.hello.sessionID) > 1 && res.hello.sessionID[0] == 0x42:
		v.Status, v.Detail = Vulnerable, fmt.Sprintf("a 1-byte session ID came back as %d bytes", len(res.hello.sessionID))
	default:
		v.Status, v.Detail = NotVulnerable, fmt.Sprintf("a 1-byte session ID came back as %d byte(s)", len(res.hello.sessionID))
	}
	return v
}
