package pki

import (
	"crypto"

	"github.com/gatehouse/gatehouse/internal/keystore"
)

// ErrWrongPassphrase is returned when a key cannot be decrypted with the
// passphrase given (or is damaged: the decoder cannot tell).
var ErrWrongPassphrase = keystore.ErrPassphrase

// Block type of encrypted PEM PKCS#8 keys.
const pemEncryptedPrivateKey = keystore.PEMEncryptedPrivateKey

// MarshalKeyPEM encodes key as PEM PKCS#8, encrypted with passphrase
// (PBES2, AES-256-CBC, scrypt) unless passphrase is empty.
func MarshalKeyPEM(key crypto.Signer, passphrase []byte) ([]byte, error) {
	return keystore.MarshalPEM(key, passphrase)
}

// ParseKeyPEM decodes a PEM private key, decrypting it with passphrase if
// it is encrypted. It returns ErrWrongPassphrase when the passphrase does
// not open it.
func ParseKeyPEM(data, passphrase []byte) (crypto.Signer, error) {
	return keystore.ParsePEM(data, passphrase)
}
