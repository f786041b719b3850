package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/upstream"
)

// Server is the gateway. Its configuration is an immutable snapshot behind
// an atomic pointer, so a reload is one swap.
type Server struct {
	snap  atomic.Pointer[snapshot]
	log   *slog.Logger
	audit *telemetry.Audit
	now   func() time.Time
	// bg bounds background work (CRL refresh, stapling) and revocation
	// fetches made on the handshake path; Close cancels it.
	bg     context.Context
	stopBg context.CancelFunc

	// listenerTLS is the long-lived config every connection's handshake
	// starts from. It owns the session ticket keys (crypto/tls generates
	// them in memory and rotates them daily, dropping each after a week;
	// none is ever static or written down) and picks the current snapshot
	// per connection in GetConfigForClient.
	listenerTLS *tls.Config

	// pipe holds every request decision; both engines call it.
	pipe *pipeline.Pipeline

	mu    sync.Mutex
	conns map[*trackedConn]struct{}

	obs *observer // metrics, certificate inventory, reload record

	expiry expiryWarned // expiry warnings already logged

	h1Linger time.Duration
}

// Options are the optional parts of a Server.
type Options struct {
	// Log receives operational messages. If nil, slog.Default is used.
	Log *slog.Logger
	// Audit receives one JSON record per request and per refused
	// handshake. If nil, audit records are discarded.
	Audit *telemetry.Audit
	// Now returns the current time. If nil, time.Now is used.
	Now func() time.Time
	// Stages and Observers are added to the request pipeline (rate
	// limits, validation, metrics).
	Stages    []pipeline.Stage
	Observers []pipeline.Observer
	// Registry receives the gateway's metrics. If nil, the gateway makes
	// its own, with the Go and process collectors.
	Registry *prometheus.Registry

	// h1Linger (tests) is how long an idle HTTP/1.1 connection stays in
	// fasthttp before it is parked; 0 is the engine's default.
	h1Linger time.Duration
}

// New provisions a gateway from a loaded configuration. It fails, naming
// file, line and field, when a certificate, key or CA cannot be loaded.
func New(f *config.File, opts Options) (*Server, error) {
	s := &Server{log: opts.Log, audit: opts.Audit, now: opts.Now, conns: map[*trackedConn]struct{}{}, h1Linger: opts.h1Linger}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.audit == nil {
		s.audit = telemetry.NewDiscardAudit()
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.bg, s.stopBg = context.WithCancel(context.Background())
	snap, err := provision(f, provisionEnv{ctx: s.bg, now: s.now, log: s.log})
	if err != nil {
		s.stopBg()
		return nil, err
	}
	snap.verifier.Now = s.now
	s.obs = newObserver(opts.Registry, s.log, s.now)
	s.obs.bindRoutes(snap)
	s.snap.Store(snap)
	s.obs.started(s, snap)
	s.warnExpiring(snap)
	s.listenerTLS = &tls.Config{
		GetConfigForClient: s.configForClient,
		Time:               s.now,
		// Never used: GetConfigForClient always returns a config.
		Certificates: snap.tls.Certificates,
	}
	s.pipe = &pipeline.Pipeline{
		Policy:    func() *pipeline.Policy { return s.snap.Load().policy },
		Audit:     s.audit,
		Now:       s.now,
		Stages:    opts.Stages,
		Observers: opts.Observers,
		Metrics:   s.obs.m,
	}
	return s, nil
}

// Pipeline returns the gateway's request pipeline.
func (s *Server) Pipeline() *pipeline.Pipeline { return s.pipe }

// Check provisions f without serving: what `gatehouse config check` runs
// after Load, so that a missing or wrong file is found before deployment.
func Check(f *config.File) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := provision(f, provisionEnv{ctx: ctx, now: time.Now, log: slog.New(slog.DiscardHandler), check: true})
	return err
}

// Close stops the gateway's background work. Serve calls it when it
// returns.
func (s *Server) Close() {
	s.stopBg()
	if snap := s.snap.Load(); snap != nil {
		snap.close()
		if snap.guard != nil {
			snap.guard.Retire(nil)
		}
	}
}

// trackedConn carries the connection's pipeline view from Accept to the
// handshake callbacks (hello.Conn) and, through the engines, to every
// request.
type trackedConn struct {
	net.Conn
	pc *pipeline.Conn
	// refused is set when VerifyConnection refused the client, so that
	// Close lingers long enough for the client to read the alert.
	refused atomic.Bool
}

// NetConn returns the accepted connection (the HTTP/1.1 engine waits on
// its socket while a keep-alive connection is idle).
func (c *trackedConn) NetConn() net.Conn { return c.Conn }

// Lingering bounds for a refused handshake.
const (
	lingerTime  = 500 * time.Millisecond
	lingerBytes = 64 << 10
)

