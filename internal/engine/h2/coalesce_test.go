package h2

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// recConn records each Write it is given.
type recConn struct {
	net.Conn // nil: only the methods below are used
	mu       sync.Mutex
	writes   [][]byte
	fail     error
	block    chan struct{} // when set, Write waits for it to close
	closed   chan struct{}
}

func newRecConn() *recConn { return &recConn{closed: make(chan struct{})} }

func (c *recConn) Write(p []byte) (int, error) {
	if c.block != nil {
		select {
		case <-c.block:
		case <-c.closed:
			return 0, net.ErrClosed
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return 0, c.fail
	}
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

func (c *recConn) Close() error                         { close(c.closed); return nil }
func (c *recConn) ConnectionState() tls.ConnectionState { return tls.ConnectionState{} }

func (c *recConn) got() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.writes...)
}

func write(t *testing.T, c *coalescer, s string) {
	t.Helper()
	if n, err := c.Write([]byte(s)); n != len(s) || err != nil {
		t.Fatalf("Write(%q) = %d, %v", s, n, err)
	}
}

func TestCoalescerPassesWritesThroughUnlessArmed(t *testing.T) {
	rc := newRecConn()
	c := newCoalescer(rc)
	write(t, c, "a")
	write(t, c, "b")
	if w := rc.got(); len(w) != 2 || string(w[0]) != "a" || string(w[1]) != "b" {
		t.Fatalf("writes %q, want [a b]", w)
	}
}

func TestCoalescerJoinsAHeldWriteWithTheNext(t *testing.T) {
	rc := newRecConn()
	c := newCoalescer(rc)
	c.arm()
	write(t, c, "HEADERS")
	if w := rc.got(); len(w) != 0 {
		t.Fatalf("armed write went out alone: %q", w)
	}
	write(t, c, "DATA")
	write(t, c, "next")
	if w := rc.got(); len(w) != 2 || string(w[0]) != "HEADERSDATA" || string(w[1]) != "next" {
		t.Fatalf("writes %q, want [HEADERSDATA next]", w)
	}
	// The timer of the released hold writes nothing later.
	time.Sleep(3 * holdMax)
	if w := rc.got(); len(w) != 2 {
		t.Fatalf("writes after the hold's timer: %q", w)
	}
}

// A held write that nothing follows (a DATA frame waiting for flow
// control, a stream reset) goes out on its own after holdMax.
func TestCoalescerReleasesAHeldWriteInTime(t *testing.T) {
	rc := newRecConn()
	c := newCoalescer(rc)
	for i := range 3 { // the timer is reused
		c.arm()
		start := time.Now()
		write(t, c, "HEADERS")
		for len(rc.got()) == i {
			if time.Since(start) > 2*time.Second {
				t.Fatalf("held write not released after %v", time.Since(start))
			}
			time.Sleep(holdMax / 4)
		}
		if w := rc.got(); len(w) != i+1 || string(w[i]) != "HEADERS" {
			t.Fatalf("writes %q", w)
		}
	}
}

func TestCoalescerReportsAFailedRelease(t *testing.T) {
	rc := newRecConn()
	c := newCoalescer(rc)
	boom := errors.New("boom")
	rc.fail = boom
	c.arm()
	write(t, c, "HEADERS") // held: no error yet
	time.Sleep(5 * holdMax)
	if _, err := c.Write([]byte("DATA")); !errors.Is(err, boom) {
		t.Fatalf("write after a failed release: %v, want %v", err, boom)
	}
}

// Go's HTTP/2 server closes a connection to end a write that is stuck:
// Close must not wait for it.
func TestCoalescerCloseDoesNotWaitForAStuckWrite(t *testing.T) {
	rc := newRecConn()
	rc.block = make(chan struct{})
	c := newCoalescer(rc)
	done := make(chan error, 1)
	go func() { _, err := c.Write([]byte("stuck")); done <- err }()
	time.Sleep(10 * time.Millisecond)
	closed := make(chan struct{})
	go func() { c.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(2 * time.Second):
		t.Fatal("Close waited for a stuck write")
	}
	if err := <-done; err == nil {
		t.Fatal("stuck write returned no error after Close")
	}
}
