package certsource

import (
	"bytes"
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

	"github.com/youmark/pkcs8"
)

// ErrPassphrase reports a missing or wrong passphrase for an encrypted
// key. A damaged ciphertext looks the same to the decoder, so the message
// says both.
var ErrPassphrase = errors.New("wrong passphrase (or the key file is corrupt)")

// LoadKeyPair reads a certificate chain (leaf first, then intermediates)
// and its private key. passphrase is used only for an encrypted PKCS#8 key.
// It checks that the key matches the leaf and that each certificate is
// signed by the next, so a misordered or foreign chain fails at startup
// instead of at a client.
func LoadKeyPair(certFile, keyFile string, passphrase []byte) (tls.Certificate, error) {
	chain, err := LoadCerts(certFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("read key: %w", err)
	}
	key, err := ParsePrivateKeyPEM(keyPEM, passphrase)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("key %s: %w", keyFile, err)
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
	c := tls.Certificate{PrivateKey: key, Leaf: chain[0]}
	for _, x := range chain {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	return c, nil
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
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			if len(passphrase) == 0 {
				return nil, fmt.Errorf("key is encrypted and no passphrase was given: %w", ErrPassphrase)
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

// ReadPassphrase reads a passphrase file, dropping one trailing newline
// (as `echo secret > file` writes). An empty passphrase is an error.
func ReadPassphrase(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read passphrase file: %w", err)
	}
	b = bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r"))
	if len(b) == 0 {
		return nil, fmt.Errorf("passphrase file %s is empty", path)
	}
	return b, nil
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
