//go:build unix

package upstream

import "syscall"

// pending reports whether the socket has bytes to read or was closed by
// the peer, without reading or waiting: MSG_PEEK|MSG_DONTWAIT.
func pending(raw syscall.RawConn) bool {
	var buf [1]byte
	var err error
	if cerr := raw.Read(func(fd uintptr) bool {
		_, _, err = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true
	}); cerr != nil {
		return true
	}
	if err == syscall.EAGAIN || err == syscall.EWOULDBLOCK {
		return false
	}
	// Bytes waiting (n > 0), the peer's FIN (n == 0) or a socket error:
	// in every case the connection must not carry another request.
	return true
}
