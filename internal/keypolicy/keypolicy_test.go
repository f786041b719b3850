package keypolicy

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"math/big"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	ec := func(c elliptic.Curve) crypto.PublicKey {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return &k.PublicKey
	}
	// An RSA public key of n bits: the modulus alone decides, so no key
	// needs generating (RSA-16384 would take minutes).
	rsaBits := func(n int) crypto.PublicKey {
		return &rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), uint(n-1)), E: 65537}
	}
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	for _, tc := range []struct {
		name string
		pub  crypto.PublicKey
		ok   bool
	}{
		{"RSA-1024", rsaBits(1024), false},
		{"RSA-2047", rsaBits(2047), false},
		{"RSA-2048", rsaBits(2048), true},
		{"RSA-3072", rsaBits(3072), true},
		{"RSA-4096", rsaBits(4096), true},
		{"RSA-4097", rsaBits(4097), false},
		{"RSA-8192", rsaBits(8192), false},
		{"RSA-16384", rsaBits(16384), false},
		{"P-224", ec(elliptic.P224()), false},
		{"P-256", ec(elliptic.P256()), true},
		{"P-384", ec(elliptic.P384()), true},
		{"P-521", ec(elliptic.P521()), true},
		{"Ed25519", edPub, true},
		{"short Ed25519", ed25519.PublicKey(edPub[:16]), false},
		{"nil", nil, false},
	} {
		err := Check(tc.pub)
		if (err == nil) != tc.ok {
			t.Errorf("%s: Check = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && (!errors.Is(err, ErrKey) || !strings.Contains(err.Error(), Allowed)) {
			t.Errorf("%s: error %q does not wrap ErrKey and name the allowed keys", tc.name, err)
		}
	}
	if !TooCostly(rsaBits(8192)) || TooCostly(rsaBits(4096)) || TooCostly(ec(elliptic.P521())) {
		t.Error("TooCostly")
	}
}
