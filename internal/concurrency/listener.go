package concurrency

import (
	"net"
	"sync"
	"sync/atomic"
)

// Listener returns a listener whose Accept closes, at once, every
// connection whose key (keyOf its remote address; ratelimit.IPKey for per
// client IP) already holds k's bound of open connections. An accepted
// connection releases its slot when closed (once, however often Close is
// called). A key of "" is never limited. refused, if not nil, is counted.
func (k *Keyed) Listener(inner net.Listener, keyOf func(net.Addr) string, refused *atomic.Int64) net.Listener {
	return &listener{Listener: inner, k: k, keyOf: keyOf, refused: refused}
}

type listener struct {
	net.Listener
	k       *Keyed
	keyOf   func(net.Addr) string
	refused *atomic.Int64
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := l.keyOf(c.RemoteAddr())
		if key == "" {
			return c, nil
		}
		if l.k.Acquire(key) {
			return &Conn{Conn: c, k: l.k, key: key}, nil
		}
		if l.refused != nil {
			l.refused.Add(1)
		}
		c.Close()
	}
}

// Conn is a connection holding a slot of a Keyed; Close releases it. The
// TLS layer and engines see it as a plain net.Conn. Hold takes one more
// slot under another key (the identity, once the handshake has verified
// it) that Close also releases.
type Conn struct {
	net.Conn
	k    *Keyed
	key  string
	once sync.Once

	mu     sync.Mutex
	extra  []hold
	closed bool
}

type hold struct {
	k   *Keyed
	key string
}

// Hold takes a slot of key in k for the connection's lifetime (open
// connections per identity), reporting false when key is full.
func (c *Conn) Hold(k *Keyed, key string) bool {
	if !k.Acquire(key) {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed { // closed meanwhile: nothing would release it
		k.Release(key)
		return false
	}
	c.extra = append(c.extra, hold{k, key})
	return true
}

// Close closes the connection and releases its slots.
func (c *Conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.k.Release(c.key)
		c.mu.Lock()
		for _, h := range c.extra {
			h.k.Release(h.key)
		}
		c.extra, c.closed = nil, true
		c.mu.Unlock()
	})
	return err
}
