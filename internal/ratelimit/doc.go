// Package ratelimit decides whether a request may pass a rate limit: GCRA
// token buckets keyed by identity, client IP or route, held in memory
// (bounded, sharded) or shared across gateways in Redis, plus a per-IP
// limit on TLS handshakes.
package ratelimit
