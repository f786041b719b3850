// Package gateway is the request path: TLS listener with per-connection
// client verification, routing by host and normalized path, per-request
// authorization, header hygiene, limits and the reverse proxy.
package gateway
