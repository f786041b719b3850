// Package breaker is a circuit breaker per backend: after a run of
// failures it answers 503 at once instead of piling requests onto a
// failing backend, then lets one probe through to find out when it is back.
package breaker
