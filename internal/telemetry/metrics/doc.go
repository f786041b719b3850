// Package metrics is gatehouse's Prometheus instrumentation: request,
// handshake, reload and certificate metrics on an injected registry, with
// bounded labels only (never a subject, serial or path on request metrics).
//
// The request path takes a *Route resolved once per provisioned route, so
// that counting a request costs a few atomic adds and no label lookups.
// Certificate, CRL and OCSP metrics are read at scrape time from an
// Inventory the gateway (or `ca serve`) provides, so a reload never leaves
// stale series behind.
package metrics
