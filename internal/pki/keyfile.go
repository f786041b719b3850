package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/youmark/pkcs8"
)

// ErrWrongPassphrase is returned when a key cannot be decrypted with the
// passphrase given. A corrupted ciphertext looks the same to the decoder,
// so the message says both.
var ErrWrongPassphrase = errors.New("wrong passphrase (or the key file is corrupt)")

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

// ParseKeyPEM decodes a PEM PKCS#8 private key, decrypting it with
// passphrase if it is encrypted. It returns ErrWrongPassphrase when the
// passphrase does not open it.
func ParseKeyPEM(data, passphrase []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM private key found")
	}
	var (
		k   any
		err error
	)
	switch block.Type {
	case pemEncryptedPrivateKey:
		if len(passphrase) == 0 {
			return nil, errors.New("key is encrypted and no passphrase was given")
		}
		k, err = decryptPKCS8(block.Bytes, passphrase)
	case pemPrivateKey:
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block is %q, want PKCS#8 %q or %q", block.Type, pemPrivateKey, pemEncryptedPrivateKey)
	}
	if err != nil {
		return nil, err
	}
	switch k := k.(type) {
	case *ecdsa.PrivateKey, *rsa.PrivateKey, ed25519.PrivateKey:
		return k.(crypto.Signer), nil
	default:
		return nil, fmt.Errorf("unsupported private key type %T", k)
	}
}

// decryptPKCS8 wraps pkcs8.ParsePrivateKey, which panics on a ciphertext
// that is not a whole number of blocks and cannot tell a wrong passphrase
// from a damaged file.
func decryptPKCS8(der, passphrase []byte) (k any, err error) {
	defer func() {
		if recover() != nil {
			k, err = nil, errors.New("encrypted key is corrupt")
		}
	}()
	k, _, err = pkcs8.ParsePrivateKey(der, passphrase)
	if err != nil {
		if err.Error() == "pkcs8: incorrect password" {
			return nil, ErrWrongPassphrase
		}
		return nil, fmt.Errorf("encrypted key is corrupt: %w", err)
	}
	return k, nil
}
