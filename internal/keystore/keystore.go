package keystore

import (
	"crypto"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Key is a private key gatehouse signs with. For a PKCS#11 key the private
// half never leaves the token: Sign runs inside it.
type Key interface {
	crypto.Signer
	// Close releases what the key holds open (the token session). The key
	// must not be used afterwards. Closing a file key does nothing.
	Close() error
}

// ErrNoPKCS11 is returned for a pkcs11: reference by a binary built
// without PKCS#11 support.
var ErrNoPKCS11 = errors.New("this binary was built without PKCS#11 support; build with -tags pkcs11")

// IsPKCS11 reports whether ref is a PKCS#11 URI rather than a file path.
func IsPKCS11(ref string) bool {
	return len(ref) >= 7 && strings.EqualFold(ref[:7], "pkcs11:")
}

// Open opens the key ref names: a PKCS#11 URI (pkcs11:token=...;object=...
// ?module-path=...&pin-source=file:...) or the path of a PEM key file,
// decrypted with passphrase when it is encrypted.
func Open(ref string, passphrase []byte) (Key, error) {
	if IsPKCS11(ref) {
		u, err := ParsePKCS11URI(ref)
		if err != nil {
			return nil, err
		}
		return OpenPKCS11(u)
	}
	b, err := os.ReadFile(ref)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	k, err := ParsePEM(b, passphrase)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", ref, err)
	}
	return FileKey{k}, nil
}

// FileKey is a key held in memory, read from a file (or just generated).
type FileKey struct{ crypto.Signer }

// Close implements Key; it does nothing.
func (FileKey) Close() error { return nil }

// Algorithms a token can generate, named as pki.KeyType names them.
const (
	AlgECDSAP256 = "ecdsa-p256"
	AlgECDSAP384 = "ecdsa-p384"
	AlgRSA3072   = "rsa-3072"
)
