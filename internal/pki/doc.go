// Package pki is gatehouse's certificate authority: it creates a root (and
// optionally an intermediate), issues and signs leaf certificates by
// profile, revokes them, publishes CRLs, answers OCSP and exports PKCS#12.
//
// A CA lives in a directory: ca.pem (the root users trust), intermediate.pem
// when there is one, their keys encrypted with a passphrase (PKCS#8, PBES2,
// AES-256-CBC, scrypt) or generated inside a PKCS#11 token (ca.json then
// holds their URIs; see package keystore), ca.json (settings) and
// inventory.db, or a PostgreSQL database that several `ca serve` replicas
// share (see package store).
package pki
