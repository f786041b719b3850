//go:build !pkcs11

package keystore

// PKCS11 reports whether this binary can use PKCS#11 tokens.
const PKCS11 = false

// OpenPKCS11 fails: this binary was built without PKCS#11 support.
func OpenPKCS11(*PKCS11URI) (Key, error) { return nil, ErrNoPKCS11 }

// GeneratePKCS11 fails: this binary was built without PKCS#11 support.
func GeneratePKCS11(*PKCS11URI, string) (Key, error) { return nil, ErrNoPKCS11 }

// NonExtractable fails: this binary was built without PKCS#11 support.
func NonExtractable(Key) (bool, error) { return false, ErrNoPKCS11 }
