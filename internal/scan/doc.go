// Package scan is the TLS auditor behind `gatehouse scan`: it probes an
// endpoint's protocols, cipher suites, groups, certificates, behaviour,
// known vulnerabilities and client-certificate handling, and grades it
// with SSL Labs' rules.
//
// Old protocols and suites are probed with raw ClientHellos built and
// parsed with cryptobyte (crypto/tls cannot send them); certificates,
// OCSP and the mTLS checks use crypto/tls handshakes.
package scan
