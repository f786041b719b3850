// Package keystore gives gatehouse its private keys as crypto.Signers,
// from encrypted PKCS#8 files or from a PKCS#11 token (an HSM) addressed
// by an RFC 7512 URI; PKCS#11 needs a binary built with -tags pkcs11.
package keystore
