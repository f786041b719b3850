//go:build gatehouse_pprof

package main

// A profiling listener for performance work only: built with
// -tags gatehouse_pprof and started only when GATEHOUSE_PPROF names a
// loopback address. Release builds carry none of it.

import (
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	addr := os.Getenv("GATEHOUSE_PPROF")
	if addr == "" {
		return
	}
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		slog.Error("GATEHOUSE_PPROF must be a loopback host:port", "addr", addr)
		return
	}
	go func() { slog.Error("pprof listener", "err", http.ListenAndServe(addr, nil)) }()
}
