package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/telemetry"
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

	// listenerTLS is the long-lived config given to tls.NewListener. It
	// owns the session ticket keys (crypto/tls generates them in memory
	// and rotates them daily, dropping each after a week; none is ever
	// static or written down) and picks the current snapshot per
	// connection in GetConfigForClient.
	listenerTLS *tls.Config

	mu      sync.Mutex
	servers []*http.Server
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
}

// New provisions a gateway from a loaded configuration. It fails, naming
// file, line and field, when a certificate, key or CA cannot be loaded.
func New(f *config.File, opts Options) (*Server, error) {
	s := &Server{log: opts.Log, audit: opts.Audit, now: opts.Now}
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
	s.snap.Store(snap)
	s.warnExpiring(snap)
	s.listenerTLS = &tls.Config{
		GetConfigForClient: s.configForClient,
		Time:               s.now,
		// Never used: GetConfigForClient always returns a config. Set so
		// that tls.NewListener accepts this config.
		Certificates: snap.tls.Certificates,
	}
	return s, nil
}

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
	}
}

// connInfo is what the handshake learned about one connection. It is
// written during the handshake, before the connection serves any request,
// and only read afterwards.
type connInfo struct {
	sni string // normalized SNI ("" if none was sent)
	// verified is the identity and the snapshot it was verified under. The
	// handshake sets it; a request that finds a newer snapshot in force
	// verifies the chain again and replaces it. Atomic because HTTP/2
	// serves a connection's requests concurrently.
	verified atomic.Pointer[verification]
	// handshakeTimer closes the connection if the handshake stalls.
	handshakeTimer *time.Timer
	// refused is set when VerifyConnection refused the client, so that
	// Close lingers long enough for the client to read the alert.
	refused atomic.Bool
}

// verification is a client chain's verdict under one snapshot.
type verification struct {
	snap *snapshot
	id   *identity.Identity // nil when no certificate was presented
	// headers are the identity headers for the backend, rendered once per
	// verification rather than per request (URL-encoding a PEM certificate
	// is the costliest part of a request's own work). Never modified.
	headers http.Header
}

func newVerification(snap *snapshot, id *identity.Identity) *verification {
	v := &verification{snap: snap, id: id}
	if id != nil {
		v.headers = identityHeaders(snap, id)
	}
	return v
}

// trackedConn carries connInfo from Accept to the handshake callbacks
// (hello.Conn) and to the request path (http.Server.ConnContext).
type trackedConn struct {
	net.Conn
	info *connInfo
}

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
	c.info.handshakeTimer.Stop()
	if c.info.refused.Load() {
		if tcp, ok := c.Conn.(*net.TCPConn); ok {
			tcp.CloseWrite()
			tcp.SetReadDeadline(time.Now().Add(lingerTime))
			io.CopyN(io.Discard, tcp, lingerBytes)
		}
	}
	return c.Conn.Close()
}

type trackingListener struct {
	net.Listener
	handshake func() time.Duration
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, info: &connInfo{}}
	// Force the handshake to finish in time: a client that opens a
	// connection and stalls must not hold it until the header timeout.
	tc.info.handshakeTimer = time.AfterFunc(l.handshake(), func() { c.Close() })
	return tc, nil
}

func (s *Server) configForClient(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	snap := s.snap.Load()
	tc, ok := hello.Conn.(*trackedConn)
	if !ok {
		return nil, errors.New("connection not accepted by the gateway listener")
	}
	info := tc.info
	info.sni = normalizeSNI(hello.ServerName)
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
		if err != nil {
			info.refused.Store(true)
			s.auditHandshake(tc, cs, err)
			return err
		}
		info.verified.Store(newVerification(snap, id))
		info.handshakeTimer.Stop()
		return nil
	}
	return cfg, nil
}

func (s *Server) auditHandshake(c net.Conn, cs tls.ConnectionState, err error) {
	rec := telemetry.AuditRecord{
		Time:     s.now(),
		Event:    "handshake_refused",
		Remote:   c.RemoteAddr().String(),
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

// Serve accepts TLS connections on ln until ctx is cancelled, then stops
// accepting and waits (up to timeouts.shutdown) for in-flight requests.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	snap := s.snap.Load()
	tl := &trackingListener{Listener: ln, handshake: func() time.Duration {
		return time.Duration(s.snap.Load().timeouts.Handshake)
	}}
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: time.Duration(snap.timeouts.ReadHeader),
		IdleTimeout:       time.Duration(snap.timeouts.Idle),
		MaxHeaderBytes:    int(snap.limits.MaxHeaderBytes),
		ErrorLog:          log.New(&slogWriter{s.log}, "", 0),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if tc, ok := c.(*tls.Conn); ok {
				if t, ok := tc.NetConn().(*trackedConn); ok {
					return context.WithValue(ctx, connInfoKey{}, t.info)
				}
			}
			return ctx
		},
	}
	s.mu.Lock()
	s.servers = append(s.servers, hs)
	s.mu.Unlock()

	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(tls.NewListener(tl, s.listenerTLS)) }()
	expCtx, stopExp := context.WithCancel(ctx)
	defer stopExp()
	go s.watchExpiry(expCtx, 12*time.Hour)
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	defer s.Close()
	sctx, cancel := context.WithTimeout(context.Background(), time.Duration(s.snap.Load().timeouts.Shutdown))
	defer cancel()
	s.log.Info("shutting down: draining in-flight requests", "timeout", time.Duration(s.snap.Load().timeouts.Shutdown))
	if err := hs.Shutdown(sctx); err != nil {
		hs.Close()
		return fmt.Errorf("shutdown: %w", err)
	}
	<-errc
	return nil
}

type connInfoKey struct{}

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
		return err
	}
	snap.verifier.Now = s.now
	s.snap.Store(snap)
	old.close()
	s.warnExpiring(snap)
	return nil
}

// slogWriter routes net/http's internal messages (TLS handshake errors,
// mostly client noise) to the log at debug level.
type slogWriter struct{ l *slog.Logger }

func (w *slogWriter) Write(p []byte) (int, error) {
	w.l.Debug(string(trimNewline(p)), "source", "net/http")
	return len(p), nil
}

func trimNewline(p []byte) []byte {
	if n := len(p); n > 0 && p[n-1] == '\n' {
		return p[:n-1]
	}
	return p
}
