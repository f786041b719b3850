package pki

import (
	"errors"
	"fmt"

	"software.sslmate.com/src/go-pkcs12"
)

// p12Iterations is the PBKDF2 cost of modern bundles: the library default
// (2048, OpenSSL's) is meant for random passwords, and people type theirs.
const p12Iterations = 100_000

// PKCS12 encodes the leaf, its key and the intermediates as a PKCS#12
// bundle protected by password. The modern encoding (PBES2, AES-256-CBC,
// PBKDF2-HMAC-SHA-256, SHA-256 MAC) is read by OpenSSL 1.1.1+, Java 12+,
// Windows Server 2019+; legacy (3DES and SHA-1) is for older keystores.
func (i *Issued) PKCS12(password string, legacy bool) ([]byte, error) {
	if i.Key == nil {
		return nil, errors.New("encode PKCS#12: certificate was signed from a CSR, its key is not here")
	}
	if password == "" {
		return nil, errors.New("encode PKCS#12: a password is required")
	}
	enc := pkcs12.Modern.WithIterations(p12Iterations)
	if legacy {
		enc = pkcs12.Legacy
	}
	b, err := enc.Encode(i.Key, i.Chain[0], i.Chain[1:], password)
	if err != nil {
		return nil, fmt.Errorf("encode PKCS#12: %w", err)
	}
	return b, nil
}
