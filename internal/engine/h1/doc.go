// Package h1 is the HTTP/1.1 engine: fasthttp's server on connections
// gatehouse accepted and handshook itself, parsing and framing only; every
// decision is the pipeline's.
package h1
