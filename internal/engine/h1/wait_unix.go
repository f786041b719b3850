//go:build unix

package h1

import "syscall"

// waitReadable blocks until the socket has bytes to read, the peer closed
// it, or its read deadline passes, without reading anything: recv with
// MSG_PEEK|MSG_DONTWAIT, parked in the runtime's poller while it would
// block. Its call chain is shallow, so a parked connection's goroutine
// keeps the smallest stack. It reports false when the wait failed (the
// deadline passed, the connection was closed).
func waitReadable(raw syscall.RawConn) bool {
	var buf [1]byte
	ready := false
	err := raw.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		if err == syscall.EAGAIN || err == syscall.EWOULDBLOCK {
			return false // wait for the poller
		}
		ready = true // bytes, the peer's FIN, or an error the read will see
		return true
	})
	return err == nil && ready
}

const canWaitReadable = true
