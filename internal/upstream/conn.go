package upstream

import "net"

// conn is a pooled backend connection. Its LocalAddr carries a pointer
// back to it, so that Do can reach the connection a response came on
// (fasthttp exposes only the addresses) and clear the header deadline
// before the body is streamed.
type conn struct {
	net.Conn
	local connAddr
}

type connAddr struct {
	net.Addr
	c *conn
}

func newConn(c net.Conn) *conn {
	w := &conn{Conn: c}
	w.local = connAddr{Addr: c.LocalAddr(), c: w}
	return w
}

func (c *conn) LocalAddr() net.Addr { return &c.local }
