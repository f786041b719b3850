// Package gateway wires the request path: it accepts connections, runs
// the TLS handshake (certificate by SNI, client verification, ticket
// binding), hands each connection to the HTTP/1.1 or HTTP/2 engine by
// ALPN, provisions the pipeline's policy and swaps it on reload, and
// drains on shutdown.
package gateway
