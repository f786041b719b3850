package upstream

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"
)

// errUnsolicited: the backend sent bytes on an idle pooled connection
// (a late extra response, a close); the connection is closed, never used.
var errUnsolicited = errors.New("backend sent bytes nobody asked for on an idle connection; connection closed")

// conn is a pooled backend connection. Its LocalAddr carries a pointer
// back to it, so that Do can reach the connection a response came on
// (fasthttp exposes only the addresses) and clear the header deadline
// before the body is streamed.
//
// Before a request is written on a connection that has already carried a
// response, conn looks (without reading) for bytes the backend sent while
// it was idle: a backend that writes an extra response late would have it
// read as the answer to another client's request (issue 9 item 8). Such
// a connection is closed and the request goes on a fresh one.
type conn struct {
	net.Conn
	local connAddr
	raw   syscall.RawConn // nil when the check is not possible
	used  bool            // a response was read since the last request
	// idle, while a response body streams, bounds each read: a backend
	// that stalls mid-stream is cut off (timeouts.backend_idle). Zero
	// while fasthttp's own deadline (the response timeout) applies.
	idle time.Duration
}

type connAddr struct {
	net.Addr
	c *conn
}

func newConn(c net.Conn) *conn {
	w := &conn{Conn: c}
	w.local = connAddr{Addr: c.LocalAddr(), c: w}
	if sc, ok := c.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			w.raw = raw
		}
	}
	return w
}

func (c *conn) LocalAddr() net.Addr { return &c.local }

func (c *conn) Read(p []byte) (int, error) {
	c.used = true
	if c.idle <= 0 {
		return c.Conn.Read(p)
	}
	c.Conn.SetReadDeadline(time.Now().Add(c.idle))
	n, err := c.Conn.Read(p)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		err = fmt.Errorf("backend sent nothing for %v mid-stream (timeouts.backend_idle): %w", c.idle, err)
	}
	return n, err
}

func (c *conn) Write(p []byte) (int, error) {
	c.idle = 0 // a new request: fasthttp bounds its response headers
	if c.used {
		c.used = false
		if c.raw != nil && pending(c.raw) {
			c.Conn.Close()
			return 0, errUnsolicited
		}
	}
	return c.Conn.Write(p)
}
