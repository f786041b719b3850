// Package revocation decides whether a verified client certificate chain
// has been revoked, from CRLs (files and http(s) URLs, refreshed in the
// background) and OCSP (verified, cached, de-duplicated), and staples OCSP
// responses for the gateway's own certificates.
//
// Check runs on every handshake and every request: once a status is
// known it is a pure in-memory lookup, without network round trips or
// allocations. Everything that can fail (fetching, parsing, verifying)
// happens beforehand or in the background, and a failure never removes a
// good CRL or response before its nextUpdate; past that, Config.Unavailable
// decides (reject by default: never fail open).
//
// Revocation data is verified before it is held (DESIGN.md invariant 11):
// a CRL must be signed by the CA its issuer name designates, and one of an
// intermediate not seen yet decides nothing until it verifies against
// that intermediate in a verified client chain.
package revocation
