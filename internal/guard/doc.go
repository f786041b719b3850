// Package guard builds, from one configuration, everything a request and a
// connection must pass besides mTLS and allow rules: rate limits, in-flight
// and connection bounds, handshake budgets, OpenAPI validation and circuit
// breakers, behind a small engine-neutral API the pipeline calls.
package guard