// Close closes the connection. After a refused handshake it first
// half-closes and drains what the client already sent: closing with
// unread data makes the kernel send a reset, which can overtake the TLS
// alert, and the client would see "connection reset" instead of why it
// was refused. The drain is bounded in time and bytes.
func (c *trackedConn) Close() error {
	if c.refused.Load() {
		if tcp, ok := c.Conn.(*net.TCPConn); ok {
			tcp.CloseWrite()
			tcp.SetReadDeadline(time.Now().Add(lingerTime))
			io.CopyN(io.Discard, tcp, lingerBytes)
		}
	}
	return c.Conn.Close()
}

func (s *Server) configForClient(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	snap := s.snap.Load()
	tc, ok := hello.Conn.(*trackedConn)
	if !ok {
		return nil, errors.New("connection not accepted by the gateway listener")
	}
	// Before any key exchange or certificate work: an IP over its
	// handshake budget (a flood of junk certificates) costs one ClientHello.
	if snap.guard != nil && !snap.guard.Handshakes().Allow(tc.RemoteAddr()) {
		return nil, ratelimit.ErrHandshakeRate
	}
	pc := tc.pc
	pc.SNI = normalizeSNI(hello.ServerName)
	// A per-connection copy lets VerifyConnection record the identity for
	// this connection. Ticket keys still come from listenerTLS.
	cfg := snap.tls.Clone()
	cfg.Time = s.now
	if snap.stapler != nil {
		// crypto/tls consults GetCertificate for clients without SNI only
		// when Certificates is empty; the stapled copy must always win.
		cfg.Certificates = nil
	}
	cfg.WrapSession, cfg.UnwrapSession = s.sessionTickets(snap)
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		// Runs on every handshake, full or resumed, against the policy in
		// force now (DESIGN.md invariant 3).
		id, err := snap.verifier.Verify(cs.PeerCertificates)
		if err == nil && id != nil && snap.revocation != nil {
			// A status cached from a CRL or an earlier OCSP answer costs a
			// map lookup; only an uncached OCSP status is fetched here.
			err = snap.revocation.Check(s.bg, id.Chain)
		}
		if err != nil && snap.policy.RefuseInHTTP {
			// client_auth.refusal: http. The handshake completes so that
			// the client can read why (400 and the reason code on every
			// request, before routing); nothing reaches a backend. The
			// audit record has the detail and the fix.
			s.obs.handshakeFailed(err)
			s.auditCertificate(tc, cs, err, "certificate_refused")
			pc.Peer = cs.PeerCertificates
			pc.SetVerified(pipeline.NewRefusedVerification(snap.policy, err))
			return nil
		}
		if err != nil {
			tc.refused.Store(true)
			s.obs.handshakeFailed(err)
			s.auditHandshake(tc, cs, err)
			return err
		}
		s.obs.handshake(cs)
		pc.Peer = cs.PeerCertificates
		pc.SetVerified(pipeline.NewVerification(snap.policy, id))
		return nil
	}
	return cfg, nil
}

func (s *Server) auditHandshake(c *trackedConn, cs tls.ConnectionState, err error) {
	s.auditCertificate(c, cs, err, "handshake_refused")
}

func (s *Server) auditCertificate(c *trackedConn, cs tls.ConnectionState, err error, event string) {
	rec := telemetry.AuditRecord{
		Time:     s.now(),
		Event:    event,
		Remote:   c.pc.Remote,
		SNI:      cs.ServerName,
		Resumed:  cs.DidResume,
		Decision: "deny",
		Reason:   err.Error(),
	}
	if len(cs.PeerCertificates) > 0 {
		leaf := cs.PeerCertificates[0]
		rec.Subject = leaf.Subject.String()
		rec.Serial = identity.SerialHex(leaf.SerialNumber)
		rec.Issuer = leaf.Issuer.String()
	}
	s.audit.Write(&rec)
}

// normalizeSNI lower-cases the SNI name and drops a trailing dot, the same
// normalization the Host header gets before the two are compared.
func normalizeSNI(name string) string { return config.NormalizeHost(name) }

// Reload provisions f completely and, only if that succeeds, swaps it in:
// new connections and every next request use it. On error the running
// configuration keeps serving, unchanged.
func (s *Server) Reload(f *config.File) error {
	old := s.snap.Load()
	snap, err := provision(f, provisionEnv{ctx: s.bg, now: s.now, log: s.log, prev: old})
	if err != nil {
		s.obs.refused(err)
		return err
	}
	snap.verifier.Now = s.now
	s.obs.bindRoutes(snap)
	s.snap.Store(snap)
	s.obs.swapped(old, snap)
	old.close()
	if old.guard != nil {
		old.guard.Retire(snap.guard)
	}
	// Backend pools the new snapshot does not use: idle connections go
	// now; busy ones finish their requests and are closed when idle.
	kept := map[*upstream.Client]bool{}
	for _, c := range snap.upstreams {
		kept[c] = true
	}
	for _, c := range old.upstreams {
		if !kept[c] {
			c.CloseIdle()
		}
	}
	s.warnExpiring(snap)
	return nil
}
