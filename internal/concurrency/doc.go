// Package concurrency bounds what clients hold at once: in-flight requests
// per route and per identity, open connections per client IP and per
// identity. A full bound refuses at once (503 for a request, a closed
// socket for a connection): nothing queues.
package concurrency
