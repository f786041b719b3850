// Package sanitize normalizes request paths and removes client-sent identity
// headers, so that policy and backend see one path and only verified identity.
//
// # Path
//
// Path produces the single normalized path that both route/policy matching
// and the backend use (DESIGN.md invariant 7); see its documentation for the
// rule.
//
// # Identity headers
//
// StripIdentityHeaders removes every request header that a backend could
// take for identity information (DESIGN.md invariant 6): the headers
// gatehouse sets itself (X-Forwarded-Client-Cert, Client-Cert,
// Client-Cert-Chain) and the names other proxies use (X-Client-*, X-SSL-*,
// Ssl-Client-*, X-Forwarded-Tls-Client-Cert*, X-Amzn-Mtls-*, ...), in any
// case and with "_" in place of "-", because many backends (CGI-style
// environments, Django's META, nginx with underscores_in_headers) fold
// X_Client_Cert and X-Client-Cert together.
//
// Hop-by-hop tricks cannot remove the headers gatehouse sets. A client may
// send "Connection: X-Forwarded-Client-Cert" hoping a proxy drops the
// verified header after setting it. net/http/httputil.ReverseProxy deletes
// the Connection-nominated headers from the outgoing request before it calls
// Rewrite, and the gateway strips and sets identity headers inside Rewrite,
// so the nomination can only ever remove the client's own copy; the
// Connection header itself is hop-by-hop and is not forwarded. A test in
// this package drives a real ReverseProxy over a raw TCP connection to keep
// that reasoning honest.
package sanitize
