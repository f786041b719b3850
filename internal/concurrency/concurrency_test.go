package concurrency

import (
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestGate(t *testing.T) {
	g := NewGate(2)
	if !g.Acquire() || !g.Acquire() {
		t.Fatal("refused within the bound")
	}
	if g.Acquire() {
		t.Fatal("third holder admitted with a bound of 2")
	}
	if g.InFlight() != 2 {
		t.Fatalf("in flight %d after a refusal; want 2", g.InFlight())
	}
	g.Release()
	if !g.Acquire() {
		t.Fatal("refused after a release")
	}
	unbounded := NewGate(0)
	for range 1000 {
		if !unbounded.Acquire() {
			t.Fatal("a gate without a bound refused")
		}
	}
}

// Under contention the bound is never exceeded and every slot returns.
func TestBoundsHoldUnderContention(t *testing.T) {
	g := NewGate(3)
	k := NewKeyed(3)
	var inG, inK, maxG, maxK atomic.Int64
	bump := func(cur, peak *atomic.Int64) {
		n := cur.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
	}
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2000 {
				if g.Acquire() {
					bump(&inG, &maxG)
					inG.Add(-1)
					g.Release()
				}
				if k.Acquire("alice") {
					bump(&inK, &maxK)
					inK.Add(-1)
					k.Release("alice")
				}
			}
		}()
	}
	wg.Wait()
	if maxG.Load() > 3 || maxK.Load() > 3 {
		t.Fatalf("peak in flight: gate %d, keyed %d; bound 3", maxG.Load(), maxK.Load())
	}
	if g.InFlight() != 0 || k.Len() != 0 {
		t.Fatalf("leaked: gate %d in flight, %d keys held", g.InFlight(), k.Len())
	}
}

func TestKeyedIsolationAndMemory(t *testing.T) {
	k := NewKeyed(1)
	if !k.Acquire("a") || k.Acquire("a") {
		t.Fatal("key a: want one slot")
	}
	if !k.Acquire("b") {
		t.Fatal("key b refused because of a")
	}
	k.Release("a")
	k.Release("b")
	for i := range 100_000 {
		key := strconv.Itoa(i)
		k.Acquire(key)
		k.Release(key)
	}
	if k.Len() != 0 || k.Count("a") != 0 {
		t.Fatalf("%d keys held after every slot was released", k.Len())
	}
}

// Real TCP: a third connection from one IP is closed at accept while
// another IP connects; closing one frees the slot; the identity hold is
// released with the connection.
func TestListenerPerIP(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	perIP := NewKeyed(2)
	perID := NewKeyed(1)
	var refused atomic.Int64
	ip := func(a net.Addr) string { return a.(*net.TCPAddr).IP.String() }
	ln := perIP.Listener(inner, ip, &refused)
	defer ln.Close()
	accepted := make(chan *Conn, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c.(*Conn)
		}
	}()
	dial := func(from string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// closedByServer reports whether the server closed c (EOF on read).
	closedByServer := func(c net.Conn) bool {
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		return err == io.EOF
	}
	dial("127.0.0.1")
	dial("127.0.0.1")
	a, b := <-accepted, <-accepted
	third := dial("127.0.0.1")
	if !closedByServer(third) {
		t.Fatal("the third connection from one IP was not closed")
	}
	if refused.Load() != 1 {
		t.Fatalf("refused %d; want 1", refused.Load())
	}
	dial("127.0.0.2")
	other := <-accepted
	if perIP.Count("127.0.0.1") != 2 || perIP.Count("127.0.0.2") != 1 {
		t.Fatalf("counts %d/%d", perIP.Count("127.0.0.1"), perIP.Count("127.0.0.2"))
	}
	// Open connections per identity: the second connection of one identity
	// is refused the hold.
	if !a.Hold(perID, "spiffe://example.com/a") || b.Hold(perID, "spiffe://example.com/a") {
		t.Fatal("identity hold: want the first connection held, the second refused")
	}
	a.Close()
	a.Close() // releases once
	if perIP.Count("127.0.0.1") != 1 || perID.Count("spiffe://example.com/a") != 0 {
		t.Fatalf("after close: ip count %d, identity count %d", perIP.Count("127.0.0.1"), perID.Count("spiffe://example.com/a"))
	}
	dial("127.0.0.1")
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("a freed slot was not reused")
	}
	if a.Hold(perID, "x") {
		t.Fatal("a closed connection took a hold")
	}
	b.Close()
	other.Close()
	if perIP.Len() != 0 || perID.Len() != 0 {
		t.Fatalf("leaked slots: %d ip keys, %d identity keys", perIP.Len(), perID.Len())
	}
}

func BenchmarkKeyedAcquireRelease(b *testing.B) {
	k := NewKeyed(1 << 20)
	b.ReportAllocs()
	for b.Loop() {
		k.Acquire("spiffe://example.com/billing")
		k.Release("spiffe://example.com/billing")
	}
}
