package keystore

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/youmark/pkcs8"
)

// ErrPassphrase reports a missing or wrong passphrase for an encrypted
// key. A damaged ciphertext looks the same to the decoder, so the message
// says both.
var ErrPassphrase = errors.New("wrong passphrase (or the key file is corrupt)")

// ErrNoPassphrase reports an encrypted key given without a passphrase: it
// names the configuration key that gives one, and does not go on to say
// the passphrase was wrong. It matches ErrPassphrase with errors.Is.
var ErrNoPassphrase error = noPassphrase{}

type noPassphrase struct{}

func (noPassphrase) Error() string {
	return "key is encrypted and no passphrase was given (name a file holding its passphrase with key_passphrase_file)"
}

func (noPassphrase) Is(target error) bool { return target == ErrPassphrase }

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
	PEMPrivateKey          = "PRIVATE KEY"
	PEMEncryptedPrivateKey = "ENCRYPTED PRIVATE KEY"
)

// MarshalPEM encodes key as PEM PKCS#8, encrypted with passphrase
// (PBES2, AES-256-CBC, scrypt) unless passphrase is empty.
func MarshalPEM(key crypto.Signer, passphrase []byte) ([]byte, error) {
	der, err := pkcs8.MarshalPrivateKey(key, passphrase, keyEncryption)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	typ := PEMPrivateKey
	if len(passphrase) > 0 {
		typ = PEMEncryptedPrivateKey
	}
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), nil
}

// ParsePEM parses the first private key block in data: PKCS#1
// ("RSA PRIVATE KEY"), SEC1 ("EC PRIVATE KEY"), PKCS#8 ("PRIVATE KEY") or
// encrypted PKCS#8 ("ENCRYPTED PRIVATE KEY", decrypted with passphrase).
// Legacy OpenSSL-encrypted PEM (Proc-Type: 4,ENCRYPTED) is refused: its key
// derivation is weak; convert it with `openssl pkcs8 -topk8`.
func ParsePEM(data, passphrase []byte) (crypto.Signer, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no PEM private key found (expected a PEM block of type PRIVATE KEY, EC PRIVATE KEY, RSA PRIVATE KEY or ENCRYPTED PRIVATE KEY)")
		}
		if _, enc := b.Headers["Proc-Type"]; enc {
			return nil, errors.New("legacy encrypted PEM key is not supported; convert it with: openssl pkcs8 -topk8 -v2 aes-256-cbc -in old.pem -out new.pem")
		}
		var (
			k   any
			err error
		)
		switch b.Type {
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(b.Bytes)
		case PEMPrivateKey:
			k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case PEMEncryptedPrivateKey:
			if len(passphrase) == 0 {
				return nil, ErrNoPassphrase
			}
			if k, err = decryptPKCS8(b.Bytes, passphrase); err != nil {
				return nil, err
			}
		default:
			continue // e.g. "EC PARAMETERS" before the key
		}
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", strings.ToLower(b.Type), err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported key type %T", k)
		}
		return s, nil
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
			return nil, ErrPassphrase
		}
		return nil, fmt.Errorf("encrypted key is corrupt: %w", err)
	}
	return k, nil
}
