package h2

import (
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// holdMax bounds how long a held write waits for the one that follows.
// Between the two, the handler's DATA goes through Go's HTTP/2 server's
// serve loop and a write goroutine: on the 2-core bench under HTTP/2 load
// that took more than 1 ms for most responses (strace counted 0.7 lone
// HEADERS records per request with a 1 ms hold, 0.04 with 10 ms). The
// hold only lasts that long when no write follows at all: a DATA frame
// stalled by flow control (then the body is waiting for the client
// anyway) or a stream reset in between.
const holdMax = 10 * time.Millisecond

// tlsConn is the connection Go's HTTP/2 server writes to: ConnectionState
// lets it check the TLS version and cipher suite and fill Request.TLS.
type tlsConn interface {
	net.Conn
	ConnectionState() tls.ConnectionState
}

// coalescer sits between Go's HTTP/2 server and the TLS connection. That
// server flushes whenever its write queue is empty, and a handler's
// HEADERS frame is written (and waited for) before its DATA is queued, so
// every response costs two TLS records and two write(2)s. For a response
// whose body is in hand, the handler arms the coalescer first: the next
// flush (the HEADERS) is held and goes out with the one that follows (the
// DATA) in one record and one write.
//
// A held write is released by the next write or, when none comes (a DATA
// frame waiting for flow control, a stream reset in between), after
// holdMax: nothing waits longer than that, and bytes always go out in the
// order they were written.
type coalescer struct {
	tlsConn

	armed atomic.Bool // set by a handler, taken by the next write
	mu    sync.Mutex  // serializes writes and releases
	held  *[]byte     // nil when nothing is held
	timer *time.Timer // releases a held write after holdMax; nil until first used
	err   error       // a failed release, returned by the next write
}

var heldBufs = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

func newCoalescer(c tlsConn) *coalescer { return &coalescer{tlsConn: c} }

// arm holds the next write until the one after it (or holdMax).
func (c *coalescer) arm() { c.armed.Store(true) }

func (c *coalescer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	armed := c.armed.Swap(false)
	if c.held == nil {
		if !armed || len(p) == 0 {
			return c.tlsConn.Write(p)
		}
		b := heldBufs.Get().(*[]byte)
		*b = append((*b)[:0], p...)
		c.held = b
		if c.timer == nil {
			c.timer = time.AfterFunc(holdMax, c.release)
		} else {
			c.timer.Reset(holdMax)
		}
		return len(p), nil
	}
	c.timer.Stop()
	b := c.held
	c.held = nil
	*b = append(*b, p...)
	_, err := c.tlsConn.Write(*b)
	putHeld(b)
	if err != nil {
		c.err = err
		return 0, err
	}
	return len(p), nil
}

func putHeld(b *[]byte) {
	if cap(*b) <= 64<<10 {
		heldBufs.Put(b)
	}
}

// release writes a held write that no other write followed in time. When
// the lock is taken, a write is in progress: it releases what is held
// itself, or (when it is the write being held) has restarted the timer.
func (c *coalescer) release() {
	if !c.mu.TryLock() {
		return
	}
	defer c.mu.Unlock()
	if c.held == nil {
		return
	}
	b := c.held
	c.held = nil
	_, err := c.tlsConn.Write(*b)
	putHeld(b)
	if err != nil && c.err == nil {
		c.err = err
	}
}

// Close closes the connection without waiting for a write in progress
// (Go's HTTP/2 server closes a connection to end a stuck write).
func (c *coalescer) Close() error {
	if c.mu.TryLock() {
		if c.timer != nil {
			c.timer.Stop()
		}
		if c.held != nil {
			putHeld(c.held)
			c.held = nil
		}
		c.mu.Unlock()
	}
	return c.tlsConn.Close()
}
