package pki

import (
	"crypto"
	"encoding/pem"
	"fmt"

	"github.com/youmark/pkcs8"

	"github.com/gatehouse/gatehouse/internal/certsource"
)

// ErrWrongPassphrase is returned when a key cannot be decrypted with the
// passphrase given (or is damaged: the decoder cannot tell).
var ErrWrongPassphrase = certsource.ErrPassphrase

// keyEncryption is how every key gatehouse encrypts is protected: PBES2
// with AES-256-CBC and scrypt (N=2^14, r=8, p=1: 16 MiB of memory per
// guess). These are the parameters of `openssl pkcs8 -topk8 -scrypt`;
// N=2^15 would exceed OpenSSL's 32 MiB scrypt memory cap and make the
// keys unreadable with `openssl pkey`.
var keyEncryption = &pkcs8.Opts{
	Cipher: pkcs8.AES256CBC,
	KDFOpts: pkcs8.ScryptOpts{
		SaltSize:                 16,
		CostParameter:            1 << 14,
		BlockSize:                8,
		ParallelizationParameter: 1,
	},
}

// Block types of PEM-encoded PKCS#8 keys.
const (
	pemPrivateKey          = "PRIVATE KEY"
	pemEncryptedPrivateKey = "ENCRYPTED PRIVATE KEY"
)

// MarshalKeyPEM encodes key as PEM PKCS#8, encrypted with passphrase
// (PBES2, AES-256-CBC, scrypt) unless passphrase is empty.
func MarshalKeyPEM(key crypto.Signer, passphrase []byte) ([]byte, error) {
	der, err := pkcs8.MarshalPrivateKey(key, passphrase, keyEncryption)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	typ := pemPrivateKey
	if len(passphrase) > 0 {
		typ = pemEncryptedPrivateKey
	}
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), nil
}

// ParseKeyPEM decodes a PEM private key, decrypting it with passphrase if
// it is encrypted. It returns ErrWrongPassphrase when the passphrase does
// not open it.
func ParseKeyPEM(data, passphrase []byte) (crypto.Signer, error) {
	return certsource.ParsePrivateKeyPEM(data, passphrase)
}
