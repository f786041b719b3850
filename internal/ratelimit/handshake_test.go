package ratelimit

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testpki"
)

func TestIPKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7:443":              "192.0.2.7",
		"[::ffff:192.0.2.7]:443":     "192.0.2.7",
		"[2001:db8:1:2:3:4:5:6]:443": "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:1":   "2001:db8:1:2::/64",
		"[2001:db8:1:3::1]:1":        "2001:db8:1:3::/64",
		"not-an-address":             "",
	} {
		var addr net.Addr
		if ap, err := net.ResolveTCPAddr("tcp", in); err == nil {
			addr = ap
		} else {
			addr = &net.UnixAddr{Name: in}
		}
		if got := IPKey(addr); got != want {
			t.Errorf("IPKey(%s) = %q; want %q", in, got, want)
		}
	}
	if IPKey(nil) != "" {
		t.Error("IPKey(nil) is not empty")
	}
}

// A flood of handshakes with junk certificates from one IP is refused
// before the certificate work, while another IP still connects; the
// flooding IP connects again once its budget refills.
func TestHandshakeFloodThrottledPerIP(t *testing.T) {
	root := testpki.NewRoot(t, "Handshake Test CA")
	junkRoot := testpki.NewRoot(t, "Junk CA")
	pool := x509.NewCertPool()
	pool.AddCert(root.Cert)
	serverCert := root.Server(t, "gw.test").TLSCertificate()

	c := newClock()
	h, err := NewHandshakeLimiter(HandshakeOptions{FailedRate: Rate{N: 5, Per: time.Second}, FailedBurst: 5, Memory: MemoryOptions{Now: c.Now}})
	if err != nil {
		t.Fatal(err)
	}
	var reached atomic.Int64 // handshakes that got past the limiter
	base := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{serverCert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			reached.Add(1)
			return nil, nil
		},
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", h.Config(base))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	failed := make(chan struct{}, 100) // one per failed handshake, once charged
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(5 * time.Second))
				if conn.(*tls.Conn).Handshake() != nil {
					h.Failed(conn.RemoteAddr())
					failed <- struct{}{}
					return
				}
				io.WriteString(conn, "ok")
			}()
		}
	}()

	serverPool := x509.NewCertPool()
	serverPool.AddCert(root.Cert)
	dial := func(from string, cert tls.Certificate) error {
		d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		conn, err := tls.DialWithDialer(d, "tcp", ln.Addr().String(), &tls.Config{
			ServerName: "gw.test", RootCAs: serverPool, Certificates: []tls.Certificate{cert},
		})
		if err != nil {
			return err
		}
		defer conn.Close()
		b := make([]byte, 2)
		if _, err := io.ReadFull(conn, b); err != nil {
			return err
		}
		return nil
	}

	junk := junkRoot.Client(t, "attacker").TLSCertificate()
	for range 50 {
		if dial("127.0.0.1", junk) == nil {
			t.Fatal("a junk certificate was accepted")
		}
		<-failed // the server has charged the failure
	}
	if n := reached.Load(); n != 5 {
		t.Fatalf("%d of 50 flooding handshakes got past the limiter; want the burst, 5", n)
	}
	if h.Refused() != 45 {
		t.Fatalf("refused %d; want 45", h.Refused())
	}

	good := root.Client(t, "partner").TLSCertificate()
	// Successful handshakes spend no failure budget.
	for range 20 {
		if err := dial("127.0.0.3", good); err != nil {
			t.Fatalf("honest handshake %v", err)
		}
	}
	if err := dial("127.0.0.2", good); err != nil {
		t.Fatalf("another IP could not connect during the flood: %v", err)
	}
	if err := dial("127.0.0.1", good); err == nil {
		t.Fatal("the flooding IP connected while over its budget")
	}
	<-failed
	c.Add(200 * time.Millisecond) // one failure refilled
	if err := dial("127.0.0.1", good); err != nil {
		t.Fatalf("the flooding IP could not connect after its budget refilled: %v", err)
	}
}

// The all-handshakes budget counts successes too.
func TestHandshakeRateAll(t *testing.T) {
	c := newClock()
	h, err := NewHandshakeLimiter(HandshakeOptions{Rate: Rate{N: 2, Per: time.Second}, Burst: 2, Memory: MemoryOptions{Now: c.Now}})
	if err != nil {
		t.Fatal(err)
	}
	a := &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 1}
	if !h.Allow(a) || !h.Allow(a) || h.Allow(a) {
		t.Fatal("want two handshakes then a refusal")
	}
	h.Failed(a) // no failure budget configured: no effect
	if !h.Allow(&net.TCPAddr{IP: net.ParseIP("192.0.2.2")}) {
		t.Fatal("another IP refused")
	}
	c.Add(500 * time.Millisecond)
	if !h.Allow(a) {
		t.Fatal("refused after a refill")
	}
}
