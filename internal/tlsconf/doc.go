// Package tlsconf builds gatehouse's tls.Config: versions, suites, groups,
// certificates, and the client-certificate verification that runs in
// VerifyConnection on every handshake, full or resumed.
package tlsconf
