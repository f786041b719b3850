// Package testredis runs a real redis-server (Debian package redis-server)
// on loopback for tests: a free port, no persistence, in a temporary
// directory, killed and restarted on the same port on demand.
package testredis
