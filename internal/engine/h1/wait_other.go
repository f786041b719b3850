//go:build !unix

package h1

import "syscall"

// waitReadable is not available here: parked connections wait in a read.
func waitReadable(syscall.RawConn) bool { return true }

const canWaitReadable = false
