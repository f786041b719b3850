package keypolicy

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
)

// RSA modulus sizes allowed, in bits. 2048 is the floor NIST SP 800-57
// and the CA/Browser Forum set; above 4096 a key adds verification cost
// (an attacker's chain of RSA-8192 or RSA-16384 certificates is CPU spent
// before it is refused) and no security anyone needs from a client key.
const (
	MinRSABits = 2048
	MaxRSABits = 4096
)

// Allowed says in words which keys pass, for error messages and docs.
const Allowed = "RSA 2048 to 4096 bits, ECDSA P-256, P-384 or P-521, Ed25519"

// ErrKey is wrapped by every refusal of Check.
var ErrKey = errors.New("key outside the key policy")

// Check returns nil when pub is an allowed key, else an error wrapping
// ErrKey that names the key and the allowed ones.
func Check(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		bits := k.N.BitLen()
		if bits < MinRSABits || bits > MaxRSABits {
			return fmt.Errorf("%w: RSA-%d (allowed: %s)", ErrKey, bits, Allowed)
		}
		return nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return nil
		}
		name := "unknown curve"
		if k.Curve != nil && k.Curve.Params() != nil {
			name = k.Curve.Params().Name
		}
		return fmt.Errorf("%w: ECDSA %s (allowed: %s)", ErrKey, name, Allowed)
	case ed25519.PublicKey:
		if len(k) == ed25519.PublicKeySize {
			return nil
		}
	}
	return fmt.Errorf("%w: %s (allowed: %s)", ErrKey, Describe(pub), Allowed)
}

// TooCostly reports whether pub is a key whose signatures cost more to
// verify than any allowed key's: checked on every certificate a client
// presents before any signature is verified.
func TooCostly(pub crypto.PublicKey) bool {
	k, ok := pub.(*rsa.PublicKey)
	return ok && k.N.BitLen() > MaxRSABits
}

// Describe names a public key: "RSA-2048", "ECDSA P-256", "Ed25519".
func Describe(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA-%d", k.N.BitLen())
	case *ecdsa.PublicKey:
		if k.Curve != nil && k.Curve.Params() != nil {
			return "ECDSA " + k.Curve.Params().Name
		}
		return "ECDSA"
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T key", pub)
}
