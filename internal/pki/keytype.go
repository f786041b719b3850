package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"strings"
)

// KeyType names a key algorithm and size. The zero KeyType means
// KeyECDSAP256.
type KeyType string

// The key types gatehouse generates.
const (
	KeyECDSAP256 KeyType = "ecdsa-p256"
	KeyECDSAP384 KeyType = "ecdsa-p384"
	KeyEd25519   KeyType = "ed25519"
	KeyRSA3072   KeyType = "rsa-3072"
)

// KeyTypes lists the supported key types, the default first.
func KeyTypes() []KeyType { return []KeyType{KeyECDSAP256, KeyECDSAP384, KeyEd25519, KeyRSA3072} }

// ParseKeyType returns the KeyType named s; "" gives the default.
func ParseKeyType(s string) (KeyType, error) {
	k := KeyType(strings.ToLower(strings.TrimSpace(s)))
	if k == "" {
		return KeyECDSAP256, nil
	}
	for _, t := range KeyTypes() {
		if k == t {
			return k, nil
		}
	}
	return "", fmt.Errorf("unknown key type %q (use %s)", s, joinKeyTypes())
}

func joinKeyTypes() string {
	var s []string
	for _, t := range KeyTypes() {
		s = append(s, string(t))
	}
	return strings.Join(s, ", ")
}

// Generate creates a new private key of type k.
func (k KeyType) Generate() (crypto.Signer, error) {
	switch k {
	case "", KeyECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case KeyECDSAP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case KeyEd25519:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	case KeyRSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	}
	return nil, fmt.Errorf("unknown key type %q (use %s)", string(k), joinKeyTypes())
}

// keyTypeOf names the type of a public key, for messages and settings.
func keyTypeOf(pub crypto.PublicKey) string {
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		return "ecdsa-" + strings.ToLower(strings.ReplaceAll(p.Curve.Params().Name, "-", ""))
	case ed25519.PublicKey:
		return string(KeyEd25519)
	case *rsa.PublicKey:
		return fmt.Sprintf("rsa-%d", p.N.BitLen())
	}
	return fmt.Sprintf("%T", pub)
}
