// Package h2 is the HTTP/2 engine: Go's HTTP/2 server (ServeConn) on
// connections whose ALPN chose h2, through the same pipeline and the same
// upstream client as HTTP/1.1.
package h2
