// Package pki is gatehouse's certificate authority: it creates a root (and
// optionally an intermediate), issues and signs leaf certificates by
// profile, revokes them, publishes CRLs, answers OCSP and exports PKCS#12.
//
// A CA lives in a directory: ca.pem (the root users trust), intermediate.pem
// when there is one, their keys encrypted with a passphrase (PKCS#8, PBES2,
// AES-256-CBC, scrypt), ca.json (settings) and inventory.db (see package
// store).
package pki
