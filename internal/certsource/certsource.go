package certsource

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/gatehouse/gatehouse/internal/keystore"
)

// ErrPassphrase reports a missing or wrong passphrase for an encrypted
// key. A damaged ciphertext looks the same to the decoder, so the message
// says both.
var ErrPassphrase = keystore.ErrPassphrase

// LoadKeyPair reads a certificate chain (leaf first, then intermediates)
// and its private key: a PEM file, or a key in a PKCS#11 token when keyFile
// is a pkcs11: URI (binaries built with -tags pkcs11; the token session
// stays open for as long as the process uses the key). passphrase is used
// only for an encrypted PKCS#8 key.
// It checks that the key matches the leaf and that each certificate is
// signed by the next, so a misordered or foreign chain fails at startup
// instead of at a client.
func LoadKeyPair(certFile, keyFile string, passphrase []byte) (tls.Certificate, error) {
	chain, err := LoadCerts(certFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	key, err := openKey(keyFile, passphrase, chain[0].PublicKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	if !publicKeyEqual(chain[0].PublicKey, key.Public()) {
		return tls.Certificate{}, fmt.Errorf("key %s does not belong to the certificate in %s (subject %q)", keyFile, certFile, chain[0].Subject)
	}
	for i := 0; i+1 < len(chain); i++ {
		if err := chain[i].CheckSignatureFrom(chain[i+1]); err != nil {
			return tls.Certificate{}, fmt.Errorf("certificate chain %s: certificate %d (%q) is not signed by certificate %d (%q); put the leaf first, then each issuer in order",
				certFile, i+1, chain[i].Subject, i+2, chain[i+1].Subject)
		}
	}
	var priv crypto.Signer = key
	if fk, ok := key.(keystore.FileKey); ok {
		priv = fk.Signer // the bare key, as tls and callers expect
	}
	c := tls.Certificate{PrivateKey: priv, Leaf: chain[0]}
	for _, x := range chain {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	return c, nil
}

// tokenKeys holds the PKCS#11 keys opened so far, by URI: a reload reuses
// the open token session instead of opening one more each time, unless the
// certificate now names another key (the token object was replaced).
var tokenKeys sync.Map // string -> keystore.Key

func openKey(ref string, passphrase []byte, want crypto.PublicKey) (keystore.Key, error) {
	if !keystore.IsPKCS11(ref) {
		return keystore.Open(ref, passphrase)
	}
	if k, ok := tokenKeys.Load(ref); ok && publicKeyEqual(want, k.(keystore.Key).Public()) {
		return k.(keystore.Key), nil
	}
	k, err := keystore.Open(ref, nil)
	if err != nil {
		return nil, err
	}
	// The replaced key stays open: connections made with the previous
	// configuration may still be signing with it.
	tokenKeys.Store(ref, k)
	return k, nil
}

// LoadCerts reads every CERTIFICATE block of a PEM file. It fails when
// there is none, or when a block does not parse.
func LoadCerts(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	certs, err := ParseCertsPEM(data)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", path, err)
	}
	return certs, nil
}

// ParseCertsPEM parses every CERTIFICATE block in data.
func ParseCertsPEM(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for n := 1; ; n++ {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			if strings.Contains(b.Type, "PRIVATE KEY") {
				return nil, fmt.Errorf("PEM block %d is a private key, not a certificate (keep keys in their own file)", n)
			}
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate found (expected -----BEGIN CERTIFICATE-----)")
	}
	return certs, nil
}

// LoadCAs reads CA certificates from PEM files into a pool. Every
// certificate must be a CA (basicConstraints CA:TRUE); a leaf placed in a
// CA bundle by mistake would otherwise be trusted as an issuer.
func LoadCAs(paths []string) (*x509.CertPool, []*x509.Certificate, error) {
	pool := x509.NewCertPool()
	var all []*x509.Certificate
	for _, p := range paths {
		certs, err := LoadCerts(p)
		if err != nil {
			return nil, nil, fmt.Errorf("load CA: %w", err)
		}
		for _, c := range certs {
			if !c.IsCA || !c.BasicConstraintsValid {
				return nil, nil, fmt.Errorf("load CA %s: %q is not a CA certificate (basicConstraints CA:TRUE is missing)", p, c.Subject)
			}
			pool.AddCert(c)
			all = append(all, c)
		}
	}
	return pool, all, nil
}

// ParsePrivateKeyPEM parses the first private key block in data: PKCS#1
// ("RSA PRIVATE KEY"), SEC1 ("EC PRIVATE KEY"), PKCS#8 ("PRIVATE KEY") or
// encrypted PKCS#8 ("ENCRYPTED PRIVATE KEY", decrypted with passphrase).
// Legacy OpenSSL-encrypted PEM (Proc-Type: 4,ENCRYPTED) is refused: its key
// derivation is weak; convert it with `openssl pkcs8 -topk8`.
func ParsePrivateKeyPEM(data, passphrase []byte) (crypto.Signer, error) {
	return keystore.ParsePEM(data, passphrase)
}

func publicKeyEqual(a, b crypto.PublicKey) bool {
	switch k := a.(type) {
	case *rsa.PublicKey:
		return k.Equal(b)
	case *ecdsa.PublicKey:
		return k.Equal(b)
	case ed25519.PublicKey:
		return k.Equal(b)
	}
	return false
}
