package scan

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// TestSilentServer: a server that accepts connections and never answers
// cannot hold the scan beyond its timeouts.
func TestSilentServer(t *testing.T) {
	silent := silentListener(t, func(*net.TCPConn) {}) // held open, never answered
	start := time.Now()
	_, err := Run(context.Background(), Options{Addr: silent, Timeout: 300 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "no SSL or TLS version could be negotiated") {
		t.Errorf("err = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("scan of a silent server took %v", d)
	}
	// Not listening at all: a quick, clear error.
	addr := freePort(t)
	if _, err := Run(context.Background(), Options{Addr: addr, Timeout: time.Second}); err == nil || !strings.Contains(err.Error(), "connect") {
		t.Errorf("closed port: %v", err)
	}
	// Not TLS (an HTTP server that answers garbage).
	ln2, _ := net.Listen("tcp", "127.0.0.1:0")
	t.Cleanup(func() { ln2.Close() })
	go func() {
		for {
			c, err := ln2.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
			c.Close()
		}
	}()
	if _, err := Run(context.Background(), Options{Addr: ln2.Addr().String(), Timeout: time.Second}); err == nil {
		t.Error("plain HTTP port scanned as TLS")
	}
}
