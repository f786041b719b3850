//go:build linux

package h1

import (
	"fmt"
	"os"
	"sync"
	"syscall"
)

// poller holds idle keep-alive connections without a goroutine each: their
// sockets sit in an epoll set of its own (one-shot, so each wakes once per
// park), and one goroutine, parked in the runtime's poller on the epoll
// descriptor itself, hands each connection that becomes readable back to
// its engine. A parked connection then costs its timer and a map entry
// instead of a goroutine and its stack (2-4 KiB each, 2000 idle
// connections: several MiB).
//
// A socket stays in the set when its connection wakes (disabled until it
// parks again, which re-arms it) and leaves it when the connection closes
// (the kernel drops a descriptor from every epoll set on its last close;
// gatehouse never duplicates sockets). Events carry a fresh id per park,
// never a descriptor or a pointer, so an event for a connection that has
// since been closed, or whose descriptor number was reused, finds nothing.
type poller struct {
	rc syscall.RawConn // the epoll descriptor, under the runtime's poller
	ep int

	mu      sync.Mutex
	next    uint64
	waiting map[uint64]*conn
	stopped error // set if the wait failed: arm refuses, parks fall back to goroutines
}

// sharedPoller is created with the first engine: one per process, shared
// by every engine (reloads create new engines).
var sharedPoller = sync.OnceValues(newPoller)

func newPoller() (*poller, error) {
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	if err := syscall.SetNonblock(ep, true); err != nil {
		syscall.Close(ep)
		return nil, fmt.Errorf("epoll descriptor non-blocking: %w", err)
	}
	// A non-blocking descriptor given to os.NewFile is registered with the
	// runtime's poller, so the wait below parks a goroutine, not a thread.
	f := os.NewFile(uintptr(ep), "h1-parked")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	p := &poller{rc: rc, ep: ep, waiting: map[uint64]*conn{}}
	go p.run(f)
	return p, nil
}

// arm adds c's socket to the set (or re-arms it) under a fresh id; an
// event for it calls c.e.ready(c).
func (p *poller) arm(c *conn) error {
	p.mu.Lock()
	if p.stopped != nil {
		p.mu.Unlock()
		return p.stopped
	}
	p.next++
	id := p.next
	p.waiting[id] = c
	p.mu.Unlock()
	ev := syscall.EpollEvent{
		Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT,
		Fd:     int32(id), Pad: int32(id >> 32),
	}
	op := syscall.EPOLL_CTL_MOD
	if c.pollID == 0 { // never in the set
		op = syscall.EPOLL_CTL_ADD
	}
	var cerr error
	err := c.raw.Control(func(fd uintptr) { cerr = syscall.EpollCtl(p.ep, op, int(fd), &ev) })
	if err == nil {
		err = cerr
	}
	if err != nil {
		p.mu.Lock()
		delete(p.waiting, id)
		p.mu.Unlock()
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	c.pollID = id
	return nil
}

// forget drops c's id: an event still queued for it finds nothing. The
// socket leaves the set when c is closed.
func (p *poller) forget(c *conn) {
	p.mu.Lock()
	delete(p.waiting, c.pollID)
	p.mu.Unlock()
}

func (p *poller) run(f *os.File) {
	defer f.Close()
	events := make([]syscall.EpollEvent, 256)
	for {
		var n int
		var werr error
		err := p.rc.Read(func(uintptr) bool {
			n, werr = syscall.EpollWait(p.ep, events, 0)
			if werr == syscall.EINTR {
				werr = nil
			}
			return n > 0 || werr != nil // nothing ready: wait in the runtime's poller
		})
		if err == nil {
			err = werr
		}
		if err != nil {
			// Never seen. Connections parked here then end at their idle
			// timeout (their timers still run); new parks get this error,
			// which the engine logs, and wait on goroutines.
			p.mu.Lock()
			p.stopped = fmt.Errorf("parked-connection poller stopped: %w", err)
			p.mu.Unlock()
			return
		}
		for _, ev := range events[:n] {
			id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			p.mu.Lock()
			c := p.waiting[id]
			delete(p.waiting, id)
			p.mu.Unlock()
			if c != nil {
				c.e.ready(c)
			}
		}
	}
}
