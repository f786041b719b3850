package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/testpki"
)

// lastSession offers the last session it stored, whatever the key.
type lastSession struct{ s *tls.ClientSessionState }

func (c *lastSession) Get(string) (*tls.ClientSessionState, bool) { return c.s, c.s != nil }
func (c *lastSession) Put(_ string, s *tls.ClientSessionState) {
	if s != nil {
		c.s = s
	}
}

// connectOnce makes two requests on one new connection (the second lets a
// TLS 1.3 client read its ticket) and reports whether it resumed.
func connectOnce(t *testing.T, addr string, cfg *tls.Config) bool {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	for _, req := range []string{"GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n", "GET /x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"} {
		io.WriteString(conn, req)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	return conn.ConnectionState().DidResume
}

// Resumption is bounded to 24 h from the full handshake, however many
// tickets the session went through (crypto/tls alone accepts a TLS 1.3
// ticket for 7 days and renews it at each resumption).
func TestSessionAgeBound(t *testing.T) {
	for _, version := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			p := newPKI(t)
			be := newBackend(t)
			path := filepath.Join(p.dir, "gatehouse.yaml")
			testpki.WriteFile(t, path, []byte(baseConfig(p, be.URL, "")))
			f, err := config.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			// The certificates are valid from an hour ago for a day: start
			// the gateway's clock just inside that window.
			clock := testpki.NewClock()
			clock.Add(-55 * time.Minute)
			srv, err := New(f, Options{Log: slog.New(slog.DiscardHandler), Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- srv.Serve(ctx, ln) }()
			defer func() { cancel(); <-done }()

			cache := &lastSession{}
			cfg := p.clientTLS(p.client, "localhost")
			cfg.ClientSessionCache = cache
			cfg.MaxVersion = version
			addr := ln.Addr().String()
			if connectOnce(t, addr, cfg) {
				t.Fatal("first connection resumed")
			}
			clock.Add(20 * time.Hour)
			if !connectOnce(t, addr, cfg) {
				t.Fatal("not resumed after 20 h")
			}
			// The ticket minted on the resumed connection is 4 h old, its
			// session 24 h and a minute.
			clock.Add(4*time.Hour + time.Minute)
			if connectOnce(t, addr, cfg) {
				t.Fatal("resumed a session older than 24 h")
			}
			if !connectOnce(t, addr, cfg) {
				t.Fatal("the new session does not resume")
			}
		})
	}
}
