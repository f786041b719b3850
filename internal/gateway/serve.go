package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/engine/h1"
	"github.com/gatehouse/gatehouse/internal/engine/h2"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
)

// Serve accepts connections on ln until ctx is cancelled, then stops
// accepting and drains: HTTP/1.1 connections get Connection: close on
// their next response and idle ones are closed, HTTP/2 ones get GOAWAY,
// and in-flight requests and tunnels get up to timeouts.shutdown.
//
// Each connection is handshaken here, not by an engine: the handshake runs
// under its own deadline with the listener's tls.Config (certificate by
// SNI, client chain verified and revocation checked in VerifyConnection,
// session tickets bound to the policy), and ALPN then hands it to the
// HTTP/2 engine ("h2") or the HTTP/1.1 engine.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	snap := s.snap.Load()
	t := snap.timeouts
	e1 := h1.New(s.pipe, h1.Options{
		ReadHeaderTimeout: time.Duration(t.ReadHeader),
		IdleTimeout:       time.Duration(t.Idle),
		MaxHeaderBytes:    int(snap.limits.MaxHeaderBytes),
		BodyIdleTimeout:   time.Duration(t.BodyIdle),
		Log:               s.log,
		Linger:            s.h1Linger,
	})
	e2 := h2.New(s.pipe, h2.Options{
		ReadHeaderTimeout:     time.Duration(t.ReadHeader),
		IdleTimeout:           time.Duration(t.Idle),
		MaxHeaderBytes:        int(snap.limits.MaxHeaderBytes),
		MaxConcurrentStreams:  uint32(snap.limits.MaxStreams),
		BackendConnsPerClient: snap.limits.BackendConnsPerClient,
		BodyIdleTimeout:       time.Duration(t.BodyIdle),
		Log:                   s.log,
	})
	var wg sync.WaitGroup
	var closing bool // under s.mu: no new connection is served once set
	errc := make(chan error, 1)
	go func() {
		var delay time.Duration
		for {
			c, err := ln.Accept()
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, errTemporary(err)) {
					delay = min(max(2*delay, 5*time.Millisecond), time.Second)
					time.Sleep(delay)
					continue
				}
				errc <- err
				return
			}
			delay = 0
			// Open connections per client IP: the excess is closed before
			// any TLS work.
			ipKey := ratelimit.IPKey(c.RemoteAddr())
			perIP := s.snap.Load().guard.ConnsPerIP()
			if ipKey != "" && !perIP.Acquire(ipKey) {
				s.log.Debug("connection refused: limits.connections_per_ip reached", "remote", c.RemoteAddr().String())
				c.Close()
				continue
			}
			tc := &trackedConn{Conn: c, pc: &pipeline.Conn{Remote: c.RemoteAddr().String(), LimitIP: ipKey}}
			if host, _, err := net.SplitHostPort(tc.pc.Remote); err == nil {
				tc.pc.RemoteIP = host
			}
			s.mu.Lock()
			if closing {
				s.mu.Unlock()
				c.Close()
				if ipKey != "" {
					perIP.Release(ipKey)
				}
				continue
			}
			s.conns[tc] = struct{}{}
			wg.Add(1)
			s.mu.Unlock()
			go s.serveConn(tc, e1, e2, func() {
				s.mu.Lock()
				delete(s.conns, tc)
				s.mu.Unlock()
				if ipKey != "" {
					perIP.Release(ipKey)
				}
				wg.Done()
			})
		}
	}()
	expCtx, stopExp := context.WithCancel(ctx)
	defer stopExp()
	go s.watchExpiry(expCtx, 12*time.Hour)
	startReclaimer(expCtx)

	var serveErr error
	select {
	case err := <-errc:
		serveErr = fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	ln.Close()
	defer s.Close()
	shutdown := time.Duration(s.snap.Load().timeouts.Shutdown)
	s.log.Info("shutting down: draining in-flight requests", "timeout", shutdown)
	sctx, cancel := context.WithTimeout(context.Background(), shutdown)
	defer cancel()
	s.mu.Lock()
	closing = true
	s.mu.Unlock()
	var dwg sync.WaitGroup
	var e1err, e2err error
	dwg.Add(2)
	go func() { defer dwg.Done(); e1err = e1.Shutdown(sctx) }()
	go func() { defer dwg.Done(); e2err = e2.Shutdown(sctx) }()
	dwg.Wait()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-sctx.Done():
	}
	// Whatever is left after the drain is cut.
	s.mu.Lock()
	for c := range s.conns {
		c.Conn.Close()
	}
	s.mu.Unlock()
	<-done
	if serveErr != nil {
		return serveErr
	}
	if err := errors.Join(e1err, e2err); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// errTemporary keeps the accept loop going on resource exhaustion
// (EMFILE and the like report Temporary, which net.Error deprecates but
// accept errors still set).
func errTemporary(err error) error {
	if t, ok := err.(interface{ Temporary() bool }); ok && t.Temporary() {
		return err
	}
	return errNotTemporary
}

var errNotTemporary = errors.New("not temporary")

// serveConn handshakes one connection under the handshake deadline and
// gives it to the engine ALPN chose; done is called once it is closed.
// The HTTP/1.1 engine serves on goroutines of its own, so the deep stack
// the handshake grew ends with this goroutine.
func (s *Server) serveConn(tc *trackedConn, e1 *h1.Engine, e2 *h2.Engine, done func()) {
	conn := tls.Server(tc, s.listenerTLS)
	d := time.Duration(s.snap.Load().timeouts.Handshake)
	// A client that opens a connection and stalls must not hold it.
	tc.SetDeadline(time.Now().Add(d))
	hctx, cancel := context.WithTimeout(s.bg, d)
	err := conn.HandshakeContext(hctx)
	cancel()
	if err != nil {
		s.log.Debug("TLS handshake failed", "remote", tc.pc.Remote, "err", err)
		// A handshake that failed after the server's key exchange (a
		// certificate refused, a client gone mid-handshake) cost the
		// full price and spends the IP's failed-handshake budget: past
		// it, its next handshakes are refused at the ClientHello. One
		// that failed before (no ClientHello, no common version or
		// suite, refused for the budget itself) cost almost nothing and
		// is not counted, so scanners' protocol probes and TCP health
		// checks do not use up the budget.
		if g := s.snap.Load().guard; g != nil && conn.ConnectionState().CipherSuite != 0 {
			g.Handshakes().Failed(tc.RemoteAddr())
		}
		conn.Close()
		done()
		return
	}
	tc.SetDeadline(time.Time{})
	if tc.pc.Verified() == nil {
		// VerifyConnection did not run (client auth none): an anonymous
		// verification under the policy in force.
		tc.pc.SetVerified(pipeline.NewVerification(s.snap.Load().policy, nil))
	}
	// Open connections per identity.
	if key := tc.pc.Verified().LimitKey(); key != "" {
		perID := s.snap.Load().guard.ConnsPerIdentity()
		if !perID.Acquire(key) {
			s.log.Info("connection closed: limits.connections_per_identity reached", "remote", tc.pc.Remote, "identity", key)
			conn.Close()
			done()
			return
		}
		// Released when the connection closes, which for HTTP/1.1 is
		// after this goroutine has ended.
		closed := done
		done = func() { perID.Release(key); closed() }
	}
	if conn.ConnectionState().NegotiatedProtocol == "h2" {
		e2.ServeConn(conn, tc.pc)
		conn.Close()
		done()
		return
	}
	e1.Serve(conn, tc.pc, done)
}
