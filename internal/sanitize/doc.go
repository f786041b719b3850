// Package sanitize normalizes request targets, paths and authorities and
// removes client-sent identity and forwarding headers, so that policy and
// backend see one path, one host and only verified identity.
//
// # Request target and authority
//
// SplitTarget splits the raw request target without decoding it, and
// Authority parses a Host or :authority strictly (a host, an optional port
// from 1 to 65535, nothing else), so a second host hidden after a comma
// cannot be routed as one name and read by a backend as another.
//
// # Path
//
// Path produces the single normalized path that both route/policy matching
// and the backend use (DESIGN.md invariant 7); see its documentation for the
// rule.
//
// # Identity and forwarding headers
//
// HeaderStripper removes the identity headers below and every header
// backends take for the client's origin (X-Forwarded-*, Forwarded,
// X-Real-IP, X-Remote-User, X-Original-URL, X-Rewrite-URL, ...) plus
// configured names, in every spelling, and drops Trailer entries naming
// them.
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
